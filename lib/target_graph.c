/* SPDX-License-Identifier: MIT */
/* The target back end that writes: every operation, and the reads that
 * decide them, go through one $batch writer on the target tenant's Graph
 * client (governor and throttling are the client's). It decides nothing and
 * keeps no state of its own. */
#include "engine_internal.h"
#include "err.h"
#include "mem.h"

struct tgraph {
	struct eng_target t;
	struct xts_batch *b;
};

static int
tg_write(struct eng_target *t, const char *method, const char *url, json_t *body, eng_write_cb cb,
	 void *arg)
{
	struct tgraph *g = (struct tgraph *)t;

	return xts_batch_add(g->b, method, url, body, NULL, cb, arg, NULL);
}

static int
tg_create_user(struct eng_target *t, json_t *invitation, json_t *patch, eng_write_cb cb, void *arg)
{
	struct tgraph *g = (struct tgraph *)t;

	return xts_batch_create_user(g->b, invitation, patch, cb, arg);
}

static int
tg_read(struct eng_target *t, const char *url, eng_write_cb cb, void *arg)
{
	struct tgraph *g = (struct tgraph *)t;

	return xts_batch_add(g->b, "GET", url, NULL, NULL, cb, arg, NULL);
}

static void
tg_free(struct eng_target *t)
{
	struct tgraph *g = (struct tgraph *)t;

	xts_batch_free(g->b);
	xts_free(g);
}

static void
tg_stop(struct eng_target *t)
{
	xts_batch_stop(((struct tgraph *)t)->b);
}

static void
tg_note_fresh(struct eng_target *t, const char *id)
{
	xts_batch_note_fresh(((struct tgraph *)t)->b, id);
}

static const struct eng_target_ops tg_ops = { tg_write, tg_create_user, tg_read, tg_free, tg_stop, tg_note_fresh };

int
eng_target_graph_new(struct xts_graph *gr, void (*begin)(void *arg), void (*end)(void *arg),
		     void *arg, struct eng_target **out)
{
	struct tgraph *g = xts_calloc(1, sizeof(*g));
	int ret;

	*out = NULL;
	if (g == NULL)
		return XTS_ENOMEM;
	g->t.ops = &tg_ops;
	ret = xts_batch_new(gr, &g->b);
	if (ret != 0) {
		xts_free(g);
		return ret;
	}
	xts_batch_on_answers(g->b, begin, end, arg);
	*out = &g->t;
	return 0;
}
