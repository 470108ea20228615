/* SPDX-License-Identifier: MIT */
/* Authenticated Graph requests: governor admission, token, send, then Graph's
 * retry rules (microsoft-graph-docs-contrib concepts/throttling.md: honour
 * Retry-After on 429; back off on 503/504) and error parsing. One request is a
 * small state machine driven by timer, token and HTTP callbacks. It does not
 * page (graph_delta.c) or batch (graph_batch.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "buf.h"
#include "err.h"
#include "graph.h"
#include "graph_internal.h"
#include "json_load.h"
#include "json_text.h"
#include "log.h"
#include "mem.h"
#include "text.h"

struct gov {
	char *key;
	struct xts_throttle *t;
	int refs;
	struct gov *next;
};

struct xts_graph_ctx {
	struct xts_evloop *ev;
	struct xts_http *http;
	struct xts_auth *auth;
	struct xts_graph_opts opts;
	struct gov *govs;
	unsigned long long rng;
};

struct xts_graph_req {
	struct xts_graph *g;
	char *method;
	char *url;
	char *body;
	unsigned flags;
	xts_graph_cb cb;
	void *arg;
	struct xts_throttle_cost cost;
	int admitted;     /* budget debited, not yet sent */
	int attempts;     /* sends so far */
	int reauthed;     /* one forced token refresh done */
	int force_token;
	int in_cb;
	int orphan;       /* its xts_graph was freed during its callback */
	struct xts_evtimer *timer;
	struct xts_auth_wait *aw;
	struct xts_http_xfer *xfer;
	struct xts_graph_req *next, *prev;
};

static void
wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		xts_free(s);
	}
}

int
xts_graph_ctx_new(struct xts_evloop *ev, const struct xts_graph_opts *opts,
		  struct xts_graph_ctx **out)
{
	struct xts_graph_ctx *c = xts_calloc(1, sizeof(*c));
	int ret;

	if (c == NULL)
		return XTS_ENOMEM;
	c->ev = ev;
	if (opts != NULL)
		c->opts = *opts;
	if (!(c->opts.time_scale > 0)) {
		/* Tests and benchmarks run the emulator time-scaled; the
		 * daemon's environment says so without a config key. */
		const char *env = getenv("XTSYNC_TIME_SCALE");
		char *end = NULL;
		double d = env ? strtod(env, &end) : 0;

		c->opts.time_scale = 1.0;
		if (env != NULL && end != env && *end == '\0' && d > 0 && d <= 1000) {
			c->opts.time_scale = d;
			xts_notice("graph: throttle budgets scaled by XTSYNC_TIME_SCALE=%g", d);
		} else if (env != NULL && env[0] != '\0') {
			xts_warn("graph: ignoring XTSYNC_TIME_SCALE=%.40s (want a number in (0, 1000])", env);
		}
	}
	if (c->opts.request_timeout_ms <= 0) {
		/* Fault tests make a stalled server time out in seconds, not
		 * minutes; same idea as XTSYNC_TIME_SCALE, no config key. */
		const char *env = getenv("XTSYNC_REQUEST_TIMEOUT_MS");
		char *end = NULL;
		long v = env ? strtol(env, &end, 10) : 0;

		if (env != NULL && end != env && *end == '\0' && v >= 100 && v <= 600000) {
			c->opts.request_timeout_ms = v;
			xts_notice("graph: request timeout %ld ms from XTSYNC_REQUEST_TIMEOUT_MS", v);
		} else if (env != NULL && env[0] != '\0') {
			xts_warn("graph: ignoring XTSYNC_REQUEST_TIMEOUT_MS=%.40s (want 100..600000)", env);
		}
	}
	if (c->opts.max_attempts <= 0)
		c->opts.max_attempts = 8;
	if (c->opts.backoff_min_ms <= 0)
		c->opts.backoff_min_ms = 1000;
	if (c->opts.backoff_max_ms <= 0)
		c->opts.backoff_max_ms = 60000;
	if (getrandom(&c->rng, sizeof(c->rng), 0) != (ssize_t)sizeof(c->rng))
		c->rng = (unsigned long long)xts_now_ms() * 2654435761ULL;
	c->rng |= 1;
	ret = xts_http_new(ev, &c->http);
	if (ret != 0)
		goto fail;
	ret = xts_auth_new(c->http, &c->auth);
	if (ret != 0)
		goto fail;
	xts_auth_set_timeout(c->auth, c->opts.request_timeout_ms);
	*out = c;
	return 0;
fail:
	xts_http_free(c->http);
	xts_free(c);
	return ret;
}

