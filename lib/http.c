/* SPDX-License-Identifier: MIT */
/* libcurl multi-socket engine over evloop.h: per-host in-flight caps with a
 * FIFO, TLS always verified (ca_file adds a trust anchor to the system bundle
 * through a CA blob), no redirects,
 * http:// only to loopback, a response cap enforced in the write callback and
 * a client-request-id GUID on every request. No Graph semantics, no retries. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "err.h"
#include "http.h"
#include "log.h"
#include "mem.h"

enum { H_CTYPE, H_LOCATION, H_REQID, H_CREQID, H_RETRY, H_TPCT, H_TSCOPE, H_TINFO, H__N };
static const char *const hdr_names[H__N] = {
	"content-type", "location", "request-id", "client-request-id", "retry-after",
	"x-ms-throttle-limit-percentage", "x-ms-throttle-scope", "x-ms-throttle-information",
};

struct host {
	char *key; /* scheme://host:port */
	int in_flight;
	struct xts_http_xfer *qhead, *qtail;
	struct host *next;
};

#define PEND_MAX 32

struct xts_http {
	struct xts_evloop *ev;
	CURLM *multi;
	struct xts_evtimer *timer;
	struct xts_evtimer *watch; /* the stall watchdog, armed while transfers exist */
	int watch_armed;
	long watch_tick_ms, watch_grace_ms, easy_deadline_ms;
	/* socket watches the loop could not set up (out of memory), retried */
	struct { int fd, ev; } pend[PEND_MAX];
	int npend;
	struct host *hosts;
	struct xts_http_xfer *all; /* every queued or running transfer */
	struct cablob *cablobs;
	int active;
	struct xts_http_stats st;
};

struct xts_http_xfer {
	struct xts_http *h;
	struct host *host;
	CURL *easy;
	struct curl_slist *hdrs;
	xts_http_cb cb;
	xts_http_easy_cb rcb; /* caller-built transfer */
	void *arg;
	char *url;
	char *ca_file;
	int running; /* 0 queued, 1 in the multi */
	int quiet;
	int toobig;
	int sent_checked; /* the request line was seen (debug callback) */
	int query_lost;   /* ... and it lacked the URL's query string */
	int cap;
	long long deadline; /* xts_now_ms() after which the watchdog fails it */
	long timeout_ms;
	size_t max_body;
	struct xts_buf body;
	char *hv[H__N];
	char creqid[37];
	char errbuf[CURL_ERROR_SIZE];
	struct xts_http_xfer *qnext;
	struct xts_http_xfer *anext, *aprev;
};

