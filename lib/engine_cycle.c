/* SPDX-License-Identifier: MIT */
/* One job's cycle as a state machine on the event loop: start (quarantine,
 * schema fingerprint, initial or incremental), connection test, crash
 * recovery, groups delta, users delta (one store transaction per page),
 * re-evaluation and sweep, deletion guard, delta links, apply, quarantine
 * rule and end. Decisions are engine_plan.c; writes engine_apply.c. */
#include <stdio.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "buf.h"
#include "engine_internal.h"
#include "err.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "text.h"

static void step_recover(struct eng_cycle *cy);
static void step_groups(struct eng_cycle *cy);
static void step_users(struct eng_cycle *cy);
static void step_post(struct eng_cycle *cy);
static void step_end(struct eng_cycle *cy);
static void prov_fetch(struct eng_cycle *cy);

#define QUARANTINE_DISABLE_MS (28LL * 24 * 3600 * 1000)
#define JOB_FP_LEN (64 + 1 + 16 + 1 + 16 + 1) /* schema fingerprint ; scope digest ; tenants digest */
#define EGONE_RESTARTS 2 /* full reads started over after a 410 without a stored token, per read */

static void
timer_cb(void *arg)
{
	struct eng_cycle *cy = arg;
	void (*step)(struct eng_cycle *) = cy->step;

	cy->step = NULL;
	if (step != NULL)
		step(cy);
}

void
eng_cycle_next(struct eng_cycle *cy, void (*step)(struct eng_cycle *cy))
{
	cy->step = step;
	if (xts_ev_timer_start(cy->timer, 0) != 0) {
		/* Cannot happen with a created timer; never leave a cycle hanging. */
		xts_err("job %s: cannot arm the cycle timer", cy->c.name);
		cy->step = NULL;
		step(cy);
	}
}

static void
target_line(void *arg, const char *text)
{
	struct eng_cycle *cy = arg;

	eng_plan_line(cy, "%s", text);
}

int
eng_cycle_new(struct xts_engine *e, struct eng_job *j, struct eng_cycle **out)
{
	struct eng_cycle *cy;
	int ret;

	*out = NULL;
	if (j->src == NULL || j->tgt == NULL || j->schema == NULL || j->c == NULL)
		return XTS_EINVAL;
	cy = xts_calloc(1, sizeof(*cy));
	if (cy == NULL)
		return XTS_ENOMEM;
	cy->e = e;
	cy->job = j;
	cy->st = e->o.store;
	cy->dry = (e->o.flags & XTS_ENGINE_DRY_RUN) != 0;
	cy->result = 0;
	ret = eng_jobcfg_dup(&cy->c, j->c);
	if (ret != 0) {
		xts_free(cy);
		return ret;
	}
	cy->sch = j->schema;
	cy->sch->refs++;
	cy->src = j->src;
	cy->src->refs++;
	cy->tgt = j->tgt;
	cy->tgt->refs++;
	cy->changed = json_object();
	ret = cy->changed == NULL ? XTS_ENOMEM : xts_ev_timer_new(e->o.ev, timer_cb, cy, &cy->timer);
	if (ret == 0) {
		if (cy->dry)
			ret = eng_target_null_new(e->o.ev, target_line, cy, &cy->target);
		else
			ret = eng_target_graph_new(cy->tgt->g, eng_apply_answers_begin,
						   eng_apply_answers_end, cy, &cy->target);
	}
	if (ret != 0) {
		eng_cycle_free(cy);
		return ret;
	}
	*out = cy;
	return 0;
}

