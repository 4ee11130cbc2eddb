/*
 * nats_ref.c — the reference ordersyncd's NATS JetStream sink is measured
 * against (bench/sinks/nats.sh), and the publisher the
 * NATS harness (test/integration/nats.sh) is checked with: the smallest
 * libnats JetStream publisher that does what the sink will promise.
 *
 * It publishes COUNT messages of SIZE bytes asynchronously to
 * "<SUBJECT_PREFIX>.order.<n>" (SUBJECTS subjects in turn), each with a
 * Nats-Msg-Id header "<ID_PREFIX>-<i>" (so publishing the same range again
 * is dropped by the stream's duplicate window), with at most WINDOW
 * publishes waiting for their JetStream ack (libnats stalls the publisher
 * beyond that). A message counts once its ack arrives without error; any
 * error ends the run. Acks that say "duplicate" are counted apart.
 *
 *   nats_ref URL SUBJECT_PREFIX COUNT SIZE WINDOW [ID_PREFIX [SUBJECTS]]
 *   e.g. nats_ref nats://127.0.0.1:25511 orders 10000 470 1000 run1 256
 *
 * Credentials, when the server wants them: NATS_USER and NATS_PASSWORD.
 * Prints one line: "COUNT SECONDS MSGS_PER_S DUPLICATES", timed from the
 * first publish to the last ack (connecting is not counted). Exit 0 when
 * every message was acknowledged.
 *
 * Build: cc -O2 -o nats_ref nats_ref.c -lnats
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

static atomic_uint_fast64_t acked,
			duplicates,
			failed;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Every ack or error of an asynchronous publish (a libnats thread). */
static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	(void) js;
	(void) closure;
	if (pae != NULL)
	{
		if (atomic_fetch_add(&failed, 1) == 0)
			fprintf(stderr, "nats_ref: publish failed: %s (%s)\n",
					pae->ErrText ? pae->ErrText : "?", natsStatus_GetText(pae->Err));
	}
	else
	{
		atomic_fetch_add(&acked, 1);
		if (pa != NULL && pa->Duplicate)
			atomic_fetch_add(&duplicates, 1);
	}
	natsMsg_Destroy(msg);
}

static void
check(natsStatus s, const char *what)
{
	if (s == NATS_OK)
		return;
	fprintf(stderr, "nats_ref: %s: %s\n", what,
			nats_GetLastError(NULL) ? nats_GetLastError(NULL) : natsStatus_GetText(s));
	exit(1);
}

int
main(int argc, char **argv)
{
	const char *user = getenv("NATS_USER"),
			   *pass = getenv("NATS_PASSWORD");
	const char *id_prefix = argc > 6 ? argv[6] : "ref";
	natsOptions *o = NULL;
	natsConnection *nc = NULL;
	jsCtx	   *js = NULL;
	jsOptions	jo;
	jsPubOptions po;
	uint64_t	count,
				size,
				window,
				subjects;
	char	   *payload;
	char		subject[256],
				id[128];
	double		t0,
				t;

	if (argc < 6 || argc > 8)
	{
		fprintf(stderr, "usage: nats_ref URL SUBJECT_PREFIX COUNT SIZE WINDOW [ID_PREFIX [SUBJECTS]]\n");
		return 2;
	}
	count = strtoull(argv[3], NULL, 10);
	size = strtoull(argv[4], NULL, 10);
	window = strtoull(argv[5], NULL, 10);
	subjects = argc > 7 ? strtoull(argv[7], NULL, 10) : 256;
	if (count == 0 || size == 0 || window == 0 || subjects == 0)
	{
		fprintf(stderr, "nats_ref: COUNT, SIZE, WINDOW and SUBJECTS must be positive\n");
		return 2;
	}
	payload = malloc(size);
	if (payload == NULL)
		return 1;
	memset(payload, 'x', size);

	check(natsOptions_Create(&o), "options");
	check(natsOptions_SetURL(o, argv[1]), "URL");
	natsOptions_SetTimeout(o, 10000);
	if (user && *user)
		check(natsOptions_SetUserInfo(o, user, pass), "credentials");
	check(natsConnection_Connect(&nc, o), "connect");

	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = (int64_t) window;	/* publishes wait beyond this */
	jo.PublishAsync.StallWait = 10000;	/* ms a publish waits for room */
	jo.PublishAsync.AckHandler = on_ack;
	check(natsConnection_JetStream(&js, nc, &jo), "JetStream context");

	t0 = now_s();
	for (uint64_t i = 0; i < count && atomic_load(&failed) == 0; i++)
	{
		natsMsg    *m = NULL;
		natsStatus	s;

		snprintf(subject, sizeof(subject), "%s.order.%" PRIu64, argv[2], i % subjects);
		snprintf(id, sizeof(id), "%s-%" PRIu64, id_prefix, i);
		check(natsMsg_Create(&m, subject, NULL, payload, (int) size), "message");
		check(natsMsgHeader_Set(m, "Nats-Msg-Id", id), "header");
		s = js_PublishMsgAsync(js, &m, NULL);
		if (s != NATS_OK)
		{
			/* not taken: m is still ours */
			natsMsg_Destroy(m);
			check(s, "publish");
		}
	}
	/* every ack in (or the wait runs out) */
	jsPubOptions_Init(&po);
	po.MaxWait = 60000;
	check(js_PublishAsyncComplete(js, &po), "waiting for the acks");
	t = now_s() - t0;
	if (atomic_load(&failed) || atomic_load(&acked) != count)
	{
		fprintf(stderr, "nats_ref: %" PRIu64 " acked, %" PRIu64 " failed of %" PRIu64 "\n",
				(uint64_t) atomic_load(&acked), (uint64_t) atomic_load(&failed), count);
		return 1;
	}
	printf("%" PRIu64 " %.3f %.0f %" PRIu64 "\n", count, t, (double) count / t,
		   (uint64_t) atomic_load(&duplicates));
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(o);
	free(payload);
	nats_Close();
	return 0;
}
