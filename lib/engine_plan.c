/* SPDX-License-Identifier: MIT */
/* Deciding one source user inside the open store transaction: merge a delta
 * entry into what was last seen, internal-member and scope checks, the
 * attribute mappings, and the one open operation per user (create, update,
 * restore, staged disable/delete, manager). It sends nothing: the apply phase
 * (engine_apply.c) does. */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "engine_internal.h"
#include "err.h"
#include "json_text.h"
#include "log.h"
#include "mem.h"
#include "scope_filter.h"
#include "text.h"

/* ---- provisioning log ---------------------------------------------------- */

bool
eng_prov_begin(struct eng_cycle *cy, struct xts_prov_entry *pe, int action, int status,
	       const char *source_id, const json_t *attrs, const char *target_id)
{
	if (cy->e->o.provlog == NULL || cy->dry)
		return false;
	xts_prov_entry_init(pe);
	pe->cycle_id = cy->id;
	pe->job_id = cy->c.name;
	pe->action = action;
	pe->status = status;
	pe->source_id = source_id;
	pe->source_display_name = json_string_value(json_object_get(attrs, "displayName"));
	pe->source_upn = json_string_value(json_object_get(attrs, "userPrincipalName"));
	pe->source_tenant_id = cy->src->tenant_id;
	pe->target_id = target_id;
	pe->target_tenant_id = cy->tgt->tenant_id;
	/* provision on demand is an operator's request (initiator.md: "user") */
	if (cy->only_user != NULL)
		pe->initiated_by = "xtsyncctl provision";
	return true;
}

void
eng_log_simple(struct eng_cycle *cy, int action, int status, const char *source_id,
	       const json_t *attrs, const char *target_id, const char *code, const char *reason)
{
	struct xts_prov_entry pe;

	if (!eng_prov_begin(cy, &pe, action, status, source_id, attrs, target_id))
		return;
	pe.error_code = code;
	pe.error_reason = reason;
	xts_prov_entry_add_step(&pe, "EntryImport", XTS_STEP_IMPORT, XTS_PROV_SUCCESS,
				"Retrieved the user from the source tenant", NULL);
	/* The why is errorInformation's reason: not repeated in the step. */
	if (action == XTS_PROV_SKIP || action == XTS_PROV_OTHER)
		xts_prov_entry_add_step(&pe, "EntrySynchronizationScoping", XTS_STEP_SCOPING,
					XTS_PROV_SKIPPED, action == XTS_PROV_SKIP ?
					"The user is out of scope" : reason, NULL);
	if (xts_provlog_write(cy->e->o.provlog, &pe) != 0)
		xts_log_rl(XTS_LOG_WARNING, 60000, 3, "job %s: cannot write the provisioning log",
			   cy->c.name);
	xts_prov_entry_clear(&pe);
}

/* ---- operations ----------------------------------------------------------- */

/* Put the one open operation of kind for sid: reuse an open op of the same
 * kind (payload replaced), cancel open ops of the other non-manager kinds.
 * The payload is payload, or when ptext is not NULL the JSON text ptext.
 * *none_open (may be NULL) is set to 1 when sid had no open op of any kind
 * before the call: then the only open op it has now is the one added here. */
