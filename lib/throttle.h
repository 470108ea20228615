/* SPDX-License-Identifier: MIT */
/* The throttle governor for one (app, tenant) pair: token buckets mirroring
 * Microsoft Graph's documented identity-and-access limits, a back-off factor
 * driven by 429s and x-ms-throttle-limit-percentage, and a Retry-After gate.
 * Pure arithmetic on a caller-given clock (ms): no timers, no I/O, so it is
 * tested without sleeping. graph.c asks it before every request.
 *
 * Limits (microsoft-graph-docs-contrib concepts/throttling-limits.md,
 * "Identity and access service limits" and "Invitation manager service
 * limits"): resource units per app+tenant per 10 s: S 3,500, M 5,000,
 * L 8,000; writes per app+tenant 3,000 per 150 s; /invitations 150 per 5 s per
 * tenant. Costs: GET users 2, other GET 1, POST/PATCH/PUT/DELETE 1 RU + 1
 * write; $select -1, $expand +1, $top < 20 -1; never below 1. */
#ifndef XTS_THROTTLE_H
#define XTS_THROTTLE_H

enum xts_size_class {
	XTS_SIZE_SMALL = 0,  /* under 50 users */
	XTS_SIZE_MEDIUM = 1, /* 50 - 500 users */
	XTS_SIZE_LARGE = 2,  /* above 500 users */
};

/* What one request costs against each bucket. */
struct xts_throttle_cost {
	int ru;         /* resource units */
	int writes;     /* 0 or 1 */
	int invitation; /* 0 or 1 (a request on /invitations) */
};

struct xts_throttle;

/* time_scale multiplies every budget (1.0 = Microsoft's numbers; tests run the
 * emulator time-scaled). Buckets start full. *out owned by the caller.
 * Returns 0, XTS_EINVAL (size class, time_scale <= 0) or XTS_ENOMEM. */
int xts_throttle_new(int size_class, double time_scale, long long now_ms, struct xts_throttle **out);
void xts_throttle_free(struct xts_throttle *t);

/* The documented cost of method on url (relative "/v1.0/users?..." or a path
 * "users/{id}"; the version prefix and query string are looked at). */
struct xts_throttle_cost xts_throttle_cost_of(const char *method, const char *url);

/* Try to admit a request of cost c at now_ms. Returns 0 and debits the
 * buckets when it may be sent now; otherwise the number of ms (> 0) after
 * which to ask again, leaving the buckets alone. */
long long xts_throttle_admit(struct xts_throttle *t, const struct xts_throttle_cost *c, long long now_ms);

/* Return a debit that was admitted but never sent (canceled). */
void xts_throttle_refund(struct xts_throttle *t, const struct xts_throttle_cost *c, long long now_ms);

/* Feed a response back: status (429 narrows the budget and gates until
 * retry_after_ms elapses; 0 or -1 = not given, then a default of 5 s),
 * limit_pct (x-ms-throttle-limit-percentage, -1 absent; >= 0.8 slows down),
 * any 2xx without limit_pct lets the rate creep back towards 100 %. */
void xts_throttle_feedback(struct xts_throttle *t, long status, long long retry_after_ms,
			   double limit_pct, long long now_ms);

/* Monotonic ms before which nothing may be sent (0 when not gated). */
long long xts_throttle_gate_until(const struct xts_throttle *t);

/* Current fraction of the documented budget being used as the rate (0.1-1.0). */
double xts_throttle_factor(const struct xts_throttle *t);

/* Counters for status and benchmarks. */
struct xts_throttle_stats {
	unsigned long long admitted;
	unsigned long long delayed;   /* admit() answered "wait" */
	unsigned long long throttled; /* 429s fed back */
	unsigned long long slowdowns; /* limit_pct >= 0.8 fed back */
};
void xts_throttle_stats(const struct xts_throttle *t, struct xts_throttle_stats *out);

#endif
