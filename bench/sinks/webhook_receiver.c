/*
 * webhook_receiver.c — a fast webhook endpoint for bench/sinks/webhook.sh.
 *
 * The Python receiver of the integration tests handles a few thousand
 * requests a second at best, so measuring the relay against it would
 * measure Python. This one (libmicrohttpd, poll, a small thread pool,
 * keep-alive) still does what a real receiver must: it reads every body and
 * checks its Standard Webhooks signature (HMAC-SHA256 over
 * "webhook-id.webhook-timestamp.body", whsec_ secrets base64-decoded), and
 * it checks that each subject's events arrive in increasing id order (per
 * URL path: give each run its own path), so
 * a fast but wrong relay cannot score.
 *
 *   webhook_receiver PORT SECRET [DELAY_MS]   (runs until SIGTERM/SIGINT)
 *
 * On exit it prints one line: "accepted N refused M out_of_order K wrk W",
 * W of the K out of order on wrk's paths (/wrk/...): a request wrk sent
 * again on a new connection counts as out of order too.
 * Answers 204 to a good request, 401 to a bad signature; GET /count gives
 * the number accepted so far. GET /arm/N makes it note the moment (its
 * CLOCK_MONOTONIC, in ns) the Nth request is accepted, and GET /reached
 * gives that moment (0 until then): the benchmark times a run by the
 * arrival of its last event without polling the receiver during the run,
 * which would take CPU from the relay that wrk does not pay.
 *
 * DELAY_MS (default 0) makes it a slow receiver: each good request is
 * answered DELAY_MS after its body has arrived, without holding a thread
 * (the connection is suspended and a timer thread resumes it), so the
 * number of requests waiting at once is not limited by the thread pool and
 * a client with N requests in flight can reach N / DELAY_MS. The order
 * check happens on arrival; a request counts as accepted when its answer
 * is sent.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_BODY (1 << 20)
#define NSUBJ 4096				/* subjects tracked for ordering, by hash */

static unsigned char key[256];
static int	keylen;
static atomic_long armed,		/* GET /arm/N: N; reached: when N was */
			reached_ns;
static atomic_long accepted,
			refused,
			out_of_order,
			wrk_out_of_order;
static struct MHD_Response *ok_resp,
		   *bad_resp;

/* Last id seen per subject (hashed): ids are "<hi>/<lo>/<ordinal>". */
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static struct
{
	char		subject[160];	/* "<url path> <subject>" */
	uint64_t	lsn;
	uint32_t	ordinal;
}			last[NSUBJ];

struct req
{
	size_t		len;
	size_t		cap;
	char	   *body;
	int			delayed;		/* 1: suspended, 2: resumed, answer now,
								 * 3: resumed at shutdown, answer 503 */
	struct timespec due;		/* when a delayed request is answered */
	struct MHD_Connection *conn;
	struct req *next;			/* in the delay queue */
	long		accepted_ns;	/* when it was accepted (0: not) */
};

static atomic_long late_answers;

/* CLOCK_MONOTONIC in ns */
static long
mono_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long) now.tv_sec * 1000000000L + now.tv_nsec;
}

/*
 * Slow-receiver mode: suspended requests in arrival order (the delay is the
 * same for every one, so arrival order is due order), resumed by one timer
 * thread.
 */
static long delay_ms;
static pthread_mutex_t delay_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t delay_cond = PTHREAD_COND_INITIALIZER;
static struct req *delay_head,
		   *delay_tail;
static int	delay_stop;

static void *
delay_thread(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&delay_lock);
	while (!delay_stop)
	{
		struct req *r = delay_head;

		if (r == NULL)
		{
			pthread_cond_wait(&delay_cond, &delay_lock);
			continue;
		}
		if (pthread_cond_timedwait(&delay_cond, &delay_lock, &r->due) == 0 && !delay_stop)
			continue;			/* woken early: look again */
		/* due (the head cannot have changed: new ones go to the tail) */
		delay_head = r->next;
		if (delay_head == NULL)
			delay_tail = NULL;
		r->delayed = 2;
		MHD_resume_connection(r->conn);
	}
	pthread_mutex_unlock(&delay_lock);
	return NULL;
}

