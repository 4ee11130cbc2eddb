/*
 * relay.c — the transaction state machine between wal2json and the
 * delivery core (see relay.h).
 *
 * Events go to the sinks as they arrive, so a transaction of a million rows
 * streams through with bounded memory; the commit only moves received_end,
 * and only the delivery core's watermark moves durable_end.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "relay.h"
#include "ts.h"

static int64_t
now_usec(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

int
relay_init(struct relay *r, const struct relay_config *cfg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	buf_init(&r->ev);
	delivery_init(&r->dl, cfg->conninfo, cfg->max_pending_bytes, cfg->sink_policy);
	if (w2j_parser_init(&r->parser) != 0)
		return -1;
	r->ctok = json_tokener_new();
	if (r->ctok == NULL)
		return -1;
	json_tokener_set_flags(r->ctok, JSON_TOKENER_VALIDATE_UTF8);
	content_parser_init(&r->content);
	return 0;
}

void
relay_free(struct relay *r)
{
	delivery_free(&r->dl);
	w2j_parser_free(&r->parser);
	if (r->ctok)
	{
		json_tokener_free(r->ctok);
		content_parser_free(&r->content);
	}
	r->ctok = NULL;
	buf_free(&r->ev);
}

/* A sink failed for good: say why, for the caller to log and stop. */
static int
stopped_by_sink(struct relay *r)
{
	snprintf(r->errmsg, sizeof(r->errmsg), "%s", delivery_fatal(&r->dl));
	return RELAY_SINK_ERROR;
}

/* Remember a commit until it is durable (latency histogram, transactions). */
static void
remember_commit(struct relay *r, uint64_t end_lsn, int64_t commit_usec, uint32_t events)
{
	struct relay_commit *c;

	if (r->npending == RELAY_MAX_PENDING_TXNS)
	{
		/* full (a sink far behind): the newest entry stands for more */
		c = &r->pending[(r->pending_head + r->npending - 1) % RELAY_MAX_PENDING_TXNS];
		c->end_lsn = end_lsn;
		c->commit_usec = commit_usec;
		c->events += events;
		c->txns++;
		return;
	}
	c = &r->pending[(r->pending_head + r->npending++) % RELAY_MAX_PENDING_TXNS];
	*c = (struct relay_commit) {end_lsn, commit_usec, events, 1};
}

int
relay_progress(struct relay *r, bool *advanced)
{
	uint64_t	w;
	int64_t		now,
				last_commit = -1;
	uint64_t	txns = 0;

	*advanced = false;
	delivery_tick(&r->dl);
	if (delivery_fatal(&r->dl))
		return stopped_by_sink(r);
	w = delivery_watermark(&r->dl);
	if (w <= r->durable_end)
		return RELAY_OK;
	r->durable_end = w;
	*advanced = true;
	now = now_usec();
	while (r->npending > 0 && r->pending[r->pending_head].end_lsn <= w)
	{
		struct relay_commit *c = &r->pending[r->pending_head];

		if (c->events > 0)
			metrics_observe_latency((double) (now - c->commit_usec) / 1e6, c->events);
		txns += c->txns;
		last_commit = c->commit_usec;
		r->pending_head = (r->pending_head + 1) % RELAY_MAX_PENDING_TXNS;
		r->npending--;
	}
	if (txns)
		metrics_transactions(txns);
	/* the lag is that of the last transaction every sink has finished */
	metrics_set_confirmed(w, last_commit > 0 ? (double) (now - last_commit) / 1e6 : -1);
	return RELAY_OK;
}

/* The envelope in r->ev (n bytes, a line) goes to every sink that wants it. */
static int
emit_built(struct relay *r, const struct txn_info *txn, uint32_t ordinal,
		   const char *type_suffix, const char *subject, size_t n)
{
	char		id[ENVELOPE_ID_MAX] = "";

	/* files do not need it: the id is formatted only for sinks that send it apart */
	if (delivery_has_remote_sinks(&r->dl))
		envelope_format_id(txn, ordinal, id);
	delivery_event(&r->dl, txn->end_lsn, id, type_suffix, subject, r->ev.data,
				   n > 0 && r->ev.data[n - 1] == '\n' ? n - 1 : n);
	r->unsynced = true;
	return delivery_fatal(&r->dl) ? stopped_by_sink(r) : RELAY_OK;
}

