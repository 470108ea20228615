/* SPDX-License-Identifier: MIT */
/* The daemon's job table: per-job runtime state (idle, running, paused,
 * quarantined, deletions-held), last/next cycle times, counts, and the uv
 * timers that schedule cycles every `interval`. Cycles themselves are run by
 * the engine through struct xts_job_runner; this file never syncs anything. */
#ifndef XTS_JOBS_H
#define XTS_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"

/* Counts shown by `xtsyncctl status` (from the last cycle, or the running one). */
struct xts_job_counts {
	long long in_scope, created, updated, deleted, disabled, failed, skipped;
	long long progress_done, progress_total; /* running cycle; 0/0 when unknown */
};

/* A job's last ended cycle as the store keeps it (xts_job_runner.last_cycle). */
struct xts_job_last {
	long long start_wall, end_wall; /* ms since epoch; start 0 = not known */
	int result;                     /* as done() reported it: 0, XTS_EHELD, XTS_EPARTIAL,
					 * XTS_ECANCELED, or XTS_EINTERNAL for any failure
					 * (the store keeps no error code) */
};

/* Flags for xts_job_runner.configure. */
enum {
	XTS_RUNNER_DRY_RUN = 1 << 0,
	/* --once --job: the named job runs even when quarantined (its retry,
	 * now) or disabled after 28 days of quarantine */
	XTS_RUNNER_RETRY_NOW = 1 << 1,
	/* --once: the mail queued by the cycle goes out before the exit, also
	 * when it takes a while (a daemon stopping does not wait for it) */
	XTS_RUNNER_ONCE = 1 << 2,
};

/* What the engine reports back when a cycle ends (result argument of done):
 * 0 success; XTS_EHELD deletions held by the threshold; XTS_ECANCELED
 * stopped by shutdown; XTS_EPARTIAL completed, but some operations failed
 * (retried on later cycles); any other negative XTS_E* a failed cycle. The engine
 * tells quarantine apart with quarantined() below. */

/* The engine's entry points. Every callback runs on the daemon's loop thread
 * and must not block. Any member may be NULL (the feature is "not available").
 * ctx is the engine's own state, passed back to every call. */
struct xts_job_runner {
	void *ctx;
	/* The (new) configuration; borrowed until the next configure call or
	 * shutdown. flags: XTS_RUNNER_*. Called before the first cycle and after
	 * every successful reload. Returns 0 or XTS_E*; a failure has been
	 * logged by the runner, once, with its cause (the caller logs only the
	 * outcome: start-up failed, reload refused). */
	int (*configure)(void *ctx, const struct xts_config *cfg, unsigned flags);
	/* Start one cycle of `job`. Returns 0 when started: done(arg, result) is
	 * then called exactly once, later, from the loop (never from inside
	 * start_cycle). Returns a negative XTS_E* when it could not start (done is
	 * not called). */
	int (*start_cycle)(void *ctx, const char *job, void (*done)(void *arg, int result), void *arg);
	/* Ask a running cycle to stop after its in-flight batch and persist; its
	 * done callback still comes (with XTS_ECANCELED or its real result). */
	void (*cancel)(void *ctx, const char *job);
	/* Optional: a canceled cycle still waits for answers after the stop's
	 * grace: end it now without them (its done callback comes before this
	 * returns; what was on the wire is resolved by the next cycle). */
	void (*abandon)(void *ctx, const char *job);
	/* Counts of the running or last cycle. Returns 0, or XTS_ENOENT. */
	int (*counts)(void *ctx, const char *job, struct xts_job_counts *out);
	/* Optional: the job's last ended cycle as the store has it, asked when
	 * the job is new to this process (start-up, added by a reload), so
	 * that status shows it before this process ends a cycle of the job.
	 * From then on counts() answers with that cycle's counts until the
	 * engine has counts of its own. Returns 0, XTS_ENOENT (no cycle of the
	 * job ever ended) or the store's XTS_E*. */
	int (*last_cycle)(void *ctx, const char *job, struct xts_job_last *out);
	/* 1 when the engine holds the job quarantined / its deletions held. */
	int (*quarantined)(void *ctx, const char *job);
	int (*deletions_held)(void *ctx, const char *job);
	/* Optional: 1 when quarantined, with the reason code copied into reason
	 * and the next automatic retry (wall ms, 0 = none); else 0. */
	int (*quarantine_info)(void *ctx, const char *job, char *reason, size_t len, long long *next_retry);
	/* Optional: the stored pause. paused: 1 paused, 0 not, negative XTS_E*
	 * when unknown. set_paused: store pause (1) or resume (0); 0 or XTS_E*
	 * (the command is then refused, so what status says is what a restart
	 * of the daemon will do). */
	int (*paused)(void *ctx, const char *job);
	int (*set_paused)(void *ctx, const char *job, int paused);
	/* Control commands the engine implements (restart, provision, preview,
	 * allow-deletions). req is the request object (borrowed). Returns 0 and
	 * later calls reply(arg, resp) exactly once with a NEW reference to a
	 * response object ({"ok": true, ...} or {"ok": false, "error": "..."})
	 * — reply steals it; or returns a negative XTS_E* (reply not called). */
	int (*command)(void *ctx, const char *cmd, json_t *req,
		       void (*reply)(void *arg, json_t *resp), void *arg);
	/* Release everything; no callback may come after it returns. */
	void (*destroy)(void *ctx);
};

