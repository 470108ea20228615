/* SPDX-License-Identifier: MIT */
/* Store rows with a life cycle: pending operations (planned -> in-flight ->
 * done | failed, staged by the deletion guard) and the notification outbox.
 * Each transition is one conditional UPDATE, so a transition from the wrong
 * state is refused atomically. Sends nothing and schedules nothing itself. */
#include <string.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "store_int.h"

static const char *const op_kind_names[] = { "create", "update", "disable", "delete", "restore",
	"manager" };
static const char *const op_state_names[] = { "planned", "in-flight", "done", "failed", "staged" };

#define NAMES_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *
xts_op_kind_name(int kind)
{
	return kind >= 0 && kind < NAMES_N(op_kind_names) ? op_kind_names[kind] : "unknown";
}

int
xts_op_kind_parse(const char *s)
{
	int i;

	for (i = 0; s && i < NAMES_N(op_kind_names); i++)
		if (strcmp(s, op_kind_names[i]) == 0)
			return i;
	return -1;
}

const char *
xts_op_state_name(int state)
{
	return state >= 0 && state < NAMES_N(op_state_names) ? op_state_names[state] : "unknown";
}

int
xts_op_state_parse(const char *s)
{
	int i;

	for (i = 0; s && i < NAMES_N(op_state_names); i++)
		if (strcmp(s, op_state_names[i]) == 0)
			return i;
	return -1;
}

/* ---- pending operations --------------------------------------------------- */

void
xts_store_op_row_clear(struct xts_store_op_row *r)
{
	if (r == NULL)
		return;
	xts_free((void *)r->o.source_id);
	xts_free((void *)r->o.last_error_msg);
	json_decref(r->o.payload);
	memset(r, 0, sizeof(*r));
}

static int
op_from_row(sqlite3_stmt *s, struct xts_store_op_row *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	r->o.id = sqlite3_column_int64(s, 0);
	r->o.source_id = xts_store__col_dup(s, 1, &err);
	r->o.kind = sqlite3_column_int(s, 2);
	r->o.payload = xts_store__col_json(s, 3, &err);
	r->o.state = sqlite3_column_int(s, 4);
	r->o.attempts = sqlite3_column_int(s, 5);
	r->o.next_attempt = sqlite3_column_int64(s, 6);
	r->o.last_error = sqlite3_column_int(s, 7);
	r->o.last_error_msg = xts_store__col_dup(s, 8, &err);
	r->o.cycle_id = sqlite3_column_int64(s, 9);
	r->o.created = sqlite3_column_int64(s, 10);
	r->o.updated = sqlite3_column_int64(s, 11);
	if (err == 0 && r->o.source_id == NULL)
		err = XTS_ESTORE;
	if (err < 0)
		xts_store_op_row_clear(r);
	return err;
}

/* The next op id: from the reserved block, reserving the next block of
 * OP_ID_BLOCK in id_block when it is used up. The reservation is a write in
 * the caller's transaction (or its own, outside one): a rollback undoes it
 * and empties the block (store.c), so no id is handed out twice. */
enum { OP_ID_BLOCK = 1024 };

static int
op_id_take(struct xts_store *st, long long *id)
{
	long long end;
	int ret;

	if (st->op_id_next >= st->op_id_end) {
		ret = xts_store__int(st, XTS_ST_ID_RESERVE, &end, "op id reservation", "ti", "op",
		    (int)OP_ID_BLOCK);
		if (ret < 0)
			return ret;
		if (end <= OP_ID_BLOCK) {
			xts_err("store: %s: id_block holds an impossible next op id", st->path);
			return XTS_ESTORE;
		}
		st->op_id_next = end - OP_ID_BLOCK;
		st->op_id_end = end;
	}
	*id = st->op_id_next;
	return 0;
}

/* The payload as objects (text NULL) or as JSON text already written. */
static int
op_add(struct xts_store *st, const char *job, const char *source_id, int kind,
    const json_t *payload, const char *text, int state, long long cycle_id, long long *op_id)
{
	long long now = xts_wall_ms(), id;
	int ret;

	if (job == NULL || source_id == NULL || kind < 0 || kind >= NAMES_N(op_kind_names) ||
	    (state != XTS_OP_PLANNED && state != XTS_OP_STAGED))
		return XTS_EINVAL;
	ret = op_id_take(st, &id);
	if (ret == 0 && text != NULL)
		ret = xts_store__exec(st, XTS_ST_OP_ADD, NULL, "IttitiIII", id, job, source_id, kind,
		    text, state, cycle_id, now, now);
	else if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_OP_ADD, NULL, "IttijiIII", id, job, source_id, kind,
		    payload, state, cycle_id, now, now);
	if (ret == 0) {
		st->op_id_next++;
		if (op_id)
			*op_id = id;
	}
	return ret;
}