int
xts_guid_new(char out[37])
{
	unsigned char r[16];
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return XTS_EIO;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[r[i] >> 4];
		out[o++] = hex[r[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

/* Parse url into lower-case scheme, host and a numeric port (defaults
 * filled). Returns 0 or XTS_EINVAL. Outputs are curl-allocated; free with
 * curl_free. */
static int
url_parts(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u;
	char *p = NULL;
	int ret = XTS_EINVAL;

	*scheme = NULL;
	*host = NULL;
	u = curl_url();
	if (u == NULL)
		return XTS_ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_SCHEME, scheme, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK)
		goto done;
	if (curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto done;
	*port = strtol(p, NULL, 10);
	for (char *c = *host; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	for (char *c = *scheme; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	ret = 0;
done:
	curl_free(p);
	curl_url_cleanup(u);
	if (ret != 0) {
		curl_free(*scheme);
		curl_free(*host);
		*scheme = NULL;
		*host = NULL;
	}
	return ret;
}

static int
host_is_loopback(const char *host)
{
	if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	return strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == strlen(host);
}

int
xts_http_url_check(const char *url)
{
	char *scheme, *host;
	long port;
	int ret;

	if (url == NULL)
		return XTS_EINVAL;
	ret = url_parts(url, &scheme, &host, &port);
	if (ret != 0)
		return ret;
	if (strcmp(scheme, "https") == 0)
		ret = 0;
	else if (strcmp(scheme, "http") == 0 && host_is_loopback(host))
		ret = 0;
	else
		ret = XTS_EINVAL;
	curl_free(scheme);
	curl_free(host);
	return ret;
}

int
xts_http_same_origin(const char *a, const char *b)
{
	char *sa = NULL, *ha = NULL, *sb = NULL, *hb = NULL;
	long pa = 0, pb = 0;
	int ret;

	if (a == NULL || b == NULL)
		return XTS_EINVAL;
	ret = url_parts(a, &sa, &ha, &pa);
	if (ret != 0)
		goto done;
	ret = url_parts(b, &sb, &hb, &pb);
	if (ret != 0)
		goto done;
	ret = (strcmp(sa, sb) == 0 && strcmp(ha, hb) == 0 && pa == pb) ? 0 : XTS_EFOREIGN;
done:
	curl_free(sa);
	curl_free(ha);
	curl_free(sb);
	curl_free(hb);
	return ret;
}

int
xts_http_link_resolve(const char *endpoint, const char *base_path, const char *link, char **out)
{
	CURLU *u = NULL;
	char *es = NULL, *eh = NULL, *ls = NULL, *lh = NULL, *full = NULL;
	long ep = 0, lp = 0;
	int ret;

	*out = NULL;
	if (endpoint == NULL || link == NULL)
		return XTS_EINVAL;
	ret = url_parts(endpoint, &es, &eh, &ep);
	if (ret != 0)
		goto done;
	ret = XTS_ENOMEM;
	u = curl_url();
	if (u == NULL)
		goto done;
	ret = XTS_EINVAL;
	/* setting a URL on a handle that holds one resolves it (RFC 3986) */
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK)
		goto done;
	if (base_path != NULL) {
		/* under the endpoint's own path (a proxy's prefix), as the
		 * client's own URLs are: endpoint + "/v1.0/..." */
		char *epath = NULL;
		struct xts_buf bp = XTS_BUF_INIT;
		size_t n;

		if (curl_url_get(u, CURLUPART_PATH, &epath, 0) != CURLUE_OK || epath == NULL) {
			curl_free(epath);
			goto done;
		}
		n = strlen(epath);
		while (n > 0 && epath[n - 1] == '/')
			n--;
		ret = xts_buf_append(&bp, epath, n) != 0 || xts_buf_puts(&bp, base_path) != 0 ? XTS_ENOMEM : 0;
		curl_free(epath);
		if (ret == 0 && curl_url_set(u, CURLUPART_PATH, xts_buf_str(&bp), 0) != CURLUE_OK)
			ret = XTS_EINVAL;
		xts_buf_free(&bp);
		if (ret != 0)
			goto done;
		ret = XTS_EINVAL;
	}
	if (curl_url_set(u, CURLUPART_URL, link, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		goto done;
	ret = url_parts(full, &ls, &lh, &lp);
	if (ret != 0)
		goto done;
	ret = XTS_EFOREIGN;
	if (strcmp(es, ls) != 0 || ep != lp ||
	    (strcmp(eh, lh) != 0 && !(host_is_loopback(eh) && host_is_loopback(lh))))
		goto done;
	ret = XTS_EINVAL;
	if (strcmp(eh, lh) != 0) {
		curl_free(full);
		full = NULL;
		if (curl_url_set(u, CURLUPART_HOST, eh, 0) != CURLUE_OK ||
		    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
			goto done;
	}
	*out = xts_strdup(full);
	ret = *out != NULL ? 0 : XTS_ENOMEM;
done:
	curl_free(full);
	curl_free(es);
	curl_free(eh);
	curl_free(ls);
	curl_free(lh);
	curl_url_cleanup(u);
	return ret;
}

double
xts_http_parse_limit_pct(const char *v)
{
	char *end;
	double d;

	if (v == NULL)
		return -1;
	d = strtod(v, &end);
	return end != v && d >= 0 && d < 100 ? d : -1;
}

long long
xts_http_parse_retry_after(const char *v, long long now_wall_s)
{
	char *end;
	long long s;
	time_t t;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		long long ms = 0;
		int digits = 0, rest = 0;

		errno = 0;
		s = strtoll(v, &end, 10);
		if (*end == '.') {
			/* Seconds with a fraction, as Microsoft's own sample 429
			 * sends ("Retry-After: 2.128", concepts/throttling.md):
			 * to the millisecond, rounded up. */
			for (end++; *end >= '0' && *end <= '9'; end++, digits++) {
				if (digits < 3)
					ms = ms * 10 + (*end - '0');
				else if (*end != '0')
					rest = 1;
			}
			for (; digits < 3; digits++)
				ms *= 10;
			ms += rest;
		}
		while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
			end++;
		if (errno != 0 || *end != '\0' || s > 86400LL * 7)
			return -1;
		return s * 1000 + ms;
	}
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	s = (long long)t - now_wall_s;
	return s > 0 ? s * 1000 : 0;
}

static struct host *
host_by_key(struct xts_http *h, const char *key)
{
	struct host *ho;

	for (ho = h->hosts; ho != NULL; ho = ho->next)
		if (strcmp(ho->key, key) == 0)
			return ho;
	ho = xts_calloc(1, sizeof(*ho));
	if (ho == NULL)
		return NULL;
	ho->key = xts_strdup(key);
	if (ho->key == NULL) {
		xts_free(ho);
		return NULL;
	}
	ho->next = h->hosts;
	h->hosts = ho;
	return ho;
}

static struct host *
host_get(struct xts_http *h, const char *url)
{
	char *scheme, *hostname;
	long port;
	struct host *ho = NULL;
	struct xts_buf key = XTS_BUF_INIT;

	if (url_parts(url, &scheme, &hostname, &port) != 0)
		return NULL;
	if (xts_buf_printf(&key, "%s://%s:%ld", scheme, hostname, port) == 0)
		ho = host_by_key(h, key.p);
	xts_buf_free(&key);
	curl_free(scheme);
	curl_free(hostname);
	return ho;
}

static void
xfer_free(struct xts_http_xfer *x)
{
	int i;

	if (x->aprev != NULL)
		x->aprev->anext = x->anext;
	else if (x->h != NULL && x->h->all == x)
		x->h->all = x->anext;
	if (x->anext != NULL)
		x->anext->aprev = x->aprev;

	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	xts_buf_free(&x->body);
	for (i = 0; i < H__N; i++)
		xts_free(x->hv[i]);
	xts_free(x->url);
	xts_free(x->ca_file);
	xts_free(x);
}

static size_t
write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xts_http_xfer *x = ud;
	size_t len = size * n;

	if (x->body.len + len > x->max_body) {
		x->toobig = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (xts_buf_append(&x->body, p, len) != 0)
		return 0;
	return len;
}

/* libcurl 7.88 ignores a failed allocation while it copies the URL's query
 * (parseurlandfillconn: the result of curl_url_get(CURLUPART_QUERY) is not
 * checked) and then sends the request without it: users/delta without its
 * $select answers with Graph's default properties only, and the engine would
 * take the missing attributes for empty ones. For a URL with a query, the
 * request line libcurl sends is checked here; one without the query fails
 * the transfer (a transport error, retried). */
static int
debug_cb(CURL *e, curl_infotype type, char *data, size_t size, void *ud)
{
	struct xts_http_xfer *x = ud;
	const char *q;

	(void)e;
	if (type != CURLINFO_HEADER_OUT || x->sent_checked)
		return 0;
	x->sent_checked = 1;
	q = strchr(x->url, '?');
	if (q == NULL)
		return 0;
	/* the whole header block: the request line (HTTP/1.1) or :path (HTTP/2) */
	if (memmem(data, size, q, strlen(q)) == NULL)
		x->query_lost = 1;
	return 0;
}

static size_t
header_cb(char *p, size_t size, size_t n, void *ud)
{
	struct xts_http_xfer *x = ud;
	size_t len = size * n, nl, vl;
	const char *colon, *v;
	int i;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue): forget earlier headers. */
		for (i = 0; i < H__N; i++) {
			xts_free(x->hv[i]);
			x->hv[i] = NULL;
		}
		return len;
	}
	colon = memchr(p, ':', len);
	if (colon == NULL)
		return len;
	nl = (size_t)(colon - p);
	for (i = 0; i < H__N; i++) {
		if (strlen(hdr_names[i]) != nl || strncasecmp(p, hdr_names[i], nl) != 0)
			continue;
		v = colon + 1;
		vl = len - nl - 1;
		while (vl > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl > 8192)
			vl = 8192;
		xts_free(x->hv[i]);
		x->hv[i] = xts_strndup(v, vl);
		break;
	}
	return len;
}

/* ca_file must ADD a trust anchor. CURLOPT_CAINFO would replace the system
 * bundle, and an SSL_CTX callback is invisible to curl's connection matching
 * (a connection verified with the extra anchor could be reused by a transfer
 * without it). So the trust store is a blob: the system bundle followed by
 * ca_file, loaded once per ca_file and kept for the engine's life; curl
 * compares CA blobs when it matches connections. */
struct cablob {
	char *path;
	struct xts_buf pem;
	struct cablob *next;
};

static struct cablob *
cablob_get(struct xts_http *h, const char *path)
{
	struct cablob *c;
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
	const char *sys = vi->cainfo ? vi->cainfo : "/etc/ssl/certs/ca-certificates.crt";
	int ret;

	for (c = h->cablobs; c != NULL; c = c->next)
		if (strcmp(c->path, path) == 0)
			return c;
	c = xts_calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->path = xts_strdup(path);
	if (c->path == NULL)
		goto fail;
	if (xts_buf_append_file(&c->pem, sys) != 0)
		xts_warn("http: cannot read the system CA bundle %s; trusting only %s", sys, path);
	ret = xts_buf_append_file(&c->pem, path);
	if (ret != 0 || strstr(xts_buf_str(&c->pem), "-----BEGIN CERTIFICATE-----") == NULL) {
		xts_err("http: ca_file %s: %s", path, ret ? xts_strerror(ret) : "no PEM certificate in it");
		goto fail;
	}
	c->next = h->cablobs;
	h->cablobs = c;
	return c;
fail:
	xts_free(c->path);
	xts_buf_free(&c->pem);
	xts_free(c);
	return NULL;
}

static void pump(struct xts_http *h, struct host *ho);
static void rearm_after_error(struct xts_http *h, CURLMcode mc);
static void retry_pending(struct xts_http *h);

/* The stall watchdog's period and how long past a transfer's own timeout it
 * waits for libcurl before failing the transfer itself (defaults). */
#define WATCH_TICK_MS 1000L
#define WATCH_GRACE_MS 5000L

/* Finish a running transfer: out of the multi, counters, the caller's callback
 * (detail, when not NULL, replaces libcurl's error text), freed, and the
 * host's queue moves on. */
static void
complete(struct xts_http *h, struct xts_http_xfer *x, CURLcode rc, const char *detail)
{
	struct xts_http_resp r;
	struct host *ho = x->host;

	curl_multi_remove_handle(h->multi, x->easy);
	x->running = 0;
	ho->in_flight--;
	h->active--;
	{
		long nc = 0;

		curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &nc);
		h->st.connects += (unsigned long long)(nc > 0 ? nc : 0);
		h->st.requests++;
	}

	if (x->rcb != NULL) {
		if (rc != CURLE_OK)
			h->st.failures++;
		x->rcb(x->arg, x->easy, (int)rc);
		xfer_free(x);
		pump(h, ho);
		return;
	}
	memset(&r, 0, sizeof(r));
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.status);
	if (xts_buf_reserve(&x->body, 1) != 0)
		rc = CURLE_OUT_OF_MEMORY;
	r.body = x->body.p ? x->body.p : "";
	r.body_len = x->body.len;
	r.content_type = x->hv[H_CTYPE];
	r.location = x->hv[H_LOCATION];
	r.request_id = x->hv[H_REQID];
	r.client_request_id = x->creqid;
	r.throttle_scope = x->hv[H_TSCOPE];
	r.throttle_info = x->hv[H_TINFO];
	r.retry_after_ms = xts_http_parse_retry_after(x->hv[H_RETRY], xts_wall_ms() / 1000);
	r.throttle_pct = xts_http_parse_limit_pct(x->hv[H_TPCT]);
	r.err_detail = "";
	if (rc == CURLE_OK && x->query_lost) {
		rc = CURLE_SEND_ERROR;
		detail = "libcurl sent the request without the URL's query string (an allocation failed inside libcurl)";
		h->st.query_lost++;
	}
	if (x->toobig) {
		r.err = XTS_ETOOBIG;
		r.err_detail = "response body exceeds the size cap";
	} else if (rc != CURLE_OK) {
		switch (rc) {
		case CURLE_OPERATION_TIMEDOUT:
			r.err = XTS_ETIMEDOUT;
			break;
		case CURLE_OUT_OF_MEMORY:
			r.err = XTS_ENOMEM;
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
			r.err = XTS_ETLS;
			break;
		default:
			r.err = XTS_EHTTP;
			break;
		}
		r.err_detail = detail != NULL ? detail : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	}
	if (r.err != 0)
		h->st.failures++;
	if (r.err != 0 && !x->quiet)
		xts_log_rl(XTS_LOG_WARNING, 10000, 20, "http: %s failed: %s (%s) client-request-id=%s", ho->key,
			   xts_strerror(r.err), r.err_detail, x->creqid);
	x->cb(x->arg, &r);
	xfer_free(x);
	pump(h, ho);
}

static void
check_done(struct xts_http *h)
{
	CURLMsg *m;
	int left;

	for (;;) {
		struct xts_http_xfer *x = NULL;

		m = curl_multi_info_read(h->multi, &left);
		if (m == NULL)
			break;
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		complete(h, x, m->data.result, NULL);
	}
}

/* Start a transfer's clock and make sure the watchdog runs. */
static void
started(struct xts_http *h, struct xts_http_xfer *x)
{
	x->running = 1;
	x->deadline = xts_now_ms() + x->timeout_ms + h->watch_grace_ms;
	if (!h->watch_armed && xts_ev_timer_start(h->watch, h->watch_tick_ms) == 0)
		h->watch_armed = 1;
}

/* The stall watchdog. After one of libcurl 7.88's own allocations fails, a
 * transfer can be left with neither a timer nor a socket watch: its
 * CURLOPT_TIMEOUT never fires and the cycle would wait forever. Once a second
 * while transfers exist: let libcurl run its due timers, then fail every
 * transfer still running WATCH_GRACE_MS past its own timeout (libcurl, when
 * healthy, has failed it by then). */
static void
on_watch(void *arg)
{
	struct xts_http *h = arg;
	struct xts_http_xfer *x;
	int running;

	h->watch_armed = 0;
	retry_pending(h);
	rearm_after_error(h, curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running));
	check_done(h);
	for (;;) {
		long long now = xts_now_ms();

		for (x = h->all; x != NULL; x = x->anext)
			if (x->running && now > x->deadline)
				break;
		if (x == NULL)
			break;
		h->st.stalls++;
		xts_log_rl(XTS_LOG_ERR, 10000, 5,
			   "http: %s: no progress from libcurl %ld ms past the transfer's %ld ms timeout; "
			   "failing it client-request-id=%s",
			   x->host->key, h->watch_grace_ms, x->timeout_ms, x->creqid);
		/* the callback may submit or cancel: rescan from the head */
		complete(h, x, CURLE_OPERATION_TIMEDOUT, "stalled inside libcurl past the transfer's timeout");
	}
	if ((h->active > 0 || h->npend > 0) && !h->watch_armed &&
	    xts_ev_timer_start(h->watch, h->npend > 0 ? 50 : h->watch_tick_ms) == 0)
		h->watch_armed = 1;
}

/* When curl_multi_socket_action fails (out of memory), libcurl skips its timer
 * update: the transfer waits for a timer or a socket watch that never comes.
 * Re-arm ourselves from curl_multi_timeout, at most a second away, so libcurl
 * gets to retry (and its own per-transfer timeouts still apply). */
static void
rearm_after_error(struct xts_http *h, CURLMcode mc)
{
	long ms = -1;

	if (mc == CURLM_OK)
		return;
	if (curl_multi_timeout(h->multi, &ms) != CURLM_OK || ms < 0 || ms > 1000)
		ms = 1000;
	if (xts_ev_timer_start(h->timer, ms) != 0)
		xts_log_rl(XTS_LOG_ERR, 10000, 5, "http: cannot re-arm the transfer timer");
}

static void
on_timer(void *arg)
{
	struct xts_http *h = arg;
	int running;

	rearm_after_error(h, curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running));
	check_done(h);
}

