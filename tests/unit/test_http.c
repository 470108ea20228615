/* SPDX-License-Identifier: MIT */
/* Unit tests for the pure parts of the HTTP/Graph layer: URL safety checks
 * (https or loopback http, same-origin for next/delta links), Retry-After,
 * client-request-id GUIDs, Graph error bodies, delta pages, members@delta and
 * $batch responses. The network paths are in tests/integration/test_graph.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "err.h"
#include "graph.h"
#include "http.h"
#include "log.h"
#include "mem.h"
#include "throttle.h"

static void
test_url_check(void **state)
{
	(void)state;
	assert_int_equal(xts_http_url_check("https://graph.microsoft.com/v1.0/users"), 0);
	assert_int_equal(xts_http_url_check("http://127.0.0.1:8080/x"), 0);
	assert_int_equal(xts_http_url_check("http://localhost/x"), 0);
	assert_int_equal(xts_http_url_check("http://[::1]:99/x"), 0);
	assert_int_equal(xts_http_url_check("http://graph.microsoft.com/v1.0"), XTS_EINVAL);
	assert_int_equal(xts_http_url_check("http://127.0.0.1.evil.example/"), XTS_EINVAL);
	assert_int_equal(xts_http_url_check("ftp://127.0.0.1/"), XTS_EINVAL);
	assert_int_equal(xts_http_url_check("file:///etc/passwd"), XTS_EINVAL);
	assert_int_equal(xts_http_url_check("not a url"), XTS_EINVAL);
	assert_int_equal(xts_http_url_check(NULL), XTS_EINVAL);
}

static void
test_same_origin(void **state)
{
	(void)state;
	assert_int_equal(xts_http_same_origin("https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x",
					      "https://graph.microsoft.com"), 0);
	assert_int_equal(xts_http_same_origin("https://GRAPH.microsoft.com:443/a", "https://graph.microsoft.com/"), 0);
	assert_int_equal(xts_http_same_origin("http://127.0.0.1:5000/a", "http://127.0.0.1:5000"), 0);
	assert_int_equal(xts_http_same_origin("http://127.0.0.1:5001/a", "http://127.0.0.1:5000"), XTS_EFOREIGN);
	assert_int_equal(xts_http_same_origin("https://127.0.0.1:5000/a", "http://127.0.0.1:5000"), XTS_EFOREIGN);
	assert_int_equal(xts_http_same_origin("http://evil.example/v1.0/users/delta", "http://127.0.0.1:5000"),
			 XTS_EFOREIGN);
	assert_int_equal(xts_http_same_origin("https://graph.microsoft.com.evil.example/", "https://graph.microsoft.com"),
			 XTS_EFOREIGN);
	assert_int_equal(xts_http_same_origin("https://user@evil.example/", "https://graph.microsoft.com"),
			 XTS_EFOREIGN);
	assert_int_equal(xts_http_same_origin("::::", "https://graph.microsoft.com"), XTS_EINVAL);
}

/* A paging link as the client follows it: absolute on the endpoint. OData
 * resolves a relative link against the service root; a loopback alias of the
 * endpoint's host (an emulator naming itself localhost) is the same server. */
