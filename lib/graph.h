/* SPDX-License-Identifier: MIT */
/* Microsoft Graph client: authenticated requests with Graph error parsing,
 * retries (429 Retry-After, 5xx back-off, one token refresh on 401) under the
 * throttle governor; delta reading (graph_delta.c) and the $batch writer
 * (graph_batch.c). It does not decide anything about users: the engine does,
 * and the engine stores delta links. All calls are non-blocking; callbacks run
 * on the event loop, never from inside the call that queued them. */
#ifndef XTS_GRAPH_H
#define XTS_GRAPH_H

#include <stddef.h>

#include <jansson.h>

#include "auth.h"
#include "evloop.h"
#include "http.h"
#include "throttle.h"

/* ---- process context ---------------------------------------------------- */

struct xts_graph_ctx;

struct xts_graph_opts {
	double time_scale;   /* multiplies throttle budgets; 0 = $XTSYNC_TIME_SCALE, else 1.0 */
	size_t max_body;     /* response cap; 0 = XTS_HTTP_MAX_BODY_DEFAULT */
	int max_attempts;    /* per request for 5xx/transport (4x for 429); 0 = 8 */
	long long backoff_min_ms; /* 0 = 1000 */
	long long backoff_max_ms; /* 0 = 60000 */
	long request_timeout_ms;  /* one HTTP exchange; 0 = $XTSYNC_REQUEST_TIMEOUT_MS, else 120000 */
};

/* One per process: owns the HTTP engine, the token cache and the governors
 * (one per (client_id, tenant_id), shared by every xts_graph on that pair).
 * opts may be NULL. ev is borrowed and must outlive the context. */
int xts_graph_ctx_new(struct xts_evloop *ev, const struct xts_graph_opts *opts,
		      struct xts_graph_ctx **out);
/* Free after every xts_graph of it was freed; cancels what is left. */
void xts_graph_ctx_free(struct xts_graph_ctx *ctx);
struct xts_http *xts_graph_ctx_http(struct xts_graph_ctx *ctx);
struct xts_auth *xts_graph_ctx_auth(struct xts_graph_ctx *ctx);

/* ---- one tenant --------------------------------------------------------- */

struct xts_graph;

/* A client for tenant tc (deep-copied; secrets wiped on free). Returns 0,
 * XTS_EINVAL (no credential, a URL that is not https:// nor loopback http://),
 * XTS_ENOMEM. */
int xts_graph_new(struct xts_graph_ctx *ctx, const struct xts_tenant_conn *tc,
		  struct xts_graph **out);
/* Cancels every pending request of g (no callbacks fire). Free g's pagers,
 * batch writers and policy checks first. Safe from inside a callback of one
 * of g's requests. */
void xts_graph_free(struct xts_graph *g);
const struct xts_tenant_conn *xts_graph_conn(const struct xts_graph *g);
struct xts_throttle *xts_graph_throttle(struct xts_graph *g);

/* A Graph (or token endpoint) error, parsed from the body. */
struct xts_graph_error {
	long status;                  /* HTTP status, 0 for transport errors */
	char code[96];                /* error.code, e.g. "Request_ResourceNotFound" */
	char message[512];            /* error.message (never contains a secret) */
	char request_id[64];          /* from innerError or the header */
	char client_request_id[64];   /* the GUID we sent */
};

/* Parse Graph's {"error": {"code", "message", "innerError": {...}}} shape (or
 * the token endpoint's {"error", "error_description"}) from body into e
 * (status set by the caller). Returns 0 when something was found,
 * XTS_EPARSE otherwise (e->code is then "" and message a body excerpt). */
int xts_graph_error_parse(const char *body, size_t len, struct xts_graph_error *e);

/* Map an HTTP status to XTS_E*: 2xx 0, 401 XTS_EAUTH, 403 XTS_EPERM,
 * 404 XTS_ENOENT, 409 XTS_EEXIST, 410 XTS_EGONE, 413 XTS_ETOOBIG,
 * 429 XTS_ETHROTTLED, 5xx XTS_ESERVER, other XTS_EGRAPH. */
