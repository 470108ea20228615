/* SPDX-License-Identifier: MIT */
/* The shadow store: one SQLite file state_dir/xtsync.db (WAL) holding, per
 * job, the delta tokens, what was last seen in the source, the source-target
 * links with what was last exported, pending operations, assigned-group
 * membership, cycle history and the notification outbox. It makes decisions
 * durable; it decides nothing (that is the engine). Not thread-safe: one
 * struct xts_store per thread (open a second one for a worker thread).
 * Rules, tables and the crash-safety argument: docs/internals/store.md. */
#ifndef XTS_STORE_H
#define XTS_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct xts_store;

/* Conventions for every function below:
 * - st and job (the job's name from the config) must not be NULL.
 * - Returns 0 or a negative XTS_E* code: XTS_ENOENT when a looked-up row does
 *   not exist, XTS_ENOSPC (disk or size limit full), XTS_EIO (I/O error),
 *   XTS_ESTORE (corrupt or unusable database), XTS_EBUSY (locked by another
 *   process past busy_timeout), XTS_EINVAL (bad argument or state
 *   transition), XTS_ENOMEM. SQLite's own message is logged once, here.
 * - Times are wall-clock milliseconds since the epoch (xts_wall_ms()); 0
 *   means "none".
 * - json_t arguments are borrowed (serialised, never kept). json_t members of
 *   returned structs are new references owned by the struct; strings in
 *   returned structs are owned by the struct (xts_malloc). Free them with the
 *   matching xts_store_*_clear(). Rows handed to foreach callbacks are
 *   borrowed and valid only during the call.
 * - Every call blocks on local disk I/O only (short transactions; with
 *   synchronous=FULL a commit is an fsync). Outside xts_store_begin/commit
 *   each call is its own atomic transaction.
 * - foreach callbacks return 0 to continue; any other value stops the walk
 *   and is returned by foreach. Rows are fetched in pages with no statement
 *   left open while the callback runs, so a callback may call any store
 *   function (including writes) — rows it changes may or may not be seen
 *   later in the same walk (keyset order: rows after the current key are). */

/* ---- open / close / transactions ---------------------------------------- */

/* Open (creating if needed) state_dir/xtsync.db, set WAL, synchronous=FULL,
 * foreign_keys=ON, busy_timeout, and apply the embedded migrations
 * (schema/migrations/NNNN_*.sql) that user_version says are missing, each in
 * one transaction. A database newer than this binary knows is refused with
 * XTS_ESTORE and a log line naming both versions. A new file is created mode
 * 0600 (so are its -wal and -shm); an existing one keeps its mode. On success
 * *out owns the store (xts_store_close). state_dir must exist. */
int xts_store_open(const char *state_dir, struct xts_store **out);
/* Same with an explicit database file path (tests, tools). */
int xts_store_open_path(const char *db_path, struct xts_store **out);
/* Copy the committed state of state_dir/xtsync.db (its WAL included) into
 * dest_dir/xtsync.db, a new file of mode 0600, with SQLite's online backup in
 * one read transaction: a consistent snapshot even while another connection
 * or process writes or checkpoints the store, never showing uncommitted
 * data. The source is only read (opened read-only; like any reader it may
 * create an empty -wal and -shm beside it). dest_dir must exist and hold no
 * xtsync.db (XTS_EEXIST). Returns 0; XTS_ENOENT when state_dir has no store
 * yet (nothing created); XTS_EBUSY when the store stayed locked through a
 * few retries (about 3 s); another XTS_E* otherwise (logged; a partial
 * destination is removed). The copy is a scratch file (not fsynced) in the
 * source's format; open it with xts_store_open. Blocks on disk I/O for the
 * size of the store. */
int xts_store_snapshot(const char *state_dir, const char *dest_dir);
/* Close; rolls back an open transaction. NULL is accepted. */
void xts_store_close(struct xts_store *st);
/* user_version of the open database (== xts_store_schema_version() after open). */
int xts_store_user_version(struct xts_store *st);
/* Highest migration this binary carries. */
int xts_store_schema_version(void);

