/* SPDX-License-Identifier: MIT */
/* evloop.h on libuv: one uv_poll_t per watched socket (kept in a small list)
 * and one uv_timer_t per xts_evtimer. Handles are closed asynchronously with
 * uv_close; their memory is freed in the close callback. It does not run or
 * own the uv loop. */
#include <stdlib.h>

#include "err.h"
#include "mem.h"
#include "uvglue.h"

struct poll_ent {
	uv_poll_t h;
	int fd;
	xts_ev_io_cb cb;
	void *arg;
	struct poll_ent *next;
};

struct uvg {
	struct xts_evloop ev;
	uv_loop_t *loop;
	struct poll_ent *polls;
};

struct xts_evtimer {
	struct xts_evloop *ev; /* must be first (evloop.h) */
	uv_timer_t h;
	xts_ev_timer_cb cb;
	void *arg;
};

static void
free_on_close(uv_handle_t *h)
{
	xts_free(h->data);
}

static void
poll_cb(uv_poll_t *h, int status, int events)
{
	struct poll_ent *p = h->data;
	int ev = 0;

	if (status < 0)
		ev = XTS_EV_ERROR | XTS_EV_READ | XTS_EV_WRITE;
	if (events & UV_READABLE)
		ev |= XTS_EV_READ;
	if (events & UV_WRITABLE)
		ev |= XTS_EV_WRITE;
	if (events & UV_DISCONNECT)
		ev |= XTS_EV_READ;
	p->cb(p->arg, p->fd, ev);
}

static int
uvg_io_watch(struct xts_evloop *ev, int fd, int events, xts_ev_io_cb cb, void *arg)
{
	struct uvg *g = ev->impl;
	struct poll_ent *p, **pp;
	int uvev = 0;

	for (pp = &g->polls; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->fd == fd)
			break;
	p = *pp;
	if (events == 0) {
		if (p != NULL) {
			*pp = p->next;
			uv_poll_stop(&p->h);
			uv_close((uv_handle_t *)&p->h, free_on_close);
		}
		return 0;
	}
	if (p == NULL) {
		p = xts_calloc(1, sizeof(*p));
		if (p == NULL)
			return XTS_ENOMEM;
		if (uv_poll_init_socket(g->loop, &p->h, fd) != 0) {
			xts_free(p);
			return XTS_EIO;
		}
		p->fd = fd;
		p->h.data = p;
		p->next = g->polls;
		g->polls = p;
	}
	p->cb = cb;
	p->arg = arg;
	if (events & XTS_EV_READ)
		uvev |= UV_READABLE;
	if (events & XTS_EV_WRITE)
		uvev |= UV_WRITABLE;
	if (uv_poll_start(&p->h, uvev, poll_cb) != 0)
		return XTS_EIO;
	return 0;
}

static void
timer_cb(uv_timer_t *h)
{
	struct xts_evtimer *t = h->data;

	t->cb(t->arg);
}

static int
uvg_timer_new(struct xts_evloop *ev, xts_ev_timer_cb cb, void *arg, struct xts_evtimer **out)
{
	struct uvg *g = ev->impl;
	struct xts_evtimer *t;

	t = xts_calloc(1, sizeof(*t));
	if (t == NULL)
		return XTS_ENOMEM;
	if (uv_timer_init(g->loop, &t->h) != 0) {
		xts_free(t);
		return XTS_EIO;
	}
	t->ev = ev;
	t->cb = cb;
	t->arg = arg;
	t->h.data = t;
	*out = t;
	return 0;
}

static int
uvg_timer_start(struct xts_evtimer *t, long long delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	return uv_timer_start(&t->h, timer_cb, (uint64_t)delay_ms, 0) == 0 ? 0 : XTS_EIO;
}

static void
uvg_timer_stop(struct xts_evtimer *t)
{
	uv_timer_stop(&t->h);
}

static void
uvg_timer_free(struct xts_evtimer *t)
{
	uv_timer_stop(&t->h);
	uv_close((uv_handle_t *)&t->h, free_on_close);
}

static const struct xts_evloop_ops uvg_ops = {
	uvg_io_watch, uvg_timer_new, uvg_timer_start, uvg_timer_stop, uvg_timer_free,
};

int
xts_uvglue_new(uv_loop_t *loop, struct xts_evloop **out)
{
	struct uvg *g = xts_calloc(1, sizeof(*g));

	if (g == NULL)
		return XTS_ENOMEM;
	g->loop = loop;
	g->ev.ops = &uvg_ops;
	g->ev.impl = g;
	*out = &g->ev;
	return 0;
}

void
xts_uvglue_free(struct xts_evloop *ev)
{
	struct uvg *g;
	struct poll_ent *p, *next;

	if (ev == NULL)
		return;
	g = ev->impl;
	for (p = g->polls; p != NULL; p = next) {
		next = p->next;
		uv_poll_stop(&p->h);
		uv_close((uv_handle_t *)&p->h, free_on_close);
	}
	xts_free(g);
}
