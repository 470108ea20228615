/* SPDX-License-Identifier: MIT */
/* The apply phase: a bounded window of planned (and due escrowed) ops sent
 * through the cycle's target back end; every op is marked in-flight in the
 * store BEFORE it is sent. A create matches first (link attribute, matching
 * attributes, invited address) so it never duplicates. Manager references go
 * in a second pass, after the users exist; where the link does not know the
 * target's manager (matched, or after restart) it is read before it is
 * written; likewise a user whose link knows none of the values a write
 * carries (after restart) is read and only the differences are written.
 * It decides nothing new. */
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "engine_internal.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "text.h"

struct aop {
	struct eng_cycle *cy;
	long long id;
	char *sid;
	int kind;
	int attempts;
	json_t *payload;       /* the op's payload (own ref) */
	json_t *red;           /* create: the names its values redact (own ref, may be NULL) */
	json_t *attrs;         /* source attrs for the log (own ref, may be NULL) */
	struct xts_store_link_row lr;
	int linked;
	int match_stage;       /* create: 0 link attribute, 1..n matching attributes, n+1 source mail,
				* n+2 invited address */
	bool restored;         /* restore: this dispatch's POST .../restore succeeded */
	const char *matched_by;
	json_t *write;         /* what this op writes (own ref) */
	json_t *old;           /* previous values for modifiedProperties (own ref) */
	json_t *held;          /* read before writing: what the target holds (own ref, may be NULL) */
	char *mgr_tid;         /* manager op: the manager's target id (NULL: remove it) */
	long long t0;
	struct xts_graph_req *req;     /* a read of its own in flight */
	xts_graph_cb read_cb;          /* a read in the writer's envelopes: its answer */
	struct aop *next;      /* list of ops in flight (for cancel) */
};

static void refill(struct eng_cycle *cy);
static void answers_close(struct eng_cycle *cy);
static void aop_finish(struct aop *a);
static void match_next(struct aop *a);
static int target_read(struct aop *a, const char *url, int flags, xts_graph_cb cb);

/* The ops in flight per cycle, so a cycle free can cancel their reads. */
static struct aop *
list_head(struct eng_cycle *cy)
{
	return (struct aop *)cy->aops;
}

static void
aop_free(struct aop *a)
{
	xts_free(a->sid);
	json_decref(a->payload);
	json_decref(a->red);
	json_decref(a->attrs);
	json_decref(a->write);
	json_decref(a->old);
	json_decref(a->held);
	xts_free(a->mgr_tid);
	xts_store_link_row_clear(&a->lr);
	xts_free(a);
}

static void
list_remove(struct eng_cycle *cy, struct aop *a)
{
	struct aop **pp = (struct aop **)&cy->aops;

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			return;
		}
	}
}

static void op_unsent(struct aop *a);

void
eng_apply_stop(struct eng_cycle *cy)
{
	struct aop *a;

	/* Reads of their own in flight: dropped, their ops planned again
	 * (reads in the writer's envelopes end with the writes, below). */
	for (;;) {
		for (a = list_head(cy); a != NULL && a->req == NULL; a = a->next)
			;
		if (a == NULL)
			break;
		xts_graph_cancel(a->req);
		a->req = NULL;
		op_unsent(a);
	}
	/* Queued writes and reads end with XTS_ECANCELED from the loop; sent
	 * ones finish. */
	if (cy->target != NULL && cy->target->ops->stop != NULL)
		cy->target->ops->stop(cy->target);
}

void
eng_apply_cancel(struct eng_cycle *cy)
{
	struct aop *a = list_head(cy), *n;

	/* Freed inside a group of answers: it ends here (its commit and its
	 * log lines), not when the writer, freed too, would have ended it. */
	if (cy->answers > 0) {
		cy->answers = 0;
		cy->refill_due = false;
		answers_close(cy);
	}

	/* The target back end is freed right after: its writes fire no callback. */
	for (; a != NULL; a = n) {
		n = a->next;
		if (a->req != NULL)
			xts_graph_cancel(a->req);
		aop_free(a);
	}
	cy->aops = NULL;
}

/* ---- provisioning log ---------------------------------------------------- */