/* One explicit write transaction (BEGIN IMMEDIATE) so that a page of
 * decisions becomes durable at once at commit. Not nestable: begin inside an
 * open transaction returns XTS_EINVAL. After any failed call inside the
 * transaction the caller should roll back. */
int xts_store_begin(struct xts_store *st);
/* The same, but its commit does not wait for the disk (WAL with
 * synchronous=NORMAL for this one transaction): it is atomic and survives
 * the process being killed (the frames are in the OS's cache), but a power
 * loss or OS crash may roll back it and the relaxed commits after it - as a
 * whole suffix, never part of one and never an earlier fsynced commit. The
 * next ordinary commit (any write in or outside xts_store_begin) fsyncs the
 * WAL and so makes every earlier commit durable too. Only for decisions that
 * nothing outside the store acts on before such a commit, and whose loss
 * costs only redoing them (the engine's read phase: docs/internals/store.md).
 * synchronous=FULL is restored when the transaction ends; every later
 * statement fails rather than run without it. */
int xts_store_begin_relaxed(struct xts_store *st);
/* Make every earlier relaxed commit durable: when there was one since the
 * last xts_store_sync, run a small fsynced write transaction (it rewrites
 * user_version with its own value); otherwise do nothing. Not inside a
 * transaction (XTS_EINVAL). Blocks on one fsync at most. */
int xts_store_sync(struct xts_store *st);
int xts_store_commit(struct xts_store *st);
int xts_store_rollback(struct xts_store *st);
/* Write transactions committed since open, explicit or a statement's own
 * (SQLite's commit hook): each is a WAL append and, unless relaxed, an
 * fsync. For the engine's log and the tests. */
long long xts_store_commits(const struct xts_store *st);
/* 1 while an explicit transaction is open (a paused batch does not count). */
int xts_store_in_tx(const struct xts_store *st);
/* A savepoint inside the open transaction: the statements after it are
 * undone alone by xts_store_savepoint_end(st, 0), kept (until the
 * transaction commits) by xts_store_savepoint_end(st, 1). Outside a
 * transaction XTS_EINVAL. 0 or XTS_E*. */
int xts_store_savepoint(struct xts_store *st);
int xts_store_savepoint_end(struct xts_store *st, int keep);

/* A relaxed transaction (as xts_store_begin_relaxed) that spans several
 * turns of the event loop: the read phase decides page after page in one
 * transaction, so that a commit writes each dirtied index page once, not once
 * per Graph page. Between the owner's turns the batch is paused; the first
 * store call by anyone else (any statement, begin, sync, rollback) commits
 * it first, so nobody else ever runs inside it and nothing they write is
 * relaxed. The owner keeps a handle (zeroed at first) for as long as its
 * batch may be open: the store points at it while it is.
 * begin: resume the handle's batch if still open, else begin a new one
 *   (after committing another owner's paused batch); XTS_ESTORE if the
 *   handle's batch was lost (its commit on someone else's call failed: its
 *   decisions are gone).
 * pause: leave it open for the next turn.
 * commit: commit it if still open (0 also when someone else's call
 *   committed it; XTS_ESTORE if that commit failed).
 * abort: roll it back if still open; forget a loss. */
struct xts_store_batch {
	int open; /* the store's open batch is this one */
	int lost; /* its commit on someone else's call failed */
};
int xts_store_batch_begin(struct xts_store *st, struct xts_store_batch *b);
void xts_store_batch_pause(struct xts_store *st, struct xts_store_batch *b);
int xts_store_batch_commit(struct xts_store *st, struct xts_store_batch *b);
void xts_store_batch_abort(struct xts_store *st, struct xts_store_batch *b);

/* PRAGMA integrity_check: 0 when "ok", XTS_ESTORE otherwise (logged). */
int xts_store_check(struct xts_store *st);

/* ---- jobs --------------------------------------------------------------- */

enum xts_job_state {
	XTS_JOB_IDLE = 0,
	XTS_JOB_QUARANTINED = 1,
	XTS_JOB_DELETIONS_HELD = 2,
	XTS_JOB_DISABLED = 3,
};
/* "idle", "quarantined", "deletions-held", "disabled"; parse returns -1 if unknown. */
const char *xts_job_state_name(int state);
int xts_job_state_parse(const char *s);

