/*
 * relay.c — the transaction state machine between wal2json and the sinks
 * (see relay.h).
 *
 * Events are appended to the sinks as they arrive, so a transaction of a
 * million rows streams through with bounded memory; the commit only moves
 * received_end, and only relay_sync() moves durable_end.
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

/*
 * The least time between the starts of two background syncs. A relay that
 * reads faster than the server decodes finds the socket empty thousands of
 * times a second; syncing at every such pause meant over a thousand
 * fdatasync calls, syncer wake-ups and status updates a second, a third of
 * the relay's CPU in `make bench` (bench/relay). Waiting for this gap costs
 * a pause at most 2 ms of latency.
 */
#define SYNC_MIN_GAP_USEC 2000

int
relay_init(struct relay *r, const struct relay_config *cfg, struct sink *sinks, int nsinks)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->sinks = sinks;
	r->nsinks = nsinks;
	buf_init(&r->ev);
	if (w2j_parser_init(&r->parser) != 0)
		return -1;
	r->ctok = json_tokener_new();
	if (r->ctok == NULL)
		return -1;
	json_tokener_set_flags(r->ctok, JSON_TOKENER_VALIDATE_UTF8);
	content_parser_init(&r->content);
	if (syncer_init(&r->syncer) != 0)
		return -1;
	deliver_init(&r->dl, cfg->conninfo, cfg->max_pending_bytes, cfg->sink_policy);
	return 0;
}

/* durable_end = the lower of what the files and the delivery sinks have. */
static bool
update_durable(struct relay *r, int64_t commit_usec, int64_t now)
{
	uint64_t	end = r->files_end < r->dl.done_end ? r->files_end : r->dl.done_end;

	if (end <= r->durable_end)
		return false;
	r->durable_end = end;
	r->durable_commit_usec = commit_usec;
	metrics_set_confirmed(end, commit_usec > 0 ? (double) (now - commit_usec) / 1e6 : -1);
	return true;
}

bool
relay_delivery_progress(struct relay *r)
{
	/* the lag is that of the last transaction every delivery sink has finished */
	return update_durable(r, r->dl.done_commit_usec, now_usec());
}

void
relay_free(struct relay *r)
{
	/* finishes a flush in flight before the sinks can be closed */
	syncer_stop(&r->syncer);
	deliver_free(&r->dl);
	w2j_parser_free(&r->parser);
	if (r->ctok)
	{
		json_tokener_free(r->ctok);
		content_parser_free(&r->content);
	}
	r->ctok = NULL;
	buf_free(&r->ev);
}

/* The envelope in r->ev (n bytes, a line) goes to every sink that wants it. */
static int
emit_built(struct relay *r, const struct txn_info *txn, uint32_t ordinal,
		   const char *type_suffix, const char *subject, size_t n)
{
	for (int i = 0; i < r->nsinks; i++)
	{
		if (sink_append(&r->sinks[i], r->ev.data, n, r->errmsg, sizeof(r->errmsg)) != 0)
			return RELAY_SINK_ERROR;
		metrics_event(i, type_suffix, n);
	}
	r->unsynced = true;
	if (deliver_has_sinks(&r->dl))
	{
		char		id[ENVELOPE_ID_MAX];

		envelope_format_id(txn, ordinal, id);
		deliver_event(&r->dl, txn->end_lsn, txn->commit_usec, id, type_suffix, subject,
					  r->ev.data, n > 0 && r->ev.data[n - 1] == '\n' ? n - 1 : n);
	}
	return RELAY_OK;
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
		for (int i = 0; rc == RELAY_OK && i < r->nsinks; i++)
			sink_mark_commit(&r->sinks[i]);
		deliver_commit(&r->dl, 0, t.commit_usec);
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
	for (int i = 0; i < r->nsinks; i++)
		sink_mark_commit(&r->sinks[i]);
	deliver_commit(&r->dl, r->txn.end_lsn, r->txn.commit_usec);
	if (r->txn.end_lsn > r->received_end)
		r->received_end = r->txn.end_lsn;
	r->last_commit_usec = r->txn.commit_usec;
	r->unsynced_txns++;
	r->unsynced = true;
	if (r->ordinal > 0)
	{
		/* remember commit times for the latency histogram */
		if (r->npending < RELAY_MAX_PENDING_TXNS)
			r->pending[r->npending++] = (struct pending_txn) {r->txn.commit_usec, r->ordinal};
		else
			r->pending[r->npending - 1].events += r->ordinal;
	}
	return RELAY_OK;
}

/*
 * A message with ordersync's prefix that ordersync never writes: nothing in
 * the stream can steer the relay (its configuration comes from row changes
 * of its tables, see deliver.h), so a "relay.*" type is somebody else's
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
	deliver_control_row(&r->dl, rec->table, rec->action, rec->root, r->txn.end_lsn,
						r->txn.commit_usec, where);
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
			if (deliver_is_control_table(rec.schema, rec.table))
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
	for (int i = 0; i < r->nsinks; i++)
		sink_mark_commit(&r->sinks[i]);
	deliver_commit(&r->dl, end_lsn, now_usec());
	if (end_lsn > r->received_end)
		r->received_end = end_lsn;
	r->unsynced_txns++;
	r->unsynced = true;
}

bool
relay_needs_sync(const struct relay *r)
{
	/* only commits (or standalone dead letters) make a sync worth its fsync */
	return r->unsynced_txns > 0 || (r->unsynced && !r->in_txn);
}

