/*
 * fixture.c — the relay-with-a-file-sink fixture (see fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "log.h"
#include "metrics.h"

struct relay R;
static char dir[64];
static char path[128];

int
fixture_open(const struct relay_config *cfg)
{
	char		spec[140],
				err[512];

	log_threshold = (enum log_level) -1;	/* bad input is logged on purpose */
	strcpy(dir, "/tmp/ordersyncd-unit-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/e.jsonl", dir);
	snprintf(spec, sizeof(spec), "file:%s", path);
	if (relay_init(&R, cfg) != 0)
		return -1;
	return delivery_add_cli_sink(&R.dl, spec, NULL, err, sizeof(err));
}

int
fixture_close(void)
{
	char		cmd[128];

	relay_free(&R);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
fixture_feed(const char *line)
{
	return relay_line(&R, 0x10, line, strlen(line));
}

int
fixture_count_lines(const char *needle)
{
	FILE	   *f = fopen(path, "r");
	char		line[8192];
	int			n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (needle == NULL || strstr(line, needle))
			n++;
	fclose(f);
	return n;
}
