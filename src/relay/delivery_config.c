/*
 * delivery_config.c — which delivery sinks exist and which event types they
 * get (see delivery.h): sinks from the command line, and the configuration
 * in ordersync.sink and ordersync.route, read once at start and then
 * followed through the row changes of those tables in the stream.
 *
 * Everything read here is input from the database, which an admin writes:
 * each entry is checked before it is used, a sink whose new version is
 * refused keeps running as it was, and a new sink that cannot be opened
 * dead-letters what is routed to it (nothing routed is ever dropped).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "sink_policy.h"
#include "log.h"
#include "lsn.h"
#include "metrics.h"

/* The same formats as the CHECK constraints of ordersync.sink and .route. */
#define SINK_NAME_MAX 63
#define SINK_URI_MAX 2048
#define SINK_OPTIONS_MAX 4096
/* sink options: a flat object, "kafka" one level below */
#define OPTIONS_DEPTH 16

/* ---- checking what the database says ---------------------------------- */

bool
delivery_sink_name_ok(const char *name)
{
	size_t		n = name ? strlen(name) : 0;

	if (n == 0 || n > SINK_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		char		c = name[i];
		bool		alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

/* "*", "order.paid", "order.*": [a-z0-9_]+ words joined by dots, maybe ".*". */
bool
delivery_pattern_ok(const char *p)
{
	size_t		n = p ? strlen(p) : 0;
	bool		word = false;

	if (n == 0 || n > 200)
		return false;
	if (strcmp(p, "*") == 0)
		return true;
	if (n >= 2 && strcmp(p + n - 2, ".*") == 0)
		n -= 2;
	for (size_t i = 0; i < n; i++)
	{
		char		c = p[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
			word = true;
		else if (c == '.' && word && i + 1 < n)
			word = false;
		else
			return false;
	}
	return word;
}

/*
 * One entry of "sinks": {"name": text, "uri": text, "options": object}.
 * On success the pointers borrow from sj; else err says what is wrong
 * (*name is set when the name itself is usable).
 */
static int
sink_entry(json_object *sj, const char **name, const char **uri, json_object **options,
		   char *err, size_t errlen)
{
	json_object *n = NULL,
			   *u = NULL,
			   *o = NULL;

	*name = *uri = NULL;
	*options = NULL;
	if (!json_object_is_type(sj, json_type_object))
	{
		snprintf(err, errlen, "a sink entry is not an object");
		return -1;
	}
	json_object_object_get_ex(sj, "name", &n);
	if (!json_object_is_type(n, json_type_string) || !delivery_sink_name_ok(json_object_get_string(n)))
	{
		snprintf(err, errlen, "sink name %.80s is not 1 to 63 of a-z, 0-9, \"_\", \".\", \"-\"",
				 n ? json_object_to_json_string_ext(n, JSON_C_TO_STRING_PLAIN) : "(missing)");
		return -1;
	}
	*name = json_object_get_string(n);
	json_object_object_get_ex(sj, "uri", &u);
	if (!json_object_is_type(u, json_type_string))
	{
		snprintf(err, errlen, "sink \"%s\": uri must be a string, not %.60s", *name,
				 u ? json_object_to_json_string_ext(u, JSON_C_TO_STRING_PLAIN) : "(missing)");
		return -1;
	}
	/* checked before anything prints it: no control or invisible characters in logs */
	if (json_object_get_string_len(u) > SINK_URI_MAX ||
		strlen(json_object_get_string(u)) != (size_t) json_object_get_string_len(u) ||
		sink_has_bad_char(json_object_get_string(u), (size_t) json_object_get_string_len(u)))
	{
		snprintf(err, errlen, "sink \"%s\": uri is longer than %d bytes or holds control or "
				 "invisible characters", *name, SINK_URI_MAX);
		return -1;
	}
	if (json_object_object_get_ex(sj, "options", &o) && o != NULL &&
		!json_object_is_type(o, json_type_object))
	{
		snprintf(err, errlen, "sink \"%s\": options must be a JSON object", *name);
		return -1;
	}
	*uri = json_object_get_string(u);
	*options = o;
	return 0;
}

/* Same uri and options: the running sink stays as it is. */
static bool
same_sink(json_object *a, json_object *b)
{
	json_object *ua,
			   *ub,
			   *oa = NULL,
			   *ob = NULL;

	if (a == NULL || b == NULL ||
		!json_object_object_get_ex(a, "uri", &ua) || !json_object_object_get_ex(b, "uri", &ub) ||
		!json_object_is_type(ua, json_type_string) || !json_object_is_type(ub, json_type_string) ||
		strcmp(json_object_get_string(ua), json_object_get_string(ub)) != 0)
		return false;
	json_object_object_get_ex(a, "options", &oa);
	json_object_object_get_ex(b, "options", &ob);
	if (oa == NULL || ob == NULL)
		return oa == ob;
	return json_object_equal(oa, ob);
}

/* A sink that dead-letters everything routed to it, saying why. */
static struct delivery_sink *
refused_sink(struct delivery *dl, const char *name, const char *why)
{
	char		err[1024];
	struct delivery_sink *ds = delivery_open_sink(dl, name, "", NULL, false, true, err, sizeof(err));

	free(ds->refused);
	ds->refused = xstrdup(why);
	return ds;
}

int
delivery_add_cli_sink(struct delivery *dl, const char *spec, const char *options,
					  char *err, size_t errlen)
{
	const struct sink_ops *kind = sink_kind_for(spec);
	json_object *opt = NULL;
	struct delivery_sink *ds;
	char		name[256];

	if (kind == NULL)
	{
		char		shown[256];

		sink_redact_uri(spec, shown, sizeof(shown));
		snprintf(err, errlen, "unknown sink \"%s\": use --sink=stdout, --sink=file:/path/events.jsonl "
				 "or a URI (http://, https://, kafka://brokers/topic, "
				 "amqp://user@host/vhost?exchange=NAME)", shown);
		return -1;
	}
	/*
	 * The name shows in logs, metric labels and dead letters: a file as
	 * given, a URI without userinfo and with every query value but
	 * exchange's as ***.
	 */
	if (kind->flags & SINK_LOCAL)
		snprintf(name, sizeof(name), "%s", spec);
	else
		sink_redact_uri(spec, name, sizeof(name));
	if (options)
	{
		opt = json_tokener_parse(options);
		if (opt == NULL || !json_object_is_type(opt, json_type_object))
		{
			snprintf(err, errlen, "--sink-options for %s is not a JSON object: %s", name, options);
			json_object_put(opt);
			return -1;
		}
	}
	ds = delivery_open_sink(dl, name, spec, opt, true, false, err, errlen);
	json_object_put(opt);
	if (ds == NULL)
		return -1;
	delivery_add_sink(dl, ds, false, NULL);
	delivery_add_pattern(ds, "*");
	return 0;
}

/* The running configured sink called name, or -1. */
static int
find_sink(const struct delivery *dl, const char *name)
{
	for (int i = 0; i < dl->nsinks; i++)
		if (dl->sinks[i]->configured && !dl->sinks[i]->retired &&
			strcmp(dl->sinks[i]->sink->name, name) == 0)
			return i;
	return -1;
}

static void
refused(const char *where, const char *what)
{
	metrics_config_refused();
	log_error("refused a sink configuration change (%s): %s", where, what);
}

/*
 * Make the running sink called name match entry sj: keep it when nothing
 * changed, else open the new version. When that fails the running version
 * stays (a bad change must not cut a working sink off); a new sink that
 * cannot be opened becomes a broken sink that dead-letters its events.
 */
static void
apply_sink(struct delivery *dl, json_object *sj, const char *where)
{
	const char *name,
			   *uri;
	json_object *options;
	char		err[1024];
	int			i;
	bool		working;
	struct delivery_sink *ds;

	if (sink_entry(sj, &name, &uri, &options, err, sizeof(err)) != 0 && name == NULL)
	{
		refused(where, err);
		return;
	}
	i = find_sink(dl, name);
	if (i >= 0 && same_sink(dl->sinks[i]->config, sj))
		return;
	/* running: it was opened (a sink refused at connect time counts too) */
	working = i >= 0 && dl->sinks[i]->sink->ops != NULL;
	if (uri == NULL)
		ds = working ? NULL : refused_sink(dl, name, err);
	else
		ds = delivery_open_sink(dl, name, uri, options, false, !working, err, sizeof(err));
	if (ds == NULL)
	{
		char		why[1200];

		snprintf(why, sizeof(why), "%s; sink \"%s\" keeps running as it was", err, name);
		refused(where, why);
		return;
	}
	if (i >= 0)
	{
		log_info("sink \"%s\" was changed in ordersync.sink (%s)", name, where);
		delivery_retire(dl->sinks[i]);
	}
	if (ds->sink->ops == NULL)
	{
		metrics_config_refused();
		log_error("%s\nHINT: until this is fixed, events routed to sink \"%s\" go to "
				  "ordersync.dead_letter; fix it (ordersync.drop_sink + add_sink, or the "
				  "relay's command line or environment) and redeliver them", err, name);
	}
	else
		log_info("sink \"%s\" (%s) added", name, ds->sink->ops->kind);
	delivery_add_sink(dl, ds, true, sj);
}

int
delivery_apply_config(struct delivery *dl, json_object *cfg, const char *where)
{
	json_object *sinks = NULL,
			   *routes = NULL;
	size_t		nsinks,
				nroutes;
	int			broken = 0;

	if (!json_object_object_get_ex(cfg, "sinks", &sinks) ||
		!json_object_is_type(sinks, json_type_array) ||
		!json_object_object_get_ex(cfg, "routes", &routes) ||
		!json_object_is_type(routes, json_type_array))
	{
		refused(where, "the configuration has no \"sinks\" and \"routes\" arrays; "
				"keeping the one in use");
		return -1;
	}
	nsinks = json_object_array_length(sinks);
	nroutes = json_object_array_length(routes);

	/* sinks no longer in the configuration retire; routes are rebuilt below */
	for (int i = 0; i < dl->nsinks; i++)
	{
		struct delivery_sink *e = dl->sinks[i];
		bool		listed = false;

		if (!e->configured || e->retired)
			continue;
		for (size_t j = 0; j < nsinks && !listed; j++)
		{
			json_object *n;

			listed = json_object_object_get_ex(json_object_array_get_idx(sinks, j), "name", &n) &&
				json_object_is_type(n, json_type_string) &&
				strcmp(json_object_get_string(n), e->sink->name) == 0;
		}
		delivery_drop_patterns(e);
		if (!listed)
		{
			log_info("sink \"%s\" was dropped from ordersync.sink (%s)", e->sink->name, where);
			delivery_retire(e);
		}
	}
	for (size_t j = 0; j < nsinks; j++)
		apply_sink(dl, json_object_array_get_idx(sinks, j), where);
	for (size_t k = 0; k < nroutes; k++)
	{
		json_object *rk = json_object_array_get_idx(routes, k),
				   *rs = NULL,
				   *rp = NULL;
		int			i;

		json_object_object_get_ex(rk, "sink", &rs);
		json_object_object_get_ex(rk, "pattern", &rp);
		if (!json_object_is_type(rs, json_type_string) || !json_object_is_type(rp, json_type_string) ||
			!delivery_pattern_ok(json_object_get_string(rp)))
		{
			char		what[300];

			snprintf(what, sizeof(what), "route %.200s is not {\"sink\": name, \"pattern\": "
					 "\"order.paid\" | \"order.*\" | \"*\"}", json_object_to_json_string_ext(rk, JSON_C_TO_STRING_PLAIN));
			refused(where, what);
			continue;
		}
		i = find_sink(dl, json_object_get_string(rs));
		if (i >= 0)
			delivery_add_pattern(dl->sinks[i], json_object_get_string(rp));
	}
	for (int i = 0; i < dl->nsinks; i++)
		if (dl->sinks[i]->configured && !dl->sinks[i]->retired && dl->sinks[i]->sink->ops == NULL)
			broken++;
	delivery_reap(dl);
	return broken;
}

int
delivery_load_config(struct delivery *dl, PGconn *conn)
{
	/* not to_regprocedure(): before PostgreSQL 16 it fails when the schema is missing */
	PGresult   *res = PQexec(conn,
							 "SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n"
							 " ON n.oid = p.pronamespace WHERE n.nspname = 'ordersync'"
							 " AND p.proname = 'relay_config' AND p.pronargs = 0)");
	json_object *cfg;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		log_error("could not look for ordersync.relay_config(): %s", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		/* no extension (or 0.1.0): the command line's sinks are all there is */
		PQclear(res);
		return 0;
	}
	PQclear(res);
	res = PQexec(conn, "SELECT ordersync.relay_config()::text");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		log_error("could not read the sinks from ordersync.relay_config(): %s"
				  "HINT: grant the role ordersync_relay to the relay's user "
				  "(GRANT ordersync_relay TO <user>)", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	cfg = json_tokener_parse(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (cfg == NULL)
	{
		log_error("ordersync.relay_config() did not return JSON");
		return -1;
	}
	json_object_put(dl->config);
	dl->config = cfg;
	delivery_apply_config(dl, cfg, "ordersync.relay_config() at start");
	return 0;
}

/* ---- following the configuration through the stream ------------------ */

bool
delivery_is_control_table(const char *schema, const char *table)
{
	return schema && table && strcmp(schema, "ordersync") == 0 &&
		(strcmp(table, "sink") == 0 || strcmp(table, "route") == 0 ||
		 strcmp(table, "redelivery") == 0);
}

/*
 * The value of column name in a wal2json column list ("columns" or
 * "identity": [{"name": ..., "value": ...}, ...]). False when the column is
 * not there: an UPDATE leaves out an unchanged TOASTed value.
 */
static bool
column(json_object *change, const char *list, const char *name, json_object **value)
{
	json_object *cols;

	*value = NULL;
	if (!json_object_object_get_ex(change, list, &cols) || !json_object_is_type(cols, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(cols); i++)
	{
		json_object *c = json_object_array_get_idx(cols, i),
				   *n;

		if (json_object_object_get_ex(c, "name", &n) && json_object_is_type(n, json_type_string) &&
			strcmp(json_object_get_string(n), name) == 0)
			return json_object_object_get_ex(c, "value", value);
	}
	return false;
}

/* A text column, or NULL (missing, null or not a string). */
static const char *
text_column(json_object *change, const char *list, const char *name)
{
	json_object *v;

	if (!column(change, list, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The configuration's array key ("sinks", "routes"); both are made when missing. */
static json_object *
config_array(struct delivery *dl, const char *key)
{
	static const char *const keys[] = {"sinks", "routes"};
	json_object *a = NULL;

	if (dl->config == NULL || !json_object_is_type(dl->config, json_type_object))
	{
		json_object_put(dl->config);
		dl->config = json_object_new_object();
	}
	for (int i = 0; i < 2; i++)
		if (!json_object_object_get_ex(dl->config, keys[i], &a) ||
			!json_object_is_type(a, json_type_array))
			json_object_object_add(dl->config, keys[i], json_object_new_array());
	json_object_object_get_ex(dl->config, key, &a);
	return a;
}

/* Index of the entry whose k1 (and k2) equal v1 (and v2), or -1. */
static int
config_find(json_object *arr, const char *k1, const char *v1, const char *k2, const char *v2)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++)
	{
		json_object *e = json_object_array_get_idx(arr, i),
				   *a,
				   *b;

		if (json_object_object_get_ex(e, k1, &a) && json_object_is_type(a, json_type_string) &&
			strcmp(json_object_get_string(a), v1) == 0 &&
			(k2 == NULL || (json_object_object_get_ex(e, k2, &b) &&
							json_object_is_type(b, json_type_string) &&
							strcmp(json_object_get_string(b), v2) == 0)))
			return (int) i;
	}
	return -1;
}

/*
 * ordersync.sink row: the new entry starts from the one it replaces, so a
 * column an UPDATE left out keeps its value; options arrive as jsonb text.
 */
static void
sink_row(struct delivery *dl, char action, json_object *change, const char *where)
{
	json_object *sinks = config_array(dl, "sinks");
	const char *old = text_column(change, "identity", "name");
	const char *name = text_column(change, "columns", "name");
	json_object *entry,
			   *v;
	int			at;

	if (action == 'T')
	{
		json_object_array_del_idx(sinks, 0, json_object_array_length(sinks));
		return;
	}
	if (action == 'D')
	{
		if (old == NULL)
		{
			refused(where, "a deleted ordersync.sink row without its name");
			return;
		}
		if ((at = config_find(sinks, "name", old, NULL, NULL)) >= 0)
			json_object_array_del_idx(sinks, (size_t) at, 1);
		return;
	}
	if (name == NULL)
		name = old;
	if (name == NULL)
	{
		refused(where, "an ordersync.sink row without a text \"name\"");
		return;
	}
	at = config_find(sinks, "name", old ? old : name, NULL, NULL);
	entry = json_object_new_object();
	json_object_object_add(entry, "name", json_object_new_string(name));
	if (column(change, "columns", "uri", &v))
		json_object_object_add(entry, "uri", json_object_get(v));
	else if (at >= 0 && json_object_object_get_ex(json_object_array_get_idx(sinks, (size_t) at), "uri", &v))
		json_object_object_add(entry, "uri", json_object_get(v));
	if (column(change, "columns", "options", &v))
	{
		/* jsonb as text; anything else stays as it is and sink_entry refuses it */
		json_object *o = NULL;

		if (json_object_is_type(v, json_type_string) &&
			json_object_get_string_len(v) <= SINK_OPTIONS_MAX)
			o = delivery_parse_json(json_object_get_string(v), (size_t) json_object_get_string_len(v),
								   OPTIONS_DEPTH);
		json_object_object_add(entry, "options", o ? o : json_object_get(v));
	}
	else if (at >= 0 && json_object_object_get_ex(json_object_array_get_idx(sinks, (size_t) at), "options", &v))
		json_object_object_add(entry, "options", json_object_get(v));
	if (old && name && strcmp(old, name) != 0)
	{
		/* renamed: the old name goes, and a sink already called name is replaced */
		if (at >= 0)
			json_object_array_del_idx(sinks, (size_t) at, 1);
		at = config_find(sinks, "name", name, NULL, NULL);
	}
	if (at >= 0)
		json_object_array_put_idx(sinks, (size_t) at, entry);
	else
		json_object_array_add(sinks, entry);
}

/* ordersync.route row: (sink, pattern) pairs, checked before they count. */
static void
route_row(struct delivery *dl, char action, json_object *change, const char *where)
{
	json_object *routes = config_array(dl, "routes");
	const char *os = text_column(change, "identity", "sink"),
			   *op = text_column(change, "identity", "pattern"),
			   *ns = text_column(change, "columns", "sink"),
			   *np = text_column(change, "columns", "pattern");
	int			at;

	if (action == 'T')
	{
		json_object_array_del_idx(routes, 0, json_object_array_length(routes));
		return;
	}
	if ((action == 'D' || action == 'U') && os && op &&
		(at = config_find(routes, "sink", os, "pattern", op)) >= 0)
		json_object_array_del_idx(routes, (size_t) at, 1);
	if (action == 'D')
	{
		if (!os || !op)
			refused(where, "a deleted ordersync.route row without its sink and pattern");
		return;
	}
	if (!ns || !np || !delivery_sink_name_ok(ns) || !delivery_pattern_ok(np))
	{
		char		what[300];

		snprintf(what, sizeof(what), "route (%.80s, %.80s) is not a sink name and an event type "
				 "pattern (\"order.paid\", \"order.*\", \"*\")", ns ? ns : "null", np ? np : "null");
		refused(where, what);
		return;
	}
	if (config_find(routes, "sink", ns, "pattern", np) < 0)
	{
		json_object *r = json_object_new_object();

		json_object_object_add(r, "sink", json_object_new_string(ns));
		json_object_object_add(r, "pattern", json_object_new_string(np));
		json_object_array_add(routes, r);
	}
}

/* ordersync.redelivery insert: ordersync.redeliver() asks for one event again. */
static void
redelivery_row(struct delivery *dl, char action, json_object *change, uint64_t end_lsn,
			   const char *where)
{
	json_object *id,
			   *ev,
			   *event = NULL;
	const char *sink = text_column(change, "columns", "sink");

	if (action != 'I')
		return;					/* only new requests mean anything */
	if (!column(change, "columns", "dead_letter_id", &id) || !json_object_is_type(id, json_type_int) ||
		sink == NULL || !column(change, "columns", "event", &ev) ||
		!json_object_is_type(ev, json_type_string))
	{
		refused(where, "an ordersync.redelivery row without dead_letter_id, sink and event");
		return;
	}
	event = delivery_parse_json(json_object_get_string(ev), (size_t) json_object_get_string_len(ev),
							   DELIVERY_EVENT_MAX_DEPTH);
	if (event == NULL)
		refused(where, "the event of an ordersync.redelivery row is not JSON");
	else
		delivery_redeliver(dl, end_lsn, json_object_get_int64(id), sink, event);
	json_object_put(event);
}

void
delivery_control_row(struct delivery *dl, const char *table, char action, json_object *change,
					 uint64_t end_lsn, const char *where)
{
	if (strcmp(table, "redelivery") == 0)
	{
		redelivery_row(dl, action, change, end_lsn, where);
		return;
	}
	if (strcmp(table, "sink") == 0)
		sink_row(dl, action, change, where);
	else if (strcmp(table, "route") == 0)
		route_row(dl, action, change, where);
	else
	{
		refused(where, "a row change of a table that does not steer the relay");
		return;
	}
	delivery_apply_config(dl, dl->config, where);
}
