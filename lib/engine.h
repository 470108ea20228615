/* SPDX-License-Identifier: MIT */
/* The sync engine: per job, an asynchronous cycle on the event loop (connect,
 * recover, groups, users delta, decide, sweep, deletion guard, apply,
 * quarantine) over the Graph client, the shadow store and the provisioning
 * log. It owns no event loop, no threads and sends no mail itself (it queues
 * mails in the store's outbox; the daemon flushes them). Cycle walkthrough and
 * crash-safety argument: docs/internals/engine.md. */
#ifndef XTS_ENGINE_H
#define XTS_ENGINE_H

#include <jansson.h>

#include "config.h"
#include "evloop.h"
#include "graph.h"

struct xts_store;
struct xts_provlog;
struct xts_engine;

enum {
	XTS_ENGINE_DRY_RUN = 1 << 0, /* reads only; writes go to the null target */
	/* A quarantined job's cycle runs now, not at its next retry; so does a
	 * job disabled after 28 days of quarantine (xtsyncd --once --job) */
	XTS_ENGINE_RETRY_NOW = 1 << 1,
	/* A dry run on a snapshot taken while the job's live cycle runs (a
	 * preview): the ops in flight there are that cycle's, not a crash's
	 * leftovers, so they are left alone (not resolved, not planned) */
	XTS_ENGINE_LIVE_CYCLE = 1 << 2,
};

/* What the engine needs from its host; everything borrowed and must outlive
 * the engine. */
struct xts_engine_opts {
	struct xts_evloop *ev;
	struct xts_graph_ctx *gctx;
	struct xts_store *store;       /* the daemon's store (dry runs never write it) */
	struct xts_provlog *provlog;   /* may be NULL (no provisioning log) */
	unsigned flags;                /* XTS_ENGINE_* */
	/* Dry run: each planned write as one line ("JOB: CREATE user ..."); may be NULL. */
	void (*plan_line)(void *arg, const char *job, const char *line);
	void *plan_arg;
	/* Called after each cycle that queued a mail (the host flushes the outbox). */
	void (*outbox_kick)(void *arg);
	void *outbox_arg;
	long long window;              /* ops in flight per cycle; 0 = 200 */
};

/* Counts of a running (progress) or the last cycle. */
struct xts_engine_counts {
	long long in_scope, created, updated, disabled, deleted, skipped, failed;
	long long pages, users; /* progress of the users round */
	long long ops_total, ops_done;
};

/* Create an engine. Returns 0 and *out, or XTS_ENOMEM. Never blocks. */
int xts_engine_new(const struct xts_engine_opts *o, struct xts_engine **out);
/* Cancel running cycles without callbacks and free. NULL is fine. */
void xts_engine_free(struct xts_engine *e);

/* Apply a configuration: read tenant secrets (blocks on small file reads),
 * build one Graph client per tenant, load each job's schema. cfg is borrowed
 * only during the call (what a cycle needs is copied). Running cycles keep
 * their old clients and schema. Returns 0 or XTS_E* (nothing changed then). */
int xts_engine_configure(struct xts_engine *e, const struct xts_config *cfg);

/* Start a cycle of job. done(arg, result) fires exactly once from the loop:
 * 0 ok, XTS_EHELD deletions held or job quarantined, XTS_ECANCELED,
 * XTS_EPARTIAL some operations failed (escrowed, retried later), or the
 * failure. Returns 0, XTS_ENOENT (no such job), XTS_EAGAIN (running). */
int xts_engine_cycle_start(struct xts_engine *e, const char *job,
			   void (*done)(void *arg, int result), void *arg);
/* Stop a running cycle after its in-flight operations; done still fires. */
void xts_engine_cancel(struct xts_engine *e, const char *job);
/* A canceled cycle whose writes still have no answer (the stop's grace is
 * over): end it now, done firing with XTS_ECANCELED before this returns.
 * The writes are abandoned as a crash would abandon them: their ops stay in
 * flight in the store and the next cycle resolves each one by matching,
 * never by sending it again blindly. */
void xts_engine_abandon(struct xts_engine *e, const char *job);
int xts_engine_counts(struct xts_engine *e, const char *job, struct xts_engine_counts *out);
/* 1 when the job has a cycle running, 0 when not, XTS_ENOENT. */
int xts_engine_running(struct xts_engine *e, const char *job);
/* 1 when the store holds the job quarantined (disabled after 28 days in
 * quarantine counts: `resume` clears both) / deletions-held, else 0. */