struct xts_store_job {
	char *name;
	char *delta_link;         /* users delta link, NULL = none (initial cycle next) */
	char *groups_delta_link;  /* groups delta link, NULL = none */
	char *schema_fingerprint; /* NULL = none recorded */
	int state;                /* enum xts_job_state */
	char *state_reason;       /* reason code (e.g. a Graph error code), NULL = none */
	long long quarantine_since;
	long long next_retry;     /* when a quarantined job is tried again */
	int retry_step;           /* back-off step of the quarantine */
	long long cycle_counter;  /* id of the last cycle begun (0 = never ran) */
	long long last_cycle_start, last_cycle_end;
	char *last_cycle_result;  /* free text set by cycle_end, NULL = none */
	json_t *counts;           /* counts of the last ended cycle (object), NULL = none */
	int paused;               /* 1 after `xtsyncctl pause`, until resume */
};
void xts_store_job_clear(struct xts_store_job *j);

/* Create the job row if it does not exist (idle, no tokens). */
int xts_store_job_ensure(struct xts_store *st, const char *job);
/* Fill *out (caller clears it). XTS_ENOENT if no such job. */
int xts_store_job_get(struct xts_store *st, const char *job, struct xts_store_job *out);
/* Delete the job and everything stored under it (links too). */
int xts_store_job_delete(struct xts_store *st, const char *job);
/* Calls cb for every job (borrowed row). */
int xts_store_job_foreach(struct xts_store *st,
    int (*cb)(void *arg, const struct xts_store_job *j), void *arg);
/* Set (or with NULL clear) the users / groups delta link. */
int xts_store_job_set_delta(struct xts_store *st, const char *job, const char *users_link);
int xts_store_job_set_groups_delta(struct xts_store *st, const char *job, const char *groups_link);
int xts_store_job_set_fingerprint(struct xts_store *st, const char *job, const char *fingerprint);
/* Set state, reason (NULL clears), quarantine_since, next_retry, retry_step. */
int xts_store_job_set_state(struct xts_store *st, const char *job, int state, const char *reason,
    long long quarantine_since, long long next_retry, int retry_step);

/* Store `xtsyncctl pause` (1) or `resume` (0); creates the job row if
 * needed. */
int xts_store_job_set_paused(struct xts_store *st, const char *job, int paused);

/* `xtsyncctl restart`: forget the job's delta links, schema fingerprint,
 * source users, group membership, and pending operations that are not
 * in-flight; set the state to idle and clear quarantine. KEEPS: paused, the links
 * (source id <-> target id, origin, target state) so the next initial cycle
 * matches existing target users instead of creating duplicates — but clears
 * each link's last-exported values (NULL), so every attribute is compared
 * afresh; in-flight operations (a create whose invitation may have been
 * sent must still be resolved by matching); cycle history, the cycle
 * counter (cycle ids never repeat) and the outbox. One transaction. */
int xts_store_reset_job(struct xts_store *st, const char *job);
/* The same, and the links and in-flight operations too: the job's source or
 * target tenant changed, so its source ids and target ids name nothing there.
 * The next initial cycle matches the new target's existing users. One
 * transaction. */
int xts_store_forget_job(struct xts_store *st, const char *job);

/* ---- cycles ------------------------------------------------------------- */

enum xts_cycle_kind { XTS_CYCLE_INITIAL = 0, XTS_CYCLE_INCREMENTAL = 1 };

/* Increment the job's cycle counter, record a new cycle row (started = now)
 * and the job's last_cycle_start. *cycle_id gets the new id (per job,
 * 1, 2, ...). The job row is created if missing. */
int xts_store_cycle_begin(struct xts_store *st, const char *job, int kind, long long now,
    long long *cycle_id);
/* Close a cycle: ended = now, result text (e.g. "success", "failed",
 * "held"), counts object (borrowed, may be NULL); copies them to the job row. */
