/*
 * sink_kafka.c — the kafka delivery sink (see dsink.h). Placeholder: being written.
 */
#include <stdio.h>

#include "dsink.h"

static int
kafka_open(struct dsink *s, char *err, size_t errlen)
{
	(void) s;
	snprintf(err, errlen, "kafka sinks are not built yet");
	return -1;
}

const struct dsink_ops kafka_ops = {.kind = "kafka",.open = kafka_open};
