/* SPDX-License-Identifier: MIT */
/* The target writer: operations (writes, and the GETs that decide them)
 * packed into JSON $batch requests of up to 20
 * (microsoft-graph-docs-contrib concepts/json-batching.md), each sub-request
 * admitted by the governor and judged on its own: 2xx done, 429 requeued after
 * Retry-After, 5xx backed off, 424 follows its dependency, other 4xx handed
 * to the engine. An endpoint that refuses $batch itself (400, 404, 405, 501
 * on the envelope) gets the same operations one request each, judged the same
 * way, for the rest of the client's life. It decides nothing about users and
 * stores nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "graph.h"
#include "graph_internal.h"
#include "log.h"
#include "mem.h"
#include "text.h"

#define BATCH_MAX 20
#define BATCH_PARALLEL 4
#define DIRECT_PARALLEL 16 /* single requests in flight without $batch */
/* When the budget, not the queue, limits us, hold admitted operations up to
 * this long so that envelopes stay full instead of carrying one op each. */
#define BATCH_LINGER_MS 500

enum { OP_QUEUED, OP_INFLIGHT, OP_DONE };

struct sent;

struct xts_batch_op {
	struct xts_batch *b;
	unsigned id;
	char *method;
	char *url;
	json_t *body;
	struct xts_batch_op *dep;
	int dep_failed;
	xts_batch_cb cb;
	void *arg;
	void (*arg_free)(void *arg); /* frees arg when the writer is freed first */
	struct xts_throttle_cost cost;
	int state;
	int attempts;
	int dep_waits; /* 424s answered while its dependency was pending */
	int alone;     /* an envelope holding it was refused (400): sent by itself */
	long long not_before;
	struct xts_batch_op *next, *prev;
};

struct sent {
	struct xts_batch *b;
	struct xts_batch_op *ops[BATCH_MAX];
	int n;
	long long started; /* first op admitted */
	struct xts_graph_req *req;
	struct sent *next;
};

/* Objects created or restored in the last XTS_BATCH_FRESH_MS: Graph takes
 * at most 150 invitations per 5 s per tenant (throttling-limits.md), 3,600
 * in those 2 minutes, so the ring does not wrap within its window. */
#define FRESH_MAX 4096

struct xts_batch {
	struct xts_graph *g;
	struct xts_batch_op *head, *tail; /* live ops, FIFO */
	struct sent *sent;                /* batches in flight */
	struct sent *filling;             /* admitted ops lingering for more budget */
	int nsent;
	unsigned next_id;
	size_t pending;
	struct xts_evtimer *timer;
	int busy;          /* inside callbacks */
	int free_pending;  /* xts_batch_free called while busy */
	int stopping;      /* xts_batch_stop: nothing more is sent */
	void (*idle_cb)(void *arg);
	void *idle_arg;
	void (*ans_begin)(void *arg); /* xts_batch_on_answers */
	void (*ans_end)(void *arg);
	void *ans_arg;
	struct {                      /* xts_batch_note_fresh: a ring */
		char id[40];
		long long at;
	} fresh[FRESH_MAX];
	unsigned fresh_next;
};

static void pack(void *arg);

/* Whether op draws on the write (or invitation) budget, not only on the
 * request units: every method but GET (xts_throttle_cost_of). */
static int
is_write(const struct xts_batch_op *op)
{
	return op->cost.writes > 0 || op->cost.invitation > 0;
}

static int
arm(struct xts_batch *b, long long ms)
{
	int ret;

	if (b->timer == NULL) {
		ret = xts_ev_timer_new(xts_http_evloop(xts_graph_ctx_http(b->g->ctx)), pack, b,
				       &b->timer);
		if (ret != 0)
			return ret;
	}
	return xts_ev_timer_start(b->timer, ms);
}

int
xts_batch_new(struct xts_graph *g, struct xts_batch **out)
{
	struct xts_batch *b = xts_calloc(1, sizeof(*b));

	if (b == NULL)
		return XTS_ENOMEM;
	b->g = g;
	*out = b;
	return 0;
}

static void
op_free(struct xts_batch_op *op)
{
	json_decref(op->body);
	xts_free(op->method);
	xts_free(op->url);
	xts_free(op);
}

static void
really_free(struct xts_batch *b)
{
	struct xts_batch_op *op, *next;
	struct sent *s, *sn;

	for (s = b->sent; s != NULL; s = sn) {
		sn = s->next;
		xts_graph_cancel(s->req);
		xts_free(s);
	}
	xts_free(b->filling);
	for (op = b->head; op != NULL; op = next) {
		next = op->next;
		if (op->arg_free != NULL)
			op->arg_free(op->arg);
		op_free(op);
	}
	xts_ev_timer_free(b->timer);
	xts_free(b);
}

