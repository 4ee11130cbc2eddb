/*
 * sink_webhook.c — the webhook delivery sink (see dsink.h). Placeholder: being written.
 */
#include <stdio.h>

#include "dsink.h"

static int
webhook_open(struct dsink *s, char *err, size_t errlen)
{
	(void) s;
	snprintf(err, errlen, "webhook sinks are not built yet");
	return -1;
}

const struct dsink_ops webhook_ops = {.kind = "webhook",.open = webhook_open};