int xts_graph_status_err(long status);

/* Outcome of one request; everything borrowed for the callback's duration. */
struct xts_graph_result {
	int err;                          /* 0 or XTS_E* */
	long status;                      /* final HTTP status (0: none) */
	json_t *body;                     /* parsed JSON body or NULL (borrowed) */
	const struct xts_graph_error *gerr; /* non-NULL when err != 0 */
	const char *location;             /* Location header or NULL */
};
typedef void (*xts_graph_cb)(void *arg, const struct xts_graph_result *res);

struct xts_graph_req;

enum {
	XTS_GRAPH_NO_RETRY = 1,   /* hand 429/5xx back instead of retrying */
	XTS_GRAPH_NO_THROTTLE = 2, /* bypass the governor budget (Retry-After gate still holds) */
	/* an advanced query (concepts/aad-advanced-queries.md): sends
	 * "ConsistencyLevel: eventual"; the caller puts $count=true in the URL */
	XTS_GRAPH_ADVANCED = 4
};

/* Send one request. url: relative to graph_endpoint ("/v1.0/users/..."), or
 * absolute on the same origin (else XTS_EFOREIGN). body: borrowed, serialised
 * at once (NULL for none). Waits for governor budget, gets a token, retries
 * 429 (after Retry-After), 500/502/503/504 and transport errors with
 * exponential back-off + jitter up to max_attempts, refreshes the token once
 * on 401. cb fires exactly once unless canceled. *out may be NULL. Returns 0
 * or XTS_EINVAL/XTS_EFOREIGN/XTS_ENOMEM (cb then never fires). */
int xts_graph_request(struct xts_graph *g, const char *method, const char *url, json_t *body,
		      unsigned flags, xts_graph_cb cb, void *arg, struct xts_graph_req **out);
void xts_graph_cancel(struct xts_graph_req *r);

/* 0 when url could be sent by xts_graph_request (relative, or absolute on
 * graph_endpoint's origin), XTS_EFOREIGN when it is on another origin (a
 * link stored before graph_endpoint changed), XTS_EINVAL when NULL. */
int xts_graph_link_check(struct xts_graph *g, const char *url);

/* ---- paging and delta (graph_delta.c) ----------------------------------- */

enum {
	XTS_PAGE_CONTINUE = 0,
	XTS_PAGE_PAUSE = 1, /* stop until xts_pager_resume() */
	/* a negative XTS_E* aborts: done fires with that error */
};

/* One page: value is the page's "value" array (borrowed, valid during the
 * call; json_incref to keep). last = 1 on the page carrying the deltaLink (or
 * the final page of a plain listing). Return XTS_PAGE_CONTINUE, _PAUSE or an
 * XTS_E* to abort. */
typedef int (*xts_page_cb)(void *arg, json_t *value, int last);

/* End of the walk. err 0: delta_link is the final @odata.deltaLink (borrowed;
 * NULL for a plain listing) for the engine to store once its decisions are
 * durable. XTS_EGONE: the delta token expired/reset — start a full resync
 * with delta_link NULL. XTS_EFOREIGN: a next/delta link pointed off the
 * graph_endpoint origin (nothing was sent there). Not called after cancel. */
typedef void (*xts_pager_done_cb)(void *arg, int err, const char *delta_link,
				  const struct xts_graph_error *gerr);

struct xts_pager;

/* Walk users/delta. select: comma-separated attribute list passed as $select
 * (NULL = Graph's default set). delta_link: the stored link of the previous
 * round, or NULL for an initial round. The next page is requested only after
 * page_cb returned CONTINUE (or resume was called). Returns 0 or XTS_E*
 * (callbacks then never fire). */
int xts_delta_users_start(struct xts_graph *g, const char *select, const char *delta_link,
			  xts_page_cb page_cb, xts_pager_done_cb done_cb, void *arg,
			  struct xts_pager **out);

