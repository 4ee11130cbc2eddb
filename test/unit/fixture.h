/*
 * fixture.h — a relay writing to one file sink in a fresh temporary
 * directory, for the unit tests that feed it wal2json lines
 * (test_relay.c, test_control.c). One at a time: the tests run serially.
 */
#ifndef ORDERSYNCD_UNIT_FIXTURE_H
#define ORDERSYNCD_UNIT_FIXTURE_H

#include "relay.h"

/* wal2json begin and commit lines */
#define B(xid, lsn, next) "{\"action\":\"B\",\"xid\":" #xid ",\"timestamp\":\"2026-11-24 07:00:00.5+00\",\"lsn\":\"" lsn "\",\"nextlsn\":\"" next "\"}"
#define C(xid, lsn, next) "{\"action\":\"C\",\"xid\":" #xid ",\"timestamp\":\"2026-11-24 07:00:00.5+00\",\"lsn\":\"" lsn "\",\"nextlsn\":\"" next "\"}"

extern struct relay R;			/* the relay under test */

/* Open the file sink and R with cfg (logging off). 0 or -1. */
int fixture_open(const struct relay_config *cfg);

/* Free R and the sink, remove the directory. 0 or -1. */
int fixture_close(void);

/* Feed one line at LSN 0/10. */
int fixture_feed(const char *line);

/* Lines of the file sink containing needle (all lines for NULL); -1 on error. */
int fixture_count_lines(const char *needle);

#endif