static int
op_put_ex(struct eng_cycle *cy, const char *sid, int kind, json_t *payload, const char *ptext,
	  int staged, int *none_open)
{
	struct xts_store_op_row r;
	int k, ret, reused = 0;

	memset(&r, 0, sizeof(r));
	ret = cy->fresh ? XTS_ENOENT : xts_store_op_find_open(cy->st, cy->c.name, sid, -1, &r);
	xts_store_op_row_clear(&r);
	if (none_open != NULL)
		*none_open = ret == XTS_ENOENT;
	if (ret == XTS_ENOENT)
		goto add;
	if (ret != 0)
		return ret;
	for (k = XTS_OP_CREATE; k <= XTS_OP_RESTORE; k++) {
		memset(&r, 0, sizeof(r));
		ret = xts_store_op_find_open(cy->st, cy->c.name, sid, k, &r);
		if (ret == XTS_ENOENT)
			continue;
		if (ret != 0)
			return ret;
		if (r.o.state == XTS_OP_INFLIGHT) {
			/* Left by a crash and not yet resolved; decide again next cycle. */
			ret = 0;
		} else if (k == kind && !reused && !(r.o.state == XTS_OP_STAGED && !staged)) {
			/* (a planned op stays planned: it may have been released
			 * from the threshold's hold) */
			reused = 1;
			ret = ptext != NULL ? xts_store_op_set_payload_text(cy->st, r.o.id, ptext) :
					      xts_store_op_set_payload(cy->st, r.o.id, payload);
		} else {
			/* another kind, or held but no longer a deprovisioning
			 * (a blocked user unblocked in the source): anew */
			ret = xts_store_op_cancel(cy->st, r.o.id);
		}
		xts_store_op_row_clear(&r);
		if (ret != 0)
			return ret;
	}
	if (reused || kind < 0)
		return 0;
add:
	if (kind < 0)
		return 0;
	if (ptext != NULL)
		return xts_store_op_add_text(cy->st, cy->c.name, sid, kind, ptext,
					     staged ? XTS_OP_STAGED : XTS_OP_PLANNED, cy->id, NULL);
	return xts_store_op_add(cy->st, cy->c.name, sid, kind, payload,
				staged ? XTS_OP_STAGED : XTS_OP_PLANNED, cy->id, NULL);
}

static int
op_put(struct eng_cycle *cy, const char *sid, int kind, json_t *payload, int staged)
{
	return op_put_ex(cy, sid, kind, payload, NULL, staged, NULL);
}

/* o[key] = a new string, or null for NULL; json_pack's "s?" without its
 * format parser. */
static int
set_str_or_null(json_t *o, const char *key, const char *v)
{
	return json_object_set_new(o, key, v != NULL ? json_string(v) : json_null());
}

/* A create's payload as JSON text, {"email":…,"displayName":…}, then
 * "manager" when mgr is not NULL and "invite" when invite is not NULL, each
 * value a string or null: written straight into buf when it fits in cap
 * bytes (else into memory allocated here), not built as objects and then
 * serialized (this runs for every new user: 6 % of an initial read's
 * instructions went to it). The caller frees the result when it is not
 * buf; NULL on ENOMEM. */
