/* SPDX-License-Identifier: MIT */
/* Store rows keyed by object id: source users (last seen in the source),
 * source<->target links (with the last exported values) and membership of
 * assigned groups. Walks go by keyset pages so no statement stays open
 * while a callback runs. Decides nothing about scope or matching. */
#include <string.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "store_int.h"

/* ---- source users -------------------------------------------------------- */

void
xts_store_user_row_clear(struct xts_store_user_row *r)
{
	if (r == NULL)
		return;
	xts_free((void *)r->u.source_id);
	xts_free((void *)r->u.scope_reason);
	xts_free((void *)r->u.manager_id);
	json_decref(r->u.attrs);
	memset(r, 0, sizeof(*r));
}

static int
user_from_row(sqlite3_stmt *s, struct xts_store_user_row *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	r->u.source_id = xts_store__col_dup(s, 0, &err);
	r->u.attrs = xts_store__col_json(s, 1, &err);
	r->u.in_scope = sqlite3_column_int(s, 2);
	r->u.scope_reason = xts_store__col_dup(s, 3, &err);
	r->u.is_member = sqlite3_column_int(s, 4);
	r->u.manager_id = xts_store__col_dup(s, 5, &err);
	r->u.deleted = sqlite3_column_int(s, 6);
	r->u.last_seen_cycle = sqlite3_column_int64(s, 7);
	if (sqlite3_column_count(s) > 8)
		r->key = sqlite3_column_int64(s, 8);
	if (err == 0 && r->u.source_id == NULL)
		err = XTS_ESTORE;
	if (err < 0)
		xts_store_user_row_clear(r);
	return err;
}

int
xts_store_user_put(struct xts_store *st, const char *job, const struct xts_store_user *u)
{
	if (job == NULL || u == NULL || u->source_id == NULL)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_USER_PUT, NULL, "ttjititiI", job, u->source_id, u->attrs,
	    u->in_scope ? 1 : 0, u->scope_reason, u->is_member ? 1 : 0, u->manager_id,
	    u->deleted ? 1 : 0, u->last_seen_cycle);
}

int
xts_store_user_insert(struct xts_store *st, const char *job, const struct xts_store_user *u)
{
	int changes = 0, ret;

	if (job == NULL || u == NULL || u->source_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_USER_INSERT, &changes, "ttjititiI", job, u->source_id, u->attrs,
	    u->in_scope ? 1 : 0, u->scope_reason, u->is_member ? 1 : 0, u->manager_id,
	    u->deleted ? 1 : 0, u->last_seen_cycle);
	if (ret == 0 && changes == 0)
		ret = XTS_EEXIST;
	return ret;
}

/* Run a single-row SELECT bound by two texts; fill via `fill`. */
static int
get_one(struct xts_store *st, enum xts_store_stmt id, const char *a, const char *b,
    int (*fill)(sqlite3_stmt *s, void *out), void *out, const char *what)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	s = xts_store__stmt(st, id, &ret);
	if (s == NULL)
		return ret;
	ret = xts_store__bind(st, s, "tt", a, b);
	if (ret == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			ret = fill(s, out);
		else if (rc == SQLITE_DONE)
			ret = XTS_ENOENT;
		else
			ret = xts_store__err(st, rc, what);
	}
	sqlite3_reset(s);
	return ret;
}

static int
fill_user(sqlite3_stmt *s, void *out)
{
	return user_from_row(s, out);
}

int
xts_store_user_get(struct xts_store *st, const char *job, const char *source_id,
    struct xts_store_user_row *out)
{
	memset(out, 0, sizeof(*out));
	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	return get_one(st, XTS_ST_USER_GET, job, source_id, fill_user, out, "user get");
}

static int
fill_identity(sqlite3_stmt *s, void *out)
{
	static const char *const keys[] = { "displayName", "userPrincipalName" };
	json_t *o = json_object();
	int i;

	if (o == NULL)
		return XTS_ENOMEM;
	for (i = 0; i < 2; i++) {
		const char *v = (const char *)sqlite3_column_text(s, i);
		json_t *js = v != NULL ? json_string(v) : NULL;

		/* (a value jansson refuses is left out: it only names the user) */
		if (js != NULL && json_object_set_new(o, keys[i], js) != 0) {
			json_decref(o);
			return XTS_ENOMEM;
		}
	}
	*(json_t **)out = o;
	return 0;
}

