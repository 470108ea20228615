/* SPDX-License-Identifier: MIT */
/* Shared internals of lib/engine*.c and lib/target_*.c: the engine, its
 * tenants and jobs, one cycle's state, and the target back end interface
 * (target_graph.c writes through $batch; target_null.c records for dry runs).
 * Not a public API: nothing outside lib/engine*.c and lib/target_*.c uses it. */
#ifndef XTS_ENGINE_INTERNAL_H
#define XTS_ENGINE_INTERNAL_H

#include <stdbool.h>

#include "config.h"
#include "engine.h"
#include "graph.h"
#include "mapping.h"
#include "policy_check.h"
#include "provlog.h"
#include "schema.h"
#include "store.h"

/* ---- target back ends ---------------------------------------------------- */

struct eng_target;
/* cb of a write: err 0 or XTS_E*; gerr may be NULL; user_id/step for creates. */
typedef void (*eng_write_cb)(void *arg, const struct xts_batch_result *r);

struct eng_target_ops {
	/* One write (method, url relative to /v1.0, body borrowed). */
	int (*write)(struct eng_target *t, const char *method, const char *url, json_t *body,
		     eng_write_cb cb, void *arg);
	int (*create_user)(struct eng_target *t, json_t *invitation, json_t *patch,
			   eng_write_cb cb, void *arg);
	/* One GET (url relative to /v1.0) in the writes' envelopes; NULL when
	 * the back end has none (a dry run's reads go to the tenant direct). */
	int (*read)(struct eng_target *t, const char *url, eng_write_cb cb, void *arg);
	void (*free)(struct eng_target *t);
	/* Send nothing more (cycle canceled): queued writes end with
	 * XTS_ECANCELED from the loop; NULL when writes never wait. */
	void (*stop)(struct eng_target *t);
	/* An object restored a moment ago (xts_batch_note_fresh); NULL when
	 * the back end sends nothing. */
	void (*note_fresh)(struct eng_target *t, const char *id);
};
struct eng_target {
	const struct eng_target_ops *ops;
};
/* Graph back end: writes through a $batch writer on g (borrowed); begin and
 * end(arg) around each group of its answers (xts_batch_on_answers). */
int eng_target_graph_new(struct xts_graph *g, void (*begin)(void *arg), void (*end)(void *arg),
			 void *arg, struct eng_target **out);
/* Null back end: records each write as a line via line(arg, text) and
 * answers success from the loop (new ids "00000000-dry0-...") . */
int eng_target_null_new(struct xts_evloop *ev, void (*line)(void *arg, const char *text),
			void *arg, struct eng_target **out);

/* ---- engine, tenants, jobs ----------------------------------------------- */

struct eng_tenant {
	char *name;
	char *tenant_id;
	char *client_id;
	struct xts_graph *g;
	int refs; /* the engine's table holds one; each cycle using it one */
};

struct eng_schema {
	struct xts_schema *s;
	char fp[65];
	int refs;
};

/* Copied settings of one job (a cycle keeps them across reloads). */
struct eng_jobcfg {
	char *name;
	char *link_attr;        /* target attribute holding the link */
	char *src_link_attr;    /* attribute marking users we created in the source tenant, or NULL */
	char *notify;           /* comma-separated, "" none */
	char **groups;
	size_t n_groups;
	char **users;
	size_t n_users;
	int scope, deprovision;
	long long deletion_threshold, q_min_ops, q_min_failures, q_max_failures;
	double q_ratio;
	long long escrow_base_ms;
};

struct eng_cycle;

struct eng_job {
	char *name;
	bool present;           /* in the current config */
	bool checked;           /* connection test passed since start / last failure */
	bool link_off;          /* that test found no link attribute to be had (see eng_cycle) */
	char *source_tid_guid;  /* from the policy check (GUID) */
	struct eng_schema *schema;
	struct eng_jobcfg *c;       /* settings of the current config */
	struct eng_tenant *src, *tgt;
	struct eng_cycle *running;
	struct xts_engine_counts counts;
	long long housekept_ms; /* last xts_store_housekeep (monotonic; 0: not in this process) */
};

struct xts_engine {
	struct xts_engine_opts o;
	struct eng_tenant **tenants;
	size_t n_tenants;
	struct eng_job **jobs;
	size_t n_jobs;
};

enum eng_phase {
	PH_START, PH_CONNECT, PH_GROUPS, PH_USERS, PH_APPLY, PH_DONE
};

