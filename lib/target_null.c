/* SPDX-License-Identifier: MIT */
/* The target back end of a dry run: records each write as one plan line and
 * answers success from the loop (creates get a made-up id), so the rest of
 * the cycle runs unchanged. It never sends anything to a tenant. */
#include <stdio.h>
#include <string.h>

#include "engine_internal.h"
#include "err.h"
#include "mem.h"

struct npend {
	eng_write_cb cb;
	void *arg;
	int create;
	struct npend *next;
};

struct tnull {
	struct eng_target t;
	struct xts_evtimer *timer;
	void (*line)(void *arg, const char *text);
	void *line_arg;
	struct npend *head, **tail;
	unsigned long long n;
};

static void
tn_fire(void *arg)
{
	struct tnull *t = arg;
	struct npend *p;

	/* Callbacks may queue more: take the list first. */
	while (t->head != NULL) {
		struct xts_batch_result r;
		char id[40];
		p = t->head;
		t->head = p->next;
		if (t->head == NULL)
			t->tail = &t->head;
		memset(&r, 0, sizeof(r));
		r.status = p->create ? 201 : 204;
		if (p->create) {
			snprintf(id, sizeof(id), "00000000-d000-4000-8000-%012llx", ++t->n);
			r.user_id = id;
			r.step = 2;
		}
		p->cb(p->arg, &r);
		xts_free(p);
	}
}

static int
tn_queue(struct tnull *t, eng_write_cb cb, void *arg, int create)
{
	struct npend *p = xts_calloc(1, sizeof(*p));

	if (p == NULL)
		return XTS_ENOMEM;
	p->cb = cb;
	p->arg = arg;
	p->create = create;
	*t->tail = p;
	t->tail = &p->next;
	return xts_ev_timer_start(t->timer, 0);
}

static void
tn_line(struct tnull *t, const char *method, const char *url, json_t *body)
{
	char *js = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	char buf[4096];
	json_malloc_t ma;
	json_free_t fr;

	json_get_alloc_funcs(&ma, &fr);
	snprintf(buf, sizeof(buf), "%s %s%s%s", method, url, js != NULL ? " " : "", js != NULL ? js : "");
	if (js != NULL)
		fr(js); /* jansson's allocator */
	if (t->line != NULL)
		t->line(t->line_arg, buf);
}

static int
tn_write(struct eng_target *et, const char *method, const char *url, json_t *body, eng_write_cb cb,
	 void *arg)
{
	struct tnull *t = (struct tnull *)et;

	tn_line(t, method, url, body);
	return tn_queue(t, cb, arg, 0);
}

static int
tn_create_user(struct eng_target *et, json_t *invitation, json_t *patch, eng_write_cb cb, void *arg)
{
	struct tnull *t = (struct tnull *)et;

	tn_line(t, "POST", "/invitations", invitation);
	tn_line(t, "PATCH", "/users/{invitedUser.id}", patch);
	return tn_queue(t, cb, arg, 1);
}

static void
tn_free(struct eng_target *et)
{
	struct tnull *t = (struct tnull *)et;
	struct npend *p, *n;

	for (p = t->head; p != NULL; p = n) {
		n = p->next;
		xts_free(p);
	}
	xts_ev_timer_free(t->timer);
	xts_free(t);
}

static const struct eng_target_ops tn_ops = { tn_write, tn_create_user, NULL, tn_free, NULL, NULL };

int
eng_target_null_new(struct xts_evloop *ev, void (*line)(void *arg, const char *text), void *arg,
		    struct eng_target **out)
{
	struct tnull *t = xts_calloc(1, sizeof(*t));
	int ret;

	*out = NULL;
	if (t == NULL)
		return XTS_ENOMEM;
	t->t.ops = &tn_ops;
	t->line = line;
	t->line_arg = arg;
	t->tail = &t->head;
	ret = xts_ev_timer_new(ev, tn_fire, t, &t->timer);
	if (ret != 0) {
		xts_free(t);
		return ret;
	}
	*out = &t->t;
	return 0;
}