static char *
create_payload(char *buf, size_t cap, const char *email, const char *name, const char *mgr,
	       const char *invite)
{
	static const char *const pre_all[4] = { "{\"email\":", ",\"displayName\":", ",\"manager\":",
						",\"invite\":" };
	const char *v[4] = { email, name }, *pre[4] = { pre_all[0], pre_all[1] };
	size_t len[4], need = 2, i, k = 2;
	char *out, *o;

	if (mgr != NULL) {
		pre[k] = pre_all[2];
		v[k++] = mgr;
	}
	if (invite != NULL) {
		pre[k] = pre_all[3];
		v[k++] = invite;
	}
	for (i = 0; i < k; i++) {
		len[i] = v[i] != NULL ? strlen(v[i]) : 0;
		if (len[i] > ((size_t)-1) / 32)
			return NULL;
		need += strlen(pre[i]) + (v[i] != NULL ? len[i] * 6 + 2 : 4);
	}
	out = need <= cap ? buf : xts_malloc(need);
	if (out == NULL)
		return NULL;
	o = out;
	for (i = 0; i < k; i++) {
		size_t pl = strlen(pre[i]);

		memcpy(o, pre[i], pl);
		o += pl;
		if (v[i] != NULL) {
			o = xts_json_str_at(o, v[i], len[i]);
		} else {
			memcpy(o, "null", 4);
			o += 4;
		}
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* Plan the manager reference write of a linked user (mgr NULL: remove it):
 * replace the payload of its open manager op, or add one. */
static int
manager_put(struct eng_cycle *cy, const char *sid, const char *mgr)
{
	struct xts_store_op_row r;
	json_t *p;
	int ret;

	memset(&r, 0, sizeof(r));
	p = json_object();
	if (p == NULL || set_str_or_null(p, "manager", mgr) != 0) {
		json_decref(p);
		return XTS_ENOMEM;
	}
	ret = xts_store_op_find_open(cy->st, cy->c.name, sid, XTS_OP_MANAGER, &r);
	if (ret == 0 && r.o.state != XTS_OP_INFLIGHT)
		ret = xts_store_op_set_payload(cy->st, r.o.id, p);
	else if (ret == XTS_ENOENT)
		ret = xts_store_op_add(cy->st, cy->c.name, sid, XTS_OP_MANAGER, p, XTS_OP_PLANNED,
				       cy->id, NULL);
	xts_store_op_row_clear(&r);
	json_decref(p);
	return ret;
}

/* Cancel sid's open manager op, if it has one not in flight. */
static int
manager_cancel(struct eng_cycle *cy, const char *sid)
{
	struct xts_store_op_row r;
	int ret = 0;

	memset(&r, 0, sizeof(r));
	if (xts_store_op_find_open(cy->st, cy->c.name, sid, XTS_OP_MANAGER, &r) == 0 &&
	    r.o.state != XTS_OP_INFLIGHT)
		ret = xts_store_op_cancel(cy->st, r.o.id);
	xts_store_op_row_clear(&r);
	return ret;
}

const struct xts_schema_mapping *
eng_reference_mapping(const struct xts_schema *s)
{
	size_t i, n = xts_schema_mapping_count(s);

	for (i = 0; i < n; i++) {
		const struct xts_schema_mapping *m = xts_schema_mapping_at(s, i);
		if (m->is_reference)
			return m;
	}
	return NULL;
}

/* Target attributes never written through Graph, though a schema maps them:
 * showInAddressList is "Do not use in Microsoft Graph. Manage this property
 * through the Microsoft 365 admin center instead." (resources/user.md);
 * Microsoft's built-in cross-tenant schema maps it (its own service writes
 * it another way). A PATCH carrying it may be refused as a whole. */
static bool
graph_unwritable(const char *target)
{
	return (target[0] | 0x20) == 's' && strcasecmp(target, "showInAddressList") == 0;
}

/* Drop what is never exported as a plain attribute. */
static void
strip(const struct xts_schema *s, json_t *attrs)
{
	size_t i, n = xts_schema_mapping_count(s);

	for (i = 0; i < n; i++) {
		const struct xts_schema_mapping *m = xts_schema_mapping_at(s, i);
		if (m->is_link || m->is_soft_delete || m->is_reference || graph_unwritable(m->target))
			json_object_del(attrs, m->target);
	}
}

int
eng_create_values(const struct xts_schema *s, const json_t *attrs, json_t **desired, json_t **redacted,
		  struct xts_expr_error *err)
{
	int ret = xts_mapping_apply(s, attrs, 1, desired, redacted, err);

	if (ret == 0)
		strip(s, *desired);
	return ret;
}

/* left: the user left scope (else it was deleted in the source). */
static int
deprovision(struct eng_cycle *cy, const char *sid, const struct xts_store_link *l,
	    const json_t *attrs, const char *why, bool left)
{
	json_t *p;
	int ret;

	if (cy->c.deprovision == XTS_DEPROVISION_NONE) {
		cy->counts.skipped++;
		eng_log_simple(cy, XTS_PROV_SKIP, XTS_PROV_SKIPPED, sid, attrs, l->target_id,
			       "SkipOutOfScopeDeletions", left ? "left scope; deprovision = none keeps the target user" :
			       "deleted in the source tenant; deprovision = none keeps the target user");
		return op_put(cy, sid, -1, NULL, 0);
	}
	if (cy->c.deprovision == XTS_DEPROVISION_DISABLE && l->target_state != XTS_TARGET_ACTIVE)
		return op_put(cy, sid, -1, NULL, 0);
	if (cy->c.deprovision == XTS_DEPROVISION_DELETE && l->target_state == XTS_TARGET_SOFT_DELETED)
		return op_put(cy, sid, -1, NULL, 0);
	if (cy->c.deprovision == XTS_DEPROVISION_DELETE && left && l->target_state == XTS_TARGET_DISABLED) {
		/* "Users aren't soft deleted from the target tenant in this
		 * scenario": synced blocked from sign-in (accountEnabled false),
		 * then removed from the group (entra: multi-tenant-organizations/
		 * cross-tenant-synchronization-overview.md, Deprovisioning) */
		cy->counts.skipped++;
		eng_log_simple(cy, XTS_PROV_SKIP, XTS_PROV_SKIPPED, sid, attrs, l->target_id, "NotEffectivelyEntitled",
			       "left scope while blocked from sign-in in the target; not soft-deleted");
		return op_put(cy, sid, -1, NULL, 0);
	}
	p = json_pack("{s:s}", "reason", why);
	if (p == NULL)
		return XTS_ENOMEM;
	ret = op_put(cy, sid, cy->c.deprovision == XTS_DEPROVISION_DELETE ? XTS_OP_DELETE : XTS_OP_DISABLE,
		     p, 1);
	json_decref(p);
	return ret;
}

static int
assigned(struct eng_cycle *cy, const char *sid)
{
	size_t i;
	int yes = 0;

	for (i = 0; i < cy->c.n_users; i++)
		if (strcasecmp(cy->c.users[i], sid) == 0)
			return 1;
	if (xts_store_member_any(cy->st, cy->c.name, sid, &yes) != 0)
		return -1;
	return yes;
}

int
eng_plan_user(struct eng_cycle *cy, const char *sid, json_t *attrs, int deleted)
{
	const struct xts_schema *s = cy->sch->s;
	const struct xts_schema_mapping *ref = eng_reference_mapping(s);
	struct xts_store_link_row lr;
	struct xts_store_user u;
	struct xts_expr_error xe;
	char pbuf[1024], *ptext = NULL;
	json_t *desired = NULL, *redacted = NULL, *changes = NULL, *payload = NULL;
	const char *why = NULL, *mgr;
	int ret, linked, internal, in = 0, a, none_open = 0, unprocessed = 0;

	memset(&lr, 0, sizeof(lr));
	memset(&xe, 0, sizeof(xe));
	ret = cy->fresh ? XTS_ENOENT : xts_store_link_get(cy->st, cy->c.name, sid, &lr);
	if (ret != 0 && ret != XTS_ENOENT)
		return ret;
	linked = ret == 0;
	ret = 0;
	if (deleted) {
		ret = xts_store_user_mark_deleted(cy->st, cy->c.name, sid, cy->id);
		if (ret == XTS_ENOENT)
			ret = 0;
		if (ret == 0 && linked)
			ret = deprovision(cy, sid, &lr.l, attrs, "deleted in the source tenant", false);
		else if (ret == 0)
			ret = op_put(cy, sid, -1, NULL, 0);
		goto done;
	}
	internal = xts_engine_is_internal_member(attrs, &why);
	if (internal) {
		a = cy->c.scope == XTS_SCOPE_ALL ? 1 : assigned(cy, sid);
		if (a < 0) {
			ret = XTS_ESTORE;
			goto done;
		}
		if (a == 0)
			why = "not assigned to the job (assigned groups and users)";
		else if (xts_scope_filter_eval(s, attrs, &in, &why) != 0)
			in = 0;
		if (a == 0)
			in = 0;
		/* inputFilterGroups: "If an object doesn't satisfy this filter,
		 * then it will not be processed further. ... if an object used
		 * to satisfy this filter ... and then the object or the filter
		 * was changed so that filter is no longer satisfied, such
		 * object will NOT get deprovisioned" (synchronization-
		 * filter.md): skipped, never deprovisioned. */
		if (a != 0 && !in) {
			int inp = 1;
			const char *iwhy = NULL;
			if (xts_scope_filter_eval_input(s, attrs, &inp, &iwhy) == 0 && !inp) {
				unprocessed = 1;
				why = iwhy;
			}
		}
	}
	mgr = json_string_value(json_object_get(attrs, "manager"));
	memset(&u, 0, sizeof(u));
	u.source_id = sid;
	u.attrs = attrs;
	u.in_scope = in;
	u.scope_reason = in ? NULL : why;
	u.is_member = internal;
	u.manager_id = mgr;
	u.last_seen_cycle = cy->id;
	if (cy->insert_only) {
		/* nothing was written yet: the caller decides again with the row */
		ret = xts_store_user_insert(cy->st, cy->c.name, &u);
		if (ret == XTS_EEXIST) {
			cy->row_exists = true;
			ret = 0;
			goto done;
		}
	} else {
		ret = xts_store_user_put(cy->st, cy->c.name, &u);
	}
	if (ret != 0)
		goto done;
	if (!in) {
		if (linked && !unprocessed) {
			ret = deprovision(cy, sid, &lr.l, attrs, why != NULL ? why : "out of scope", true);
		} else {
			cy->counts.skipped++;
			if (cy->kind == XTS_CYCLE_INCREMENTAL || internal)
				eng_log_simple(cy, XTS_PROV_SKIP, XTS_PROV_SKIPPED, sid, attrs,
					       linked ? lr.l.target_id : NULL, "NotEffectivelyEntitled",
					       why != NULL ? why : "out of scope");
			ret = op_put(cy, sid, -1, NULL, 0);
			if (ret == 0) /* a create planned earlier is not wanted any more */
				ret = manager_cancel(cy, sid);
		}
		goto done;
	}
	cy->counts.in_scope++;
	if (!linked) {
		const char *mail = json_string_value(json_object_get(attrs, "mail"));
		const char *upn = json_string_value(json_object_get(attrs, "userPrincipalName"));
		/* A create's op carries no values: its dispatch maps the stored
		 * source row (eng_create_values), which is this row or a newer
		 * one. Mapping every new user here, then storing the result in
		 * its op, cost a quarter of an initial read; and a create waiting
		 * for its turn writes the source's latest values, under the
		 * schema of the cycle that sends it. */
		/* Invited at the source UPN: the target user's UPN is then
		 * UPN_domain#EXT#@target, the UPN prefix Microsoft's service
		 * gives it ("the UPN prefix of the target guest user would be
		 * updated to match the UPN of the source user", cross-tenant-
		 * synchronization-configure.md); "email" (the mail, else the
		 * UPN) stays what a manually invited user is matched by. */
		const char *email = mail != NULL && mail[0] != '\0' ? mail : upn;

		ptext = create_payload(pbuf, sizeof(pbuf), email,
				       json_string_value(json_object_get(attrs, "displayName")),
				       ref != NULL ? mgr : NULL,
				       upn != NULL && upn[0] != '\0' && email != NULL && strcmp(upn, email) != 0 ?
					       upn : NULL);
		if (ptext == NULL) {
			ret = XTS_ENOMEM;
			goto done;
		}
		/* The manager travels in the create's payload: its write
		 * (PUT .../manager/$ref) needs the user to exist, so the
		 * create's op becomes the manager op when the create succeeds
		 * (op_record). One op row per new user, not two. A manager op
		 * that is open for a user without a link (planned before this
		 * rule, or before a target user went missing) is superseded. */
		ret = op_put_ex(cy, sid, XTS_OP_CREATE, NULL, ptext, 0, &none_open);
		if (ret == 0 && ref != NULL && !none_open)
			ret = manager_cancel(cy, sid);
		goto done;
	}
	ret = xts_mapping_apply(s, attrs, 0, &desired, &redacted, &xe);
	if (ret != 0) {
		cy->counts.failed++;
		xts_warn("job %s: user %s: mapping failed: %s", cy->c.name, sid, xe.message);
		eng_log_simple(cy, XTS_PROV_UPDATE, XTS_PROV_FAILURE, sid, attrs, lr.l.target_id,
			       "ExpressionEvaluationFailed", xe.message);
		ret = ret == XTS_EEXPR ? 0 : ret;
		goto done;
	}
	strip(s, desired);
	/* A user that changed in the source gets all its values written, not
	 * only those that differ from our last write: the target's copy may
	 * have been edited (sign-in blocked, an attribute changed) and the FAQ
	 * says the change brings it back in line with the source. */
	ret = xts_mapping_diff_ex(s, desired, lr.l.exported, cy->src_changed, &changes);
	if (ret != 0)
		goto done;
	if (lr.l.target_state == XTS_TARGET_SOFT_DELETED) {
		/* Ours, soft-deleted less than 30 days ago: restore, never recreate. */
		payload = json_pack("{s:O,s:O}", "changes", changes, "redacted",
				    redacted != NULL ? redacted : json_null());
		ret = payload == NULL ? XTS_ENOMEM : op_put(cy, sid, XTS_OP_RESTORE, payload, 0);
	} else if (json_object_size(changes) > 0) {
		/* An update that blocks an active user's sign-in is a disable, and
		 * disables count against the deletion threshold like deletions
		 * ("Block sign in for a user"; "the same functionality also works
		 * for disables": app-provisioning/accidental-deletions.md): staged,
		 * so that a mass block in the source is held like a mass removal. */
		int disables = json_is_false(json_object_get(changes, "accountEnabled")) &&
			       lr.l.target_state == XTS_TARGET_ACTIVE;
		payload = json_pack("{s:O,s:O}", "changes", changes, "redacted",
				    redacted != NULL ? redacted : json_null());
		ret = payload == NULL ? XTS_ENOMEM : op_put(cy, sid, XTS_OP_UPDATE, payload, disables);
	} else {
		xts_debug("job %s: user %s: nothing to change", cy->c.name, sid);
		ret = op_put(cy, sid, -1, NULL, 0);
	}
	if (ret == 0 && ref != NULL) {
		const char *was = json_string_value(json_object_get(lr.l.exported, "manager"));
		if (mgr != NULL && (was == NULL || strcmp(was, mgr) != 0))
			ret = manager_put(cy, sid, mgr);
		else if (mgr == NULL && json_is_null(json_object_get(attrs, "manager")))
			/* the source says there is no manager (manager@delta
			 * without one, or none in a full round): "If the
			 * manager of a user is removed in the source tenant and
			 * no new manager is assigned in the source tenant, the
			 * manager attribute isn't updated in the target tenant"
			 * (cross-tenant-synchronization-overview.md, FAQ). The
			 * target keeps its manager; only a planned, unwritten
			 * one is dropped. */
			ret = manager_cancel(cy, sid);
	}
done:
	json_decref(desired);
	json_decref(redacted);
	json_decref(changes);
	json_decref(payload);
	if (ptext != pbuf)
		xts_free(ptext);
	xts_store_link_row_clear(&lr);
	return ret;
}

/* The manager a manager@delta array names: the id of its first entry not
 * marked "@removed" ("Removed instances are represented by their id and an
 * @removed object", concepts/delta-query-overview.md), else json null (no
 * manager any more). A new reference; NULL only without memory. */
static json_t *
delta_manager(const json_t *arr)
{
	const char *mid = NULL;
	json_t *m;
	size_t i;

	json_array_foreach(arr, i, m) {
		if (xts_graph_is_removed(m))
			continue;
		mid = json_string_value(json_object_get(m, "id"));
		if (mid != NULL)
			break;
	}
	return mid != NULL ? json_string(mid) : json_null();
}

/* A delta entry as the attributes of a user without a stored row, in place:
 * manager@delta becomes "manager" (its id, or null), annotations ("@odata.*",
 * "x@delta") go. The same object eng_plan_entry builds for a stored user. */
static int
entry_to_attrs(json_t *entry)
{
	json_t *mgr = NULL;
	void *it, *next;
	int have_mgr = 0;

	/* the iterator itself: one pass, and a key's length from jansson (this
	 * runs for every property of every user) */
	for (it = json_object_iter(entry); it != NULL; it = next) {
		const char *key = json_object_iter_key(it);
		size_t kn = json_object_iter_key_len(it);

		next = json_object_iter_next(entry, it);
		if (memchr(key, '@', kn) == NULL)
			continue;
		if (kn == 13 && memcmp(key, "manager@delta", 13) == 0) {
			json_decref(mgr);
			mgr = delta_manager(json_object_iter_value(it));
			if (mgr == NULL)
				return XTS_ENOMEM;
			have_mgr = 1;
		}
		json_object_deln(entry, key, kn);
	}
	if (have_mgr && json_object_set_new(entry, "manager", mgr) != 0)
		return XTS_ENOMEM;
	return 0;
}

/* Merge a delta entry into the stored attributes: incremental rounds may
 * carry only the changed properties; manager arrives as manager@delta.
 * A full round (the initial one, or the resync after 410 Gone) returns every
 * selected property the user has: one it leaves out was never set or was
 * cleared ("If the property has never been set before it will not be
 * included in the response at all", api/user-delta.md), so there the entry
 * replaces the stored attributes, manager included (a cleared property is
 * null in the store; like any null value it is not written to the target,
 * xts_mapping_diff_ex). Only on the user's first appearance in the cycle: a
 * later one (a replay) merges. */
/* 1 when a and b (stored and merged attributes) hold a different value for
 * some key, an absent key being null: a full round's page may leave out
 * what an incremental one gave as null. The manager is left out: its own
 * write (PUT .../manager/$ref) follows it, and a change of it alone costs
 * no PATCH. */
static int
attrs_differ(const json_t *a, const json_t *b)
{
	const char *key;
	json_t *v, *w;

	if (a == NULL || b == NULL)
		return a != b;
	json_object_foreach((json_t *)a, key, v) {
		if (strcmp(key, "manager") == 0)
			continue;
		w = json_object_get(b, key);
		if (w == NULL ? !json_is_null(v) : !json_equal(v, w))
			return 1;
	}
	json_object_foreach((json_t *)b, key, w)
		if (strcmp(key, "manager") != 0 && json_object_get(a, key) == NULL && !json_is_null(w))
			return 1;
	return 0;
}

int
eng_plan_entry(struct eng_cycle *cy, json_t *entry)
{
	struct xts_store_user_row ur;
	const char *sid = json_string_value(json_object_get(entry, "id")), *key;
	json_t *attrs = NULL, *v;
	int ret, known;

	if (sid == NULL || sid[0] == '\0')
		return 0;
	if (!xts_is_object_id(sid)) {
		/* Graph's ids are GUIDs; this one would go into URLs and log lines */
		xts_log_rl(XTS_LOG_WARNING, 60000, 5, "job %s: a source entry whose id is not an object id "
			   "is ignored (%.40s...)", cy->c.name, sid);
		return 0;
	}
	memset(&ur, 0, sizeof(ur));
	if (cy->untouched && cy->kind == XTS_CYCLE_INITIAL && !xts_graph_is_removed(entry)) {
		/* The first full round of an untouched job: almost every user is
		 * new, so decide it as new and let the row's insert tell (one
		 * statement less than looking the row up first). If the row
		 * exists (a user returned twice, or kept from an earlier round),
		 * nothing was written and it is decided again below, as it
		 * always was; the entry is then as entry_to_attrs leaves it,
		 * which the paths below accept, but for the "manager": null
		 * added here, which a replay must not merge. */
		int added_null = 0;

		ret = entry_to_attrs(entry);
		if (ret == 0 && json_object_get(entry, "manager") == NULL &&
		    eng_reference_mapping(cy->sch->s) != NULL) {
			ret = json_object_set_new(entry, "manager", json_null()) != 0 ? XTS_ENOMEM : 0;
			added_null = ret == 0;
		}
		if (ret != 0)
			return ret;
		cy->fresh = true;
		cy->insert_only = true;
		cy->row_exists = false;
		ret = eng_plan_user(cy, sid, entry, 0);
		cy->fresh = false;
		cy->insert_only = false;
		if (ret != 0 || !cy->row_exists)
			return ret;
		cy->row_exists = false;
		if (added_null)
			json_object_del(entry, "manager");
	}
	ret = xts_store_user_get(cy->st, cy->c.name, sid, &ur);
	if (ret != 0 && ret != XTS_ENOENT)
		return ret;
	known = ret == 0;
	ret = 0;
	if (xts_graph_is_removed(entry)) {
		ret = eng_plan_user(cy, sid, ur.u.attrs, 1);
		xts_store_user_row_clear(&ur);
		return ret;
	}
	if (ur.u.attrs == NULL || (cy->kind == XTS_CYCLE_INITIAL && ur.u.last_seen_cycle != cy->id)) {
		/* No stored row, or a full round's first sight: the entry
		 * itself (the page's, decided once) becomes the attributes,
		 * without a copy. In a full round no manager@delta means no
		 * manager, also for a user without a row (after restart or a
		 * lost store its link may still hold one in the target). */
		attrs = json_incref(entry);
		ret = entry_to_attrs(attrs);
		if (ret == 0 && cy->kind == XTS_CYCLE_INITIAL && json_object_get(attrs, "manager") == NULL &&
		    eng_reference_mapping(cy->sch->s) != NULL &&
		    json_object_set_new(attrs, "manager", json_null()) != 0)
			ret = XTS_ENOMEM;
		goto decide;
	}
	attrs = json_deep_copy(ur.u.attrs);
	if (attrs == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	json_object_foreach(entry, key, v) {
		if (strcmp(key, "manager@delta") == 0) {
			if (json_object_set_new(attrs, "manager", delta_manager(v)) != 0)
				ret = XTS_ENOMEM;
			continue;
		}
		if (key[0] == '@' || strchr(key, '@') != NULL)
			continue;
		if (json_object_set(attrs, key, v) != 0)
			ret = XTS_ENOMEM;
	}
decide:
	if (ret == 0) {
		/* No row, and the job had no open op and no link when the read
		 * began: every op and link of this job since was planned with a row
		 * (the read phase creates no link), so this user has neither. */
		cy->fresh = cy->untouched && !known;
		cy->src_changed = known && ur.u.attrs != NULL && attrs_differ(ur.u.attrs, attrs);
		ret = eng_plan_user(cy, sid, attrs, 0);
		cy->fresh = false;
		cy->src_changed = false;
	}
done:
	json_decref(attrs);
	xts_store_user_row_clear(&ur);
	return ret;
}

int
eng_plan_stored(struct eng_cycle *cy, const char *source_id)
{
	struct xts_store_user_row ur;
	int ret;

	memset(&ur, 0, sizeof(ur));
	ret = xts_store_user_get(cy->st, cy->c.name, source_id, &ur);
	if (ret == 0)
		ret = eng_plan_user(cy, source_id, ur.u.attrs, ur.u.deleted);
	xts_store_user_row_clear(&ur);
	return ret;
}
