/*
 * sink_file.c — the stdout and file sinks (see sink.h): JSON lines, one
 * event per line, durable in batches.
 *
 *   --sink=stdout
 *   --sink=file:/var/lib/ordersync/events.jsonl
 *
 * These are SINK_ORDERED sinks: every event is appended in stream order,
 * and what counts is whole transactions. A commit remembers the offset
 * after the transaction (ops->commit), so that an unfinished transaction's
 * lines can be cut off again (ops->abort) when the stream breaks or the
 * relay stops: they will be sent again anyway.
 *
 * Durability: lines are buffered and written out in large chunks; when the
 * stream pauses (ops->flush) the rest is written and fdatasync runs in a
 * background thread (syncer.h), so decoding continues meanwhile. Only when
 * that thread reports success does the sink tell the host the LSN of the
 * last commit before the sync began (sink_host_durable): fsync = accepted.
 * Two syncs begin at least SYNC_MIN_GAP_USEC apart. A failed write or
 * fdatasync is fatal (sink_host_fatal): after a failed fsync the kernel may
 * have dropped the dirty pages, and a retry could report success for lost
 * data.
 *
 * Files are opened O_APPEND and cleaned on open: if a crash left a partial
 * last line (a write cut short by kill -9 or a full disk), it is cut off,
 * because those bytes were never confirmed and will be sent again. A new
 * file is created with mode 0640 (events carry customer data).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "sink.h"
#include "syncer.h"
#include "ts.h"

#define SINK_CHUNK (256 * 1024)	/* write out once this much is queued */

/*
 * The least time between the starts of two syncs. A relay that reads
 * faster than the server decodes finds the socket empty thousands of times
 * a second; syncing at every such pause meant over a thousand fdatasync
 * calls, syncer wake-ups and status updates a second, a third of the
 * relay's CPU in `make bench` (bench/relay). Waiting for this gap costs a
 * pause at most 2 ms of latency.
 */
#define SYNC_MIN_GAP_USEC 2000

struct file_sink
{
	struct sink *s;
	bool		is_stdout;
	char	   *path;			/* files only; "stdout" for messages */
	int			fd;
	struct buf	pending;		/* appended, not yet written */
	off_t		written;		/* bytes written to fd (file offset) */
	off_t		commit_mark;	/* offset just after the last complete txn */
	bool		unsynced;		/* written since the last sync began */
	bool		fsync_ok;		/* false for pipes/terminals: nothing to fsync */
	bool		failed;			/* reported fatal: do nothing more */

	uint64_t	committed_lsn;	/* end of the last transaction appended whole */
	bool		want_sync;		/* flush asked for a sync that has not begun */
	struct syncer syncer;		/* fdatasync in the background (fsync_ok only) */
	bool		syncer_started;
	uint64_t	sync_lsn;		/* what the sync in flight makes durable */
	int64_t		sync_started_usec;	/* monotonic: when the last sync began */
};