void
xts_batch_free(struct xts_batch *b)
{
	if (b == NULL)
		return;
	if (b->busy) {
		/* its owner is going: no group of answers ends in it now */
		b->free_pending = 1;
		b->ans_begin = b->ans_end = NULL;
		return;
	}
	really_free(b);
}

void
xts_batch_stop(struct xts_batch *b)
{
	if (b == NULL || b->stopping)
		return;
	b->stopping = 1;
	if (arm(b, 0) != 0)
		xts_err("graph: %s: cannot arm the batch timer", b->g->tc.name);
}

size_t
xts_batch_pending(const struct xts_batch *b)
{
	return b->pending;
}

void
xts_batch_on_idle(struct xts_batch *b, void (*cb)(void *arg), void *arg)
{
	b->idle_cb = cb;
	b->idle_arg = arg;
}

void
xts_batch_on_answers(struct xts_batch *b, void (*begin)(void *arg), void (*end)(void *arg),
		     void *arg)
{
	b->ans_begin = begin;
	b->ans_end = end;
	b->ans_arg = arg;
}

/* Around callbacks that may run several in a row: the caller's group. */
static void
answers_begin(struct xts_batch *b)
{
	if (b->ans_begin != NULL)
		b->ans_begin(b->ans_arg);
}

static void
answers_end(struct xts_batch *b)
{
	if (b->ans_end != NULL)
		b->ans_end(b->ans_arg);
}

int
xts_batch_add(struct xts_batch *b, const char *method, const char *url, json_t *body,
	      struct xts_batch_op *depends_on, xts_batch_cb cb, void *arg,
	      struct xts_batch_op **out)
{
	struct xts_batch_op *op;
	int ret;

	if (b == NULL || method == NULL || url == NULL || url[0] != '/' || cb == NULL ||
	    b->free_pending)
		return XTS_EINVAL;
	if (depends_on != NULL && (depends_on->b != b || depends_on->state == OP_DONE))
		return XTS_EINVAL;
	op = xts_calloc(1, sizeof(*op));
	if (op == NULL)
		return XTS_ENOMEM;
	op->b = b;
	op->method = xts_strdup(method);
	op->url = xts_strdup(url);
	if (op->method == NULL || op->url == NULL) {
		op_free(op);
		return XTS_ENOMEM;
	}
	op->body = json_incref(body);
	op->dep = depends_on;
	op->cb = cb;
	op->arg = arg;
	op->id = ++b->next_id;
	op->cost = xts_throttle_cost_of(method, url);
	op->state = OP_QUEUED;
	op->prev = b->tail;
	if (b->tail != NULL)
		b->tail->next = op;
	else
		b->head = op;
	b->tail = op;
	b->pending++;
	ret = arm(b, 0);
	if (ret != 0) {
		/* unqueue again: the caller gets the error, no callback */
		b->tail = op->prev;
		if (b->tail != NULL)
			b->tail->next = NULL;
		else
			b->head = NULL;
		b->pending--;
		op_free(op);
		return ret;
	}
	if (out != NULL)
		*out = op;
	return 0;
}

/* Finish op: callback, then release it and tell its dependents. */
static void
op_finish(struct xts_batch_op *op, int err, long status, json_t *body,
	  const struct xts_graph_error *ge)
{
	struct xts_batch *b = op->b;
	struct xts_batch_result r;
	struct xts_batch_op *o;

	op->state = OP_DONE;
	for (o = b->head; o != NULL; o = o->next) {
		if (o->dep != op)
			continue;
		o->dep = NULL;
		if (err != 0)
			o->dep_failed = 1;
	}
	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		b->head = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	else
		b->tail = op->prev;
	b->pending--;
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.status = status;
	r.body = body;
	r.gerr = err != 0 ? ge : NULL;
	b->busy++;
	op->cb(op->arg, &r);
	b->busy--;
	op_free(op);
}

static void
maybe_idle(struct xts_batch *b)
{
	if (b->pending == 0 && b->idle_cb != NULL && !b->free_pending) {
		b->busy++;
		b->idle_cb(b->idle_arg);
		b->busy--;
	}
}

/* o[key] = a new string of v; keys are literals, v checked as UTF-8 (a
 * URL can carry a source's value). 0 or -1. */
static int
set_str(json_t *o, const char *key, const char *v)
{
	return json_object_set_new_nocheck(o, key, json_string(v));
}

/* One sub-request of an envelope (json-batching.md): built without
 * json_pack's format parser, which cost ~4,500 instructions each. */
