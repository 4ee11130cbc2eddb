/*
 * sink_webhook_outcome.c — what the end of a webhook POST means for its
 * event, whichever client sent it (libcurl or sink_webhook_h1.c): 2xx
 * accepted; 408, 429, 5xx, timeouts and network errors retryable (no
 * earlier than a Retry-After on 429/503); anything else refused for good.
 * And the reason the operator reads in the log and in
 * ordersync.dead_letter: the status, at most SINK_EXCERPT_MAX printable
 * bytes of the answer (enough to recognise an error page, too little to
 * read an internal service through a sink pointed at it) and what to do.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "sink_policy.h"
#include "sink_webhook_h1.h"
#include "sink_webhook_sign.h"

#define WH_WHY_LEN 1024

/* Why a transfer failed without an HTTP answer, and what to do about it. */
static void
describe_failure(const char *url, const struct wh_result *r, char *why, size_t len)
{
	CURLcode	res = (CURLcode) r->failure;
	char		detail[161];
	const char *hint;

	/* curl's text can quote the server (a TLS alert, a certificate name) */
	if (r->detail && r->detail[0])
		sink_excerpt(r->detail, strlen(r->detail), detail, sizeof(detail));
	else
		snprintf(detail, sizeof(detail), "%s", curl_easy_strerror(res));
	switch (res)
	{
		case CURLE_COULDNT_CONNECT:
			hint = "nothing accepts connections there: start the receiver or fix the sink's URL";
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
			hint = "the host name does not resolve: fix the sink's URL or DNS";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			hint = "the receiver did not answer in time: make it answer faster or raise "
				"the sink's timeout_ms / connect_timeout_ms";
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CONNECT_ERROR:
			hint = "TLS failed; certificates are always verified: give the receiver a "
				"certificate for this host name signed by a trusted CA, or point the sink's "
				"option ca_file at your private CA's PEM file";
			break;
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
			hint = "the connection broke: the receiver crashed, restarted or closed it early";
			break;
		default:
			hint = "check that the receiver is up and reachable from this host";
			break;
	}
	snprintf(why, len, "POST %s failed: %s (%s); %s", url, detail,
			 curl_easy_strerror(res), hint);
}

/* What to do about an answer that is not 2xx. */
static const char *
refusal_hint(long status)
{
	if (status >= 300 && status < 400)
		return "redirects are not followed: set the sink's URL to the final address";
	if (status == 401 || status == 403)
		return "the receiver rejected the request's credentials: if it checks the "
			"webhook-signature, give the sink the same secret as the receiver "
			"(secret_env/secret_file), then SELECT ordersync.redeliver(id) the dead letters";
	if (status == 404 || status == 405)
		return "nothing takes POSTs at that URL: fix the sink's URL, then "
			"SELECT ordersync.redeliver(id) the dead letters";
	return "the receiver refused this event for good: fix the receiver (or the "
		"data), then SELECT ordersync.redeliver(id) it";
}

/*
 * "HTTP 404 (Not Found) from URL: <excerpt>" and what follows: only the
 * status and a short, sanitized excerpt of what the receiver said.
 */
static void
describe_answer(const char *url, const struct wh_result *r, int64_t not_before,
				char *why, size_t len)
{
	long		status = r->status;
	const char *loc = r->location;
	char		excerpt[SINK_EXCERPT_MAX + 1];
	char		where[SINK_EXCERPT_MAX + 16] = "";

	if (sink_excerpt(r->body, r->body_len, excerpt, sizeof(excerpt)) == 0)
		strcpy(excerpt, "(empty body)");
	if (status >= 300 && status < 400 && loc && loc[0])
	{
		char		shown[512];

		/* where it points is the receiver's answer too: redacted and bounded */
		sink_redact_uri(loc, shown, sizeof(shown));
		snprintf(where, sizeof(where), " (Location: %.*s)", SINK_EXCERPT_MAX, shown);
	}
	if (wh_classify(status) == WH_RETRY)
		snprintf(why, len, "HTTP %ld (%s) from %s: %s; the receiver %s%s", status,
				 wh_status_text(status), url, excerpt,
				 status == 429 ? "asks to slow down" :
				 status == 408 ? "timed out reading the request" :
				 "failed: look at its logs",
				 not_before ? " (next attempt no earlier than its Retry-After)" : "");
	else
		snprintf(why, len, "HTTP %ld (%s) from %s: %s%s; %s", status, wh_status_text(status),
				 url, excerpt, where, refusal_hint(status));
}

void
wh_report(struct sink *s, const char *url, struct sink_event *ev, const struct wh_result *r)
{
	char		why[WH_WHY_LEN];
	int64_t		not_before = 0;
	enum wh_outcome outcome = WH_RETRY;

	if (r->failure == 0)
	{
		outcome = wh_classify(r->status);
		if (outcome == WH_RETRY && (r->status == 429 || r->status == 503) && r->retry_after_s > 0)
		{
			/* past max_age the relay gives up anyway: no point waiting longer */
			int64_t		wait_ms = (int64_t) r->retry_after_s * 1000 < s->opt.max_age_ms ?
				(int64_t) r->retry_after_s * 1000 : s->opt.max_age_ms;

			not_before = sink_now_ms() + wait_ms;
		}
		if (outcome != WH_ACCEPTED)
			describe_answer(url, r, not_before, why, sizeof(why));
	}
	else if (r->denied)
	{
		/* the policy refused every address: no attempt will ever go there */
		snprintf(why, sizeof(why), "%s", r->detail);
		outcome = WH_REFUSED;
	}
	else
		describe_failure(url, r, why, sizeof(why));

	if (outcome == WH_ACCEPTED)
		sink_host_accepted(s->host, ev);
	else
		sink_host_failed(s->host, ev, outcome == WH_RETRY, not_before, why);
}
