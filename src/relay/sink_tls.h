/*
 * sink_tls.h — a sink's TLS settings from its options (see sink_tls.c).
 */
#ifndef ORDERSYNCD_SINK_TLS_H
#define ORDERSYNCD_SINK_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "sink.h"

/* The system's CA bundle (Debian's ca-certificates). */
#define SINK_TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

struct sink_tls
{
	bool		on;				/* the URI's scheme asks for TLS */
	char	   *ca_file;		/* resolved paths (sink_opts_load), or NULL */
	char	   *cert_file;
	char	   *key_file;
	bool		verify_peer;	/* default true */
};

/*
 * The table entries of the TLS options, for a state whose struct sink_tls
 * is the member m: SINK_TLS_OPTIONS(struct amqp_sink, tls). sink_opts_free
 * frees them (ca_file too when sink_tls_settle set the system's bundle).
 */
#define SINK_TLS_OPTIONS(type, m) \
	{"ca_file", SINK_OPT_FILE, offsetof(type, m.ca_file), 0, 0}, \
	{"cert_file", SINK_OPT_FILE, offsetof(type, m.cert_file), 0, 0}, \
	{"key_file", SINK_OPT_FILE, offsetof(type, m.key_file), 0, 0}

/* Before sink_opts_load: TLS as the scheme says, the peer verified. */
void		sink_tls_init(struct sink_tls *t, bool on);

/*
 * After sink_opts_load: the files need a TLS URI (use_tls says which, as in
 * "use an amqps:// URI"), a client certificate needs its key, and without a
 * ca_file a TLS sink trusts the system's bundle. 0, or -1 with err.
 */
int			sink_tls_settle(const struct sink *s, const char *kind, struct sink_tls *t,
							const char *use_tls, char *err, size_t errlen);

/* Is path a file this process can read? -1 with err naming option key if not. */
int			sink_tls_readable(const struct sink *s, const char *kind, const char *key,
							  const char *path, char *err, size_t errlen);

#endif