void
xts_graph_ctx_free(struct xts_graph_ctx *c)
{
	struct gov *gv, *next;

	if (c == NULL)
		return;
	xts_auth_free(c->auth);
	xts_http_free(c->http);
	for (gv = c->govs; gv != NULL; gv = next) {
		next = gv->next;
		xts_throttle_free(gv->t);
		xts_free(gv->key);
		xts_free(gv);
	}
	xts_free(c);
}

struct xts_http *
xts_graph_ctx_http(struct xts_graph_ctx *c)
{
	return c->http;
}

struct xts_auth *
xts_graph_ctx_auth(struct xts_graph_ctx *c)
{
	return c->auth;
}

static struct gov *
gov_get(struct xts_graph_ctx *c, const struct xts_tenant_conn *tc)
{
	struct gov *gv;
	struct xts_buf k = XTS_BUF_INIT;
	int size = tc->size_class;

	if (xts_buf_printf(&k, "%s|%s", tc->client_id, tc->tenant_id) != 0)
		return NULL;
	for (gv = c->govs; gv != NULL; gv = gv->next) {
		if (strcmp(gv->key, k.p) == 0) {
			gv->refs++;
			xts_buf_free(&k);
			return gv;
		}
	}
	gv = xts_calloc(1, sizeof(*gv));
	if (gv == NULL)
		goto fail;
	if (size < XTS_SIZE_SMALL || size > XTS_SIZE_LARGE)
		size = XTS_SIZE_SMALL;
	if (xts_throttle_new(size, c->opts.time_scale, xts_now_ms(), &gv->t) != 0)
		goto fail;
	gv->key = xts_buf_steal(&k);
	if (gv->key == NULL)
		goto fail;
	gv->refs = 1;
	gv->next = c->govs;
	c->govs = gv;
	return gv;
fail:
	if (gv != NULL)
		xts_throttle_free(gv->t);
	xts_free(gv);
	xts_buf_free(&k);
	return NULL;
}

static char *
trim_endpoint(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return xts_strndup(s, n);
}