int xts_store_cycle_end(struct xts_store *st, const char *job, long long cycle_id, long long now,
    const char *result, const json_t *counts);

struct xts_store_cycle {
	long long id;
	int kind;            /* enum xts_cycle_kind */
	long long started, ended;
	const char *result;  /* NULL while running */
	json_t *counts;      /* borrowed; NULL when none */
};
/* The job's cycles, newest first, at most limit (0 = all). */
int xts_store_cycle_foreach(struct xts_store *st, const char *job, int limit,
    int (*cb)(void *arg, const struct xts_store_cycle *c), void *arg);

/* ---- source users (last seen in the source) ----------------------------- */

struct xts_store_user {
	const char *source_id;
	json_t *attrs;            /* object of the selected attributes only, may be NULL */
	int in_scope;             /* scope verdict: 1 in scope, 0 out */
	const char *scope_reason; /* why (free text / reason code), may be NULL */
	int is_member;            /* 1: internal member; 0: a B2B guest in the source */
	const char *manager_id;   /* source object id of the manager, may be NULL */
	int deleted;              /* 1: deleted in the source (delta @removed) */
	long long last_seen_cycle;
};
/* Owned copy returned by xts_store_user_get; strings and attrs owned. */
struct xts_store_user_row {
	struct xts_store_user u;
	long long key; /* the store's row key (walk position); not for callers */
};
void xts_store_user_row_clear(struct xts_store_user_row *r);

/* Insert or replace the row (job, u->source_id). The job must exist. */
int xts_store_user_put(struct xts_store *st, const char *job, const struct xts_store_user *u);
/* Insert the row (job, u->source_id) if there is none: 0, or XTS_EEXIST (and
 * nothing written) when the row exists. The job must exist. */
int xts_store_user_insert(struct xts_store *st, const char *job, const struct xts_store_user *u);
int xts_store_user_get(struct xts_store *st, const char *job, const char *source_id,
    struct xts_store_user_row *out);
/* The user's displayName and userPrincipalName, those it has, as a new
 * object in *out: a row's attrs without the rest. 0, XTS_ENOENT (no row, or
 * attrs not JSON) or XTS_E*. */
int xts_store_user_identity(struct xts_store *st, const char *job, const char *source_id,
    json_t **out);
/* Flag the user deleted in the source (keeps the row, for deprovisioning). */
int xts_store_user_mark_deleted(struct xts_store *st, const char *job, const char *source_id,
    long long cycle_id);
/* Forget the row entirely (XTS_ENOENT if absent). */
int xts_store_user_remove(struct xts_store *st, const char *job, const char *source_id);
/* Walk users ordered by source id. seen_before_cycle > 0 limits the walk to
 * rows with last_seen_cycle < seen_before_cycle (after an initial cycle:
 * users the full read did not return), in the order they were first stored
 * (one pass over the table: it reads the rows it skips, no index is kept for
 * it); 0 walks all. */
int xts_store_user_foreach(struct xts_store *st, const char *job, long long seen_before_cycle,
    int (*cb)(void *arg, const struct xts_store_user *u), void *arg);
/* Number of user rows of the job (in_scope_only: only in-scope, non-deleted). */
int xts_store_user_count(struct xts_store *st, const char *job, int in_scope_only, long long *n);

/* ---- links (source user <-> target user) -------------------------------- */

enum xts_target_state {
	XTS_TARGET_ACTIVE = 0,
	XTS_TARGET_DISABLED = 1,
	XTS_TARGET_SOFT_DELETED = 2,
};
enum xts_link_origin {
	XTS_LINK_CREATED = 0, /* we invited the user */
	XTS_LINK_MATCHED = 1, /* found by the matching attribute */
	XTS_LINK_ADOPTED = 2, /* an in-flight create resolved by matching after a restart */
};

struct xts_store_link {
	const char *source_id;
	const char *target_id;
	json_t *exported;       /* last successfully written values (object), NULL = unknown */
	int target_state;       /* enum xts_target_state */
	long long deleted_at;   /* when soft-deleted, 0 otherwise */
	int origin;             /* enum xts_link_origin */
	long long created, updated;
};
struct xts_store_link_row {
	struct xts_store_link l;
};
void xts_store_link_row_clear(struct xts_store_link_row *r);

