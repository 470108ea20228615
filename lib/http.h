/* SPDX-License-Identifier: MIT */
/* Non-blocking HTTP engine: libcurl's multi-socket API driven by evloop.h,
 * with keep-alive/HTTP/2 reuse, a per-host cap on requests in flight, TLS
 * always verified, no redirects, and a response size cap. It knows nothing of
 * Graph, tokens or retries (graph.c adds those). */
#ifndef XTS_HTTP_H
#define XTS_HTTP_H

#include <stddef.h>

#include "evloop.h"

#define XTS_HTTP_MAX_BODY_DEFAULT (32u * 1024u * 1024u)
#define XTS_HTTP_MAX_IN_FLIGHT_DEFAULT 8

struct xts_http;
struct xts_http_xfer;

struct xts_http_req {
	const char *method;          /* "GET", "POST", "PATCH", "PUT", "DELETE" */
	const char *url;             /* absolute; http:// only for loopback hosts */
	const char *const *headers;  /* NULL-terminated "Name: value" list, or NULL */
	const char *body;            /* request body (copied), or NULL */
	size_t body_len;
	const char *ca_file;         /* extra trust anchor (PEM), added to the system store; or NULL */
	size_t max_body;             /* response cap in bytes; 0 = XTS_HTTP_MAX_BODY_DEFAULT */
	int max_in_flight;           /* per-host cap; 0 = XTS_HTTP_MAX_IN_FLIGHT_DEFAULT */
	long timeout_ms;             /* whole transfer; 0 = 120 s */
	int quiet;                   /* 1: the caller logs failures itself */
};

/* Everything here is borrowed: valid only during the completion callback. */
struct xts_http_resp {
	int err;                     /* 0, or XTS_EHTTP/ETLS/ETIMEDOUT/ETOOBIG/EINVAL/ENOMEM/ECANCELED */
	long status;                 /* HTTP status, 0 when no response */
	const char *body;            /* NUL-terminated (may contain NULs), never NULL */
	size_t body_len;
	const char *content_type;    /* header values or NULL */
	const char *location;
	const char *request_id;
	const char *client_request_id; /* the GUID we sent */
	const char *throttle_scope;  /* x-ms-throttle-scope */
	const char *throttle_info;   /* x-ms-throttle-information */
	long long retry_after_ms;    /* Retry-After (seconds or HTTP date) in ms; -1 absent */
	double throttle_pct;         /* x-ms-throttle-limit-percentage; -1 absent */
	const char *err_detail;      /* libcurl's message for a transport error, or "" */
};

/* Completion: exactly once per submitted request unless canceled; always from
 * the event loop, never from inside xts_http_submit. */
typedef void (*xts_http_cb)(void *arg, const struct xts_http_resp *resp);

/* Create the engine on ev (borrowed; must outlive it). Calls
 * curl_global_init via xts_mem_install once. Returns 0 or XTS_E*. */
int xts_http_new(struct xts_evloop *ev, struct xts_http **out);

/* Cancel every transfer (their callbacks do not fire) and free. NULL is fine.
 * Not from inside one of h's callbacks. */
void xts_http_free(struct xts_http *h);

/* Queue req (all strings are copied). When the host is at its in-flight cap
 * the request waits in a FIFO. *out (may be NULL) identifies the transfer for
 * xts_http_cancel until the callback has run. Returns 0 or XTS_EINVAL (bad or
 * non-loopback http:// URL), XTS_ETLS (ca_file unreadable or without a PEM
 * certificate), XTS_ENOMEM. Never blocks on the network (the first use of a
 * ca_file reads it and the system CA bundle from disk, once). */
int xts_http_submit(struct xts_http *h, const struct xts_http_req *req, xts_http_cb cb, void *arg,
		    struct xts_http_xfer **out);

/* Completion of a caller-built transfer: easy is borrowed (the engine cleans
 * it up after the callback), curlcode is its CURLcode. */
typedef void (*xts_http_easy_cb)(void *arg, void *easy, int curlcode);

