/*
 * stream_failover.c — the state file and the failover check (see
 * stream_failover.h).
 *
 * The state is a few "key value" lines, written to a temporary file,
 * fsynced and renamed over the old one (and the directory fsynced), so a
 * crash leaves the old state or the new one, never half of one. Only the
 * relay writes it; it is still read as untrusted input: a line that does
 * not parse makes the relay refuse to start rather than guess.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "lsn.h"
#include "stream_failover.h"

/* history rows from this long before the last confirmation count as maybe missed */
#define HISTORY_MARGIN_SECS 60

int
failover_load(const char *path, struct failover_state *fs, char *err, size_t errlen)
{
	FILE	   *f;
	char		line[256];
	int			lineno = 0;
	unsigned	seen = 0;

	memset(fs, 0, sizeof(*fs));
	f = fopen(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT)
			return 0;			/* the first start: nothing seen yet */
		snprintf(err, errlen, "cannot read --state-file %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
	{
		char		key[32],
					val[128],
					extra;
		unsigned long long n;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%31s %127s %c", key, val, &extra) != 2)
			goto bad;
		if (strcmp(key, "slot") == 0 && strlen(val) < sizeof(fs->slot))
		{
			strcpy(fs->slot, val);
			seen |= 1;
		}
		else if (strcmp(key, "system_id") == 0 && strlen(val) < sizeof(fs->system_id) &&
				 strspn(val, "0123456789") == strlen(val))
		{
			strcpy(fs->system_id, val);
			seen |= 2;
		}
		else if (strcmp(key, "timeline") == 0 && sscanf(val, "%llu%c", &n, &extra) == 1 &&
				 n > 0 && n <= UINT32_MAX)
		{
			fs->timeline = (uint32_t) n;
			seen |= 4;
		}
		else if (strcmp(key, "confirmed_lsn") == 0 && lsn_parse(val, &fs->confirmed) == 0)
			seen |= 8;
		else if (strcmp(key, "confirmed_at") == 0 && sscanf(val, "%llu%c", &n, &extra) == 1)
		{
			fs->confirmed_at = (int64_t) n;
			seen |= 16;
		}
		else
			goto bad;
	}
	fclose(f);
	if (seen != 31)
	{
		snprintf(err, errlen, "--state-file %s is incomplete (it needs slot, system_id, timeline, "
				 "confirmed_lsn and confirmed_at); it is written only by ordersyncd: restore it, "
				 "or move it away to start without what it recorded", path);
		return -1;
	}
	fs->known = true;
	return 0;
bad:
	fclose(f);
	snprintf(err, errlen, "--state-file %s: line %d is not \"key value\" with a known key and a "
			 "valid value; it is written only by ordersyncd: restore it, or move it away to "
			 "start without what it recorded", path, lineno);
	return -1;
}

int
failover_save(const char *path, const struct failover_state *fs, char *err, size_t errlen)
{
	char		tmp[PATH_MAX],
				dir[PATH_MAX],
				lsn[LSN_TEXT_MAX];
	char		text[512];
	int			fd,
				n;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
	{
		snprintf(err, errlen, "--state-file %s: path too long", path);
		return -1;
	}
	n = snprintf(text, sizeof(text),
				 "# ordersyncd state: the server and position it last confirmed (written by ordersyncd)\n"
				 "slot %s\nsystem_id %s\ntimeline %u\nconfirmed_lsn %s\nconfirmed_at %lld\n",
				 fs->slot, fs->system_id, fs->timeline, lsn_format(fs->confirmed, lsn),
				 (long long) fs->confirmed_at);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, text, (size_t) n) != n || fsync(fd) != 0)
	{
		snprintf(err, errlen, "cannot write --state-file %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0)
	{
		snprintf(err, errlen, "cannot rename %s to --state-file %s: %s", tmp, path, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
	{
		(void) fsync(fd);
		close(fd);
	}
	return 0;
}

int
failover_slot_position(PGconn *conn, const char *slot, uint64_t *lsn)
{
	char		sql[256];
	char	   *lit = PQescapeLiteral(conn, slot, strlen(slot));
	PGresult   *res;
	int			rc = -1;

	if (lit == NULL)
		return -1;
	snprintf(sql, sizeof(sql), "SELECT coalesce(confirmed_flush_lsn, '0/0') FROM "
			 "pg_catalog.pg_replication_slots WHERE slot_name = %s", lit);
	PQfreemem(lit);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		rc = PQntuples(res) == 1 ? 1 : 0;
		if (rc == 1 && lsn_parse(PQgetvalue(res, 0, 0), lsn) != 0)
			rc = -1;
	}
	else
		log_warning("could not look up replication slot \"%s\": %s", slot, PQresultErrorMessage(res));
	PQclear(res);
	return rc;
}

static const char *
utc(int64_t secs, char *buf, size_t len)
{
	time_t		t = (time_t) secs;
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
	return buf;
}

/* "this server is ..." — what changed, in one sentence */
static void
describe_change(const struct options *o, const struct failover_server *srv,
				const struct failover_state *saved, bool exists, char *out, size_t len)
{
	bool		same_system = strcmp(srv->system_id, saved->system_id) == 0;

	if (same_system && srv->timeline == saved->timeline)
		snprintf(out, len, "replication slot \"%s\" no longer exists on this server (system %s, "
				 "timeline %u, the one the relay last streamed from): it was dropped",
				 o->slot, srv->system_id, srv->timeline);
	else if (same_system)
		snprintf(out, len, "this server is on timeline %u of system %s, but the relay last streamed "
				 "from timeline %u: the primary failed over to a standby (or was restored from a "
				 "backup) and PostgreSQL 15 does not carry logical slots to a promoted standby, "
				 "so replication slot \"%s\" %s", srv->timeline, srv->system_id, saved->timeline,
				 o->slot, exists ? "was created here anew, after the failover" : "does not exist here");
	else
		snprintf(out, len, "this server is system %s (timeline %u), but the relay last streamed from "
				 "system %s (timeline %u): --dbname now reaches another database cluster (a new "
				 "primary, or one restored with pg_dump), and replication slot \"%s\" %s",
				 srv->system_id, srv->timeline, saved->system_id, saved->timeline, o->slot,
				 exists ? "was created here anew" : "does not exist here");
}

enum failover_rc
failover_check(PGconn *conn, const struct options *o, const struct failover_server *srv,
			   const struct failover_state *saved)
{
	uint64_t	slot_lsn = 0;
	int			exists;
	bool		same;
	char		what[768],
				l1[LSN_TEXT_MAX],
				l2[LSN_TEXT_MAX],
				when[32];

	if (!saved->known)
		return FAILOVER_OK;
	if (strcmp(saved->slot, o->slot) != 0)
	{
		log_warning("--state-file %s records slot \"%s\", not --slot \"%s\": starting without "
					"what it recorded (it is overwritten)", o->state_file, saved->slot, o->slot);
		return FAILOVER_OK;
	}
	exists = failover_slot_position(conn, o->slot, &slot_lsn);
	if (exists < 0)
		return FAILOVER_LOST;
	same = strcmp(srv->system_id, saved->system_id) == 0 && srv->timeline == saved->timeline;
	if (exists && same)
		return FAILOVER_OK;
	if (exists && slot_lsn <= saved->confirmed)
	{
		/* a slot that carried over (or was recreated early enough): nothing skipped */
		log_info("the server changed (system %s timeline %u, was system %s timeline %u), and "
				 "replication slot \"%s\" is at %s, not past the relay's last confirmation %s: "
				 "nothing was skipped", srv->system_id, srv->timeline, saved->system_id,
				 saved->timeline, o->slot, lsn_format(slot_lsn, l1), lsn_format(saved->confirmed, l2));
		return FAILOVER_OK;
	}
	describe_change(o, srv, saved, exists, what, sizeof(what));
	lsn_format(saved->confirmed, l1);
	utc(saved->confirmed_at, when, sizeof(when));
	if (o->create_slot)
	{
		log_warning("%s; the relay last confirmed %s (at %s, recorded in %s): --create-slot "
					"creates the slot where the server is now, and the gap report below says "
					"what was not relayed", what, l1, when, o->state_file);
		return FAILOVER_GAP;
	}
	log_error("%s.\nThe relay last confirmed %s (at %s, recorded in --state-file %s). A slot "
			  "created now starts at the server's current position, past every event committed "
			  "after %s that was never relayed, so the relay does not create one by itself.\n"
			  "HINT: rerun with --create-slot: the relay creates the slot and logs a gap report "
			  "(the LSN range and the ordersync.history rows that may have been missed) to "
			  "re-emit those events from; see doc/operations.md, \"Failover\"",
			  what, l1, when, o->state_file, l1);
	return FAILOVER_REFUSE;
}

/* Where the saved timeline ended on this server (TIMELINE_HISTORY), 0 if unknown. */
static uint64_t
switch_point(PGconn *conn, uint32_t current, uint32_t old)
{
	char		sql[64];
	PGresult   *res;
	uint64_t	lsn = 0;

	if (current <= 1 || old >= current)
		return 0;
	snprintf(sql, sizeof(sql), "TIMELINE_HISTORY %u", current);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= 2)
	{
		const char *p = PQgetvalue(res, 0, 1);

		/* lines "<timeline>\t<switch LSN>\t<reason>" */
		while (p && *p)
		{
			unsigned	tli;
			char		at[LSN_TEXT_MAX];

			if (sscanf(p, "%u\t%19[0-9A-Fa-f/]", &tli, at) == 2 && tli == old &&
				lsn_parse(at, &lsn) != 0)
				lsn = 0;
			if (lsn)
				break;
			p = strchr(p, '\n');
			if (p)
				p++;
		}
	}
	PQclear(res);
	return lsn;
}

void
failover_report_gap(PGconn *conn, const struct options *o, const struct failover_server *srv,
					const struct failover_state *saved)
{
	uint64_t	start = 0,
				sw;
	char		l1[LSN_TEXT_MAX],
				l2[LSN_TEXT_MAX],
				l3[LSN_TEXT_MAX],
				from[32],
				sql[512];
	PGresult   *res;

	if (failover_slot_position(conn, o->slot, &start) != 1)
		start = 0;
	lsn_format(saved->confirmed, l1);
	lsn_format(start, l2);
	log_warning("gap report: events committed after %s (the relay's last confirmation, system %s "
				"timeline %u) and before %s (where slot \"%s\" starts now, system %s timeline %u) "
				"were not relayed", l1, saved->system_id, saved->timeline, l2, o->slot,
				srv->system_id, srv->timeline);
	sw = strcmp(srv->system_id, saved->system_id) == 0 ?
		switch_point(conn, srv->timeline, saved->timeline) : 0;
	if (sw)
	{
		lsn_format(sw, l3);
		if (sw < saved->confirmed)
			log_warning("gap report: timeline %u ended at %s on this server, before the relay's "
						"last confirmation %s: events the relay delivered from %s to %s belong to "
						"transactions of the old primary that never reached this one",
						saved->timeline, l3, l1, l3, l1);
		else
			log_warning("gap report: timeline %u ended at %s on this server: %s..%s is on this "
						"server but was never relayed; what the old primary committed after %s "
						"never reached this server", saved->timeline, l3, l1, l3, l3);
	}
	/* ordersync.history rows of that time: the ones to re-emit events from */
	utc(saved->confirmed_at - HISTORY_MARGIN_SECS, from, sizeof(from));
	snprintf(sql, sizeof(sql),
			 "SELECT count(*), min(id), max(id), min(at), max(at) FROM ordersync.history "
			 "WHERE at >= '%s'", from);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
	{
		if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
			log_warning("gap report: ordersync.history has no rows from %s on (%d s before the "
						"last confirmation): no order or stock change was missed", from,
						HISTORY_MARGIN_SECS);
		else
			log_warning("gap report: ordersync.history rows that may have been missed: %s rows, "
						"ids %s..%s (at %s .. %s); list them with\n    SELECT * FROM ordersync.history "
						"WHERE id BETWEEN %s AND %s ORDER BY id", PQgetvalue(res, 0, 0),
						PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
						PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	}
	else
		log_warning("gap report: could not read ordersync.history (%s); as a superuser run\n    %s",
					PQresultErrorMessage(res), sql);
	PQclear(res);
}