/* Insert or replace the link of (job, l->source_id); created/updated are
 * set by the store (created kept on replace). A target id already linked
 * to another source id of the same job returns XTS_EEXIST. */
int xts_store_link_put(struct xts_store *st, const char *job, const struct xts_store_link *l);
int xts_store_link_get(struct xts_store *st, const char *job, const char *source_id,
    struct xts_store_link_row *out);
int xts_store_link_get_by_target(struct xts_store *st, const char *job, const char *target_id,
    struct xts_store_link_row *out);
/* The target id linked to source_id, a new string in *target_id (xts_free):
 * a link's row without its exported values. 0, XTS_ENOENT or XTS_E*. */
int xts_store_link_target(struct xts_store *st, const char *job, const char *source_id,
    char **target_id);
/* Record what was successfully written (object, borrowed; NULL = unknown). */
int xts_store_link_set_exported(struct xts_store *st, const char *job, const char *source_id,
    const json_t *exported);
int xts_store_link_set_target_state(struct xts_store *st, const char *job, const char *source_id,
    int target_state, long long deleted_at);
/* Both of the above in one statement: exported when set_exported (NULL
 * clears it), the target state and deleted_at when target_state >= 0.
 * XTS_ENOENT when there is no such link. */
int xts_store_link_record(struct xts_store *st, const char *job, const char *source_id,
    bool set_exported, const json_t *exported, int target_state, long long deleted_at);
int xts_store_link_remove(struct xts_store *st, const char *job, const char *source_id);
int xts_store_link_foreach(struct xts_store *st, const char *job,
    int (*cb)(void *arg, const struct xts_store_link *l), void *arg);

/* ---- pending operations ------------------------------------------------- */

enum xts_op_kind {
	XTS_OP_CREATE = 0,
	XTS_OP_UPDATE = 1,
	XTS_OP_DISABLE = 2,
	XTS_OP_DELETE = 3,
	XTS_OP_RESTORE = 4,
	XTS_OP_MANAGER = 5,
};
enum xts_op_state {
	XTS_OP_PLANNED = 0,
	XTS_OP_INFLIGHT = 1,
	XTS_OP_DONE = 2,
	XTS_OP_FAILED = 3, /* in escrow: retried at next_attempt */
	XTS_OP_STAGED = 4, /* held by the deletion threshold */
};
/* "create", "update", ...; "planned", "in-flight", "done", "failed", "staged".
 * parse returns -1 if unknown. */
const char *xts_op_kind_name(int kind);
int xts_op_kind_parse(const char *s);
const char *xts_op_state_name(int state);
int xts_op_state_parse(const char *s);

struct xts_store_op {
	long long id;
	const char *source_id;
	int kind;               /* enum xts_op_kind */
	json_t *payload;        /* object or NULL */
	int state;              /* enum xts_op_state */
	int attempts;           /* times it went in-flight */
	long long next_attempt; /* failed ops: when to retry */
	int last_error;         /* XTS_E* of the last failure, 0 if none */
	const char *last_error_msg; /* e.g. Graph's error code and message, may be NULL */
	long long cycle_id;
	long long created, updated;
};
struct xts_store_op_row {
	struct xts_store_op o;
};
void xts_store_op_row_clear(struct xts_store_op_row *r);

/* Record a new operation in state PLANNED or STAGED (anything else is
 * XTS_EINVAL). payload is borrowed. *op_id (may be NULL) gets its id. Record
 * a create BEFORE sending its invitation, then op_start it, so that after a
 * crash it is found in-flight and resolved by matching, never re-sent blindly. */
int xts_store_op_add(struct xts_store *st, const char *job, const char *source_id, int kind,
    const json_t *payload, int state, long long cycle_id, long long *op_id);
/* The same with the payload as JSON text the caller wrote (NULL: none). */
int xts_store_op_add_text(struct xts_store *st, const char *job, const char *source_id, int kind,
    const char *payload, int state, long long cycle_id, long long *op_id);
