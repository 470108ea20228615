/* SPDX-License-Identifier: MIT */
/* Token buckets for one (app, tenant) pair, sized from Microsoft's documented
 * identity limits (see throttle.h), plus an adaptive rate factor and the
 * Retry-After gate. Each bucket refills at 97 % of the documented rate and
 * holds at most 3 % of the window's quota, so in ANY window we send at most
 * the documented quota whether the service counts with a token bucket or a
 * sliding window. No clock of its own: every call takes now_ms. */
#include <string.h>
#include <strings.h>

#include "err.h"
#include "mem.h"
#include "throttle.h"

#define RATE_SHARE 0.97
#define BURST_SHARE 0.03
#define FACTOR_MIN 0.1
#define DEFAULT_RETRY_MS 5000
#define CREEP_INTERVAL_MS 1000
#define CREEP_STEP 0.05

enum { B_RU, B_WRITE, B_INVITE, B__N };

struct bucket {
	double cap;   /* tokens */
	double rate;  /* tokens per ms at factor 1.0 */
	double level;
};

struct xts_throttle {
	struct bucket b[B__N];
	long long stamp;       /* last refill */
	long long gate_until;  /* Retry-After */
	long long last_change; /* last factor change */
	double factor;
	struct xts_throttle_stats st;
};

static const double ru_quota[3] = { 3500, 5000, 8000 }; /* per 10 s */

static void
bucket_init(struct bucket *b, double quota, double window_ms, double scale)
{
	b->cap = quota * scale * BURST_SHARE;
	if (b->cap < 5)
		b->cap = 5; /* a bucket must hold the dearest single request */
	b->rate = quota * scale * RATE_SHARE / window_ms;
	b->level = b->cap;
}

int
xts_throttle_new(int size_class, double time_scale, long long now_ms, struct xts_throttle **out)
{
	struct xts_throttle *t;

	if (size_class < XTS_SIZE_SMALL || size_class > XTS_SIZE_LARGE || !(time_scale > 0))
		return XTS_EINVAL;
	t = xts_calloc(1, sizeof(*t));
	if (t == NULL)
		return XTS_ENOMEM;
	bucket_init(&t->b[B_RU], ru_quota[size_class], 10000.0, time_scale);
	bucket_init(&t->b[B_WRITE], 3000, 150000.0, time_scale);
	bucket_init(&t->b[B_INVITE], 150, 5000.0, time_scale);
	t->stamp = now_ms;
	t->factor = 1.0;
	t->last_change = now_ms;
	*out = t;
	return 0;
}

void
xts_throttle_free(struct xts_throttle *t)
{
	xts_free(t);
}

/* Path relative to the version, without the query: "users", "groups/x/members". */
static void
rel_path(const char *url, char *out, size_t outlen)
{
	const char *p = url, *q;
	size_t n;

	q = strstr(p, "://");
	if (q != NULL && q < p + 8) {
		/* absolute: skip scheme and authority */
		p = strchr(q + 3, '/');
		if (p == NULL)
			p = "";
	}
	while (*p == '/')
		p++;
	if (strncmp(p, "v1.0/", 5) == 0)
		p += 5;
	else if (strncmp(p, "beta/", 5) == 0)
		p += 5;
	q = strchr(p, '?');
	n = q ? (size_t)(q - p) : strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static int
seg_count(const char *p)
{
	int n = *p ? 1 : 0;

	for (; *p; p++)
		if (*p == '/')
			n++;
	return n;
}

static int
has_param(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);

	while (q != NULL) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=')
			return 1;
		/* percent-encoded "$" */
		if (strncasecmp(q, "%24", 3) == 0 && strncmp(q + 3, name + 1, nl - 1) == 0 &&
		    q[nl + 2] == '=')
			return 1;
		q = strchr(q, '&');
	}
	return 0;
}

static long
param_long(const char *url, const char *name)
{
	const char *q = strchr(url, '?');
	size_t nl = strlen(name);
	long v = -1;

	while (q != NULL) {
		q++;
		if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
			const char *d = q + nl + 1;

			v = 0;
			while (*d >= '0' && *d <= '9' && v < 1000000)
				v = v * 10 + (*d++ - '0');
			return v;
		}
		q = strchr(q, '&');
	}
	return v;
}