int
relay_emit(struct relay *r, const struct txn_info *txn, uint32_t ordinal,
		   const char *type_suffix, const char *subject, json_object *data)
{
	buf_reset(&r->ev);
	return emit_built(r, txn, ordinal, type_suffix, subject,
					  envelope_build(&r->ev, r->cfg.source, txn, ordinal, type_suffix, subject, data));
}

/* Every bad line ends here: logged with its LSN, then stop or dead-letter. */
static int
bad_input(struct relay *r, uint64_t lsn, const char *reason, const char *raw, size_t len)
{
	char		l1[LSN_TEXT_MAX],
				l2[LSN_TEXT_MAX];
	json_object *data;
	int			rc;

	metrics_invalid();
	if (r->in_txn)
		snprintf(r->errmsg, sizeof(r->errmsg),
				 "bad input at LSN %s in transaction %lld (commit LSN %s): %s",
				 lsn_format(lsn, l1), (long long) r->txn.xid,
				 lsn_format(r->txn.commit_lsn, l2), reason);
	else
		snprintf(r->errmsg, sizeof(r->errmsg), "bad input at LSN %s outside a transaction: %s",
				 lsn_format(lsn, l1), reason);
	log_error("%s; line (%zu bytes): %.*s%s", r->errmsg, len, (int) (len > 300 ? 300 : len), raw,
			  len > 300 ? "..." : "");
	if (r->cfg.stop_on_bad_input)
		return RELAY_BAD_INPUT;

	data = envelope_invalid_data(reason, lsn, raw, len);
	if (r->in_txn)
		rc = relay_emit(r, &r->txn, ++r->ordinal, "relay.invalid", "relay/invalid", data);
	else
	{
		/* outside a transaction: name it by its own LSN, ordinal 0 */
		struct txn_info t = {.xid = 0, .commit_lsn = lsn, .end_lsn = lsn};

		t.commit_usec = now_usec();
		ts_format_usec(t.commit_usec, t.time);
		rc = relay_emit(r, &t, 0, "relay.invalid", "relay/invalid", data);
		if (rc == RELAY_OK)
			delivery_commit(&r->dl, 0);
	}
	json_object_put(data);
	log_error("the line was written to the sinks as an ordersync.relay.invalid event "
			  "(--bad-input=dead-letter); fix the producer of this message");
	return rc;
}

static int
protocol_error(struct relay *r, uint64_t lsn, const char *what)
{
	char		l[LSN_TEXT_MAX];

	snprintf(r->errmsg, sizeof(r->errmsg),
			 "unexpected stream at LSN %s: %s; nothing after the last confirmed "
			 "transaction was acknowledged, restart ordersyncd to read it again",
			 lsn_format(lsn, l), what);
	return RELAY_PROTOCOL_ERROR;
}

static const char *
row_verb(char action)
{
	switch (action)
	{
		case 'I':
			return "insert";
		case 'U':
			return "update";
		case 'D':
			return "delete";
		default:
			return "truncate";
	}
}