int
xts_store_op_add(struct xts_store *st, const char *job, const char *source_id, int kind,
    const json_t *payload, int state, long long cycle_id, long long *op_id)
{
	return op_add(st, job, source_id, kind, payload, NULL, state, cycle_id, op_id);
}

int
xts_store_op_add_text(struct xts_store *st, const char *job, const char *source_id, int kind,
    const char *payload, int state, long long cycle_id, long long *op_id)
{
	return op_add(st, job, source_id, kind, NULL, payload, state, cycle_id, op_id);
}

static int
op_get_stmt(struct xts_store *st, enum xts_store_stmt id, long long op_id,
    struct xts_store_op_row *out)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	s = xts_store__stmt(st, id, &ret);
	if (s == NULL)
		return ret;
	ret = xts_store__bind(st, s, "I", op_id);
	if (ret == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			ret = out ? op_from_row(s, out) : sqlite3_column_int(s, 0);
		else if (rc == SQLITE_DONE)
			ret = XTS_ENOENT;
		else
			ret = xts_store__err(st, rc, "op get");
	}
	sqlite3_reset(s);
	return ret;
}

int
xts_store_op_get(struct xts_store *st, long long op_id, struct xts_store_op_row *out)
{
	memset(out, 0, sizeof(*out));
	return op_get_stmt(st, XTS_ST_OP_GET, op_id, out);
}

/* After a conditional UPDATE changed nothing: no such op, or wrong state. */
static int
transition_result(struct xts_store *st, int ret, int changes, long long op_id, const char *what)
{
	int state;

	if (ret < 0 || changes > 0)
		return ret;
	state = op_get_stmt(st, XTS_ST_OP_STATE, op_id, NULL);
	if (state < 0)
		return state;
	xts_debug("store: op %lld: cannot %s from state %s", op_id, what, xts_op_state_name(state));
	return XTS_EINVAL;
}

int
xts_store_op_start(struct xts_store *st, long long op_id)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_START, &changes, "II", xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "start");
}

int
xts_store_op_done(struct xts_store *st, long long op_id)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_DONE, &changes, "II", xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "finish");
}

int
xts_store_op_to_manager(struct xts_store *st, long long op_id, const json_t *payload)
{
	int changes = 0, ret;

	if (payload == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_OP_TO_MANAGER, &changes, "jII", payload, xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "turn into a manager op");
}

int
xts_store_op_fail(struct xts_store *st, long long op_id, int err, const char *msg,
    long long next_attempt)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_FAIL, &changes, "itIII", err, msg, next_attempt,
	    xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "fail");
}

int
xts_store_op_requeue(struct xts_store *st, long long op_id)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_REQUEUE, &changes, "II", xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "requeue");
}

int
xts_store_op_cancel(struct xts_store *st, long long op_id)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_CANCEL, &changes, "II", xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "cancel");
}

int
xts_store_op_set_payload(struct xts_store *st, long long op_id, const json_t *payload)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_SET_PAYLOAD, &changes, "jII", payload, xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "change the payload");
}

int
xts_store_op_set_payload_text(struct xts_store *st, long long op_id, const char *payload)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OP_SET_PAYLOAD, &changes, "tII", payload, xts_wall_ms(), op_id);
	return transition_result(st, ret, changes, op_id, "change the payload");
}

struct op_walk {
	const char *job;
	int state;
	long long due_before;
	int (*cb)(void *arg, const struct xts_store_op *o);
	void *arg;
	int refs;  /* -1 any kind; 1 only XTS_OP_MANAGER; 0 all other kinds */
	int limit; /* rows per page (<= XTS_STORE_PAGE; fewer ends the walk) */
	long long after; /* the first page's ops have ids above this */
};

