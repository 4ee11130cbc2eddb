/*
 * syncer.c — the background fdatasync thread (see syncer.h).
 *
 * fdatasync on a file that the main thread keeps appending to is fine: it
 * covers at least everything written before it started, which is all the
 * request claims.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "syncer.h"

static void *
run(void *arg)
{
	struct syncer *s = arg;

	pthread_mutex_lock(&s->lock);
	for (;;)
	{
		int			fds[SYNCER_MAX_FDS];
		int			nfds;
		int			err = 0,
					err_index = -1;
		struct timeval tv;

		while (!s->quit && !(s->busy && !s->done))
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->quit && !(s->busy && !s->done))
			break;
		nfds = s->nfds;
		memcpy(fds, s->fds, sizeof(int) * (size_t) nfds);
		pthread_mutex_unlock(&s->lock);

		for (int i = 0; i < nfds && err == 0; i++)
		{
			if (fdatasync(fds[i]) != 0)
			{
				err = errno;
				err_index = i;
			}
		}
		gettimeofday(&tv, NULL);

		pthread_mutex_lock(&s->lock);
		s->err = err;
		s->err_index = err_index;
		s->done_usec = (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
		s->done = true;
		pthread_cond_broadcast(&s->cond);
		(void) !write(s->pipe[1], "d", 1);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int
syncer_init(struct syncer *s)
{
	memset(s, 0, sizeof(*s));
	if (pipe(s->pipe) != 0)
		return -1;
	for (int i = 0; i < 2; i++)
	{
		fcntl(s->pipe[i], F_SETFL, O_NONBLOCK);
		fcntl(s->pipe[i], F_SETFD, FD_CLOEXEC);
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (pthread_create(&s->thread, NULL, run, s) != 0)
		return -1;
	s->started = true;
	return 0;
}

void
syncer_stop(struct syncer *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	close(s->pipe[0]);
	close(s->pipe[1]);
	s->started = false;
}

int
syncer_fd(const struct syncer *s)
{
	return s->pipe[0];
}

bool
syncer_busy(struct syncer *s)
{
	bool		b;

	pthread_mutex_lock(&s->lock);
	b = s->busy;
	pthread_mutex_unlock(&s->lock);
	return b;
}

void
syncer_submit(struct syncer *s, const int *fds, int nfds, uint64_t end_lsn)
{
	pthread_mutex_lock(&s->lock);
	s->nfds = nfds > SYNCER_MAX_FDS ? SYNCER_MAX_FDS : nfds;
	memcpy(s->fds, fds, sizeof(int) * (size_t) s->nfds);
	s->end_lsn = end_lsn;
	s->busy = true;
	s->done = false;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

bool
syncer_poll(struct syncer *s, uint64_t *end_lsn, int *err, int *err_index, int64_t *done_usec)
{
	bool		got = false;
	char		drain[16];

	pthread_mutex_lock(&s->lock);
	if (s->busy && s->done)
	{
		*end_lsn = s->end_lsn;
		*err = s->err;
		*err_index = s->err_index;
		*done_usec = s->done_usec;
		s->busy = false;
		s->done = false;
		got = true;
		while (read(s->pipe[0], drain, sizeof(drain)) > 0)
			;
	}
	pthread_mutex_unlock(&s->lock);
	return got;
}

void
syncer_wait(struct syncer *s)
{
	pthread_mutex_lock(&s->lock);
	while (s->busy && !s->done)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
}