static void
test_link_resolve(void **state)
{
	char *o = NULL;

	(void)state;
	assert_int_equal(xts_http_link_resolve("https://graph.microsoft.com", "/v1.0/",
					       "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a", &o), 0);
	assert_string_equal(o, "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=a");
	xts_free(o);
	assert_int_equal(xts_http_link_resolve("http://127.0.0.1:5000", "/v1.0/",
					       "/v1.0/users/delta?$skiptoken=b", &o), 0);
	assert_string_equal(o, "http://127.0.0.1:5000/v1.0/users/delta?$skiptoken=b");
	xts_free(o);
	assert_int_equal(xts_http_link_resolve("http://127.0.0.1:5000", "/v1.0/", "users/delta?$deltatoken=c",
					       &o), 0);
	assert_string_equal(o, "http://127.0.0.1:5000/v1.0/users/delta?$deltatoken=c");
	xts_free(o);
	assert_int_equal(xts_http_link_resolve("http://127.0.0.1:5000", "/v1.0/",
					       "http://localhost:5000/v1.0/users/delta?$skiptoken=d", &o), 0);
	assert_string_equal(o, "http://127.0.0.1:5000/v1.0/users/delta?$skiptoken=d");
	xts_free(o);
	assert_int_equal(xts_http_link_resolve("http://localhost:5000", "/v1.0/", "http://[::1]:5000/x", &o), 0);
	assert_string_equal(o, "http://localhost:5000/x");
	xts_free(o);
	/* under the endpoint's own path (a proxy's prefix); no userinfo kept */
	assert_int_equal(xts_http_link_resolve("https://proxy.example/graph", "/v1.0/", "users/delta?$skiptoken=e", &o),
			 0);
	assert_string_equal(o, "https://proxy.example/graph/v1.0/users/delta?$skiptoken=e");
	xts_free(o);
	assert_int_equal(xts_http_link_resolve("https://graph.microsoft.com", "/v1.0/",
					       "https://u:p@graph.microsoft.com/v1.0/x", &o), 0);
	assert_string_equal(o, "https://graph.microsoft.com/v1.0/x");
	xts_free(o);
	o = (char *)1;
	assert_int_equal(xts_http_link_resolve("http://127.0.0.1:5000", "/v1.0/", "http://localhost:5001/x", &o),
			 XTS_EFOREIGN);
	assert_null(o);
	assert_int_equal(xts_http_link_resolve("http://127.0.0.1:5000", "/v1.0/", "http://evil.example:5000/x",
					       &o), XTS_EFOREIGN);
	assert_int_equal(xts_http_link_resolve("https://graph.microsoft.com", "/v1.0/",
					       "https://graph.microsoft.com.evil.example/v1.0/x", &o), XTS_EFOREIGN);
	assert_int_equal(xts_http_link_resolve("https://graph.microsoft.com", "/v1.0/", "//evil.example/x", &o),
			 XTS_EFOREIGN);
	assert_int_equal(xts_http_link_resolve("https://graph.microsoft.com", "/v1.0/",
					       "https://graph.microsoft.com/v1.0/a b", &o), XTS_EINVAL);
}