struct eng_cycle {
	struct xts_engine *e;
	struct eng_job *job;
	struct eng_jobcfg c;
	struct eng_schema *sch;
	struct eng_tenant *src, *tgt;
	struct eng_target *target;
	struct xts_store *st;
	bool dry, provision;
	int kind;
	long long id;          /* cycle id */
	long long started;     /* wall ms */
	enum eng_phase phase;
	int result;
	bool canceled, aborted_read;
	/* full reads restarted after a 410 that had no stored token to drop
	 * (delta-query-overview.md: "restart with a full synchronization");
	 * bounded, so a source that keeps answering 410 fails the cycle */
	int users_restarts, groups_restarts;
	char *select;          /* users $select */
	char *users_link, *groups_link;
	char *stored_users_link, *stored_groups_link;
	json_t *changed;       /* object used as a set of member ids whose membership changed */
	bool untouched;        /* the job had no open op and no link when the users read began */
	bool fresh;            /* deciding a user that untouched job has no row for: no op, no link */
	bool insert_only;      /* eng_plan_user inserts the row, and stops at once if there is one */
	bool row_exists;       /* ... it stopped: the user has a row after all (nothing written) */
	bool src_changed;      /* deciding a user whose stored attributes the delta just changed */
	struct xts_store_batch batch; /* the read phase's store batch (xts_store_batch_begin) */
	long batch_users;      /* users decided in it */
	int batch_err;         /* its commit by the idle timer failed (XTS_E*), 0 = no */
	struct xts_evtimer *btimer; /* commits it after ENG_BATCH_IDLE_MS paused */
	struct eng_mev *mev;   /* member events read, not yet written (eng_groups_page) */
	size_t n_mev, cap_mev, mev_seq;
	/* assigned groups are read 50 at a time (the $filter limit of groups/delta):
	 * one delta link per chunk, stored together as {"groups": KEY, "links": [...]} */
	size_t gchunk;         /* chunk being read */
	json_t *gstored;       /* stored links of this group set (array), or NULL */
	json_t *gnew;          /* links of this cycle, one per chunk read */
	char *gkey;            /* the configured group ids, joined */
	struct xts_pager *pager;
	struct xts_policy_check *pc;
	struct xts_evtimer *timer;
	void (*step)(struct eng_cycle *cy); /* what the timer runs */
	/* apply */
	int apply_pass;        /* 1: all but manager ops, 2: manager ops */
	/* where this pass's refill walks go on: planned and due escrowed ops
	 * up to these ids are dispatched (a walk from 0 ends each pass) */
	long long walk_planned, walk_failed;
	long long inflight;
	bool stop_apply, in_refill;
	/* a group of the writer's answers is being handed over
	 * (eng_apply_answers_begin): its depth, whether it opened a store
	 * transaction, how many ops it recorded, and whether an op's end
	 * asked for a refill, run when the group ends */
	int answers;
	bool answers_tx, refill_due;
	long long answers_recorded;
	long long apply_commits; /* xts_store_commits when the apply phase began */
	void *aops;            /* engine_apply.c's ops in flight */
	long long ops, failed; /* this cycle's operations and failures */
	/* of which reference (manager) ops: Microsoft's escrow ratio and
	 * maximum leave them out, its absolute maximum counts them */
	long long ref_ops, ref_failed;
	bool auth_failed;
	char *auth_code;
	const char *fatal_why;   /* static: why auth_failed quarantines (NULL: credentials) */
	bool link_missing;     /* no target user carries the link attribute: it is not registered
				  yet (dry run), or link_off */
	bool link_off;         /* the target cannot have the link attribute: it is never written,
				  read or searched; links live in the store only */
	struct xts_engine_counts counts;
	/* provision on demand */
	char *only_user;       /* apply only this source id */
	json_t *prov_resp;
	void (*done)(void *arg, int result);
	void *done_arg;
};

/* engine_plan.c: decide one source user inside the open transaction.
 * attrs: merged attributes (borrowed); deleted: removed in the source.
 * Returns 0 or XTS_E* (a store error aborts the page). */
int eng_plan_user(struct eng_cycle *cy, const char *source_id, json_t *attrs, int deleted);
/* Merge one delta entry into the stored row and decide it. */
int eng_plan_entry(struct eng_cycle *cy, json_t *entry);
/* Re-evaluate a stored user (membership changed, sweep). */
int eng_plan_stored(struct eng_cycle *cy, const char *source_id);
/* The schema's reference (manager) mapping, or NULL. */
const struct xts_schema_mapping *eng_reference_mapping(const struct xts_schema *s);
/* The values a create writes: schema s applied to source attrs as for an
 * object being created, less what is never written as a plain attribute.
 * *desired and *redacted are new references. The plan does not compute
 * them (a create's op carries no values); its dispatch does, from the
 * stored source row. 0, XTS_EEXPR (err says why) or XTS_E*. */
