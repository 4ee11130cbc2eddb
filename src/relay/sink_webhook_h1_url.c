/*
 * sink_webhook_h1_url.c — which URLs the lean HTTP/1.1 client takes
 * (http:// to an address literal, no userinfo, no proxy curl would use),
 * and the request line and Host it sends to them, made once per client.
 * libcurl's URL parser reads the URL, so both clients read it alike.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "sink_policy.h"
#include "sink_webhook_h1_conn.h"

static bool
proxy_in_environment(void)
{
	static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", NULL};

	for (int i = 0; vars[i]; i++)
	{
		const char *v = getenv(vars[i]);

		if (v && *v)
			return true;
	}
	return false;
}

/* host without brackets into out; false when it is not an address literal */
static bool
literal_host(CURLU *u, struct sockaddr_storage *ss, char *out, size_t outlen)
{
	char	   *host = NULL;
	bool		ok = false;

	if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host)
	{
		size_t		n = strlen(host);

		if (host[0] == '[' && n > 2 && host[n - 1] == ']')
			snprintf(out, outlen, "%.*s", (int) (n - 2), host + 1);
		else
			snprintf(out, outlen, "%s", host);
		ok = strchr(out, '%') == NULL && sink_host_literal(out, ss);
	}
	curl_free(host);
	return ok;
}

bool
h1_usable(const struct sink *s, const char *url)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL,
			   *user = NULL;
	struct sockaddr_storage ss;
	char		host[256];
	bool		ok;

	if (u == NULL)
		return false;
	ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		strcmp(scheme, "http") == 0 &&
		curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
		literal_host(u, &ss, host, sizeof(host)) &&
		/* curl honours http_proxy for trusted sinks: so must the choice */
		!(s->trusted && proxy_in_environment());
	curl_free(scheme);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

bool
h1_prefix(struct h1_client *c)
{
	CURLU	   *u = curl_url();
	char	   *path = NULL,
			   *query = NULL,
			   *port = NULL;
	char		host[256];
	bool		v6;
	int			portnum;
	size_t		cap;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, c->s->uri, 0) != CURLUE_OK ||
		!literal_host(u, &c->addr, host, sizeof(host)) ||
		curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
	{
		curl_free(path);
		curl_free(port);
		curl_url_cleanup(u);
		return false;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK)
		query = NULL;
	portnum = atoi(port);
	snprintf(c->host, sizeof(c->host), "%.60s port %d", host, portnum);
	v6 = c->addr.ss_family == AF_INET6;
	if (v6)
	{
		((struct sockaddr_in6 *) &c->addr)->sin6_port = htons((uint16_t) portnum);
		c->addrlen = sizeof(struct sockaddr_in6);
	}
	else
	{
		((struct sockaddr_in *) &c->addr)->sin_port = htons((uint16_t) portnum);
		c->addrlen = sizeof(struct sockaddr_in);
	}
	cap = strlen(path) + (query ? strlen(query) : 0) + strlen(host) + 128;
	c->prefix = xmalloc(cap);
	c->prefix_len = (size_t) snprintf(c->prefix, cap,
									  "POST %s%s%s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n"
									  "User-Agent: ordersyncd\r\nAccept: */*\r\n",
									  path, query ? "?" : "", query ? query : "",
									  v6 ? "[" : "", host, v6 ? "]" : "",
									  portnum == 80 ? "" : ":", portnum == 80 ? "" : port);
	curl_free(path);
	curl_free(query);
	curl_free(port);
	curl_url_cleanup(u);
	return true;
}
