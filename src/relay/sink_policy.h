/*
 * sink_policy.h — what a delivery sink may do, and the helpers the sinks
 * use to keep to it (see "What the database may configure" in
 * doc/sinks.md).
 *
 * Sinks come from two places that deserve different trust. A --sink on the
 * relay's command line was chosen by the operator of the relay's host.
 * A sink in ordersync.sink was chosen by any ordersync_admin, who must not
 * gain powers on that host through it: run a command, load a library, read
 * a file or an environment variable the relay was not told to share, reach
 * the cloud metadata service, or turn TLS off. sink_check() (sink.h)
 * enforces that before a sink opens; the connect-time hooks of the sinks
 * (sink_check_peer) enforce the network rules again on the address the
 * library actually connects to, so DNS cannot get around them.
 */
#ifndef ORDERSYNCD_SINK_POLICY_H
#define ORDERSYNCD_SINK_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "sink.h"

/* Cloud metadata (AWS, GCP, Azure, Alibaba, AWS over IPv6), link-local,
 * unspecified, multicast and broadcast: never a delivery target. */
#define SINK_DEFAULT_DENY "169.254.0.0/16,0.0.0.0/8,224.0.0.0/4,255.255.255.255/32," \
	"100.100.100.200/32,fe80::/10,::/128,ff00::/8,fd00:ec2::254/128"
#define SINK_DEFAULT_ENV_PREFIX "ORDERSYNC_"

/* Bytes of text from another system (an HTTP body, a broker's reply text)
 * kept in a dead letter: enough to recognise the error, too little to read
 * a service's answer through ordersync.dead_letter. */
#define SINK_EXCERPT_MAX 64

/* "10.0.0.0/8", "fd00::/8", "192.0.2.1" (= /32). 0, or -1 with err. */
int			netmask_parse(const char *text, struct netmask *m, char *err, size_t errlen);

/*
 * A comma-separated list of netmasks (blanks around items are ignored; ""
 * is the empty list). *masks is malloc'd (NULL when empty). 0 or -1 with
 * err.
 */
int			netmask_parse_list(const char *list, struct netmask **masks, int *n,
							   char *err, size_t errlen);

/* Whether sa (AF_INET or AF_INET6; v4-mapped IPv6 counts as IPv4) is in m. */
bool		netmask_contains(const struct netmask *m, const struct sockaddr *sa);

/* "169.254.0.0/16" */
void		netmask_format(const struct netmask *m, char *out, size_t outlen);

/* The first mask of the policy's deny list that holds sa, or NULL. */
const struct netmask *sink_denied(const struct sink_policy *p, const struct sockaddr *sa);

/*
 * May s connect to sa? Checked by each sink on the address it is about to
 * connect to (or, where the library gives no earlier hook, has just
 * connected to, before anything is sent): not in a denied network, and
 * loopback when s was admitted only because its clear text stays on this
 * machine (s->loopback_only). 0, or -1 with why saying which address,
 * which rule, and what to change. Safe to call from any thread.
 */
int			sink_check_peer(const struct sink *s, const struct sockaddr *sa,
							 char *why, size_t whylen);

/*
 * Resolve host and check every address with sink_check_peer: for a
 * library that connects by name with no hook before its connect
 * (rabbitmq-c). 0, or -1 with why (also when host does not resolve).
 */
int			sink_check_host(const struct sink *s, const char *host, int port,
							 char *why, size_t whylen);

/*
 * A secret reference (key "<x>_env" or "<x>_file", or ca_file, cert_file,
 * key_file) checked against s's policy: for a sink from the database the
 * variable must carry the prefix and the file must resolve into the secret
 * directory. resolved gets what to use: the variable's name, or the file's
 * resolved path. 0, or -1 with err.
 */
int			sink_reference(const struct sink *s, const char *key, const char *value,
							char *resolved, size_t resolvedlen, char *err, size_t errlen);

/*
 * Text another system sent, made safe to keep: at most outsize - 1 bytes
 * (callers pass SINK_EXCERPT_MAX + 1 for server answers), printable ASCII
 * only: tabs and line breaks become spaces, other bytes '?', trailing
 * spaces dropped. Returns the length written.
 */
size_t		sink_excerpt(const char *in, size_t len, char *out, size_t outsize);

/*
 * Between sink_policy.c (the checks), sink_net.c (networks) and
 * sink_uri.c (URI text); not for the sinks.
 */
const struct sink_policy *sink_policy_of(const struct sink *s);	/* never NULL */
bool		sink_is_loopback(const struct sockaddr *sa);
/* control, format or bidi characters, invalid UTF-8 */
bool		sink_has_bad_char(const char *text, size_t len);
bool		sink_uri_authority(const char *uri, const char **start, size_t *len);
void		sink_uri_hostport(const char *uri, const char **start, size_t *len);
/* fn on every host of uri (kafka lists several); the first non-zero result */
int			sink_for_each_host(const char *uri, int (*fn) (const char *host, void *arg), void *arg);
bool		sink_host_literal(const char *host, struct sockaddr_storage *ss);
bool		sink_ambiguous_ipv4(const char *host);
bool		sink_uri_all_loopback(const char *uri);
bool		sink_uri_secret_param(const char *uri, char *name, size_t namelen);
bool		sink_in_list(const char *const *list, const char *s);
void		sink_append(char *out, size_t outlen, size_t *o, const char *text, size_t len);

#endif
