/*
 * syncer.h — fdatasync in a background thread.
 *
 * Decoding and writing go on while the disk flushes the previous batch;
 * the main loop learns about the finished flush through a pipe it selects
 * on, and only then confirms the batch's LSN to the server. One request is
 * in flight at a time; requests made meanwhile simply wait for the next
 * round, which batches them together.
 */
#ifndef ORDERSYNCD_SYNCER_H
#define ORDERSYNCD_SYNCER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define SYNCER_MAX_FDS 16

struct syncer
{
	pthread_t	thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool		started;
	bool		quit;
	bool		busy;			/* a request is queued or running */
	bool		done;			/* finished, not yet collected by syncer_poll */
	int			fds[SYNCER_MAX_FDS];
	int			nfds;
	uint64_t	end_lsn;		/* what becomes durable when this request succeeds */
	int			err;			/* errno of the first failed fdatasync, 0 if none */
	int			err_index;		/* which fd failed */
	int64_t		done_usec;		/* wall clock when the flush finished */
	int			pipe[2];		/* the thread writes a byte when done */
};

int syncer_init(struct syncer *s);
void syncer_stop(struct syncer *s);

/* Read end of the wake-up pipe, for select(). */
int syncer_fd(const struct syncer *s);

bool syncer_busy(struct syncer *s);

/* Queue fdatasync of fds; end_lsn is reported back. Requires !busy. */
void syncer_submit(struct syncer *s, const int *fds, int nfds, uint64_t end_lsn);

/*
 * Collect a finished request: returns true and fills the outputs if one
 * finished since the last call.
 */
bool syncer_poll(struct syncer *s, uint64_t *end_lsn, int *err, int *err_index,
				 int64_t *done_usec);

/* Block until no request is in flight (it is left for syncer_poll). */
void syncer_wait(struct syncer *s);

#endif