static json_t *
sub_request(struct xts_batch_op *op, int with_dep)
{
	json_t *j = json_object(), *h, *d;
	char id[16], dep[16];

	snprintf(id, sizeof(id), "%u", op->id);
	if (j == NULL || set_str(j, "id", id) != 0 || set_str(j, "method", op->method) != 0 ||
	    set_str(j, "url", op->url) != 0)
		goto fail;
	if (op->body != NULL) {
		if (json_object_set_nocheck(j, "body", op->body) != 0)
			goto fail;
		/* made only now: set_new takes it even when it fails */
		h = json_object();
		if (json_object_set_new_nocheck(j, "headers", h) != 0 ||
		    set_str(h, "Content-Type", "application/json") != 0)
			goto fail;
	}
	if (with_dep && op->dep != NULL) {
		snprintf(dep, sizeof(dep), "%u", op->dep->id);
		d = json_array();
		if (json_object_set_new_nocheck(j, "dependsOn", d) != 0 ||
		    json_array_append_new(d, json_string(dep)) != 0)
			goto fail;
	}
	return j;
fail:
	json_decref(j);
	return NULL;
}

static void on_batch(void *arg, const struct xts_graph_result *res);
static void on_direct(void *arg, const struct xts_graph_result *res);

/* Without $batch: op alone, as the request it stands for (its URL is
 * relative to the version, as in a batch). */
static int
send_direct(struct xts_batch *b, struct sent *s)
{
	struct xts_batch_op *op = s->ops[0];
	char *url;
	size_t n = strlen(op->url);
	int ret;

	if (s->n != 1)
		return XTS_EINVAL; /* one request is one operation */
	url = xts_malloc(n + sizeof("/v1.0"));
	if (url == NULL)
		return XTS_ENOMEM;
	memcpy(url, "/v1.0", 5);
	memcpy(url + 5, op->url, n + 1);
	ret = xts_graph_request(b->g, op->method, url, op->body,
				XTS_GRAPH_NO_THROTTLE | XTS_GRAPH_NO_RETRY, on_direct, s, &s->req);
	xts_free(url);
	return ret;
}

static int
in_sent(const struct sent *s, const struct xts_batch_op *op)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->ops[i] == op)
			return 1;
	return 0;
}

static void
requeue(struct xts_batch_op *op, long long not_before)
{
	op->state = OP_QUEUED;
	op->not_before = not_before;
}

/* The lingering envelope's operations go back to the queue, in their place,
 * their budget refunded: it will not be sent as it is. */
static void
unfill(struct xts_batch *b, long long now)
{
	struct sent *s = b->filling;

	b->filling = NULL;
	if (s == NULL)
		return;
	for (int i = 0; i < s->n; i++) {
		xts_throttle_refund(b->g->throttle, &s->ops[i]->cost, now);
		requeue(s->ops[i], 0);
	}
	xts_free(s);
}

/* Stopping: every operation not in a sent envelope ends with XTS_ECANCELED
 * (a lingering envelope's ops are refunded first). Those were never sent, or
 * wait for a retry of an attempt whose outcome the caller already treats as
 * unknown; callbacks may queue more (a create's PATCH): they end too. */
static void
cancel_queued(struct xts_batch *b)
{
	struct xts_batch_op *op, *next;
	struct xts_graph_error ge;

	unfill(b, xts_now_ms());
	memset(&ge, 0, sizeof(ge));
	snprintf(ge.code, sizeof(ge.code), "Canceled");
	snprintf(ge.message, sizeof(ge.message), "not sent: the writer is stopping");
	for (op = b->head; op != NULL && !b->free_pending; op = next) {
		next = op->next;
		if (op->state != OP_QUEUED)
			continue;
		op_finish(op, XTS_ECANCELED, 0, NULL, &ge);
		next = b->head; /* the list may have changed under the callback */
	}
}