static void
test_retry_after(void **state)
{
	(void)state;
	assert_int_equal(xts_http_parse_retry_after("5", 0), 5000);
	assert_int_equal(xts_http_parse_retry_after(" 120 ", 0), 120000);
	assert_int_equal(xts_http_parse_retry_after("0", 0), 0);
	assert_int_equal(xts_http_parse_retry_after("abc", 0), -1);
	assert_int_equal(xts_http_parse_retry_after("5x", 0), -1);
	/* seconds with a fraction (concepts/throttling.md's sample 429 says
	 * "Retry-After: 2.128"): to the millisecond, rounded up */
	assert_int_equal(xts_http_parse_retry_after("2.128", 0), 2128);
	assert_int_equal(xts_http_parse_retry_after("0.5", 0), 500);
	assert_int_equal(xts_http_parse_retry_after("1.0001", 0), 1001);
	assert_int_equal(xts_http_parse_retry_after("1.00001", 0), 1001);
	assert_int_equal(xts_http_parse_retry_after("1.5000000", 0), 1500);
	assert_int_equal(xts_http_parse_retry_after("3.1200", 0), 3120);
	assert_int_equal(xts_http_parse_retry_after("2.5x", 0), -1);
	assert_int_equal(xts_http_parse_retry_after(NULL, 0), -1);
	/* HTTP-date: Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
	assert_int_equal(xts_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10000);
	assert_int_equal(xts_http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490), 0);
}

static void
test_guid(void **state)
{
	char a[37], b[37];
	int i;

	(void)state;
	assert_int_equal(xts_guid_new(a), 0);
	assert_int_equal(xts_guid_new(b), 0);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4');
	assert_true(strchr("89ab", a[19]) != NULL);
	for (i = 0; i < 36; i++)
		assert_true(strchr(i == 8 || i == 13 || i == 18 || i == 23 ? "-" : "0123456789abcdef", a[i]) != NULL);
}

static void
test_error_parse(void **state)
{
	struct xts_graph_error e;
	const char *g = "{\"error\":{\"code\":\"Request_ResourceNotFound\",\"message\":\"Resource 'x' does not exist.\","
			"\"innerError\":{\"date\":\"2024-01-01T00:00:00\",\"request-id\":\"rid-1\",\"client-request-id\":\"crid-1\"}}}";
	const char *t = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret\"}";

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(xts_graph_error_parse(g, strlen(g), &e), 0);
	assert_string_equal(e.code, "Request_ResourceNotFound");
	assert_string_equal(e.message, "Resource 'x' does not exist.");
	assert_string_equal(e.request_id, "rid-1");
	assert_string_equal(e.client_request_id, "crid-1");
	memset(&e, 0, sizeof(e));
	assert_int_equal(xts_graph_error_parse(t, strlen(t), &e), 0);
	assert_string_equal(e.code, "invalid_client");
	memset(&e, 0, sizeof(e));
	assert_int_equal(xts_graph_error_parse("<html>\n</html>", 14, &e), XTS_EPARSE);
	assert_string_equal(e.code, "");
	assert_string_equal(e.message, "<html>.</html>");
	assert_int_equal(xts_graph_error_parse(NULL, 0, &e), XTS_EPARSE);

	assert_int_equal(xts_graph_status_err(204), 0);
	assert_int_equal(xts_graph_status_err(404), XTS_ENOENT);
	assert_int_equal(xts_graph_status_err(410), XTS_EGONE);
	assert_int_equal(xts_graph_status_err(429), XTS_ETHROTTLED);
	assert_int_equal(xts_graph_status_err(503), XTS_ESERVER);
	assert_int_equal(xts_graph_status_err(400), XTS_EGRAPH);
}

static void
test_page_parse(void **state)
{
	json_t *p, *v;
	const char *n, *d;

	(void)state;
	p = json_loads("{\"value\":[{\"id\":\"1\"}],\"@odata.nextLink\":\"https://g/v1.0/users/delta?$skiptoken=a\"}", 0, NULL);
	assert_int_equal(xts_graph_page_parse(p, &v, &n, &d), 0);
	assert_int_equal(json_array_size(v), 1);
	assert_string_equal(n, "https://g/v1.0/users/delta?$skiptoken=a");
	assert_null(d);
	json_decref(p);
	p = json_loads("{\"value\":[],\"@odata.deltaLink\":\"https://g/d\"}", 0, NULL);
	assert_int_equal(xts_graph_page_parse(p, &v, &n, &d), 0);
	assert_null(n);
	assert_string_equal(d, "https://g/d");
	json_decref(p);
	p = json_loads("{\"value\":{}}", 0, NULL);
	assert_int_equal(xts_graph_page_parse(p, &v, &n, &d), XTS_EPARSE);
	json_decref(p);
	p = json_loads("{\"value\":[],\"@odata.nextLink\":5}", 0, NULL);
	assert_int_equal(xts_graph_page_parse(p, &v, &n, &d), XTS_EPARSE);
	json_decref(p);
	/* null is an absent link, not a bad page */
	p = json_loads("{\"value\":[],\"@odata.nextLink\":null,\"@odata.deltaLink\":\"https://g/d\"}", 0, NULL);
	assert_int_equal(xts_graph_page_parse(p, &v, &n, &d), 0);
	assert_null(n);
	assert_string_equal(d, "https://g/d");
	json_decref(p);
	assert_int_equal(xts_graph_page_parse(NULL, &v, &n, &d), XTS_EPARSE);
}

struct seen {
	int n, removed;
	char last_member[64];
	int groups_removed;
};

static int
on_members(void *arg, const struct xts_member_event *ev, size_t n, int last)
{
	struct seen *s = arg;
	size_t i;

	for (i = 0; i < n; i++) {
		s->n++;
		s->removed += ev[i].removed;
		if (ev[i].member_id != NULL)
			strncpy(s->last_member, ev[i].member_id, sizeof(s->last_member) - 1);
		else
			s->groups_removed++;
	}
	return last ? 7 : 0;
}

