/*
 * sink.h — where events go: stdout or an append-only JSON-lines file.
 *
 * A sink buffers lines and writes them out in large chunks; sink_sync()
 * makes everything appended so far durable (write + fsync). The relay
 * confirms an LSN to the server only after every sink's sync succeeded.
 * The position after each complete transaction is remembered so that an
 * unfinished transaction's lines can be cut off again (sink_rewind) when
 * the stream breaks or the relay stops: they will be re-sent anyway.
 */
#ifndef ORDERSYNCD_SINK_H
#define ORDERSYNCD_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"

enum sink_kind { SINK_STDOUT, SINK_FILE };

struct sink
{
	enum sink_kind kind;
	char	   *spec;			/* as given: "stdout" or "file:/path" */
	char	   *path;			/* file sinks only */
	int			fd;
	struct buf	pending;		/* appended, not yet written */
	off_t		written;		/* bytes written to fd (file offset) */
	off_t		commit_mark;	/* offset just after the last complete txn */
	bool		unsynced;		/* written since the last fsync */
	bool		fsync_ok;		/* false for pipes/terminals: nothing to fsync */
};

/*
 * Parse and open a sink spec. On failure returns -1 and puts a message that
 * says what to fix into err.
 */
int sink_open(struct sink *s, const char *spec, char *err, size_t errlen);

/* Queue bytes; may write a full chunk. Returns 0 or -1 (err filled). */
int sink_append(struct sink *s, const char *data, size_t len, char *err, size_t errlen);

/* Remember "everything appended so far is whole transactions". */
void sink_mark_commit(struct sink *s);

/* Write everything queued and fsync. Returns 0 or -1 (err filled). */
int sink_sync(struct sink *s, char *err, size_t errlen);

/*
 * First half of an asynchronous sync: write everything queued. Sets *fd to
 * the descriptor that still needs fdatasync (-1 if none) and considers it
 * synced from now on: a failed fdatasync later is fatal anyway.
 */
int sink_prepare_sync(struct sink *s, int *fd, char *err, size_t errlen);

/* Message for a failed fdatasync (errno e) of this sink. */
void sink_sync_error(const struct sink *s, int e, char *err, size_t errlen);

/* Drop what follows the last commit mark (queued and, for files, written). */
int sink_rewind(struct sink *s, char *err, size_t errlen);

/* Close and open the file again at the same path (log rotation on SIGHUP). */
int sink_reopen(struct sink *s, char *err, size_t errlen);

void sink_close(struct sink *s);

/* Bytes queued but not written: lets the relay bound its memory. */
size_t sink_pending(const struct sink *s);

#endif