static sqlite3_stmt *
op_page(struct xts_store *st, void *ctx, const void *last, int *err)
{
	const struct op_walk *w = ctx;
	long long after = last != NULL ? ((const struct xts_store_op_row *)last)->o.id : w->after;
	sqlite3_stmt *s;

	if (w->refs >= 0) {
		s = xts_store__stmt(st, w->due_before > 0 ? XTS_ST_OP_PAGE_DUE_REFS : XTS_ST_OP_PAGE_REFS, err);
		if (s != NULL && w->due_before > 0)
			*err = xts_store__bind(st, s, "tiIIii", w->job, w->state, after, w->due_before,
			    w->refs, w->limit);
		else if (s != NULL)
			*err = xts_store__bind(st, s, "tiIii", w->job, w->state, after, w->refs, w->limit);
	} else if (w->due_before > 0) {
		s = xts_store__stmt(st, XTS_ST_OP_PAGE_DUE, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "tiIIi", w->job, w->state, after, w->due_before,
			    XTS_STORE_PAGE);
	} else {
		s = xts_store__stmt(st, XTS_ST_OP_PAGE, err);
		if (s != NULL)
			*err = xts_store__bind(st, s, "tiIi", w->job, w->state, after, XTS_STORE_PAGE);
	}
	return *err == 0 ? s : NULL;
}

static int
op_decode(sqlite3_stmt *s, void *row)
{
	return op_from_row(s, row);
}

static int
op_visit(void *ctx, void *row)
{
	const struct op_walk *w = ctx;

	return w->cb(w->arg, &((struct xts_store_op_row *)row)->o);
}

static void
op_clear(void *row)
{
	xts_store_op_row_clear(row);
}

int
xts_store_op_foreach(struct xts_store *st, const char *job, int state, long long due_before,
    int (*cb)(void *arg, const struct xts_store_op *o), void *arg)
{
	static const struct xts_store__walk walk = {
		sizeof(struct xts_store_op_row), op_page, op_decode, op_visit, op_clear, "op walk",
	};
	struct op_walk w = { job, state, due_before, cb, arg, -1, XTS_STORE_PAGE, 0 };

	if (job == NULL || cb == NULL || state < 0 || state >= NAMES_N(op_state_names))
		return XTS_EINVAL;
	return xts_store__walk(st, &walk, &w);
}

int
xts_store_op_foreach_refs(struct xts_store *st, const char *job, int state, long long due_before,
    long long after, int refs, int max, int (*cb)(void *arg, const struct xts_store_op *o), void *arg)
{
	static const struct xts_store__walk walk = {
		sizeof(struct xts_store_op_row), op_page, op_decode, op_visit, op_clear, "op walk",
	};
	struct op_walk w = { job, state, due_before, cb, arg, refs ? 1 : 0, XTS_STORE_PAGE, after };

	if (job == NULL || cb == NULL || state < 0 || state >= NAMES_N(op_state_names))
		return XTS_EINVAL;
	if (max > 0 && max < XTS_STORE_PAGE)
		w.limit = max;
	return xts_store__walk(st, &walk, &w);
}

int
xts_store_op_find_open(struct xts_store *st, const char *job, const char *source_id, int kind,
    struct xts_store_op_row *out)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	memset(out, 0, sizeof(*out));
	if (job == NULL || source_id == NULL)
		return XTS_EINVAL;
	s = xts_store__stmt(st, XTS_ST_OP_FIND_OPEN, &ret);
	if (s == NULL)
		return ret;
	ret = xts_store__bind(st, s, "tti", job, source_id, kind < 0 ? -1 : kind);
	if (ret == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			ret = op_from_row(s, out);
		else if (rc == SQLITE_DONE)
			ret = XTS_ENOENT;
		else
			ret = xts_store__err(st, rc, "op find");
	}
	sqlite3_reset(s);
	return ret;
}

int
xts_store_job_untouched(struct xts_store *st, const char *job, int *yes)
{
	long long v = 0;
	int ret;

	if (job == NULL || yes == NULL)
		return XTS_EINVAL;
	ret = xts_store__int(st, XTS_ST_JOB_UNTOUCHED, &v, "job untouched", "t", job);
	*yes = v != 0;
	return ret;
}

int
xts_store_op_count(struct xts_store *st, const char *job, int state, long long *n)
{
	if (job == NULL || n == NULL)
		return XTS_EINVAL;
	return xts_store__int(st, XTS_ST_OP_COUNT, n, "op count", "ti", job, state);
}

