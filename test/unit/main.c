/*
 * main.c — run every unit test group; the exit status is the number of
 * failed tests (0 = all passed). run.sh turns the TAP output into
 * PASS:/FAIL: lines.
 */
#include "unit.h"

int
main(void)
{
	int			failed = 0;

	failed += group_lsn();
	failed += group_backoff();
	failed += group_ts();
	failed += group_w2j();
	failed += group_envelope();
	failed += group_sink();
	failed += group_relay();
	failed += group_pgerr();
	failed += group_webhook_sign();
	failed += group_delivery();
	failed += group_policy();
	failed += group_control();
	failed += group_nats();
	failed += group_state();
	return failed > 255 ? 255 : failed;
}