int xts_engine_quarantined(struct xts_engine *e, const char *job);
int xts_engine_deletions_held(struct xts_engine *e, const char *job);
/* 1 when quarantined (or disabled after 28 days of it): the reason code is
 * copied into reason and *next_retry is the next automatic attempt (wall
 * ms, 0 = none); 0 otherwise. */
int xts_engine_quarantine_info(struct xts_engine *e, const char *job, char *reason, size_t len,
			       long long *next_retry);

/* allow-deletions: release the staged set once and leave deletions-held.
 * *released gets the count. Blocks on a short store transaction. */
int xts_engine_allow_deletions(struct xts_engine *e, const char *job, long long *released);
/* restart: forget delta links and shadow state (links kept); clears quarantine. */
int xts_engine_restart(struct xts_engine *e, const char *job);
/* resume: clear quarantine (the next cycle runs and re-checks the connection). */
int xts_engine_resume(struct xts_engine *e, const char *job);
/* `pause` as stored (it survives a restart of the daemon): 1 paused, 0 not
 * (or no such job in the store yet), negative XTS_E* when the store cannot
 * be read. set_paused stores it (1) or clears it (0): 0, XTS_ENOENT (no
 * such job configured) or the store's error. */
int xts_engine_paused(struct xts_engine *e, const char *job);
int xts_engine_set_paused(struct xts_engine *e, const char *job, int paused);

/* provision on demand: one source user (object id or UPN) through the same
 * decision and apply; cb gets a NEW json object {"ok", "steps": [...],
 * "action", "modifiedProperties"} (stolen). Returns 0 or XTS_E* (cb not called). */
int xts_engine_provision(struct xts_engine *e, const char *job, const char *user,
			 void (*cb)(void *arg, json_t *resp), void *arg);

/* A config tenant's connection settings with its credential read: the
 * client secret, or the certificate (a plain file: it is public, so the
 * secret files' mode rule does not apply) and the private key (secret
 * rules). The texts are owned by *cred: free with xts_tenant_cred_free,
 * also after an error. The reader logs why a file cannot be read. */
struct xts_tenant_cred {
	char *secret, *cert, *key;
};
int xts_engine_tenant_conn(const struct xts_config_tenant *tc, struct xts_tenant_conn *conn,
			   struct xts_tenant_cred *cred);
void xts_tenant_cred_free(struct xts_tenant_cred *cred);

/* The link value written to target users: "<sourceTenantId>:<sourceObjectId>"
 * into buf. 0 or XTS_ERANGE. */
int xts_engine_link_value(const char *source_tid, const char *source_id, char *buf, size_t len);
/* The default link attribute of a target app: extension_<client id without
 * hyphens>_xtsyncSourceLink into buf. 0, XTS_EINVAL or XTS_ERANGE. */
int xts_engine_link_attr(const char *target_client_id, char *buf, size_t len);
/* The target attribute job jc keeps its link in: its link_attribute, or the
 * default derived from the target app (xts_engine_link_attr). Fills buf;
 * 0 or XTS_ERANGE. */
int xts_engine_job_link_attr(const struct xts_config_job *jc, char *buf, size_t len);
/* Is this source user one the engine syncs (userType Member, creationType not
 * Invitation, no #EXT# in the UPN, no xtsync link attribute)? 1 yes, 0 no with
 * *why set to a static reason. user borrowed. */
int xts_engine_is_internal_member(const json_t *user, const char **why);
/* The next quarantine retry (wall ms) of a quarantine that began at since:
 * the first of since +6 h, +12 h, +24 h, +48 h, ... (daily) after now. */
long long xts_engine_quarantine_next_retry(long long since, long long now);
/* Escrow back-off of a failed op: base * 2^attempts, capped at 24 h. */
long long xts_engine_escrow_delay_ms(long long base_ms, int attempts);
/* Microsoft's escrow rule: 1 when a cycle with ops operations and failed
 * failures, of which ref_ops and ref_failed were reference (manager) ops,
 * quarantines the job: once ops >= min_ops and min_failures non-reference
 * failures, more than max_failures of them or more than ratio of the
 * non-reference ops failed; or more than XTS_QUARANTINE_ALL_FAILURES
 * failures of any kind. */
#define XTS_QUARANTINE_ALL_FAILURES 60000
int xts_engine_should_quarantine(long long ops, long long failed, long long ref_ops, long long ref_failed,
				 long long min_ops, long long min_failures, double ratio, long long max_failures);

#endif