/* Send what can go now; re-arm for what must wait. */
static void
pack(void *arg)
{
	struct xts_batch *b = arg;
	struct xts_batch_op *op, *next;
	struct sent *s = NULL;
	struct xts_graph_error ge;
	json_t *reqs = NULL, *body = NULL;
	long long now = xts_now_ms(), wake = -1, w;
	int ret;

	b->busy++;
	/* Dependents of failed operations fail first (424 as Graph would);
	 * then, stopping, everything queued. One group of answers, ended
	 * before anything is sent. */
	for (op = b->head; op != NULL && !(op->state == OP_QUEUED && op->dep_failed); op = op->next)
		;
	if (op != NULL || b->stopping) {
		answers_begin(b);
		for (op = b->head; op != NULL; op = next) {
			next = op->next;
			if (op->state == OP_QUEUED && op->dep_failed) {
				memset(&ge, 0, sizeof(ge));
				ge.status = 424;
				snprintf(ge.code, sizeof(ge.code), "FailedDependency");
				snprintf(ge.message, sizeof(ge.message),
					 "the operation it depends on failed");
				op_finish(op, XTS_EGRAPH, 424, NULL, &ge);
				next = b->head; /* the list may have changed under the callback */
			}
		}
		if (b->stopping && !b->free_pending)
			cancel_queued(b);
		answers_end(b);
	}
	if (b->free_pending || b->stopping)
		goto done;
	while (b->nsent < (b->g->no_batch ? DIRECT_PARALLEL : BATCH_PARALLEL)) {
		int budget_stop = 0, writes_held = 0;
		int cap = b->g->no_batch ? 1 : BATCH_MAX;

		s = b->filling;
		b->filling = NULL;
		if (s == NULL) {
			s = xts_calloc(1, sizeof(*s));
			if (s == NULL)
				goto nomem;
			s->b = b;
		}
		for (op = b->head; op != NULL && s->n < cap; op = op->next) {
			if (s->n > 0 && s->ops[0]->alone)
				break; /* a lingering envelope of one that goes alone */
			if (op->state != OP_QUEUED)
				continue;
			if (op->not_before > now) {
				if (wake < 0 || op->not_before < wake)
					wake = op->not_before;
				continue;
			}
			if (op->dep != NULL && !in_sent(s, op->dep))
				continue; /* its dependency is queued elsewhere or in flight */
			if (writes_held && is_write(op))
				continue;
			if (op->alone && s->n > 0)
				continue; /* it goes in an envelope of its own */
			w = xts_throttle_admit(b->g->throttle, &op->cost, now);
			if (w > 0) {
				if (wake < 0 || now + w < wake)
					wake = now + w;
				budget_stop = 1;
				if (!is_write(op))
					break;
				/* Writes keep their FIFO order under the budget;
				 * a read behind them draws on the request units
				 * only and goes when those allow. */
				writes_held = 1;
				continue;
			}
			if (s->n == 0)
				s->started = now;
			op->state = OP_INFLIGHT;
			s->ops[s->n++] = op;
			if (op->alone)
				break;
		}
		if (s->n == 0) {
			xts_free(s);
			s = NULL;
			break;
		}
		if (budget_stop && s->n < cap && wake - s->started <= BATCH_LINGER_MS) {
			b->filling = s; /* more budget soon: fill the envelope first */
			s = NULL;
			break;
		}
		if (b->g->no_batch || s->ops[0]->alone) {
			ret = send_direct(b, s);
			goto sent;
		}
		reqs = json_array();
		if (reqs == NULL)
			goto nomem;
		for (int i = 0; i < s->n; i++) {
			json_t *sr = sub_request(s->ops[i], 1);

			if (sr == NULL || json_array_append_new(reqs, sr) != 0)
				goto nomem;
		}
		body = json_pack("{s:o}", "requests", reqs);
		reqs = NULL;
		if (body == NULL)
			goto nomem;
		/* Sub-requests were admitted one by one above; the envelope
		 * itself is not charged again (still gated by Retry-After). */
		ret = xts_graph_request(b->g, "POST", "/v1.0/$batch", body, XTS_GRAPH_NO_THROTTLE,
					on_batch, s, &s->req);
		json_decref(body);
		body = NULL;
sent:
		if (ret != 0) {
			for (int i = 0; i < s->n; i++) {
				xts_throttle_refund(b->g->throttle, &s->ops[i]->cost, now);
				requeue(s->ops[i], now + 1000);
			}
			xts_free(s);
			s = NULL;
			if (wake < 0 || now + 1000 < wake)
				wake = now + 1000;
			break;
		}
		s->next = b->sent;
		b->sent = s;
		b->nsent++;
		s = NULL;
	}
	/* Budget or Retry-After: come back when it allows. Batches at the
	 * parallel cap and dependencies in flight re-arm us from on_batch. */
	if (wake >= 0 && arm(b, wake > now ? wake - now : 0) != 0)
		xts_err("graph: %s: cannot arm the batch timer", b->g->tc.name);
	goto done;
nomem:
	json_decref(reqs);
	json_decref(body);
	if (s != NULL) {
		for (int i = 0; i < s->n; i++) {
			xts_throttle_refund(b->g->throttle, &s->ops[i]->cost, now);
			requeue(s->ops[i], now + 1000);
		}
		xts_free(s);
	}
	if (arm(b, 1000) != 0)
		xts_err("graph: %s: cannot arm the batch timer", b->g->tc.name);
done:
	b->busy--;
	if (b->free_pending && b->busy == 0) {
		really_free(b);
		return;
	}
	maybe_idle(b);
}

/* Header value (case-insensitive name) from a sub-response's headers. */
/* A sub-response's header value as text. The docs give no JSON type for
 * header values: a number ("Retry-After": 20) is taken as its digits. */