size_t
relay_queued(const struct relay *r)
{
	size_t		n = 0;

	for (int i = 0; i < r->nsinks; i++)
		n += sink_pending(&r->sinks[i]);
	return n;
}

/* A batch is durable at done_usec: account for it and move durable_end. */
static void
finish_batch(struct relay *r, uint64_t end, int64_t done_usec,
			 const struct pending_txn *txns, int ntxns, uint64_t ntx, int64_t last_commit)
{
	metrics_fsync();
	for (int i = 0; i < ntxns; i++)
		metrics_observe_latency((double) (done_usec - txns[i].commit_usec) / 1e6, txns[i].events);
	if (ntx)
		metrics_transactions(ntx);
	if (end > r->files_end)
		r->files_end = end;
	update_durable(r, last_commit, done_usec);
}

bool
relay_sync_due(struct relay *r)
{
	return relay_sync_wait_ms(r) == 0;
}

int
relay_sync_wait_ms(struct relay *r)
{
	int64_t		left;

	/* a sync in flight wakes the loop through relay_sync_fd when it ends */
	if (!relay_needs_sync(r) || syncer_busy(&r->syncer))
		return -1;
	left = r->sync_started_usec + SYNC_MIN_GAP_USEC - ts_mono_usec();
	return left <= 0 ? 0 : (int) ((left + 999) / 1000);
}

int
relay_sync_fd(const struct relay *r)
{
	return syncer_fd(&r->syncer);
}

int
relay_sync_start(struct relay *r)
{
	int			fds[SYNCER_MAX_FDS];
	int			nfds = 0;

	for (int i = 0; i < r->nsinks; i++)
	{
		int			fd;

		if (sink_prepare_sync(&r->sinks[i], &fd, r->errmsg, sizeof(r->errmsg)) != 0)
			return RELAY_SINK_ERROR;
		if (fd >= 0 && nfds < SYNCER_MAX_FDS)
			fds[nfds++] = fd;
	}
	/* the batch: every commit received so far */
	memcpy(r->inflight, r->pending, sizeof(r->pending[0]) * (size_t) r->npending);
	r->ninflight = r->npending;
	r->inflight_txns = r->unsynced_txns;
	r->inflight_commit_usec = r->last_commit_usec;
	r->npending = 0;
	r->unsynced_txns = 0;
	r->unsynced = false;
	syncer_submit(&r->syncer, fds, nfds, r->received_end);
	r->sync_started_usec = ts_mono_usec();
	return RELAY_OK;
}

int
relay_sync_poll(struct relay *r, bool *advanced)
{
	uint64_t	end;
	int			err,
				idx;
	int64_t		done_usec;
	uint64_t	before = r->durable_end;

	*advanced = false;
	if (!syncer_poll(&r->syncer, &end, &err, &idx, &done_usec))
		return RELAY_OK;
	if (err != 0)
	{
		/* map the failed fd back to its sink for the message */
		for (int i = 0; i < r->nsinks; i++)
			if (r->sinks[i].fd == r->syncer.fds[idx])
				sink_sync_error(&r->sinks[i], err, r->errmsg, sizeof(r->errmsg));
		return RELAY_SINK_ERROR;
	}
	finish_batch(r, end, done_usec, r->inflight, r->ninflight, r->inflight_txns,
				 r->inflight_commit_usec);
	r->ninflight = 0;
	*advanced = r->durable_end > before;
	return RELAY_OK;
}

int
relay_sync(struct relay *r)
{
	bool		advanced;

	/* a batch in flight first, so durable_end only ever moves forward */
	syncer_wait(&r->syncer);
	if (relay_sync_poll(r, &advanced) != RELAY_OK)
		return RELAY_SINK_ERROR;
	if (!r->unsynced)
		return RELAY_OK;
	if (relay_sync_start(r) != RELAY_OK)
		return RELAY_SINK_ERROR;
	syncer_wait(&r->syncer);
	return relay_sync_poll(r, &advanced);
}

bool
relay_idle_advance(struct relay *r, uint64_t wal_end)
{
	if (r->in_txn || r->unsynced || r->received_end != r->durable_end ||
		wal_end <= r->durable_end || !deliver_idle(&r->dl))
		return false;
	r->received_end = r->durable_end = r->files_end = wal_end;
	if (wal_end > r->dl.done_end)
		r->dl.done_end = wal_end;
	metrics_set_confirmed(wal_end, -1);
	return true;
}

int
relay_abort_txn(struct relay *r)
{
	r->in_txn = false;
	r->skipping = false;
	r->ordinal = 0;
	deliver_abort(&r->dl);
	for (int i = 0; i < r->nsinks; i++)
		if (sink_rewind(&r->sinks[i], r->errmsg, sizeof(r->errmsg)) != 0)
			return RELAY_SINK_ERROR;
	return RELAY_OK;
}
