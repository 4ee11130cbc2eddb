/*
 * pgerr.c — map server errors to advice (see pgerr.h).
 *
 * Matching on message text is a last resort, used only where PostgreSQL
 * gives no distinctive SQLSTATE (connection failures, the Debian
 * output_plugin_libraries check); English server messages are assumed
 * (lc_messages=C), as in the server log most operators search.
 */
#include <string.h>

#include "pgerr.h"

#define HAS(s) (message && strstr(message, (s)) != NULL)
#define STATE(s) (sqlstate && strcmp(sqlstate, (s)) == 0)

struct pgerr_advice
pgerr_classify(const char *sqlstate, const char *message)
{
	struct pgerr_advice a = {false, ""};

	if (HAS("may not be used as an output plugin"))
		a.hint = "this server only lets listed libraries act as output plugins; as a superuser run\n"
			"    ALTER SYSTEM SET output_plugin_libraries = pgoutput, test_decoding, wal2json\n"
			"then restart PostgreSQL (the list is unquoted: quoting it makes one wrong name)";
	else if (HAS("could not access file \"wal2json\"") || (HAS("wal2json") && STATE("58P01")))
		a.hint = "the wal2json output plugin is not installed on the server: "
			"apt-get install postgresql-15-wal2json (or your platform's wal2json package)";
	else if (HAS("wal_level"))
		a.hint = "logical decoding needs wal_level = logical: run\n"
			"    ALTER SYSTEM SET wal_level = logical\n"
			"then restart PostgreSQL";
	else if (STATE("55006") || HAS("is active for PID"))
	{
		a.transient = true;
		a.hint = "another process is reading this slot (another ordersyncd or pg_recvlogical): "
			"stop it or use another --slot; retrying in case it is a connection the server "
			"has not noticed closing yet";
	}
	else if (HAS("replication slot") && HAS("does not exist"))
		a.hint = "create the slot by adding --create-slot (and --snapshot for an initial "
			"snapshot of open orders)";
	else if (HAS("was not created in this database"))
		a.hint = "logical slots belong to one database: connect --dbname to the slot's database or use another --slot";
	else if (HAS("must be superuser or replication role") || HAS("permission denied") ||
			 STATE("42501"))
		a.hint = "the role needs the REPLICATION attribute (ALTER ROLE name REPLICATION) "
			"and SELECT on the ordersync tables";
	else if (HAS("no pg_hba.conf entry"))
		a.hint = "add a pg_hba.conf line allowing this role to connect to the database "
			"(replication=database connections match the database name), then reload";
	else if (HAS("password authentication failed") || STATE("28P01") || STATE("28000"))
		a.hint = "check the user and password in --dbname (or ~/.pgpass)";
	else if (STATE("3D000") || HAS("does not exist"))
		a.hint = "check --dbname: the database or role does not exist";
	else if (HAS("all replication slots are in use") || STATE("53400"))
		a.hint = "raise max_replication_slots or drop unused slots";
	else if (HAS("number of requested standby connections exceeds max_wal_senders") ||
			 HAS("too many clients") || STATE("53300"))
	{
		a.transient = true;
		a.hint = "the server has no free connection or WAL sender: raise max_wal_senders / "
			"max_connections, retrying meanwhile";
	}
	else
	{
		/* server down, restarting, network trouble: all worth retrying */
		a.transient = true;
		if (HAS("starting up") || HAS("shutting down") || HAS("terminating connection") ||
			HAS("Connection refused") || HAS("No such file or directory") ||
			HAS("server closed the connection") || HAS("could not connect") ||
			HAS("timeout") || HAS("recovery"))
			a.hint = "the server is unreachable or restarting; retrying with backoff";
	}
	return a;
}