static const char *
sub_header(json_t *headers, const char *name, char *buf, size_t len)
{
	const char *k;
	json_t *v;

	if (!json_is_object(headers))
		return NULL;
	json_object_foreach(headers, k, v) {
		if (strcasecmp(k, name) != 0)
			continue;
		if (json_is_integer(v)) {
			snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			return buf;
		}
		if (json_is_real(v)) {
			snprintf(buf, len, "%.3f", json_real_value(v));
			return buf;
		}
		return json_string_value(v);
	}
	return NULL;
}

int
xts_batch_parse_response(json_t *resp,
			 void (*fn)(void *arg, const char *id, long status, json_t *body,
				    long long retry_after_ms, double limit_pct),
			 void *arg)
{
	json_t *arr, *r;
	size_t i;

	arr = json_object_get(resp, "responses");
	if (!json_is_array(arr))
		return XTS_EPARSE;
	json_array_foreach(arr, i, r) {
		const char *id = json_string_value(json_object_get(r, "id"));
		json_t *st = json_object_get(r, "status");
		json_t *hd = json_object_get(r, "headers");
		long long ra = -1;
		const char *rav;
		char rabuf[32], pctbuf[32];

		if (id == NULL || !json_is_integer(st))
			continue;
		rav = sub_header(hd, "Retry-After", rabuf, sizeof(rabuf));
		if (rav != NULL)
			ra = xts_http_parse_retry_after(rav, xts_wall_ms() / 1000);
		/* a sub-request is charged to the limits like a request of its
		 * own (throttling.md, "Throttling and batching"), and its
		 * answer says how close to one it came */
		fn(arg, id, (long)json_integer_value(st), json_object_get(r, "body"), ra,
		   xts_http_parse_limit_pct(sub_header(hd, "x-ms-throttle-limit-percentage", pctbuf,
						       sizeof(pctbuf))));
	}
	return 0;
}

struct sub {
	char id[16];
	long status;
	json_t *body;
	long long ra;
	double pct;
};

struct collect {
	struct sub *v;
	size_t n, cap;
	int nomem;
};

static void
collect_one(void *arg, const char *id, long status, json_t *body, long long ra, double pct)
{
	struct collect *c = arg;

	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : BATCH_MAX;
		struct sub *nv = xts_realloc(c->v, ncap * sizeof(*nv));

		if (nv == NULL) {
			c->nomem = 1;
			return;
		}
		c->v = nv;
		c->cap = ncap;
	}
	snprintf(c->v[c->n].id, sizeof(c->v[c->n].id), "%s", id);
	c->v[c->n].status = status;
	c->v[c->n].body = body;
	c->v[c->n].ra = ra;
	c->v[c->n].pct = pct;
	c->n++;
}

static void
sub_error(struct xts_graph_error *ge, long status, json_t *body)
{
	json_t *err = json_object_get(body, "error");
	const char *s;

	memset(ge, 0, sizeof(*ge));
	ge->status = status;
	if (!json_is_object(err))
		return;
	s = json_string_value(json_object_get(err, "code"));
	xts_graph__copy_str(ge->code, sizeof(ge->code), s);
	s = json_string_value(json_object_get(err, "message"));
	xts_graph__copy_str(ge->message, sizeof(ge->message), s);
	err = json_object_get(err, "innerError");
	s = json_string_value(json_object_get(err, "request-id"));
	xts_graph__copy_str(ge->request_id, sizeof(ge->request_id), s);
	s = json_string_value(json_object_get(err, "client-request-id"));
	xts_graph__copy_str(ge->client_request_id, sizeof(ge->client_request_id), s);
}

static void
retry_or_fail(struct xts_batch_op *op, int err, long status, json_t *body, long long delay)
{
	struct xts_batch *b = op->b;
	struct xts_graph_error ge;

	op->attempts++;
	if (op->attempts < xts_graph__attempt_cap(b->g, err)) {
		xts_log_rl(XTS_LOG_INFO, 10000, 20,
			   "graph: %s: %s %s%s -> HTTP %ld (%s); retry %d in %lld ms", b->g->tc.name,
			   op->method, op->url, b->g->no_batch ? "" : " in $batch", status, xts_errname(err),
			   op->attempts, delay);
		requeue(op, xts_now_ms() + delay);
		return;
	}
	sub_error(&ge, status, body);
	if (ge.code[0] == '\0')
		snprintf(ge.code, sizeof(ge.code), "%s", xts_errname(err));
	xts_warn("graph: %s: %s %s: giving up after %d attempts (HTTP %ld %s)", b->g->tc.name,
		 op->method, op->url, op->attempts, status, ge.code);
	op_finish(op, err, status, body, &ge);
}