static void
test_members_parse(void **state)
{
	struct seen s;
	json_t *v = json_loads("[{\"id\":\"g1\",\"displayName\":\"G\",\"members@delta\":["
			       "{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u1\"},"
			       "{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"u2\",\"@removed\":{\"reason\":\"deleted\"}}]},"
			       "{\"id\":\"g2\"}]", 0, NULL);

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(xts_graph_members_parse(v, on_members, &s, 1), 7);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.removed, 1);
	assert_string_equal(s.last_member, "u2");
	json_decref(v);
	/* a deleted group: one event without a member (its members@delta,
	 * if any, are not taken) */
	v = json_loads("[{\"id\":\"g3\",\"@removed\":{\"reason\":\"deleted\"},\"members@delta\":[{\"id\":\"u9\"}]}]",
		       0, NULL);
	memset(&s, 0, sizeof(s));
	assert_int_equal(xts_graph_members_parse(v, on_members, &s, 1), 7);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.removed, 1);
	assert_int_equal(s.groups_removed, 1);
	json_decref(v);
	/* "@removed" is an object; null or false is not a removal */
	v = json_loads("[{\"id\":\"g4\",\"@removed\":null,\"members@delta\":[{\"id\":\"u1\",\"@removed\":null},"
		       "{\"id\":\"u2\",\"@removed\":false},{\"id\":\"u3\",\"@removed\":{}}]}]", 0, NULL);
	memset(&s, 0, sizeof(s));
	assert_int_equal(xts_graph_members_parse(v, on_members, &s, 1), 7);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.removed, 1);
	assert_int_equal(s.groups_removed, 0);
	json_decref(v);
	v = json_loads("{\"id\":\"x\",\"@removed\":null}", 0, NULL);
	assert_false(xts_graph_is_removed(v));
	json_decref(v);
	assert_true(xts_graph_is_user_type("#microsoft.graph.user"));
	assert_true(xts_graph_is_user_type("microsoft.graph.user"));
	assert_true(xts_graph_is_user_type("#Microsoft.Graph.User"));
	assert_false(xts_graph_is_user_type("#microsoft.graph.group"));
	assert_false(xts_graph_is_user_type("#microsoft.graph.userX"));
	v = json_loads("[{\"displayName\":\"no id\"}]", 0, NULL);
	assert_int_equal(xts_graph_members_parse(v, on_members, &s, 0), XTS_EPARSE);
	json_decref(v);
}

struct subs {
	int n;
	long status[4];
	long long ra[4];
	double pct[4];
	char ids[4][8];
};

static void
on_sub(void *arg, const char *id, long status, json_t *body, long long ra, double pct)
{
	struct subs *s = arg;

	(void)body;
	if (s->n < 4) {
		s->status[s->n] = status;
		s->ra[s->n] = ra;
		s->pct[s->n] = pct;
		strncpy(s->ids[s->n], id, 7);
	}
	s->n++;
}

