/* SPDX-License-Identifier: MIT */
/* Paged reads: users/delta and groups/delta (members@delta) and any listing
 * with @odata.nextLink (microsoft-graph-docs-contrib api-reference/v1.0/api/
 * user-delta.md, group-delta.md, concepts/delta-query-overview.md). One page
 * at a time: the next is requested only after the caller took the page.
 * Every link must stay on graph_endpoint's origin. It stores nothing: the
 * engine keeps the deltaLink. */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "graph.h"
#include "graph_internal.h"
#include "log.h"
#include "mem.h"
#include "text.h"

struct xts_pager {
	struct xts_graph *g;
	char *next;  /* absolute URL of the next page to fetch, or NULL */
	char *delta; /* final deltaLink once seen */
	xts_page_cb page_cb;
	xts_member_cb member_cb;
	xts_pager_done_cb done_cb;
	void *arg;
	struct xts_graph_req *req;
	struct xts_evtimer *timer;
	int paused;
	int in_cb;
	int canceled;
	int finished;
	unsigned pages;
	uint64_t *seen;   /* FNV-1a of every URL this walk requested: a repeat is a loop */
	size_t nseen, capseen;
};

static uint64_t
url_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* Record url as requested; XTS_EEXIST when this walk requested it before
 * (a nextLink that points back: the read would never end), XTS_ENOMEM. */
static int
seen_add(struct xts_pager *p, const char *url)
{
	uint64_t h = url_hash(url), *nv;
	size_t i;

	for (i = 0; i < p->nseen; i++)
		if (p->seen[i] == h)
			return XTS_EEXIST;
	if (p->nseen == p->capseen) {
		nv = xts_realloc(p->seen, (p->capseen ? p->capseen * 2 : 16) * sizeof(*nv));
		if (nv == NULL)
			return XTS_ENOMEM;
		p->seen = nv;
		p->capseen = p->capseen ? p->capseen * 2 : 16;
	}
	p->seen[p->nseen++] = h;
	return 0;
}

int
xts_graph_page_parse(json_t *page, json_t **value, const char **next, const char **delta)
{
	json_t *v;

	*value = NULL;
	*next = *delta = NULL;
	if (!json_is_object(page))
		return XTS_EPARSE;
	v = json_object_get(page, "value");
	if (!json_is_array(v))
		return XTS_EPARSE;
	*value = v;
	/* a null link is an absent one (Graph leaves the other out) */
	v = json_object_get(page, "@odata.nextLink");
	if (v != NULL && !json_is_string(v) && !json_is_null(v))
		return XTS_EPARSE;
	*next = json_string_value(v);
	v = json_object_get(page, "@odata.deltaLink");
	if (v != NULL && !json_is_string(v) && !json_is_null(v))
		return XTS_EPARSE;
	*delta = json_string_value(v);
	if (*next != NULL && *delta != NULL)
		return XTS_EPARSE; /* a page has one or the other */
	return 0;
}

int
xts_graph_is_removed(const json_t *entry)
{
	return json_is_object(json_object_get(entry, "@removed"));
}

int
xts_graph_is_user_type(const char *t)
{
	if (t == NULL)
		return 0;
	if (t[0] == '#')
		t++;
	return strcasecmp(t, "microsoft.graph.user") == 0;
}

/* Append one event; XTS_ENOMEM when the array cannot grow. */
static int
ev_push(struct xts_member_event **ev, size_t *n, size_t *cap, const char *gid, const char *mid,
	const char *type, int removed)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct xts_member_event *ne = xts_realloc(*ev, ncap * sizeof(**ev));

		if (ne == NULL)
			return XTS_ENOMEM;
		*ev = ne;
		*cap = ncap;
	}
	(*ev)[*n].group_id = gid;
	(*ev)[*n].member_id = mid;
	(*ev)[*n].odata_type = type;
	(*ev)[*n].removed = removed;
	(*n)++;
	return 0;
}