void
xts_batch_note_fresh(struct xts_batch *b, const char *id)
{
	size_t n = id != NULL ? strlen(id) : 0;

	if (b == NULL || n == 0 || n >= sizeof(b->fresh[0].id))
		return;
	memcpy(b->fresh[b->fresh_next].id, id, n + 1);
	b->fresh[b->fresh_next].at = xts_now_ms();
	b->fresh_next = (b->fresh_next + 1) % FRESH_MAX;
}

/* Whether op writes to (or references) an object noted fresh: a 404 to it
 * may be replication lag, not a missing object. */
static int
names_fresh(const struct xts_batch *b, const struct xts_batch_op *op, long long now)
{
	const char *ref = json_string_value(json_object_get(op->body, "@odata.id"));
	size_t i;

	if (strcmp(op->method, "PATCH") != 0 && strcmp(op->method, "PUT") != 0 && strcmp(op->method, "GET") != 0)
		return 0;
	for (i = 0; i < FRESH_MAX; i++) {
		const char *id = b->fresh[i].id;

		if (id[0] == '\0' || now - b->fresh[i].at > XTS_BATCH_FRESH_MS)
			continue;
		if (strstr(op->url, id) != NULL || (ref != NULL && strstr(ref, id) != NULL))
			return 1;
	}
	return 0;
}

/* One operation's answer: a sub-response, or (without $batch) the answer to
 * its own request, whose status graph.c already fed to the governor (fed). */
static void
judge(struct xts_batch *b, struct xts_batch_op *op, long st, json_t *body, long long ra,
      double pct, const struct xts_graph_error *gerr, long long now, int fed)
{
	struct xts_graph_error ge;

	if (st >= 200 && st < 300) {
		if (!fed)
			xts_throttle_feedback(b->g->throttle, st, -1, pct, now);
		op_finish(op, 0, st, body, NULL);
	} else if (st == 429) {
		/* no Retry-After: "we recommend implementing an exponential
		 * backoff retry policy" (throttling.md); the tenant's gate
		 * waits that long too */
		long long d = ra > 0 ? ra : xts_graph__backoff_ms(b->g, op->attempts + 1);

		if (!fed)
			xts_throttle_feedback(b->g->throttle, 429, d, pct, now);
		retry_or_fail(op, XTS_ETHROTTLED, st, body, d);
	} else if (st == 500 || st == 502 || st == 503 || st == 504) {
		long long d = xts_graph__backoff_ms(b->g, op->attempts + 1);

		retry_or_fail(op, XTS_ESERVER, st, body, ra > d ? ra : d);
	} else if (st == 424 && op->dep_waits < 2 * xts_graph__max_attempts(b->g) &&
		   ((op->dep != NULL && op->dep->state == OP_QUEUED) ||
		    (op->dep == NULL && !op->dep_failed))) {
		/* goes again with its dependency, or alone when that has
		 * succeeded since; bounded for a server that keeps answering
		 * 424 without a reason we can see */
		op->dep_waits++;
		requeue(op, 0);
	} else if (st == 404 && names_fresh(b, op, now)) {
		/* replication lag (xts_batch_note_fresh): retried, bounded like
		 * a server error; what is still missing then is reported */
		retry_or_fail(op, XTS_ENOENT, st, body, xts_graph__backoff_ms(b->g, op->attempts + 1));
	} else if (st == 424) {
		sub_error(&ge, st, body);
		if (ge.code[0] == '\0')
			snprintf(ge.code, sizeof(ge.code), "FailedDependency");
		op_finish(op, XTS_EGRAPH, st, body, &ge);
	} else {
		int err = xts_graph_status_err(st);

		if (gerr != NULL)
			ge = *gerr;
		else
			sub_error(&ge, st, body);
		if (!fed)
			xts_log_rl(st == 404 ? XTS_LOG_INFO : XTS_LOG_WARNING, 10000, 50,
				   "graph: %s: %s %s -> HTTP %ld %s: %s (request-id %s)",
				   b->g->tc.name, op->method, op->url, st,
				   ge.code[0] ? ge.code : "-", ge.message[0] ? ge.message : "-",
				   ge.request_id[0] ? ge.request_id : "-");
		op_finish(op, err ? err : XTS_EGRAPH, st, body, &ge);
	}
}