static int
redacted(const struct aop *a, const char *name)
{
	json_t *r = a->red != NULL ? a->red : json_object_get(a->payload, "redacted"), *v;
	size_t i;

	json_array_foreach(r, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return 1;
	return 0;
}

/* One line for this op. code: the errorCode when Graph gave none (ge NULL
 * or without a code), e.g. why a deferred op waits; may be NULL. */
static void
log_op(struct aop *a, int action, int status, const struct xts_graph_error *ge, const char *code,
       const char *reason)
{
	struct eng_cycle *cy = a->cy;
	struct xts_prov_entry pe;
	const char *key, *why, *outcome;
	json_t *v;
	char desc[256], details[200];

	if (!eng_prov_begin(cy, &pe, action, status, a->sid, a->attrs, a->lr.l.target_id))
		return;
	pe.duration_ms = xts_now_ms() - a->t0;
	if (ge != NULL) {
		pe.error_code = ge->code[0] != '\0' ? ge->code : code;
		pe.error_reason = ge->message[0] != '\0' ? ge->message : reason;
		pe.error_category = ge->status == 429 || ge->status >= 500 || ge->status == 0 ?
					    XTS_PROV_ERRCAT_FAILURE : XTS_PROV_ERRCAT_NON_SERVICE;
		if (ge->status == 0)
			snprintf(details, sizeof(details), "no HTTP response");
		else
			snprintf(details, sizeof(details), "HTTP %ld%s%s", ge->status,
				 ge->request_id[0] != '\0' ? ", request-id " : "", ge->request_id);
		pe.additional_details = details;
	} else {
		pe.error_code = code;
		pe.error_reason = reason;
	}
	json_object_foreach(a->write, key, v)
		xts_prov_entry_add_prop_json(&pe, key, json_object_get(a->old, key), v,
					     redacted(a, key));
	xts_prov_entry_add_step(&pe, "EntryImport", XTS_STEP_IMPORT, XTS_PROV_SUCCESS,
				"Retrieved the user from the source tenant", NULL);
	why = json_string_value(json_object_get(a->payload, "reason"));
	if (a->kind != XTS_OP_DISABLE && a->kind != XTS_OP_DELETE)
		snprintf(desc, sizeof(desc), "The user is in scope");
	else if (why != NULL && strcmp(why, "out of scope") != 0)
		snprintf(desc, sizeof(desc), "The user is out of scope: %s", why);
	else
		snprintf(desc, sizeof(desc), "The user is out of scope");
	xts_prov_entry_add_step(&pe, "EntrySynchronizationScoping", XTS_STEP_SCOPING, XTS_PROV_SUCCESS,
				desc, NULL);
	if (a->kind == XTS_OP_CREATE) {
		snprintf(desc, sizeof(desc), "%s", a->matched_by != NULL ? a->matched_by :
			 "No matching user in the target tenant");
		xts_prov_entry_add_step(&pe, "EntryMatching", XTS_STEP_MATCHING, XTS_PROV_SUCCESS, desc, NULL);
	}
	snprintf(desc, sizeof(desc), "Decided to %s the user", xts_prov_action_name(action));
	xts_prov_entry_add_step(&pe, "EntryProcessing", XTS_STEP_PROCESSING, XTS_PROV_SUCCESS, desc, NULL);
	/* The why is errorInformation's reason: not repeated here. */
	switch (status) {
	case XTS_PROV_SUCCESS:
		/* a matched user, or an update read first, that the target
		 * already holds as mapped: nothing was sent */
		outcome = (a->kind == XTS_OP_CREATE || a->kind == XTS_OP_UPDATE) && json_object_size(a->write) == 0 ?
				  "Nothing written: the target user already has these values" :
				  "Written to the target tenant";
		break;
	case XTS_PROV_SKIPPED: outcome = "Not written yet; retried on a later cycle"; break;
	case XTS_PROV_WARNING: outcome = "Partly written to the target tenant"; break;
	default: outcome = "The write to the target tenant failed"; break;
	}
	xts_prov_entry_add_step(&pe, "EntryExport", XTS_STEP_EXPORT, status, outcome, NULL);
	if (xts_provlog_write(cy->e->o.provlog, &pe) != 0)
		xts_log_rl(XTS_LOG_WARNING, 60000, 3, "job %s: cannot write the provisioning log", cy->c.name);
	xts_prov_entry_clear(&pe);
}

/* ---- completion -------------------------------------------------------------- */

static int
action_of(const struct aop *a)
{
	switch (a->kind) {
	case XTS_OP_CREATE: return a->matched_by != NULL || a->linked ? XTS_PROV_UPDATE : XTS_PROV_CREATE;
	case XTS_OP_DISABLE: return XTS_PROV_DISABLE;
	case XTS_OP_DELETE: return XTS_PROV_DELETE;
	default: return XTS_PROV_UPDATE;
	}
}

static void op_escrow(struct aop *a, int err, const struct xts_graph_error *ge, const char *code,
		      const char *why, bool failure);

/* A write that failed: escrowed with back-off and counted as a failure. */
static void
op_failed(struct aop *a, int err, const struct xts_graph_error *ge, const char *why)
{
	op_escrow(a, err, ge, NULL, why, true);
}

/* An op that cannot be written yet (what it refers to is not provisioned):
 * escrowed, logged as skipped with code as errorCode, not a failure. */
static void
op_defer(struct aop *a, const char *code, const char *why)
{
	op_escrow(a, XTS_ENOENT, NULL, code, why, false);
}

/* code: the errorCode and message prefix when Graph gave none (may be NULL:
 * then the XTS_E* name prefixes the message and the line has no code). */
static void
op_escrow(struct aop *a, int err, const struct xts_graph_error *ge, const char *code, const char *why,
	  bool failure)
{
	struct eng_cycle *cy = a->cy;
	/* The provisioning log has the code in errorCode: its reason is only
	 * the why (log_op prefers Graph's message); the store and the daemon's
	 * log get "code: why". */
	const char *lcode = code != NULL ? code : xts_errname(err);
	char msg[700];
	long long next;
	int ret;

	snprintf(msg, sizeof(msg), "%s%s%s", ge != NULL && ge->code[0] != '\0' ? ge->code :
		 (code != NULL ? code : xts_errname(err)),
		 ge != NULL || why != NULL ? ": " : "",
		 ge != NULL && ge->message[0] != '\0' ? ge->message : (why != NULL ? why : ""));
	next = xts_wall_ms() + xts_engine_escrow_delay_ms(cy->c.escrow_base_ms, a->attempts);
	ret = xts_store_op_fail(cy->st, a->id, err, msg, next);
	if (ret != 0)
		xts_err("job %s: cannot record the failed op %lld: %s", cy->c.name, a->id, xts_strerror(ret));
	if (!failure) {
		/* Deferred, not failed: retried on the escrow schedule, but it
		 * must not count toward the quarantine rule. */
		xts_debug("job %s: %s of user %s deferred: %s", cy->c.name, xts_op_kind_name(a->kind),
			  a->sid, msg);
		log_op(a, action_of(a), XTS_PROV_SKIPPED, ge, lcode, why);
		aop_finish(a);
		return;
	}
	cy->failed++;
	cy->ref_failed += a->kind == XTS_OP_MANAGER;
	cy->counts.failed++;
	xts_warn("job %s: %s of user %s failed: %s", cy->c.name, xts_op_kind_name(a->kind), a->sid, msg);
	log_op(a, action_of(a), XTS_PROV_FAILURE, ge, lcode, why);
	if (err == XTS_EAUTH) {
		cy->auth_failed = true;
		xts_free(cy->auth_code);
		cy->auth_code = xts_strdup(ge != NULL && ge->code[0] != '\0' ? ge->code : "InvalidAuthenticationToken");
	}
	aop_finish(a);
}

/* The target state that user values read from the target (a->held) or
 * written to it (a->write) show through accountEnabled, or -1 when they do
 * not say. */
static int
enabled_state(const json_t *values)
{
	json_t *en = json_object_get(values, "accountEnabled");

	return json_is_true(en) ? XTS_TARGET_ACTIVE : (json_is_false(en) ? XTS_TARGET_DISABLED : -1);
}

/* One transaction: merge what was read from the target (a->held), then
 * a->write, into the link's exported values, set the target state (unless
 * < 0; then the one read, if any) and mark the op done. 0 or XTS_E*. */
static int
op_record(struct aop *a, int target_state, long long deleted_at)
{
	struct eng_cycle *cy = a->cy;
	struct xts_store_link_row lr;
	const char *mgr = json_string_value(json_object_get(a->payload, "manager"));
	json_t *exp = NULL;
	bool nested, began;
	int ret;

	if (target_state < 0)
		target_state = enabled_state(a->held);
	memset(&lr, 0, sizeof(lr));
	/* In a group of answers (eng_apply_answers_begin) a savepoint of its
	 * transaction: a failure here undoes this op's record alone. */
	nested = xts_store_in_tx(cy->st);
	ret = nested ? xts_store_savepoint(cy->st) : xts_store_begin(cy->st);
	began = ret == 0;
	if (ret == 0)
		ret = xts_store_link_get(cy->st, cy->c.name, a->sid, &lr);
	if (ret == 0 && (json_object_size(a->held) > 0 || json_object_size(a->write) > 0)) {
		/* the row's values, read for this: merged in place, no copy */
		exp = lr.l.exported != NULL ? lr.l.exported : json_object();
		lr.l.exported = NULL;
		if (exp == NULL || (a->held != NULL && json_object_update(exp, a->held) != 0) ||
		    (a->write != NULL && json_object_update(exp, a->write) != 0))
			ret = XTS_ENOMEM;
	}
	/* the values and the state in one statement */
	if (ret == 0 && (exp != NULL || target_state >= 0))
		ret = xts_store_link_record(cy->st, cy->c.name, a->sid, exp != NULL, exp, target_state,
					    deleted_at);
	if (ret == 0 && a->kind == XTS_OP_CREATE && mgr != NULL) {
		/* The user exists now: the create's op becomes its manager
		 * reference (the create carried it, engine_plan.c), written in
		 * the second pass. In place of done: the same row, so this
		 * costs the transaction no more pages than a done would, and
		 * a crash leaves either the create in flight or both done. */
		json_t *p = json_pack("{s:s}", "manager", mgr);
		ret = p == NULL ? XTS_ENOMEM : xts_store_op_to_manager(cy->st, a->id, p);
		json_decref(p);
	} else if (ret == 0) {
		ret = xts_store_op_done(cy->st, a->id);
	}
	if (nested && began) {
		int r = xts_store_savepoint_end(cy->st, ret == 0);

		ret = ret != 0 ? ret : r;
		cy->answers_recorded += ret == 0;
	} else if (ret == 0) {
		ret = xts_store_commit(cy->st);
	} else if (xts_store_in_tx(cy->st)) {
		xts_store_rollback(cy->st);
	}
	json_decref(exp);
	xts_store_link_row_clear(&lr);
	return ret;
}

/* Merge written values into exported and mark the op done. */
static void
op_succeeded(struct aop *a, int target_state, long long deleted_at)
{
	struct eng_cycle *cy = a->cy;
	int ret = op_record(a, target_state, deleted_at);

	if (ret != 0) {
		xts_err("job %s: user %s: written but not recorded: %s (the next cycle compares again)",
			cy->c.name, a->sid, xts_strerror(ret));
		cy->result = cy->result != 0 ? cy->result : ret;
	}
	switch (action_of(a)) {
	case XTS_PROV_CREATE: cy->counts.created++; break;
	case XTS_PROV_DISABLE: cy->counts.disabled++; break;
	case XTS_PROV_DELETE: cy->counts.deleted++; break;
	default:
		if (a->kind != XTS_OP_MANAGER)
			cy->counts.updated++;
		break;
	}
	if (a->kind != XTS_OP_MANAGER || cy->e->o.provlog != NULL)
		log_op(a, action_of(a), XTS_PROV_SUCCESS, NULL, NULL, NULL);
	aop_finish(a);
}

static void
aop_finish(struct aop *a)
{
	struct eng_cycle *cy = a->cy;

	cy->inflight--;
	cy->counts.ops_done++;
	list_remove(cy, a);
	aop_free(a);
	if (cy->answers > 0)
		cy->refill_due = true; /* after the group's commit */
	else
		refill(cy);
}

/* ---- groups of answers ----------------------------------------------------- */

/* The target writer hands over a group of answers: the sub-responses of one
 * $batch answer (~20 ops), or what a stop ends (xts_batch_on_answers). What
 * they record shares one transaction, committed when the group ends, before
 * the writer sends anything more: one commit and one fsync per envelope, not
 * one per op. A crash before that commit leaves the group's ops in flight,
 * as a crash between an answer and its own commit did: recovery establishes
 * what the target holds (step_recover), whether one op or twenty wait for it.
 * Their provisioning-log lines are held until the commit, so that the log
 * never reports an outcome the store may still lose to a crash; and the
 * refills that their ends asked for run after it, each in a transaction of
 * its own (refill). */
void
eng_apply_answers_begin(void *arg)
{
	struct eng_cycle *cy = arg;

	if (cy->answers++ > 0)
		return;
	cy->answers_recorded = 0;
	/* without it (one is open, or BEGIN fails) each op commits alone */
	cy->answers_tx = !xts_store_in_tx(cy->st) && xts_store_begin(cy->st) == 0;
	if (cy->e->o.provlog != NULL)
		xts_provlog_hold(cy->e->o.provlog);
}

void
eng_apply_answers_end(void *arg)
{
	struct eng_cycle *cy = arg;

	if (cy->answers <= 0 || --cy->answers > 0)
		return;
	answers_close(cy);
	if (cy->refill_due) {
		cy->refill_due = false;
		refill(cy); /* may end the cycle: cy is not touched after it */
	}
}

/* The outermost group of answers ended: its commit, then its held log lines. */
static void
answers_close(struct eng_cycle *cy)
{
	int ret;

	if (cy->answers_tx) {
		cy->answers_tx = false;
		ret = xts_store_commit(cy->st);
		if (ret != 0) {
			xts_err("job %s: the outcomes of %lld ops written to the target were not "
				"recorded: %s (they stay in flight; the next cycle's recovery "
				"establishes them)", cy->c.name, cy->answers_recorded, xts_strerror(ret));
			cy->result = cy->result != 0 ? cy->result : ret;
		}
	}
	if (cy->e->o.provlog != NULL && xts_provlog_release(cy->e->o.provlog) != 0)
		xts_log_rl(XTS_LOG_WARNING, 60000, 3, "job %s: cannot write the provisioning log",
			   cy->c.name);
}

/* The cycle was stopped before this op's write went out (or before a retry
 * of one whose outcome recovery must establish anyway): planned again, not a
 * failure, nothing logged. The next cycle sends it; a create matches first. */
static void
op_unsent(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	int ret = xts_store_op_requeue(cy->st, a->id);

	if (ret != 0)
		xts_err("job %s: cannot put back the unsent op %lld: %s (recovered next cycle)", cy->c.name,
			a->id, xts_strerror(ret));
	xts_debug("job %s: %s of user %s not sent: the cycle was stopped", cy->c.name,
		  xts_op_kind_name(a->kind), a->sid);
	aop_finish(a);
}

/* ---- writes ------------------------------------------------------------------- */

/* The target user no longer exists (404 to a write or a read of it, and not
 * in the target's deleted items: purged 30 days after a soft delete, or
 * hard-deleted): forget the link and, for a user the job still wants in the
 * target, plan a create from the stored source attributes at once. Nothing
 * else would: an incremental cycle plans only users the source changed, and
 * "If a matching user isn't found in the target system, it's created"
 * (entra: app-provisioning/how-provisioning-works.md). The create matches
 * first. */
static void
forget_gone(struct aop *a, const struct xts_graph_error *ge)
{
	struct eng_cycle *cy = a->cy;
	long long in_scope = cy->counts.in_scope;
	int ret = xts_store_link_remove(cy->st, cy->c.name, a->sid);

	if (ret == 0)
		ret = xts_store_op_cancel(cy->st, a->id);
	/* eng_plan_user decides scope again: a user that left it is not created */
	if (ret == 0 && a->kind != XTS_OP_DISABLE && a->kind != XTS_OP_DELETE)
		ret = eng_plan_stored(cy, a->sid);
	cy->counts.in_scope = in_scope; /* counted once, when it was read */
	xts_warn("job %s: target user %s of %s is gone; %s", cy->c.name, a->lr.l.target_id, a->sid,
		 ret == 0 ? "the link is forgotten and a create planned if the user is in scope" :
			    "cannot plan its create now; the next cycle tries again");
	if (ret != 0) {
		cy->failed++;
		cy->ref_failed += a->kind == XTS_OP_MANAGER;
	}
	/* Graph's code for a missing object when no answer carried one */
	log_op(a, action_of(a), ret == 0 ? XTS_PROV_WARNING : XTS_PROV_FAILURE, ge, "Request_ResourceNotFound",
	       "the target user no longer exists");
	if (ret != 0)
		cy->counts.failed++;
	aop_finish(a);
}

/* GET /directory/deletedItems/{id} (directory-deleteditems-get.md) after a
 * 404 from the linked target user. Found: an administrator of the target
 * soft-deleted it. Microsoft's service does not restore such a user ("After
 * soft deleting a synchronized user in the target tenant, the user isn't
 * restored during the next synchronization cycle ... Solution: Manually
 * restore the soft-deleted user in the target tenant", entra: multi-tenant-
 * organizations/cross-tenant-synchronization-configure.md), and inviting
 * its address again would fail or make a second account beside it. So the
 * link is kept and the write waits in escrow (deferred, not a failure): once
 * the user is restored there, a retry writes it; once it is purged, the
 * retry's 404 finds it gone for good and it is created again. Any other
 * answer: failed, retried; never an invitation on a guess. */
static void
gone_check_cb(void *arg, const struct xts_graph_result *res)
{
	struct aop *a = arg;

	a->req = NULL;
	if (res->err == 0) {
		xts_warn("job %s: target user %s of %s is in the target tenant's deleted items (deleted there); "
			 "not restored and not invited again: restore it in the target tenant to resume",
			 a->cy->c.name, a->lr.l.target_id, a->sid);
		op_defer(a, "TargetUserSoftDeleted", "the target user was deleted in the target tenant and is in "
			 "its deleted items; restore it there (retried later)");
		return;
	}
	if (res->status == 404) {
		forget_gone(a, res->gerr);
		return;
	}
	op_failed(a, res->err, res->gerr, "the target user answered 404 and the target's deleted items cannot "
		  "be read");
}

/* The linked target user answered 404 to a write or a read. A disable or
 * delete of it is moot, and a restore's own 404 said it is not in deleted
 * items: gone. Anything else asks deleted items first (gone_check_cb). */
static void
target_gone(struct aop *a, const struct xts_graph_error *ge)
{
	char url[320];
	int ret;

	if (a->restored) {
		/* restored by this very op a moment ago: a 404 that outlasted the
		 * writer's retries is still Entra's replication, not a vanished
		 * user; forgetting the link would invite it again */
		op_failed(a, XTS_ENOENT, ge, "the user restored a moment ago is not visible yet; retried later");
		return;
	}
	if (a->kind == XTS_OP_DISABLE || a->kind == XTS_OP_DELETE || a->kind == XTS_OP_RESTORE) {
		forget_gone(a, ge);
		return;
	}
	snprintf(url, sizeof(url), "/directory/deletedItems/%s?$select=id", a->lr.l.target_id);
	ret = target_read(a, url, 0, gone_check_cb);
	if (ret != 0)
		op_failed(a, ret, NULL, "the target user answered 404; cannot read the target's deleted items");
}

static void
simple_cb(void *arg, const struct xts_batch_result *r)
{
	struct aop *a = arg;
	int gone = r->status == 404;

	if (r->err == XTS_ECANCELED) {
		op_unsent(a);
		return;
	}

	if (a->kind == XTS_OP_DELETE && (r->err == 0 || gone)) {
		op_succeeded(a, XTS_TARGET_SOFT_DELETED, xts_wall_ms());
		return;
	}
	if (gone && a->kind == XTS_OP_MANAGER && json_is_null(json_object_get(a->write, "manager"))) {
		/* DELETE manager/$ref answered 404: there is no manager, which is
		 * what the removal wanted */
		op_succeeded(a, -1, 0);
		return;
	}
	if (gone && a->kind != XTS_OP_MANAGER) {
		target_gone(a, r->gerr);
		return;
	}
	if (r->err != 0) {
		op_failed(a, r->err, r->gerr, NULL);
		return;
	}
	/* a Disable writes accountEnabled false, so it is recorded disabled */
	op_succeeded(a, enabled_state(a->write), 0);
}

static int
send_patch(struct aop *a, const char *tid, json_t *body)
{
	char url[256];

	snprintf(url, sizeof(url), "/users/%s", tid);
	return a->cy->target->ops->write(a->cy->target, "PATCH", url, body, simple_cb, a);
}

/* ---- reads ------------------------------------------------------------------- */

/* A read's answer from the $batch writer, handed to a->read_cb as the graph
 * client would hand it. A stop ends a queued read with XTS_ECANCELED: the op
 * is planned again, as when eng_apply_stop cancels a read of its own. */
static void
read_batched_cb(void *arg, const struct xts_batch_result *r)
{
	struct aop *a = arg;
	struct xts_graph_result res;

	if (r->err == XTS_ECANCELED) {
		op_unsent(a);
		return;
	}
	memset(&res, 0, sizeof(res));
	res.err = r->err;
	res.status = r->status;
	res.body = r->body;
	res.gerr = r->gerr;
	a->read_cb(a, &res);
}

/* ",name" onto a $select list: a comma and the name, not xts_buf_printf,
 * whose vsnprintf cost ~1,400 instructions a name (a create's matching
 * queries list ~20 each). 0 or XTS_ENOMEM. */
static int
select_add(struct xts_buf *b, const char *name)
{
	return xts_buf_putc(b, ',') != 0 || xts_buf_puts(b, name) != 0 ? XTS_ENOMEM : 0;
}

/* GET url (relative to /v1.0) from the target for op a; cb ends or carries
 * on the op. The read goes as a sub-request of the writer's $batch
 * envelopes (a GET is one like any other, json-batching.md), so the
 * matching queries of 20 creates cost one HTTP request, not 20. It goes as
 * a request of its own for an advanced query (its ConsistencyLevel header;
 * the writer sends none) and in a dry run (the null back end sends nothing,
 * but its matches must read the real target). 0, or XTS_E*: nothing sent. */
static int
target_read(struct aop *a, const char *url, int flags, xts_graph_cb cb)
{
	struct eng_cycle *cy = a->cy;
	struct xts_buf b = XTS_BUF_INIT;
	int ret;

	if (cy->target->ops->read != NULL && flags == 0) {
		a->read_cb = cb;
		return cy->target->ops->read(cy->target, url, read_batched_cb, a);
	}
	ret = xts_buf_printf(&b, "/v1.0%s", url);
	if (ret == 0)
		ret = xts_graph_request(cy->tgt->g, "GET", xts_buf_str(&b), NULL, flags, cb, a, &a->req);
	xts_buf_free(&b);
	return ret;
}

/* ---- read before writing ------------------------------------------------------ */

/* The target holds what the op would write: nothing is sent. What was read
 * (a->held, or the manager in a->write) is recorded as exported, so later
 * cycles compare against it. No provisioning-log line and not counted as an
 * update, as for a user the plan finds unchanged: nothing was written. */
static void
op_unchanged(struct aop *a, const char *what)
{
	struct eng_cycle *cy = a->cy;
	int ret = op_record(a, -1, 0);

	if (ret != 0) {
		xts_err("job %s: user %s: cannot record what the target holds: %s (read again next cycle)",
			cy->c.name, a->sid, xts_strerror(ret));
		cy->result = cy->result != 0 ? cy->result : ret;
	}
	xts_debug("job %s: user %s: target user %s already has %s; nothing written", cy->c.name, a->sid,
		  a->lr.l.target_id, what);
	aop_finish(a);
}

/* Whether the target user must be read before a->write is sent: the link
 * records no attribute value at all (the manager and the link attribute
 * aside). That is every link after `restart` (exported cleared,
 * xts_store_reset_job) and a user invited whose attribute PATCH failed
 * (exported is {"manager": null}): what the target holds is unknown and may
 * well be all of it, so a read can save the write. Once a PATCH of ours was
 * recorded, the plan wrote only what differs from it; an attribute that
 * record lacks was empty when we wrote (null values are not written at
 * create), so an update that sets it is sent without a read. */
static bool
held_unknown(const struct aop *a)
{
	const char *key;
	json_t *v;

	json_object_foreach(a->lr.l.exported, key, v)
		if (strcmp(key, a->cy->c.link_attr) != 0 && strcmp(key, "manager") != 0)
			return false;
	return true;
}

/* name in a Graph object, compared without case when not found as is (as
 * the mapping diff looks exported values up). Borrowed; NULL if absent. */
static json_t *
get_ci(const json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	const char *k;

	if (v != NULL)
		return v;
	json_object_foreach((json_t *)o, k, v)
		if (strcasecmp(k, name) == 0)
			return v;
	return NULL;
}

/* What the target holds, from the user read: every key of a->write (null
 * when the target has no value), plus accountEnabled and the link attribute
 * when returned. A new object, NULL without memory. */
static json_t *
held_from(struct aop *a, const json_t *user)
{
	const char *extra[2] = { "accountEnabled", a->cy->c.link_attr }, *key;
	json_t *held = json_object(), *v, *f;
	size_t i;

	json_object_foreach(a->write, key, v) {
		f = get_ci(user, key);
		if (held == NULL || json_object_set(held, key, f != NULL ? f : json_null()) != 0)
			goto fail;
	}
	for (i = 0; i < 2; i++) {
		f = get_ci(user, extra[i]);
		if (f != NULL && json_object_set(held, extra[i], f) != 0)
			goto fail;
	}
	return held;
fail:
	json_decref(held);
	return NULL;
}

/* a->write := what differs from the user read (xts_mapping_diff, as adopt
 * does; the link attribute kept only when the target does not carry our
 * value), a->old and a->held := what the target holds. 0 or XTS_E*. */
static int
held_apply(struct aop *a, const json_t *user)
{
	struct eng_cycle *cy = a->cy;
	const char *la = cy->c.link_attr;
	json_t *held = held_from(a, user), *want = json_copy(a->write), *ch = NULL, *lv, *hv;
	int ret = held == NULL || want == NULL ? XTS_ENOMEM : 0;

	lv = json_incref(json_object_get(want, la));
	if (ret == 0 && lv != NULL)
		json_object_del(want, la);
	if (ret == 0)
		ret = xts_mapping_diff(cy->sch->s, want, held, &ch);
	hv = json_object_get(held, la);
	if (ret == 0 && lv != NULL && !(json_is_string(lv) && json_is_string(hv) &&
					  strcasecmp(json_string_value(lv), json_string_value(hv)) == 0) &&
	    json_object_set(ch, la, lv) != 0)
		ret = XTS_ENOMEM;
	json_decref(lv);
	json_decref(want);
	if (ret != 0) {
		json_decref(held);
		json_decref(ch);
		return ret;
	}
	json_decref(a->write);
	a->write = ch;
	json_decref(a->old);
	a->old = json_incref(held);
	json_decref(a->held);
	a->held = held;
	return 0;
}

/* Whether this read checks a restore that answered 404 (restore_cb): the
 * link still says soft-deleted. */
static bool
confirming_restore(const struct aop *a)
{
	return a->kind == XTS_OP_RESTORE && a->lr.l.target_state == XTS_TARGET_SOFT_DELETED;
}

/* GET /users/{id}?$select=... (user-get.md) answered. 404: the user is gone,
 * as when a PATCH answers 404. Found: only the differences are written, or
 * nothing. Any other failure (after the graph client's own retries) falls
 * back to the PATCH as planned, which is idempotent: the read only ever
 * saves a write, it never delays or loses one (as manager_read_cb). */
static void
user_read_cb(void *arg, const struct xts_graph_result *res)
{
	struct aop *a = arg;
	struct eng_cycle *cy = a->cy;
	bool confirm = confirming_restore(a);
	int ret, st;

	a->req = NULL;
	if (res->err != 0 && res->status == 404) {
		target_gone(a, res->gerr);
		return;
	}
	if (res->err != 0 || !json_is_object(res->body)) {
		if (confirm) {
			/* The PATCH could not tell a restored user from a deleted one. */
			op_failed(a, res->err != 0 ? res->err : XTS_EPARSE, res->gerr,
				  "the restore answered 404 and the target user cannot be read");
			return;
		}
		xts_debug("job %s: user %s: cannot read target user %s (%s); writing as planned", cy->c.name,
			  a->sid, a->lr.l.target_id, xts_errname(res->err != 0 ? res->err : XTS_EPARSE));
		ret = send_patch(a, a->lr.l.target_id, a->write);
		if (ret != 0)
			op_failed(a, ret, NULL, "cannot queue the write");
		return;
	}
	ret = held_apply(a, res->body);
	if (ret == 0 && confirm) {
		/* Live: restored already. Recorded now, so a retry of a failed
		 * PATCH does not POST the restore again. */
		st = enabled_state(a->held);
		st = st < 0 ? XTS_TARGET_ACTIVE : st;
		ret = xts_store_link_set_target_state(cy->st, cy->c.name, a->sid, st, 0);
		if (ret == 0) {
			a->lr.l.target_state = st;
			xts_info("job %s: user %s: target user %s is not in deleted items but exists: restored already",
				 cy->c.name, a->sid, a->lr.l.target_id);
		}
	}
	if (ret == 0 && json_object_size(a->write) > 0)
		ret = send_patch(a, a->lr.l.target_id, a->write);
	else if (ret == 0 && (confirm || a->restored))
		op_succeeded(a, -1, 0); /* the restore (ours, or found in effect) is a change: logged */
	else if (ret == 0)
		op_unchanged(a, "every value the op writes");
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot compare with the target user");
}

/* Read the linked target user: the keys of a->write, accountEnabled (its
 * state) and the link attribute. The op is in flight in the store already,
 * nothing else is recorded before the read; a stop cancels it (target_read)
 * and puts the op back as planned. 0, or XTS_E* when it cannot be sent. */
static int
read_user(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	struct xts_buf b = XTS_BUF_INIT;
	const char *key;
	json_t *v;
	int ret = xts_buf_printf(&b, "/users/%s?$select=accountEnabled", a->lr.l.target_id);

	/* Dry run before the link attribute is registered: not selectable. */
	if (ret == 0 && !cy->link_missing)
		ret = select_add(&b, cy->c.link_attr);
	json_object_foreach(a->write, key, v)
		if (ret == 0 && strcmp(key, cy->c.link_attr) != 0 && strcmp(key, "accountEnabled") != 0)
			ret = select_add(&b, key);
	if (ret == 0)
		ret = target_read(a, xts_buf_str(&b), 0, user_read_cb);
	xts_buf_free(&b);
	return ret;
}

/* PATCH a->write (not empty) to the linked target user; first read it when
 * the link does not know what it holds (held_unknown). 0, or XTS_E* when
 * nothing could be sent; the callbacks end the op. */
static int
write_user(struct aop *a)
{
	return held_unknown(a) ? read_user(a) : send_patch(a, a->lr.l.target_id, a->write);
}

/* POST /directory/deletedItems/{id}/restore answered. */
static void
restore_cb(void *arg, const struct xts_batch_result *r)
{
	struct aop *a = arg;
	int ret;

	if (r->err != 0 && r->status == 404) {
		/* Not in deleted items: restored already (a POST of ours whose
		 * outcome was not recorded: a crash before restore_cb, a lost
		 * response; or an administrator), or deleted for good. The read
		 * tells which (user_read_cb). */
		ret = read_user(a);
		if (ret != 0)
			op_failed(a, ret, NULL, "cannot read the user after the restore answered 404");
		return;
	}
	if (r->err != 0) {
		simple_cb(arg, r);
		return;
	}
	a->restored = true;
	/* the PATCH that follows may reach a replica that has not seen the
	 * restore yet: its 404 is retried, not taken for a vanished user */
	if (a->cy->target->ops->note_fresh != NULL)
		a->cy->target->ops->note_fresh(a->cy->target, a->lr.l.target_id);
	ret = xts_store_link_set_target_state(a->cy->st, a->cy->c.name, a->sid, XTS_TARGET_ACTIVE, 0);
	if (ret == 0)
		a->lr.l.target_state = XTS_TARGET_ACTIVE;
	if (ret == 0 && json_object_size(a->write) > 0)
		ret = write_user(a);
	else if (ret == 0)
		op_succeeded(a, XTS_TARGET_ACTIVE, 0);
	if (ret != 0)
		op_failed(a, ret, NULL, "after restore");
}

/* The restore as a request of its own, not a $batch sub-request: it takes
 * no body ("Do not supply a request body", directory-deleteditems-
 * restore.md), while json-batching.md wants a batched request without one
 * to carry headers and an empty body all the same. Alone it is exactly the
 * documented request; restores are rare. A stop cancels it like a read
 * (a->req; the op is planned again): if Graph did restore the user, the
 * retry's POST answers 404 and the read finds the user alive (restore_cb). */
static void
restore_direct_cb(void *arg, const struct xts_graph_result *res)
{
	struct aop *a = arg;
	struct xts_batch_result r;

	a->req = NULL;
	memset(&r, 0, sizeof(r));
	r.err = res->err;
	r.status = res->status;
	r.body = res->body;
	r.gerr = res->gerr;
	restore_cb(a, &r);
}

static int
send_restore(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	char url[320];

	if (cy->dry) { /* the dry-run back end records it, sends nothing */
		snprintf(url, sizeof(url), "/directory/deletedItems/%s/restore", a->lr.l.target_id);
		return cy->target->ops->write(cy->target, "POST", url, NULL, restore_cb, a);
	}
	snprintf(url, sizeof(url), "/v1.0/directory/deletedItems/%s/restore", a->lr.l.target_id);
	return xts_graph_request(cy->tgt->g, "POST", url, NULL, 0, restore_direct_cb, a, &a->req);
}

/* ---- create: match, then invite ------------------------------------------------- */

/* This source user's link value ("sourceTenantId:sourceId") into v (n bytes). */
static int
own_link(const struct aop *a, char *v, size_t n)
{
	const char *tid = a->cy->job->source_tid_guid != NULL ? a->cy->job->source_tid_guid :
							     a->cy->src->tenant_id;

	return xts_engine_link_value(tid, a->sid, v, n);
}

static json_t *
link_pair(struct aop *a)
{
	char v[256];

	if (own_link(a, v, sizeof(v)) != 0)
		return NULL;
	return json_string(v);
}

static void
create_cb(void *arg, const struct xts_batch_result *r)
{
	struct aop *a = arg;
	struct eng_cycle *cy = a->cy;

	if (r->user_id != NULL) {
		struct xts_store_link l;
		int ret;
		memset(&l, 0, sizeof(l));
		l.source_id = a->sid;
		l.target_id = r->user_id;
		l.origin = XTS_LINK_CREATED;
		l.target_state = XTS_TARGET_ACTIVE;
		/* A user just invited has no manager: known, so its manager op
		 * writes without reading first (dispatch_manager). Without
		 * memory it stays unknown, which costs a read, nothing else. */
		l.exported = json_pack("{s:n}", "manager");
		/* Recorded as soon as the invitation returned the id. */
		ret = xts_store_link_put(cy->st, cy->c.name, &l);
		json_decref(l.exported);
		if (ret != 0)
			xts_err("job %s: cannot record the link of %s -> %s: %s", cy->c.name, a->sid,
				r->user_id, xts_strerror(ret));
		xts_free((char *)a->lr.l.target_id);
		a->lr.l.target_id = xts_strdup(r->user_id);
	}
	if (r->err == XTS_ECANCELED && r->step == 2 && r->user_id != NULL) {
		/* Invited (the link is recorded above), stopped before the
		 * attribute PATCH: the user exists, so its Create is logged now;
		 * the planned op makes the PATCH next cycle (the linked path). */
		cy->counts.created++;
		log_op(a, XTS_PROV_CREATE, XTS_PROV_WARNING, NULL, xts_errname(XTS_ECANCELED),
		       "invited; the cycle was stopped before the attribute update, which the next cycle makes");
		op_unsent(a);
		return;
	}
	if (r->err == XTS_ECANCELED) {
		op_unsent(a);
		return;
	}
	if (r->err != 0) {
		op_failed(a, r->err, r->gerr, r->step == 2 ? "invited, but the attribute update failed" :
			  "the invitation failed");
		return;
	}
	/* A source user disabled when created is created disabled: recorded as
	 * such, or leaving scope would plan a Disable that writes nothing new. */
	op_succeeded(a, enabled_state(a->write) == XTS_TARGET_DISABLED ? XTS_TARGET_DISABLED : XTS_TARGET_ACTIVE,
		     0);
}

static void
invite(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	/* the source UPN when it is not the mail (create_payload) */
	const char *email = json_is_string(json_object_get(a->payload, "invite")) ?
				    json_string_value(json_object_get(a->payload, "invite")) :
				    json_string_value(json_object_get(a->payload, "email"));
	json_t *inv;
	int ret;

	if (email == NULL) {
		op_failed(a, XTS_EINVAL, NULL, "the source user has neither mail nor userPrincipalName");
		return;
	}
	inv = json_pack("{s:s,s:s?,s:s,s:s,s:b}", "invitedUserEmailAddress", email,
			"invitedUserDisplayName", json_string_value(json_object_get(a->payload, "displayName")),
			"inviteRedirectUrl", "https://myapplications.microsoft.com",
			"invitedUserType", "Member", "sendInvitationMessage", 0);
	if (inv == NULL) {
		op_failed(a, XTS_ENOMEM, NULL, NULL);
		return;
	}
	eng_plan_line(cy, "CREATE user %s (%s)", a->sid, email);
	ret = cy->target->ops->create_user(cy->target, inv, a->write, create_cb, a);
	json_decref(inv);
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot queue the invitation");
}

/* A match: link, then PATCH only what differs from the found user. */
static void
adopt(struct aop *a, json_t *found)
{
	struct eng_cycle *cy = a->cy;
	struct xts_store_link l;
	const char *tid = json_string_value(json_object_get(found, "id"));
	json_t *changes = NULL;
	int ret;

	memset(&l, 0, sizeof(l));
	l.source_id = a->sid;
	l.target_id = tid;
	l.origin = a->attempts > 1 ? XTS_LINK_ADOPTED : XTS_LINK_MATCHED;
	l.target_state = json_is_false(json_object_get(found, "accountEnabled")) ? XTS_TARGET_DISABLED :
										       XTS_TARGET_ACTIVE;
	ret = !xts_is_object_id(tid) ? XTS_EPARSE : xts_store_link_put(cy->st, cy->c.name, &l);
	if (ret == 0)
		ret = xts_mapping_diff(cy->sch->s, a->write, found, &changes);
	if (ret != 0) {
		json_decref(changes);
		op_failed(a, ret, NULL, ret == XTS_EEXIST ? "the matched target user is linked to another source user" :
			  "cannot link the matched user");
		return;
	}
	xts_free((char *)a->lr.l.target_id);
	a->lr.l.target_id = xts_strdup(tid);
	json_decref(a->old);
	a->old = json_incref(found);
	/* exported := what the target holds now, so only differences are written */
	/* A source without a manager plans no manager op: the target user
	 * keeps the manager it holds (the FAQ rule, engine_plan.c). */
	ret = xts_store_link_set_exported(cy->st, cy->c.name, a->sid, found);
	json_decref(a->write);
	a->write = changes;
	xts_info("job %s: user %s matched target user %s (%s)", cy->c.name, a->sid, tid, a->matched_by);
	eng_plan_line(cy, "MATCH user %s -> target user %s (%s)", a->sid, tid, a->matched_by);
	if (ret == 0 && json_object_size(changes) > 0)
		ret = send_patch(a, tid, changes);
	else if (ret == 0)
		op_succeeded(a, -1, 0);
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot update the matched user");
}

static char *
match_select(struct aop *a)
{
	struct xts_buf b = XTS_BUF_INIT;
	const char *key;
	json_t *v;
	int ret = a->cy->link_missing ? xts_buf_printf(&b, "id,accountEnabled,creationType,userPrincipalName") :
		  xts_buf_printf(&b, "id,accountEnabled,creationType,userPrincipalName,%s", a->cy->c.link_attr);

	json_object_foreach(a->write, key, v)
		if (ret == 0 && strcmp(key, a->cy->c.link_attr) != 0 && strcmp(key, "id") != 0 &&
		    strcmp(key, "accountEnabled") != 0 && strcmp(key, "creationType") != 0 &&
		    strcmp(key, "userPrincipalName") != 0)
			ret = select_add(&b, key);
	if (ret != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

/* Whether a target user found by a matching query is one of the target
 * tenant's own (member or guest): "Cross-tenant synchronization can't match
 * an internal user in the source tenant with an internal user in the target
 * tenant (both type member and type guest)" (entra: multi-tenant-
 * organizations/cross-tenant-synchronization-overview.md). An external user
 * was invited (creationType "Invitation", user.md) and has an #EXT# UPN. A
 * user carrying our link attribute is ours whatever it says. */
static bool
is_internal(const json_t *u)
{
	const char *ct = json_string_value(json_object_get(u, "creationType"));
	const char *upn = json_string_value(json_object_get(u, "userPrincipalName"));

	if (ct != NULL && strcasecmp(ct, "Invitation") == 0)
		return false;
	return upn == NULL || strstr(upn, "#EXT#") == NULL;
}

/* Whether a target user found by a matching query carries the link of
 * another source user (a value that is not this user's). */
static bool
linked_elsewhere(struct aop *a, const json_t *found)
{
	struct eng_cycle *cy = a->cy;
	const char *have;
	char mine[256];

	if (cy->link_off || cy->link_missing || cy->c.link_attr == NULL)
		return false;
	have = json_string_value(json_object_get(found, cy->c.link_attr));
	if (have == NULL || have[0] == '\0' || own_link(a, mine, sizeof(mine)) != 0)
		return false;
	return strcmp(have, mine) != 0;
}

static void
match_cb(void *arg, const struct xts_graph_result *res)
{
	struct aop *a = arg;
	json_t *v = json_object_get(res->body, "value");

	a->req = NULL;
	if (res->err != 0) {
		op_failed(a, res->err, res->gerr, "the matching query failed");
		return;
	}
	if (json_array_size(v) > 1) {
		op_failed(a, XTS_EEXIST, NULL, "more than one target user matches; not choosing one");
		return;
	}
	if (json_array_size(v) == 1) {
		json_t *found = json_array_get(v, 0);
		if (a->match_stage > 0 && is_internal(found)) {
			op_failed(a, XTS_EEXIST, NULL, "the matching target user is internal to the target tenant "
				  "(not an invited external user); cross-tenant synchronization never matches "
				  "internal users");
			return;
		}
		if (a->match_stage > 0 && linked_elsewhere(a, found)) {
			/* Another source user's (another job's, in a many-to-one
			 * topology, or a namesake's): Microsoft matches only on
			 * the source-specific alternativeSecurityIds, so it is
			 * not this user's. The next stage, or an invitation at
			 * this user's own UPN, gives it a target user of its own. */
			xts_info("job %s: user %s: target user %s found by %s is linked to another source user; "
				 "not adopted", a->cy->c.name, a->sid,
				 json_string_value(json_object_get(found, "id")) != NULL ?
				 json_string_value(json_object_get(found, "id")) : "?", a->matched_by);
			/* Found by the very address this user would be invited at:
			 * Graph answers such an invitation with the user that holds
			 * the address, which would then be taken over. Refuse. */
			if (strcmp(a->matched_by, "Matched by the invited e-mail address") == 0) {
				op_failed(a, XTS_EEXIST, NULL, "the target user holding this user's address is linked "
					  "to another source user; not invited (the invitation would return that user)");
				return;
			}
			a->match_stage++;
			match_next(a);
			return;
		}
		if (json_object_get(a->write, "userPrincipalName") == NULL)
			json_object_del(found, "userPrincipalName");
		json_object_del(found, "creationType"); /* read to decide, never mapped */
		adopt(a, found);
		return;
	}
	a->match_stage++;
	match_next(a);
}

/* Whether "attr eq 'v'" on users needs the advanced query parameters:
 * ConsistencyLevel: eventual and $count=true, else Graph answers 400
 * Request_UnsupportedQuery (concepts/aad-advanced-queries.md; the eq column
 * of its table, includes/filter-directory-objects.md in
 * microsoftgraph/microsoft-graph-docs-contrib). Every other property stays
 * a plain query, which reads the directory itself: an advanced one reads an
 * index that is eventually consistent, and the link attribute (an extension)
 * and the invited e-mail address, which stop a duplicate after a crash, must
 * find a user created a moment ago. */
static bool
match_needs_advanced(const char *attr)
{
	static const char *const advanced[] = {
		"companyName", "employeeHireDate", "employeeType", "mobilePhone", "officeLocation",
		"onPremisesExtensionAttributes", "onPremisesImmutableId", "onPremisesLastSyncDateTime",
		"onPremisesSamAccountName", "passwordPolicies", "postalCode", "preferredLanguage",
		"showInAddressList", "streetAddress",
	};
	size_t i, n;

	for (i = 0; i < sizeof(advanced) / sizeof(advanced[0]); i++) {
		n = strlen(advanced[i]); /* the property, or a path under it */
		if (strncmp(attr, advanced[i], n) == 0 && (attr[n] == '\0' || attr[n] == '/'))
			return true;
	}
	return false;
}

static void
match_next(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	const struct xts_schema_mapping *m[16];
	size_t nm = xts_schema_matching(cy->sch->s, m, 16);
	const char *attr = NULL;
	json_t *val = NULL;
	char *q = NULL, *flt = NULL, *enc = NULL, *sel = NULL, *url = NULL;
	size_t len;
	bool adv;
	int ret = 0;

	if (nm > 16)
		nm = 16;
	if (a->match_stage == 0) {
		/* Dry run before the link attribute exists: no user carries it. */
		attr = cy->c.link_attr;
		val = cy->link_missing ? NULL : json_object_get(a->write, cy->c.link_attr);
		a->matched_by = "Matched by the xtsync link attribute";
	} else if ((size_t)a->match_stage <= nm) {
		attr = m[a->match_stage - 1]->target;
		val = json_object_get(a->write, attr);
		a->matched_by = "Matched by a matchingPriority attribute";
	} else if ((size_t)a->match_stage == nm + 1 && json_is_string(json_object_get(a->payload, "invite"))) {
		/* The mail differs from the UPN the user is invited at: a guest
		 * invited by hand at either address is this person. */
		attr = "mail";
		val = json_object_get(a->payload, "email");
		a->matched_by = "Matched by the source user's mail";
	} else if ((size_t)a->match_stage <= nm + 2) {
		/* The address the invitation goes to (invite()): Graph answers
		 * an invitation to an address a user holds with that user, which
		 * must then be matched (update rules: a guest stays a guest),
		 * never taken over as a Create. */
		attr = "mail";
		val = json_object_get(a->payload, json_is_string(json_object_get(a->payload, "invite")) ? "invite" :
											      "email");
		a->matched_by = "Matched by the invited e-mail address";
		a->match_stage = (int)nm + 2;
	} else {
		a->matched_by = NULL;
		invite(a);
		return;
	}
	if (!json_is_string(val) || json_string_length(val) == 0) {
		a->match_stage++;
		match_next(a);
		return;
	}
	q = eng_odata_quote(json_string_value(val));
	len = strlen(attr) + (q != NULL ? strlen(q) : 0) + 8;
	flt = q != NULL ? xts_malloc(len) : NULL;
	if (flt != NULL)
		snprintf(flt, len, "%s eq %s", attr, q);
	enc = flt != NULL ? eng_urlenc(flt) : NULL;
	sel = match_select(a);
	adv = match_needs_advanced(attr);
	if (enc != NULL && sel != NULL) {
		len = strlen(enc) + strlen(sel) + 64;
		url = xts_malloc(len);
		if (url != NULL)
			snprintf(url, len, "/users?$filter=%s&$select=%s%s", enc, sel, adv ? "&$count=true" : "");
	}
	if (url == NULL)
		ret = XTS_ENOMEM;
	else
		ret = target_read(a, url, adv ? XTS_GRAPH_ADVANCED : 0, match_cb);
	xts_free(q);
	xts_free(flt);
	xts_free(enc);
	xts_free(sel);
	xts_free(url);
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot send the matching query");
}

/* ---- manager references ------------------------------------------------------- */

/* Write the reference: PUT manager/$ref naming a->mgr_tid
 * (user-post-manager.md), or DELETE it when a->mgr_tid is NULL
 * (user-delete-manager.md): only for a {"manager": null} op an earlier
 * version planned and left in the store; the plan makes none now (a manager
 * removed in the source is not updated in the target: the FAQ).
 * 0, or XTS_E* when it cannot be queued. */
static int
manager_write(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	const struct xts_tenant_conn *tc;
	char url[320], ref[512];
	json_t *body;
	int ret;

	snprintf(url, sizeof(url), "/users/%s/manager/$ref", a->lr.l.target_id);
	if (a->mgr_tid == NULL)
		return cy->target->ops->write(cy->target, "DELETE", url, NULL, simple_cb, a);
	tc = xts_graph_conn(cy->tgt->g);
	snprintf(ref, sizeof(ref), "%s/v1.0/users/%s",
		 tc != NULL && tc->graph_endpoint != NULL ? tc->graph_endpoint : "https://graph.microsoft.com",
		 a->mgr_tid);
	body = json_pack("{s:s}", "@odata.id", ref);
	ret = body == NULL ? XTS_ENOMEM : cy->target->ops->write(cy->target, "PUT", url, body, simple_cb, a);
	json_decref(body);
	return ret;
}

/* Graph answers GET /users/{id}/manager with the manager (a directoryObject;
 * $select=id is enough: api-reference/v1.0/api/user-list-manager.md in
 * microsoftgraph/microsoft-graph-docs-contrib) or, when there is none, 404
 * Request_ResourceNotFound "Resource 'manager' does not exist" (by design:
 * github.com/microsoftgraph/aspnet-snippets-sample/issues/6). A failed
 * read (after the graph client's own retries of 429/5xx) falls back to the
 * write, which is idempotent and what the op was going to send anyway: the
 * read only ever saves a write, it never delays or loses one, and the
 * write's failure goes through the usual escrow path. Escrowing the op on a
 * failed read instead would count a read toward the quarantine rule and
 * could hold the reference back for good if reads alone kept failing. */
static void
manager_read_cb(void *arg, const struct xts_graph_result *res)
{
	struct aop *a = arg;
	struct eng_cycle *cy = a->cy;
	const char *cur = NULL;
	bool none = false;
	int ret;

	a->req = NULL;
	if (res->err == 0)
		cur = json_string_value(json_object_get(res->body, "id"));
	else
		none = res->status == 404 && res->gerr != NULL &&
		       strcmp(res->gerr->code, "Request_ResourceNotFound") == 0;
	if (a->mgr_tid == NULL ? none : cur != NULL && strcasecmp(cur, a->mgr_tid) == 0) {
		op_unchanged(a, "that manager");
		return;
	}
	if (res->err != 0 && !none)
		xts_debug("job %s: user %s: cannot read the manager of target user %s (%s); writing it",
			  cy->c.name, a->sid, a->lr.l.target_id, xts_errname(res->err));
	ret = manager_write(a);
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot queue the write");
}

/* Whether the target's manager must be read before writing it: the link
 * has no "manager" key in exported, so we neither wrote nor read it. That is
 * a matched or adopted user (exported := the found values, adopt) or any
 * link after `restart` (exported cleared, xts_store_reset_job): the target
 * may well hold that manager already. A user we invited starts with
 * "manager": null (create_cb), so a new user costs no read. */
static bool
manager_unknown(const struct aop *a)
{
	return json_object_get(a->lr.l.exported, "manager") == NULL;
}

/* A manager op (payload {"manager": source id or null}), the user linked.
 * Ends the op itself on every path. */
static void
dispatch_manager(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	const char *mgr = json_string_value(json_object_get(a->payload, "manager"));
	char url[320];
	int ret = 0;

	if (mgr != NULL) {
		ret = xts_store_link_target(cy->st, cy->c.name, mgr, &a->mgr_tid);
		if (ret == XTS_ENOENT) {
			/* As Microsoft does: a reference to an object not provisioned
			 * (yet) is left unset and tried again on later cycles. */
			op_defer(a, "ReferenceNotYetProvisioned",
				 "the manager has no target user yet (retried later)");
			return;
		}
	}
	if (ret == 0) {
		/* exported keeps the source's manager id, as the plan compares */
		a->write = mgr != NULL ? json_pack("{s:s}", "manager", mgr) : json_pack("{s:n}", "manager");
		ret = a->write == NULL ? XTS_ENOMEM : 0;
	}
	if (ret == 0 && manager_unknown(a)) {
		/* A read: the op is in flight in the store already, nothing
		 * else is recorded before it; a stop cancels it (target_read)
		 * and puts the op back as planned. */
		snprintf(url, sizeof(url), "/users/%s/manager?$select=id", a->lr.l.target_id);
		ret = target_read(a, url, 0, manager_read_cb);
	} else if (ret == 0) {
		ret = manager_write(a);
	}
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot queue the write");
}

/* ---- dispatch ----------------------------------------------------------------- */

/* A create writes no null: Graph refuses null for some properties (a
 * collection such as businessPhones) and an absent value is already empty. */
static void
drop_nulls(json_t *o)
{
	const char *key;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(o, tmp, key, v)
		if (json_is_null(v))
			json_object_del(o, key);
}

/* What a create writes (a->write, a->red): the schema applied to the stored
 * source row, now (engine_plan.c plans a create without values). An op
 * planned by an earlier version carries its values. 0, or the op is ended
 * (a mapping that fails is a failure, escrowed and tried again). */
static int
create_values(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	struct xts_expr_error xe;
	json_t *had = json_object_get(a->payload, "attrs");
	int ret;

	if (had != NULL) {
		/* A failed copy is out of memory, never "no attributes to write". */
		a->write = json_deep_copy(had);
		ret = a->write == NULL ? XTS_ENOMEM : 0;
	} else if (a->attrs == NULL) {
		/* No source row (cannot be, while its create is open): nothing to create from. */
		xts_warn("job %s: user %s: no stored source attributes; its create is cancelled",
			 cy->c.name, a->sid);
		ret = xts_store_op_cancel(cy->st, a->id);
		if (ret != 0)
			op_failed(a, ret, NULL, NULL);
		else
			aop_finish(a);
		return -1;
	} else {
		memset(&xe, 0, sizeof(xe));
		ret = eng_create_values(cy->sch->s, a->attrs, &a->write, &a->red, &xe);
		if (ret == XTS_EEXPR) {
			op_escrow(a, ret, NULL, "ExpressionEvaluationFailed", xe.message, true);
			return -1;
		}
	}
	if (ret != 0) {
		op_failed(a, ret, NULL, NULL);
		return -1;
	}
	return 0;
}

static void
dispatch(struct aop *a)
{
	struct eng_cycle *cy = a->cy;
	char url[320];
	int ret;

	memset(&a->lr, 0, sizeof(a->lr));
	ret = xts_store_link_get(cy->st, cy->c.name, a->sid, &a->lr);
	if (ret != 0 && ret != XTS_ENOENT) {
		op_failed(a, ret, NULL, NULL);
		return;
	}
	a->linked = ret == 0;
	if (a->kind == XTS_OP_CREATE) {
		/* what it writes is mapped from them (create_values) */
		struct xts_store_user_row ur;
		memset(&ur, 0, sizeof(ur));
		ret = xts_store_user_get(cy->st, cy->c.name, a->sid, &ur);
		if (ret == 0 && ur.u.attrs != NULL)
			a->attrs = json_incref(ur.u.attrs);
		xts_store_user_row_clear(&ur);
		if (ret != 0 && ret != XTS_ENOENT) {
			/* not "no row": the store failed; tried again later */
			op_failed(a, ret, NULL, NULL);
			return;
		}
	} else {
		/* the log line's names only: not the whole row parsed */
		(void)xts_store_user_identity(cy->st, cy->c.name, a->sid, &a->attrs);
	}
	if (a->kind != XTS_OP_CREATE && !a->linked) {
		if (a->kind == XTS_OP_MANAGER) {
			/* The user's create is still pending or failed (counted
			 * there): the reference waits, it is not a second failure. */
			op_defer(a, "UserNotYetProvisioned", "the user is not linked yet (retried later)");
			return;
		}
		xts_store_op_cancel(cy->st, a->id);
		aop_finish(a);
		return;
	}
	switch (a->kind) {
	case XTS_OP_CREATE:
		if (create_values(a) != 0)
			return;
		if (a->linked) {
			/* Invited earlier but the attribute write failed: update. */
			json_t *ch = NULL;

			if (!cy->link_off &&
			    json_object_set_new(a->write, cy->c.link_attr, link_pair(a)) != 0) {
				op_failed(a, XTS_ENOMEM, NULL, NULL);
				return;
			}
			ret = xts_mapping_diff(cy->sch->s, a->write, a->lr.l.exported, &ch);
			if (ret == 0) {
				a->old = a->lr.l.exported != NULL ? json_incref(a->lr.l.exported) : NULL;
				json_decref(a->write);
				a->write = ch;
				ret = json_object_size(ch) > 0 ? write_user(a) : 0;
				if (ret == 0 && json_object_size(ch) == 0)
					op_succeeded(a, -1, 0);
			} else {
				json_decref(ch);
			}
			break;
		}
		drop_nulls(a->write);
		ret = cy->link_off || json_object_set_new(a->write, cy->c.link_attr, link_pair(a)) == 0 ?
			      0 : XTS_ENOMEM;
		/* The plan says CREATE only when no target user matched
		 * (invite) and MATCH when one did (adopt): a dry run or
		 * preview of an initial cycle over a populated target must
		 * not announce invitations the cycle will not send. */
		if (ret == 0)
			match_next(a);
		break;
	case XTS_OP_UPDATE:
		/* As for a create: a failed copy is out of memory, not "nothing
		 * changed" (that lost the update: the op counted done, nothing
		 * sent, and the stored export still the old values). */
		a->write = json_object_get(a->payload, "changes") != NULL ?
				   json_deep_copy(json_object_get(a->payload, "changes")) : json_object();
		if (a->write == NULL) {
			op_failed(a, XTS_ENOMEM, NULL, NULL);
			return;
		}
		a->old = a->lr.l.exported != NULL ? json_incref(a->lr.l.exported) : NULL;
		/* Invited, but the create's attribute write failed: the target does
		 * not carry the link yet. Stamp it with this update, or a later
		 * restart could not find the user by its link. */
		if (!cy->link_off && json_object_get(a->lr.l.exported, cy->c.link_attr) == NULL &&
		    json_object_set_new(a->write, cy->c.link_attr, link_pair(a)) != 0) {
			op_failed(a, XTS_ENOMEM, NULL, NULL);
			return;
		}
		if (json_object_size(a->write) == 0) {
			op_succeeded(a, -1, 0);
			return;
		}
		ret = write_user(a);
		break;
	case XTS_OP_DISABLE:
		a->write = json_pack("{s:b}", "accountEnabled", 0);
		a->old = a->lr.l.exported != NULL ? json_incref(a->lr.l.exported) : NULL;
		ret = a->write == NULL ? XTS_ENOMEM : send_patch(a, a->lr.l.target_id, a->write);
		break;
	case XTS_OP_DELETE:
		snprintf(url, sizeof(url), "/users/%s", a->lr.l.target_id);
		ret = cy->target->ops->write(cy->target, "DELETE", url, NULL, simple_cb, a);
		break;
	case XTS_OP_RESTORE:
		a->write = json_object_get(a->payload, "changes") != NULL ?
				   json_incref(json_object_get(a->payload, "changes")) : json_object();
		if (a->write == NULL) {
			op_failed(a, XTS_ENOMEM, NULL, NULL);
			return;
		}
		a->old = a->lr.l.exported != NULL ? json_incref(a->lr.l.exported) : NULL;
		if (a->lr.l.target_state != XTS_TARGET_SOFT_DELETED) {
			/* Restored already: restore_cb recorded it, then the PATCH
			 * failed and this is its retry. POSTing the restore again
			 * would answer 404 (no longer in deleted items). */
			if (json_object_size(a->write) == 0) {
				op_succeeded(a, -1, 0);
				return;
			}
			ret = write_user(a);
			break;
		}
		ret = send_restore(a);
		break;
	case XTS_OP_MANAGER:
		dispatch_manager(a);
		return;
	default:
		ret = XTS_EINVAL;
	}
	if (ret != 0)
		op_failed(a, ret, NULL, "cannot queue the write");
}

/* ---- the window ------------------------------------------------------------------ */

struct collect {
	struct eng_cycle *cy;
	json_t *rows;
	long long want;
	long long last; /* id of the last row walked */
};

static int
collect_cb(void *arg, const struct xts_store_op *o)
{
	struct collect *c = arg;
	int manager = o->kind == XTS_OP_MANAGER;

	c->last = o->id;
	if ((c->cy->apply_pass == 1) == manager)
		return 0;
	if (c->cy->only_user != NULL && strcmp(c->cy->only_user, o->source_id) != 0)
		return 0;
	if (json_array_append_new(c->rows, json_pack("{s:I,s:s,s:i,s:i,s:O?}", "id", (json_int_t)o->id,
						      "sid", o->source_id, "kind", o->kind, "attempts",
						      o->attempts, "payload", o->payload)) != 0)
		return XTS_ENOMEM;
	return (long long)json_array_size(c->rows) >= c->want ? 1 : 0;
}

static void
refill(struct eng_cycle *cy)
{
	struct collect c;
	struct aop *first, **tail;
	json_t *row;
	size_t i;
	int ret = 0, max;
	bool whole, tx;

	if (cy->in_refill)
		return;
	cy->in_refill = true;
	for (;;) {
		c.cy = cy;
		c.rows = NULL;
		c.want = cy->e->o.window - cy->inflight;
		if (cy->canceled || cy->stop_apply || cy->auth_failed || c.want < cy->e->o.window / 2 || c.want <= 0)
			break;
		c.rows = json_array();
		if (c.rows == NULL) {
			ret = XTS_ENOMEM;
			break;
		}
		/* Only this pass's kind, filtered by the store: walking (and
		 * decoding) the other pass's ops on every refill was quadratic.
		 * And only past what this pass walked already: the other
		 * kind's planned ops below it were skipped over on every refill
		 * (quadratic again, in SQLite's row reads). Nothing makes an op
		 * of this pass's kind due below that point during the pass
		 * today: ops planned during the apply take ids above it (the
		 * handle's id blocks only grow), a create that succeeds turns
		 * into a manager op at its own id (op_record) in pass 1, which
		 * pass 2 finds from 0, and allow-deletions and resume wait for
		 * the cycle.
		 * The walk from 0 before a pass ends is the guard should that
		 * change: such an op is sent in this cycle, not the next. */
		max = cy->only_user != NULL ? 0 : (int)c.want;
		whole = cy->walk_planned == 0 && cy->walk_failed == 0;
		c.last = 0;
		ret = xts_store_op_foreach_refs(cy->st, cy->c.name, XTS_OP_PLANNED, 0, cy->walk_planned,
						cy->apply_pass == 2, max, collect_cb, &c);
		if (ret == 1)
			ret = 0;
		if (ret == 0 && c.last > 0 && cy->only_user == NULL)
			cy->walk_planned = c.last;
		/* Escrow that was due when the cycle began (not what failed in it). */
		c.last = 0;
		if (ret == 0 && (long long)json_array_size(c.rows) < c.want)
			ret = xts_store_op_foreach_refs(cy->st, cy->c.name, XTS_OP_FAILED, cy->started,
							cy->walk_failed, cy->apply_pass == 2, max, collect_cb, &c);
		if (ret == 1)
			ret = 0;
		if (ret == 0 && c.last > 0 && cy->only_user == NULL)
			cy->walk_failed = c.last;
		if (ret == 0 && json_array_size(c.rows) == 0 && cy->inflight == 0 && !whole) {
			/* the pass would end here: once more from 0 */
			json_decref(c.rows);
			cy->walk_planned = cy->walk_failed = 0;
			continue;
		}
		if (ret != 0 || json_array_size(c.rows) == 0) {
			json_decref(c.rows);
			break;
		}
		/* In flight BEFORE they are sent, all of them in one transaction
		 * (one commit and one fsync for the window, not one per op): a
		 * crash now is resolved by recovery. Without a transaction of
		 * its own (one is open already, or BEGIN fails) each start
		 * commits by itself, and those that did are sent. */
		tx = !xts_store_in_tx(cy->st) && xts_store_begin(cy->st) == 0;
		first = NULL;
		tail = &first;
		json_array_foreach(c.rows, i, row) {
			struct aop *a = xts_calloc(1, sizeof(*a));
			if (a == NULL) {
				ret = XTS_ENOMEM;
				break;
			}
			a->cy = cy;
			a->id = json_integer_value(json_object_get(row, "id"));
			a->sid = xts_strdup(json_string_value(json_object_get(row, "sid")));
			a->kind = (int)json_integer_value(json_object_get(row, "kind"));
			a->attempts = (int)json_integer_value(json_object_get(row, "attempts")) + 1;
			a->payload = json_incref(json_object_get(row, "payload"));
			a->t0 = xts_now_ms();
			if (a->sid == NULL) {
				aop_free(a);
				ret = XTS_ENOMEM;
				break;
			}
			ret = xts_store_op_start(cy->st, a->id);
			if (ret != 0) {
				aop_free(a);
				break;
			}
			*tail = a;
			tail = &a->next;
		}
		json_decref(c.rows);
		if (tx && ret == 0)
			ret = xts_store_commit(cy->st);
		else if (tx)
			xts_store_rollback(cy->st);
		if (tx && ret != 0) {
			for (struct aop *a = first, *n; a != NULL; a = n) {
				n = a->next;
				aop_free(a);
			}
			first = NULL;
		}
		while (first != NULL) {
			struct aop *a = first;

			first = a->next;
			a->next = (struct aop *)cy->aops;
			cy->aops = a;
			cy->inflight++;
			cy->ops++;
			cy->ref_ops += a->kind == XTS_OP_MANAGER;
			/* the total is what was planned when apply began (below),
			 * grown only by what joins later (escrow due, matches) */
			if (cy->ops > cy->counts.ops_total)
				cy->counts.ops_total = cy->ops;
			dispatch(a);
		}
		if (ret != 0)
			break;
	}
	cy->in_refill = false;
	if (ret != 0) {
		xts_err("job %s: apply stopped: %s", cy->c.name, xts_strerror(ret));
		if (cy->result == 0 || cy->result == XTS_EHELD)
			cy->result = ret;
		cy->stop_apply = true;
	}
	if (cy->inflight > 0)
		return;
	if (cy->apply_pass == 1 && !cy->canceled && !cy->stop_apply && !cy->auth_failed) {
		cy->apply_pass = 2;
		cy->walk_planned = cy->walk_failed = 0;
		refill(cy);
		return;
	}
	if (cy->phase == PH_APPLY) {
		cy->phase = PH_DONE;
		/* what the writes cost the disk (jobs sharing the store count too) */
		xts_debug("job %s: apply: %lld operations, %lld store commits", cy->c.name, cy->ops,
			  xts_store_commits(cy->st) - cy->apply_commits);
		eng_cycle_applied(cy);
	}
}

void
eng_apply_start(struct eng_cycle *cy)
{
	long long planned = 0;

	cy->apply_pass = 1;
	cy->walk_planned = cy->walk_failed = 0;
	cy->phase = PH_APPLY;
	cy->apply_commits = xts_store_commits(cy->st);
	/* progress (xtsyncctl status): done of all planned, not of those
	 * dispatched so far; a failed count leaves the running total */
	if (cy->only_user == NULL && xts_store_op_count(cy->st, cy->c.name, XTS_OP_PLANNED, &planned) == 0)
		cy->counts.ops_total = planned;
	refill(cy);
}
