/*
 * stream_standby.c — wait while another relay holds the slot (see
 * stream_standby.h).
 *
 * The question goes over the replication connection the session already
 * has (replication=database connections run SQL), so a standby costs the
 * server one idle walsender and a catalog read per poll, not a new
 * connection per poll.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "stream_standby.h"
#include "ts.h"

int
standby_slot_holder(PGconn *conn, const char *slot)
{
	char		sql[256];
	char	   *lit;
	PGresult   *res;
	int			pid = -1;

	/* a replication connection takes only simple queries: no parameters */
	lit = PQescapeLiteral(conn, slot, strlen(slot));
	if (lit == NULL)
		return -1;
	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(active_pid, 0) FROM pg_catalog.pg_replication_slots "
			 "WHERE slot_name = %s", lit);
	PQfreemem(lit);
	res = PQexec(conn, sql);
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
		pid = PQntuples(res) == 1 ? atoi(PQgetvalue(res, 0, 0)) : 0;
	else
		log_warning("could not ask whether replication slot \"%s\" is in use: %s", slot,
					PQresultErrorMessage(res));
	PQclear(res);
	return pid;
}

/* Sleep up to ms, waking early when the self-pipe has something. */
static void
nap(int ms, int wake_fd)
{
	struct pollfd pfd = {.fd = wake_fd, .events = POLLIN};
	char		drain[64];

	if (wake_fd < 0)
	{
		usleep((useconds_t) ms * 1000);
		return;
	}
	if (poll(&pfd, 1, ms) > 0)
		while (read(wake_fd, drain, sizeof(drain)) > 0)
			;
}

enum standby_rc
standby_wait(PGconn *conn, const char *slot, int poll_ms, int wake_fd,
			 volatile const sig_atomic_t *stop)
{
	int			pid = standby_slot_holder(conn, slot);
	int			holder = pid;
	int64_t		since;

	if (pid == 0)
		return STANDBY_FREE;
	if (pid < 0)
		return STANDBY_LOST;
	since = ts_mono_usec();
	log_info("standing by: replication slot \"%s\" is in use by PID %d on the server (another "
			 "ordersyncd, or pg_recvlogical); this relay takes over within %d ms of the slot "
			 "being released", slot, pid, poll_ms);
	metrics_set_standby(pid);
	while (!*stop)
	{
		nap(poll_ms, wake_fd);
		if (*stop)
			break;
		pid = standby_slot_holder(conn, slot);
		if (pid < 0 || PQstatus(conn) != CONNECTION_OK)
		{
			metrics_set_standby(0);
			return STANDBY_LOST;
		}
		if (pid == 0)
		{
			log_info("replication slot \"%s\" was released by PID %d after %.1f s standing by: "
					 "taking over", slot, holder, (double) (ts_mono_usec() - since) / 1e6);
			metrics_set_standby(0);
			return STANDBY_FREE;
		}
		if (pid != holder)
		{
			log_info("standing by: replication slot \"%s\" is now in use by PID %d", slot, pid);
			holder = pid;
			metrics_set_standby(pid);
		}
	}
	metrics_set_standby(0);
	return STANDBY_STOP;
}