static void
on_io(void *arg, int fd, int events)
{
	struct xts_http *h = arg;
	int running, flags = 0;

	if (events & XTS_EV_READ)
		flags |= CURL_CSELECT_IN;
	if (events & XTS_EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (events & XTS_EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	rearm_after_error(h, curl_multi_socket_action(h->multi, fd, flags, &running));
	check_done(h);
}

/* Retry the socket watches that failed; those that still fail stay. */
static void
retry_pending(struct xts_http *h)
{
	int i, n = 0;

	for (i = 0; i < h->npend; i++) {
		if (xts_ev_io_watch(h->ev, h->pend[i].fd, h->pend[i].ev, on_io, h) != 0)
			h->pend[n++] = h->pend[i];
	}
	h->npend = n;
}

static int
sock_cb(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
	struct xts_http *h = ud;
	int ev = 0, i;

	(void)easy;
	(void)sockp;
	switch (what) {
	case CURL_POLL_IN:
		ev = XTS_EV_READ;
		break;
	case CURL_POLL_OUT:
		ev = XTS_EV_WRITE;
		break;
	case CURL_POLL_INOUT:
		ev = XTS_EV_READ | XTS_EV_WRITE;
		break;
	default: /* CURL_POLL_REMOVE */
		ev = 0;
		break;
	}
	for (i = 0; i < h->npend; i++) {
		if (h->pend[i].fd == (int)s) {
			h->pend[i] = h->pend[--h->npend];
			break;
		}
	}
	if (xts_ev_io_watch(h->ev, (int)s, ev, on_io, h) == 0)
		return 0;
	/* Out of memory for the watch. Returning -1 would abort libcurl's
	 * call and leave the multi handle in an undefined state (libcurl 7.88
	 * then faults); keep the wish and set the watch up a moment later
	 * (the poll is level-triggered: no event is lost meanwhile). */
	if (h->npend == PEND_MAX)
		return -1;
	h->pend[h->npend].fd = (int)s;
	h->pend[h->npend].ev = ev;
	h->npend++;
	xts_log_rl(XTS_LOG_WARNING, 10000, 5, "http: cannot watch socket %d yet (out of memory); retrying", (int)s);
	if (!h->watch_armed && xts_ev_timer_start(h->watch, 50) == 0)
		h->watch_armed = 1;
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *ud)
{
	struct xts_http *h = ud;

	(void)multi;
	if (timeout_ms < 0) {
		xts_ev_timer_stop(h->timer);
		return 0;
	}
	return xts_ev_timer_start(h->timer, timeout_ms) == 0 ? 0 : -1;
}

int
xts_http_new(struct xts_evloop *ev, struct xts_http **out)
{
	struct xts_http *h;
	int ret;

	ret = xts_mem_install();
	if (ret != 0)
		return ret;
	h = xts_calloc(1, sizeof(*h));
	if (h == NULL)
		return XTS_ENOMEM;
	h->ev = ev;
	h->watch_tick_ms = WATCH_TICK_MS;
	h->watch_grace_ms = WATCH_GRACE_MS;
	h->easy_deadline_ms = XTS_HTTP_EASY_DEADLINE_MS;
	ret = xts_ev_timer_new(ev, on_timer, h, &h->timer);
	if (ret != 0)
		goto fail;
	ret = xts_ev_timer_new(ev, on_watch, h, &h->watch);
	if (ret != 0)
		goto fail;
	h->multi = curl_multi_init();
	if (h->multi == NULL) {
		ret = XTS_ENOMEM;
		goto fail;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	*out = h;
	return 0;
fail:
	xts_ev_timer_free(h->watch);
	xts_ev_timer_free(h->timer);
	xts_free(h);
	return ret;
}

static int
xfer_setup(struct xts_http_xfer *x, const struct xts_http_req *req)
{
	CURL *e;
	char line[80];
	const char *const *hp;
	struct curl_slist *n;

	e = curl_easy_init();
	if (e == NULL)
		return XTS_ENOMEM;
	x->easy = e;
	for (hp = req->headers; hp != NULL && *hp != NULL; hp++) {
		n = curl_slist_append(x->hdrs, *hp);
		if (n == NULL)
			return XTS_ENOMEM;
		x->hdrs = n;
	}
	snprintf(line, sizeof(line), "client-request-id: %s", x->creqid);
	n = curl_slist_append(x->hdrs, line);
	if (n == NULL)
		return XTS_ENOMEM;
	x->hdrs = n;
	n = curl_slist_append(x->hdrs, "Expect:");
	if (n == NULL)
		return XTS_ENOMEM;
	x->hdrs = n;

	if (curl_easy_setopt(e, CURLOPT_URL, x->url) != CURLE_OK)
		return XTS_EINVAL;
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "xtsync/0.1");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	if (strchr(x->url, '?') != NULL) {
		curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_cb);
		curl_easy_setopt(e, CURLOPT_DEBUGDATA, x);
		curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	}
	if (x->ca_file != NULL) {
		struct cablob *cb = cablob_get(x->h, x->ca_file);
		struct curl_blob blob;

		if (cb == NULL)
			return XTS_ETLS;
		blob.data = cb->pem.p;
		blob.len = cb->pem.len;
		blob.flags = CURL_BLOB_NOCOPY; /* lives as long as the engine */
		if (curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob) != CURLE_OK)
			return XTS_ETLS;
	}
	if (strcmp(req->method, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "DELETE") == 0 && req->body == NULL) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(req->body ? req->body_len : 0));
		if (curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "") != CURLE_OK)
			return XTS_ENOMEM;
		if (strcmp(req->method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	}
	return 0;
}

