/* SPDX-License-Identifier: MIT */
/* The abstract event loop lib/ runs on: interest in socket fds and one-shot
 * timers, with callbacks. daemon/uvglue.c implements it on libuv; lib/ never
 * includes a loop library. It does not own sockets (callers open and close
 * them) and it is single-threaded: every function and callback runs on the
 * loop's thread. */
#ifndef XTS_EVLOOP_H
#define XTS_EVLOOP_H

enum {
	XTS_EV_READ = 1,
	XTS_EV_WRITE = 2,
	XTS_EV_ERROR = 4, /* only ever passed to a callback */
};

struct xts_evloop;
struct xts_evtimer;

/* fd became ready: events is a mask of XTS_EV_READ/WRITE/ERROR. */
typedef void (*xts_ev_io_cb)(void *arg, int fd, int events);
/* A timer expired (it is now stopped; start it again to repeat). */
typedef void (*xts_ev_timer_cb)(void *arg);

/* Implementations fill this table; callers use the xts_ev_* wrappers below. */
struct xts_evloop_ops {
	int (*io_watch)(struct xts_evloop *ev, int fd, int events, xts_ev_io_cb cb, void *arg);
	int (*timer_new)(struct xts_evloop *ev, xts_ev_timer_cb cb, void *arg,
			 struct xts_evtimer **out);
	int (*timer_start)(struct xts_evtimer *t, long long delay_ms);
	void (*timer_stop)(struct xts_evtimer *t);
	void (*timer_free)(struct xts_evtimer *t);
};

struct xts_evloop {
	const struct xts_evloop_ops *ops;
	void *impl; /* the implementation's own state */
};

/* Set the interest in fd to events (XTS_EV_READ|XTS_EV_WRITE), replacing any
 * earlier interest and callback; events == 0 removes the fd (do that before
 * closing it). Returns 0 or XTS_E*. Never blocks. */
static inline int
xts_ev_io_watch(struct xts_evloop *ev, int fd, int events, xts_ev_io_cb cb, void *arg)
{
	return ev->ops->io_watch(ev, fd, events, cb, arg);
}

/* Create a stopped timer whose expiry calls cb(arg). *out is owned by the
 * caller and released with xts_ev_timer_free. Returns 0 or XTS_E*. */
static inline int
xts_ev_timer_new(struct xts_evloop *ev, xts_ev_timer_cb cb, void *arg, struct xts_evtimer **out)
{
	return ev->ops->timer_new(ev, cb, arg, out);
}

/* (Re)arm the timer to fire once after delay_ms (0 = on the next loop
 * iteration, never synchronously). Returns 0 or XTS_E*. */
static inline int
xts_ev_timer_start(struct xts_evtimer *t, long long delay_ms)
{
	struct xts_evloop *ev = *(struct xts_evloop **)t;

	return ev->ops->timer_start(t, delay_ms);
}

/* Disarm; harmless when not armed. */
static inline void
xts_ev_timer_stop(struct xts_evtimer *t)
{
	struct xts_evloop *ev = *(struct xts_evloop **)t;

	ev->ops->timer_stop(t);
}

/* Stop and release (NULL is fine). The callback never fires afterwards. */
static inline void
xts_ev_timer_free(struct xts_evtimer *t)
{
	if (t != NULL)
		(*(struct xts_evloop **)t)->ops->timer_free(t);
}

/* Implementations must make a struct xts_evtimer start with a
 * `struct xts_evloop *` member pointing at its loop (the wrappers use it). */

#endif