static int
on_begin(struct relay *r, const struct w2j_rec *rec, uint64_t lsn)
{
	char		what[160];

	if (r->in_txn)
	{
		snprintf(what, sizeof(what), "begin of transaction %lld while transaction %lld is open",
				 (long long) rec->xid, (long long) r->txn.xid);
		return protocol_error(r, lsn, what);
	}
	memset(&r->txn, 0, sizeof(r->txn));
	r->txn.xid = rec->xid;
	r->txn.commit_lsn = rec->lsn;
	r->txn.end_lsn = rec->nextlsn;
	if (ts_to_rfc3339(rec->timestamp, strlen(rec->timestamp), r->txn.time,
					  &r->txn.commit_usec) != 0)
	{
		snprintf(what, sizeof(what), "begin of transaction %lld has an unreadable timestamp \"%.40s\"",
				 (long long) rec->xid, rec->timestamp);
		return protocol_error(r, lsn, what);
	}
	r->in_txn = true;
	r->ordinal = 0;
	/*
	 * After a reconnect the server starts at durable_end, but everything up
	 * to received_end is already with the sinks (in memory, on its way):
	 * taking it again would only send duplicates.
	 */
	r->skipping = r->txn.end_lsn <= r->received_end;
	if (r->skipping)
		log_debug("skipping transaction %lld: its events are already with the sinks",
				  (long long) r->txn.xid);
	/*
	 * --endpos: a transaction committed after it is the next run's, as
	 * pg_recvlogical leaves records past its --endpos. Handing it to the
	 * sinks would deliver what is never confirmed, and the next run would
	 * deliver it again.
	 */
	if (r->cfg.endpos && r->txn.commit_lsn > r->cfg.endpos)
	{
		r->skipping = true;
		r->past_endpos = true;
	}
	return RELAY_OK;
}

static int
on_commit(struct relay *r, const struct w2j_rec *rec, uint64_t lsn)
{
	char		what[160];

	if (!r->in_txn || rec->xid != r->txn.xid)
	{
		snprintf(what, sizeof(what), "commit of transaction %lld without its begin",
				 (long long) rec->xid);
		return protocol_error(r, lsn, what);
	}
	r->in_txn = false;
	if (r->skipping)
	{
		r->skipping = false;
		return RELAY_OK;
	}
	delivery_commit(&r->dl, r->txn.end_lsn);
	if (r->txn.end_lsn > r->received_end)
		r->received_end = r->txn.end_lsn;
	r->unsynced_txns++;
	r->unsynced = true;
	remember_commit(r, r->txn.end_lsn, r->txn.commit_usec, r->ordinal);
	return delivery_fatal(&r->dl) ? stopped_by_sink(r) : RELAY_OK;
}

/*
 * A message with ordersync's prefix that ordersync never writes: nothing in
 * the stream can steer the relay (its configuration comes from row changes
 * of its tables, see delivery.h), so a "relay.*" type is somebody else's
 * forgery, kept as a relay.invalid event like any bad input and counted.
 */
static bool
forged_type(const char *type)
{
	return strncmp(type, "relay.", 6) == 0;
}

/* A row change of ordersync.sink/route/redelivery: steers, is never an event. */
static void
control_row(struct relay *r, const struct w2j_rec *rec, uint64_t lsn)
{
	char		where[160];
	char		l1[LSN_TEXT_MAX];

	snprintf(where, sizeof(where), "%s of ordersync.%s at LSN %s in transaction %lld",
			 row_verb(rec->action), rec->table, lsn_format(lsn, l1), (long long) r->txn.xid);
	delivery_control_row(&r->dl, rec->table, rec->action, rec->root, r->txn.end_lsn, where);
}

