/*
 * delivery_letters.c — what leaves the delivery core other than through a
 * sink: dead letters in ordersync.dead_letter, and the personal-data filter
 * for sinks with drop_personal_data (see delivery.h).
 *
 * Only when the dead letter is committed does an event count as finished:
 * if the relay cannot write it (database down, missing privilege) the event
 * stays unconfirmed and is tried again. After a failed write no other is
 * tried for a second, so a database that is down costs one connection
 * attempt a second, not one per waiting event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "log.h"
#include "w2j.h"

#define LETTERS_PAUSE_MS 1000

static bool
letters_conn(struct delivery *dl)
{
	const char *keys[] = {"dbname", "fallback_application_name", "connect_timeout", NULL};
	const char *vals[] = {dl->conninfo, "ordersyncd-dead-letters", "10", NULL};

	if (dl->conn && PQstatus(dl->conn) == CONNECTION_OK)
		return true;
	PQfinish(dl->conn);
	dl->conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(dl->conn) == CONNECTION_OK)
		return true;
	log_error("cannot connect to write dead letters: %s", PQerrorMessage(dl->conn));
	return false;
}

int
delivery_dead_letter(struct delivery *dl, const struct delivery_sink *ds,
					 const struct sink_event *ev, const char *why)
{
	char		attempts[16];
	char	   *body;
	const char *params[4];
	PGresult   *res;
	int			rc = -1;

	if (sink_now_ms() < dl->letters_down_until)
		return -1;
	if (!letters_conn(dl))
	{
		dl->letters_down_until = sink_now_ms() + LETTERS_PAUSE_MS;
		return -1;
	}
	body = xstrndup(ev->body, ev->body_len);
	snprintf(attempts, sizeof(attempts), "%d", ev->attempts);
	params[0] = ds->sink->name;
	params[1] = body;
	params[2] = why;
	params[3] = attempts;
	res = PQexecParams(dl->conn, "SELECT ordersync.record_dead_letter($1, $2::jsonb, $3, $4::int)",
					   4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		log_warning("sink \"%s\" did not take event %s (%s, %s) after %d attempt%s: %s; kept as "
					"dead letter %s (SELECT ordersync.redeliver(%s) sends it again)",
					ds->sink->name, ev->id, ev->type, ev->subject, ev->attempts,
					ev->attempts == 1 ? "" : "s", why, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 0));
		rc = 0;
	}
	else
	{
		log_error("could not write event %s to ordersync.dead_letter: %s"
				  "HINT: the relay's user needs the ordersync_relay role and the extension "
				  "ordersync 0.3.0 (ALTER EXTENSION ordersync UPDATE); the event stays "
				  "unconfirmed and is tried again", ev->id, PQresultErrorMessage(res));
		dl->letters_down_until = sink_now_ms() + LETTERS_PAUSE_MS;
	}
	PQclear(res);
	free(body);
	return rc;
}

/*
 * Personal data, for the sinks with drop_personal_data: the "customer"
 * member of an event's data (domain events, snapshots, redeliveries), the
 * "customer" column of a raw row change (columns and identity), and the
 * raw line of a relay.invalid event (it may be anything). The filter fails
 * closed: an event it cannot read is never sent unfiltered.
 */
#define PERSONAL_DATA_KEY "customer"

static void
drop_personal_columns(json_object *data, const char *key)
{
	json_object *cols;

	if (!json_object_object_get_ex(data, key, &cols) || !json_object_is_type(cols, json_type_array))
		return;
	for (size_t i = json_object_array_length(cols); i-- > 0;)
	{
		json_object *n;

		if (json_object_object_get_ex(json_object_array_get_idx(cols, i), "name", &n) &&
			json_object_is_type(n, json_type_string) &&
			strcmp(json_object_get_string(n), PERSONAL_DATA_KEY) == 0)
			json_object_array_del_idx(cols, i, 1);
	}
}

json_object *
delivery_parse_json(const char *text, size_t len, int max_depth)
{
	json_tokener *tok = json_tokener_new_ex(max_depth);
	json_object *o = NULL;
	char		err[160];

	if (tok == NULL)
		return NULL;
	o = w2j_parse_json(tok, text, len, err, sizeof(err));
	json_tokener_free(tok);
	return o;
}

char *
delivery_without_personal_data(const char *body, size_t len, size_t *outlen)
{
	json_object *ev = delivery_parse_json(body, len, DELIVERY_EVENT_MAX_DEPTH);
	json_object *data;
	char	   *out = NULL;

	if (ev && json_object_is_type(ev, json_type_object))
	{
		size_t		n;
		const char *txt;

		if (json_object_object_get_ex(ev, "data", &data) && json_object_is_type(data, json_type_object))
		{
			json_object_object_del(data, PERSONAL_DATA_KEY);
			drop_personal_columns(data, "columns");
			drop_personal_columns(data, "identity");
			json_object_object_del(data, "line");
			json_object_object_del(data, "line_hex");
		}
		else if (json_object_object_get_ex(ev, "data", &data))
			json_object_object_del(ev, "data");	/* not an object: nothing to sort out */
		txt = json_object_to_json_string_length(ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
		if (txt)
		{
			out = xmalloc(n + 1);
			memcpy(out, txt, n + 1);
			*outlen = n;
		}
	}
	json_object_put(ev);
	return out;
}
