/*
 * sink_webhook.h — what the webhook sink's files share: sink_webhook.c
 * (the sink: requests, signing, the relay's loop), sink_webhook_curl.c
 * (libcurl's multi interface, for https, host names and proxies) and the
 * lean client (sink_webhook_h1.h) for http:// to an address. The rest of
 * the relay knows the sink by sink_webhook_ops (sink.h).
 */
#ifndef ORDERSYNCD_SINK_WEBHOOK_H
#define ORDERSYNCD_SINK_WEBHOOK_H

#include <stdbool.h>
#include <sys/epoll.h>

#include <curl/curl.h>

#include "sink.h"
#include "sink_policy.h"
#include "sink_webhook_h1.h"

#define WH_WHY_LEN 1024

/*
 * The request headers, in this order; a line whose value cannot be sent
 * (too long, or a CR/LF that would break the header block) is left out:
 * they are optional, the body says it all.
 */
enum wh_header
{
	WH_H_CONTENT_TYPE,
	WH_H_SPECVERSION,
	WH_H_CE_ID,
	WH_H_CE_TYPE,
	WH_H_WEBHOOK_ID,
	WH_H_WEBHOOK_TIMESTAMP,
	WH_H_WEBHOOK_SIGNATURE,
	WH_H_EXPECT,				/* no "Expect: 100-continue" round trip before larger bodies */
	WH_NHEADERS
};

#define WH_HEADER_LINE 512

struct wh_state;

/* One request and what it is sending; reused across requests. */
struct wh_req
{
	struct wh_req *next_free;
	struct wh_state *st;
	CURL	   *easy;			/* NULL with the lean client */
	/* the header list handed to curl: nodes and lines kept, values rewritten */
	struct curl_slist hnode[WH_NHEADERS];
	char		hline[WH_NHEADERS][WH_HEADER_LINE];
	size_t		hname_len[WH_NHEADERS];
	struct sink_event *ev;		/* NULL when idle */
	size_t		resp_len;
	char		resp[SINK_EXCERPT_MAX];	/* the start of the answer, raw */
	char		errbuf[CURL_ERROR_SIZE];
	char		denied[512];	/* the policy refused an address: why */
};

/* A socket curl asked us to watch (attached with curl_multi_assign). */
struct wh_sock
{
	struct wh_sock *prev;
	struct wh_sock *next;
	curl_socket_t fd;
	uint32_t	events;			/* as registered in the epoll set */
};

struct wh_state
{
	struct sink *s;
	struct h1_client *h1;		/* http:// to an address: the lean client */
	CURLM	   *multi;			/* else libcurl's */
	char	   *url;			/* for messages: redacted (sink_redact_uri) */
	char	   *ca_file;
	struct wh_signer *signer;	/* NULL: unsigned */
	int			idle_timeout_ms;	/* close, not reuse, a connection idle this long */

	struct wh_req **reqs;		/* every request made, max_in_flight at most */
	int			nreqs;
	int			reqs_cap;
	struct wh_req *free_reqs;
	int			in_flight;
	int			max_in_flight;

	int64_t		timer_at;		/* curl's timeout (monotonic ms), -1: none */
	struct wh_sock *socks;
	int			nsocks;
	int			epfd;			/* the connections' sockets, either client's */
	const struct pollset *polled_ps;	/* where prepare() put epfd */
	int			polled_idx;
	bool		curl_inited;
};

/* A POST is over: report it and make its request free again (sink_webhook.c). */
void		wh_conclude(struct wh_state *st, struct wh_req *req, const struct wh_result *r);

/* sink_webhook_curl.c */

/* Is st's URL one libcurl parses, http or https? 0, or -1 with err naming the sink. */
int			wh_curl_check_url(struct wh_state *st, char *err, size_t errlen);
/* The multi handle, driven through st->epfd; -1 with err filled. */
int			wh_curl_open(struct wh_state *st, char *err, size_t errlen);
/* req's easy handle, set up for st's URL once; false: out of memory. */
bool		wh_curl_new_req(struct wh_state *st, struct wh_req *req);
/* Send req (its event and header lines set); -1 with why when curl refuses. */
int			wh_curl_start(struct wh_state *st, struct wh_req *req, const bool *use,
						  char *why, size_t whylen);
/* One epoll event of curl's sockets. */
void		wh_curl_event(struct wh_state *st, const struct epoll_event *ev);
/* Run curl's timer when due and report finished transfers. */
void		wh_curl_poll(struct wh_state *st, int64_t now);
/* Every handle, the multi handle and the sockets' records. */
void		wh_curl_close(struct wh_state *st);

#endif