/* Run a caller-built libcurl easy handle (e.g. an SMTP send) on the engine's
 * loop. Ownership of easy passes to the engine: it is cleaned up after cb, or
 * by xts_http_free/xts_http_cancel (then cb does not fire; the caller frees
 * its own state). The caller must not set CURLOPT_PRIVATE. No per-host cap,
 * no size cap: the caller's options apply as set, and the caller sets its own
 * CURLOPT_TIMEOUT_MS (below XTS_HTTP_EASY_DEADLINE_MS: past it the stall
 * watchdog fails the transfer with CURLE_OPERATION_TIMEDOUT). 0 or
 * XTS_EINVAL/ENOMEM (then easy is still the caller's). */
#define XTS_HTTP_EASY_DEADLINE_MS 600000L
int xts_http_submit_easy(struct xts_http *h, void *easy, xts_http_easy_cb cb, void *arg,
			 struct xts_http_xfer **out);

/* Abort a queued or running transfer; its callback will not fire. Not for a
 * transfer whose callback is running (it is freed when the callback returns). */
void xts_http_cancel(struct xts_http_xfer *x);

/* Tune the stall watchdog, which fails a transfer libcurl has lost track of
 * (see http.c): it ticks every tick_ms (default 1000) and fails a transfer
 * still running grace_ms (default 5000) past its timeout; a caller-built
 * transfer's timeout counts as easy_deadline_ms (default
 * XTS_HTTP_EASY_DEADLINE_MS). A value <= 0 (grace < 0) keeps the current one.
 * Applies to transfers started afterwards. For tests. */
void xts_http_set_watchdog(struct xts_http *h, long tick_ms, long grace_ms, long easy_deadline_ms);

/* The loop h runs on (borrowed). */
struct xts_evloop *xts_http_evloop(struct xts_http *h);

/* Requests queued or in flight (for tests and shutdown). */
int xts_http_active(const struct xts_http *h);

/* Counters since xts_http_new (for status, tests and benchmarks). */
struct xts_http_stats {
	unsigned long long requests;    /* completed transfers */
	unsigned long long connects;    /* new connections curl had to open */
	unsigned long long failures;    /* transfers ending in a transport error */
	unsigned long long stalls;      /* transfers the stall watchdog failed (libcurl lost them) */
	unsigned long long query_lost;  /* transfers failed because libcurl dropped the query */
	int peak_in_flight;             /* highest in-flight count seen on one host */
};
void xts_http_get_stats(const struct xts_http *h, struct xts_http_stats *out);

/* URL checks shared with graph.c. 0 when url is acceptable to send a token
 * to: https://, or http:// to 127.0.0.0/8, ::1 or localhost. XTS_EINVAL else. */
int xts_http_url_check(const char *url);

/* 0 when a and b have the same scheme, host and port (default ports filled
 * in, host compared case-insensitively); XTS_EFOREIGN when they differ;
 * XTS_EINVAL when either does not parse. */
int xts_http_same_origin(const char *a, const char *b);
/* A link a server gave (an @odata.nextLink) as an absolute URL on endpoint's
 * origin: a relative link is resolved against endpoint + base_path (OData:
 * against the service root), and a loopback host that names the endpoint's
 * loopback host another way (localhost, 127.0.0.1, [::1]; same scheme and
 * port) is rewritten to the endpoint's. *out is new (xts_free). 0,
 * XTS_EFOREIGN (another origin), XTS_EINVAL (not a URL), XTS_ENOMEM. */
int xts_http_link_resolve(const char *endpoint, const char *base_path, const char *link, char **out);

/* Parse a Retry-After value (delta-seconds or HTTP-date against now_wall_s)
 * into milliseconds; -1 when it does not parse. */
long long xts_http_parse_retry_after(const char *v, long long now_wall_s);
/* Parse an x-ms-throttle-limit-percentage value (the fraction of a limit in
 * use, 0.8-1.8 when Graph sends it); -1 when absent (NULL) or unparsable. */
double xts_http_parse_limit_pct(const char *v);

/* Fill out[37] with a random version-4 GUID (lower case). 0 or XTS_EIO. */
int xts_guid_new(char out[37]);

#endif