int
xts_graph_members_parse(json_t *value, xts_member_cb cb, void *arg, int last)
{
	struct xts_member_event *ev = NULL;
	size_t n = 0, cap = 0, i, j;
	json_t *grp, *m;
	int ret = 0;

	if (!json_is_array(value))
		return XTS_EPARSE;
	json_array_foreach(value, i, grp) {
		const char *gid = json_string_value(json_object_get(grp, "id"));
		json_t *members = json_object_get(grp, "members@delta");

		if (!json_is_object(grp) || gid == NULL) {
			ret = XTS_EPARSE;
			goto done;
		}
		/* "Removed instances are represented by their id and an @removed
		 * object" (concepts/delta-query-overview.md): a deleted group is
		 * one event without a member. */
		if (xts_graph_is_removed(grp)) {
			ret = ev_push(&ev, &n, &cap, gid, NULL, NULL, 1);
			if (ret != 0)
				goto done;
			continue;
		}
		if (members == NULL)
			continue;
		if (!json_is_array(members)) {
			ret = XTS_EPARSE;
			goto done;
		}
		json_array_foreach(members, j, m) {
			const char *mid = json_string_value(json_object_get(m, "id"));

			if (mid == NULL)
				continue; /* tolerate junk entries rather than lose the page */
			ret = ev_push(&ev, &n, &cap, gid, mid, json_string_value(json_object_get(m, "@odata.type")),
				      xts_graph_is_removed(m));
			if (ret != 0)
				goto done;
		}
	}
	ret = cb(arg, ev, n, last);
done:
	xts_free(ev);
	return ret;
}

static void
pager_free(struct xts_pager *p)
{
	if (p->req != NULL)
		xts_graph_cancel(p->req);
	xts_ev_timer_free(p->timer);
	xts_free(p->next);
	xts_free(p->delta);
	xts_free(p->seen);
	xts_free(p);
}

static void
done(struct xts_pager *p, int err, const struct xts_graph_error *ge)
{
	p->finished = 1;
	p->in_cb = 1;
	p->done_cb(p->arg, err, err == 0 ? p->delta : NULL, ge);
	p->in_cb = 0;
	pager_free(p);
}

static void fetch(struct xts_pager *p);

/* Delta tokens that can no longer be used: 410 Gone, or the documented
 * resync/sync-state error codes on other statuses. */
static int
is_gone(const struct xts_graph_result *res)
{
	const char *c;

	if (res->status == 410)
		return 1;
	if (res->gerr == NULL)
		return 0;
	c = res->gerr->code;
	return strcasecmp(c, "resyncRequired") == 0 || strcasecmp(c, "syncStateNotFound") == 0 ||
	       strcasecmp(c, "syncStateInvalid") == 0 || strcasecmp(c, "Request_InvalidSkipToken") == 0 ||
	       strcasecmp(c, "fullSyncRequired") == 0;
}

/* The link as an absolute URL on the endpoint (relative links resolved
 * against the service root, a loopback alias of the endpoint's host taken as
 * it), into *abs; or XTS_EFOREIGN / XTS_EINVAL (a malformed link) / ENOMEM. */
static int
check_link(struct xts_pager *p, const char *link, const char *what, char **abs)
{
	int ret = xts_http_link_resolve(p->g->tc.graph_endpoint, "/v1.0/", link, abs);

	/* Never print the link itself beyond its start: it may be long. */
	if (ret == XTS_EFOREIGN)
		xts_err("graph: %s: refusing %s that is not on %s (%.80s)", p->g->tc.name, what,
			p->g->tc.graph_endpoint, link);
	else if (ret == XTS_EINVAL)
		xts_err("graph: %s: refusing %s that is not a valid URL (%.80s)", p->g->tc.name, what,
			link);
	return ret;
}