int xts_store_op_get(struct xts_store *st, long long op_id, struct xts_store_op_row *out);
/* planned|failed -> in-flight, attempts + 1. Other states: XTS_EINVAL. */
int xts_store_op_start(struct xts_store *st, long long op_id);
/* in-flight -> done. Other states: XTS_EINVAL. */
int xts_store_op_done(struct xts_store *st, long long op_id);
/* An in-flight create -> a planned manager op of the same user with payload
 * (attempts, next attempt and last error cleared), in place of done: the
 * create's manager reference, written once the user exists. Other states or
 * kinds: XTS_EINVAL. */
int xts_store_op_to_manager(struct xts_store *st, long long op_id, const json_t *payload);
/* in-flight -> failed with err (XTS_E*), msg (may be NULL) and the time of
 * the next attempt. Other states: XTS_EINVAL. */
int xts_store_op_fail(struct xts_store *st, long long op_id, int err, const char *msg,
    long long next_attempt);
/* in-flight -> planned (crash recovery decided to send it again, e.g. a
 * create that matching proved was never applied). Other states: XTS_EINVAL. */
int xts_store_op_requeue(struct xts_store *st, long long op_id);
/* Any state but done -> done without executing (superseded by a newer
 * decision, or resolved by matching). */
int xts_store_op_cancel(struct xts_store *st, long long op_id);
/* Replace the payload (planned, staged or failed ops only). */
int xts_store_op_set_payload(struct xts_store *st, long long op_id, const json_t *payload);
int xts_store_op_set_payload_text(struct xts_store *st, long long op_id, const char *payload);
/* Walk the job's ops in state `state` in id order. due_before > 0 limits the
 * walk to ops with next_attempt <= due_before (escrow that is due). */
int xts_store_op_foreach(struct xts_store *st, const char *job, int state, long long due_before,
    int (*cb)(void *arg, const struct xts_store_op *o), void *arg);
/* The same walk restricted to reference ops (refs != 0: XTS_OP_MANAGER only)
 * or to every other kind (refs == 0), filtered by SQLite so that skipped
 * rows are never read or decoded, and to ids above after (0: all). max > 0
 * is a hint that the caller stops after max rows (it may still be called
 * for up to max rows; a walk of fewer than max rows is complete). The apply
 * window refills with it. */
int xts_store_op_foreach_refs(struct xts_store *st, const char *job, int state, long long due_before,
    long long after, int refs, int max, int (*cb)(void *arg, const struct xts_store_op *o), void *arg);
/* The newest op of (job, source_id) that is not done, optionally of one kind
 * (kind < 0: any). XTS_ENOENT if none. Lets the engine avoid queuing a
 * second op for a user who already has one. */
int xts_store_op_find_open(struct xts_store *st, const char *job, const char *source_id, int kind,
    struct xts_store_op_row *out);
/* Count the job's ops in a state. */
int xts_store_op_count(struct xts_store *st, const char *job, int state, long long *n);
/* *yes = 1 when the job has no open operation (any state but done) and no
 * link: then a user without a source_user row has neither (the read phase's
 * fast path for new users, engine_plan.c). */
int xts_store_job_untouched(struct xts_store *st, const char *job, int *yes);
/* `allow-deletions`: every staged op of the job -> planned, in one
 * statement; *released (may be NULL) gets how many. A second call releases
 * nothing (0) until new deletions are staged. */
int xts_store_op_release_staged(struct xts_store *st, const char *job, long long *released);
/* `provision`: the failed ops of one user waiting out their escrow back-off
 * become due now (their attempts count is kept); *n (may be NULL) gets how
 * many. source_id NULL: every failed op of the job (a quarantine retry). */
int xts_store_op_due_now(struct xts_store *st, const char *job, const char *source_id, long long *n);
/* Deferred manager references (failed with XTS_ENOENT: the manager had no
 * target user) whose manager is linked now become due now; *n (may be NULL)
 * gets how many. */
