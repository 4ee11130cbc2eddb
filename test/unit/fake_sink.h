/*
 * fake_sink.h — a sink for the unit tests of the delivery core: it keeps
 * every event it is handed, in order, and the test decides each outcome
 * (sink_host_accepted and the others on f->host), in any order.
 */
#ifndef ORDERSYNCD_UNIT_FAKE_SINK_H
#define ORDERSYNCD_UNIT_FAKE_SINK_H

#include "delivery.h"

#define FAKE_MAX 4096

struct fake
{
	struct sink_event *got[FAKE_MAX];	/* every submit, in order */
	int			n;
	int			busy;			/* > 0: that many submits say SINK_BUSY */
	struct sink_host *host;
	struct delivery_sink *ds;
};

/*
 * A fake sink in dl with routes, as the configuration would add it: lane
 * depth and window as given (0: no limit), options' retries fast.
 */
struct fake *fake_add(struct delivery *dl, const char *name, const char *const *patterns,
					  int npatterns, int lane_depth, int window);

/* Let the core act on what the test reported (a poll with nothing ready). */
void		fake_settle(struct delivery *dl);

/* Is ev among the events handed over since index from? */
int			fake_count(const struct fake *f, const char *id, int from);

#endif
