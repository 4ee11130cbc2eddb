/*
 * fake_sink.c — the test sink (see fake_sink.h).
 */
#include <stdlib.h>
#include <string.h>

#include "fake_sink.h"

static int
fake_submit(struct sink *s, struct sink_event *ev)
{
	struct fake *f = s->state;

	if (f->busy > 0)
	{
		f->busy--;
		return SINK_BUSY;
	}
	if (f->n < FAKE_MAX)
		f->got[f->n++] = ev;
	return SINK_TAKEN;
}

static void
fake_prepare(struct sink *s, struct pollset *ps, int *timeout_ms)
{
	(void) s;
	(void) ps;
	(void) timeout_ms;
}

static void
fake_poll(struct sink *s, const struct pollset *ps)
{
	(void) s;
	(void) ps;
}

static void
fake_close(struct sink *s)
{
	free(s->state);
}

static bool
fake_claims(const char *uri)
{
	return strncmp(uri, "fake:", 5) == 0;
}

/* one table per lane depth: it is a property of the kind */
static struct sink_ops fake_ops[2] = {
	{.kind = "fake",.claims = fake_claims,.submit = fake_submit,.prepare = fake_prepare,
	.poll = fake_poll,.close = fake_close},
	{.kind = "fake",.lane_depth = 1,.claims = fake_claims,.submit = fake_submit,
	.prepare = fake_prepare,.poll = fake_poll,.close = fake_close},
};

struct fake *
fake_add(struct delivery *dl, const char *name, const char *const *patterns, int npatterns,
		 int lane_depth, int window)
{
	struct delivery_sink *ds = xcalloc(sizeof(*ds));
	struct sink *s = xcalloc(sizeof(*s));
	struct fake *f = xcalloc(sizeof(*f));

	sink_host_init(&ds->host);
	TAILQ_INIT(&ds->ready);
	ds->sink = s;
	ds->window = window;
	ds->metrics_id = -1;
	s->ops = &fake_ops[lane_depth == 1];
	s->name = xstrdup(name);
	s->uri = xstrdup("fake:");
	s->policy = sink_default_policy();
	sink_parse_options(&s->opt, NULL, NULL, 0);
	s->opt.backoff_min_ms = 1;
	s->opt.backoff_max_ms = 2;
	s->host = &ds->host;
	s->state = f;
	f->host = &ds->host;
	f->ds = ds;
	delivery_add_sink(dl, ds, false, NULL);
	for (int i = 0; i < npatterns; i++)
		delivery_add_pattern(ds, patterns[i]);
	return f;
}

void
fake_settle(struct delivery *dl)
{
	delivery_poll(dl, NULL);
}

int
fake_count(const struct fake *f, const char *id, int from)
{
	int			n = 0;

	for (int i = from; i < f->n; i++)
		if (strcmp(f->got[i]->id, id) == 0)
			n++;
	return n;
}
