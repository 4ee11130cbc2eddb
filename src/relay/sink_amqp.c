/*
 * sink_amqp.c — the amqp delivery sink (see dsink.h). Placeholder: being written.
 */
#include <stdio.h>

#include "dsink.h"

static int
amqp_open(struct dsink *s, char *err, size_t errlen)
{
	(void) s;
	snprintf(err, errlen, "amqp sinks are not built yet");
	return -1;
}

const struct dsink_ops amqp_ops = {.kind = "amqp",.open = amqp_open};