static void
describe_errno(const char *what, const char *path, int e, char *err, size_t errlen)
{
	const char *hint = "";

	switch (e)
	{
		case ENOSPC:
		case EDQUOT:
			hint = "; the disk is full: free space on that file system and restart "
				"ordersyncd (nothing past the last confirmed LSN was acknowledged, "
				"so the unconfirmed tail is sent again)";
			break;
		case ENOENT:
			hint = "; the directory does not exist: create it or fix --sink=file:PATH";
			break;
		case EACCES:
		case EPERM:
		case EROFS:
			hint = "; ordersyncd may not write there: fix the permissions or choose "
				"another --sink=file:PATH";
			break;
		case EISDIR:
			hint = "; that is a directory: give a file name, e.g. --sink=file:/var/lib/ordersync/events.jsonl";
			break;
		case EIO:
			hint = "; the storage reported an I/O error: check the disk, then restart";
			break;
		default:
			break;
	}
	snprintf(err, errlen, "%s \"%s\": %s%s", what, path, strerror(e), hint);
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Cut a partial last line left behind by a crash. */
static int
trim_partial_line(struct file_sink *s, off_t size, char *err, size_t errlen)
{
	char		chunk[4096];
	off_t		pos = size;

	while (pos > 0)
	{
		size_t		n = pos < (off_t) sizeof(chunk) ? (size_t) pos : sizeof(chunk);
		ssize_t		got = pread(s->fd, chunk, n, pos - (off_t) n);

		if (got != (ssize_t) n)
		{
			describe_errno("cannot read sink file", s->path, got < 0 ? errno : EIO, err, errlen);
			return -1;
		}
		for (size_t i = n; i > 0; i--)
		{
			if (chunk[i - 1] == '\n')
			{
				off_t		keep = pos - (off_t) n + (off_t) i;

				if (keep == size)
					return 0;
				log_warning("sink \"%s\": removed %lld bytes of an incomplete last line "
							"(left by a crash; it was never confirmed and will be sent again)",
							s->path, (long long) (size - keep));
				if (ftruncate(s->fd, keep) != 0)
				{
					describe_errno("cannot truncate sink file", s->path, errno, err, errlen);
					return -1;
				}
				s->written = keep;
				return 0;
			}
		}
		pos -= (off_t) n;
	}
	/* no newline at all: the whole file is one partial line */
	log_warning("sink \"%s\": removed an incomplete line of %lld bytes left by a crash",
				s->path, (long long) size);
	if (ftruncate(s->fd, 0) != 0)
	{
		describe_errno("cannot truncate sink file", s->path, errno, err, errlen);
		return -1;
	}
	s->written = 0;
	return 0;
}

/* fsync the directory so a newly created file survives a crash too. */
static void
sync_parent_dir(const char *path)
{
	char	   *copy = strdup(path);
	int			dfd;

	if (copy == NULL)
		return;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (dfd >= 0)
	{
		(void) fsync(dfd);
		close(dfd);
	}
	free(copy);
}

static int
open_file(struct file_sink *s, char *err, size_t errlen)
{
	struct stat st;
	bool		existed = access(s->path, F_OK) == 0;

	/* events carry customer data: not world-readable (group can be given to consumers) */
	s->fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (s->fd < 0)
	{
		describe_errno("cannot open sink file", s->path, errno, err, errlen);
		return -1;
	}
	if (fstat(s->fd, &st) != 0)
	{
		describe_errno("cannot stat sink file", s->path, errno, err, errlen);
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
	{
		snprintf(err, errlen, "sink \"%s\" is not a regular file: use --sink=stdout "
				 "for pipes, or give a file path", s->path);
		goto fail;
	}
	s->written = st.st_size;
	if (st.st_size > 0)
	{
		/* pread needs read access: reopen read-write just for the check */
		int			rfd = open(s->path, O_RDWR | O_APPEND | O_CLOEXEC);

		if (rfd < 0)
		{
			describe_errno("cannot open sink file for reading", s->path, errno, err, errlen);
			goto fail;
		}
		close(s->fd);
		s->fd = rfd;
		if (trim_partial_line(s, st.st_size, err, errlen) != 0)
			goto fail;
	}
	if (!existed)
		sync_parent_dir(s->path);
	s->commit_mark = s->written;
	s->unsynced = false;
	s->fsync_ok = true;
	return 0;

fail:
	close(s->fd);
	s->fd = -1;
	return -1;
}


/* Report a failure the relay cannot go on from. */
static void
fatal(struct file_sink *f, const char *why)
{
	if (!f->failed)
		sink_host_fatal(f->s->host, why);
	f->failed = true;
}

static const char *
shown_path(const struct file_sink *f)
{
	return f->path ? f->path : "stdout";
}

static int
flush_pending(struct file_sink *f)
{
	char		err[1024];

	if (f->pending.len == 0)
		return 0;
	if (write_all(f->fd, f->pending.data, f->pending.len) != 0)
	{
		describe_errno("cannot write to sink", shown_path(f), errno, err, sizeof(err));
		fatal(f, err);
		return -1;
	}
	f->written += (off_t) f->pending.len;
	buf_reset(&f->pending);
	f->unsynced = true;
	return 0;
}

static bool
claims(const char *uri)
{
	return strcmp(uri, "stdout") == 0 || strncmp(uri, "file:", 5) == 0;
}

static void file_close(struct sink *s);

static int
file_open(struct sink *s, struct sink_host *host, char *err, size_t errlen)
{
	struct file_sink *f = xcalloc(sizeof(*f));

	f->s = s;
	f->fd = -1;
	buf_init(&f->pending);
	s->host = host;
	s->state = f;
	if (strcmp(s->uri, "stdout") == 0)
	{
		struct stat st;

		f->is_stdout = true;
		f->fd = STDOUT_FILENO;
		/* a redirect to a file can be fsynced; a pipe or terminal cannot */
		f->fsync_ok = fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode);
	}
	else if (s->uri[5] == '\0')
	{
		snprintf(err, errlen, "sink \"file:\" names no file: give a path, e.g. "
				 "--sink=file:/var/lib/ordersync/events.jsonl");
		goto fail;
	}
	else
	{
		f->path = xstrdup(s->uri + 5);
		if (open_file(f, err, errlen) != 0)
			goto fail;
	}
	if (f->fsync_ok)
	{
		if (syncer_init(&f->syncer) != 0)
		{
			snprintf(err, errlen, "sink \"%s\": cannot start the fsync thread: %s", s->name,
					 strerror(errno));
			goto fail;
		}
		f->syncer_started = true;
	}
	return 0;

fail:
	file_close(s);
	return -1;
}

static int
file_submit(struct sink *s, struct sink_event *ev)
{
	struct file_sink *f = s->state;

	buf_append(&f->pending, ev->body, ev->body_len);
	buf_append(&f->pending, "\n", 1);
	if (f->pending.len >= SINK_CHUNK && !f->failed)
		flush_pending(f);
	return SINK_TAKEN;
}

static void
file_commit(struct sink *s, uint64_t end_lsn)
{
	struct file_sink *f = s->state;

	f->commit_mark = f->written + (off_t) f->pending.len;
	if (end_lsn > f->committed_lsn)
		f->committed_lsn = end_lsn;
}

/* Drop what follows the last commit mark (queued and, for files, written). */
static void
file_abort(struct sink *s)
{
	struct file_sink *f = s->state;
	off_t		queued_from = f->written;
	char		err[1024];

	if (f->commit_mark >= queued_from)
	{
		/* the cut is inside the queue: just shorten it */
		f->pending.len = (size_t) (f->commit_mark - queued_from);
		return;
	}
	buf_reset(&f->pending);
	if (f->is_stdout)
		return;					/* bytes already on stdout cannot be taken back */
	if (ftruncate(f->fd, f->commit_mark) != 0)
	{
		describe_errno("cannot truncate sink file", f->path, errno, err, sizeof(err));
		fatal(f, err);
		return;
	}
	f->written = f->commit_mark;
	f->unsynced = true;
}

/* Begin the sync flush asked for, if no sync runs and the gap is over. */
static void
start_sync(struct file_sink *f)
{
	if (!f->want_sync || f->failed || (f->syncer_started && syncer_busy(&f->syncer)) ||
		ts_mono_usec() - f->sync_started_usec < SYNC_MIN_GAP_USEC)
		return;
	if (flush_pending(f) != 0)
		return;
	f->want_sync = false;
	f->sync_started_usec = ts_mono_usec();
	if (f->unsynced && f->fsync_ok)
	{
		f->unsynced = false;
		f->sync_lsn = f->committed_lsn;
		syncer_submit(&f->syncer, &f->fd, 1, f->sync_lsn);
		return;
	}
	/* written (a pipe), or nothing written since the last sync: durable now */
	f->unsynced = false;
	metrics_fsync();
	sink_host_durable(f->s->host, f->committed_lsn);
}

static void
file_flush(struct sink *s)
{
	struct file_sink *f = s->state;

	f->want_sync = true;
	start_sync(f);
}

static void
file_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	struct file_sink *f = s->state;

	if (f->syncer_started && syncer_busy(&f->syncer))
	{
		/* the thread writes to its pipe when done */
		pollset_add(ps, syncer_fd(&f->syncer), POLLIN);
		return;
	}
	if (f->want_sync && !f->failed)
	{
		int64_t		left = f->sync_started_usec + SYNC_MIN_GAP_USEC - ts_mono_usec();
		int			ms = left <= 0 ? 0 : (int) ((left + 999) / 1000);

		if (*timeout_ms < 0 || ms < *timeout_ms)
			*timeout_ms = ms;
	}
}