static void
test_batch_parse(void **state)
{
	struct subs s;
	json_t *r = json_loads("{\"responses\":[{\"id\":\"2\",\"status\":429,\"headers\":{\"retry-after\":\"7\","
			       "\"x-ms-throttle-limit-percentage\":\"1.2\"}},{\"id\":\"1\",\"status\":204,"
			       "\"headers\":{\"X-MS-Throttle-Limit-Percentage\":\"0.85\"}},{\"id\":\"3\",\"status\":\"bad\"},"
			       "{\"status\":200}]}", 0, NULL);

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(xts_batch_parse_response(r, on_sub, &s), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.ids[0], "2");
	assert_int_equal(s.status[0], 429);
	assert_int_equal(s.ra[0], 7000);
	assert_true(s.pct[0] > 1.19 && s.pct[0] < 1.21);
	assert_int_equal(s.status[1], 204);
	assert_int_equal(s.ra[1], -1);
	assert_true(s.pct[1] > 0.84 && s.pct[1] < 0.86); /* header names are case-insensitive */
	json_decref(r);
	/* a header value given as a JSON number */
	r = json_loads("{\"responses\":[{\"id\":\"4\",\"status\":429,\"headers\":{\"Retry-After\":20}},"
		       "{\"id\":\"5\",\"status\":429,\"headers\":{\"Retry-After\":1.5}}]}", 0, NULL);
	memset(&s, 0, sizeof(s));
	assert_int_equal(xts_batch_parse_response(r, on_sub, &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ra[0], 20000);
	assert_int_equal(s.ra[1], 1500);
	json_decref(r);
	r = json_loads("{\"value\":[]}", 0, NULL);
	assert_int_equal(xts_batch_parse_response(r, on_sub, &s), XTS_EPARSE);
	json_decref(r);
}

static void
noop_sub(void *arg, const char *id, long status, json_t *body, long long ra, double pct)
{
	(void)pct;
	(void)arg;
	(void)id;
	(void)status;
	(void)body;
	(void)ra;
}

/* Allocation failure at every step of the parsers: an error or success,
 * never a crash or a leak (ASan builds check the leaks). */
static void
test_parsers_alloc_failure(void **state)
{
	const char *page = "{\"value\":[{\"id\":\"g1\",\"members@delta\":[{\"id\":\"u1\"},{\"id\":\"u2\",\"@removed\":{}}]}],"
			   "\"@odata.deltaLink\":\"https://g/d\"}";
	const char *batch = "{\"responses\":[{\"id\":\"1\",\"status\":429,\"headers\":{\"Retry-After\":\"3\"}}]}";
	const char *err = "{\"error\":{\"code\":\"X\",\"message\":\"m\",\"innerError\":{\"request-id\":\"r\"}}}";
	struct xts_graph_error e;
	unsigned long n;
	int ok_runs = 0, failed_runs = 0;

	(void)state;
	assert_int_equal(xts_mem_install(), 0);
	for (n = 1; n < 200; n++) {
		json_t *p, *b, *v;
		const char *nx, *d;
		struct seen s;
		int r1 = -1;

		memset(&s, 0, sizeof(s));
		xts_mem_fail_after(n, 0);
		p = json_loads(page, 0, NULL);
		if (p != NULL && xts_graph_page_parse(p, &v, &nx, &d) == 0)
			r1 = xts_graph_members_parse(v, on_members, &s, 1);
		b = json_loads(batch, 0, NULL);
		if (b != NULL)
			xts_batch_parse_response(b, noop_sub, NULL);
		xts_graph_error_parse(err, strlen(err), &e);
		xts_mem_fail_after(0, 0);
		if (r1 == 7)
			ok_runs++;
		else
			failed_runs++;
		assert_true(r1 == 7 || r1 == XTS_ENOMEM || r1 == -1);
		json_decref(p);
		json_decref(b);
	}
	assert_true(failed_runs > 0); /* the injection really hit the parsers */
	assert_true(ok_runs > 0);
}

/* A do-nothing event loop: enough to build a context without running it. */
struct fake_timer {
	struct xts_evloop *ev; /* first, as evloop.h requires */
};

static int
fake_io(struct xts_evloop *ev, int fd, int events, xts_ev_io_cb cb, void *arg)
{
	return 0;
}

static int
fake_timer_new(struct xts_evloop *ev, xts_ev_timer_cb cb, void *arg, struct xts_evtimer **out)
{
	struct fake_timer *t = xts_calloc(1, sizeof(*t));

	if (t == NULL)
		return XTS_ENOMEM;
	t->ev = ev;
	*out = (struct xts_evtimer *)t;
	return 0;
}

static int
fake_timer_start(struct xts_evtimer *t, long long ms)
{
	return 0;
}

static void
fake_timer_stop(struct xts_evtimer *t)
{
}

static void
fake_timer_free(struct xts_evtimer *t)
{
	xts_free(t);
}

static const struct xts_evloop_ops fake_ops = {
	fake_io, fake_timer_new, fake_timer_start, fake_timer_stop, fake_timer_free,
};

/* Requests of cost 1 RU the pair's governor admits at one instant. */
static int
burst_of(const char *env)
{
	struct xts_evloop ev = { &fake_ops, NULL };
	struct xts_graph_ctx *ctx = NULL;
	struct xts_graph *g = NULL;
	struct xts_tenant_conn tc;
	struct xts_throttle_cost c = xts_throttle_cost_of("GET", "/v1.0/users/x");
	long long now = xts_now_ms();
	int n = 0;

	if (env != NULL)
		setenv("XTSYNC_TIME_SCALE", env, 1);
	else
		unsetenv("XTSYNC_TIME_SCALE");
	memset(&tc, 0, sizeof(tc));
	tc.tenant_id = "contoso.example";
	tc.client_id = "c";
	tc.client_secret = "s";
	assert_int_equal(xts_graph_ctx_new(&ev, NULL, &ctx), 0);
	assert_int_equal(xts_graph_new(ctx, &tc, &g), 0);
	while (n < 100000 && xts_throttle_admit(xts_graph_throttle(g), &c, now) == 0)
		n++;
	xts_graph_free(g);
	xts_graph_ctx_free(ctx);
	unsetenv("XTSYNC_TIME_SCALE");
	return n;
}

static void
test_time_scale_env(void **state)
{
	int base, scaled, bad;

	(void)state;
	base = burst_of(NULL);
	scaled = burst_of("10");
	bad = burst_of("lots");
	assert_int_equal(base, 105); /* 3 % of 3,500 RU */
	assert_int_equal(scaled, 1050);
	assert_int_equal(bad, 105);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_same_origin),
		cmocka_unit_test(test_link_resolve),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_guid),
		cmocka_unit_test(test_error_parse),
		cmocka_unit_test(test_page_parse),
		cmocka_unit_test(test_members_parse),
		cmocka_unit_test(test_batch_parse),
		cmocka_unit_test(test_parsers_alloc_failure),
		cmocka_unit_test(test_time_scale_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