static void
on_page(void *arg, const struct xts_graph_result *res)
{
	struct xts_pager *p = arg;
	struct xts_graph_error ge;
	json_t *value;
	const char *next, *delta;
	char *abs_next, *abs_delta;
	int ret, last;

	p->req = NULL;
	memset(&ge, 0, sizeof(ge));
	if (res->err != 0) {
		ret = is_gone(res) ? XTS_EGONE : res->err;
		if (ret == XTS_EGONE)
			xts_notice("graph: %s: delta token no longer valid (HTTP %ld %s): full resync needed",
				   p->g->tc.name, res->status, res->gerr ? res->gerr->code : "");
		done(p, ret, res->gerr);
		return;
	}
	ret = xts_graph_page_parse(res->body, &value, &next, &delta);
	if (ret != 0) {
		snprintf(ge.code, sizeof(ge.code), "InvalidPage");
		snprintf(ge.message, sizeof(ge.message), "page without a value array or with bad links");
		xts_err("graph: %s: page %u: %s", p->g->tc.name, p->pages + 1, ge.message);
		done(p, XTS_EPARSE, &ge);
		return;
	}
	abs_next = abs_delta = NULL;
	ret = next != NULL ? check_link(p, next, "an @odata.nextLink", &abs_next) : 0;
	if (ret == 0 && delta != NULL)
		ret = check_link(p, delta, "an @odata.deltaLink", &abs_delta);
	if (ret != 0) {
		xts_free(abs_next);
		if (ret == XTS_ENOMEM) {
			done(p, ret, NULL);
			return;
		}
		snprintf(ge.code, sizeof(ge.code), ret == XTS_EFOREIGN ? "ForeignLink" : "InvalidLink");
		snprintf(ge.message, sizeof(ge.message), ret == XTS_EFOREIGN ?
			 "a paging link points off the graph endpoint" : "a paging link is not a valid URL");
		done(p, ret == XTS_EFOREIGN ? XTS_EFOREIGN : XTS_EPARSE, &ge);
		return;
	}
	ret = abs_next != NULL ? seen_add(p, abs_next) : 0;
	if (ret != 0) {
		xts_free(abs_next);
		xts_free(abs_delta);
		if (ret == XTS_ENOMEM) {
			done(p, ret, NULL);
			return;
		}
		snprintf(ge.code, sizeof(ge.code), "PagingLoop");
		snprintf(ge.message, sizeof(ge.message), "an @odata.nextLink repeats a page already read "
			 "(page %u): the read would never end", p->pages + 1);
		xts_err("graph: %s: %s", p->g->tc.name, ge.message);
		done(p, XTS_EPARSE, &ge);
		return;
	}
	xts_free(p->next);
	p->next = abs_next;
	if (abs_delta != NULL) {
		xts_free(p->delta);
		p->delta = abs_delta;
	}
	p->pages++;
	last = next == NULL;
	p->in_cb = 1;
	if (p->member_cb != NULL)
		ret = xts_graph_members_parse(value, p->member_cb, p->arg, last);
	else
		ret = p->page_cb(p->arg, value, last);
	p->in_cb = 0;
	if (p->canceled) {
		pager_free(p);
		return;
	}
	if (ret < 0) {
		snprintf(ge.code, sizeof(ge.code), "%s", xts_errname(ret));
		snprintf(ge.message, sizeof(ge.message), "page handler stopped the read");
		done(p, ret, &ge);
		return;
	}
	if (ret == XTS_PAGE_PAUSE) {
		p->paused = 1;
		return;
	}
	fetch(p);
}

static void
fetch(struct xts_pager *p)
{
	int ret;

	if (p->next == NULL) {
		done(p, 0, NULL);
		return;
	}
	ret = xts_graph_request(p->g, "GET", p->next, NULL, 0, on_page, p, &p->req);
	if (ret != 0) {
		struct xts_graph_error ge;

		memset(&ge, 0, sizeof(ge));
		snprintf(ge.message, sizeof(ge.message), "cannot request the next page");
		done(p, ret, &ge);
	}
}

static void
on_resume(void *arg)
{
	fetch(arg);
}

void
xts_pager_resume(struct xts_pager *p)
{
	if (p == NULL || !p->paused || p->canceled)
		return;
	p->paused = 0;
	if (p->timer == NULL && xts_ev_timer_new(xts_http_evloop(xts_graph_ctx_http(p->g->ctx)),
						 on_resume, p, &p->timer) != 0) {
		fetch(p); /* cannot defer: fetch now (it only queues a request) */
		return;
	}
	if (xts_ev_timer_start(p->timer, 0) != 0)
		fetch(p);
}

void
xts_pager_cancel(struct xts_pager *p)
{
	if (p == NULL)
		return;
	if (p->in_cb) {
		p->canceled = 1;
		return;
	}
	pager_free(p);
}