static void
file_poll(struct sink *s, const struct pollset *ps)
{
	struct file_sink *f = s->state;
	uint64_t	end;
	int			e,
				idx;
	int64_t		done_usec;

	(void) ps;
	if (f->syncer_started && syncer_poll(&f->syncer, &end, &e, &idx, &done_usec))
	{
		if (e != 0)
		{
			char		err[1024];

			describe_errno("cannot fsync sink", shown_path(f), e, err, sizeof(err));
			fatal(f, err);
			return;
		}
		metrics_fsync();
		sink_host_durable(s->host, end);
	}
	start_sync(f);
}

/* Close and open the file again at the same path (log rotation on SIGHUP). */
static void
file_reopen(struct sink *s)
{
	struct file_sink *f = s->state;
	char		err[1024];

	if (f->is_stdout || f->failed)
		return;
	if (f->syncer_started)
		syncer_wait(&f->syncer);	/* its result stays for poll */
	if (flush_pending(f) != 0)
		return;
	if (f->unsynced && fdatasync(f->fd) != 0)
	{
		describe_errno("cannot fsync sink", f->path, errno, err, sizeof(err));
		fatal(f, err);
		return;
	}
	f->unsynced = false;
	close(f->fd);
	f->fd = -1;
	if (open_file(f, err, sizeof(err)) != 0)
		fatal(f, err);
}

static void
file_close(struct sink *s)
{
	struct file_sink *f = s->state;

	if (f == NULL)
		return;
	/* finishes a flush in flight before its descriptor goes */
	if (f->syncer_started)
		syncer_stop(&f->syncer);
	if (!f->is_stdout && f->fd >= 0)
		close(f->fd);
	buf_free(&f->pending);
	free(f->path);
	free(f);
	s->state = NULL;
}

static bool
file_clear_text(const struct sink *s)
{
	(void) s;
	return false;				/* local: never on a network */
}

const struct sink_ops sink_file_ops = {
	.kind = "file",
	.flags = SINK_ORDERED | SINK_LOCAL,
	.claims = claims,
	.clear_text = file_clear_text,
	.open = file_open,
	.submit = file_submit,
	.prepare = file_prepare,
	.poll = file_poll,
	.close = file_close,
	.flush = file_flush,
	.commit = file_commit,
	.abort = file_abort,
	.reopen = file_reopen,
};