static void
pump(struct xts_http *h, struct host *ho)
{
	while (ho->qhead != NULL && ho->in_flight < ho->qhead->cap) {
		struct xts_http_xfer *x = ho->qhead;

		ho->qhead = x->qnext;
		if (ho->qhead == NULL)
			ho->qtail = NULL;
		x->qnext = NULL;
		if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
			/* Cannot start: report it from the loop like any failure
			 * would be; simplest honest path is an immediate error. */
			struct xts_http_resp r;

			memset(&r, 0, sizeof(r));
			r.err = XTS_EINTERNAL;
			r.body = "";
			r.client_request_id = x->creqid;
			r.retry_after_ms = -1;
			r.throttle_pct = -1;
			r.err_detail = "curl_multi_add_handle failed";
			h->active--;
			x->cb(x->arg, &r);
			xfer_free(x);
			continue;
		}
		started(h, x);
		ho->in_flight++;
		if (ho->in_flight > h->st.peak_in_flight)
			h->st.peak_in_flight = ho->in_flight;
	}
}

int
xts_http_submit(struct xts_http *h, const struct xts_http_req *req, xts_http_cb cb, void *arg,
		struct xts_http_xfer **out)
{
	struct xts_http_xfer *x;
	int ret;

	if (req == NULL || req->url == NULL || req->method == NULL || cb == NULL)
		return XTS_EINVAL;
	ret = xts_http_url_check(req->url);
	if (ret != 0)
		return ret;
	x = xts_calloc(1, sizeof(*x));
	if (x == NULL)
		return XTS_ENOMEM;
	x->h = h;
	x->cb = cb;
	x->arg = arg;
	x->quiet = req->quiet;
	x->max_body = req->max_body ? req->max_body : XTS_HTTP_MAX_BODY_DEFAULT;
	x->cap = req->max_in_flight > 0 ? req->max_in_flight : XTS_HTTP_MAX_IN_FLIGHT_DEFAULT;
	x->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 120000L;
	ret = xts_guid_new(x->creqid);
	if (ret != 0)
		goto fail;
	x->url = xts_strdup(req->url);
	if (x->url == NULL) {
		ret = XTS_ENOMEM;
		goto fail;
	}
	if (req->ca_file != NULL && req->ca_file[0] != '\0') {
		x->ca_file = xts_strdup(req->ca_file);
		if (x->ca_file == NULL) {
			ret = XTS_ENOMEM;
			goto fail;
		}
	}
	x->host = host_get(h, req->url);
	if (x->host == NULL) {
		ret = XTS_ENOMEM;
		goto fail;
	}
	ret = xfer_setup(x, req);
	if (ret != 0)
		goto fail;
	if (x->host->qhead == NULL && x->host->in_flight < x->cap) {
		/* Start now; a refusal is returned, not called back. */
		if (curl_multi_add_handle(h->multi, x->easy) != CURLM_OK) {
			ret = XTS_ENOMEM;
			goto fail;
		}
		started(h, x);
		x->host->in_flight++;
		if (x->host->in_flight > h->st.peak_in_flight)
			h->st.peak_in_flight = x->host->in_flight;
	} else {
		if (x->host->qtail != NULL)
			x->host->qtail->qnext = x;
		else
			x->host->qhead = x;
		x->host->qtail = x;
	}
	x->anext = h->all;
	if (h->all != NULL)
		h->all->aprev = x;
	h->all = x;
	h->active++;
	if (out != NULL)
		*out = x;
	return 0;
fail:
	xfer_free(x);
	return ret;
}

