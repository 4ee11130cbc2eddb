/*
 * sink.c — stdout and file sinks (see sink.h).
 *
 * Files are opened O_APPEND and cleaned on open: if a crash left a partial
 * last line (a write cut short by kill -9 or a full disk), it is cut off,
 * because those bytes were never confirmed and will be sent again.
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
#include "sink.h"

#define SINK_CHUNK (256 * 1024)	/* write out once this much is queued */

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
trim_partial_line(struct sink *s, off_t size, char *err, size_t errlen)
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
open_file(struct sink *s, char *err, size_t errlen)
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

int
sink_open(struct sink *s, const char *spec, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	buf_init(&s->pending);
	s->spec = strdup(spec);
	if (strcmp(spec, "stdout") == 0)
	{
		struct stat st;

		s->kind = SINK_STDOUT;
		s->fd = STDOUT_FILENO;
		/* a redirect to a file can be fsynced; a pipe or terminal cannot */
		s->fsync_ok = fstat(s->fd, &st) == 0 && S_ISREG(st.st_mode);
		return 0;
	}
	if (strncmp(spec, "file:", 5) == 0 && spec[5] != '\0')
	{
		s->kind = SINK_FILE;
		s->path = strdup(spec + 5);
		return open_file(s, err, errlen);
	}
	snprintf(err, errlen, "unknown sink \"%s\": use --sink=stdout or --sink=file:/path/events.jsonl", spec);
	return -1;
}

static int
flush_pending(struct sink *s, char *err, size_t errlen)
{
	if (s->pending.len == 0)
		return 0;
	if (write_all(s->fd, s->pending.data, s->pending.len) != 0)
	{
		describe_errno("cannot write to sink", s->path ? s->path : "stdout", errno, err, errlen);
		return -1;
	}
	s->written += (off_t) s->pending.len;
	buf_reset(&s->pending);
	s->unsynced = true;
	return 0;
}

int
sink_append(struct sink *s, const char *data, size_t len, char *err, size_t errlen)
{
	buf_append(&s->pending, data, len);
	if (s->pending.len >= SINK_CHUNK)
		return flush_pending(s, err, errlen);
	return 0;
}

void
sink_mark_commit(struct sink *s)
{
	s->commit_mark = s->written + (off_t) s->pending.len;
}

int
sink_sync(struct sink *s, char *err, size_t errlen)
{
	if (flush_pending(s, err, errlen) != 0)
		return -1;
	if (!s->unsynced)
		return 0;
	if (s->fsync_ok && fdatasync(s->fd) != 0)
	{
		/*
		 * After a failed fsync the kernel may have dropped the dirty pages:
		 * retrying could report success for lost data, so this is fatal.
		 */
		describe_errno("cannot fsync sink", s->path ? s->path : "stdout", errno, err, errlen);
		return -1;
	}
	s->unsynced = false;
	return 0;
}

int
sink_prepare_sync(struct sink *s, int *fd, char *err, size_t errlen)
{
	*fd = -1;
	if (flush_pending(s, err, errlen) != 0)
		return -1;
	if (s->unsynced && s->fsync_ok)
		*fd = s->fd;
	s->unsynced = false;
	return 0;
}

void
sink_sync_error(const struct sink *s, int e, char *err, size_t errlen)
{
	describe_errno("cannot fsync sink", s->path ? s->path : "stdout", e, err, errlen);
}

int
sink_rewind(struct sink *s, char *err, size_t errlen)
{
	off_t		queued_from = s->written;

	if (s->commit_mark >= queued_from)
	{
		/* the cut is inside the queue: just shorten it */
		s->pending.len = (size_t) (s->commit_mark - queued_from);
		return 0;
	}
	buf_reset(&s->pending);
	if (s->kind != SINK_FILE)
		return 0;				/* bytes already on stdout cannot be taken back */
	if (ftruncate(s->fd, s->commit_mark) != 0)
	{
		describe_errno("cannot truncate sink file", s->path, errno, err, errlen);
		return -1;
	}
	s->written = s->commit_mark;
	s->unsynced = true;
	return 0;
}

int
sink_reopen(struct sink *s, char *err, size_t errlen)
{
	if (s->kind != SINK_FILE)
		return 0;
	if (sink_sync(s, err, errlen) != 0)
		return -1;
	close(s->fd);
	s->fd = -1;
	return open_file(s, err, errlen);
}

void
sink_close(struct sink *s)
{
	if (s->kind == SINK_FILE && s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	buf_free(&s->pending);
	free(s->spec);
	free(s->path);
	s->spec = s->path = NULL;
}

size_t
sink_pending(const struct sink *s)
{
	return s->pending.len;
}