int
relay_line(struct relay *r, uint64_t data_start, const char *line, size_t len)
{
	struct w2j_rec rec;
	struct event_content c;
	char		err[256];
	int			rc = RELAY_OK;

	if (w2j_parse(&r->parser, line, len, &rec, err, sizeof(err)) != 0)
	{
		if (r->skipping)
			return RELAY_OK;	/* reported when it first came */
		return bad_input(r, data_start, err, line, len);
	}
	if (r->skipping && rec.action != 'C')
	{
		w2j_rec_free(&rec);
		return RELAY_OK;
	}

	switch (rec.action)
	{
		case 'B':
			rc = on_begin(r, &rec, data_start);
			break;
		case 'C':
			rc = on_commit(r, &rec, data_start);
			break;
		case 'M':
			if (!rec.transactional)
			{
				metrics_forged();
				rc = bad_input(r, data_start, "non-transactional message (ordersync emits "
							   "transactional messages only: pg_logical_emit_message(true, ...))",
							   line, len);
				break;
			}
			if (!r->in_txn)
			{
				rc = protocol_error(r, data_start, "transactional message outside a transaction");
				break;
			}
			if (strcmp(rec.prefix, r->cfg.prefix) != 0)
			{
				snprintf(err, sizeof(err), "message with unexpected prefix \"%.60s\"", rec.prefix);
				rc = bad_input(r, data_start, err, line, len);
				break;
			}
			if (content_parse(&r->content, rec.content, rec.content_len, &c, err, sizeof(err)) != 0)
			{
				rc = bad_input(r, data_start, err, line, len);
				break;
			}
			if (forged_type(c.type))
			{
				snprintf(err, sizeof(err), "a \"%.40s\" message: ordersync never writes one, and "
						 "sinks and redeliveries are read from the rows of ordersync.sink, .route "
						 "and .redelivery; someone who may execute pg_logical_emit_message forged it",
						 c.type);
				metrics_forged();
				rc = bad_input(r, data_start, err, line, len);
				break;
			}
			/* the hot path: data goes from the content text to the line as written */
			buf_reset(&r->ev);
			++r->ordinal;
			rc = emit_built(r, &r->txn, r->ordinal, c.type, c.subject,
							envelope_build_text(&r->ev, r->cfg.source, &r->txn, r->ordinal,
												c.type, c.subject, c.data, c.data_len));
			break;
		default:				/* I, U, D, T */
			if (!r->in_txn)
			{
				rc = protocol_error(r, data_start, "row change outside a transaction");
				break;
			}
			if (delivery_is_control_table(rec.schema, rec.table))
			{
				control_row(r, &rec, data_start);
				break;
			}
			if (!r->cfg.raw_changes)
			{
				/* add-tables names the control tables only: any other row is unexpected */
				rc = bad_input(r, data_start, "row change of a table that was not requested "
							   "(without --raw-changes only ordersync.sink, .route and "
							   ".redelivery are read)", line, len);
				break;
			}
			else
			{
				char		type[200];
				char		subject[300];
				json_object *data = envelope_row_data(rec.root);

				snprintf(type, sizeof(type), "row.%.80s.%s", rec.table, row_verb(rec.action));
				snprintf(subject, sizeof(subject), "table/%.120s.%.120s", rec.schema, rec.table);
				rc = relay_emit(r, &r->txn, ++r->ordinal, type, subject, data);
				json_object_put(data);
			}
			break;
	}
	w2j_rec_free(&rec);
	return rc;
}

void
relay_commit_external(struct relay *r, uint64_t end_lsn)
{
	delivery_commit(&r->dl, end_lsn);
	if (end_lsn > r->received_end)
		r->received_end = end_lsn;
	r->unsynced_txns++;
	r->unsynced = true;
	remember_commit(r, end_lsn, now_usec(), 0);
}

bool
relay_needs_sync(const struct relay *r)
{
	/* only commits (or standalone dead letters) make a sync worth its fsync */
	return r->unsynced_txns > 0 || (r->unsynced && !r->in_txn);
}

int
relay_flush(struct relay *r)
{
	r->unsynced_txns = 0;
	r->unsynced = false;
	delivery_flush(&r->dl);
	return delivery_fatal(&r->dl) ? stopped_by_sink(r) : RELAY_OK;
}

int
relay_sync(struct relay *r)
{
	bool		advanced;

	r->unsynced_txns = 0;
	r->unsynced = false;
	if (delivery_sync(&r->dl) != 0)
		return stopped_by_sink(r);
	return relay_progress(r, &advanced);
}

bool
relay_idle_advance(struct relay *r, uint64_t wal_end)
{
	if (r->in_txn || r->unsynced || r->received_end != r->durable_end ||
		wal_end <= r->durable_end || !delivery_idle_advance(&r->dl, wal_end))
		return false;
	r->received_end = r->durable_end = wal_end;
	metrics_set_confirmed(wal_end, -1);
	return true;
}

int
relay_abort_txn(struct relay *r)
{
	r->in_txn = false;
	r->skipping = false;
	r->ordinal = 0;
	delivery_abort(&r->dl);
	return delivery_fatal(&r->dl) ? stopped_by_sink(r) : RELAY_OK;
}