int
xts_store_op_release_staged(struct xts_store *st, const char *job, long long *released)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	/* One UPDATE: the whole staged set moves at once or not at all, and a
	 * second release finds nothing left in state staged. */
	ret = xts_store__exec(st, XTS_ST_OP_RELEASE, &changes, "It", xts_wall_ms(), job);
	if (released)
		*released = ret == 0 ? changes : 0;
	return ret;
}

int
xts_store_op_due_now(struct xts_store *st, const char *job, const char *source_id, long long *n)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	if (source_id == NULL)
		ret = xts_store__exec(st, XTS_ST_OP_DUE_NOW_JOB, &changes, "It", xts_wall_ms(), job);
	else
		ret = xts_store__exec(st, XTS_ST_OP_DUE_NOW, &changes, "Itt", xts_wall_ms(), job, source_id);
	if (n)
		*n = ret == 0 ? changes : 0;
	return ret;
}

int
xts_store_op_refs_due(struct xts_store *st, const char *job, long long *n)
{
	int changes = 0, ret;

	if (job == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_OP_REFS_DUE, &changes, "Iti", xts_wall_ms(), job, XTS_ENOENT);
	if (n)
		*n = ret == 0 ? changes : 0;
	return ret;
}

int
xts_store_op_purge_done(struct xts_store *st, const char *job, long long before)
{
	if (job == NULL)
		return XTS_EINVAL;
	return xts_store__exec(st, XTS_ST_OP_PURGE, NULL, "tI", job, before);
}

int
xts_store_housekeep(struct xts_store *st, const char *job, long long now, long long *deleted, int *more)
{
	long long total = 0;
	int n = XTS_STORE_PURGE_CHUNK, i, ret = 0;

	if (deleted != NULL)
		*deleted = 0;
	if (more != NULL)
		*more = 0;
	if (job == NULL)
		return XTS_EINVAL;
	for (i = 0; ret == 0 && i < XTS_STORE_PURGE_CHUNKS && n == XTS_STORE_PURGE_CHUNK; i++) {
		n = 0;
		ret = xts_store__exec(st, XTS_ST_OP_PURGE_CHUNK, &n, "tIi", job, now - XTS_STORE_KEEP_DONE_MS,
				      XTS_STORE_PURGE_CHUNK);
		total += n;
	}
	if (ret == 0 && more != NULL)
		*more = n == XTS_STORE_PURGE_CHUNK;
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_CYCLE_PURGE, &n, "ti", job, XTS_STORE_KEEP_CYCLES);
	total += ret == 0 ? n : 0;
	if (ret == 0)
		ret = xts_store__exec(st, XTS_ST_OB_PURGE, &n, "I", now - XTS_STORE_KEEP_SENT_MS);
	total += ret == 0 ? n : 0;
	if (deleted != NULL)
		*deleted = total;
	return ret;
}

/* ---- notification outbox -------------------------------------------------- */

void
xts_store_mail_row_clear(struct xts_store_mail_row *r)
{
	if (r == NULL)
		return;
	xts_free((void *)r->m.job);
	xts_free((void *)r->m.event_key);
	xts_free((void *)r->m.recipients);
	xts_free((void *)r->m.subject);
	xts_free((void *)r->m.body);
	xts_free((void *)r->m.last_error);
	memset(r, 0, sizeof(*r));
}

static int
mail_from_row(sqlite3_stmt *s, struct xts_store_mail_row *r)
{
	int err = 0;

	memset(r, 0, sizeof(*r));
	r->m.id = sqlite3_column_int64(s, 0);
	r->m.job = xts_store__col_dup(s, 1, &err);
	r->m.event_key = xts_store__col_dup(s, 2, &err);
	r->m.recipients = xts_store__col_dup(s, 3, &err);
	r->m.subject = xts_store__col_dup(s, 4, &err);
	r->m.body = xts_store__col_dup(s, 5, &err);
	r->m.created = sqlite3_column_int64(s, 6);
	r->m.sent_at = sqlite3_column_int64(s, 7);
	r->m.next_attempt = sqlite3_column_int64(s, 8);
	r->m.attempts = sqlite3_column_int(s, 9);
	r->m.last_error = xts_store__col_dup(s, 10, &err);
	if (err == 0 && (!r->m.job || !r->m.event_key || !r->m.recipients || !r->m.subject ||
	    !r->m.body))
		err = XTS_ESTORE;
	if (err < 0)
		xts_store_mail_row_clear(r);
	return err;
}