void
eng_cycle_free(struct eng_cycle *cy)
{
	if (cy == NULL)
		return;
	if (cy->pager != NULL)
		xts_pager_cancel(cy->pager);
	if (cy->pc != NULL)
		xts_policy_check_free(cy->pc);
	eng_apply_cancel(cy);
	if (cy->target != NULL)
		cy->target->ops->free(cy->target);
	xts_ev_timer_free(cy->timer);
	xts_ev_timer_free(cy->btimer);
	eng_groups_drop(cy);
	xts_free(cy->mev);
	if (cy->st != NULL)
		xts_store_batch_abort(cy->st, &cy->batch);
	if (cy->st != NULL && xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	eng_schema_unref(cy->sch);
	eng_tenant_unref(cy->src);
	eng_tenant_unref(cy->tgt);
	eng_jobcfg_clear(&cy->c);
	json_decref(cy->changed);
	json_decref(cy->gstored);
	json_decref(cy->gnew);
	xts_free(cy->gkey);
	json_decref(cy->prov_resp);
	xts_free(cy->select);
	xts_free(cy->users_link);
	xts_free(cy->groups_link);
	xts_free(cy->stored_users_link);
	xts_free(cy->stored_groups_link);
	xts_free(cy->auth_code);
	xts_free(cy->only_user);
	xts_free(cy);
}

/* ---- start ------------------------------------------------------------------ */

static void
step_connect_done(void *arg, const struct xts_policy_result *r)
{
	struct eng_cycle *cy = arg;
	struct xts_buf b = XTS_BUF_INIT;
	int i;

	if (r->err == 0 && r->n == 0) {
		xts_free(cy->job->source_tid_guid);
		cy->job->source_tid_guid = r->source_tenant_id != NULL ? xts_strdup(r->source_tenant_id) : NULL;
		if (!cy->job->checked)
			xts_info("job %s: connection test passed", cy->c.name);
		else
			xts_debug("job %s: connection test passed", cy->c.name);
		cy->job->checked = true;
		cy->job->link_off = r->link_unavailable != 0;
		cy->link_off = cy->job->link_off;
		cy->link_missing = r->link_unregistered != 0 || cy->link_off;
		eng_cycle_next(cy, step_recover);
		return;
	}
	xts_policy_result_format(r, &b);
	xts_err("job %s: connection test failed (%s): %s", cy->c.name,
		r->n > 0 && r->f[0].code != NULL ? r->f[0].code : xts_errname(r->err),
		b.p != NULL ? b.p : "");
	xts_buf_free(&b);
	for (i = 0; i < r->n; i++) {
		struct xts_prov_entry pe;
		if (cy->e->o.provlog == NULL)
			break;
		xts_prov_entry_init(&pe);
		pe.cycle_id = cy->id;
		pe.job_id = cy->c.name;
		pe.action = XTS_PROV_OTHER;
		pe.status = XTS_PROV_FAILURE;
		pe.error_code = r->f[i].code;
		pe.error_reason = r->f[i].details;
		pe.recommended_action = r->f[i].fix;
		pe.source_tenant_id = cy->src->tenant_id;
		pe.target_tenant_id = cy->tgt->tenant_id;
		xts_provlog_write(cy->e->o.provlog, &pe);
		xts_prov_entry_clear(&pe);
	}
	cy->job->checked = false;
	/* Credentials, policies and an unusable link attribute do not fix
	 * themselves: quarantine at once. */
	if (r->err == XTS_EAUTH || r->err == XTS_EPOLICY || r->err == XTS_ECONFIG) {
		cy->fatal_why = r->err == XTS_ECONFIG ?
			"the target tenant cannot hold the job's link attribute" :
			"the tenant refused the job's credentials or policies";
		cy->auth_failed = true;
		cy->auth_code = xts_strdup(r->n > 0 && r->f[0].code != NULL ? r->f[0].code : xts_errname(r->err));
	}
	cy->result = r->err != 0 ? r->err : XTS_EPOLICY;
	eng_cycle_next(cy, step_end);
}

static void
step_connect(struct eng_cycle *cy)
{
	int ret = xts_policy_check_start_ex(cy->src->g, cy->tgt->g, NULL, NULL, cy->c.link_attr,
					    XTS_PC_REGISTER_LINK | (cy->dry ? XTS_PC_DRY_RUN : 0u), step_connect_done, cy, &cy->pc);

	if (ret != 0) {
		cy->result = ret;
		eng_cycle_next(cy, step_end);
	}
}

/* Delta links stored before the source's graph_endpoint changed point at
 * another origin, which xts_graph refuses to follow: forget them and read in
 * full, as after a 410. Nothing is written: the cycle's end stores new links,
 * and a cycle that fails before then decides the same again. */
static void
drop_foreign_links(struct eng_cycle *cy, struct xts_store_job *sj)
{
	bool foreign = sj->delta_link != NULL && xts_graph_link_check(cy->src->g, sj->delta_link) != 0;
	json_t *doc, *v;
	size_t i;

	if (!foreign && sj->groups_delta_link != NULL) {
		doc = xts_json_loads(sj->groups_delta_link, 0, NULL);
		json_array_foreach(json_object_get(doc, "links"), i, v)
			if (json_is_string(v) && xts_graph_link_check(cy->src->g, json_string_value(v)) != 0)
				foreign = true;
		json_decref(doc);
	}
	if (!foreign)
		return;
	xts_warn("job %s: the stored delta links are not on source tenant %s's graph_endpoint (it changed); "
		 "this cycle is a full resync", cy->c.name, cy->src->name);
	xts_free(sj->delta_link);
	sj->delta_link = NULL;
	xts_free(sj->groups_delta_link);
	sj->groups_delta_link = NULL;
}

/* The job's fingerprint: the schema's, then ";" and 16 hex digits of a
 * SHA-256 of what decides scope besides the schema and the assigned groups
 * (whose delta links are kept per group list): scope and assigned_users. A
 * change of either reads every user again, as Microsoft's service does ("A
 * new initial cycle is triggered because of a change in attribute mappings
 * or scoping filters", entra: app-provisioning/how-provisioning-works.md);
 * only users the delta returns would be decided again otherwise. */
static int
digest_lower(EVP_MD_CTX *c, const char *s)
{
	char ch;

	for (; *s; s++) {
		ch = (char)tolower((unsigned char)*s);
		if (EVP_DigestUpdate(c, &ch, 1) != 1)
			return 0;
	}
	return 1;
}

static int
job_fingerprint(struct eng_cycle *cy, char out[JOB_FP_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE], mt[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, mtlen = 0, i;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char head[32];
	size_t k;
	int ok;

	snprintf(head, sizeof(head), "v1 scope %d\n", cy->c.scope);
	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, head, strlen(head)) == 1;
	for (k = 0; ok && k < cy->c.n_users; k++)
		ok = EVP_DigestUpdate(c, cy->c.users[k], strlen(cy->c.users[k])) == 1 &&
		     EVP_DigestUpdate(c, "\n", 1) == 1;
	ok = ok && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 8;
	/* the tenants, source and target, as written in the config but for
	 * case (a GUID or a domain: both are case-insensitive) */
	ok = ok && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(c, "v1 tenants\n", 11) == 1 && digest_lower(c, cy->src->tenant_id) &&
	     EVP_DigestUpdate(c, "\n", 1) == 1 && digest_lower(c, cy->tgt->tenant_id) &&
	     EVP_DigestFinal_ex(c, mt, &mtlen) == 1 && mtlen >= 8;
	EVP_MD_CTX_free(c);
	if (!ok)
		return XTS_ENOMEM;
	k = (size_t)snprintf(out, JOB_FP_LEN, "%s;", cy->sch->fp);
	for (i = 0; i < 8 && k + 2 < JOB_FP_LEN; i++, k += 2)
		snprintf(out + k, JOB_FP_LEN - k, "%02x", md[i]);
	if (k + 1 < JOB_FP_LEN)
		out[k++] = ';';
	for (i = 0; i < 8 && k + 2 < JOB_FP_LEN; i++, k += 2)
		snprintf(out + k, JOB_FP_LEN - k, "%02x", mt[i]);
	return 0;
}

/* What changed between the stored fingerprint and fp: NULL nothing, "" only
 * the format (a store from before the scope or the tenants part: kept
 * without a resync), FP_TENANTS the source or target tenant, else a name for
 * the log. */
#define FP_TENANTS "the source or target tenant"
static const char *
fingerprint_change(const char *stored, const char *fp)
{
	const char *semi = stored != NULL ? strchr(stored, ';') : NULL;
	size_t n = semi != NULL ? (size_t)(semi - stored) : (stored != NULL ? strlen(stored) : 0);
	const char *fsemi = strchr(fp, ';');
	const char *semi2 = semi != NULL ? strchr(semi + 1, ';') : NULL;
	const char *fsemi2 = strchr(fsemi + 1, ';');

	if (stored == NULL)
		return "";
	if (semi2 != NULL && strcmp(semi2, fsemi2) != 0)
		return FP_TENANTS;
	if (n != (size_t)(fsemi - fp) || strncmp(stored, fp, n) != 0)
		return "schema";
	if (semi == NULL)
		return "";
	n = semi2 != NULL ? (size_t)(semi2 - semi) : strlen(semi);
	if (n != (size_t)(fsemi2 - fsemi) || strncmp(semi, fsemi, n) != 0)
		return "scope or assigned_users";
	return semi2 == NULL ? "" : NULL;
}

/* A quarantine retry retries what failed: the job's escrowed writes become
 * due in this cycle. Left to their own back-off (which may end after the
 * retry), the cycle wrote nothing, succeeded and left quarantine with the
 * failing writes untried. */
static int
retry_escrow(struct eng_cycle *cy)
{
	long long due = 0;
	int ret = xts_store_op_due_now(cy->st, cy->c.name, NULL, &due);

	if (ret == 0 && due > 0)
		xts_info("job %s: quarantine retry: %lld failed write(s) are retried in this cycle", cy->c.name,
			 due);
	return ret;
}

static void
step_start(struct eng_cycle *cy)
{
	struct xts_store_job sj;
	long long now = xts_wall_ms();
	char fp[JOB_FP_LEN];
	const char *why;
	int ret;

	memset(&sj, 0, sizeof(sj));
	ret = xts_store_job_ensure(cy->st, cy->c.name);
	if (ret == 0)
		ret = xts_store_job_get(cy->st, cy->c.name, &sj);
	if (ret != 0)
		goto fail;
	if (eng_in_quarantine(sj.state) && (cy->e->o.flags & XTS_ENGINE_RETRY_NOW) != 0) {
		/* named by xtsyncd --once --job: the operator's retry, now; it
		 * leaves quarantine only by succeeding */
		xts_info("job %s: %s (%s); --job names it, so --once retries it now", cy->c.name,
			 sj.state == XTS_JOB_DISABLED ? "disabled after 28 days in quarantine" : "quarantined",
			 sj.state_reason != NULL ? sj.state_reason : "?");
		cy->job->checked = false;
		ret = retry_escrow(cy);
		if (ret != 0)
			goto fail;
	} else if (sj.state == XTS_JOB_DISABLED) {
		xts_warn("job %s: disabled after 28 days in quarantine; `xtsyncctl resume` or `restart` it "
			 "(or `xtsyncd --once --job %s`)", cy->c.name, cy->c.name);
		cy->result = XTS_EHELD;
		cy->phase = PH_DONE;
		goto nocycle;
	} else if (sj.state == XTS_JOB_QUARANTINED) {
		if (sj.next_retry > now) {
			xts_info("job %s: quarantined (%s); next attempt in %lld s", cy->c.name,
				 sj.state_reason != NULL ? sj.state_reason : "?", (sj.next_retry - now) / 1000);
			cy->result = XTS_EHELD;
			cy->phase = PH_DONE;
			goto nocycle;
		}
		cy->job->checked = false;
		ret = retry_escrow(cy);
		if (ret != 0)
			goto fail;
	}
	ret = job_fingerprint(cy, fp);
	if (ret != 0)
		goto fail;
	why = fingerprint_change(sj.schema_fingerprint, fp);
	if (why != NULL && strcmp(why, FP_TENANTS) == 0) {
		/* its source ids, target ids and delta links name nothing in
		 * the new tenants: start over, as a new job would (a dry run
		 * or a preview does it on its copy of the store, so its plan
		 * is the cycle's) */
		xts_warn("job %s: %s changed; what the job knew of the old tenants is forgotten and "
			 "this cycle is initial (the target's existing users are matched, not "
			 "duplicated; nothing is removed from the old target)", cy->c.name, why);
		ret = xts_store_forget_job(cy->st, cy->c.name);
		if (ret != 0)
			goto fail;
		xts_free(sj.groups_delta_link);
		sj.groups_delta_link = NULL;
	} else if (why != NULL && strcmp(why, "") != 0) {
		xts_info("job %s: %s changed; this cycle is a full resync", cy->c.name, why);
	}
	if (why != NULL) {
		if (strcmp(why, "") != 0 || sj.schema_fingerprint == NULL) {
			xts_free(sj.delta_link);
			sj.delta_link = NULL;
			ret = xts_store_job_set_delta(cy->st, cy->c.name, NULL);
		}
		if (ret == 0)
			ret = xts_store_job_set_fingerprint(cy->st, cy->c.name, fp);
		if (ret != 0)
			goto fail;
	}
	drop_foreign_links(cy, &sj);
	cy->kind = sj.delta_link == NULL ? XTS_CYCLE_INITIAL : XTS_CYCLE_INCREMENTAL;
	cy->stored_users_link = sj.delta_link;
	sj.delta_link = NULL;
	cy->stored_groups_link = sj.groups_delta_link;
	sj.groups_delta_link = NULL;
	ret = xts_store_cycle_begin(cy->st, cy->c.name, cy->kind, now, &cy->id);
	if (ret != 0)
		goto fail;
	cy->started = now;
	xts_info("job %s: cycle %lld (%s)%s", cy->c.name, cy->id,
		 cy->kind == XTS_CYCLE_INITIAL ? "initial" : "incremental", cy->dry ? " [dry run]" : "");
	xts_store_job_clear(&sj);
	cy->phase = PH_CONNECT;
	cy->link_off = cy->job->link_off;
	cy->link_missing = cy->link_off;
	/* Every cycle: a target administrator who turns off "Allow users
	 * sync into this tenant" stops synchronization ("false causes any
	 * current user synchronization from the source tenant to the target
	 * tenant to stop", crosstenantusersyncinbound.md); Graph itself would
	 * still take the app's writes. A few GETs a cycle, no write. */
	step_connect(cy);
	return;
fail:
	xts_err("job %s: cannot start a cycle: %s", cy->c.name, xts_strerror(ret));
	cy->result = ret;
nocycle:
	xts_store_job_clear(&sj);
	step_end(cy);
}

/* ---- recovery ------------------------------------------------------------------ */

static int
collect_id(void *arg, const struct xts_store_op *o)
{
	return json_array_append_new(arg, json_integer(o->id)) == 0 ? 0 : XTS_ENOMEM;
}

/* In-flight ops are what a crash left behind: send them again. A create is
 * never re-sent blindly: apply MATCHES before it invites (link attribute,
 * matching attributes, then the invited address), so a user the crashed run
 * did create is adopted, not duplicated. */
static void
step_recover(struct eng_cycle *cy)
{
	json_t *ids = json_array(), *v;
	size_t i;
	int ret;

	if (cy->pc != NULL) {
		xts_policy_check_free(cy->pc);
		cy->pc = NULL;
	}
	if ((cy->e->o.flags & XTS_ENGINE_LIVE_CYCLE) != 0) {
		/* a preview beside the live cycle: its ops in flight are not ours */
		json_decref(ids);
		step_groups(cy);
		return;
	}
	ret = ids == NULL ? XTS_ENOMEM : xts_store_op_foreach(cy->st, cy->c.name, XTS_OP_INFLIGHT, 0, collect_id, ids);
	json_array_foreach(ids, i, v)
		if (ret == 0)
			ret = xts_store_op_requeue(cy->st, json_integer_value(v));
	if (ret == 0 && json_array_size(ids) > 0)
		xts_warn("job %s: %zu operations were in flight when the daemon stopped; "
			 "resolving them (creates are matched first)", cy->c.name, json_array_size(ids));
	json_decref(ids);
	if (ret != 0) {
		cy->result = ret;
		step_end(cy);
		return;
	}
	step_groups(cy);
}

/* ---- groups -------------------------------------------------------------------- */

/* ---- the read batch ------------------------------------------------------------ */

/* A paused batch holds SQLite's write lock, and the mail flusher writes the
 * outbox through its own connection (busy_timeout 5 s): a batch left paused
 * for ENG_BATCH_IDLE_MS (a slow or throttled page) is committed. */
static void
batch_idle_cb(void *arg)
{
	struct eng_cycle *cy = arg;
	int ret = xts_store_batch_commit(cy->st, &cy->batch);

	cy->batch_users = 0;
	if (ret != 0 && cy->batch_err == 0) {
		xts_err("job %s: the read batch could not be stored: %s", cy->c.name, xts_strerror(ret));
		cy->batch_err = ret;
	}
}

static int
batch_resume(struct eng_cycle *cy)
{
	int ret = cy->batch_err;

	if (cy->btimer != NULL)
		xts_ev_timer_stop(cy->btimer);
	cy->batch_err = 0;
	if (ret == 0)
		ret = xts_store_batch_begin(cy->st, &cy->batch);
	return ret;
}

static int
batch_pause(struct eng_cycle *cy)
{
	xts_store_batch_pause(cy->st, &cy->batch);
	if (!cy->batch.open || cy->e->o.ev == NULL)
		return 0;
	if (cy->btimer == NULL && xts_ev_timer_new(cy->e->o.ev, batch_idle_cb, cy, &cy->btimer) != 0)
		return XTS_ENOMEM;
	return xts_ev_timer_start(cy->btimer, ENG_BATCH_IDLE_MS);
}

/* Commit (ok) or drop the batch at the end of a walk; the error of a commit
 * the idle timer made counts too. */
static int
batch_end(struct eng_cycle *cy, int ok)
{
	int ret = cy->batch_err;

	if (cy->btimer != NULL)
		xts_ev_timer_stop(cy->btimer);
	cy->batch_err = 0;
	if (ok && ret == 0)
		ret = xts_store_batch_commit(cy->st, &cy->batch);
	xts_store_batch_abort(cy->st, &cy->batch);
	cy->batch_users = 0;
	return ret;
}

/* Member events are buffered and written sorted by the member table's key
 * (job, member_id, group_id), ENG_USERS_PER_TX at a time and at the end of
 * each walk, in one short relaxed transaction: inserted in key order they
 * touch each leaf of that b-tree once, where page by page they landed at
 * random. Events for the same (member, group) keep their order. */
struct eng_mev {
	char *group, *member;
	int removed;
	size_t seq;
};

static int
mev_cmp(const void *a, const void *b)
{
	const struct eng_mev *x = a, *y = b;
	int c = strcmp(x->member, y->member);

	if (c == 0)
		c = strcmp(x->group, y->group);
	if (c == 0)
		c = x->seq < y->seq ? -1 : x->seq > y->seq;
	return c;
}

void
eng_groups_drop(struct eng_cycle *cy)
{
	size_t i;

	for (i = 0; i < cy->n_mev; i++) {
		xts_free(cy->mev[i].group);
		xts_free(cy->mev[i].member);
	}
	cy->n_mev = 0;
}

int
eng_groups_flush(struct eng_cycle *cy)
{
	size_t i;
	int ret;

	if (cy->n_mev == 0)
		return 0;
	qsort(cy->mev, cy->n_mev, sizeof(cy->mev[0]), mev_cmp);
	/* Relaxed (no fsync): nothing acts on the read phase's commits before
	 * step_post's fsynced barrier (see eng_users_page). */
	ret = xts_store_begin_relaxed(cy->st);
	for (i = 0; i < cy->n_mev && ret == 0; i++) {
		const struct eng_mev *m = &cy->mev[i];
		if (m->removed) {
			ret = xts_store_member_remove(cy->st, cy->c.name, m->group, m->member);
			if (ret == XTS_ENOENT)
				ret = 0;
		} else {
			ret = xts_store_member_add(cy->st, cy->c.name, m->group, m->member);
			if (ret == XTS_EEXIST)
				ret = 0;
		}
	}
	if (ret == 0)
		ret = xts_store_commit(cy->st);
	if (ret != 0 && xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	eng_groups_drop(cy);
	return ret;
}

struct gclear {
	json_t *changed, *groups;
	int err;
};

static int
gclear_cb(void *arg, const char *group_id, const char *member_id)
{
	struct gclear *g = arg;

	if (json_object_set_new(g->changed, member_id, json_true()) != 0 ||
	    (g->groups != NULL && json_object_set_new(g->groups, group_id, json_true()) != 0))
		g->err = XTS_ENOMEM;
	return g->err;
}

/* An assigned group deleted in the source: its recorded members are
 * forgotten (after the events read before it), and each is re-decided, so a
 * member assigned by nothing else leaves scope. */
static int
group_removed(struct eng_cycle *cy, const char *gid)
{
	struct gclear g = { cy->changed, NULL, 0 };
	int ret = eng_groups_flush(cy);

	if (ret == 0 && cy->kind != XTS_CYCLE_INITIAL)
		ret = xts_store_member_foreach(cy->st, cy->c.name, gid, gclear_cb, &g);
	ret = ret != 0 ? ret : g.err;
	if (ret == 0)
		ret = xts_store_begin_relaxed(cy->st);
	if (ret == 0)
		ret = xts_store_member_clear_group(cy->st, cy->c.name, gid);
	if (ret == 0)
		ret = xts_store_commit(cy->st);
	else if (xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	if (ret == 0)
		xts_warn("job %s: assigned group %s was deleted in the source: its members leave scope "
			 "unless assigned otherwise", cy->c.name, gid);
	return ret;
}

int
eng_groups_page(struct eng_cycle *cy, const struct xts_member_event *ev, size_t n, int last)
{
	size_t i;
	int ret = 0;

	(void)last;
	if (cy->n_mev + n > cy->cap_mev) {
		size_t cap = cy->cap_mev > 0 ? cy->cap_mev : 1024;
		struct eng_mev *p;
		while (cap < cy->n_mev + n)
			cap *= 2;
		p = xts_realloc(cy->mev, cap * sizeof(*p));
		if (p == NULL)
			return XTS_ENOMEM;
		cy->mev = p;
		cy->cap_mev = cap;
	}
	for (i = 0; i < n && ret == 0; i++) {
		struct eng_mev *m = &cy->mev[cy->n_mev];
		if (ev[i].member_id == NULL) {
			ret = group_removed(cy, ev[i].group_id);
			continue;
		}
		if (ev[i].odata_type != NULL && !xts_graph_is_user_type(ev[i].odata_type))
			continue;
		m->group = xts_strdup(ev[i].group_id);
		m->member = xts_strdup(ev[i].member_id);
		m->removed = ev[i].removed;
		m->seq = cy->mev_seq++;
		if (m->group == NULL || m->member == NULL) {
			xts_free(m->group);
			xts_free(m->member);
			ret = XTS_ENOMEM;
			break;
		}
		cy->n_mev++;
		/* A full users round re-decides every member anyway (and sweeps
		 * those it does not return): no set of a million ids in memory. */
		if (cy->kind != XTS_CYCLE_INITIAL &&
		    json_object_set_new(cy->changed, ev[i].member_id, json_true()) != 0)
			ret = XTS_ENOMEM;
	}
	if (ret == 0 && cy->n_mev >= ENG_USERS_PER_TX)
		ret = eng_groups_flush(cy);
	return ret != 0 ? ret : XTS_PAGE_CONTINUE;
}

static int
groups_cb(void *arg, const struct xts_member_event *ev, size_t n, int last)
{
	return eng_groups_page(arg, ev, n, last);
}

/* Credentials refused while reading (revoked or expired secret): like a
 * failed connection test, this does not fix itself; quarantine at once. */
static void
read_auth_failed(struct eng_cycle *cy, int err, const struct xts_graph_error *gerr)
{
	if (err != XTS_EAUTH)
		return;
	cy->auth_failed = true;
	xts_free(cy->auth_code);
	cy->auth_code = xts_strdup(gerr != NULL && gerr->code[0] != '\0' ? gerr->code : "AuthenticationFailed");
}

#define GROUPS_PER_READ 50 /* $filter=id eq ... or ...: at most 50 ids per groups/delta walk */

/* Forget the recorded members of groups [off, off+n) (n = 0: of every group
 * the store knows for the job, configured or not) before a full read lists
 * them again. Each forgotten member is re-evaluated after the round, so one
 * who is in none of the groups any more leaves scope. */
static int
groups_forget(struct eng_cycle *cy, size_t off, size_t n)
{
	struct gclear g = { cy->changed, NULL, 0 };
	const char *gid;
	json_t *v;
	size_t i;
	int ret = 0;

	if (n == 0) {
		g.groups = json_object();
		if (g.groups == NULL)
			return XTS_ENOMEM;
		ret = xts_store_member_foreach(cy->st, cy->c.name, NULL, gclear_cb, &g);
	} else {
		for (i = off; i < off + n && ret == 0; i++)
			ret = xts_store_member_foreach(cy->st, cy->c.name, cy->c.groups[i], gclear_cb, &g);
	}
	ret = ret != 0 ? ret : g.err;
	if (ret == 0)
		ret = xts_store_begin(cy->st);
	if (n == 0) {
		json_object_foreach(g.groups, gid, v)
			if (ret == 0)
				ret = xts_store_member_clear_group(cy->st, cy->c.name, gid);
	} else {
		for (i = off; i < off + n && ret == 0; i++)
			ret = xts_store_member_clear_group(cy->st, cy->c.name, cy->c.groups[i]);
	}
	if (ret == 0)
		ret = xts_store_commit(cy->st);
	else if (xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	json_decref(g.groups);
	return ret;
}

static void groups_chunk(struct eng_cycle *cy);

static void
groups_done(void *arg, int err, const char *delta_link, const struct xts_graph_error *gerr)
{
	struct eng_cycle *cy = arg;
	int ret;

	cy->pager = NULL;
	/* The member pages read (even of a walk that failed) are kept, as
	 * when each page was its own transaction: they are true facts, and
	 * reading them again is harmless. */
	ret = eng_groups_flush(cy);
	if (ret != 0 && err == 0) {
		xts_err("job %s: group members could not be stored: %s", cy->c.name, xts_strerror(ret));
		err = ret;
	}
	if (err == XTS_EGONE && (json_is_string(json_array_get(cy->gstored, cy->gchunk)) ||
				 cy->groups_restarts++ < EGONE_RESTARTS)) {
		xts_warn("job %s: groups delta token expired (410); reading assigned groups %zu-%zu in full", cy->c.name,
			 cy->gchunk * GROUPS_PER_READ + 1,
			 cy->gchunk * GROUPS_PER_READ + GROUPS_PER_READ < cy->c.n_groups ?
			 cy->gchunk * GROUPS_PER_READ + GROUPS_PER_READ : cy->c.n_groups);
		json_array_set_new(cy->gstored, cy->gchunk, json_null());
		eng_cycle_next(cy, groups_chunk);
		return;
	}
	if (err != 0) {
		xts_err("job %s: reading assigned groups failed: %s%s%s", cy->c.name, xts_strerror(err),
			gerr != NULL ? " " : "", gerr != NULL ? gerr->code : "");
		read_auth_failed(cy, err, gerr);
		cy->aborted_read = true;
		cy->result = err;
		eng_cycle_next(cy, step_end);
		return;
	}
	if (json_array_append_new(cy->gnew, delta_link != NULL ? json_string(delta_link) : json_null()) != 0) {
		cy->result = XTS_ENOMEM;
		eng_cycle_next(cy, step_end);
		return;
	}
	cy->gchunk++;
	eng_cycle_next(cy, groups_chunk);
}

/* Read the next 50 assigned groups; after the last chunk, the users. */
static void
groups_chunk(struct eng_cycle *cy)
{
	size_t off = cy->gchunk * GROUPS_PER_READ, n;
	const char *link;
	int ret = 0;

	if (cy->canceled) {
		cy->result = XTS_ECANCELED;
		step_end(cy);
		return;
	}
	if (off >= cy->c.n_groups) {
		json_t *doc = json_pack("{s:s,s:O}", "groups", cy->gkey, "links", cy->gnew);
		xts_free(cy->groups_link);
		cy->groups_link = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
		json_decref(doc);
		if (cy->groups_link == NULL) {
			cy->result = XTS_ENOMEM;
			step_end(cy);
			return;
		}
		step_users(cy);
		return;
	}
	n = cy->c.n_groups - off < GROUPS_PER_READ ? cy->c.n_groups - off : GROUPS_PER_READ;
	link = json_string_value(json_array_get(cy->gstored, cy->gchunk));
	if (link == NULL)
		ret = groups_forget(cy, off, n); /* a full read lists every member again */
	if (ret == 0)
		ret = xts_delta_groups_start(cy->src->g, (const char *const *)cy->c.groups + off, n, link,
					     groups_cb, groups_done, cy, &cy->pager);
	if (ret != 0) {
		cy->result = ret;
		step_end(cy);
	}
}

static void
step_groups(struct eng_cycle *cy)
{
	struct xts_buf k = XTS_BUF_INIT;
	json_t *doc = NULL;
	size_t i;
	int ret = 0;

	cy->phase = PH_GROUPS;
	if (cy->canceled) {
		cy->result = XTS_ECANCELED;
		step_end(cy);
		return;
	}
	if (cy->c.scope != XTS_SCOPE_ASSIGNED || cy->c.n_groups == 0) {
		step_users(cy);
		return;
	}
	for (i = 0; i < cy->c.n_groups && ret == 0; i++)
		ret = xts_buf_printf(&k, "%s%s", i > 0 ? "," : "", cy->c.groups[i]);
	xts_free(cy->gkey);
	cy->gkey = ret == 0 ? xts_buf_steal(&k) : NULL;
	xts_buf_free(&k);
	json_decref(cy->gnew);
	cy->gnew = json_array();
	json_decref(cy->gstored);
	cy->gstored = NULL;
	cy->gchunk = 0;
	if (cy->gkey == NULL || cy->gnew == NULL) {
		cy->result = XTS_ENOMEM;
		step_end(cy);
		return;
	}
	/* The stored links are used only for the same set of groups: a changed
	 * assignment reads every group in full and forgets the memberships of
	 * groups no longer assigned (their members are re-evaluated). */
	if (cy->stored_groups_link != NULL)
		doc = xts_json_loads(cy->stored_groups_link, 0, NULL);
	if (json_is_object(doc) && json_is_string(json_object_get(doc, "groups")) &&
	    strcasecmp(json_string_value(json_object_get(doc, "groups")), cy->gkey) == 0 &&
	    json_is_array(json_object_get(doc, "links"))) {
		cy->gstored = json_incref(json_object_get(doc, "links"));
	} else {
		if (cy->stored_groups_link != NULL)
			xts_info("job %s: the assigned groups changed; reading them in full", cy->c.name);
		ret = groups_forget(cy, 0, 0);
	}
	json_decref(doc);
	if (ret != 0) {
		cy->result = ret;
		step_end(cy);
		return;
	}
	groups_chunk(cy);
}

/* ---- users --------------------------------------------------------------------- */

struct sel {
	struct xts_buf b;
	int err;
};

static void
sel_add(const char *name, void *arg)
{
	struct sel *s = arg;
	const char *p;
	size_t n = strlen(name);

	/* netId (the link) and IsSoftDeleted are not Graph properties. */
	if (strcasecmp(name, "netId") == 0 || strcasecmp(name, "IsSoftDeleted") == 0 || n == 0)
		return;
	for (p = s->b.p; p != NULL && *p != '\0';) {
		const char *c = strchr(p, ',');
		size_t l = c != NULL ? (size_t)(c - p) : strlen(p);
		if (l == n && strncasecmp(p, name, n) == 0)
			return;
		p = c != NULL ? c + 1 : p + l;
	}
	if (xts_buf_printf(&s->b, "%s%s", s->b.len > 0 ? "," : "", name) != 0)
		s->err = XTS_ENOMEM;
}

static int
build_select(struct eng_cycle *cy)
{
	static const char *const need[] = {
		"id", "userType", "creationType", "userPrincipalName", "accountEnabled", "displayName",
		"mail",
	};
	struct sel s = { XTS_BUF_INIT, 0 };
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		sel_add(need[i], &s);
	xts_schema_foreach_source_attr(cy->sch->s, sel_add, &s);
	if (cy->c.src_link_attr != NULL)
		sel_add(cy->c.src_link_attr, &s);
	if (s.err != 0) {
		xts_buf_free(&s.b);
		return s.err;
	}
	cy->select = xts_buf_steal(&s.b);
	return cy->select != NULL ? 0 : XTS_ENOMEM;
}

int
eng_users_page(struct eng_cycle *cy, json_t *value, int last)
{
	json_t *entry;
	size_t i;
	int ret;

	if (cy->canceled) {
		batch_end(cy, 0);
		return XTS_ECANCELED;
	}
	/* Pages are decided in one relaxed transaction (a store batch: several
	 * pages, ENG_USERS_PER_TX users), committed at once or not at all,
	 * without an fsync: their decisions gate no external write until
	 * step_post commits the round with an fsync (which makes these frames
	 * durable too) and only then starts the apply phase; the delta link is
	 * stored only in that commit. A power loss before it rolls the store
	 * back to an earlier commit, decisions and delta link together, and the
	 * next cycle reads those pages again. A kill -9 loses nothing
	 * committed (the frames are in the OS's cache) and the open batch's
	 * pages are read again too. Batched because a commit writes every page
	 * it dirtied and the id-keyed indexes are dirtied at random: one
	 * transaction per Graph page wrote each index page many times. */
	ret = batch_resume(cy);
	json_array_foreach(value, i, entry) {
		if (ret != 0)
			break;
		if (!json_is_object(entry))
			continue;
		ret = eng_plan_entry(cy, entry);
		cy->counts.users++;
		cy->batch_users++;
	}
	if (ret == 0 && (last || cy->batch_users >= ENG_USERS_PER_TX)) {
		ret = xts_store_batch_commit(cy->st, &cy->batch);
		cy->batch_users = 0;
	}
	if (ret == 0)
		ret = batch_pause(cy);
	if (ret != 0) {
		batch_end(cy, 0);
		xts_err("job %s: a users page could not be stored: %s", cy->c.name, xts_strerror(ret));
		return ret;
	}
	cy->counts.pages++;
	return XTS_PAGE_CONTINUE;
}

static int
users_cb(void *arg, json_t *value, int last)
{
	return eng_users_page(arg, value, last);
}

static void
users_done(void *arg, int err, const char *delta_link, const struct xts_graph_error *gerr)
{
	struct eng_cycle *cy = arg;
	int ret;

	cy->pager = NULL;
	/* The batch of a failed read is dropped (the next cycle reads its pages
	 * again); a successful read committed it at its last page. */
	ret = batch_end(cy, err == 0 && !cy->canceled);
	if (ret != 0 && err == 0) {
		xts_err("job %s: the last users pages could not be stored: %s", cy->c.name, xts_strerror(ret));
		err = ret;
	}
	if (err == XTS_EGONE && (cy->stored_users_link != NULL || cy->users_restarts++ < EGONE_RESTARTS)) {
		/* also a 410 within a full read (a nextLink gone stale): it
		 * starts over, as Graph asks (delta-query-overview.md) */
		xts_warn("job %s: users delta token no longer valid (%s); full resync (existing users "
			 "are matched, not duplicated)", cy->c.name, gerr != NULL ? gerr->code : "410");
		xts_free(cy->stored_users_link);
		cy->stored_users_link = NULL;
		ret = xts_store_job_set_delta(cy->st, cy->c.name, NULL);
		if (ret != 0) {
			cy->result = ret;
			eng_cycle_next(cy, step_end);
			return;
		}
		cy->kind = XTS_CYCLE_INITIAL;
		eng_cycle_next(cy, step_users);
		return;
	}
	if (err != 0) {
		/* A failed read never turns into deletions: nothing is swept. */
		xts_err("job %s: reading source users failed (%s%s%s); no sweep, the delta link is kept",
			cy->c.name, xts_strerror(err), gerr != NULL ? " " : "", gerr != NULL ? gerr->code : "");
		read_auth_failed(cy, err, gerr);
		cy->aborted_read = true;
		cy->result = err;
		eng_cycle_next(cy, step_end);
		return;
	}
	xts_free(cy->users_link);
	cy->users_link = delta_link != NULL ? xts_strdup(delta_link) : NULL;
	eng_cycle_next(cy, step_post);
}

static void
step_users(struct eng_cycle *cy)
{
	int ret = 0;

	cy->phase = PH_USERS;
	if (cy->canceled) {
		cy->result = XTS_ECANCELED;
		step_end(cy);
		return;
	}
	if (cy->provision) {
		prov_fetch(cy);
		return;
	}
	if (cy->select == NULL)
		ret = build_select(cy);
	if (ret == 0) {
		int yes = 0;
		ret = xts_store_job_untouched(cy->st, cy->c.name, &yes);
		cy->untouched = yes != 0;
	}
	if (ret == 0)
		ret = xts_delta_users_start(cy->src->g, cy->select, cy->stored_users_link, users_cb,
					    users_done, cy, &cy->pager);
	if (ret != 0) {
		cy->result = ret;
		step_end(cy);
	}
}

/* ---- re-evaluation, sweep, deletion guard ------------------------------------------ */

struct sweep {
	struct eng_cycle *cy;
	long long n;
	int err;
};

static int
sweep_cb(void *arg, const struct xts_store_user *u)
{
	struct sweep *s = arg;

	if (u->deleted)
		return 0;
	s->n++;
	return eng_plan_user(s->cy, u->source_id, u->attrs, 1);
}

static int
count_link(void *arg, const struct xts_store_link *l)
{
	(void)l;
	(*(long long *)arg)++;
	return 1; /* one is enough */
}

struct staged_log {
	struct eng_cycle *cy;
	bool all; /* the job becomes held now: every held op; else only new ones */
};

static int
log_staged(void *arg, const struct xts_store_op *o)
{
	struct staged_log *sl = arg;
	struct eng_cycle *cy = sl->cy;
	struct xts_store_user_row ur;
	struct xts_store_link_row lr;

	memset(&ur, 0, sizeof(ur));
	memset(&lr, 0, sizeof(lr));
	/* One StagedDelete line per held op, not one per cycle it stays held. */
	if (sl->all || o->cycle_id == cy->id) {
		xts_store_user_get(cy->st, cy->c.name, o->source_id, &ur);
		xts_store_link_get(cy->st, cy->c.name, o->source_id, &lr);
		eng_log_simple(cy, XTS_PROV_STAGED_DELETE, XTS_PROV_SKIPPED, o->source_id, ur.u.attrs,
			       lr.l.target_id, "DeletionThresholdExceeded", o->kind == XTS_OP_DELETE ?
			       "delete held by the deletion threshold (xtsyncctl allow-deletions)" :
			       "disable held by the deletion threshold (xtsyncctl allow-deletions)");
	}
	eng_plan_line(cy, "HELD %s user %s", xts_op_kind_name(o->kind), o->source_id);
	xts_store_user_row_clear(&ur);
	xts_store_link_row_clear(&lr);
	return 0;
}

static int
guard(struct eng_cycle *cy, struct xts_store_job *sj)
{
	long long staged = 0, released = 0;
	int ret = xts_store_op_count(cy->st, cy->c.name, XTS_OP_STAGED, &staged);

	if (ret != 0)
		return ret;
	if (staged == 0) {
		/* Nothing is held any more (the source undid the deletions): leave the
		 * held state, or every later deletion, however few, would be held too. */
		if (sj->state == XTS_JOB_DELETIONS_HELD) {
			xts_info("job %s: no held deletions left; the hold is cleared", cy->c.name);
			ret = xts_store_job_set_state(cy->st, cy->c.name, XTS_JOB_IDLE, NULL, 0, 0, 0);
		}
		return ret;
	}
	if (cy->c.deletion_threshold == 0) {
		/* "0 turns the guard off" (contract): also for what an earlier
		 * threshold held. */
		ret = xts_store_op_release_staged(cy->st, cy->c.name, &released);
		if (ret == 0 && sj->state == XTS_JOB_DELETIONS_HELD) {
			xts_info("job %s: deletion_threshold is 0: the %lld held deletions/disables are released",
				 cy->c.name, released);
			ret = xts_store_job_set_state(cy->st, cy->c.name, XTS_JOB_IDLE, NULL, 0, 0, 0);
		}
		return ret;
	}
	if (sj->state != XTS_JOB_DELETIONS_HELD && staged <= cy->c.deletion_threshold) {
		ret = xts_store_op_release_staged(cy->st, cy->c.name, &released);
		return ret;
	}
	if (sj->state == XTS_JOB_DELETIONS_HELD && staged <= cy->c.deletion_threshold)
		/* held by an earlier cycle: a hold lasts until released, even
		 * when the threshold is raised past it meanwhile */
		xts_warn("job %s: %lld deletions/disables still held (held by an earlier cycle; the "
			 "threshold is now %lld) until `xtsyncctl allow-deletions %s`", cy->c.name, staged,
			 cy->c.deletion_threshold, cy->c.name);
	else
		xts_warn("job %s: %lld deletions/disables exceed the deletion threshold (%lld): held "
			 "until `xtsyncctl allow-deletions %s`", cy->c.name, staged, cy->c.deletion_threshold,
			 cy->c.name);
	{
		struct staged_log sl = { cy, sj->state != XTS_JOB_DELETIONS_HELD };

		ret = xts_store_op_foreach(cy->st, cy->c.name, XTS_OP_STAGED, 0, log_staged, &sl);
	}
	if (ret == 0 && sj->state != XTS_JOB_DELETIONS_HELD)
		ret = xts_store_job_set_state(cy->st, cy->c.name, XTS_JOB_DELETIONS_HELD,
					      "DeletionThresholdExceeded", 0, 0, 0);
	/* Mail once when the job becomes held, not again on every cycle that
	 * finds it still held (the outbox key is per cycle). */
	if (ret == 0 && cy->c.notify[0] != '\0' && sj->state != XTS_JOB_DELETIONS_HELD) {
		struct xts_notify_event ev;
		memset(&ev, 0, sizeof(ev));
		ev.kind = XTS_NOTIFY_DELETIONS_HELD;
		ev.job = cy->c.name;
		ev.cycle_id = cy->id;
		ev.held = staged;
		ev.threshold = cy->c.deletion_threshold;
		ret = xts_notify_queue(cy->st, &ev, cy->c.notify, xts_wall_ms(), NULL);
	}
	if (ret == 0)
		cy->result = XTS_EHELD;
	return ret;
}

static void
step_post(struct eng_cycle *cy)
{
	struct xts_store_job sj;
	const char *key;
	json_t *v;
	struct sweep sw = { cy, 0, 0 };
	int ret;

	memset(&sj, 0, sizeof(sj));
	ret = xts_store_begin(cy->st);
	if (ret == 0)
		ret = xts_store_job_get(cy->st, cy->c.name, &sj);
	/* Members whose membership changed but whom this round did not return. */
	json_object_foreach(cy->changed, key, v) {
		struct xts_store_user_row ur;
		if (ret != 0)
			break;
		memset(&ur, 0, sizeof(ur));
		ret = xts_store_user_get(cy->st, cy->c.name, key, &ur);
		if (ret == XTS_ENOENT) {
			ret = 0; /* never seen: the users round will bring it */
			continue;
		}
		if (ret == 0 && ur.u.last_seen_cycle != cy->id && !ur.u.deleted)
			ret = eng_plan_user(cy, key, ur.u.attrs, 0);
		xts_store_user_row_clear(&ur);
	}
	if (ret == 0 && cy->kind == XTS_CYCLE_INITIAL) {
		long long links = 0;
		ret = xts_store_link_foreach(cy->st, cy->c.name, count_link, &links);
		if (ret == 1)
			ret = 0;
		if (ret == 0 && cy->counts.users == 0 && links > 0) {
			/* An empty full read is never "everyone left". */
			xts_err("job %s: the full read of the source returned no user while %s linked "
				"users exist; not sweeping (no deletions) and not storing the delta link",
				cy->c.name, "some");
			xts_store_rollback(cy->st);
			xts_store_job_clear(&sj);
			cy->aborted_read = true;
			cy->result = XTS_EIO;
			step_end(cy);
			return;
		}
		if (ret == 0)
			ret = xts_store_user_foreach(cy->st, cy->c.name, cy->id, sweep_cb, &sw);
		if (ret == 0 && sw.n > 0)
			xts_info("job %s: %lld users no longer in the source", cy->c.name, sw.n);
	}
	if (ret == 0) {
		/* "retried each cycle": a manager reference deferred for want of
		 * the manager's target user goes out as soon as the manager has
		 * one, not after its escrow back-off (up to a day) */
		long long due = 0;
		ret = xts_store_op_refs_due(cy->st, cy->c.name, &due);
		if (ret == 0 && due > 0)
			xts_info("job %s: %lld deferred manager reference(s) can be set now", cy->c.name, due);
	}
	if (ret == 0)
		ret = guard(cy, &sj);
	/* Only now, with every decision of the round committed, the links. This
	 * commit and xts_store_sync fsync: the barrier that makes the round's
	 * relaxed page commits durable before the apply phase acts on them. */
	if (ret == 0 && cy->users_link != NULL)
		ret = xts_store_job_set_delta(cy->st, cy->c.name, cy->users_link);
	if (ret == 0 && cy->groups_link != NULL)
		ret = xts_store_job_set_groups_delta(cy->st, cy->c.name, cy->groups_link);
	if (ret == 0)
		ret = xts_store_commit(cy->st);
	/* The commit above fsyncs if it wrote anything; this makes sure. */
	if (ret == 0)
		ret = xts_store_sync(cy->st);
	xts_store_job_clear(&sj);
	if (ret != 0) {
		if (xts_store_in_tx(cy->st))
			xts_store_rollback(cy->st);
		xts_err("job %s: cannot store the round's decisions: %s", cy->c.name, xts_strerror(ret));
		cy->result = ret;
		step_end(cy);
		return;
	}
	cy->phase = PH_APPLY;
	eng_apply_start(cy);
}

/* ---- end ----------------------------------------------------------------------- */

static int
quarantine(struct eng_cycle *cy, const char *reason, const char *text)
{
	struct xts_store_job sj;
	struct xts_notify_event ev;
	long long now = xts_wall_ms(), since;
	int ret, step, state = XTS_JOB_QUARANTINED;

	memset(&sj, 0, sizeof(sj));
	ret = xts_store_job_get(cy->st, cy->c.name, &sj);
	if (ret != 0)
		return ret;
	memset(&ev, 0, sizeof(ev));
	ev.job = cy->c.name;
	ev.reason_code = reason;
	ev.reason_text = text;
	ev.failed = cy->failed;
	ev.in_scope = cy->counts.in_scope;
	if (eng_in_quarantine(sj.state)) {
		/* a failed retry: the same quarantine, its clock running on */
		since = sj.quarantine_since;
		step = sj.retry_step + 1;
		ev.kind = sj.state_reason != NULL && strcmp(sj.state_reason, reason) != 0 ?
				  XTS_NOTIFY_REASON_CHANGE : -1;
		ev.previous_reason = sj.state_reason;
	} else {
		since = now;
		step = 0;
		ev.kind = XTS_NOTIFY_QUARANTINE;
	}
	ev.since = since;
	if (now - since >= QUARANTINE_DISABLE_MS) {
		state = XTS_JOB_DISABLED;
		xts_err("job %s: quarantined for 28 days; disabled", cy->c.name);
	}
	ev.next_retry = state == XTS_JOB_DISABLED ? 0 : xts_engine_quarantine_next_retry(since, now);
	ret = xts_store_job_set_state(cy->st, cy->c.name, state, reason, since, ev.next_retry, step);
	if (ret == 0 && ev.kind >= 0 && cy->c.notify[0] != '\0') {
		ret = xts_notify_queue(cy->st, &ev, cy->c.notify, now, NULL);
		if (ret != 0)
			xts_warn("job %s: cannot queue the quarantine mail: %s", cy->c.name, xts_strerror(ret));
		ret = 0;
	}
	xts_warn("job %s: quarantined (%s); next attempt at +%lld h", cy->c.name, reason,
		 ev.next_retry > 0 ? (ev.next_retry - now) / 3600000 : 0);
	xts_store_job_clear(&sj);
	return ret;
}

/* A quarantined job's retry that failed for a reason other than its
 * quarantine's (a 5xx, the network, the store): still a failed retry, so its
 * clock runs on to the next retry time, with the same reason and no new mail.
 * Without this its next_retry stayed in the past and the job was retried
 * every interval instead of at +6 h, +12 h, +24 h. */
static int
retry_failed(struct eng_cycle *cy)
{
	struct xts_store_job sj;
	char *reason = NULL;
	int ret;

	memset(&sj, 0, sizeof(sj));
	ret = xts_store_job_get(cy->st, cy->c.name, &sj);
	if (ret == 0 && sj.state == XTS_JOB_QUARANTINED) {
		reason = xts_strdup(sj.state_reason != NULL ? sj.state_reason : "Quarantined");
		ret = reason != NULL ? 0 : XTS_ENOMEM;
	}
	xts_store_job_clear(&sj);
	if (reason != NULL) {
		xts_warn("job %s: the quarantine retry failed (%s); it stays quarantined (%s)", cy->c.name,
			 xts_strerror(cy->result), reason);
		ret = quarantine(cy, reason, "the quarantine retry failed");
		xts_free(reason);
	}
	return ret;
}

/* At most hourly per job: what the store need not keep (done ops, old cycle
 * rows, mails long sent), or a daemon's store grows for ever (xts_store_housekeep). */
static void
housekeep(struct eng_cycle *cy)
{
	long long now = xts_now_ms(), n = 0;
	int more = 0, ret;

	if (cy->job->housekept_ms != 0 && now - cy->job->housekept_ms < 3600LL * 1000)
		return;
	if (xts_store_in_tx(cy->st))
		return;
	cy->job->housekept_ms = now;
	ret = xts_store_housekeep(cy->st, cy->c.name, xts_wall_ms(), &n, &more);
	if (ret != 0)
		xts_warn("job %s: store housekeeping failed: %s (tried again in an hour)", cy->c.name,
			 xts_strerror(ret));
	else if (n > 0)
		xts_debug("job %s: store housekeeping: %lld old rows deleted%s", cy->c.name, n,
			  more ? "; more at the next cycle" : "");
	if (more)
		cy->job->housekept_ms = 0; /* a backlog: the next cycle goes on with it */
}

static const char *
result_text(int result)
{
	if (result == 0)
		return "success";
	if (result == XTS_EHELD)
		return "held";
	if (result == XTS_ECANCELED)
		return "canceled";
	if (result == XTS_EPARTIAL)
		return "completed with failures";
	return "failed";
}

static void
step_end(struct eng_cycle *cy)
{
	struct eng_job *j = cy->job;
	json_t *counts;
	int ret;

	cy->phase = PH_DONE;
	if (cy->st != NULL && xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	if (cy->id > 0 && !cy->canceled) {
		int q = 0;
		if (cy->auth_failed) {
			ret = quarantine(cy, cy->auth_code != NULL ? cy->auth_code : "AuthenticationFailed",
					 cy->fatal_why != NULL ? cy->fatal_why :
					 "the tenant refused the job's credentials or policies");
			q = 1;
		} else if (xts_engine_should_quarantine(cy->ops, cy->failed, cy->ref_ops, cy->ref_failed,
							cy->c.q_min_ops, cy->c.q_min_failures, cy->c.q_ratio,
							cy->c.q_max_failures)) {
			/* Graph's synchronizationJob status code for it */
			ret = quarantine(cy, "EncounteredEscrowProportionThreshold",
					 "too many operations of the cycle failed");
			q = 1;
		} else if (cy->result == 0 || cy->result == XTS_EHELD) {
			struct xts_store_job sj;
			memset(&sj, 0, sizeof(sj));
			ret = xts_store_job_get(cy->st, cy->c.name, &sj);
			if (ret == 0 && eng_in_quarantine(sj.state)) {
				xts_info("job %s: left quarantine", cy->c.name);
				ret = xts_store_job_set_state(cy->st, cy->c.name, XTS_JOB_IDLE, NULL, 0, 0, 0);
			}
			xts_store_job_clear(&sj);
		} else {
			ret = retry_failed(cy);
		}
		if (ret != 0)
			xts_err("job %s: cannot record the job state: %s", cy->c.name, xts_strerror(ret));
		if (q && cy->result == 0)
			cy->result = XTS_EHELD;
		/* Operations failed (escrowed, retried later): the cycle ran but did
		 * not succeed, and --once must not say it did. */
		if (cy->result == 0 && cy->counts.failed > 0)
			cy->result = XTS_EPARTIAL;
		{
			/* "In scope" is the job's total, not what this round's delta
			 * happened to carry (an incremental round sees only changes). */
			long long total = 0;
			if (xts_store_user_count(cy->st, cy->c.name, 1, &total) == 0)
				cy->counts.in_scope = total;
		}
		counts = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "in_scope",
				   (json_int_t)cy->counts.in_scope, "created", (json_int_t)cy->counts.created,
				   "updated", (json_int_t)cy->counts.updated, "disabled",
				   (json_int_t)cy->counts.disabled, "deleted", (json_int_t)cy->counts.deleted,
				   "skipped", (json_int_t)cy->counts.skipped, "failed",
				   (json_int_t)cy->counts.failed, "users", (json_int_t)cy->counts.users,
				   "pages", (json_int_t)cy->counts.pages);
		ret = xts_store_cycle_end(cy->st, cy->c.name, cy->id, xts_wall_ms(),
					  result_text(cy->result), counts);
		json_decref(counts);
		if (ret != 0)
			xts_err("job %s: cannot close cycle %lld: %s", cy->c.name, cy->id, xts_strerror(ret));
		housekeep(cy);
		xts_info("job %s: cycle %lld %s: %lld users read, in scope %lld, created %lld, updated "
			 "%lld, disabled %lld, deleted %lld, skipped %lld, failed %lld", cy->c.name, cy->id,
			 result_text(cy->result), cy->counts.users, cy->counts.in_scope, cy->counts.created,
			 cy->counts.updated, cy->counts.disabled, cy->counts.deleted, cy->counts.skipped,
			 cy->counts.failed);
		if (cy->e->o.outbox_kick != NULL)
			cy->e->o.outbox_kick(cy->e->o.outbox_arg);
	}
	if (cy->canceled && cy->result == 0)
		cy->result = XTS_ECANCELED;
	if (cy->result != 0 && cy->result != XTS_EHELD && cy->result != XTS_EPARTIAL)
		j->checked = j->checked && !cy->aborted_read ? j->checked : false;
	if (cy->id > 0)
		j->counts = cy->counts;
	eng_cycle_finish(cy, cy->result);
}

void
eng_cycle_finish(struct eng_cycle *cy, int result)
{
	struct eng_job *j = cy->job;
	void (*done)(void *, int) = cy->done;
	void *arg = cy->done_arg;

	j->running = NULL;
	eng_cycle_free(cy);
	if (!j->present) {
		/* Removed from the config while running: the engine forgot it. */
		xts_debug("job %s: removed while running", j->name);
	}
	if (done != NULL)
		done(arg, result);
}

/* ---- public entry points ---------------------------------------------------------- */

int
xts_engine_cycle_start(struct xts_engine *e, const char *job, void (*done)(void *arg, int result),
		       void *arg)
{
	struct eng_job *j = eng_job_find(e, job);
	struct eng_cycle *cy;
	int ret;

	if (j == NULL || !j->present)
		return XTS_ENOENT;
	if (j->running != NULL)
		return XTS_EAGAIN;
	ret = eng_cycle_new(e, j, &cy);
	if (ret != 0)
		return ret;
	cy->done = done;
	cy->done_arg = arg;
	memset(&cy->counts, 0, sizeof(cy->counts));
	j->running = cy;
	eng_cycle_next(cy, step_start);
	return 0;
}

/* The job's running cycle, or NULL. */
static struct eng_cycle *
running_cycle(struct xts_engine *e, const char *job)
{
	struct eng_job *j = eng_job_find(e, job);

	return j != NULL ? j->running : NULL;
}

void
xts_engine_cancel(struct xts_engine *e, const char *job)
{
	struct eng_cycle *cy = running_cycle(e, job);

	if (cy == NULL)
		return;
	cy->canceled = true;
	if (cy->pager != NULL) {
		/* Committed pages stay; the delta link is not stored, so the round repeats. */
		xts_pager_cancel(cy->pager);
		cy->pager = NULL;
		cy->result = XTS_ECANCELED;
		eng_cycle_next(cy, step_end);
	} else if (cy->pc != NULL) {
		xts_policy_check_free(cy->pc);
		cy->pc = NULL;
		cy->result = XTS_ECANCELED;
		eng_cycle_next(cy, step_end);
	} else if (cy->phase == PH_APPLY) {
		/* No refill; writes not sent yet are planned again, and the
		 * cycle ends when the sent ones are back (a second or so). */
		eng_apply_stop(cy);
	}
}

void
xts_engine_abandon(struct xts_engine *e, const char *job)
{
	struct eng_cycle *cy = running_cycle(e, job);

	if (cy == NULL)
		return;
	cy->canceled = true;
	if (cy->inflight > 0)
		xts_warn("job %s: %lld write(s) still unanswered; not waiting longer: each stays in flight in "
			 "the store and the next cycle resolves it by matching (no duplicate)", cy->c.name,
			 cy->inflight);
	if (cy->result == 0)
		cy->result = XTS_ECANCELED;
	/* step_end frees the cycle: what is still on the wire is dropped
	 * without a callback, the open store batch is rolled back. */
	step_end(cy);
}

void
eng_cycle_applied(struct eng_cycle *cy)
{
	eng_cycle_next(cy, step_end);
}

/* ---- provision on demand ------------------------------------------------------------ */

struct prov {
	struct eng_cycle *cy;
	struct eng_job *job;   /* its counts tell what the export did */
	bool in_scope;         /* the scoping verdict of the user */
	bool want_manager;     /* the schema maps manager: it was $expanded */
	void (*cb)(void *arg, json_t *resp);
	void *arg;
	json_t *steps;
	char *user;
	char *sid;             /* the user's source id, once imported */
	struct xts_store *st;  /* the engine's store (outlives the cycle) */
	struct xts_graph_req *req;
};

static void
prov_step(struct prov *p, const char *name, const char *status, const char *desc)
{
	char d[1024];

	/* Graph's error text, source ids: printed to the operator's terminal */
	snprintf(d, sizeof(d), "%s", desc != NULL ? desc : "");
	xts_text_scrub(d);
	json_array_append_new(p->steps, json_pack("{s:s,s:s,s:s}", "name", name, "status", status, "description", d));
}

/* Why the user's write failed: its open op's last error ("code: message"),
 * or "" when the store has none. */
static void
prov_failure(const struct prov *p, char *buf, size_t len)
{
	struct xts_store_op_row r;

	buf[0] = '\0';
	memset(&r, 0, sizeof(r));
	if (p->sid != NULL && xts_store_op_find_open(p->st, p->job->name, p->sid, -1, &r) == 0 &&
	    r.o.state == XTS_OP_FAILED && r.o.last_error_msg != NULL)
		snprintf(buf, len, ": %s", r.o.last_error_msg);
	xts_store_op_row_clear(&r);
}

static void
prov_reply_done(void *arg, int result)
{
	struct prov *p = arg;
	const struct xts_engine_counts *c = &p->job->counts;
	char line[900], why[700];

	if (c->failed > 0 && (result == 0 || result == XTS_EPARTIAL)) {
		/* the cycle ran; the user's write failed: say why, and where more is */
		prov_failure(p, why, sizeof(why));
		snprintf(line, sizeof(line), "the write failed%s (retried on later cycles; "
			 "xtsyncctl logs --user %s --status failure)", why, p->user);
	} else if (result != 0 && result != XTS_EHELD)
		snprintf(line, sizeof(line), "%s", xts_strerror(result));
	else if (c->created + c->updated + c->disabled + c->deleted > 0)
		snprintf(line, sizeof(line), "written to the target tenant (created %lld, updated %lld, "
			 "disabled %lld, deleted %lld)", c->created, c->updated, c->disabled, c->deleted);
	else
		snprintf(line, sizeof(line), "nothing was written to the target tenant");
	if (result == 0 && c->failed > 0)
		result = XTS_EPARTIAL;
	if (!p->in_scope && (result == 0 || result == XTS_EHELD) && c->failed == 0 &&
	    c->created + c->updated + c->disabled + c->deleted == 0)
		prov_step(p, "export", "skipped", line);
	else
		prov_step(p, "export", result == 0 ? "success" : "failure", line);
	p->cb(p->arg, json_pack("{s:b,s:s,s:O}", "ok", result == 0 || result == XTS_EHELD ? 1 : 0,
				"user", p->user, "steps", p->steps));
	json_decref(p->steps);
	xts_free(p->user);
	xts_free(p->sid);
	xts_free(p);
}

/* What the plan decided for the user: the action Microsoft's on-demand view
 * shows under "Perform action". */
static const char *
prov_action(struct eng_cycle *cy, const char *sid, bool in_scope, char *buf, size_t len)
{
	struct xts_store_op_row r;
	/* Microsoft's actions: a restore and a manager reference are updates */
	static const char *const names[] = { "Create", "Update", "Disable", "Delete", "Update", "Update" };
	int ret;

	memset(&r, 0, sizeof(r));
	ret = xts_store_op_find_open(cy->st, cy->c.name, sid, -1, &r);
	if (ret == 0 && r.o.kind == XTS_OP_MANAGER) {
		/* the newest open op is the manager reference: the user's
		 * other op (an update planned with it), if any, is the action */
		int k;
		for (k = XTS_OP_CREATE; k < XTS_OP_MANAGER; k++) {
			struct xts_store_op_row o;
			memset(&o, 0, sizeof(o));
			if (xts_store_op_find_open(cy->st, cy->c.name, sid, k, &o) == 0) {
				xts_store_op_row_clear(&r);
				r = o;
				break;
			}
			xts_store_op_row_clear(&o);
		}
	}
	if (ret == 0 && r.o.kind == XTS_OP_MANAGER && !in_scope) {
		snprintf(buf, len, "Action: Skip (the user is out of scope)");
	} else if (ret == 0 && r.o.kind == XTS_OP_MANAGER) {
		snprintf(buf, len, "Action: Update (manager)");
	} else if (ret == 0 && r.o.kind >= 0 && r.o.kind <= XTS_OP_MANAGER) {
		if (r.o.state == XTS_OP_STAGED)
			snprintf(buf, len, "Action: %s (held by the deletion threshold: xtsyncctl allow-deletions %s)",
				 names[r.o.kind], cy->c.name);
		else if (r.o.kind == XTS_OP_UPDATE || r.o.kind == XTS_OP_RESTORE) {
			const char *key;
			json_t *v;
			size_t n = 0;
			int w;
			w = snprintf(buf, len, "Action: %s (%s", names[r.o.kind],
				     r.o.kind == XTS_OP_RESTORE ? "restore from deleted items; " : "");
			json_object_foreach(json_object_get(r.o.payload, "changes"), key, v) {
				if (w > 0 && (size_t)w < len)
					w += snprintf(buf + w, len - (size_t)w, "%s%s", n++ > 0 ? ", " : "", key);
			}
			if (w > 0 && (size_t)w < len)
				snprintf(buf + w, len - (size_t)w, ")");
		} else {
			snprintf(buf, len, "Action: %s", names[r.o.kind]);
		}
	} else if (!in_scope) {
		snprintf(buf, len, "Action: Skip (the user is out of scope)");
	} else {
		snprintf(buf, len, "Action: Other (the target user already has these values; no write)");
	}
	xts_store_op_row_clear(&r);
	return buf;
}

static void
prov_got_user(void *arg, const struct xts_graph_result *res)
{
	struct prov *p = arg;
	struct eng_cycle *cy = p->cy;
	struct xts_store_link_row lr;
	struct xts_store_user_row ur;
	const char *sid;
	char desc[256];
	int ret;

	if (res->err != 0 || !json_is_object(res->body)) {
		prov_step(p, "import", "failure", res->gerr != NULL ? res->gerr->code : xts_strerror(res->err));
		cy->result = res->err != 0 ? res->err : XTS_EPARSE;
		eng_cycle_next(cy, step_end);
		return;
	}
	sid = json_string_value(json_object_get(res->body, "id"));
	if (!xts_is_object_id(sid))
		sid = NULL; /* not an id Graph writes: refused below, as an answer without one */
	if (p->want_manager) {
		/* "manager": {"id": ...} when it has one; absent when not */
		const char *mid = json_string_value(json_object_get(json_object_get(res->body, "manager"), "id"));
		json_t *md = mid != NULL ? json_pack("[{s:s}]", "id", mid) : json_array();

		if (md == NULL || json_object_set_new(res->body, "manager@delta", md) != 0) {
			cy->result = XTS_ENOMEM;
			eng_cycle_next(cy, step_end);
			return;
		}
		json_object_del(res->body, "manager");
	}
	prov_step(p, "import", "success", "Retrieved the user from the source tenant");
	cy->only_user = sid != NULL ? xts_strdup(sid) : NULL;
	xts_free(p->sid);
	p->sid = sid != NULL ? xts_strdup(sid) : NULL; /* (NULL: the reply says less) */
	ret = cy->only_user == NULL ? XTS_EPARSE : xts_store_begin(cy->st);
	if (ret == 0)
		ret = eng_plan_entry(cy, res->body);
	if (ret == 0) {
		/* The deletion threshold decides on the user's disable or delete
		 * as a cycle's does: released when the job is not held and it is
		 * within the threshold (or the guard is off), held otherwise. */
		struct xts_store_job sj;
		memset(&sj, 0, sizeof(sj));
		ret = xts_store_job_get(cy->st, cy->c.name, &sj);
		if (ret == 0)
			ret = guard(cy, &sj);
		xts_store_job_clear(&sj);
	}
	if (ret == 0) {
		/* On demand means now: a write of this user that failed earlier
		 * is tried again in this run, not after its escrow back-off. */
		long long due = 0;
		ret = xts_store_op_due_now(cy->st, cy->c.name, sid, &due);
		if (ret == 0 && due > 0)
			xts_info("job %s: user %s: %lld failed write(s) retried now, before their back-off ends",
				 cy->c.name, sid, due);
	}
	if (ret == 0)
		ret = xts_store_commit(cy->st);
	else if (xts_store_in_tx(cy->st))
		xts_store_rollback(cy->st);
	if (ret != 0) {
		cy->result = ret;
		eng_cycle_next(cy, step_end);
		return;
	}
	memset(&ur, 0, sizeof(ur));
	memset(&lr, 0, sizeof(lr));
	if (xts_store_user_get(cy->st, cy->c.name, sid, &ur) == 0) {
		p->in_scope = ur.u.in_scope != 0;
		prov_step(p, "scoping", ur.u.in_scope ? "success" : "skipped",
			  ur.u.in_scope ? "The user is in scope" :
			  ur.u.scope_reason != NULL ? ur.u.scope_reason : "out of scope");
	}
	if (xts_store_link_get(cy->st, cy->c.name, sid, &lr) == 0) {
		snprintf(desc, sizeof(desc), "Linked to target user %s",
			 lr.l.target_id != NULL ? lr.l.target_id : "?");
		prov_step(p, "matching", "success", desc);
	} else {
		prov_step(p, "matching", p->in_scope ? "success" : "skipped", p->in_scope ?
			  "No linked target user: the create matches by the link attribute and the "
			  "schema's matching attributes before it invites" : "Not evaluated: out of scope");
	}
	prov_step(p, "processing", "success", prov_action(cy, sid, p->in_scope, desc, sizeof(desc)));
	xts_store_user_row_clear(&ur);
	xts_store_link_row_clear(&lr);
	/* Held deletions stay held: on-demand provisioning does not bypass the
	 * guard (run above). */
	cy->phase = PH_APPLY;
	eng_apply_start(cy);
}

/* cy->select without "manager" (a relationship: users/delta selects it, a
 * user GET expands it), and whether it was there. */
static char *
select_without_manager(const char *sel, bool *had)
{
	struct xts_buf b = XTS_BUF_INIT;
	const char *p = sel;

	*had = false;
	while (*p != '\0') {
		const char *c = strchr(p, ',');
		size_t l = c != NULL ? (size_t)(c - p) : strlen(p);

		if (l == 7 && strncasecmp(p, "manager", 7) == 0)
			*had = true;
		else if (xts_buf_printf(&b, "%s%.*s", b.len > 0 ? "," : "", (int)l, p) != 0) {
			xts_buf_free(&b);
			return NULL;
		}
		p += l + (c != NULL);
	}
	return xts_buf_steal(&b);
}

/* After the job's group memberships are current: fetch the one user, its
 * manager through $expand (user-list-manager.md: "GET /users/{id}?$expand=
 * manager"), which prov_got_user turns into the manager@delta a delta entry
 * carries. */
static void
prov_fetch(struct eng_cycle *cy)
{
	struct prov *p = cy->done_arg;
	char *enc = eng_urlenc(p->user), *url = NULL, *sel = NULL;
	size_t len;
	int ret = 0;

	if (enc != NULL)
		sel = select_without_manager(cy->select, &p->want_manager);
	if (sel != NULL) {
		len = strlen(enc) + strlen(sel) + 80;
		url = xts_malloc(len);
		if (url != NULL)
			snprintf(url, len, "/v1.0/users/%s?$select=%s%s", enc, sel,
				 p->want_manager ? "&$expand=manager($select=id)" : "");
	}
	xts_free(sel);
	if (url == NULL)
		ret = XTS_ENOMEM;
	if (ret == 0)
		ret = xts_graph_request(cy->src->g, "GET", url, NULL, 0, prov_got_user, p, &p->req);
	xts_free(enc);
	xts_free(url);
	if (ret != 0) {
		prov_step(p, "import", "failure", xts_strerror(ret));
		cy->result = ret;
		step_end(cy);
	}
}

static void
prov_start(struct eng_cycle *cy)
{
	struct prov *p = cy->done_arg;
	struct xts_store_job sj;
	int ret;

	memset(&sj, 0, sizeof(sj));
	ret = build_select(cy);
	if (ret == 0 && cy->job->source_tid_guid == NULL)
		ret = XTS_EAGAIN; /* needs one completed connection test (a first cycle) */
	if (ret == 0)
		ret = xts_store_job_get(cy->st, cy->c.name, &sj);
	if (ret == 0)
		ret = xts_store_cycle_begin(cy->st, cy->c.name, XTS_CYCLE_INCREMENTAL, xts_wall_ms(), &cy->id);
	cy->started = xts_wall_ms();
	if (ret != 0) {
		xts_store_job_clear(&sj);
		prov_step(p, "import", "failure", ret == XTS_EAGAIN ?
			  "the job has not passed a connection test yet: run a cycle first" : xts_strerror(ret));
		cy->result = ret;
		step_end(cy);
		return;
	}
	/* Scoping needs the current group memberships, as Microsoft's on-demand
	 * provisioning evaluates them: read the assigned groups' changes first
	 * (from the stored links, which stay as they are: the next cycle reads
	 * the same changes again and re-evaluates their members). */
	drop_foreign_links(cy, &sj);
	cy->stored_groups_link = sj.groups_delta_link;
	sj.groups_delta_link = NULL;
	xts_store_job_clear(&sj);
	step_groups(cy); /* then step_users, which hands over to prov_fetch */
}

int
xts_engine_provision(struct xts_engine *e, const char *job, const char *user,
		     void (*cb)(void *arg, json_t *resp), void *arg)
{
	struct eng_job *j = eng_job_find(e, job);
	struct eng_cycle *cy;
	struct prov *p;
	int ret;

	if (j == NULL || !j->present)
		return XTS_ENOENT;
	if (j->running != NULL)
		return XTS_EAGAIN;
	p = xts_calloc(1, sizeof(*p));
	if (p == NULL)
		return XTS_ENOMEM;
	p->cb = cb;
	p->arg = arg;
	p->job = j;
	p->steps = json_array();
	p->user = xts_strdup(user);
	ret = p->steps == NULL || p->user == NULL ? XTS_ENOMEM : eng_cycle_new(e, j, &cy);
	if (ret != 0) {
		json_decref(p->steps);
		xts_free(p->user);
		xts_free(p);
		return ret;
	}
	p->cy = cy;
	p->st = cy->st;
	cy->provision = true;
	cy->done = prov_reply_done;
	cy->done_arg = p;
	j->running = cy;
	eng_cycle_next(cy, prov_start);
	return 0;
}
