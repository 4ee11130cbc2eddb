/*
 * options.h — the parsed command line, shared by main, stream and snapshot.
 */
#ifndef ORDERSYNCD_OPTIONS_H
#define ORDERSYNCD_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_SINK_SPECS 8

struct options
{
	const char *dbname;			/* conninfo string or URI */
	const char *slot;
	bool		create_slot;
	bool		snapshot;
	const char *sinks[MAX_SINK_SPECS];
	const char *sink_options[MAX_SINK_SPECS];	/* --sink-options after each */
	int			nsinks;
	uint64_t	max_pending_bytes;	/* delivery sinks: pause the stream above */
	const char *metrics_addr;	/* NULL: no HTTP server */
	const char *source;			/* NULL: /ordersync/<dbname> */
	const char *tables;			/* wal2json add-tables */
	const char *terminal_statuses;	/* excluded from the snapshot */
	bool		raw_changes;
	bool		stop_on_bad_input;
	bool		allow_forgeable_events; /* warn instead of refusing (trust.h) */
	/* what sinks from the database may do (sink_policy.h) */
	bool		allow_insecure_sinks;	/* TLS off, personal data in clear text */
	const char *secret_env_prefix;	/* their *_env must start so */
	const char *secret_dir;		/* their *_file inside it; NULL: no files */
	const char *deny_networks;	/* never connect there (any sink) */
	int			status_interval_ms;
	int			fsync_interval_ms;
	uint64_t	max_retained_wal;	/* bytes; warn above */
	int			wal_check_interval_ms;
	uint32_t	reconnect_min_ms;
	uint32_t	reconnect_max_ms;
	int			standby_poll_ms;	/* slot in use: ask again this often */
	const char *state_file;		/* what the relay last saw (stream_failover.h); NULL: none */
	uint64_t	endpos;			/* 0: run forever */
};

#endif