int xts_store_op_refs_due(struct xts_store *st, const char *job, long long *n);
/* Delete done ops updated before `before` (housekeeping). */
int xts_store_op_purge_done(struct xts_store *st, const char *job, long long before);
/* What a long-running daemon must not keep for ever: a job's done ops
 * older than XTS_STORE_KEEP_DONE_MS, its cycle rows but the last
 * XTS_STORE_KEEP_CYCLES; and (any job's) mails sent more than
 * XTS_STORE_KEEP_SENT_MS ago (an event's key must outlive the event, or a
 * quarantine still going on would be mailed again: 35 days, past the 28-day
 * quarantine). Done ops go in transactions of XTS_STORE_PURGE_CHUNK rows, at
 * most XTS_STORE_PURGE_CHUNKS of them a call (a store upgraded with millions
 * would block the event loop past the watchdog): *more (may be NULL) is set
 * when some are left for the next call. *deleted (may be NULL) gets the rows
 * deleted. */
#define XTS_STORE_KEEP_DONE_MS (24LL * 3600 * 1000)
#define XTS_STORE_KEEP_CYCLES 1000
#define XTS_STORE_KEEP_SENT_MS (35LL * 24 * 3600 * 1000)
#define XTS_STORE_PURGE_CHUNK 5000
#define XTS_STORE_PURGE_CHUNKS 10
int xts_store_housekeep(struct xts_store *st, const char *job, long long now, long long *deleted, int *more);

/* ---- membership of assigned groups -------------------------------------- */

int xts_store_member_add(struct xts_store *st, const char *job, const char *group_id,
    const char *member_id);
/* XTS_ENOENT when the pair was not recorded. */
int xts_store_member_remove(struct xts_store *st, const char *job, const char *group_id,
    const char *member_id);
/* Forget every member of a group (group removed from assignment, or a full re-read). */
int xts_store_member_clear_group(struct xts_store *st, const char *job, const char *group_id);
/* *yes = 1 when member_id is recorded in any of the job's groups, else 0. */
int xts_store_member_any(struct xts_store *st, const char *job, const char *member_id, int *yes);
/* Walk the members of one group (group_id != NULL) or of all groups, in
 * member id order (then group id); either way one pass over the job's
 * members (the table is keyed member first). */
int xts_store_member_foreach(struct xts_store *st, const char *job, const char *group_id,
    int (*cb)(void *arg, const char *group_id, const char *member_id), void *arg);

/* ---- notification outbox ------------------------------------------------ */

struct xts_store_mail {
	long long id;
	const char *job;
	const char *event_key;  /* unique per job: one mail per event */
	const char *recipients; /* comma-separated */
	const char *subject;
	const char *body;
	long long created, sent_at, next_attempt;
	int attempts;
	const char *last_error; /* may be NULL */
};

/* Queue one mail for (job, event_key). If that event was already queued
 * (sent or not) nothing changes and XTS_EEXIST is returned: callers may
 * treat XTS_EEXIST as success. *id may be NULL. next_attempt = now. */
int xts_store_outbox_add(struct xts_store *st, const char *job, const char *event_key,
    const char *recipients, const char *subject, const char *body, long long now,
    long long *id);
/* Walk unsent mails (any job) with next_attempt <= now, oldest first. */
int xts_store_outbox_foreach_due(struct xts_store *st, long long now,
    int (*cb)(void *arg, const struct xts_store_mail *m), void *arg);
/* *when: the earliest next_attempt below `before` of an unsent mail (at
 * least 1: a mail due at once gives 1), or 0 when there is none. */
int xts_store_outbox_next(struct xts_store *st, long long before, long long *when);
int xts_store_outbox_mark_sent(struct xts_store *st, long long id, long long now);
/* attempts + 1, next_attempt and last_error (may be NULL) recorded. */
int xts_store_outbox_mark_failed(struct xts_store *st, long long id, long long next_attempt,
    const char *error);
struct xts_store_mail_row {
	struct xts_store_mail m;
};
void xts_store_mail_row_clear(struct xts_store_mail_row *r);
/* Fill *out with an owned copy. XTS_ENOENT if no such mail. */
int xts_store_outbox_get(struct xts_store *st, long long id, struct xts_store_mail_row *out);

#endif