/*
 * r accepted: counted, and its time noted (one clock read) for the late
 * answer check and, if it is the armed one, for GET /reached
 */
static void
accept_one(struct req *r)
{
	r->accepted_ns = mono_ns();
	if (atomic_fetch_add(&accepted, 1) + 1 == atomic_load(&armed))
		atomic_store(&reached_ns, r->accepted_ns);
}

/* a GET's answer: one number and a newline */
static enum MHD_Result
answer_number(struct MHD_Connection *c, long v)
{
	char		text[32];
	int			n = snprintf(text, sizeof(text), "%ld\n", v);
	struct MHD_Response *resp = MHD_create_response_from_buffer((size_t) n, text,
																MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);

	MHD_destroy_response(resp);
	return ret;
}

static void
delay_request(struct MHD_Connection *c, struct req *r)
{
	clock_gettime(CLOCK_REALTIME, &r->due);
	r->due.tv_nsec += (delay_ms % 1000) * 1000000L;
	r->due.tv_sec += delay_ms / 1000 + r->due.tv_nsec / 1000000000L;
	r->due.tv_nsec %= 1000000000L;
	r->conn = c;
	r->next = NULL;
	r->delayed = 1;
	pthread_mutex_lock(&delay_lock);
	/* suspended before the timer thread can see it, so it can resume it */
	MHD_suspend_connection(c);
	if (delay_tail)
		delay_tail->next = r;
	else
		delay_head = r;
	delay_tail = r;
	pthread_cond_signal(&delay_cond);
	pthread_mutex_unlock(&delay_lock);
}

static int
parse_id(const char *id, uint64_t *lsn, uint32_t *ord)
{
	unsigned	hi,
				lo,
				o;

	if (sscanf(id, "%X/%X/%u", &hi, &lo, &o) != 3)
		return -1;
	*lsn = ((uint64_t) hi << 32) | lo;
	*ord = o;
	return 0;
}

/* A crude field lookup, enough for the relay's compact CloudEvents. */
static int
json_field(const char *body, const char *name, char *out, size_t outlen)
{
	char		pat[32];
	const char *p,
			   *e;

	snprintf(pat, sizeof(pat), "\"%s\":\"", name);
	if ((p = strstr(body, pat)) == NULL)
		return -1;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL || (size_t) (e - p) >= outlen)
		return -1;
	memcpy(out, p, (size_t) (e - p));
	out[e - p] = '\0';
	return 0;
}

static void
check_order(const char *url, const char *body)
{
	char		subject[64],
				key[160],
				id[64];
	uint64_t	lsn,
				h = 1469598103934665603ULL;
	uint32_t	ord;
	int			slot;

	if (json_field(body, "subject", subject, sizeof(subject)) ||
		json_field(body, "id", id, sizeof(id)) || parse_id(id, &lsn, &ord))
		return;
	/* one URL path is one sink: the order holds per sink and subject */
	snprintf(key, sizeof(key), "%s %s", url, subject);
	for (const char *c = key; *c; c++)
		h = (h ^ (unsigned char) *c) * 1099511628211ULL;
	slot = (int) (h % NSUBJ);
	pthread_mutex_lock(&order_lock);
	if (strcmp(last[slot].subject, key) == 0 &&
		(lsn < last[slot].lsn || (lsn == last[slot].lsn && ord <= last[slot].ordinal)))
	{
		/* the first few are told, so that a failed run shows where */
		if (atomic_fetch_add(&out_of_order, 1) < 10)
			fprintf(stderr, "out of order: %s id %s after %" PRIX64 "/%" PRIu32 "\n",
					key, id, last[slot].lsn, last[slot].ordinal);
		if (strncmp(url, "/wrk/", 5) == 0)
			atomic_fetch_add(&wrk_out_of_order, 1);
	}
	snprintf(last[slot].subject, sizeof(last[slot].subject), "%s", key);
	last[slot].lsn = lsn;
	last[slot].ordinal = ord;
	pthread_mutex_unlock(&order_lock);
}