int
xts_store_user_identity(struct xts_store *st, const char *job, const char *source_id, json_t **out)
{
	*out = NULL;
	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	return get_one(st, XTS_ST_USER_IDENTITY, job, source_id, fill_identity, out, "user identity");
}

int
xts_store_user_mark_deleted(struct xts_store *st, const char *job, const char *source_id,
    long long cycle_id)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_USER_MARK_DELETED, &changes, "Itt", cycle_id, job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_user_remove(struct xts_store *st, const char *job, const char *source_id)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_USER_REMOVE, &changes, "tt", job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

struct user_walk {
	const char *job;
	long long seen_before_cycle;
	int (*cb)(void *arg, const struct xts_store_user *u);
	void *arg;
};

static sqlite3_stmt *
user_page(struct xts_store *st, void *ctx, const void *last, int *err)
{
	const struct user_walk *w = ctx;
	const struct xts_store_user_row *l = last;
	const char *after = l != NULL ? l->u.source_id : "";
	sqlite3_stmt *s;

	if (w->seen_before_cycle > 0) {
		/* keyset: rowid */
		s = xts_store__stmt(st, XTS_ST_USER_PAGE_SEEN, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "tIIi", w->job, w->seen_before_cycle,
			    l != NULL ? l->key : 0LL, XTS_STORE_PAGE);
	} else {
		s = xts_store__stmt(st, XTS_ST_USER_PAGE, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "tti", w->job, after, XTS_STORE_PAGE);
	}
	return *err == 0 ? s : NULL;
}

static int
user_decode(sqlite3_stmt *s, void *row)
{
	return user_from_row(s, row);
}

static int
user_visit(void *ctx, void *row)
{
	const struct user_walk *w = ctx;

	return w->cb(w->arg, &((struct xts_store_user_row *)row)->u);
}

static void
user_clear(void *row)
{
	xts_store_user_row_clear(row);
}

int
xts_store_user_foreach(struct xts_store *st, const char *job, long long seen_before_cycle,
    int (*cb)(void *arg, const struct xts_store_user *u), void *arg)
{
	static const struct xts_store__walk walk = {
		sizeof(struct xts_store_user_row), user_page, user_decode, user_visit, user_clear,
		"user walk",
	};
	struct user_walk w = { job, seen_before_cycle, cb, arg };

	if (job == NULL || cb == NULL)
		return XTS_EINVAL;
	return xts_store__walk(st, &walk, &w);
}

int
xts_store_user_count(struct xts_store *st, const char *job, int in_scope_only, long long *n)
{
	if (job == NULL || n == NULL)
		return XTS_EINVAL;
	return xts_store__int(st, in_scope_only ? XTS_ST_USER_COUNT_SCOPE : XTS_ST_USER_COUNT, n,
	    "user count", "t", job);
}

/* ---- links --------------------------------------------------------------- */

void
xts_store_link_row_clear(struct xts_store_link_row *r)
{
	if (r == NULL)
		return;
	xts_free((void *)r->l.source_id);
	xts_free((void *)r->l.target_id);
	json_decref(r->l.exported);
	memset(r, 0, sizeof(*r));
}

static int
link_from_row(sqlite3_stmt *s, struct xts_store_link_row *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	r->l.source_id = xts_store__col_dup(s, 0, &err);
	r->l.target_id = xts_store__col_dup(s, 1, &err);
	r->l.exported = xts_store__col_json(s, 2, &err);
	r->l.target_state = sqlite3_column_int(s, 3);
	r->l.deleted_at = sqlite3_column_int64(s, 4);
	r->l.origin = sqlite3_column_int(s, 5);
	r->l.created = sqlite3_column_int64(s, 6);
	r->l.updated = sqlite3_column_int64(s, 7);
	if (err == 0 && (r->l.source_id == NULL || r->l.target_id == NULL))
		err = XTS_ESTORE;
	if (err < 0)
		xts_store_link_row_clear(r);
	return err;
}

