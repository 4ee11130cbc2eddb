/*
 * test_backoff.c — reconnect delays grow, stay capped, are jittered within
 * [step/2, step], and restart from the bottom after a success.
 */
#include "unit.h"
#include "backoff.h"

static void
backoff_grows_then_caps(void **state)
{
	struct backoff b;
	uint32_t	expect_step[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};

	(void) state;
	backoff_init(&b, 100, 5000);
	for (size_t i = 0; i < sizeof(expect_step) / sizeof(expect_step[0]); i++)
	{
		/* rnd = UINT32_MAX - 0 still lands inside [step/2, step] */
		uint32_t	d = backoff_next(&b, 0);

		assert_int_equal(d, expect_step[i] / 2);
	}
}

static void
backoff_jitter_stays_in_range(void **state)
{
	(void) state;
	for (uint32_t rnd = 0; rnd < 100000; rnd += 7919)
	{
		struct backoff b;

		backoff_init(&b, 200, 30000);
		for (int i = 0; i < 20; i++)
		{
			uint32_t	step = 200;
			uint32_t	d;

			for (int k = 0; k < i && step < 30000; k++)
				step *= 2;
			if (step > 30000)
				step = 30000;
			d = backoff_next(&b, rnd * 2654435761u);
			assert_in_range(d, step / 2, step);
		}
	}
}

static void
backoff_max_random_hits_the_step(void **state)
{
	struct backoff b;

	(void) state;
	backoff_init(&b, 100, 1000);
	/* rnd % 51 == 50 gives exactly step */
	assert_int_equal(backoff_next(&b, 50), 100);
}

static void
backoff_reset_restarts(void **state)
{
	struct backoff b;

	(void) state;
	backoff_init(&b, 100, 10000);
	for (int i = 0; i < 10; i++)
		(void) backoff_next(&b, 0);
	backoff_reset(&b);
	assert_int_equal(backoff_next(&b, 0), 50);
}

static void
backoff_survives_many_attempts(void **state)
{
	struct backoff b;

	(void) state;
	backoff_init(&b, 1, UINT32_MAX);
	for (int i = 0; i < 200; i++)
		assert_true(backoff_next(&b, 12345) <= UINT32_MAX);	/* no overflow trap, no hang */
	assert_in_range(backoff_next(&b, 0), UINT32_MAX / 2, UINT32_MAX);
	backoff_init(&b, 0, 0);		/* degenerate config is clamped, not a division by zero */
	assert_in_range(backoff_next(&b, 99), 0, 1);
}

int
group_backoff(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(backoff_grows_then_caps),
		cmocka_unit_test(backoff_jitter_stays_in_range),
		cmocka_unit_test(backoff_max_random_hits_the_step),
		cmocka_unit_test(backoff_reset_restarts),
		cmocka_unit_test(backoff_survives_many_attempts),
	};

	return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