/* Any paged GET (e.g. "/v1.0/groups/{id}/members?$select=id"), following
 * @odata.nextLink; same callbacks, delta_link NULL at the end. */
int xts_pager_start(struct xts_graph *g, const char *url, xts_page_cb page_cb,
		    xts_pager_done_cb done_cb, void *arg, struct xts_pager **out);

/* Continue after a PAUSE (no-op otherwise; the next page is fetched from the
 * loop, not synchronously). */
void xts_pager_resume(struct xts_pager *p);
/* Stop and free; no further callbacks. */
void xts_pager_cancel(struct xts_pager *p);

/* Group membership changes from groups/delta with members@delta. */
struct xts_member_event {
	const char *group_id;  /* borrowed */
	const char *member_id; /* borrowed; NULL: the group itself was removed
				* ("@removed" on the group, removed = 1) */
	const char *odata_type;/* "#microsoft.graph.user", ... or NULL */
	int removed;           /* 0 added/present, 1 removed */
};
/* events: n events of one page (borrowed, valid during the call). Same return
 * values as xts_page_cb. */
typedef int (*xts_member_cb)(void *arg, const struct xts_member_event *events, size_t n,
			     int last);

/* Walk groups/delta restricted to group_ids (n of them, each a GUID; sent as
 * $filter=id eq '...' or ..., at most 50 per walk) with $select=members
 * (direct members only). delta_link NULL for initial. Returns 0 or XTS_E*
 * (XTS_EINVAL: n == 0 or > 50, a non-GUID id). */
int xts_delta_groups_start(struct xts_graph *g, const char *const *group_ids, size_t n,
			   const char *delta_link, xts_member_cb member_cb,
			   xts_pager_done_cb done_cb, void *arg, struct xts_pager **out);

/* Whether a delta entry (a user, a group, a member) is removed: it carries
 * an "@removed" object ("Removed instances are represented by their id and
 * an @removed object", concepts/delta-query-overview.md). Any other value
 * (null, false: an emulator's serialised model) is not a removal. */
int xts_graph_is_removed(const json_t *entry);
/* Whether a member's "@odata.type" names a user: "#microsoft.graph.user" as
 * Graph writes it, also without the "#" or in another case (the wrong guess
 * would take every member out of scope). */
int xts_graph_is_user_type(const char *odata_type);

/* Parsers shared with the fuzzer. From a delta/list page: *value (borrowed
 * from page), *next and *delta (borrowed strings or NULL). 0 or XTS_EPARSE. */
int xts_graph_page_parse(json_t *page, json_t **value, const char **next, const char **delta);
/* Member events of one groups/delta page: calls cb once with all events.
 * 0, the callback's value, or XTS_EPARSE/XTS_ENOMEM. */
int xts_graph_members_parse(json_t *value, xts_member_cb cb, void *arg, int last);

/* ---- writing: the $batch writer (graph_batch.c) ------------------------- */

struct xts_batch;
struct xts_batch_op;

/* Per-operation outcome (borrowed for the call). err 0 on 2xx; XTS_EGRAPH &
 * co. with gerr for a 4xx handed back (not retried); XTS_ETHROTTLED or
 * XTS_ESERVER only after the attempts ran out. (Freeing the writer cancels:
 * no callback fires then.) */
struct xts_batch_result {
	int err;
	long status;
	json_t *body;                      /* sub-response body or NULL */
	const struct xts_graph_error *gerr;/* when err != 0 */
	const char *user_id;               /* xts_batch_create_user: the new id (also on a failed patch) */
	int step;                          /* create_user: 1 invitation, 2 patch */
};
typedef void (*xts_batch_cb)(void *arg, const struct xts_batch_result *r);

/* A writer to g's tenant: packs operations into $batch requests of up to 20
 * sub-requests, each admitted by the governor on its own. Returns 0 or
 * XTS_ENOMEM. */
