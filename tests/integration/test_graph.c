/* SPDX-License-Identifier: MIT */
/* The Graph client against the Graph emulator over real TLS (its test CA as
 * ca_file), on libuv through uvglue: credentials, delta paging and resync,
 * link and TLS safety, size cap, 429/503 handling (timed from the emulator's
 * request log), the $batch writer and test-connection. Prints TAP. It does
 * not test the engine's decisions. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <uv.h>

#include "buf.h"
#include "err.h"
#include "graph.h"
#include "log.h"
#include "mem.h"
#include "policy_check.h"
#include "uvglue.h"
#include "xts_build.h"

#define SRC "11111111-1111-4111-8111-111111111111"
#define TGT "22222222-2222-4222-8222-222222222222"
#define SAPP "aaaaaaaa-0000-4000-8000-000000000001"
#define TAPP "bbbbbbbb-0000-4000-8000-000000000002"

static uv_loop_t *loop;
static struct xts_evloop *ev;
static struct xts_graph_ctx *ctx;
static char base[64], dir[256], cafile[700], otherca[700];
static char *cert_pem, *key_pem, *cert2_pem, *key2_pem;
static pid_t gs_pid;
static int ntest, nfail;

static void ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	ntest++;
	if (!cond)
		nfail++;
	printf("%sok %d - ", cond ? "" : "not ", ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static size_t
collect(char *p, size_t s, size_t n, void *ud)
{
	xts_buf_append(ud, p, s * n);
	return s * n;
}

/* Blocking admin call (test-side only). Returns the parsed body (new ref) or NULL. */
static json_t *
admin(const char *method, const char *path, const char *body)
{
	CURL *c = curl_easy_init();
	struct xts_buf out = XTS_BUF_INIT, url = XTS_BUF_INIT;
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	json_t *j = NULL;
	long st = 0;

	xts_buf_printf(&url, "%s%s", base, path);
	curl_easy_setopt(c, CURLOPT_URL, url.p);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		j = json_loads(xts_buf_str(&out), 0, NULL);
		if (st >= 400) {
			fprintf(stderr, "# admin %s %s -> %ld %s\n", method, path, st, xts_buf_str(&out));
			json_decref(j);
			j = NULL;
		}
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	xts_buf_free(&out);
	xts_buf_free(&url);
	return j;
}

static void
admin_ok(const char *method, const char *path, const char *body)
{
	json_t *j = admin(method, path, body);

	if (j == NULL)
		fprintf(stderr, "# admin call failed: %s %s\n", method, path);
	json_decref(j);
}

