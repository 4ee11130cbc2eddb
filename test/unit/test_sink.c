/*
 * test_sink.c — the file sink through the sink interface (sink_file.c):
 * crash leftovers trimmed on open, an unfinished transaction cut off, a
 * sync that reports durable only what was committed before it began, and
 * errors that say what to fix.
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

/* A file or stdout sink opened through its ops, reporting into h. */
struct fsink
{
	struct sink s;
	struct sink_host h;
};

static int
fs_open(struct fsink *f, const char *spec, char *err)
{
	memset(f, 0, sizeof(*f));
	sink_host_init(&f->h);
	f->s.name = (char *) spec;
	f->s.uri = (char *) spec;
	f->s.ops = &sink_file_ops;
	return sink_file_ops.open(&f->s, &f->h, err, 512);
}

static void
fs_close(struct fsink *f)
{
	if (f->s.state)
		sink_file_ops.close(&f->s);
	sink_host_free(&f->h);
}

static void
fs_line(struct fsink *f, const char *text)
{
	struct sink_event ev = {.id = "0/1/1",.type = "t",.subject = "s",.body = text,
	.body_len = strlen(text)};

	assert_int_equal(sink_file_ops.submit(&f->s, &ev), SINK_TAKEN);
}

/*
 * Flush and wait until the sink reports durable or fatal; returns the
 * durable LSN, or 0 on a fatal report (its reason in why).
 */
static uint64_t
fs_sync(struct fsink *f, char *why, size_t whylen)
{
	for (int round = 0; round < 2000; round++)
	{
		struct pollset ps = {0};
		int			timeout = 100;

		if (round == 0)
			sink_file_ops.flush(&f->s);
		for (int i = 0; i < f->h.n; i++)
		{
			struct sink_result *r = &f->h.results[i];
			uint64_t	lsn = r->lsn;

			if (r->what == SINK_FATAL)
				snprintf(why, whylen, "%s", sink_host_why(&f->h, r));
			sink_host_clear(&f->h);
			pollset_free(&ps);
			return r->what == SINK_DURABLE ? lsn : 0;
		}
		sink_file_ops.prepare(&f->s, &ps, &timeout);
		(void) poll(ps.fds, (nfds_t) ps.n, timeout);
		sink_file_ops.poll(&f->s, &ps);
		pollset_free(&ps);
	}
	fail_msg("no durable or fatal report");
	return 0;
}

static void
sink_trims_partial_last_line(void **state)
{
	char		path[128],
				spec[140],
				err[512];
	struct fsink f;

	(void) state;
	snprintf(path, sizeof(path), "%s/a.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	write_file(path, "{\"a\":1}\n{\"b\":2}\n{\"c\":");
	assert_int_equal(fs_open(&f, spec, err), 0);
	assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n");
	fs_line(&f, "{\"d\":4}");
	sink_file_ops.commit(&f.s, 0x10);
	assert_int_equal(fs_sync(&f, err, sizeof(err)), 0x10);
	assert_string_equal(slurp(path), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
	fs_close(&f);

	write_file(path, "no newline at all");
	assert_int_equal(fs_open(&f, spec, err), 0);
	assert_string_equal(slurp(path), "");
	fs_close(&f);
}

static void
sink_abort_cuts_to_last_commit(void **state)
{
	char		path[128],
				spec[140],
				err[512];
	struct fsink f;
	char		big[1000];

	(void) state;
	snprintf(path, sizeof(path), "%s/b.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(fs_open(&f, spec, err), 0);
	fs_line(&f, "t1");
	sink_file_ops.commit(&f.s, 0x100);
	fs_line(&f, "t2a");
	/* cut inside the queue */
	sink_file_ops.abort(&f.s);
	assert_int_equal(fs_sync(&f, err, sizeof(err)), 0x100);
	assert_string_equal(slurp(path), "t1\n");

	/* cut of bytes already written (a big transaction streamed out) */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 400; i++)
		fs_line(&f, big);
	sink_file_ops.abort(&f.s);
	sink_file_ops.commit(&f.s, 0x100);
	assert_int_equal(fs_sync(&f, err, sizeof(err)), 0x100);
	assert_string_equal(slurp(path), "t1\n");
	fs_close(&f);
}

/* A sync covers the commits before it began, not those that came meanwhile. */
static void
sink_durable_is_what_the_sync_covered(void **state)
{
	char		path[128],
				spec[140],
				err[512];
	struct fsink f;

	(void) state;
	snprintf(path, sizeof(path), "%s/c.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	assert_int_equal(fs_open(&f, spec, err), 0);
	fs_line(&f, "a");
	sink_file_ops.commit(&f.s, 0x200);
	sink_file_ops.flush(&f.s);	/* the sync of 0x200 begins */
	fs_line(&f, "b");
	sink_file_ops.commit(&f.s, 0x300);	/* after it began */
	/* the first report is 0x200; asking again brings 0x300 */
	assert_int_equal(fs_sync(&f, err, sizeof(err)), 0x200);
	assert_int_equal(fs_sync(&f, err, sizeof(err)), 0x300);
	fs_close(&f);
}

static void
sink_bad_path_says_what_to_do(void **state)
{
	struct fsink f;
	char		err[512];
	char		spec[160];

	(void) state;
	snprintf(spec, sizeof(spec), "file:%s/missing-dir/x.jsonl", dir);
	assert_int_equal(fs_open(&f, spec, err), -1);
	assert_non_null(strstr(err, "create it or fix --sink"));
	sink_host_free(&f.h);

	snprintf(spec, sizeof(spec), "file:%s", dir);
	assert_int_equal(fs_open(&f, spec, err), -1);
	assert_non_null(strstr(err, "directory"));
	sink_host_free(&f.h);

	assert_null(sink_kind_for("kafka:x"));
	assert_ptr_equal(sink_kind_for("stdout"), &sink_file_ops);
}

static void
sink_disk_full_says_what_to_do(void **state)
{
	struct fsink f;
	char		err[512],
				why[512] = "";
	int			full,
				saved;
	uint64_t	lsn;

	(void) state;
	/* /dev/full as stdout: every write fails with ENOSPC */
	if (access("/dev/full", W_OK) != 0)
		skip();
	fflush(stdout);
	full = open("/dev/full", O_WRONLY);
	saved = dup(STDOUT_FILENO);
	assert_true(full >= 0 && saved >= 0);
	dup2(full, STDOUT_FILENO);
	if (fs_open(&f, "stdout", err) == 0)
	{
		fs_line(&f, "x");
		sink_file_ops.commit(&f.s, 0x10);
		lsn = fs_sync(&f, why, sizeof(why));
		fs_close(&f);
	}
	else
		lsn = 1;
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(full);
	assert_int_equal(lsn, 0);
	assert_non_null(strstr(why, "disk is full"));
}

int
group_sink(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sink_trims_partial_last_line),
		cmocka_unit_test(sink_abort_cuts_to_last_commit),
		cmocka_unit_test(sink_durable_is_what_the_sync_covered),
		cmocka_unit_test(sink_bad_path_says_what_to_do),
		cmocka_unit_test(sink_disk_full_says_what_to_do),
	};

	return cmocka_run_group_tests_name("sink", tests, setup, teardown);
}