static int
fill_link(sqlite3_stmt *s, void *out)
{
	return link_from_row(s, out);
}

int
xts_store_link_put(struct xts_store *st, const char *job, const struct xts_store_link *l)
{
	long long now = xts_wall_ms();

	if (job == NULL || l == NULL || l->source_id == NULL || l->target_id == NULL ||
	    l->target_state < XTS_TARGET_ACTIVE || l->target_state > XTS_TARGET_SOFT_DELETED ||
	    l->origin < XTS_LINK_CREATED || l->origin > XTS_LINK_ADOPTED)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_LINK_PUT, NULL, "tttjiIiII", job, l->source_id, l->target_id,
	    l->exported, l->target_state, l->deleted_at, l->origin, now, now);
}

int
xts_store_link_get(struct xts_store *st, const char *job, const char *source_id,
    struct xts_store_link_row *out)
{
	memset(out, 0, sizeof(*out));
	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	return get_one(st, XTS_ST_LINK_GET, job, source_id, fill_link, out, "link get");
}

static int
fill_target(sqlite3_stmt *s, void *out)
{
	int err = 0;

	*(char **)out = xts_store__col_dup(s, 0, &err);
	if (err == 0 && *(char **)out == NULL)
		err = XTS_ESTORE;
	return err;
}

int
xts_store_link_target(struct xts_store *st, const char *job, const char *source_id, char **target_id)
{
	*target_id = NULL;
	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	return get_one(st, XTS_ST_LINK_TARGET, job, source_id, fill_target, target_id, "link target");
}

int
xts_store_link_get_by_target(struct xts_store *st, const char *job, const char *target_id,
    struct xts_store_link_row *out)
{
	memset(out, 0, sizeof(*out));
	if (job == NULL || target_id == NULL)
		return XTS_EINVAL;
	return get_one(st, XTS_ST_LINK_GET_BY_TARGET, job, target_id, fill_link, out,
	    "link get by target");
}