int
xts_http_submit_easy(struct xts_http *h, void *easy, xts_http_easy_cb cb, void *arg,
		     struct xts_http_xfer **out)
{
	struct xts_http_xfer *x;

	if (h == NULL || easy == NULL || cb == NULL)
		return XTS_EINVAL;
	x = xts_calloc(1, sizeof(*x));
	if (x == NULL)
		return XTS_ENOMEM;
	x->h = h;
	x->rcb = cb;
	x->arg = arg;
	x->cap = 1 << 30;
	x->timeout_ms = h->easy_deadline_ms;
	x->host = host_by_key(h, "caller-built");
	if (x->host == NULL) {
		xts_free(x);
		return XTS_ENOMEM;
	}
	curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(h->multi, easy) != CURLM_OK) {
		xts_free(x);
		return XTS_ENOMEM;
	}
	x->easy = easy;
	started(h, x);
	x->host->in_flight++;
	x->anext = h->all;
	if (h->all != NULL)
		h->all->aprev = x;
	h->all = x;
	h->active++;
	if (out != NULL)
		*out = x;
	return 0;
}

void
xts_http_cancel(struct xts_http_xfer *x)
{
	struct xts_http *h;
	struct host *ho;
	struct xts_http_xfer **pp;

	if (x == NULL)
		return;
	h = x->h;
	ho = x->host;
	if (x->running) {
		curl_multi_remove_handle(h->multi, x->easy);
		ho->in_flight--;
	} else {
		for (pp = &ho->qhead; *pp != NULL; pp = &(*pp)->qnext) {
			if (*pp == x) {
				*pp = x->qnext;
				break;
			}
		}
		ho->qtail = NULL;
		for (pp = &ho->qhead; *pp != NULL; pp = &(*pp)->qnext)
			ho->qtail = *pp;
	}
	h->active--;
	xfer_free(x);
	pump(h, ho);
}