int
xts_graph_new(struct xts_graph_ctx *ctx, const struct xts_tenant_conn *tc, struct xts_graph **out)
{
	struct xts_graph *g;
	struct xts_tenant_conn *c;
	int ret = XTS_ENOMEM;

	if (tc == NULL || tc->tenant_id == NULL || tc->client_id == NULL)
		return XTS_EINVAL;
	if (tc->client_secret == NULL && (tc->cert_pem == NULL || tc->key_pem == NULL))
		return XTS_EINVAL;
	if (xts_http_url_check(tc->graph_endpoint ? tc->graph_endpoint : "https://graph.microsoft.com") != 0 ||
	    xts_http_url_check(tc->authority ? tc->authority : "https://login.microsoftonline.com") != 0)
		return XTS_EINVAL;
	g = xts_calloc(1, sizeof(*g));
	if (g == NULL)
		return XTS_ENOMEM;
	g->ctx = ctx;
	c = &g->tc;
	c->name = xts_strdup(tc->name ? tc->name : tc->tenant_id);
	c->tenant_id = xts_strdup(tc->tenant_id);
	c->client_id = xts_strdup(tc->client_id);
	c->client_secret = tc->client_secret ? xts_strdup(tc->client_secret) : NULL;
	c->cert_pem = tc->cert_pem ? xts_strdup(tc->cert_pem) : NULL;
	c->key_pem = tc->key_pem ? xts_strdup(tc->key_pem) : NULL;
	c->authority = trim_endpoint(tc->authority ? tc->authority : "https://login.microsoftonline.com");
	c->graph_endpoint = trim_endpoint(tc->graph_endpoint ? tc->graph_endpoint : "https://graph.microsoft.com");
	c->ca_file = tc->ca_file && tc->ca_file[0] ? xts_strdup(tc->ca_file) : NULL;
	c->size_class = tc->size_class;
	c->max_in_flight = tc->max_in_flight;
	if (c->name == NULL || c->tenant_id == NULL || c->client_id == NULL ||
	    (tc->client_secret && c->client_secret == NULL) || (tc->cert_pem && c->cert_pem == NULL) ||
	    (tc->key_pem && c->key_pem == NULL) || c->authority == NULL || c->graph_endpoint == NULL ||
	    (tc->ca_file && tc->ca_file[0] && c->ca_file == NULL))
		goto fail;
	g->gov = gov_get(ctx, c);
	if (g->gov == NULL)
		goto fail;
	g->throttle = g->gov->t;
	*out = g;
	return 0;
fail:
	xts_graph_free(g);
	return ret;
}

static void req_free(struct xts_graph_req *r);
static void req_unlink(struct xts_graph_req *r);

void
xts_graph_free(struct xts_graph *g)
{
	struct xts_tenant_conn *c;

	if (g == NULL)
		return;
	while (g->reqs != NULL) {
		struct xts_graph_req *r = g->reqs;

		if (r->in_cb) {
			/* freed by finish() when its callback returns */
			req_unlink(r);
			r->orphan = 1;
			continue;
		}
		req_free(r);
	}
	if (g->gov != NULL)
		g->gov->refs--; /* kept until the context goes: budgets outlive reloads */
	c = &g->tc;
	xts_free((char *)c->name);
	xts_free((char *)c->tenant_id);
	xts_free((char *)c->client_id);
	wipe((char *)c->client_secret);
	xts_free((char *)c->cert_pem);
	wipe((char *)c->key_pem);
	xts_free((char *)c->authority);
	xts_free((char *)c->graph_endpoint);
	xts_free((char *)c->ca_file);
	xts_free(g);
}

const struct xts_tenant_conn *
xts_graph_conn(const struct xts_graph *g)
{
	return &g->tc;
}

struct xts_throttle *
xts_graph_throttle(struct xts_graph *g)
{
	return g->throttle;
}

int
xts_graph_status_err(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 401:
		return XTS_EAUTH;
	case 403:
		return XTS_EPERM;
	case 404:
		return XTS_ENOENT;
	case 409:
		return XTS_EEXIST;
	case 410:
		return XTS_EGONE;
	case 413:
		return XTS_ETOOBIG;
	case 429:
		return XTS_ETHROTTLED;
	default:
		break;
	}
	if (status >= 500)
		return XTS_ESERVER;
	return XTS_EGRAPH;
}

/* Text from Graph (an error's code and message, a request id) into a
 * fixed field: cut to n - 1 bytes, on one line, without control characters
 * (xts_text_scrub): it goes into log lines, the terminal, mail subjects. */
void
xts_graph__copy_str(char *dst, size_t n, const char *src)
{
	size_t l;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	l = strlen(src);
	if (l >= n)
		l = n - 1;
	memcpy(dst, src, l);
	dst[l] = '\0';
	/* keep log lines on one line */
	for (size_t i = 0; i < l; i++)
		if (dst[i] == '\n' || dst[i] == '\r')
			dst[i] = ' ';
	xts_text_scrub(dst);
}