int
xts_store_outbox_add(struct xts_store *st, const char *job, const char *event_key,
    const char *recipients, const char *subject, const char *body, long long now,
    long long *id)
{
	sqlite3_stmt *s;
	int changes = 0, rc, ret;

	if (job == NULL || event_key == NULL || recipients == NULL || subject == NULL || body == NULL)
		return XTS_EINVAL;
	ret = xts_store__exec(st, XTS_ST_OB_ADD, &changes, "tttttII", job, event_key, recipients,
	    subject, body, now, now);
	if (ret < 0)
		return ret;
	if (changes > 0) {
		if (id)
			*id = sqlite3_last_insert_rowid(st->db);
		return 0;
	}
	if (id) {
		s = xts_store__stmt(st, XTS_ST_OB_ID, &ret);
		if (s == NULL)
			return ret;
		ret = xts_store__bind(st, s, "tt", job, event_key);
		if (ret == 0) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_ROW)
				*id = sqlite3_column_int64(s, 0);
			else
				ret = xts_store__err(st, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "outbox id");
		}
		sqlite3_reset(s);
		if (ret < 0)
			return ret;
	}
	return XTS_EEXIST;
}

int
xts_store_outbox_foreach_due(struct xts_store *st, long long now,
    int (*cb)(void *arg, const struct xts_store_mail *m), void *arg)
{
	struct xts_store_mail_row page[32];
	long long after = 0;
	int n, i, rc, ret = 0;

	if (cb == NULL)
		return XTS_EINVAL;
	for (;;) {
		sqlite3_stmt *s = xts_store__stmt(st, XTS_ST_OB_PAGE_DUE, &ret);

		if (s == NULL)
			break;
		ret = xts_store__bind(st, s, "IIi", now, after, 32);
		for (n = 0; ret == 0 && n < 32; n++) {
			rc = sqlite3_step(s);
			if (rc == SQLITE_DONE)
				break;
			if (rc != SQLITE_ROW) {
				ret = xts_store__err(st, rc, "outbox walk");
				break;
			}
			ret = mail_from_row(s, &page[n]);
			if (ret < 0)
				break;
		}
		sqlite3_reset(s);
		for (i = 0; i < n && ret == 0; i++)
			ret = cb(arg, &page[i].m);
		if (n > 0)
			after = page[n - 1].m.id;
		for (i = 0; i < n; i++)
			xts_store_mail_row_clear(&page[i]);
		if (ret != 0 || n < 32)
			break;
	}
	return ret;
}

int
xts_store_outbox_next(struct xts_store *st, long long before, long long *when)
{
	long long v = 0;
	int ret;

	*when = 0;
	ret = xts_store__int(st, XTS_ST_OB_NEXT, &v, "outbox next", "I", before);
	if (ret == 0 && v > 0)
		*when = v - 1 > 0 ? v - 1 : 1;
	return ret;
}

int
xts_store_outbox_mark_sent(struct xts_store *st, long long id, long long now)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OB_SENT, &changes, "II", now > 0 ? now : 1, id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT; /* no such mail, or already sent */
	return ret;
}

int
xts_store_outbox_mark_failed(struct xts_store *st, long long id, long long next_attempt,
    const char *error)
{
	int changes = 0, ret;

	ret = xts_store__exec(st, XTS_ST_OB_FAILED, &changes, "ItI", next_attempt, error, id);
	if (ret == 0 && changes == 0)
		ret = XTS_ENOENT;
	return ret;
}

static int
fill_mail_by_id(struct xts_store *st, long long id, struct xts_store_mail_row *out)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	s = xts_store__stmt(st, XTS_ST_OB_GET, &ret);
	if (s == NULL)
		return ret;
	ret = xts_store__bind(st, s, "I", id);
	if (ret == 0) {
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW)
			ret = mail_from_row(s, out);
		else if (rc == SQLITE_DONE)
			ret = XTS_ENOENT;
		else
			ret = xts_store__err(st, rc, "outbox get");
	}
	sqlite3_reset(s);
	return ret;
}

int
xts_store_outbox_get(struct xts_store *st, long long id, struct xts_store_mail_row *out)
{
	memset(out, 0, sizeof(*out));
	return fill_mail_by_id(st, id, out);
}