int
xts_store_link_set_exported(struct xts_store *st, const char *job, const char *source_id,
    const json_t *exported)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_LINK_SET_EXPORTED, &changes, "jItt", exported, xts_wall_ms(),
	    job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_link_set_target_state(struct xts_store *st, const char *job, const char *source_id,
    int target_state, long long deleted_at)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL || target_state < XTS_TARGET_ACTIVE ||
	    target_state > XTS_TARGET_SOFT_DELETED)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_LINK_SET_STATE, &changes, "iIItt", target_state, deleted_at,
	    xts_wall_ms(), job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_link_record(struct xts_store *st, const char *job, const char *source_id, bool set_exported,
    const json_t *exported, int target_state, long long deleted_at)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL || target_state > XTS_TARGET_SOFT_DELETED)
		return XTS_EINVAL;
	if (target_state < 0)
		target_state = -1;
	ret = xts_store__exec(st, XTS_ST_LINK_RECORD, &changes, "ijiIItt", set_exported ? 1 : 0,
	    set_exported ? exported : NULL, target_state, deleted_at, xts_wall_ms(), job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_link_remove(struct xts_store *st, const char *job, const char *source_id)
{
	int changes = 0, ret;

	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_LINK_REMOVE, &changes, "tt", job, source_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

struct link_walk {
	const char *job;
	int (*cb)(void *arg, const struct xts_store_link *l);
	void *arg;
};

static sqlite3_stmt *
link_page(struct xts_store *st, void *ctx, const void *last, int *err)
{
	const struct link_walk *w = ctx;
	const char *after = last != NULL ? ((const struct xts_store_link_row *)last)->l.source_id : "";
	sqlite3_stmt *s = xts_store__stmt(st, XTS_ST_LINK_PAGE, err);

	if (s != NULL)
		*err = xts_store__bind(st, s, "tti", w->job, after, XTS_STORE_PAGE);
	return *err == 0 ? s : NULL;
}

static int
link_decode(sqlite3_stmt *s, void *row)
{
	return link_from_row(s, row);
}

static int
link_visit(void *ctx, void *row)
{
	const struct link_walk *w = ctx;

	return w->cb(w->arg, &((struct xts_store_link_row *)row)->l);
}

static void
link_clear(void *row)
{
	xts_store_link_row_clear(row);
}

int
xts_store_link_foreach(struct xts_store *st, const char *job,
    int (*cb)(void *arg, const struct xts_store_link *l), void *arg)
{
	static const struct xts_store__walk walk = {
		sizeof(struct xts_store_link_row), link_page, link_decode, link_visit, link_clear,
		"link walk",
	};
	struct link_walk w = { job, cb, arg };

	if (job == NULL || cb == NULL)
		return XTS_EINVAL;
	return xts_store__walk(st, &walk, &w);
}

/* ---- membership of assigned groups --------------------------------------- */

int
xts_store_member_add(struct xts_store *st, const char *job, const char *group_id,
    const char *member_id)
{
	if (job == NULL || group_id == NULL || member_id == NULL)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_MEM_ADD, NULL, "ttt", job, group_id, member_id);
}

int
xts_store_member_remove(struct xts_store *st, const char *job, const char *group_id,
    const char *member_id)
{
	int changes = 0, ret;

	if (job == NULL || group_id == NULL || member_id == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_MEM_REMOVE, &changes, "ttt", job, group_id, member_id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

int
xts_store_member_clear_group(struct xts_store *st, const char *job, const char *group_id)
{
	if (job == NULL || group_id == NULL)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_MEM_CLEAR_GROUP, NULL, "tt", job, group_id);
}

int
xts_store_member_any(struct xts_store *st, const char *job, const char *member_id, int *yes)
{
	long long n = 0;
	int ret;

	if (job == NULL || member_id == NULL || yes == NULL)
		return XTS_EINVAL;
	ret = xts_store__int(st, XTS_ST_MEM_ANY, &n, "member lookup", "tt", job, member_id);
	if (ret == 0)
		*yes = n != 0;
	return ret;
}

struct member_pair {
	char *group_id;
	char *member_id;
};

struct member_walk {
	const char *job;
	const char *group_id;
	int (*cb)(void *arg, const char *group_id, const char *member_id);
	void *arg;
};

static sqlite3_stmt *
member_page(struct xts_store *st, void *ctx, const void *last, int *err)
{
	const struct member_walk *w = ctx;
	const struct member_pair *l = last;
	sqlite3_stmt *s;

	if (w->group_id != NULL) {
		s = xts_store__stmt(st, XTS_ST_MEM_PAGE_GROUP, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "ttti", w->job, w->group_id,
			    l != NULL ? l->member_id : "", XTS_STORE_PAGE);
	} else {
		s = xts_store__stmt(st, XTS_ST_MEM_PAGE_ALL, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "ttti", w->job, l != NULL ? l->group_id : "",
			    l != NULL ? l->member_id : "", XTS_STORE_PAGE);
	}
	return *err == 0 ? s : NULL;
}

static void
member_clear(void *row)
{
	struct member_pair *p = row;

	xts_free(p->group_id);
	xts_free(p->member_id);
	p->group_id = p->member_id = NULL;
}

static int
member_decode(sqlite3_stmt *s, void *row)
{
	struct member_pair *p = row;
	int err = 0;

	p->group_id = xts_store__col_dup(s, 0, &err);
	p->member_id = xts_store__col_dup(s, 1, &err);
	if (err == 0 && (p->group_id == NULL || p->member_id == NULL))
		err = XTS_ESTORE;
	if (err < 0)
		member_clear(p);
	return err;
}

static int
member_visit(void *ctx, void *row)
{
	const struct member_walk *w = ctx;
	const struct member_pair *p = row;

	return w->cb(w->arg, p->group_id, p->member_id);
}

int
xts_store_member_foreach(struct xts_store *st, const char *job, const char *group_id,
    int (*cb)(void *arg, const char *group_id, const char *member_id), void *arg)
{
	static const struct xts_store__walk walk = {
		sizeof(struct member_pair), member_page, member_decode, member_visit, member_clear,
		"member walk",
	};
	struct member_walk w = { job, group_id, cb, arg };

	if (job == NULL || cb == NULL)
		return XTS_EINVAL;
	return xts_store__walk(st, &walk, &w);
}