int
xts_graph_error_parse(const char *body, size_t len, struct xts_graph_error *e)
{
	json_t *j, *err, *inner;
	int ret = XTS_EPARSE;

	e->code[0] = e->message[0] = '\0';
	if (body == NULL)
		body = "";
	j = xts_json_loadb(body, len, 0, NULL);
	err = json_object_get(j, "error");
	if (json_is_object(err)) {
		xts_graph__copy_str(e->code, sizeof(e->code), json_string_value(json_object_get(err, "code")));
		xts_graph__copy_str(e->message, sizeof(e->message),
			 json_string_value(json_object_get(err, "message")));
		inner = json_object_get(err, "innerError");
		if (!json_is_object(inner))
			inner = json_object_get(err, "innererror");
		if (json_is_object(inner)) {
			const char *rid = json_string_value(json_object_get(inner, "request-id"));
			const char *crid =
				json_string_value(json_object_get(inner, "client-request-id"));

			if (rid != NULL)
				xts_graph__copy_str(e->request_id, sizeof(e->request_id), rid);
			if (crid != NULL)
				xts_graph__copy_str(e->client_request_id, sizeof(e->client_request_id), crid);
		}
		ret = e->code[0] ? 0 : XTS_EPARSE;
	} else if (json_is_string(err)) {
		/* token endpoint shape */
		xts_graph__copy_str(e->code, sizeof(e->code), json_string_value(err));
		xts_graph__copy_str(e->message, sizeof(e->message),
			 json_string_value(json_object_get(j, "error_description")));
		ret = 0;
	}
	if (ret != 0) {
		size_t n = len < 200 ? len : 200;
		char tmp[201];

		memcpy(tmp, body, n);
		tmp[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)tmp[i] < 0x20 || (unsigned char)tmp[i] >= 0x7f)
				tmp[i] = '.';
		xts_graph__copy_str(e->message, sizeof(e->message), tmp);
	}
	json_decref(j);
	return ret;
}

/* Absolute URL for url (relative to the endpoint, or absolute on it). */
int
xts_graph__abs_url(struct xts_graph *g, const char *url, char **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	int ret;

	*out = NULL;
	if (url == NULL)
		return XTS_EINVAL;
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) {
		ret = xts_http_same_origin(url, g->tc.graph_endpoint);
		if (ret != 0)
			return ret == XTS_EFOREIGN ? XTS_EFOREIGN : XTS_EINVAL;
		*out = xts_strdup(url);
		return *out ? 0 : XTS_ENOMEM;
	}
	if (xts_buf_puts(&b, g->tc.graph_endpoint) != 0 ||
	    (url[0] != '/' && xts_buf_putc(&b, '/') != 0) || xts_buf_puts(&b, url) != 0) {
		xts_buf_free(&b);
		return XTS_ENOMEM;
	}
	*out = xts_buf_steal(&b);
	return *out ? 0 : XTS_ENOMEM;
}

int
xts_graph_link_check(struct xts_graph *g, const char *url)
{
	if (url == NULL)
		return XTS_EINVAL;
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		return 0;
	return xts_http_same_origin(url, g->tc.graph_endpoint) == 0 ? 0 : XTS_EFOREIGN;
}

static unsigned long long
rng_next(struct xts_graph_ctx *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	return c->rng;
}

long long
xts_graph__backoff_ms(struct xts_graph *g, int attempt)
{
	struct xts_graph_ctx *c = g->ctx;
	long long d = c->opts.backoff_min_ms;
	int i;

	for (i = 1; i < attempt && d < c->opts.backoff_max_ms; i++)
		d *= 2;
	if (d > c->opts.backoff_max_ms)
		d = c->opts.backoff_max_ms;
	/* "equal jitter": half fixed, half random */
	return d / 2 + (long long)(rng_next(c) % (unsigned long long)(d / 2 + 1));
}

long long
xts_graph__token_delay_ms(struct xts_graph *g, int attempt)
{
	long long d = xts_graph__backoff_ms(g, attempt);
	long long w = xts_auth_wait_ms(g->ctx->auth, &g->tc);

	return w > d ? w : d;
}

