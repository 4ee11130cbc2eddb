/*
 * unit.h — shared includes for the cmocka unit tests of ordersyncd's pure
 * parts; each test_*.c file exposes one group runner.
 */
#ifndef ORDERSYNCD_UNIT_H
#define ORDERSYNCD_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

int group_lsn(void);
int group_backoff(void);
int group_ts(void);
int group_w2j(void);
int group_envelope(void);
int group_sink(void);
int group_relay(void);
int group_pgerr(void);
int group_webhook_sign(void);
int group_delivery(void);
int group_policy(void);
int group_control(void);
int group_nats(void);
int group_state(void);

#endif
