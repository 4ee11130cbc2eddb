/*
 * test_sink.c — the file sink: crash leftovers trimmed on open, rewind to
 * the last whole transaction, and errors that say what to fix.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "sink.h"
#include "log.h"

static char dir[64];

static int
setup(void **state)
{
	(void) state;
	log_threshold = LOG_ERROR;	/* the trim warning is expected here */
	strcpy(dir, "/tmp/ordersyncd-unit-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char		cmd[128];

	(void) state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *
slurp(const char *path)
{
	static char data[4096];
	FILE	   *f = fopen(path, "r");
	size_t		n;

	if (!f)
		return NULL;
	n = fread(data, 1, sizeof(data) - 1, f);
	data[n] = '\0';
	fclose(f);
	return data;
}

static void
write_file(const char *path, const char *text)
{
	FILE	   *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void
sink_trims_partial_last_line(void **state)
{
	char		path[128],
				spec[140],
				err[512];
	struct sink s;

	(void) state;
	snprintf(path, sizeof(path), "%s/a.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	write_file(path, "{\"a\":1}\n{\"b\":2}\n{\"c\":");
	assert_int_equal(sink_open(&s, spec, err, sizeof(err)), 0);
	assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n");
	assert_int_equal(sink_append(&s, "{\"d\":4}\n", 8, err, sizeof(err)), 0);
	assert_int_equal(sink_sync(&s, err, sizeof(err)), 0);
	assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
	sink_close(&s);

	write_file(path, "no newline at all");
	assert_int_equal(sink_open(&s, spec, err, sizeof(err)), 0);
	assert_string_equal(slurp(path), "");
	sink_close(&s);
}

static void
sink_rewind_to_last_commit(void **state)
{
	char		path[128],
				spec[140],
				err[512];
	struct sink s;
	char		big[1000];

	(void) state;
	snprintf(path, sizeof(path), "%s/b.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(sink_open(&s, spec, err, sizeof(err)), 0);
	assert_int_equal(sink_append(&s, "t1\n", 3, err, sizeof(err)), 0);
	sink_mark_commit(&s);
	assert_int_equal(sink_append(&s, "t2a\n", 4, err, sizeof(err)), 0);
	/* rewind inside the queue */
	assert_int_equal(sink_rewind(&s, err, sizeof(err)), 0);
	assert_int_equal(sink_sync(&s, err, sizeof(err)), 0);
	assert_string_equal(slurp(path), "t1\n");

	/* rewind of bytes already written (a big transaction streamed out) */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	for (int i = 0; i < 400; i++)
		assert_int_equal(sink_append(&s, big, sizeof(big), err, sizeof(err)), 0);
	assert_true(sink_pending(&s) < 300 * 1024);	/* written out in chunks */
	assert_int_equal(sink_rewind(&s, err, sizeof(err)), 0);
	assert_int_equal(sink_sync(&s, err, sizeof(err)), 0);
	assert_string_equal(slurp(path), "t1\n");
	sink_close(&s);
}

static void
sink_bad_path_says_what_to_do(void **state)
{
	struct sink s;
	char		err[512];
	char		spec[160];

	(void) state;
	snprintf(spec, sizeof(spec), "file:%s/missing-dir/x.jsonl", dir);
	assert_int_equal(sink_open(&s, spec, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "create it or fix --sink"));
	sink_close(&s);

	snprintf(spec, sizeof(spec), "file:%s", dir);
	assert_int_equal(sink_open(&s, spec, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "directory"));
	sink_close(&s);

	assert_int_equal(sink_open(&s, "kafka:x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "--sink=stdout or --sink=file:"));
	sink_close(&s);
}

static void
sink_disk_full_says_what_to_do(void **state)
{
	struct sink s;
	char		err[512];

	(void) state;
	/* /dev/full: every write fails with ENOSPC */
	if (access("/dev/full", W_OK) != 0)
		skip();
	s = (struct sink) {0};
	assert_int_equal(sink_open(&s, "stdout", err, sizeof(err)), 0);
	s.fd = open("/dev/full", O_WRONLY);
	assert_true(s.fd >= 0);
	assert_int_equal(sink_append(&s, "x\n", 2, err, sizeof(err)), 0);
	assert_int_equal(sink_sync(&s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "disk is full"));
	close(s.fd);
	sink_close(&s);
}

int
group_sink(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sink_trims_partial_last_line),
		cmocka_unit_test(sink_rewind_to_last_commit),
		cmocka_unit_test(sink_bad_path_says_what_to_do),
		cmocka_unit_test(sink_disk_full_says_what_to_do),
	};

	return cmocka_run_group_tests_name("sink", tests, setup, teardown);
}