int
xts_graph__attempt_cap(struct xts_graph *g, int err)
{
	int n = g->ctx->opts.max_attempts;

	/* "If the request fails again with a 429 error code, you are still
	 * being throttled. Continue to use the recommended Retry-After delay
	 * and retry the request until it succeeds." (throttling.md): a throttled
	 * request is not a failing one; bounded all the same, so a cycle ends */
	return err == XTS_ETHROTTLED ? n * XTS_GRAPH_THROTTLED_TIMES : n;
}

int
xts_graph__max_attempts(struct xts_graph *g)
{
	return g->ctx->opts.max_attempts;
}

struct xts_evloop *
xts_graph__ev(struct xts_graph *g)
{
	return g->ctx->ev;
}

size_t
xts_graph__max_body(struct xts_graph *g)
{
	return g->ctx->opts.max_body;
}

static void
req_unlink(struct xts_graph_req *r)
{
	struct xts_graph *g = r->g;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else if (g->reqs == r)
		g->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static void
req_free(struct xts_graph_req *r)
{
	req_unlink(r);
	if (r->aw != NULL)
		xts_auth_cancel(r->aw);
	if (r->xfer != NULL)
		xts_http_cancel(r->xfer);
	if (r->admitted)
		xts_throttle_refund(r->g->throttle, &r->cost, xts_now_ms());
	xts_ev_timer_free(r->timer);
	xts_free(r->method);
	xts_free(r->url);
	xts_free(r->body);
	xts_free(r);
}

static void
finish(struct xts_graph_req *r, int err, long status, json_t *body, struct xts_graph_error *ge,
       const char *location)
{
	struct xts_graph_result res;

	res.err = err;
	res.status = status;
	res.body = body;
	res.gerr = err != 0 ? ge : NULL;
	res.location = location;
	r->in_cb = 1;
	r->cb(r->arg, &res);
	if (r->orphan) {
		/* nothing pending (we are past the send), only memory left */
		xts_ev_timer_free(r->timer);
		xts_free(r->method);
		xts_free(r->url);
		xts_free(r->body);
		xts_free(r);
		return;
	}
	req_free(r);
}

static void step_admit(struct xts_graph_req *r);

static void
on_timer(void *arg)
{
	step_admit(arg);
}

static int
arm(struct xts_graph_req *r, long long ms)
{
	int ret;

	if (r->timer == NULL) {
		ret = xts_ev_timer_new(r->g->ctx->ev, on_timer, r, &r->timer);
		if (ret != 0)
			return ret;
	}
	return xts_ev_timer_start(r->timer, ms);
}

static void
fail_now(struct xts_graph_req *r, int err, const char *what)
{
	struct xts_graph_error ge;

	memset(&ge, 0, sizeof(ge));
	xts_graph__copy_str(ge.message, sizeof(ge.message), what);
	xts_warn("graph: %s: %s %s: %s (%s)", r->g->tc.name, r->method, r->url, xts_strerror(err),
		 what);
	finish(r, err, 0, NULL, &ge, NULL);
}

static void on_http(void *arg, const struct xts_http_resp *resp);

static void
on_token(void *arg, int err, const char *token, long aadsts, const char *detail)
{
	struct xts_graph_req *r = arg;
	struct xts_http_req hr;
	struct xts_buf auth = XTS_BUF_INIT;
	const char *hdrs[5];
	int ret;

	r->aw = NULL;
	if ((err == XTS_EHTTP || err == XTS_ETIMEDOUT || err == XTS_ESERVER || err == XTS_ETHROTTLED) &&
	    !(r->flags & XTS_GRAPH_NO_RETRY) && r->attempts + 1 < r->g->ctx->opts.max_attempts) {
		long long delay = xts_graph__token_delay_ms(r->g, ++r->attempts);

		if (r->admitted) {
			xts_throttle_refund(r->g->throttle, &r->cost, xts_now_ms());
			r->admitted = 0;
		}
		xts_log_rl(XTS_LOG_INFO, 10000, 20, "graph: %s: token endpoint: %s; retry in %lld ms",
			   r->g->tc.name, xts_strerror(err), delay);
		if (arm(r, delay) != 0)
			fail_now(r, XTS_ENOMEM, "cannot arm a timer");
		return;
	}
	if (err != 0) {
		struct xts_graph_error ge;

		memset(&ge, 0, sizeof(ge));
		if (aadsts != 0)
			snprintf(ge.code, sizeof(ge.code), "AADSTS%ld", aadsts);
		xts_graph__copy_str(ge.message, sizeof(ge.message), detail);
		if (r->admitted) {
			xts_throttle_refund(r->g->throttle, &r->cost, xts_now_ms());
			r->admitted = 0;
		}
		/* auth.c logged the failure once already */
		finish(r, err, 0, NULL, &ge, NULL);
		return;
	}
	if (xts_buf_printf(&auth, "Authorization: Bearer %s", token) != 0) {
		fail_now(r, XTS_ENOMEM, "out of memory");
		return;
	}
	{
		int n = 0;
		hdrs[n++] = auth.p;
		hdrs[n++] = "Accept: application/json";
		/* also on a POST without a body (restore: "Content-type:
		 * application/json", "Do not supply a request body",
		 * directory-deleteditems-restore.md), where libcurl would
		 * otherwise send application/x-www-form-urlencoded */
		if (r->body || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "DELETE") != 0))
			hdrs[n++] = "Content-Type: application/json";
		if (r->flags & XTS_GRAPH_ADVANCED)
			hdrs[n++] = "ConsistencyLevel: eventual";
		hdrs[n] = NULL;
	}
	memset(&hr, 0, sizeof(hr));
	hr.method = r->method;
	hr.url = r->url;
	hr.headers = hdrs;
	hr.body = r->body;
	hr.body_len = r->body ? strlen(r->body) : 0;
	hr.ca_file = r->g->tc.ca_file;
	hr.max_body = r->g->ctx->opts.max_body;
	hr.timeout_ms = r->g->ctx->opts.request_timeout_ms;
	hr.max_in_flight = r->g->tc.max_in_flight;
	hr.quiet = 1;
	ret = xts_http_submit(r->g->ctx->http, &hr, on_http, r, &r->xfer);
	explicit_bzero(auth.p, auth.len);
	xts_buf_free(&auth);
	if (ret != 0) {
		fail_now(r, ret, "cannot submit the request");
		return;
	}
	r->admitted = 0; /* sent: the budget is spent */
	r->attempts++;
}