struct xts_throttle_cost
xts_throttle_cost_of(const char *method, const char *url)
{
	struct xts_throttle_cost c = { 1, 0, 0 };
	char p[256];
	long top;

	if (method == NULL || url == NULL)
		return c;
	rel_path(url, p, sizeof(p));
	if (strcmp(method, "GET") == 0) {
		if (strcmp(p, "users") == 0 || strcmp(p, "applications") == 0)
			c.ru = 2;
		else if (strncmp(p, "groups/", 7) == 0 && seg_count(p) == 3 &&
			 strcmp(strrchr(p, '/'), "/members") == 0)
			c.ru = 3;
		else if (strncmp(p, "groups/", 7) == 0 && seg_count(p) == 3 &&
			 strcmp(strrchr(p, '/'), "/transitiveMembers") == 0)
			c.ru = 5;
		else if (strcmp(p, "subscribedSkus") == 0)
			c.ru = 3;
	} else {
		c.writes = 1;
		if (strcmp(method, "POST") == 0 && strcmp(p, "directoryObjects/getByIds") == 0) {
			c.ru = 3;
			c.writes = 0;
		}
	}
	if (strncmp(p, "invitations", 11) == 0 && (p[11] == '\0' || p[11] == '/'))
		c.invitation = 1;
	if (has_param(url, "$select"))
		c.ru--;
	if (has_param(url, "$expand"))
		c.ru++;
	top = param_long(url, "$top");
	if (top >= 0 && top < 20)
		c.ru--;
	if (c.ru < 1)
		c.ru = 1;
	return c;
}

static void
refill(struct xts_throttle *t, long long now_ms)
{
	double dt;
	int i;

	if (now_ms <= t->stamp)
		return;
	dt = (double)(now_ms - t->stamp);
	for (i = 0; i < B__N; i++) {
		struct bucket *b = &t->b[i];

		b->level += dt * b->rate * t->factor;
		if (b->level > b->cap)
			b->level = b->cap;
	}
	t->stamp = now_ms;
}

static void
costs(const struct xts_throttle_cost *c, double out[B__N])
{
	out[B_RU] = c->ru;
	out[B_WRITE] = c->writes;
	out[B_INVITE] = c->invitation;
}

long long
xts_throttle_admit(struct xts_throttle *t, const struct xts_throttle_cost *c, long long now_ms)
{
	double need[B__N], wait = 0;
	int i;

	if (now_ms < t->gate_until) {
		t->st.delayed++;
		return t->gate_until - now_ms;
	}
	refill(t, now_ms);
	costs(c, need);
	for (i = 0; i < B__N; i++) {
		struct bucket *b = &t->b[i];
		double w;

		if (need[i] <= 0 || b->level >= need[i])
			continue;
		w = (need[i] - b->level) / (b->rate * t->factor);
		if (w > wait)
			wait = w;
	}
	if (wait > 0) {
		t->st.delayed++;
		return (long long)wait + 1;
	}
	for (i = 0; i < B__N; i++)
		t->b[i].level -= need[i];
	t->st.admitted++;
	return 0;
}

void
xts_throttle_refund(struct xts_throttle *t, const struct xts_throttle_cost *c, long long now_ms)
{
	double need[B__N];
	int i;

	refill(t, now_ms);
	costs(c, need);
	for (i = 0; i < B__N; i++) {
		t->b[i].level += need[i];
		if (t->b[i].level > t->b[i].cap)
			t->b[i].level = t->b[i].cap;
	}
	if (t->st.admitted > 0)
		t->st.admitted--;
}

static void
set_factor(struct xts_throttle *t, double f, long long now_ms)
{
	refill(t, now_ms); /* tokens earned so far count at the old rate */
	if (f < FACTOR_MIN)
		f = FACTOR_MIN;
	if (f > 1.0)
		f = 1.0;
	t->factor = f;
	t->last_change = now_ms;
}

void
xts_throttle_feedback(struct xts_throttle *t, long status, long long retry_after_ms,
		      double limit_pct, long long now_ms)
{
	int i;

	if (status == 429) {
		long long ra = retry_after_ms > 0 ? retry_after_ms : DEFAULT_RETRY_MS;

		t->st.throttled++;
		if (now_ms + ra > t->gate_until)
			t->gate_until = now_ms + ra;
		/* Whatever we thought we had is wrong: empty the buckets and
		 * halve the rate (multiplicative decrease). */
		refill(t, now_ms);
		for (i = 0; i < B__N; i++)
			if (t->b[i].level > 0)
				t->b[i].level = 0;
		set_factor(t, t->factor * 0.5, now_ms);
		return;
	}
	if (limit_pct >= 0.8) {
		/* Graph reports use above 80 % of a limit. At our own design
		 * rate the service's bucket stays nearly full, so a high value
		 * means someone else shares the budget: slow to what fits. */
		t->st.slowdowns++;
		if (limit_pct > 0.97 && now_ms - t->last_change >= 200)
			set_factor(t, t->factor * 0.97 / limit_pct, now_ms);
		else
			t->last_change = now_ms; /* hold: no creeping up */
		return;
	}
	if (status >= 200 && status < 300 && t->factor < 1.0 &&
	    now_ms - t->last_change >= CREEP_INTERVAL_MS)
		set_factor(t, t->factor + CREEP_STEP, now_ms);
}

long long
xts_throttle_gate_until(const struct xts_throttle *t)
{
	return t->gate_until;
}

double
xts_throttle_factor(const struct xts_throttle *t)
{
	return t->factor;
}

void
xts_throttle_stats(const struct xts_throttle *t, struct xts_throttle_stats *out)
{
	*out = t->st;
}
