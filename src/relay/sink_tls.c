/*
 * sink_tls.c — the rules every TLS-capable sink applies to its TLS options
 * (ca_file, cert_file, key_file, verify_peer): they only make sense on a
 * TLS URI, a client certificate comes with its key, and a sink with no CA
 * of its own trusts the system's bundle. How the files reach the client
 * library (rabbitmq-c, libnats, libcurl, librdkafka) is the sink's glue.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sink_tls.h"

void
sink_tls_init(struct sink_tls *t, bool on)
{
	memset(t, 0, sizeof(*t));
	t->on = on;
	t->verify_peer = true;
}

int
sink_tls_settle(const struct sink *s, const char *kind, struct sink_tls *t,
				const char *use_tls, char *err, size_t errlen)
{
	bool		verify_given = sink_opt_given(s, "verify_peer");

	if (!t->on && (t->ca_file || t->cert_file || t->key_file || verify_given))
	{
		snprintf(err, errlen, "%s sink \"%s\": ca_file, cert_file%s key_file%s are for TLS; %s",
				 kind, s->name, verify_given ? "," : " and",
				 verify_given ? " and verify_peer" : "", use_tls);
		return -1;
	}
	if ((t->cert_file == NULL) != (t->key_file == NULL))
	{
		snprintf(err, errlen, "%s sink \"%s\": a client certificate needs both cert_file and "
				 "key_file", kind, s->name);
		return -1;
	}
	if (t->on && t->ca_file == NULL && access(SINK_TLS_SYSTEM_CA, R_OK) == 0)
		t->ca_file = xstrdup(SINK_TLS_SYSTEM_CA);
	return 0;
}

int
sink_tls_readable(const struct sink *s, const char *kind, const char *key, const char *path,
				  char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "r");

	if (f == NULL)
	{
		snprintf(err, errlen, "%s sink \"%s\": cannot read %s \"%s\": %s; make it readable by "
				 "the user ordersyncd runs as", kind, s->name, key, path, strerror(errno));
		return -1;
	}
	fclose(f);
	return 0;
}