static void
step_token(struct xts_graph_req *r)
{
	int ret = xts_auth_get(r->g->ctx->auth, &r->g->tc, r->force_token, on_token, r, &r->aw);

	r->force_token = 0;
	if (ret != 0)
		fail_now(r, ret, "cannot request a token");
}

static void
step_admit(struct xts_graph_req *r)
{
	long long now = xts_now_ms(), wait;
	int ret;

	if (r->flags & XTS_GRAPH_NO_THROTTLE) {
		long long gate = xts_throttle_gate_until(r->g->throttle);

		wait = gate > now ? gate - now : 0;
	} else {
		wait = xts_throttle_admit(r->g->throttle, &r->cost, now);
		if (wait == 0)
			r->admitted = 1;
	}
	if (wait > 0) {
		ret = arm(r, wait);
		if (ret != 0)
			fail_now(r, ret, "cannot arm a timer");
		return;
	}
	step_token(r);
}

static int
retryable_status(long s)
{
	return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static void
log_failure(struct xts_graph_req *r, int err, long status, const struct xts_graph_error *ge)
{
	int level = (status == 404) ? XTS_LOG_INFO : XTS_LOG_WARNING;

	xts_log_rl(level, 10000, 50,
		   "graph: %s: %s %s -> HTTP %ld %s: %s: %s (request-id %s, client-request-id %s)",
		   r->g->tc.name, r->method, r->url, status, xts_errname(err),
		   ge->code[0] ? ge->code : "-", ge->message[0] ? ge->message : "-",
		   ge->request_id[0] ? ge->request_id : "-",
		   ge->client_request_id[0] ? ge->client_request_id : "-");
}

static void
on_http(void *arg, const struct xts_http_resp *resp)
{
	struct xts_graph_req *r = arg;
	struct xts_graph *g = r->g;
	struct xts_graph_error ge;
	long long now = xts_now_ms(), delay;
	json_t *body = NULL;
	int err, ret, may_retry;

	r->xfer = NULL;
	memset(&ge, 0, sizeof(ge));
	ge.status = resp->status;
	xts_graph__copy_str(ge.client_request_id, sizeof(ge.client_request_id), resp->client_request_id);
	xts_graph__copy_str(ge.request_id, sizeof(ge.request_id), resp->request_id);
	may_retry = !(r->flags & XTS_GRAPH_NO_RETRY) &&
		    r->attempts < xts_graph__attempt_cap(g, resp->status == 429 ? XTS_ETHROTTLED : 0);

	if (resp->err != 0) {
		if (resp->err != XTS_ETOOBIG && resp->err != XTS_ETLS && resp->err != XTS_EINVAL &&
		    resp->err != XTS_ENOMEM && may_retry) {
			delay = xts_graph__backoff_ms(g, r->attempts);
			xts_log_rl(XTS_LOG_INFO, 10000, 20,
				   "graph: %s: %s %s: %s (%s); retry %d in %lld ms (client-request-id %s)",
				   g->tc.name, r->method, r->url, xts_strerror(resp->err),
				   resp->err_detail, r->attempts, delay, resp->client_request_id);
			ret = arm(r, delay);
			if (ret != 0)
				fail_now(r, ret, "cannot arm a timer");
			return;
		}
		xts_graph__copy_str(ge.message, sizeof(ge.message), resp->err_detail);
		snprintf(ge.code, sizeof(ge.code), "%s", xts_errname(resp->err));
		log_failure(r, resp->err, 0, &ge);
		finish(r, resp->err, 0, NULL, &ge, NULL);
		return;
	}
	{
		/* A 429 without Retry-After gates the tenant for an exponential
		 * backoff of this request's attempts, not a fixed time: "If no
		 * Retry-After header is provided by the response, we recommend
		 * implementing an exponential backoff retry policy"
		 * (concepts/throttling.md). */
		long long ra = resp->retry_after_ms;

		if (resp->status == 429 && ra <= 0)
			ra = xts_graph__backoff_ms(g, r->attempts);
		xts_throttle_feedback(g->throttle, resp->status, ra, resp->throttle_pct, now);
	}
	if (resp->status == 401 && !r->reauthed) {
		/* Typically an access token that expired in flight. */
		xts_graph_error_parse(resp->body, resp->body_len, &ge);
		xts_log_rl(XTS_LOG_INFO, 10000, 20,
			   "graph: %s: %s %s -> HTTP 401 %s: %s; getting a new token, retrying once "
			   "(client-request-id %s)", g->tc.name, r->method, r->url,
			   ge.code[0] ? ge.code : "-", ge.message[0] ? ge.message : "-",
			   resp->client_request_id);
		r->reauthed = 1;
		/* xts_auth_get drops the cached token unless it is younger
		 * than 1 s: a burst of 401s fetches one new token, not one each */
		r->force_token = 1;
		step_admit(r);
		return;
	}
	if (retryable_status(resp->status) && may_retry) {
		/* 429: the governor now gates every request to this tenant
		 * until Retry-After; step_admit waits for that. 5xx: back off,
		 * at least Retry-After when the server gave one. */
		delay = 0;
		if (resp->status != 429) {
			delay = xts_graph__backoff_ms(g, r->attempts);
			if (resp->retry_after_ms > delay)
				delay = resp->retry_after_ms;
		}
		xts_log_rl(XTS_LOG_INFO, 10000, 20,
			   "graph: %s: %s %s -> HTTP %ld; retry %d (Retry-After %lld ms, client-request-id %s)",
			   g->tc.name, r->method, r->url, resp->status, r->attempts,
			   resp->retry_after_ms, resp->client_request_id);
		ret = arm(r, delay);
		if (ret != 0)
			fail_now(r, ret, "cannot arm a timer");
		return;
	}
	err = xts_graph_status_err(resp->status);
	if (resp->body_len > 0) {
		body = xts_json_loadb_graph(resp->body, resp->body_len, NULL);
		if (body == NULL && err == 0 && resp->status != 204) {
			err = XTS_EPARSE;
			snprintf(ge.code, sizeof(ge.code), "InvalidJson");
			xts_graph__copy_str(ge.message, sizeof(ge.message), "response body is not JSON");
		}
	}
	/* "Requests in a batch are evaluated individually against throttling
	 * limits ... The batch itself fails with a status code of 424 (Failed
	 * Dependency)" (concepts/throttling.md, "Throttling and batching"). Such
	 * an envelope still carries every sub-response with its own status:
	 * the caller (graph_batch.c) reads them like a 200's. */
	if (resp->status == 424 && json_is_array(json_object_get(body, "responses")))
		err = 0;
	if (err != 0 && resp->status >= 300) {
		xts_graph_error_parse(resp->body, resp->body_len, &ge);
		if (ge.request_id[0] == '\0')
			xts_graph__copy_str(ge.request_id, sizeof(ge.request_id), resp->request_id);
		if (ge.client_request_id[0] == '\0')
			xts_graph__copy_str(ge.client_request_id, sizeof(ge.client_request_id),
				 resp->client_request_id);
	}
	if (err != 0)
		log_failure(r, err, resp->status, &ge);
	finish(r, err, resp->status, body, &ge, resp->location);
	json_decref(body);
}

int
xts_graph_request(struct xts_graph *g, const char *method, const char *url, json_t *body,
		  unsigned flags, xts_graph_cb cb, void *arg, struct xts_graph_req **out)
{
	struct xts_graph_req *r;
	int ret = XTS_ENOMEM;

	if (g == NULL || method == NULL || url == NULL || cb == NULL)
		return XTS_EINVAL;
	r = xts_calloc(1, sizeof(*r));
	if (r == NULL)
		return XTS_ENOMEM;
	r->g = g;
	r->flags = flags;
	r->cb = cb;
	r->arg = arg;
	r->method = xts_strdup(method);
	if (r->method == NULL)
		goto fail;
	ret = xts_graph__abs_url(g, url, &r->url);
	if (ret != 0)
		goto fail;
	ret = XTS_ENOMEM;
	if (body != NULL) {
		/* one pass, not jansson's json_dumps (json_text.h): a $batch
		 * envelope of 20 PATCHes cost ~790,000 instructions there */
		struct xts_buf t = XTS_BUF_INIT;

		if (xts_json_text(body, &t, 0) != 0) {
			xts_buf_free(&t);
			goto fail;
		}
		r->body = xts_buf_steal(&t);
	}
	r->cost = xts_throttle_cost_of(method, r->url);
	r->next = g->reqs;
	if (g->reqs != NULL)
		g->reqs->prev = r;
	g->reqs = r;
	/* Always start from the loop so the callback never runs inside this call. */
	ret = arm(r, 0);
	if (ret != 0) {
		req_free(r);
		return ret;
	}
	if (out != NULL)
		*out = r;
	return 0;
fail:
	xts_free(r->method);
	xts_free(r->url);
	xts_free(r->body);
	xts_free(r);
	return ret;
}

void
xts_graph_cancel(struct xts_graph_req *r)
{
	if (r == NULL || r->in_cb)
		return;
	req_free(r);
}