int xts_batch_new(struct xts_graph *g, struct xts_batch **out);
/* Cancel everything queued or in flight (no callbacks) and free. */
void xts_batch_free(struct xts_batch *b);

/* Queue one operation. method/url (relative, "/users/{id}" without the
 * version: $batch URLs are relative to /v1.0) are copied; body is borrowed
 * and json_incref'd (NULL for none). depends_on: an earlier op of this writer
 * that must succeed first (sent in the same batch with dependsOn when both are
 * queued together; if it fails this op fails with status 424). cb fires once.
 * *out may be NULL; an op handle is valid until its callback returned.
 * Sending happens from the loop (a zero-delay timer) so several adds pack
 * into one batch. Returns 0 or XTS_EINVAL/XTS_ENOMEM. */
int xts_batch_add(struct xts_batch *b, const char *method, const char *url, json_t *body,
		  struct xts_batch_op *depends_on, xts_batch_cb cb, void *arg,
		  struct xts_batch_op **out);

/* Create a B2B user: POST /invitations with invitation (borrowed; e.g.
 * invitedUserEmailAddress, inviteRedirectUrl, invitedUserType "Member",
 * sendInvitationMessage false), then — because a $batch sub-request cannot
 * use an id returned by another — PATCH /users/{invitedUser.id} with patch
 * (borrowed; NULL to skip) in a later batch. cb fires once: err 0 when both
 * steps succeeded (r->user_id set); on a failed invitation step = 1; on a
 * failed patch step = 2 and user_id is set (the user exists: record it and
 * retry the update later). */
int xts_batch_create_user(struct xts_batch *b, json_t *invitation, json_t *patch,
			  xts_batch_cb cb, void *arg);

/* An object created or restored a moment ago (id, a GUID): for the next
 * XTS_BATCH_FRESH_MS a PATCH, PUT or GET that names it (in its URL or its
 * "@odata.id") and is answered 404 is retried with back-off, not reported:
 * Entra replicates a write to its other replicas after answering it, so
 * "a newly created object" may "return a Not Found" for a while (Microsoft
 * Entra identity blog, "Designing for Eventual Consistency for Microsoft
 * Entra"). Invited users are noted by xts_batch_create_user itself. */
#define XTS_BATCH_FRESH_MS 120000
void xts_batch_note_fresh(struct xts_batch *b, const char *id);

/* Send nothing more: from the loop, every operation queued and every one
 * added later ends with XTS_ECANCELED (status 0; a create_user whose
 * invitation succeeded ends at step 2 with its user_id). Envelopes already
 * sent finish as usual. One-way. */
void xts_batch_stop(struct xts_batch *b);
/* Operations queued or in flight. */
size_t xts_batch_pending(const struct xts_batch *b);
/* Call cb(arg) from the loop each time pending drops to 0 (NULL to clear). */
void xts_batch_on_idle(struct xts_batch *b, void (*cb)(void *arg), void *arg);
/* Call begin(arg) before the writer hands over a group of answers (the
 * sub-responses of one $batch answer, the answer to one request without
 * $batch, the operations a stop or a failed dependency ends) and end(arg)
 * after the last of them, before anything more is sent: the engine records
 * a group's outcomes in one transaction. NULLs to clear. */
void xts_batch_on_answers(struct xts_batch *b, void (*begin)(void *arg), void (*end)(void *arg),
			  void *arg);

/* Parse a $batch response body and call fn for each sub-response (in the
 * order returned): id, status, its body (borrowed), retry_after_ms (-1) and
 * its own x-ms-throttle-limit-percentage (limit_pct, -1 absent).
 * 0, or XTS_EPARSE. For the fuzzer and the writer. */
int xts_batch_parse_response(json_t *resp,
			     void (*fn)(void *arg, const char *id, long status, json_t *body,
					long long retry_after_ms, double limit_pct),
			     void *arg);

#endif