/* The engine team provides this in daemon/runner_engine.c with the prototype
 * in daemon/runner_engine.h:
 *     int xts_runner_engine_init(uv_loop_t *loop, struct xts_job_runner *out);
 * xtsyncd uses it when that header exists; otherwise every cycle is reported
 * as "engine not available" (never a pretend result). */

enum xts_jobrt_state {
	XTS_JOBRT_IDLE = 0,
	XTS_JOBRT_RUNNING,
	XTS_JOBRT_PAUSED,
	XTS_JOBRT_QUARANTINED,
	XTS_JOBRT_DELETIONS_HELD,
};

struct xts_jobs; /* opaque table */

/* Create the table on loop with runner (copied; runner->ctx stays owned by
 * the caller until xts_jobs_free, which calls runner->destroy). */
int xts_jobs_new(uv_loop_t *loop, const struct xts_job_runner *runner, struct xts_jobs **out);

/* Apply a configuration (initial or reload): jobs are added, kept (their
 * state and timers survive) or removed (a running one is cancelled first).
 * cfg is borrowed and must outlive the table's use of it (until the next
 * apply or free). Calls runner->configure. Returns 0 or XTS_E*. */
int xts_jobs_apply(struct xts_jobs *t, const struct xts_config *cfg, unsigned runner_flags);

/* Operator commands. Return 0, XTS_ENOENT (no such job), XTS_EAGAIN
 * (already running), XTS_EINVAL (not in a state where it applies) or the
 * runner's error (e.g. XTS_ENOENT/"engine not available" as XTS_EINTERNAL).
 * pause/resume store the change first; one the store does not take (busy
 * past its timeout, full, failing) returns its XTS_EBUSY, XTS_ENOSPC or
 * XTS_ESTORE and changes nothing. Pausing a paused job or resuming one that
 * is not paused changes nothing and returns 0 with *already set (scripts may
 * repeat them); otherwise *already is false. */
int xts_jobs_sync_now(struct xts_jobs *t, const char *job);
/* Why xts_jobs_sync_now refuses job with XTS_EINVAL, as the end of a
 * sentence that starts with the job's name ("is paused; ..."); NULL when it
 * would not. */
const char *xts_jobs_sync_refusal(struct xts_jobs *t, const char *job);
int xts_jobs_pause(struct xts_jobs *t, const char *job, bool *already);
int xts_jobs_resume(struct xts_jobs *t, const char *job, bool *already);

/* Status as a NEW json array of job objects (name, state, enabled,
 * last_cycle_start/end (ISO 8601 or null), next_cycle, last_result,
 * last_error, counts, cycles). NULL on ENOMEM. */
json_t *xts_jobs_status(struct xts_jobs *t);

/* The runner given at creation (borrowed), for control commands. */
const struct xts_job_runner *xts_jobs_runner(struct xts_jobs *t);

/* --once: start one cycle of each job (or of `only`, if non-NULL) now and
 * call done(arg, exit_code) when all finished: 0 all succeeded, 1 a failure,
 * 3 something held/quarantined (contract exit codes). Returns XTS_ENOENT if
 * `only` names no job. */
int xts_jobs_run_once(struct xts_jobs *t, const char *only, void (*done)(void *arg, int code), void *arg);

/* Shutdown: stop timers, cancel running cycles and call done(arg) once all
 * in-flight cycles have reported (immediately if none). */
void xts_jobs_shutdown(struct xts_jobs *t, void (*done)(void *arg), void *arg);
/* allow-deletions released the job's held deletions: it is no longer
 * deletions-held, and a cycle starts now to apply them. Returns what
 * xts_jobs_sync_now returned (XTS_EINVAL when paused: they wait for resume). */
int xts_jobs_released(struct xts_jobs *t, const char *name);
/* The shutdown's grace is over: abandon the cycles still running (runners
 * without abandon keep them). Returns how many were abandoned. */
size_t xts_jobs_abandon(struct xts_jobs *t);
/* Number of running cycles. */
int xts_jobs_running(const struct xts_jobs *t);
/* Free the table (after shutdown completed); closes its timers. The loop
 * must run once more afterwards for the close callbacks. */
void xts_jobs_free(struct xts_jobs *t);

const char *xts_jobrt_state_name(enum xts_jobrt_state s);

#endif