/* Take s off the in-flight list; the caller frees it. */
static void
unlink_sent(struct xts_batch *b, struct sent *s)
{
	struct sent **pp;

	for (pp = &b->sent; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	b->nsent--;
}

/* After a response: free if asked to meanwhile, else send what waits. */
static void
answered(struct xts_batch *b)
{
	b->busy--;
	if (b->free_pending && b->busy == 0) {
		really_free(b);
		return;
	}
	if (b->head != NULL && arm(b, 0) != 0)
		xts_err("graph: %s: cannot arm the batch timer", b->g->tc.name);
	maybe_idle(b);
}

/* The endpoint refused the envelope itself, not what is in it: a server
 * without JSON batching answers an unknown path 404 or 400, a method it does
 * not take 405, a feature it lacks 501. Graph itself has had $batch since
 * v1.0 (json-batching.md), so this is an emulator or a proxy. */
/* An endpoint without JSON batching answers the $batch path 404, 405 or 501:
 * batching stops for the client's life. A 400 is this envelope refused
 * ("If the batch request itself is malformed, the status code is 400",
 * concepts/json-batching.md): its operations go one by one, the next
 * envelopes are batched again; but Graph also answers an unknown segment 400
 * ("Resource not found for the segment"), so BATCH_400_MAX envelopes refused
 * in a row stop batching too. */
#define BATCH_400_MAX 3
static int
batch_refused(const struct xts_graph_result *res)
{
	return res->err != 0 && (res->status == 400 || res->status == 404 || res->status == 405 ||
				 res->status == 501);
}

static void
on_direct(void *arg, const struct xts_graph_result *res)
{
	struct sent *s = arg;
	struct xts_batch *b = s->b;
	struct xts_batch_op *op = s->ops[0];

	unlink_sent(b, s);
	xts_free(s);
	b->busy++;
	answers_begin(b);
	if (res->status == 0 && res->err != 0) {
		if (res->err == XTS_EHTTP || res->err == XTS_ETIMEDOUT)
			retry_or_fail(op, res->err, 0, NULL,
				      xts_graph__backoff_ms(b->g, op->attempts + 1));
		else
			op_finish(op, res->err, 0, NULL, res->gerr);
	} else {
		judge(b, op, res->status, res->body, -1, -1, res->gerr, xts_now_ms(), 1);
	}
	answers_end(b);
	answered(b);
}

static void
on_batch(void *arg, const struct xts_graph_result *res)
{
	struct sent *s = arg;
	struct xts_batch *b = s->b;
	struct collect c = { NULL, 0, 0, 0 };
	struct xts_batch_op *ops[BATCH_MAX];
	long long now = xts_now_ms();
	int n = s->n, i, pass;
	size_t k;

	unlink_sent(b, s);
	memcpy(ops, s->ops, sizeof(ops));
	xts_free(s);
	b->busy++;
	answers_begin(b);
	if (batch_refused(res) && res->status == 400 && ++b->g->batch_400 < BATCH_400_MAX) {
		/* Nothing in it ran: its operations go again, each alone */
		xts_warn("graph: %s: POST /v1.0/$batch -> HTTP 400 %s (%s): the envelope was "
			 "refused; its %d operations go one by one", b->g->tc.name,
			 res->gerr != NULL && res->gerr->code[0] ? res->gerr->code : "-",
			 res->gerr != NULL ? res->gerr->message : "", n);
		for (i = 0; i < n; i++) {
			xts_throttle_refund(b->g->throttle, &ops[i]->cost, now);
			ops[i]->alone = 1;
			requeue(ops[i], 0);
		}
		goto done;
	}
	if (batch_refused(res)) {
		/* Nothing in it ran: the same operations go again, one each. */
		if (!b->g->no_batch)
			xts_warn("graph: %s: POST /v1.0/$batch -> HTTP %ld %s: this endpoint does "
				 "not take JSON batches; sending one request per operation",
				 b->g->tc.name, res->status,
				 res->gerr != NULL && res->gerr->code[0] ? res->gerr->code : "-");
		b->g->no_batch = 1;
		/* an envelope still filling would go as one request with
		 * only its first operation: its operations go alone too */
		unfill(b, now);
		for (i = 0; i < n; i++) {
			xts_throttle_refund(b->g->throttle, &ops[i]->cost, now);
			requeue(ops[i], 0);
		}
		goto done;
	}
	if (res->err != 0) {
		/* The envelope failed after graph.c's own retries: every
		 * operation in it shares that outcome (or is retried later). */
		for (i = 0; i < n; i++) {
			if (res->err == XTS_ETHROTTLED || res->err == XTS_ESERVER ||
			    res->err == XTS_EHTTP || res->err == XTS_ETIMEDOUT)
				retry_or_fail(ops[i], res->err, res->status, NULL,
					      xts_graph__backoff_ms(b->g, ops[i]->attempts + 1));
			else
				op_finish(ops[i], res->err, res->status, NULL, res->gerr);
		}
		goto done;
	}
	b->g->batch_400 = 0; /* an envelope taken: batching works */
	if (xts_batch_parse_response(res->body, collect_one, &c) != 0 || c.nomem) {
		for (i = 0; i < n; i++)
			retry_or_fail(ops[i], XTS_EPARSE, res->status, NULL,
				      xts_graph__backoff_ms(b->g, ops[i]->attempts + 1));
		goto done;
	}
	/* Pass 0: everything but 424; pass 1: 424s, whose dependency's fate is
	 * now known; then operations without a sub-response. */
	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < c.n; k++) {
			struct sub *sb = &c.v[k];
			struct xts_batch_op *op = NULL;

			for (i = 0; i < n; i++) {
				char id[16];

				if (ops[i] == NULL)
					continue;
				snprintf(id, sizeof(id), "%u", ops[i]->id);
				if (strcmp(id, sb->id) == 0) {
					op = ops[i];
					break;
				}
			}
			if (op == NULL || (pass == 0) == (sb->status == 424))
				continue;
			ops[i] = NULL;
			judge(b, op, sb->status, sb->body, sb->ra, sb->pct, NULL, now, 0);
		}
	}
	for (i = 0; i < n; i++)
		if (ops[i] != NULL)
			retry_or_fail(ops[i], XTS_EPARSE, 0, NULL,
				      xts_graph__backoff_ms(b->g, ops[i]->attempts + 1));