int eng_create_values(const struct xts_schema *s, const json_t *attrs, json_t **desired,
		      json_t **redacted, struct xts_expr_error *err);
/* Start a provisioning-log line about one user of this cycle: the cycle,
 * job, action, status, both identities and tenants. false (and *pe left
 * alone) when nothing is to be logged: no log, or a dry run. */
bool eng_prov_begin(struct eng_cycle *cy, struct xts_prov_entry *pe, int action, int status,
		    const char *source_id, const json_t *attrs, const char *target_id);
/* Write a provisioning-log line for a decision without an operation; code
 * (errorInformation.errorCode) and reason may be NULL. */
void eng_log_simple(struct eng_cycle *cy, int action, int status, const char *source_id,
		    const json_t *attrs, const char *target_id, const char *code, const char *reason);

/* engine_apply.c */
void eng_apply_start(struct eng_cycle *cy);
void eng_apply_cancel(struct eng_cycle *cy);
/* The cycle is canceled: send nothing more; ops not sent are planned again
 * and the apply phase ends when the sent ones are back. */
void eng_apply_stop(struct eng_cycle *cy);
/* Around a group of the target writer's answers (arg: the cycle): what
 * they record shares one transaction, committed at the end, and their
 * provisioning-log lines are written after that commit. */
void eng_apply_answers_begin(void *arg);
void eng_apply_answers_end(void *arg);

/* A stored job state that is a quarantine: quarantined, or disabled after 28
 * days of it (the same quarantine with no retry left; resume, restart and
 * a successful --once --job retry clear both). */
static inline bool
eng_in_quarantine(int state)
{
	return state == XTS_JOB_QUARANTINED || state == XTS_JOB_DISABLED;
}

/* engine_cycle.c */
/* Users read per relaxed read-phase transaction (whole Graph pages). */
#define ENG_USERS_PER_TX 50000
/* A batch paused this long (waiting for a slow page) is committed: it holds
 * SQLite's write lock, which the mail flusher's connection waits for. */
#define ENG_BATCH_IDLE_MS 1000
/* Decide one users/delta page (value: its "value" array, borrowed) of the
 * read phase in the cycle's store batch, committed every ENG_USERS_PER_TX
 * users and at the last page. XTS_PAGE_CONTINUE or XTS_E*. */
int eng_users_page(struct eng_cycle *cy, json_t *value, int last);
/* One groups/delta page of member events (members@delta): buffered, written
 * sorted by key every ENG_USERS_PER_TX events (eng_groups_flush, also at the
 * end of each walk). XTS_PAGE_CONTINUE or XTS_E*. */
int eng_groups_page(struct eng_cycle *cy, const struct xts_member_event *ev, size_t n, int last);
int eng_groups_flush(struct eng_cycle *cy);
/* Forget the buffered events (the cycle is freed). */
void eng_groups_drop(struct eng_cycle *cy);
void eng_cycle_next(struct eng_cycle *cy, void (*step)(struct eng_cycle *cy));
void eng_cycle_finish(struct eng_cycle *cy, int result);
void eng_cycle_free(struct eng_cycle *cy);
/* Apply phase over: close the cycle (from the loop). */
void eng_cycle_applied(struct eng_cycle *cy);
int eng_cycle_new(struct xts_engine *e, struct eng_job *j, struct eng_cycle **out);
void eng_jobcfg_clear(struct eng_jobcfg *c);
/* Deep copy of src into dst (zeroed). 0 or XTS_ENOMEM. */
int eng_jobcfg_dup(struct eng_jobcfg *dst, const struct eng_jobcfg *src);

/* engine.c */
struct eng_job *eng_job_find(struct xts_engine *e, const char *name);
void eng_tenant_unref(struct eng_tenant *t);
void eng_schema_unref(struct eng_schema *s);
/* Dry-run plan line. */
void eng_plan_line(struct eng_cycle *cy, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* engine_match.c: percent-encode s for a URL query into a new string. */
char *eng_urlenc(const char *s);
/* OData string literal: quotes doubled. New string. */
char *eng_odata_quote(const char *s);

#endif