static void
on_watchdog(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Run the loop until *flag or timeout_ms passed. */
static void
spin(int *flag, int timeout_ms)
{
	uv_timer_t t;
	int expired = 0;

	uv_timer_init(loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_watchdog, (uint64_t)timeout_ms, 0);
	while ((flag == NULL || !*flag) && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* Run the loop until *counter >= target or timeout_ms passed. */
static void
spin_count(const int *counter, int target, int timeout_ms)
{
	uv_timer_t t;
	int expired = 0;

	uv_timer_init(loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_watchdog, (uint64_t)timeout_ms, 0);
	while (*counter < target && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

static void
sleep_loop(int ms)
{
	spin(NULL, ms);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	struct xts_buf b = XTS_BUF_INIT;
	char tmp[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	for (;;) {
		n = fread(tmp, 1, sizeof(tmp), f);
		if (n == 0)
			break;
		xts_buf_append(&b, tmp, n);
	}
	fclose(f);
	return xts_buf_steal(&b);
}

static int
sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int
start_graphsim(void)
{
	const char *root = getenv("XTS_SOURCE_ROOT");
	char script[1024], portfile[600], pkidir[600], cmd[4096];
	char *port = NULL;
	int i;

	if (root == NULL)
		root = XTS_SOURCE_ROOT;
	snprintf(dir, sizeof(dir), "/tmp/xts-test-graph-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(script, sizeof(script), "%s/tests/graphsim/graphsim.py", root);
	snprintf(portfile, sizeof(portfile), "%s/port", dir);
	snprintf(pkidir, sizeof(pkidir), "%s/pki", dir);
	snprintf(cafile, sizeof(cafile), "%s/ca.crt", pkidir);
	snprintf(otherca, sizeof(otherca), "%s/other/other-ca.crt", dir);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 %s/tests/graphsim/mkcert.py app --cert %s/app.crt --key %s/app.key && "
		 "/usr/bin/python3 %s/tests/graphsim/mkcert.py app --cert %s/app2.crt --key %s/app2.key && "
		 "/usr/bin/python3 %s/tests/graphsim/mkcert.py other-ca --dir %s/other",
		 root, dir, dir, root, dir, dir, root, dir);
	if (sh(cmd) != 0)
		return -1;
	gs_pid = fork();
	if (gs_pid < 0)
		return -1;
	if (gs_pid == 0) {
		int fd = open("/dev/null", O_WRONLY);

		/* the emulator must not outlive a crashed test */
		prctl(PR_SET_PDEATHSIG, SIGTERM);

		if (fd >= 0) {
			dup2(fd, 1);
			close(fd);
		}
		execl("/usr/bin/python3", "python3", script, "--port", "0", "--port-file", portfile,
		      "--tls", "--pki-dir", pkidir, "--quiet", (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 300 && port == NULL; i++) {
		usleep(100000);
		port = slurp(portfile);
		if (port != NULL && port[0] == '\0') {
			xts_free(port);
			port = NULL;
		}
	}
	if (port == NULL)
		return -1;
	snprintf(base, sizeof(base), "https://127.0.0.1:%ld", strtol(port, NULL, 10));
	xts_free(port);
	snprintf(cmd, sizeof(cmd), "%s/app.crt", dir);
	cert_pem = slurp(cmd);
	snprintf(cmd, sizeof(cmd), "%s/app.key", dir);
	key_pem = slurp(cmd);
	snprintf(cmd, sizeof(cmd), "%s/app2.crt", dir);
	cert2_pem = slurp(cmd);
	snprintf(cmd, sizeof(cmd), "%s/app2.key", dir);
	key2_pem = slurp(cmd);
	return cert_pem && key_pem && cert2_pem && key2_pem ? 0 : -1;
}

static void
conn(struct xts_tenant_conn *tc, const char *name, const char *tid, const char *app, const char *secret)
{
	memset(tc, 0, sizeof(*tc));
	tc->name = name;
	tc->tenant_id = tid;
	tc->client_id = app;
	tc->client_secret = secret;
	tc->authority = base;
	tc->graph_endpoint = base;
	tc->ca_file = cafile;
}

/* ---- auth ---- */

struct one {
	int done, err;
	long status;
};

struct tok {
	int done, err;
	long aadsts;
	char token[16];
};

static void
on_tok(void *arg, int err, const char *token, long aadsts, const char *detail)
{
	struct tok *t = arg;

	t->done = 1;
	t->err = err;
	t->aadsts = aadsts;
	if (token != NULL)
		snprintf(t->token, sizeof(t->token), "%s", token);
}

static struct tok
get_token(const struct xts_tenant_conn *tc)
{
	struct tok t;

	memset(&t, 0, sizeof(t));
	t.err = 12345;
	if (xts_auth_get(xts_graph_ctx_auth(ctx), tc, 1, on_tok, &t, NULL) != 0)
		return t;
	spin(&t.done, 20000);
	return t;
}

static void
test_auth(void)
{
	struct xts_tenant_conn tc;
	struct tok t;

	conn(&tc, "src", SRC, SAPP, "src-secret");
	t = get_token(&tc);
	ok(t.done && t.err == 0 && t.token[0] != '\0', "token with a client secret (err %s)", xts_errname(t.err));

	conn(&tc, "src-cert", SRC, SAPP, NULL);
	tc.cert_pem = cert_pem;
	tc.key_pem = key_pem;
	t = get_token(&tc);
	ok(t.done && t.err == 0 && t.token[0] != '\0', "token with a certificate (PS256 assertion) (err %s)",
	   xts_errname(t.err));

	conn(&tc, "src-bad", SRC, SAPP, "wrong-secret");
	t = get_token(&tc);
	ok(t.err == XTS_EAUTH && t.aadsts == 7000215, "wrong secret -> XTS_EAUTH AADSTS7000215 (got %s %ld)",
	   xts_errname(t.err), t.aadsts);

	conn(&tc, "src-badcert", SRC, SAPP, NULL);
	tc.cert_pem = cert2_pem;
	tc.key_pem = key2_pem;
	t = get_token(&tc);
	ok(t.err == XTS_EAUTH && t.aadsts == 700027, "unregistered certificate -> AADSTS700027 (got %s %ld)",
	   xts_errname(t.err), t.aadsts);

	conn(&tc, "nosuch", "99999999-9999-4999-8999-999999999999", SAPP, "x");
	t = get_token(&tc);
	ok(t.err == XTS_EAUTH && t.aadsts == 90002, "unknown tenant -> AADSTS90002 (got %s %ld)",
	   xts_errname(t.err), t.aadsts);

}

static struct one get_one(struct xts_graph *g, const char *url);

static void
test_tls(void)
{
	struct xts_tenant_conn tc;
	struct xts_graph *g = NULL;
	struct one o;

	/* The token may come from the cache: the Graph GET itself must fail. */
	conn(&tc, "src-notrust", SRC, SAPP, "src-secret");
	tc.ca_file = NULL;
	if (xts_graph_new(ctx, &tc, &g) == 0) {
		o = get_one(g, "/v1.0/users?$top=1");
		ok(o.err == XTS_ETLS, "server certificate from an untrusted CA refused (got %s)", xts_errname(o.err));
		xts_graph_free(g);
	} else {
		ok(0, "graph client without ca_file");
	}
	tc.ca_file = otherca;
	if (xts_graph_new(ctx, &tc, &g) == 0) {
		o = get_one(g, "/v1.0/users?$top=1");
		ok(o.err == XTS_ETLS, "ca_file of another CA does not make the server trusted (got %s)",
		   xts_errname(o.err));
		xts_graph_free(g);
	} else {
		ok(0, "graph client with another ca_file");
	}
}

/* ---- delta ---- */

struct walk {
	int done, err, pages, users, pause_first, paused_once;
	char *delta;
	char dept[64];
	struct xts_pager *p;
};

static void
on_resume_timer(uv_timer_t *t)
{
	struct walk *w = t->data;

	xts_pager_resume(w->p);
	uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static int
on_users(void *arg, json_t *value, int last)
{
	struct walk *w = arg;
	size_t i;
	json_t *u;

	w->pages++;
	w->users += (int)json_array_size(value);
	json_array_foreach(value, i, u) {
		const char *d = json_string_value(json_object_get(u, "department"));

		if (d != NULL)
			snprintf(w->dept, sizeof(w->dept), "%s", d);
	}
	if (w->pause_first && !w->paused_once) {
		uv_timer_t *t = calloc(1, sizeof(*t));

		w->paused_once = 1;
		uv_timer_init(loop, t);
		t->data = w;
		uv_timer_start(t, on_resume_timer, 50, 0);
		return XTS_PAGE_PAUSE;
	}
	return XTS_PAGE_CONTINUE;
}

static void
on_walk_done(void *arg, int err, const char *delta_link, const struct xts_graph_error *ge)
{
	struct walk *w = arg;

	w->done = 1;
	w->err = err;
	free(w->delta);
	w->delta = delta_link ? strdup(delta_link) : NULL;
}

static void
walk_users(struct xts_graph *g, const char *link, struct walk *w)
{
	int ret;

	w->done = w->pages = w->users = 0;
	w->err = 12345;
	ret = xts_delta_users_start(g, "displayName,mail,department", link, on_users, on_walk_done, w, &w->p);
	if (ret != 0) {
		w->err = ret;
		return;
	}
	spin(&w->done, 60000);
}

static void
test_delta(struct xts_graph *src)
{
	struct walk w;
	char *link;
	json_t *j;
	char path[300];
	const char *uid;

	memset(&w, 0, sizeof(w));
	admin_ok("POST", "/_admin/settings", "{\"page_size\": 100}");
	w.pause_first = 1;
	walk_users(src, NULL, &w);
	ok(w.err == 0 && w.pages == 3 && w.users == 250,
	   "initial users/delta: 3 pages, 250 users, paused once and resumed (err %s, %d pages, %d users)",
	   xts_errname(w.err), w.pages, w.users);
	ok(w.delta != NULL && strncmp(w.delta, base, strlen(base)) == 0 && strstr(w.delta, "deltatoken") != NULL,
	   "deltaLink handed back at the end");
	link = w.delta ? strdup(w.delta) : strdup("");

	/* incremental: one changed user */
	j = admin("GET", "/_admin/tenants/" SRC "/users", NULL);
	uid = json_string_value(json_object_get(json_array_get(json_object_get(j, "value"), 7), "id"));
	snprintf(path, sizeof(path), "/_admin/tenants/" SRC "/users/%s", uid ? uid : "x");
	admin_ok("PATCH", path, "{\"department\": \"Incremental Dept\"}");
	json_decref(j);
	w.pause_first = 0;
	walk_users(src, link, &w);
	ok(w.err == 0 && w.users == 1 && strcmp(w.dept, "Incremental Dept") == 0 && w.delta != NULL,
	   "incremental round returns only the changed user (%d users, dept '%s')", w.users, w.dept);

	/* 410: the stored link no longer works */
	admin_ok("POST", "/_admin/tenants/" SRC "/invalidate-delta", "{}");
	walk_users(src, link, &w);
	ok(w.err == XTS_EGONE, "invalidated delta token -> XTS_EGONE for a full resync (got %s)",
	   xts_errname(w.err));
	free(link);

	/* foreign nextLink */
	admin_ok("POST", "/_admin/faults", "{\"route\": \"users/delta\", \"kind\": \"foreign_next\", \"count\": 1}");
	walk_users(src, NULL, &w);
	ok(w.err == XTS_EFOREIGN, "nextLink to another host refused (got %s)", xts_errname(w.err));
	ok(w.pages == 0, "the page carrying the foreign link is not handed over (%d pages)", w.pages);
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* a stored link on another origin is refused before anything is sent */
	walk_users(src, "https://evil.example/v1.0/users/delta?$deltatoken=x", &w);
	ok(w.err == XTS_EFOREIGN, "stored deltaLink on another host refused (got %s)", xts_errname(w.err));
	free(w.delta);
}

/* ---- single requests, faults ---- */

static void
on_one(void *arg, const struct xts_graph_result *r)
{
	struct one *o = arg;

	o->done = 1;
	o->err = r->err;
	o->status = r->status;
}

static struct one
get_one(struct xts_graph *g, const char *url)
{
	struct one o;

	memset(&o, 0, sizeof(o));
	o.err = 12345;
	if (xts_graph_request(g, "GET", url, NULL, 0, on_one, &o, NULL) != 0)
		return o;
	spin(&o.done, 60000);
	return o;
}

/* Times and statuses of logged requests whose path ends with suffix. */
static int
log_times(const char *suffix, double *times, long *status, int max)
{
	json_t *j = admin("GET", "/_admin/requests", NULL), *e;
	size_t i, sl = strlen(suffix);
	int n = 0;

	json_array_foreach(json_object_get(j, "value"), i, e) {
		const char *p = json_string_value(json_object_get(e, "path"));
		size_t pl = p ? strlen(p) : 0;

		if (p == NULL || pl < sl || strcmp(p + pl - sl, suffix) != 0 || n >= max)
			continue;
		times[n] = json_real_value(json_object_get(e, "time"));
		status[n] = (long)json_integer_value(json_object_get(e, "status"));
		n++;
	}
	json_decref(j);
	return n;
}

static char *
some_user(int idx)
{
	json_t *j = admin("GET", "/_admin/tenants/" TGT "/users", NULL);
	const char *id = json_string_value(json_object_get(json_array_get(json_object_get(j, "value"), (size_t)idx), "id"));
	char *r = id ? strdup(id) : strdup("none");

	json_decref(j);
	return r;
}

static void
test_faults(struct xts_graph *tgt)
{
	char url[200], body[400], *uid = some_user(0), *uid2 = some_user(1);
	double t[8];
	long st[8];
	int n;
	struct one o;

	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	admin_ok("DELETE", "/_admin/requests", NULL);
	snprintf(body, sizeof(body),
		 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"status\", \"status\": 429, \"retry_after\": 2, \"count\": 1}",
		 uid);
	admin_ok("POST", "/_admin/faults", body);
	o = get_one(tgt, url);
	n = log_times(url, t, st, 8);
	ok(o.err == 0 && o.status == 200, "429 then success (err %s, status %ld)", xts_errname(o.err), o.status);
	ok(n == 2 && st[0] == 429 && st[1] == 200 && t[1] - t[0] >= 1.95,
	   "Retry-After 2 honoured: retry %.2f s after the 429 (%d requests)", n == 2 ? t[1] - t[0] : -1.0, n);
	admin_ok("DELETE", "/_admin/faults", NULL);

	snprintf(url, sizeof(url), "/v1.0/users/%s", uid2);
	snprintf(body, sizeof(body),
		 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"status\", \"status\": 503, \"retry_after\": 0, \"count\": 2}",
		 uid2);
	admin_ok("POST", "/_admin/faults", body);
	o = get_one(tgt, url);
	n = log_times(url, t, st, 8);
	ok(o.err == 0 && n == 3 && st[0] == 503 && st[1] == 503 && st[2] == 200,
	   "503 retried with back-off until success (%d requests, err %s)", n, xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);

	snprintf(body, sizeof(body),
		 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"oversize\", \"count\": 1}", uid2);
	admin_ok("POST", "/_admin/faults", body);
	o = get_one(tgt, url);
	ok(o.err == XTS_ETOOBIG, "oversized response body refused (got %s)", xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);

	o = get_one(tgt, "/v1.0/users/00000000-0000-4000-8000-00000000dead");
	ok(o.err == XTS_ENOENT && o.status == 404, "unknown user -> XTS_ENOENT (got %s %ld)", xts_errname(o.err),
	   o.status);
	free(uid);
	free(uid2);
}

struct many {
	int done, failed;
};

static void
on_many(void *arg, const struct xts_graph_result *r)
{
	struct many *m = arg;

	m->done++;
	if (r->err != 0)
		m->failed++;
}

struct rawres {
	int done, rc;
	long status;
};

static void
on_raw(void *arg, void *easy, int rc)
{
	struct rawres *r = arg;

	r->done = 1;
	r->rc = rc;
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
}

static size_t
discard(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

/* GET base + path with a caller-built easy handle (no CURLOPT_TIMEOUT) on
 * c's engine, waiting at most spin_ms for the callback (then cancelled). */
static struct rawres
raw_get(struct xts_graph_ctx *c, const char *path, int spin_ms)
{
	struct rawres rr = { 0, -1, 0 };
	struct xts_http_xfer *x = NULL;
	CURL *e = curl_easy_init();
	char u[300];

	snprintf(u, sizeof(u), "%s%s", base, path);
	curl_easy_setopt(e, CURLOPT_URL, u);
	curl_easy_setopt(e, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	if (xts_http_submit_easy(xts_graph_ctx_http(c), e, on_raw, &rr, &x) != 0) {
		curl_easy_cleanup(e);
		return rr;
	}
	spin(&rr.done, spin_ms);
	if (!rr.done)
		xts_http_cancel(x); /* its callback must not write into a dead frame */
	return rr;
}

static void
test_engine(void)
{
	struct xts_graph_ctx *c2 = NULL;
	struct xts_tenant_conn tc;
	struct xts_graph *g = NULL;
	struct xts_http_stats st;
	struct xts_graph_opts o2;
	struct many m = { 0, 0 };
	char url[200], *uid = some_user(1);
	int i;
	struct one o;

	conn(&tc, "target-cap", TGT, TAPP, "tgt-secret");
	tc.max_in_flight = 2;
	memset(&o2, 0, sizeof(o2));
	o2.request_timeout_ms = 1500;
	o2.backoff_min_ms = 200;
	if (xts_graph_ctx_new(ev, &o2, &c2) != 0 || xts_graph_new(c2, &tc, &g) != 0) {
		ok(0, "engine test setup");
		return;
	}
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	for (i = 0; i < 12; i++)
		xts_graph_request(g, "GET", url, NULL, 0, on_many, &m, NULL);
	spin_count(&m.done, 12, 30000);
	xts_http_get_stats(xts_graph_ctx_http(c2), &st);
	ok(m.done == 12 && m.failed == 0 && st.peak_in_flight == 2,
	   "per-host cap: 12 concurrent requests, at most 2 in flight (peak %d, %d done)", st.peak_in_flight, m.done);
	for (i = 0; i < 20; i++)
		get_one(g, url);
	xts_http_get_stats(xts_graph_ctx_http(c2), &st);
	ok(st.requests >= 33 && st.connects <= 3,
	   "keep-alive: %llu requests over %llu connections", st.requests, st.connects);

	snprintf(url, sizeof(url), "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"truncate\", \"count\": 1}", uid);
	admin_ok("POST", "/_admin/faults", url);
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	o = get_one(g, url);
	ok(o.err == 0, "truncated body is a transport error, retried (got %s)", xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);
	snprintf(url, sizeof(url), "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"reset\", \"count\": 1}", uid);
	admin_ok("POST", "/_admin/faults", url);
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	o = get_one(g, url);
	ok(o.err == 0, "connection reset retried (got %s)", xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);
	snprintf(url, sizeof(url), "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"malformed\", \"count\": 1}", uid);
	admin_ok("POST", "/_admin/faults", url);
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	o = get_one(g, url);
	ok(o.err == XTS_EPARSE, "malformed JSON in a 200 -> XTS_EPARSE (got %s)", xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);
	{
		struct rawres rr = raw_get(c2, "/_admin/settings", 10000);

		ok(rr.done && rr.rc == 0 && rr.status == 200, "caller-built easy handle runs on the engine (rc %d, HTTP %ld)",
		   rr.rc, rr.status);
	}
	{
		/* A transfer libcurl will never finish on its own (no CURLOPT_TIMEOUT,
		 * the server silent for 2.5 s) stands for one libcurl lost after an
		 * allocation of its own failed: the stall watchdog must fail it at its
		 * deadline (1 s here, ticking every 100 ms), not leave it hanging. */
		struct rawres rr;
		unsigned long long stalls0;
		long long t0 = xts_now_ms(), el;

		xts_http_get_stats(xts_graph_ctx_http(c2), &st);
		stalls0 = st.stalls;
		admin_ok("POST", "/_admin/faults",
			 "{\"route\": \"/v1.0/xts-watchdog$\", \"kind\": \"stall_before\", \"seconds\": 2.5, \"count\": 1}");
		xts_http_set_watchdog(xts_graph_ctx_http(c2), 100, 0, 1000);
		rr = raw_get(c2, "/v1.0/xts-watchdog", 5000);
		el = xts_now_ms() - t0;
		xts_http_get_stats(xts_graph_ctx_http(c2), &st);
		ok(rr.done && rr.rc == CURLE_OPERATION_TIMEDOUT && st.stalls == stalls0 + 1 && el >= 1000,
		   "stall watchdog fails a transfer libcurl would never finish at its deadline (rc %d, %lld ms, "
		   "stalls %llu)", rr.rc, el, st.stalls - stalls0);
		xts_http_set_watchdog(xts_graph_ctx_http(c2), 1000, 5000, XTS_HTTP_EASY_DEADLINE_MS);
		admin_ok("DELETE", "/_admin/faults", NULL);
		/* let the stalled exchange end before later tests read the request log */
		if (xts_now_ms() - t0 < 3000)
			sleep_loop(3000 - (xts_now_ms() - t0));
	}
	/* a server that stalls before answering: timeout, then a retry */
	snprintf(url, sizeof(url), "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"stall_before\", \"seconds\": 4, \"count\": 1}", uid);
	admin_ok("POST", "/_admin/faults", url);
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	{
		long long t0 = xts_now_ms();

		o = get_one(g, url);
		xts_http_get_stats(xts_graph_ctx_http(c2), &st);
		ok(o.err == 0 && xts_now_ms() - t0 >= 1400 && xts_now_ms() - t0 < 4000 && st.failures >= 1,
		   "stalled response times out and is retried (err %s, %lld ms)", xts_errname(o.err),
		   xts_now_ms() - t0);
	}
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* the token service failing for a moment is retried, not a credential error */
	xts_auth_invalidate(xts_graph_ctx_auth(c2), xts_graph_conn(g));
	admin_ok("POST", "/_admin/faults", "{\"route\": \"oauth2/v2.0/token$\", \"kind\": \"status\", \"status\": 503, \"retry_after\": 0, \"count\": 1}");
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	o = get_one(g, url);
	ok(o.err == 0, "token endpoint 503 (AADSTS90006) retried, not taken as bad credentials (got %s)",
	   xts_errname(o.err));
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* A POST without a body says Content-Type: application/json (restore:
	 * "Content-type: application/json", "Do not supply a request body",
	 * directory-deleteditems-restore.md); libcurl's default for an empty
	 * POST is application/x-www-form-urlencoded. */
	admin_ok("DELETE", "/_admin/requests", NULL);
	memset(&o, 0, sizeof(o));
	if (xts_graph_request(g, "POST", "/v1.0/directory/deletedItems/0c0a0b0e-0000-4000-8000-00000000dead/restore",
			      NULL, 0, on_one, &o, NULL) == 0)
		spin(&o.done, 30000);
	{
		json_t *j = admin("GET", "/_admin/requests", NULL), *e;
		const char *ct = NULL;
		size_t k;

		json_array_foreach(json_object_get(j, "value"), k, e)
			if (strstr(json_string_value(json_object_get(e, "path")), "/restore") != NULL)
				ct = json_string_value(json_object_get(e, "content_type"));
		ok(o.done && o.status == 404 && ct != NULL && strcmp(ct, "application/json") == 0,
		   "POST without a body (restore) sent as application/json (status %ld, Content-Type %s)", o.status,
		   ct != NULL ? ct : "none");
		json_decref(j);
	}

	/* A token endpoint's 429 with Retry-After: 2 is waited out by every
	 * request waiting for that token, and nobody asks again before
	 * (MSAL, client and server throttling: "Microsoft Entra ID will reply
	 * with 429 Too Many Requests, with a Retry-After: 60 header"). */
	xts_auth_invalidate(xts_graph_ctx_auth(c2), xts_graph_conn(g));
	admin_ok("DELETE", "/_admin/requests", NULL);
	admin_ok("POST", "/_admin/faults", "{\"route\": \"oauth2/v2.0/token$\", \"kind\": \"status\", \"status\": 429, \"retry_after\": 2, \"count\": 1}");
	{
		struct one o3[3];
		long long t0 = xts_now_ms(), took;
		int tokens = 0, done = 0, good = 0;
		json_t *j, *e;
		size_t k;

		memset(o3, 0, sizeof(o3));
		for (i = 0; i < 3; i++)
			if (xts_graph_request(g, "GET", url, NULL, 0, on_one, &o3[i], NULL) != 0)
				o3[i].done = 1;
		while (done < 3 && xts_now_ms() - t0 < 30000) {
			sleep_loop(50);
			for (done = good = i = 0; i < 3; i++) {
				done += o3[i].done;
				good += o3[i].done && o3[i].err == 0;
			}
		}
		took = xts_now_ms() - t0;
		j = admin("GET", "/_admin/requests", NULL);
		json_array_foreach(json_object_get(j, "value"), k, e) {
			const char *r = json_string_value(json_object_get(e, "route"));

			if (r != NULL && strcmp(r, "token") == 0)
				tokens++;
		}
		json_decref(j);
		ok(good == 3 && tokens == 2 && took >= 1900,
		   "token endpoint 429 with Retry-After: 2 waited out: 3 requests succeed after %lld ms, "
		   "%d token requests (one refused, one asked after the wait)", took, tokens);
	}
	admin_ok("DELETE", "/_admin/faults", NULL);
	xts_graph_free(g);
	xts_graph_ctx_free(c2);
	free(uid);
}

#define SEL_PROPS "id,displayName,givenName,surname,mail,jobTitle,department,companyName,officeLocation," \
	"city,state,country,postalCode,streetAddress,employeeId,mobilePhone,usageLocation,preferredLanguage," \
	"mailNickname,userType,accountEnabled,creationType"

struct sel {
	int done, err, extra_keys, users;
};

/* A $select answer: count properties that were not selected (Graph's
 * default set has userPrincipalName and businessPhones, not selected here). */
static void
on_sel(void *arg, const struct xts_graph_result *r)
{
	struct sel *o = arg;
	json_t *u, *v;
	const char *k;
	size_t i;

	o->done = 1;
	o->err = r->err;
	json_array_foreach(json_object_get(r->body, "value"), i, u) {
		o->users++;
		json_object_foreach(u, k, v) {
			char key[80];

			snprintf(key, sizeof(key), ",%s,", k);
			if (k[0] != '@' && strstr("," SEL_PROPS ",", key) == NULL)
				o->extra_keys++;
		}
	}
}

/* libcurl 7.88 sends a request without its query string when its copy of the
 * query fails to allocate (lib/http.c debug_cb). Fail, in turn, the 1st..6th
 * allocation of exactly the query's length + 1 during one GET with $select:
 * every result is an error or an answer to the query as sent (only the
 * selected properties), never Graph's default properties taken for the
 * selection. */
static void
test_query_oom(struct xts_graph *g)
{
	const char *url = "/v1.0/users?$select=" SEL_PROPS;
	size_t qlen = strlen(strchr(url, '?') + 1);
	struct xts_http_stats st;
	unsigned long long lost0;
	unsigned long nth;
	int ok_n = 0, err_n = 0, bad = 0;

	xts_http_get_stats(xts_graph_ctx_http(ctx), &st);
	lost0 = st.query_lost;
	for (nth = 1; nth <= 6; nth++) {
		struct sel o;

		memset(&o, 0, sizeof(o));
		xts_mem_fail_size(qlen + 1, nth);
		if (xts_graph_request(g, "GET", url, NULL, 0, on_sel, &o, NULL) == 0)
			spin(&o.done, 30000);
		xts_mem_fail_size(0, 0);
		if (o.done && o.err == 0) {
			ok_n++;
			if (o.extra_keys > 0 || o.users == 0)
				bad++;
		} else {
			err_n++;
		}
	}
	xts_http_get_stats(xts_graph_ctx_http(ctx), &st);
	ok(bad == 0 && ok_n > 0,
	   "GET with $select, the 1st..6th allocation of the query's size failing: %d answered with only the "
	   "selected properties, %d failed, %d answered with others (libcurl dropped the query %llu times: "
	   "caught and retried)", ok_n, err_n, bad, st.query_lost - lost0);
}

static void
test_token_refresh(struct xts_graph *tgt)
{
	char url[200], *uid = some_user(2);
	json_t *j, *e;
	size_t i;
	int tokens = 0, unauth = 0;
	struct one a, b;

	admin_ok("POST", "/_admin/settings", "{\"token_lifetime_s\": 3}");
	xts_auth_invalidate(xts_graph_ctx_auth(ctx), xts_graph_conn(tgt));
	admin_ok("DELETE", "/_admin/requests", NULL);
	snprintf(url, sizeof(url), "/v1.0/users/%s", uid);
	a = get_one(tgt, url);
	sleep_loop(3300);
	b = get_one(tgt, url);
	j = admin("GET", "/_admin/requests", NULL);
	json_array_foreach(json_object_get(j, "value"), i, e) {
		const char *r = json_string_value(json_object_get(e, "route"));

		if (r != NULL && strcmp(r, "token") == 0)
			tokens++;
		if (json_integer_value(json_object_get(e, "status")) == 401)
			unauth++;
	}
	json_decref(j);
	ok(a.err == 0 && b.err == 0 && tokens == 2 && unauth == 0,
	   "short-lived token refreshed before expiry mid-cycle (%d token requests, %d 401s)", tokens, unauth);
	admin_ok("POST", "/_admin/settings", "{\"token_lifetime_s\": 3599}");

	/* a 401 from Graph: one new token, one retry */
	{
		char body[400];

		sleep_loop(1100); /* the cached token must be older than the 1 s guard */
		admin_ok("DELETE", "/_admin/requests", NULL);
		snprintf(body, sizeof(body),
			 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"status\", \"status\": 401, \"count\": 1}",
			 uid);
		admin_ok("POST", "/_admin/faults", body);
		a = get_one(tgt, url);
		admin_ok("DELETE", "/_admin/faults", NULL);
		tokens = unauth = 0;
		j = admin("GET", "/_admin/requests", NULL);
		json_array_foreach(json_object_get(j, "value"), i, e) {
			const char *r = json_string_value(json_object_get(e, "route"));

			if (r != NULL && strcmp(r, "token") == 0)
				tokens++;
			if (json_integer_value(json_object_get(e, "status")) == 401)
				unauth++;
		}
		json_decref(j);
		ok(a.err == 0 && a.status == 200 && tokens == 1 && unauth == 1,
		   "401 from Graph: token refreshed once and the request retried (%d token requests, %d 401s, err %s)",
		   tokens, unauth, xts_errname(a.err));
	}
	free(uid);
}

/* ---- batch ---- */

struct opres {
	int done, err;
	long status;
	int step;
	char user_id[64];
};

static int ops_done;

static void
on_op(void *arg, const struct xts_batch_result *r)
{
	struct opres *o = arg;

	o->done = 1;
	o->err = r->err;
	o->status = r->status;
	o->step = r->step;
	if (r->user_id != NULL)
		snprintf(o->user_id, sizeof(o->user_id), "%s", r->user_id);
	ops_done++;
}

/* Clear the request log, then make the next `count` PATCHes of user answer
 * 429 with retry_after (a JSON value: seconds, or "none" for no header). */
static void
fault_429(const char *user, const char *retry_after, int count)
{
	char body[400];

	admin_ok("DELETE", "/_admin/requests", NULL);
	snprintf(body, sizeof(body),
		 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"status\", "
		 "\"status\": 429, \"retry_after\": %s, \"count\": %d}", user, retry_after, count);
	admin_ok("POST", "/_admin/faults", body);
}

static void
test_batch(struct xts_graph *tgt)
{
	struct xts_batch *b = NULL;
	struct opres r[8];
	struct xts_batch_op *op2 = NULL;
	char *u1 = some_user(3), *u2 = some_user(4), *u3 = some_user(5), *u4 = some_user(6);
	char url[200], path[300];
	json_t *patch = json_pack("{s:s}", "department", "Batched"), *bad = json_pack("{s:i}", "noSuchProperty", 1);
	json_t *inv, *j, *u;
	double t[8];
	long st[8];
	int n, goal;

	memset(r, 0, sizeof(r));
	ops_done = 0;
	ok(xts_batch_new(tgt, &b) == 0, "batch writer created");
	snprintf(url, sizeof(url), "/users/%s", u1);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[0], NULL);
	xts_batch_add(b, "PATCH", "/users/00000000-0000-4000-8000-00000000dead", patch, NULL, on_op, &r[1], &op2);
	snprintf(url, sizeof(url), "/users/%s", u2);
	xts_batch_add(b, "PATCH", url, bad, NULL, on_op, &r[2], NULL);
	snprintf(url, sizeof(url), "/users/%s", u3);
	xts_batch_add(b, "PATCH", url, patch, op2, on_op, &r[3], NULL);
	goal = 4;
	spin_count(&ops_done, goal, 30000);
	ok(r[0].done && r[0].err == 0 && r[0].status == 204, "batch: PATCH ok -> 204 (got %ld)", r[0].status);
	ok(r[1].done && r[1].err == XTS_ENOENT && r[1].status == 404, "batch: PATCH unknown user -> 404 for that op only (got %s %ld)",
	   xts_errname(r[1].err), r[1].status);
	ok(r[2].done && r[2].err == XTS_EGRAPH && r[2].status == 400, "batch: unknown property -> 400 handed back (got %s %ld)",
	   xts_errname(r[2].err), r[2].status);
	ok(r[3].done && r[3].err != 0 && r[3].status == 424, "batch: op depending on the failed one -> 424 (got %ld)",
	   r[3].status);
	snprintf(path, sizeof(path), "/_admin/tenants/" TGT "/users?id=%s", u1);
	j = admin("GET", path, NULL);
	u = json_array_get(json_object_get(j, "value"), 0);
	ok(json_string_value(json_object_get(u, "department")) &&
	   strcmp(json_string_value(json_object_get(u, "department")), "Batched") == 0,
	   "batch: the successful PATCH is visible in the target");
	json_decref(j);

	/* a sub-request answered 429 is requeued after its Retry-After */
	fault_429(u4, "1", 1);
	snprintf(url, sizeof(url), "/users/%s", u4);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[4], NULL);
	snprintf(url, sizeof(url), "/users/%s", u3);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[6], NULL);
	spin(&r[4].done, 30000);
	snprintf(url, sizeof(url), "/v1.0/users/%s", u4);
	n = log_times(url, t, st, 8);
	ok(r[4].err == 0 && n == 2 && st[0] == 429 && st[1] == 204 && t[1] - t[0] >= 0.95,
	   "batch: sub-request 429 requeued after Retry-After (%d sub-requests, %.2f s apart)", n,
	   n == 2 ? t[1] - t[0] : -1.0);
	/* the envelope of that first try was 424 (concepts/throttling.md); the
	 * other request in it succeeded there and is not sent again */
	n = log_times("/v1.0/$batch", t, st, 8);
	ok(n >= 1 && st[0] == 424, "batch: the envelope with a throttled sub-request is 424 (got %ld)",
	   n >= 1 ? st[0] : 0L);
	snprintf(url, sizeof(url), "/v1.0/users/%s", u3);
	n = log_times(url, t, st, 8);
	ok(r[6].done && r[6].err == 0 && r[6].status == 204 && n == 1,
	   "batch: a sub-request that succeeded inside a 424 envelope is done, not retried (err %s, %d sent)",
	   xts_errname(r[6].err), n);
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* a sub-request 429 without Retry-After: exponential backoff from
	 * backoff_min (half of it jitter), not a fixed wait (5 s before)
	 * (concepts/throttling.md: "If no Retry-After header is provided by the
	 * response, we recommend implementing an exponential backoff") */
	fault_429(u2, "\"none\"", 2);
	snprintf(url, sizeof(url), "/users/%s", u2);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[7], NULL);
	spin(&r[7].done, 30000);
	snprintf(url, sizeof(url), "/v1.0/users/%s", u2);
	n = log_times(url, t, st, 8);
	ok(r[7].err == 0 && n == 3 && st[0] == 429 && st[1] == 429 && st[2] == 204 && t[1] - t[0] >= 0.1 &&
	   t[1] - t[0] < 3.0 && t[2] - t[1] < 3.5 && t[2] - t[1] + 0.1 >= t[1] - t[0],
	   "batch: 429 without Retry-After backs off exponentially (%d sent, %.2f s then %.2f s)", n,
	   n == 3 ? t[1] - t[0] : -1.0, n == 3 ? t[2] - t[1] : -1.0);
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* 429 again and again, with a fractional Retry-After: retried past
	 * max_attempts (5 here) until it succeeds ("Continue to use the
	 * recommended Retry-After delay and retry the request until it
	 * succeeds", throttling.md), each after its 0.3 s */
	fault_429(u2, "0.3", 7);
	memset(&r[7], 0, sizeof(r[7]));
	snprintf(url, sizeof(url), "/users/%s", u2);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[7], NULL);
	spin(&r[7].done, 60000);
	snprintf(url, sizeof(url), "/v1.0/users/%s", u2);
	n = log_times(url, t, st, 8);
	{
		double gap = 9.0;
		int k;

		for (k = 1; k < n; k++)
			if (t[k] - t[k - 1] < gap)
				gap = t[k] - t[k - 1];
		ok(r[7].err == 0 && n == 8 && st[6] == 429 && st[7] == 204 && gap >= 0.29,
		   "batch: seven 429s in a row (more than max_attempts) retried until 204, each after "
		   "Retry-After 0.3 (err %s, %d sent, shortest gap %.2f s)", xts_errname(r[7].err), n, gap);
	}
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* a server that answers 424 (Failed Dependency) to an op that depends
	 * on nothing, again and again: requeued a bounded number of times, then
	 * handed back, instead of looping for ever */
	admin_ok("DELETE", "/_admin/requests", NULL);
	snprintf(path, sizeof(path),
		 "{\"tenant\": \"" TGT "\", \"route\": \"/v1.0/users/%s$\", \"kind\": \"status\", "
		 "\"status\": 424}", u1);
	admin_ok("POST", "/_admin/faults", path);
	memset(&r[0], 0, sizeof(r[0]));
	snprintf(url, sizeof(url), "/users/%s", u1);
	xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[0], NULL);
	spin(&r[0].done, 60000);
	snprintf(url, sizeof(url), "/v1.0/users/%s", u1);
	n = log_times(url, t, st, 8);
	ok(r[0].done && r[0].err == XTS_EGRAPH && r[0].status == 424 && n == 8,
	   "batch: 424 without a dependency is retried a bounded number of times, then handed back "
	   "(done %d, %s %ld, %d+ sent)", r[0].done, xts_errname(r[0].err), r[0].status, n);
	admin_ok("DELETE", "/_admin/faults", NULL);

	/* create = invitation, then PATCH of the new user */
	inv = json_pack("{s:s, s:s, s:s, s:b}", "invitedUserEmailAddress", "zoe.mueller@src.example",
			"inviteRedirectUrl", "https://myapps.microsoft.com", "invitedUserType", "Member",
			"sendInvitationMessage", 0);
	ok(xts_batch_create_user(b, inv, patch, on_op, &r[5]) == 0, "create_user queued");
	spin(&r[5].done, 30000);
	snprintf(path, sizeof(path), "/_admin/tenants/" TGT "/users?id=%s", r[5].user_id);
	j = admin("GET", path, NULL);
	u = json_array_get(json_object_get(j, "value"), 0);
	ok(r[5].err == 0 && r[5].step == 2 && r[5].user_id[0] &&
	   json_string_value(json_object_get(u, "userType")) &&
	   strcmp(json_string_value(json_object_get(u, "userType")), "Member") == 0 &&
	   json_string_value(json_object_get(u, "department")) &&
	   strcmp(json_string_value(json_object_get(u, "department")), "Batched") == 0,
	   "create_user: invitation (Member) then PATCH of the new user (err %s, step %d, id %s)",
	   xts_errname(r[5].err), r[5].step, r[5].user_id);
	json_decref(j);
	json_decref(inv);
	json_decref(patch);
	json_decref(bad);
	xts_batch_free(b);
	free(u1);
	free(u2);
	free(u3);
	free(u4);
}

/* ---- groups ---- */

struct mem {
	int done, err, added, removed;
	char *delta;
};

static int
on_members(void *arg, const struct xts_member_event *e, size_t n, int last)
{
	struct mem *m = arg;
	size_t i;

	for (i = 0; i < n; i++) {
		if (e[i].removed)
			m->removed++;
		else
			m->added++;
	}
	return 0;
}

static void
on_mem_done(void *arg, int err, const char *link, const struct xts_graph_error *ge)
{
	struct mem *m = arg;

	m->done = 1;
	m->err = err;
	free(m->delta);
	m->delta = link ? strdup(link) : NULL;
}

static void
test_groups(struct xts_graph *src)
{
	json_t *g = admin("POST", "/_admin/tenants/" SRC "/groups", "{\"displayName\": \"Sync scope\"}");
	json_t *users = admin("GET", "/_admin/tenants/" SRC "/users", NULL);
	const char *gid = json_string_value(json_object_get(g, "id"));
	char path[300], body[200], *link;
	const char *ids[1];
	struct mem m;
	int i;

	for (i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "/_admin/tenants/" SRC "/groups/%s/members", gid ? gid : "x");
		snprintf(body, sizeof(body), "{\"id\": \"%s\"}",
			 json_string_value(json_object_get(json_array_get(json_object_get(users, "value"), (size_t)i), "id")));
		admin_ok("POST", path, body);
	}
	memset(&m, 0, sizeof(m));
	ids[0] = gid ? gid : "x";
	m.err = 12345;
	if (xts_delta_groups_start(src, ids, 1, NULL, on_members, on_mem_done, &m, NULL) == 0)
		spin(&m.done, 30000);
	ok(m.err == 0 && m.added == 3 && m.removed == 0 && m.delta != NULL,
	   "groups/delta: 3 members added (err %s, %d added)", xts_errname(m.err), m.added);
	snprintf(path, sizeof(path), "/_admin/tenants/" SRC "/groups/%s/members/%s", gid ? gid : "x",
		 json_string_value(json_object_get(json_array_get(json_object_get(users, "value"), 0), "id")));
	admin_ok("DELETE", path, NULL);
	link = m.delta ? strdup(m.delta) : NULL;
	m.done = m.added = m.removed = 0;
	m.err = 12345;
	if (link != NULL && xts_delta_groups_start(src, ids, 1, link, on_members, on_mem_done, &m, NULL) == 0)
		spin(&m.done, 30000);
	ok(m.err == 0 && m.removed == 1, "groups/delta incremental: 1 member removed (err %s, %d removed, %d added)",
	   xts_errname(m.err), m.removed, m.added);
	free(link);
	free(m.delta);
	json_decref(g);
	json_decref(users);
}

/* ---- test-connection ---- */

static void partners(int inbound, int sync, int outbound);

struct pcres {
	int done, err, n;
	enum xts_policy_finding what[8];
	char text[2048];
};

static void
on_pc(void *arg, const struct xts_policy_result *r)
{
	struct pcres *p = arg;
	struct xts_buf b = XTS_BUF_INIT;
	int i;

	p->done = 1;
	p->err = r->err;
	p->n = r->n;
	for (i = 0; i < r->n && i < 8; i++)
		p->what[i] = r->f[i].what;
	xts_policy_result_format(r, &b);
	snprintf(p->text, sizeof(p->text), "%s", xts_buf_str(&b));
	xts_buf_free(&b);
}

static struct pcres
check(struct xts_graph *s, struct xts_graph *t)
{
	struct pcres p;
	struct xts_policy_check *pc = NULL;

	memset(&p, 0, sizeof(p));
	p.err = 12345;
	if (xts_policy_check_start(s, t, NULL, NULL, NULL, on_pc, &p, &pc) == 0)
		spin(&p.done, 30000);
	xts_policy_check_free(pc);
	return p;
}

static void
partners(int inbound, int sync, int outbound)
{
	char body[200];

	snprintf(body, sizeof(body), "{\"inboundAllowed\": %s, \"outboundAllowed\": false, \"isSyncAllowed\": %s}",
		 inbound ? "true" : "false", sync ? "true" : "false");
	admin_ok("PUT", "/_admin/tenants/" TGT "/partners/" SRC, body);
	snprintf(body, sizeof(body), "{\"inboundAllowed\": false, \"outboundAllowed\": %s, \"isSyncAllowed\": false}",
		 outbound ? "true" : "false");
	admin_ok("PUT", "/_admin/tenants/" SRC "/partners/" TGT, body);
}

static void
test_policy(struct xts_graph *src, struct xts_graph *tgt)
{
	struct pcres p;
	struct xts_tenant_conn tc;
	struct xts_graph *bad = NULL;

	partners(1, 1, 1);
	p = check(src, tgt);
	ok(p.done && p.err == 0 && p.n == 0 && strncmp(p.text, "OK:", 3) == 0, "test-connection passes (%.*s)",
	   (int)strcspn(p.text, "\n"), p.text);

	partners(0, 1, 1);
	p = check(src, tgt);
	ok(p.err == XTS_EPOLICY && p.n == 1 && p.what[0] == XTS_PC_TARGET_INBOUND_DENIED &&
	   strstr(p.text, "Error code: AzureDirectoryB2BManagementPolicyCheckFailure") &&
	   strstr(p.text, "Details: Policy permitting auto-redemption of invitations not configured.") &&
	   strstr(p.text, "TARGET tenant"),
	   "target without inbound auto-redemption -> Microsoft's error and which tenant to fix");

	partners(1, 0, 1);
	p = check(src, tgt);
	ok(p.err == XTS_EPOLICY && p.n == 1 && p.what[0] == XTS_PC_TARGET_SYNC_DENIED,
	   "target not allowing user sync inbound -> finding (%d findings)", p.n);

	partners(1, 1, 0);
	p = check(src, tgt);
	ok(p.err == XTS_EPOLICY && p.n == 1 && p.what[0] == XTS_PC_SOURCE_OUTBOUND_DENIED &&
	   strstr(p.text, "SOURCE tenant"),
	   "source without outbound auto-redemption -> finding naming the source tenant");

	partners(1, 1, 1);
	{
		struct xts_tenant_conn ds, dt;
		struct xts_graph *gs = NULL, *gt = NULL;

		conn(&ds, "src-domain", "src.example", SAPP, "src-secret");
		conn(&dt, "tgt-domain", "tgt.example", TAPP, "tgt-secret");
		if (xts_graph_new(ctx, &ds, &gs) == 0 && xts_graph_new(ctx, &dt, &gt) == 0) {
			p = check(gs, gt);
			ok(p.err == 0 && p.n == 0 && strstr(p.text, TGT) && strstr(p.text, SRC),
			   "tenants configured by domain: GUIDs taken from the tokens' tid (%.*s)",
			   (int)strcspn(p.text, "\n"), p.text);
			/* tokens that are not JWTs ("must be treated as opaque
			 * strings", access-tokens.md): GET /organization */
			admin_ok("POST", "/_admin/settings", "{\"opaque_tokens\": true}");
			xts_auth_invalidate(xts_graph_ctx_auth(ctx), &ds);
			xts_auth_invalidate(xts_graph_ctx_auth(ctx), &dt);
			p = check(gs, gt);
			admin_ok("POST", "/_admin/settings", "{\"opaque_tokens\": false}");
			xts_auth_invalidate(xts_graph_ctx_auth(ctx), &ds);
			xts_auth_invalidate(xts_graph_ctx_auth(ctx), &dt);
			ok(p.err == 0 && p.n == 0 && strstr(p.text, TGT) && strstr(p.text, SRC),
			   "tenants configured by domain, opaque tokens: GUIDs from GET /organization (%.*s)",
			   (int)strcspn(p.text, "\n"), p.text);
		} else {
			ok(0, "graph clients by domain");
		}
		xts_graph_free(gs);
		xts_graph_free(gt);
	}
	/* the token endpoint failing once is retried, not reported */
	xts_auth_invalidate(xts_graph_ctx_auth(ctx), xts_graph_conn(tgt));
	admin_ok("POST", "/_admin/faults", "{\"route\": \"oauth2/v2.0/token$\", \"kind\": \"status\", \"status\": 503, \"retry_after\": 1, \"count\": 1}");
	p = check(src, tgt);
	admin_ok("DELETE", "/_admin/faults", NULL);
	ok(p.done && p.err == 0 && p.n == 0,
	   "test-connection: a token endpoint 503 is retried, not reported (%.*s)", (int)strcspn(p.text, "\n"),
	   p.text);
	conn(&tc, "tgt-bad", TGT, TAPP, "not-the-secret");
	if (xts_graph_new(ctx, &tc, &bad) == 0) {
		p = check(src, bad);
		ok(p.err == XTS_EAUTH && p.n == 1 && p.what[0] == XTS_PC_TARGET_AUTH &&
		   strstr(p.text, "Error code: AADSTS7000215"),
		   "test-connection with a wrong target secret names AADSTS7000215");
		xts_graph_free(bad);
	} else {
		ok(0, "graph client for the bad target");
	}
}

/* ---- governor against the emulator's limits ---- */

/* A writer of its own (own governor, own options) on the target tenant. */
static int
writer_new(const struct xts_graph_opts *o, const char *name, struct xts_graph_ctx **c, struct xts_graph **g,
	   struct xts_batch **b)
{
	struct xts_tenant_conn tc;

	conn(&tc, name, TGT, TAPP, "tgt-secret");
	if (xts_graph_ctx_new(ev, o, c) != 0 || xts_graph_new(*c, &tc, g) != 0 || xts_batch_new(*g, b) != 0) {
		ok(0, "%s: writer set-up", name);
		return -1;
	}
	return 0;
}

/* The invitation of member user PREFIX<k>@src.example, no mail sent. */
static json_t *
invitation(const char *prefix, int k)
{
	char mail[80];

	snprintf(mail, sizeof(mail), "%s%03d@src.example", prefix, k);
	return json_pack("{s:s, s:s, s:s, s:b}", "invitedUserEmailAddress", mail, "inviteRedirectUrl",
			 "https://myapps.microsoft.com", "invitedUserType", "Member", "sendInvitationMessage", 0);
}

static void
test_rate(void)
{
	struct xts_graph_ctx *c2 = NULL;
	struct xts_graph_opts o;
	struct xts_graph *g = NULL;
	struct xts_batch *b = NULL;
	static struct opres r[1000];
	char *ids[20], url[200];
	json_t *patch[10], *j, *e;
	size_t i;
	int k, n = 0, throttled = 0;
	static double t[1000];
	double rate = 0;
	const int burst = 360; /* 3 % of 3,000 x 4 */
	const double ceiling = 3000.0 * 4 / 150;

	memset(&o, 0, sizeof(o));
	o.time_scale = 4;
	admin_ok("POST", "/_admin/settings", "{\"time_scale\": 4}");
	admin_ok("DELETE", "/_admin/requests", NULL);
	if (writer_new(&o, "target-rate", &c2, &g, &b) != 0)
		return;
	for (k = 0; k < 20; k++)
		ids[k] = some_user(k);
	for (k = 0; k < 10; k++)
		patch[k] = json_pack("{s:s+}", "jobTitle", "Rate ", k % 2 ? "A" : "B");
	memset(r, 0, sizeof(r));
	ops_done = 0;
	for (k = 0; k < 1000; k++) {
		snprintf(url, sizeof(url), "/users/%s", ids[k % 20]);
		xts_batch_add(b, "PATCH", url, patch[k % 10], NULL, on_op, &r[k], NULL);
	}
	spin_count(&ops_done, 1000, 120000);
	j = admin("GET", "/_admin/requests", NULL);
	json_array_foreach(json_object_get(j, "value"), i, e) {
		const char *m = json_string_value(json_object_get(e, "method"));
		long st = (long)json_integer_value(json_object_get(e, "status"));

		if (m == NULL || strcmp(m, "PATCH") != 0)
			continue;
		if (st == 429)
			throttled++;
		else if (n < 1000)
			t[n++] = json_real_value(json_object_get(e, "time"));
	}
	json_decref(j);
	if (n == 1000 && t[999] > t[burst])
		rate = (999 - burst) / (t[999] - t[burst]);
	printf("# governor: 1000 PATCH sub-requests, %d answered 429, steady rate %.1f/s of a %.1f/s ceiling (%.1f %%)\n",
	       throttled, rate, ceiling, 100 * rate / ceiling);
	ok(ops_done == 1000 && n == 1000, "all 1000 PATCHes done (%d)", ops_done);
	ok(rate >= 0.95 * ceiling && rate <= ceiling * 1.05,
	   "write rate %.1f/s is within 95-100 %% of the documented 3,000/150 s x time_scale 4", rate);
	ok(throttled * 100 < 1000, "under 1 %% throttled (%d 429s)", throttled);
	xts_batch_free(b);
	xts_graph_free(g);
	xts_graph_ctx_free(c2);
	for (k = 0; k < 20; k++)
		free(ids[k]);
	for (k = 0; k < 10; k++)
		json_decref(patch[k]);
	admin_ok("POST", "/_admin/settings", "{\"time_scale\": 1}");
}

/* The governor set 4x too generous: the emulator's real invitation limit
 * (150 per 5 s) answers 429s; everything must still complete, and no new
 * $batch may arrive while a Retry-After is running. */
static void
test_throttled(void)
{
	struct xts_graph_ctx *c3 = NULL;
	struct xts_graph_opts o;
	struct xts_graph *g = NULL;
	struct xts_batch *b = NULL;
	static struct opres r[200];
	static double t429[2000], ra429[2000], tbatch[2000];
	int k, n429 = 0, nb = 0, good = 0, early = 0;
	json_t *j, *e;
	size_t i;

	partners(1, 1, 1);
	memset(&o, 0, sizeof(o));
	o.time_scale = 4;
	o.backoff_min_ms = 200;
	o.max_attempts = 12;
	admin_ok("DELETE", "/_admin/requests", NULL);
	if (writer_new(&o, "target-throttled", &c3, &g, &b) != 0)
		return;
	memset(r, 0, sizeof(r));
	ops_done = 0;
	for (k = 0; k < 200; k++) {
		json_t *inv = invitation("burst", k);

		xts_batch_create_user(b, inv, NULL, on_op, &r[k]);
		json_decref(inv);
	}
	spin_count(&ops_done, 200, 120000);
	for (k = 0; k < 200; k++)
		good += r[k].done && r[k].err == 0 && r[k].user_id[0];
	j = admin("GET", "/_admin/requests", NULL);
	json_array_foreach(json_object_get(j, "value"), i, e) {
		const char *route = json_string_value(json_object_get(e, "route"));
		double tm = json_real_value(json_object_get(e, "time"));

		if (route == NULL)
			continue;
		if (strcmp(route, "batch") == 0 && nb < 2000)
			tbatch[nb++] = tm;
		else if (json_integer_value(json_object_get(e, "status")) == 429 && n429 < 2000) {
			ra429[n429] = json_is_integer(json_object_get(e, "retry_after")) ?
				      (double)json_integer_value(json_object_get(e, "retry_after")) : 1.0;
			t429[n429++] = tm;
		}
	}
	json_decref(j);
	/* an envelope arriving well after a 429 but before its Retry-After ran out */
	for (k = 0; k < nb; k++)
		for (int m = 0; m < n429; m++)
			if (tbatch[k] > t429[m] + 0.3 && tbatch[k] < t429[m] + ra429[m] - 0.05) {
				early++;
				break;
			}
	printf("# invitations: 200 through a governor 4x the real limit: %d succeeded, %d sub-requests answered 429, %d batches\n",
	       good, n429, nb);
	ok(good == 200, "real 429s from the emulator: all 200 invitations completed (%d)", good);
	ok(n429 > 0, "the emulator did throttle (%d 429s)", n429);
	ok(early == 0, "no new batch sent while a Retry-After was running (%d early)", early);
	{
		/* graphsim answers each sub-request with its own
		 * x-ms-throttle-limit-percentage once a limit is 80 % used; the
		 * envelope of a $batch does not carry it */
		struct xts_throttle_stats ts;

		xts_throttle_stats(xts_graph_throttle(g), &ts);
		ok(ts.slowdowns > 0, "sub-responses' x-ms-throttle-limit-percentage reached the governor "
		   "(%llu slowdowns)", ts.slowdowns);
	}
	xts_batch_free(b);
	xts_graph_free(g);
	xts_graph_ctx_free(c3);
}

/* $batch refused while admitted operations linger for budget: with the
 * invitation budget slowed 10x (one per ~340 ms, burst 5), 3 invitations go
 * in a first envelope and 2 of 3 more wait in the next one for the third's
 * token. The first envelope's 404 switches the writer to single requests;
 * each lingering operation must go then, on its own: before the fix only the
 * first did and the second hung in flight forever (CI run of f5c89ab). */
static void
test_refused_lingering(void)
{
	struct xts_graph_ctx *c4 = NULL;
	struct xts_graph_opts o;
	struct xts_graph *g = NULL;
	struct xts_batch *b = NULL;
	static struct opres r[6];
	int k, good = 0, done = 0;

	partners(1, 1, 1);
	memset(&o, 0, sizeof(o));
	o.time_scale = 0.1;
	o.backoff_min_ms = 200;
	o.max_attempts = 5;
	if (writer_new(&o, "target-lingering", &c4, &g, &b) != 0)
		return;
	admin_ok("POST", "/_admin/faults",
		 "{\"tenant\": \"" TGT "\", \"route\": \"/\\\\$batch$\", \"method\": \"POST\", \"kind\": \"status\", \"status\": 404}");
	memset(r, 0, sizeof(r));
	ops_done = 0;
	for (k = 0; k < 6; k++) {
		json_t *inv = invitation("linger", k);

		xts_batch_create_user(b, inv, NULL, on_op, &r[k]);
		json_decref(inv);
		if (k == 2)
			uv_run(loop, UV_RUN_NOWAIT); /* the first envelope goes with 3 */
	}
	spin_count(&ops_done, 6, 30000);
	for (k = 0; k < 6; k++) {
		done += r[k].done;
		good += r[k].done && r[k].err == 0 && r[k].user_id[0];
	}
	ok(done == 6 && good == 6, "$batch refused while 2 invitations lingered: all 6 sent alone and created (%d done, %d ok)",
	   done, good);
	admin_ok("DELETE", "/_admin/faults", NULL);
	xts_batch_free(b);
	xts_graph_free(g);
	xts_graph_ctx_free(c4);
}

/* A GET queued behind writes the write budget holds goes when the request
 * units allow, without waiting for them: with the governor slowed 10x
 * (2 writes/s), 40 PATCHes take ~15 s after their burst, and a GET queued
 * after them is answered in the first envelopes. Before reads passed held
 * writes it came back only after the 40th PATCH. */
static void
test_read_passes_writes(void)
{
	struct xts_graph_ctx *c5 = NULL;
	struct xts_graph_opts o;
	struct xts_graph *g = NULL;
	struct xts_batch *b = NULL;
	static struct opres r[41];
	char *uid = some_user(0), url[200];
	json_t *patch = json_pack("{s:s}", "jobTitle", "Held write");
	int k, patched = 0;

	memset(&o, 0, sizeof(o));
	o.time_scale = 0.1;
	if (patch == NULL || writer_new(&o, "target-read-passes", &c5, &g, &b) != 0) {
		json_decref(patch);
		free(uid);
		return;
	}
	memset(r, 0, sizeof(r));
	snprintf(url, sizeof(url), "/users/%s", uid);
	for (k = 0; k < 40; k++)
		xts_batch_add(b, "PATCH", url, patch, NULL, on_op, &r[k], NULL);
	snprintf(url, sizeof(url), "/users/%s?$select=id,jobTitle", uid);
	xts_batch_add(b, "GET", url, NULL, NULL, on_op, &r[40], NULL);
	spin(&r[40].done, 30000);
	for (k = 0; k < 40; k++)
		patched += r[k].done;
	ok(r[40].done && r[40].err == 0 && r[40].status == 200,
	   "a GET behind 40 writes the budget holds is answered (err %d, HTTP %ld)", r[40].err, r[40].status);
	ok(r[40].done && patched <= 25,
	   "the GET did not wait for the held writes: %d of 40 PATCHes were done when it was answered", patched);
	xts_batch_free(b); /* the rest are canceled without callbacks */
	xts_graph_free(g);
	xts_graph_ctx_free(c5);
	json_decref(patch);
	free(uid);
}

/* Every operation ends exactly once, whatever the endpoint does: creates
 * (invitation then PATCH), PATCHes in dependency chains and manager
 * references go through sub-requests answered 503, 429 and 500 at random,
 * with a budget slow enough that envelopes linger, and $batch is refused
 * (404) once halfway, which switches the writer to single requests with
 * envelopes in flight and filling. Which operations succeed is left to
 * chance; that each one's callback runs once, that the writer drains and
 * says so (idle), and that a dependent of a failed operation fails too (a
 * chain of PATCHes that starts with a user that does not exist), are not. */
struct stress_op {
	int calls, err;
	int dep; /* index of the operation it depends on, or -1 */
};

static struct stress_op sops[90];
static int stress_calls, stress_idle;
/* xts_batch_on_answers: groups begun and ended, the depth now, and the
 * callbacks that ran outside a group (the engine records a group's
 * outcomes in one transaction: each must run inside one) */
static int grp_begun, grp_ended, grp_depth, grp_outside, grp_nested;

static void
on_grp_begin(void *arg)
{
	(void)arg;
	grp_begun++;
	grp_nested += grp_depth > 0;
	grp_depth++;
}

static void
on_grp_end(void *arg)
{
	(void)arg;
	grp_ended++;
	grp_depth--;
}

static void
on_stress(void *arg, const struct xts_batch_result *r)
{
	struct stress_op *o = arg;

	/* a create's callback runs once, after its PATCH (step 2) or its
	 * failed invitation (step 1) */
	o->calls++;
	o->err = r->err;
	stress_calls++;
	grp_outside += grp_depth != 1;
}

static void
on_stress_idle(void *arg)
{
	(void)arg;
	stress_idle++;
}

static void
test_batch_stress(void)
{
	struct xts_graph_ctx *c5 = NULL;
	struct xts_graph_opts o;
	struct xts_graph *g = NULL;
	struct xts_batch *b = NULL;
	struct xts_batch_op *chain[2] = { NULL, NULL }, *op = NULL;
	int last[2] = { -1, -1 };
	char *ids[10], url[200];
	json_t *patch, *ref;
	int k, once = 0, twice = 0, orphan = 0, depok = 0, good = 0;
	const int n = 90;

	partners(1, 1, 1);
	memset(&o, 0, sizeof(o));
	o.time_scale = 0.5;
	o.backoff_min_ms = 50;
	o.backoff_max_ms = 400;
	o.max_attempts = 4;
	if (writer_new(&o, "target-stress", &c5, &g, &b) != 0)
		return;
	xts_batch_on_idle(b, on_stress_idle, NULL);
	grp_begun = grp_ended = grp_depth = grp_outside = grp_nested = 0;
	xts_batch_on_answers(b, on_grp_begin, on_grp_end, NULL);
	for (k = 0; k < 10; k++)
		ids[k] = some_user(k);
	admin_ok("POST", "/_admin/faults", "{\"tenant\": \"" TGT "\", \"route\": \"/invitations$\", \"kind\": \"status\", "
		 "\"status\": 503, \"probability\": 0.2}");
	admin_ok("POST", "/_admin/faults", "{\"tenant\": \"" TGT "\", \"route\": \"/users/[^/]*$\", \"method\": \"PATCH\", "
		 "\"kind\": \"status\", \"status\": 429, \"retry_after\": 1, \"probability\": 0.05}");
	admin_ok("POST", "/_admin/faults", "{\"tenant\": \"" TGT "\", \"route\": \"/manager/\\\\$ref$\", \"kind\": \"status\", "
		 "\"status\": 500, \"probability\": 0.3}");
	patch = json_pack("{s:s}", "jobTitle", "Stress");
	memset(sops, 0, sizeof(sops));
	stress_calls = stress_idle = 0;
	for (k = 0; k < n; k++)
		sops[k].dep = -1;
	/* Two chains, each PATCH waiting for the previous one of its chain;
	 * the second starts with a user that does not exist (404), so all of
	 * it must fail. Queued with no turn of the loop in between: an
	 * operation may only depend on one that has not ended yet. */
	for (k = 1; k < n; k += 3) {
		int c = k % 2;

		if (c == 1 && chain[1] == NULL)
			snprintf(url, sizeof(url), "/users/00000000-0000-4000-8000-00000000dead");
		else
			snprintf(url, sizeof(url), "/users/%s", ids[k % 10]);
		if (xts_batch_add(b, "PATCH", url, patch, chain[c], on_stress, &sops[k], &op) == 0) {
			sops[k].dep = chain[c] != NULL ? last[c] : -1;
			chain[c] = op;
			last[c] = k;
		}
	}
	for (k = 0; k < n; k++) {
		if (k == n / 2) {
			admin_ok("POST", "/_admin/faults", "{\"tenant\": \"" TGT "\", \"route\": \"/\\\\$batch$\", "
				 "\"method\": \"POST\", \"kind\": \"status\", \"status\": 404, \"count\": 1}");
			uv_run(loop, UV_RUN_NOWAIT);
		}
		if (k % 3 == 0) {
			json_t *inv = invitation("stress", k);

			xts_batch_create_user(b, inv, patch, on_stress, &sops[k]);
			json_decref(inv);
		} else if (k % 3 == 2) {
			snprintf(url, sizeof(url), "/users/%s/manager/$ref", ids[k % 10]);
			ref = json_pack("{s:s+}", "@odata.id", "https://graph.microsoft.com/v1.0/users/",
					ids[(k + 1) % 10]);
			xts_batch_add(b, "PUT", url, ref, NULL, on_stress, &sops[k], NULL);
			json_decref(ref);
		}
		if (k % 10 == 9)
			uv_run(loop, UV_RUN_NOWAIT); /* let envelopes go between additions */
	}
	spin_count(&stress_calls, n, 90000);
	sleep_loop(300); /* a second callback, if any, would come now */
	for (k = 0; k < n; k++) {
		once += sops[k].calls == 1;
		twice += sops[k].calls > 1;
		good += sops[k].calls == 1 && sops[k].err == 0;
		if (sops[k].dep >= 0 && sops[sops[k].dep].err != 0) {
			orphan++;
			depok += sops[k].err != 0;
		}
	}
	printf("# stress: %d operations, %d succeeded, %d dependents of failed ones\n", n, good, orphan);
	ok(once == n && twice == 0, "under random 503/429/500 and a refused $batch every operation ended once "
	   "(%d once, %d more than once, of %d)", once, twice, n);
	ok(xts_batch_pending(b) == 0 && stress_idle > 0, "the writer drained and said so (pending %zu, idle %d)",
	   xts_batch_pending(b), stress_idle);
	ok(orphan >= 10 && depok == orphan, "every dependent of a failed PATCH failed too (%d of %d)", depok, orphan);
	ok(good > 0, "operations did succeed through the faults (%d)", good);
	ok(grp_outside == 0 && grp_nested == 0 && grp_depth == 0 && grp_begun == grp_ended && grp_begun > 0,
	   "every callback ran inside a group of answers, groups neither nested nor left open "
	   "(%d callbacks outside, %d groups for %d callbacks, depth %d)", grp_outside, grp_begun, stress_calls,
	   grp_depth);
	admin_ok("DELETE", "/_admin/faults", NULL);
	json_decref(patch);
	for (k = 0; k < 10; k++)
		free(ids[k]);
	xts_batch_free(b);
	xts_graph_free(g);
	xts_graph_ctx_free(c5);
}

int
main(void)
{
	struct xts_tenant_conn s, t;
	struct xts_graph *src = NULL, *tgt = NULL;
	struct xts_graph_opts opts;
	char body[8192];
	json_t *certs;
	char *certs_s;

	xts_log_init(XTS_LOG_WARNING, 0);
	xts_mem_install();
	if (start_graphsim() != 0) {
		printf("1..1\nnot ok 1 - graph emulator did not start\n");
		return 1;
	}
	certs = json_pack("[s]", cert_pem);
	certs_s = json_dumps(certs, JSON_COMPACT);
	snprintf(body, sizeof(body),
		 "{\"id\": \"" SRC "\", \"domain\": \"src.example\", \"apps\": [{\"client_id\": \"" SAPP "\", \"secret\": \"src-secret\", \"certificates\": %s}]}",
		 certs_s);
	admin_ok("POST", "/_admin/tenants", body);
	admin_ok("POST", "/_admin/tenants", "{\"id\": \"" TGT "\", \"domain\": \"tgt.example\", \"apps\": [{\"client_id\": \"" TAPP "\", \"secret\": \"tgt-secret\"}]}");
	admin_ok("POST", "/_admin/tenants/" SRC "/seed", "{\"count\": 250, \"seed\": 1}");
	admin_ok("POST", "/_admin/tenants/" TGT "/seed", "{\"count\": 20, \"seed\": 2}");
	xts_free(certs_s);
	json_decref(certs);

	loop = uv_default_loop();
	memset(&opts, 0, sizeof(opts));
	opts.backoff_min_ms = 200;
	opts.backoff_max_ms = 2000;
	opts.max_attempts = 5;
	if (xts_uvglue_new(loop, &ev) != 0 || xts_graph_ctx_new(ev, &opts, &ctx) != 0) {
		printf("1..1\nnot ok 1 - graph context\n");
		return 1;
	}
	conn(&s, "source", SRC, SAPP, "src-secret");
	conn(&t, "target", TGT, TAPP, "tgt-secret");
	ok(xts_graph_new(ctx, &s, &src) == 0 && xts_graph_new(ctx, &t, &tgt) == 0, "graph clients created");
	{
		struct xts_tenant_conn plain = s;
		struct xts_graph *g = NULL;

		plain.graph_endpoint = "http://graph.example.com";
		ok(xts_graph_new(ctx, &plain, &g) == XTS_EINVAL, "plain http:// to a non-loopback host refused");
	}

	test_auth();
	test_tls();
	test_delta(src);
	test_faults(tgt);
	test_query_oom(tgt);
	test_engine();
	test_token_refresh(tgt);
	partners(1, 1, 1); /* invitations need the target's inbound sync policy */
	test_batch(tgt);
	test_groups(src);
	test_policy(src, tgt);
	test_rate();
	test_throttled();
	test_refused_lingering();
	test_read_passes_writes();
	test_batch_stress();

	xts_graph_free(src);
	xts_graph_free(tgt);
	xts_graph_ctx_free(ctx);
	xts_uvglue_free(ev);
	uv_run(loop, UV_RUN_NOWAIT);
	uv_loop_close(loop);
	kill(gs_pid, SIGTERM);
	waitpid(gs_pid, NULL, 0);
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		sh(cmd);
	}
	xts_free(cert_pem);
	xts_free(key_pem);
	xts_free(cert2_pem);
	xts_free(key2_pem);
	printf("1..%d\n", ntest);
	return nfail ? 1 : 0;
}
