/*
 * bench/inbound/loadgen.c — signed order webhooks as fast as the receiver
 * answers them: THREADS keep-alive connections, each sending its share of
 * COUNT new 2-line orders (Standard Webhooks signature, a fresh webhook-id
 * and external id each), one request at a time per connection, like a
 * channel's delivery workers. Prints "sent ok seconds" on stdout; exits 1
 * if any answer was not 2xx.
 *
 *   loadgen HOST PORT CHANNEL SECRET COUNT THREADS RUN NSKUS
 *
 * SECRET is used as raw key bytes (no whsec_ prefix). RUN tags the ids so
 * rounds do not collide.
 */
#define _GNU_SOURCE				/* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *host, *channel, *secret, *run;
static int	port, count, threads, nskus;

struct result
{
	int			sent;
	int			ok;
};

static int
connect_to(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET,.sin_port = htons((uint16_t) port)};
	int			fd = socket(AF_INET, SOCK_STREAM, 0);
	int			one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0)
	{
		perror("loadgen: connect");
		exit(2);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0)
	{
		ssize_t		w = write(fd, p, n);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t) w;
	}
	return 0;
}

/* the status of one response, whose body is read and dropped; -1 on error */
static int
read_response(int fd)
{
	static __thread char buf[8192];
	static __thread size_t have;
	char	   *end;
	int			status;
	long		clen = 0;
	char	   *cl;
	size_t		head;

	for (;;)
	{
		buf[have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")) != NULL)
			break;
		ssize_t		r = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (r <= 0)
			return -1;
		have += (size_t) r;
	}
	head = (size_t) (end - buf) + 4;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	cl = strcasestr(buf, "content-length:");
	if (cl && cl < end)
		clen = strtol(cl + 15, NULL, 10);
	while (have < head + (size_t) clen)
	{
		ssize_t		r = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (r <= 0)
			return -1;
		have += (size_t) r;
	}
	memmove(buf, buf + head + clen, have - head - (size_t) clen);
	have -= head + (size_t) clen;
	return status;
}

static void *
worker(void *arg)
{
	int			t = (int) (intptr_t) arg;
	struct result *res = calloc(1, sizeof(*res));
	int			fd = connect_to();
	unsigned	seed = (unsigned) (t * 7919 + 17);
	char		body[512],
				id[96],
				signed_content[700],
				req[2048];
	unsigned char mac[32];
	unsigned int maclen;
	char		sig[64];

	for (int i = t; i < count; i += threads)
	{
		int			a = (int) (rand_r(&seed) % (unsigned) nskus) + 1,
					b = (int) (rand_r(&seed) % (unsigned) nskus) + 1;
		long		ts = (long) time(NULL);
		int			blen,
					slen,
					rlen,
					status;

		snprintf(id, sizeof(id), "msg_%s_%d", run, i);
		blen = snprintf(body, sizeof(body),
						"{\"external_id\":\"I%s-%d\",\"lines\":[{\"sku\":\"S%d\",\"qty\":1,\"price\":\"9.90\"},"
						"{\"sku\":\"S%d\",\"qty\":2,\"price\":\"4.50\"}],\"customer\":{\"name\":\"bench\"}}",
						run, i, a, b);
		slen = snprintf(signed_content, sizeof(signed_content), "%s.%ld.%s", id, ts, body);
		HMAC(EVP_sha256(), secret, (int) strlen(secret), (unsigned char *) signed_content,
			 (size_t) slen, mac, &maclen);
		EVP_EncodeBlock((unsigned char *) sig, mac, (int) maclen);
		rlen = snprintf(req, sizeof(req),
						"POST /channels/%s/orders HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
						"webhook-id: %s\r\nwebhook-timestamp: %ld\r\nwebhook-signature: v1,%s\r\n"
						"Content-Length: %d\r\n\r\n%s",
						channel, host, id, ts, sig, blen, body);
		if (write_all(fd, req, (size_t) rlen) != 0 || (status = read_response(fd)) < 0)
		{
			fprintf(stderr, "loadgen: connection lost\n");
			exit(2);
		}
		res->sent++;
		if (status >= 200 && status < 300)
			res->ok++;
		else
			fprintf(stderr, "loadgen: HTTP %d for %s\n", status, id);
	}
	close(fd);
	return res;
}

int
main(int argc, char **argv)
{
	pthread_t  *th;
	struct timespec t0,
				t1;
	int			sent = 0,
				ok = 0;

	if (argc != 9)
	{
		fprintf(stderr, "usage: loadgen HOST PORT CHANNEL SECRET COUNT THREADS RUN NSKUS\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	channel = argv[3];
	secret = argv[4];
	count = atoi(argv[5]);
	threads = atoi(argv[6]);
	run = argv[7];
	nskus = atoi(argv[8]);
	th = calloc((size_t) threads, sizeof(*th));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, (void *) (intptr_t) i);
	for (int i = 0; i < threads; i++)
	{
		struct result *r;

		pthread_join(th[i], (void **) &r);
		sent += r->sent;
		ok += r->ok;
		free(r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%d %d %.3f\n", sent, ok, (double) (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return ok == sent ? 0 : 1;
}
