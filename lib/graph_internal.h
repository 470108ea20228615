/* SPDX-License-Identifier: MIT */
/* Internals shared by graph.c, graph_delta.c, graph_batch.c and
 * policy_check.c: the client structure and small helpers. Not a public API;
 * nothing outside the graph area includes it. */
#ifndef XTS_GRAPH_INTERNAL_H
#define XTS_GRAPH_INTERNAL_H

#include "graph.h"

struct gov;
struct xts_graph_req;

struct xts_graph {
	struct xts_graph_ctx *ctx;
	struct xts_tenant_conn tc; /* deep copy; graph_endpoint without trailing '/' */
	struct gov *gov;
	struct xts_throttle *throttle;
	struct xts_graph_req *reqs; /* pending requests, freed with g */
	int no_batch; /* $batch refused (graph_batch.c): requests go one by one */
	int batch_400; /* envelopes answered 400 in a row (graph_batch.c) */
};

/* url relative to the endpoint (or absolute on it) to a new absolute string.
 * 0, XTS_EFOREIGN, XTS_EINVAL, XTS_ENOMEM. */
int xts_graph__abs_url(struct xts_graph *g, const char *url, char **out);
/* Back-off with jitter for the given attempt number (1-based). */
long long xts_graph__backoff_ms(struct xts_graph *g, int attempt);
/* Before asking for g's token again after a transient failure: the back-off,
 * or the token endpoint's Retry-After (xts_auth_wait_ms) if longer. */
long long xts_graph__token_delay_ms(struct xts_graph *g, int attempt);
int xts_graph__max_attempts(struct xts_graph *g);
/* Sends allowed for a request whose last answer was err: max_attempts, times
 * XTS_GRAPH_THROTTLED_TIMES for 429 (XTS_ETHROTTLED). */
#define XTS_GRAPH_THROTTLED_TIMES 4
int xts_graph__attempt_cap(struct xts_graph *g, int err);
struct xts_evloop *xts_graph__ev(struct xts_graph *g);
size_t xts_graph__max_body(struct xts_graph *g);

/* Graph's text (error code, message, request id) into dst[n]: cut, on one
 * line, control characters replaced (graph.c). */
void xts_graph__copy_str(char *dst, size_t n, const char *src);

#endif