static int
start(struct xts_graph *g, const char *url, xts_page_cb page_cb, xts_member_cb member_cb,
      xts_pager_done_cb done_cb, void *arg, struct xts_pager **out)
{
	struct xts_pager *p;
	int ret;

	if (done_cb == NULL || (page_cb == NULL && member_cb == NULL))
		return XTS_EINVAL;
	p = xts_calloc(1, sizeof(*p));
	if (p == NULL)
		return XTS_ENOMEM;
	p->g = g;
	p->page_cb = page_cb;
	p->member_cb = member_cb;
	p->done_cb = done_cb;
	p->arg = arg;
	ret = xts_graph__abs_url(g, url, &p->next);
	if (ret != 0) {
		if (ret == XTS_EFOREIGN)
			xts_err("graph: %s: refusing a stored link that is not on %s", g->tc.name,
				g->tc.graph_endpoint);
		xts_free(p);
		return ret;
	}
	ret = seen_add(p, p->next);
	if (ret == 0)
		ret = xts_graph_request(g, "GET", p->next, NULL, 0, on_page, p, &p->req);
	if (ret != 0) {
		xts_free(p->next);
		xts_free(p->seen);
		xts_free(p);
		return ret;
	}
	if (out != NULL)
		*out = p;
	return 0;
}

/* Characters allowed unescaped in a $select list. */
static int
select_ok(const char *s)
{
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ',' || c == '@' || c == '.'))
			return 0;
	}
	return 1;
}

int
xts_delta_users_start(struct xts_graph *g, const char *select, const char *delta_link,
		      xts_page_cb page_cb, xts_pager_done_cb done_cb, void *arg,
		      struct xts_pager **out)
{
	struct xts_buf u = XTS_BUF_INIT;
	int ret;

	if (g == NULL || page_cb == NULL)
		return XTS_EINVAL;
	if (delta_link != NULL && delta_link[0] != '\0')
		return start(g, delta_link, page_cb, NULL, done_cb, arg, out);
	if (select != NULL && !select_ok(select))
		return XTS_EINVAL;
	ret = xts_buf_puts(&u, "/v1.0/users/delta");
	if (ret == 0 && select != NULL && select[0] != '\0')
		ret = xts_buf_printf(&u, "?$select=%s", select);
	if (ret == 0)
		ret = start(g, u.p, page_cb, NULL, done_cb, arg, out);
	xts_buf_free(&u);
	return ret;
}

int
xts_pager_start(struct xts_graph *g, const char *url, xts_page_cb page_cb,
		xts_pager_done_cb done_cb, void *arg, struct xts_pager **out)
{
	if (g == NULL || url == NULL || page_cb == NULL)
		return XTS_EINVAL;
	return start(g, url, page_cb, NULL, done_cb, arg, out);
}

int
xts_delta_groups_start(struct xts_graph *g, const char *const *group_ids, size_t n,
		       const char *delta_link, xts_member_cb member_cb, xts_pager_done_cb done_cb,
		       void *arg, struct xts_pager **out)
{
	struct xts_buf u = XTS_BUF_INIT;
	size_t i;
	int ret;

	if (g == NULL || member_cb == NULL)
		return XTS_EINVAL;
	if (delta_link != NULL && delta_link[0] != '\0')
		return start(g, delta_link, NULL, member_cb, done_cb, arg, out);
	if (n == 0 || n > 50 || group_ids == NULL)
		return XTS_EINVAL;
	for (i = 0; i < n; i++)
		if (!xts_is_guid(group_ids[i]))
			return XTS_EINVAL;
	/* group-delta.md: $filter=id eq '{id}' or id eq '{id}', members@delta
	 * carries direct members only. */
	ret = xts_buf_puts(&u, "/v1.0/groups/delta?$select=displayName,members&$filter=");
	for (i = 0; ret == 0 && i < n; i++)
		ret = xts_buf_printf(&u, "%sid%%20eq%%20%%27%s%%27", i ? "%20or%20" : "", group_ids[i]);
	if (ret == 0)
		ret = start(g, u.p, NULL, member_cb, done_cb, arg, out);
	xts_buf_free(&u);
	return ret;
}