void
xts_http_set_watchdog(struct xts_http *h, long tick_ms, long grace_ms, long easy_deadline_ms)
{
	if (tick_ms > 0)
		h->watch_tick_ms = tick_ms;
	if (grace_ms >= 0)
		h->watch_grace_ms = grace_ms;
	if (easy_deadline_ms > 0)
		h->easy_deadline_ms = easy_deadline_ms;
}

void
xts_http_get_stats(const struct xts_http *h, struct xts_http_stats *out)
{
	*out = h->st;
}

struct xts_evloop *
xts_http_evloop(struct xts_http *h)
{
	return h->ev;
}

int
xts_http_active(const struct xts_http *h)
{
	return h->active;
}

void
xts_http_free(struct xts_http *h)
{
	struct host *ho, *next;

	if (h == NULL)
		return;
	while (h->all != NULL) {
		struct xts_http_xfer *x = h->all;

		if (x->running)
			curl_multi_remove_handle(h->multi, x->easy);
		xfer_free(x);
	}
	while (h->cablobs != NULL) {
		struct cablob *c = h->cablobs;

		h->cablobs = c->next;
		xts_free(c->path);
		xts_buf_free(&c->pem);
		xts_free(c);
	}
	for (ho = h->hosts; ho != NULL; ho = next) {
		next = ho->next;
		xts_free(ho->key);
		xts_free(ho);
	}
	curl_multi_cleanup(h->multi);
	xts_ev_timer_free(h->watch);
	xts_ev_timer_free(h->timer);
	xts_free(h);
}