static int
signature_ok(struct MHD_Connection *c, const char *body, size_t len)
{
	const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
	const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
	const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char		b64[80];
	char	   *msg;
	size_t		n;

	if (!id || !ts || !sig || strncmp(sig, "v1,", 3) != 0)
		return 0;
	n = strlen(id) + 1 + strlen(ts) + 1 + len;
	msg = malloc(n);
	if (msg == NULL)
		return 0;
	sprintf(msg, "%s.%s.", id, ts);
	memcpy(msg + strlen(id) + 1 + strlen(ts) + 1, body, len);
	HMAC(EVP_sha256(), key, keylen, (unsigned char *) msg, n, mac, &maclen);
	free(msg);
	EVP_EncodeBlock((unsigned char *) b64, mac, (int) maclen);
	return strcmp(sig + 3, b64) == 0;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;

	(void) cls;
	(void) version;
	if (strcmp(method, "GET") == 0)
	{
		/* how many were accepted so far */
		if (strcmp(url, "/count") == 0)
			return answer_number(c, atomic_load(&accepted));
		/* note when the Nth is accepted (the benchmark arms it first) */
		if (strncmp(url, "/arm/", 5) == 0)
		{
			atomic_store(&reached_ns, 0);
			atomic_store(&armed, strtol(url + 5, NULL, 10));
			return answer_number(c, atomic_load(&accepted));
		}
		if (strcmp(url, "/reached") == 0)
			return answer_number(c, atomic_load(&reached_ns));
	}
	if (strcmp(method, "POST") != 0)
		return MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, bad_resp);
	if (r == NULL)
	{
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size > 0)
	{
		size_t		take = *upload_size;

		if (r->len + take > MAX_BODY)
			take = MAX_BODY - r->len;
		if (r->len + take + 1 > r->cap)
		{
			size_t		cap = r->cap ? r->cap * 2 : 4096;
			char	   *b;

			while (cap < r->len + take + 1)
				cap *= 2;
			if ((b = realloc(r->body, cap)) == NULL)
				return MHD_NO;
			r->body = b;
			r->cap = cap;
		}
		memcpy(r->body + r->len, upload, take);
		r->len += take;
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->delayed == 2)
	{
		/* a slow answer, due now */
		accept_one(r);
		return MHD_queue_response(c, MHD_HTTP_NO_CONTENT, ok_resp);
	}
	if (r->delayed == 3)
		return MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, bad_resp);
	if (r->body == NULL)
		return MHD_queue_response(c, MHD_HTTP_BAD_REQUEST, bad_resp);
	r->body[r->len] = '\0';
	if (!signature_ok(c, r->body, r->len))
	{
		atomic_fetch_add(&refused, 1);
		return MHD_queue_response(c, MHD_HTTP_UNAUTHORIZED, bad_resp);
	}
	check_order(url, r->body);
	if (delay_ms > 0)
	{
		delay_request(c, r);
		return MHD_YES;
	}
	accept_one(r);
	return MHD_queue_response(c, MHD_HTTP_NO_CONTENT, ok_resp);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	/*
	 * An answer that left long after its request was accepted: a client
	 * that times out sends the request again, which counts as out of
	 * order. Told, so that a failed run shows whose stall it was (a stall
	 * before the request is read, as in epoll mode below, is not seen here).
	 */
	long		late_ms = r && r->accepted_ns ? (mono_ns() - r->accepted_ns) / 1000000 : 0;

	(void) cls;
	(void) c;
	if (late_ms > 1000 && atomic_fetch_add(&late_answers, 1) < 10)
		fprintf(stderr, "late answer: %ld ms after the request was accepted (termination %d)\n",
				late_ms, (int) toe);
	if (r)
		free(r->body);
	free(r);
	*con_cls = NULL;
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	sigset_t	set;
	int			sig;
	const char *secret;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	pthread_t	timer;

	if (argc != 3 && argc != 4)
	{
		fprintf(stderr, "usage: webhook_receiver PORT SECRET [DELAY_MS]\n");
		return 2;
	}
	delay_ms = argc == 4 ? atol(argv[3]) : 0;
	if (delay_ms < 0 || delay_ms > 60000)
	{
		fprintf(stderr, "webhook_receiver: DELAY_MS must be 0..60000\n");
		return 2;
	}
	secret = argv[2];
	if (strncmp(secret, "whsec_", 6) == 0)
	{
		/* EVP_DecodeBlock counts "=" padding as zero bytes: take it off */
		size_t		n = strlen(secret + 6);

		keylen = EVP_DecodeBlock(key, (const unsigned char *) secret + 6, (int) n);
		while (n > 0 && secret[6 + n - 1] == '=')
			n--, keylen--;
	}
	else
	{
		keylen = (int) strlen(secret);
		memcpy(key, secret, (size_t) keylen);
	}
	if (keylen <= 0)
	{
		fprintf(stderr, "webhook_receiver: bad secret\n");
		return 2;
	}
	ok_resp = MHD_create_response_from_buffer(0, (void *) "", MHD_RESPMEM_PERSISTENT);
	bad_resp = MHD_create_response_from_buffer(3, (void *) "no\n", MHD_RESPMEM_PERSISTENT);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);	/* MHD's threads inherit the mask */

	/* loopback only: a benchmark has no business on other interfaces */
	addr.sin_port = htons((uint16_t) atoi(argv[1]));
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/*
	 * poll, not epoll: with MHD_USE_EPOLL_INTERNALLY (libmicrohttpd 0.9.75,
	 * bookworm) a worker thread at times stopped reading every connection
	 * it had: ss showed all 256 (or its 128) with a request unread for
	 * 9.9 s, until the client's 10 s timeout closed them; the client sent
	 * those requests again and the receiver, reading the stale ones at
	 * last, counted them twice (2 runs of 25 of bench/sinks/webhook.sh at
	 * 256 subjects, about one in three the day before; wrk was hit too).
	 * Polled level-triggered, a ready connection cannot be missed: 0 in 26
	 * runs, wrk's requests/s the same within noise.
	 */
	d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
						 (delay_ms > 0 ? MHD_ALLOW_SUSPEND_RESUME : 0),
						 (uint16_t) atoi(argv[1]), NULL, NULL, handle, NULL,
						 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
						 MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
						 MHD_OPTION_THREAD_POOL_SIZE, (unsigned) 2,
						 MHD_OPTION_CONNECTION_LIMIT, (unsigned) 2048,
						 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60,
						 MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 1024,
						 MHD_OPTION_END);
	if (d == NULL)
	{
		fprintf(stderr, "webhook_receiver: cannot listen on port %s\n", argv[1]);
		return 1;
	}
	if (delay_ms > 0 && pthread_create(&timer, NULL, delay_thread, NULL) != 0)
	{
		fprintf(stderr, "webhook_receiver: cannot start the timer thread\n");
		return 1;
	}
	fprintf(stderr, "webhook_receiver: listening on %s%s\n", argv[1],
			delay_ms > 0 ? ", answering late" : "");
	sigwait(&set, &sig);
	if (delay_ms > 0)
	{
		/* resume what waits, or MHD_stop_daemon would wait for it */
		pthread_mutex_lock(&delay_lock);
		delay_stop = 1;
		for (struct req *r = delay_head; r; r = r->next)
		{
			r->delayed = 3;
			MHD_resume_connection(r->conn);
		}
		delay_head = delay_tail = NULL;
		pthread_cond_signal(&delay_cond);
		pthread_mutex_unlock(&delay_lock);
		pthread_join(timer, NULL);
	}
	MHD_stop_daemon(d);
	printf("accepted %ld refused %ld out_of_order %ld wrk %ld\n", atomic_load(&accepted),
		   atomic_load(&refused), atomic_load(&out_of_order), atomic_load(&wrk_out_of_order));
	return 0;
}