done:
	xts_free(c.v);
	answers_end(b);
	answered(b);
}

/* ---- create user = invitation, then patch ----------------------------- */

struct cu {
	struct xts_batch *b;
	json_t *patch;
	xts_batch_cb cb;
	void *arg;
	char *user_id;
};

static void
cu_free(struct cu *cu)
{
	json_decref(cu->patch);
	xts_free(cu->user_id);
	xts_free(cu);
}

static void
cu_free_arg(void *arg)
{
	cu_free(arg);
}

static void
cu_on_patch(void *arg, const struct xts_batch_result *r)
{
	struct cu *cu = arg;
	struct xts_batch_result rr = *r;

	rr.user_id = cu->user_id;
	rr.step = 2;
	cu->cb(cu->arg, &rr);
	cu_free(cu);
}

static void
cu_on_invite(void *arg, const struct xts_batch_result *r)
{
	struct cu *cu = arg;
	struct xts_batch_result rr = *r;
	struct xts_graph_error ge;
	struct xts_buf url = XTS_BUF_INIT;
	struct xts_batch_op *op = NULL;
	const char *id;
	int ret;

	rr.step = 1;
	if (r->err != 0) {
		cu->cb(cu->arg, &rr);
		cu_free(cu);
		return;
	}
	id = json_string_value(json_object_get(json_object_get(r->body, "invitedUser"), "id"));
	if (!xts_is_object_id(id)) {
		memset(&ge, 0, sizeof(ge));
		ge.status = r->status;
		snprintf(ge.code, sizeof(ge.code), "InvalidInvitationResponse");
		snprintf(ge.message, sizeof(ge.message), "invitation response without invitedUser.id");
		rr.err = XTS_EPARSE;
		rr.gerr = &ge;
		cu->cb(cu->arg, &rr);
		cu_free(cu);
		return;
	}
	xts_batch_note_fresh(cu->b, id);
	cu->user_id = xts_strdup(id);
	rr.user_id = cu->user_id;
	if (cu->user_id == NULL) {
		rr.err = XTS_ENOMEM;
		rr.step = 2;
		cu->cb(cu->arg, &rr);
		cu_free(cu);
		return;
	}
	if (cu->patch == NULL) {
		cu->cb(cu->arg, &rr);
		cu_free(cu);
		return;
	}
	ret = xts_buf_printf(&url, "/users/%s", id);
	if (ret == 0)
		ret = xts_batch_add(cu->b, "PATCH", url.p, cu->patch, NULL, cu_on_patch, cu, &op);
	if (ret == 0)
		op->arg_free = cu_free_arg;
	xts_buf_free(&url);
	if (ret != 0) {
		rr.err = ret;
		rr.step = 2;
		rr.body = NULL;
		cu->cb(cu->arg, &rr);
		cu_free(cu);
	}
}

int
xts_batch_create_user(struct xts_batch *b, json_t *invitation, json_t *patch, xts_batch_cb cb,
		      void *arg)
{
	struct xts_batch_op *op = NULL;
	struct cu *cu;
	int ret;

	if (b == NULL || invitation == NULL || cb == NULL)
		return XTS_EINVAL;
	cu = xts_calloc(1, sizeof(*cu));
	if (cu == NULL)
		return XTS_ENOMEM;
	cu->b = b;
	cu->patch = json_incref(patch);
	cu->cb = cb;
	cu->arg = arg;
	ret = xts_batch_add(b, "POST", "/invitations", invitation, NULL, cu_on_invite, cu, &op);
	if (ret != 0) {
		cu_free(cu);
		return ret;
	}
	op->arg_free = cu_free_arg;
	return 0;
}
