/* SPDX-License-Identifier: MIT */
/* The job table: one entry per configured job with its runtime state, a uv
 * timer that fires every `interval`, a cap on concurrent cycles, and the
 * bookkeeping for --once and shutdown. It calls the engine through struct
 * xts_job_runner and never fakes a cycle: without an engine a cycle is
 * recorded as failed with "engine not available". A job new to the process
 * shows the last cycle the store has until it runs one. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "jobs.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

#define NO_ENGINE "engine not available"

struct job {
	struct xts_jobs *t;
	char *name;
	const struct xts_config_job *cfg; /* borrowed from t->cfg */
	uv_timer_t timer;
	bool running, paused, due, removed, once_pending;
	bool held, quarantined;
	long long last_start_wall, last_end_wall; /* ms since epoch, 0 = never */
	/* The start of the last cycle the store has, for status until this
	 * process starts one (last_start_wall is this process's: it schedules) */
	long long loaded_start_wall;
	long long next_mono;                      /* xts_now_ms() of the next cycle, 0 = none */
	int last_result;
	bool has_result;
	char last_error[256];
	unsigned long cycles, failed_cycles;
};

struct xts_jobs {
	uv_loop_t *loop;
	struct xts_job_runner r;
	const struct xts_config *cfg;
	struct job **v;
	size_t n, cap;
	int running;
	bool shutting_down;
	bool dry_run; /* a dry run must not overwrite a running daemon's metrics */
	char *metrics_written; /* the metrics_file this process wrote; NULL: none */
	void (*shutdown_cb)(void *arg);
	void *shutdown_arg;
	/* --once */
	bool once;
	int once_left, once_code;
	void (*once_cb)(void *arg, int code);
	void *once_arg;
};

const char *
xts_jobrt_state_name(enum xts_jobrt_state s)
{
	switch (s) {
	case XTS_JOBRT_IDLE: return "idle";
	case XTS_JOBRT_RUNNING: return "running";
	case XTS_JOBRT_PAUSED: return "paused";
	case XTS_JOBRT_QUARANTINED: return "quarantined";
	case XTS_JOBRT_DELETIONS_HELD: return "deletions-held";
	}
	return "?";
}

static enum xts_jobrt_state
job_state(const struct job *j)
{
	if (j->running)
		return XTS_JOBRT_RUNNING;
	if (j->paused)
		return XTS_JOBRT_PAUSED;
	if (j->quarantined)
		return XTS_JOBRT_QUARANTINED;
	if (j->held)
		return XTS_JOBRT_DELETIONS_HELD;
	return XTS_JOBRT_IDLE;
}

static void
job_close_cb(uv_handle_t *h)
{
	struct job *j = h->data;

	xts_free(j->name);
	xts_free(j);
}

static void
job_destroy(struct job *j)
{
	uv_timer_stop(&j->timer);
	uv_close((uv_handle_t *)&j->timer, job_close_cb);
}

static struct job *
job_find(struct xts_jobs *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i]->name, name) == 0)
			return t->v[i];
	return NULL;
}

static void schedule(struct job *j, long long delay_ms);
static void start_due(struct xts_jobs *t);

/* A reload changed or cleared metrics_file: remove the file written under
 * the old path (exactly that path, and only once this process wrote it), so
 * a textfile collector stops exporting its stale values. */
static void
metrics_drop_old(struct xts_jobs *t, const char *path)
{
	int ret;

	if (t->metrics_written == NULL || strcmp(t->metrics_written, path) == 0)
		return;
	ret = xts_metrics_remove(t->metrics_written);
	if (ret == 0 && path[0] != '\0')
		xts_info("metrics file %s removed: metrics_file is now %s", t->metrics_written, path);
	else if (ret == 0)
		xts_info("metrics file %s removed: metrics_file is now empty", t->metrics_written);
	else if (ret == XTS_ENOENT)
		xts_debug("metrics file %s was already removed", t->metrics_written);
	/* Tried once: a failure was logged by xts_metrics_remove; retrying at
	 * every status change would repeat it. */
	xts_free(t->metrics_written);
	t->metrics_written = NULL;
}

/* Rewrite the configured metrics_file (read from the current config each
 * time, so a reload's change or removal applies) from the status: at apply
 * (start, reload), when a cycle starts or ends, at pause and resume. A
 * failure is logged (xts_metrics_write) and changes nothing else. */
static void
metrics_update(struct xts_jobs *t)
{
	const char *path;
	json_t *st;

	if (t->cfg == NULL || t->dry_run)
		return;
	path = t->cfg->daemon.metrics_file != NULL ? t->cfg->daemon.metrics_file : "";
	metrics_drop_old(t, path);
	if (path[0] == '\0')
		return;
	st = xts_jobs_status(t);
	if (st == NULL) {
		xts_warn("metrics file %s not written: %s", path, xts_strerror(XTS_ENOMEM));
		return;
	}
	if (xts_metrics_write(path, st) == 0 && t->metrics_written == NULL) {
		t->metrics_written = xts_strdup(path);
		if (t->metrics_written == NULL)
			xts_warn("metrics file %s: %s; it is not removed if metrics_file changes", path,
				 xts_strerror(XTS_ENOMEM));
	}
	json_decref(st);
}

static void
once_account(struct xts_jobs *t, struct job *j, int result)
{
	int code;

	if (!t->once || !j->once_pending)
		return;
	j->once_pending = false;
	/* Stopped by SIGTERM/SIGINT: the in-flight batch finished and the
	 * state is persisted, which the contract calls a clean exit (0); the
	 * rest is done by the next run. */
	/* A cycle that failed did not complete: 1, even when deletions held
	 * by an earlier cycle are still waiting (j->held). A job quarantined
	 * by this cycle's failure (credentials, policy) is held: 3. */
	if (result == 0 || result == XTS_ECANCELED)
		code = 0;
	else if (result == XTS_EHELD || j->quarantined)
		code = 3;
	else
		code = 1;
	/* A failure outranks a hold; a hold outranks success. */
	if (code == 1 || (code == 3 && t->once_code == 0))
		t->once_code = code;
	if (--t->once_left == 0 && t->once_cb != NULL)
		t->once_cb(t->once_arg, t->once_code);
}

/* Set last_error for a held or partial result, whose text does not depend
 * on the cycle's error; any other result leaves it as it is. */
static void
note_result(struct job *j, int result, bool quarantined)
{
	if (result == XTS_EHELD && quarantined)
		snprintf(j->last_error, sizeof(j->last_error), "quarantined (xtsyncctl resume %s)", j->name);
	else if (result == XTS_EHELD)
		snprintf(j->last_error, sizeof(j->last_error), "deletions held by the deletion threshold");
	else if (result == XTS_EPARTIAL)
		snprintf(j->last_error, sizeof(j->last_error),
			 "some operations failed and are retried on later cycles "
			 "(xtsyncctl logs --job %s --status failure)", j->name);
}

static void
cycle_done(void *arg, int result)
{
	struct job *j = arg;
	struct xts_jobs *t = j->t;

	j->running = false;
	t->running--;
	j->last_end_wall = xts_wall_ms();
	j->last_result = result;
	j->has_result = true;
	j->cycles++;
	j->quarantined = t->r.quarantined != NULL && t->r.quarantined(t->r.ctx, j->name) == 1;
	j->held = result == XTS_EHELD ||
		  (t->r.deletions_held != NULL && t->r.deletions_held(t->r.ctx, j->name) == 1);
	if (result == 0) {
		j->last_error[0] = '\0';
		xts_info("job %s: cycle finished", j->name);
	} else if (result == XTS_EHELD && j->quarantined) {
		note_result(j, result, true);
		xts_warn("job %s: cycle finished; the job is quarantined", j->name);
	} else if (result == XTS_EHELD) {
		note_result(j, result, false);
		xts_warn("job %s: cycle finished with deletions held", j->name);
	} else if (result == XTS_EPARTIAL) {
		j->failed_cycles++;
		note_result(j, result, false);
		xts_warn("job %s: cycle completed with failures; they are retried on later cycles", j->name);
	} else {
		char why[128];
		long long retry;

		j->failed_cycles++;
		if (j->quarantined && t->r.quarantine_info != NULL &&
		    t->r.quarantine_info(t->r.ctx, j->name, why, sizeof(why), &retry) == 1)
			snprintf(j->last_error, sizeof(j->last_error), "%s (quarantined: %s)", xts_strerror(result),
				 why);
		else
			snprintf(j->last_error, sizeof(j->last_error), "%s", xts_strerror(result));
		xts_warn("job %s: cycle failed: %s (%s)", j->name, xts_strerror(result), xts_errname(result));
	}
	once_account(t, j, result);
	if (j->removed) {
		job_destroy(j);
	} else if (!t->once && !t->shutting_down && !j->paused && j->cfg != NULL && j->cfg->enabled) {
		schedule(j, (long long)j->cfg->interval_ms);
	}
	/* The finished cycle and its next one; before shutdown_cb, which may
	 * free the table. */
	metrics_update(t);
	/* Idle now: what the cycle's pages and plans kept for reuse goes back. */
	if (t->running == 0)
		xts_mem_trim();
	if (t->shutting_down && t->running == 0 && t->shutdown_cb != NULL) {
		void (*cb)(void *) = t->shutdown_cb;
		t->shutdown_cb = NULL;
		cb(t->shutdown_arg);
		return;
	}
	start_due(t);
}

/* Start a cycle now. Returns 0 when it started or was recorded as failed. */
static int
start_cycle(struct job *j)
{
	struct xts_jobs *t = j->t;
	int ret;

	long long prev_start = j->last_start_wall;

	j->due = false;
	j->next_mono = 0;
	uv_timer_stop(&j->timer);
	j->last_start_wall = xts_wall_ms();
	if (t->r.start_cycle == NULL) {
		/* Honest: no engine linked in, so nothing ran. */
		j->last_end_wall = j->last_start_wall;
		j->last_result = XTS_EINTERNAL;
		j->has_result = true;
		j->cycles++;
		j->failed_cycles++;
		snprintf(j->last_error, sizeof(j->last_error), NO_ENGINE);
		xts_log_rl(XTS_LOG_WARNING, 60000, 5, "job %s: cycle not run: " NO_ENGINE, j->name);
		once_account(t, j, XTS_EINTERNAL);
		if (!t->once && !t->shutting_down && !j->paused && j->cfg->enabled)
			schedule(j, (long long)j->cfg->interval_ms);
		metrics_update(t);
		return 0;
	}
	j->running = true;
	t->running++;
	xts_info("job %s: cycle starting", j->name);
	ret = t->r.start_cycle(t->r.ctx, j->name, cycle_done, j);
	if (ret == 0) {
		metrics_update(t); /* "running", for a cycle that hangs */
	} else if (ret == XTS_EAGAIN && !t->once) {
		/* The engine runs this job already (a provision on demand):
		 * not a failed cycle, only a late one. */
		j->running = false;
		t->running--;
		j->last_start_wall = prev_start;
		xts_debug("job %s: busy (provision on demand); the cycle starts in a second", j->name);
		if (!t->shutting_down && !j->paused && j->cfg->enabled)
			schedule(j, 1000);
	} else {
		j->running = false;
		t->running--;
		j->last_end_wall = xts_wall_ms();
		j->last_result = ret;
		j->has_result = true;
		j->cycles++;
		j->failed_cycles++;
		snprintf(j->last_error, sizeof(j->last_error), "could not start: %s", xts_strerror(ret));
		xts_warn("job %s: cycle could not start: %s", j->name, xts_strerror(ret));
		once_account(t, j, ret);
		if (!t->once && !t->shutting_down && !j->paused && j->cfg->enabled)
			schedule(j, (long long)j->cfg->interval_ms);
		metrics_update(t);
	}
	return 0;
}

static void
start_due(struct xts_jobs *t)
{
	size_t i;
	long long cap = t->cfg != NULL ? t->cfg->daemon.max_concurrent_jobs : 1;

	if (t->shutting_down)
		return;
	for (i = 0; i < t->n && t->running < cap; i++)
		if (t->v[i]->due && !t->v[i]->running && !t->v[i]->paused)
			start_cycle(t->v[i]);
}

static void
timer_cb(uv_timer_t *h)
{
	struct job *j = h->data;

	j->next_mono = 0;
	if (j->running || j->paused || j->t->shutting_down)
		return;
	j->due = true;
	start_due(j->t);
}

/* The one place a job's next cycle time is set. */
static void
schedule(struct job *j, long long delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	j->next_mono = xts_now_ms() + delay_ms;
	uv_timer_start(&j->timer, timer_cb, (uint64_t)delay_ms, 0);
}

int
xts_jobs_new(uv_loop_t *loop, const struct xts_job_runner *runner, struct xts_jobs **out)
{
	struct xts_jobs *t;

	*out = NULL;
	t = xts_calloc(1, sizeof(*t));
	if (t == NULL)
		return XTS_ENOMEM;
	t->loop = loop;
	if (runner != NULL)
		t->r = *runner;
	*out = t;
	return 0;
}

const struct xts_job_runner *
xts_jobs_runner(struct xts_jobs *t)
{
	return &t->r;
}

static int
job_add(struct xts_jobs *t, const struct xts_config_job *cj)
{
	struct job *j;

	if (t->n == t->cap) {
		size_t ncap = t->cap != 0 ? t->cap * 2 : 8;
		struct job **nv = xts_realloc(t->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return XTS_ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	j = xts_calloc(1, sizeof(*j));
	if (j == NULL)
		return XTS_ENOMEM;
	j->name = xts_strdup(cj->name);
	if (j->name == NULL) {
		xts_free(j);
		return XTS_ENOMEM;
	}
	j->t = t;
	j->cfg = cj;
	uv_timer_init(t->loop, &j->timer);
	j->timer.data = j;
	t->v[t->n++] = j;
	return 0;
}

/* A job new to this table starts paused when the store says so (`pause`
 * survives a restart of the daemon). */
static void
load_paused(struct xts_jobs *t, struct job *j)
{
	int p;

	if (t->r.paused == NULL)
		return;
	p = t->r.paused(t->r.ctx, j->name);
	if (p == 1) {
		j->paused = true;
		xts_info("job %s: paused (by xtsyncctl pause; xtsyncctl resume %s runs it again)", j->name,
			 j->name);
	} else if (p < 0) {
		xts_warn("job %s: cannot read whether it is paused: %s; it runs", j->name, xts_strerror(p));
	}
}

/* A job new to this table shows the last cycle the store has (its end,
 * result and, through the runner, its counts) until this process runs one,
 * so that a restart of the daemon does not blank status. Its scheduling is
 * not touched: a job new to the process runs at once, as always. */
static void
load_last(struct xts_jobs *t, struct job *j)
{
	struct xts_job_last l;
	int ret;

	if (t->r.last_cycle == NULL)
		return;
	memset(&l, 0, sizeof(l));
	ret = t->r.last_cycle(t->r.ctx, j->name, &l);
	if (ret == XTS_ENOENT)
		return;
	if (ret != 0) {
		xts_warn("job %s: cannot read its last cycle from the store: %s; status shows it once a cycle ends",
			 j->name, xts_strerror(ret));
		return;
	}
	j->loaded_start_wall = l.start_wall;
	j->last_end_wall = l.end_wall;
	j->last_result = l.result;
	j->has_result = true;
	note_result(j, l.result,
		    l.result == XTS_EHELD && t->r.quarantined != NULL && t->r.quarantined(t->r.ctx, j->name) == 1);
}

int
xts_jobs_apply(struct xts_jobs *t, const struct xts_config *cfg, unsigned runner_flags)
{
	size_t i, k;
	int ret = 0;

	/* The engine sees the new config first so cycles started below use it.
	 * It has said why it refused; the caller says what that means. */
	if (t->r.configure != NULL) {
		ret = t->r.configure(t->r.ctx, cfg, runner_flags);
		if (ret != 0)
			return ret;
	}
	/* Drop jobs that are gone (a running one is cancelled, freed when done). */
	for (i = 0; i < t->n;) {
		struct job *j = t->v[i];
		if (xts_config_job_find(cfg, j->name) != NULL) {
			i++;
			continue;
		}
		xts_info("job %s: removed from the configuration", j->name);
		j->cfg = NULL;
		t->v[i] = t->v[--t->n];
		if (j->running) {
			j->removed = true;
			if (t->r.cancel != NULL)
				t->r.cancel(t->r.ctx, j->name);
		} else {
			job_destroy(j);
		}
	}
	for (k = 0; k < cfg->n_jobs; k++) {
		const struct xts_config_job *cj = &cfg->jobs[k];
		struct job *j = job_find(t, cj->name);
		uint64_t old_interval = j != NULL && j->cfg != NULL ? j->cfg->interval_ms : 0;
		bool was_enabled = j != NULL && j->cfg != NULL && j->cfg->enabled;

		if (j == NULL) {
			ret = job_add(t, cj);
			if (ret != 0)
				return ret;
			j = t->v[t->n - 1];
			xts_info("job %s: added", cj->name);
			load_paused(t, j);
			load_last(t, j);
		}
		j->cfg = cj;
		if (t->once)
			continue;
		if (!cj->enabled) {
			uv_timer_stop(&j->timer);
			j->next_mono = 0;
			j->due = false;
			continue;
		}
		if (j->running || j->paused || j->due)
			continue;
		if (!was_enabled) {
			schedule(j, 0); /* new or re-enabled: first cycle now */
		} else if (old_interval != cj->interval_ms) {
			long long since = j->last_start_wall != 0 ? xts_wall_ms() - j->last_start_wall : 0;
			schedule(j, (long long)cj->interval_ms - since);
		}
	}
	t->cfg = cfg;
	t->dry_run = (runner_flags & XTS_RUNNER_DRY_RUN) != 0;
	start_due(t);
	/* So the file exists (and follows a reload) before a cycle ends. */
	metrics_update(t);
	return 0;
}

int
xts_jobs_sync_now(struct xts_jobs *t, const char *name)
{
	struct job *j = job_find(t, name);

	if (j == NULL)
		return XTS_ENOENT;
	if (j->running || j->due)
		return XTS_EAGAIN;
	if (j->paused || !j->cfg->enabled || t->shutting_down)
		return XTS_EINVAL;
	j->due = true;
	uv_timer_stop(&j->timer);
	start_due(t);
	return 0;
}

const char *
xts_jobs_sync_refusal(struct xts_jobs *t, const char *name)
{
	struct job *j = job_find(t, name);

	if (j == NULL)
		return NULL;
	if (t->shutting_down)
		return "cannot start: xtsyncd is stopping";
	if (j->paused)
		return "is paused (xtsyncctl pause); `xtsyncctl resume` runs it again";
	if (!j->cfg->enabled)
		return "is disabled in the configuration (enabled = false)";
	return NULL;
}

int
xts_jobs_released(struct xts_jobs *t, const char *name)
{
	struct job *j = job_find(t, name);

	if (j == NULL)
		return XTS_ENOENT;
	if (j->held) {
		j->held = false;
		if (strcmp(j->last_error, "deletions held by the deletion threshold") == 0)
			snprintf(j->last_error, sizeof(j->last_error), "held deletions released; not applied yet");
		metrics_update(t);
	}
	return xts_jobs_sync_now(t, name);
}

/* Store pause (1) or resume (0) before the table changes, so that what
 * status says is what a restarted daemon does; a failure refuses the
 * command. */
static int
store_paused(struct xts_jobs *t, struct job *j, int paused)
{
	int ret;

	if (t->r.set_paused == NULL)
		return 0;
	ret = t->r.set_paused(t->r.ctx, j->name, paused);
	if (ret != 0)
		xts_warn("job %s: %s refused: the store did not take it: %s", j->name,
			 paused ? "pause" : "resume", xts_strerror(ret));
	return ret;
}

int
xts_jobs_pause(struct xts_jobs *t, const char *name, bool *already)
{
	struct job *j = job_find(t, name);
	int ret;

	*already = false;
	if (j == NULL)
		return XTS_ENOENT;
	if (j->paused) {
		*already = true;
		return 0;
	}
	ret = store_paused(t, j, 1);
	if (ret != 0)
		return ret;
	/* A running cycle finishes; no new one starts until resume. */
	j->paused = true;
	j->due = false;
	j->next_mono = 0;
	uv_timer_stop(&j->timer);
	xts_info("job %s: paused", name);
	metrics_update(t);
	return 0;
}

int
xts_jobs_resume(struct xts_jobs *t, const char *name, bool *already)
{
	struct job *j = job_find(t, name);
	long long since, delay;
	int ret;

	*already = false;
	if (j == NULL)
		return XTS_ENOENT;
	if (!j->paused) {
		*already = true;
		return 0;
	}
	ret = store_paused(t, j, 0);
	if (ret != 0)
		return ret;
	j->paused = false;
	xts_info("job %s: resumed", name);
	if (!j->running && j->cfg->enabled && !t->once) {
		since = j->last_start_wall != 0 ? xts_wall_ms() - j->last_start_wall : (long long)j->cfg->interval_ms;
		delay = (long long)j->cfg->interval_ms - since;
		schedule(j, delay);
	}
	metrics_update(t);
	return 0;
}

static json_t *
iso_time(long long wall_ms)
{
	char buf[40];
	struct tm tm;
	time_t s;

	if (wall_ms <= 0)
		return json_null();
	s = (time_t)(wall_ms / 1000);
	if (gmtime_r(&s, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static const char *
result_name(const struct job *j)
{
	if (!j->has_result)
		return NULL;
	if (j->last_result == 0)
		return "success";
	if (j->last_result == XTS_EHELD)
		return "held";
	if (j->last_result == XTS_ECANCELED)
		return "canceled";
	if (j->last_result == XTS_EPARTIAL)
		return "completed with failures";
	return "failed";
}

static json_t *
job_json(struct xts_jobs *t, struct job *j)
{
	struct xts_job_counts c;
	json_t *o, *counts = json_null();
	long long next = 0;
	const char *res = result_name(j);

	memset(&c, 0, sizeof(c));
	if (t->r.counts != NULL && t->r.counts(t->r.ctx, j->name, &c) == 0) {
		counts = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "in_scope", (json_int_t)c.in_scope, "created",
				   (json_int_t)c.created, "updated", (json_int_t)c.updated, "deleted",
				   (json_int_t)c.deleted, "disabled", (json_int_t)c.disabled, "failed",
				   (json_int_t)c.failed, "skipped", (json_int_t)c.skipped);
		if (counts == NULL)
			return NULL;
	}
	if (j->next_mono != 0)
		next = xts_wall_ms() + (j->next_mono - xts_now_ms());
	o = json_pack("{s:s,s:s,s:b,s:s,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:I,s:I,s:o}", "name", j->name, "state",
		      xts_jobrt_state_name(job_state(j)), "enabled", j->cfg->enabled, "source", j->cfg->source,
		      "target", j->cfg->target, "interval_s", (json_int_t)(j->cfg->interval_ms / 1000),
		      "last_cycle_start", iso_time(j->last_start_wall != 0 ? j->last_start_wall : j->loaded_start_wall),
		      "last_cycle_end",
		      j->running ? json_null() : iso_time(j->last_end_wall), "next_cycle",
		      j->running || next == 0 ? json_null() : iso_time(next), "last_result",
		      res != NULL ? json_string(res) : json_null(), "last_error",
		      j->last_error[0] != '\0' ? json_string(j->last_error) : json_null(), "cycles",
		      (json_int_t)j->cycles, "failed_cycles", (json_int_t)j->failed_cycles, "counts", counts);
	if (o != NULL && t->r.quarantine_info != NULL) {
		char why[128];
		long long retry = 0;
		why[0] = '\0';
		if (t->r.quarantine_info(t->r.ctx, j->name, why, sizeof(why), &retry) == 1) {
			json_object_set_new(o, "quarantine_reason", json_string(why));
			json_object_set_new(o, "next_retry", iso_time(retry));
			if (!j->running)
				json_object_set_new(o, "state", json_string("quarantined"));
			/* a quarantined job's next cycle is its retry, not the next tick */
			if (!j->running && next != 0 && retry > next)
				json_object_set_new(o, "next_cycle", iso_time(retry));
		}
	}
	if (o != NULL && j->running && c.progress_total > 0)
		json_object_set_new(o, "progress",
				    json_pack("{s:I,s:I}", "done", (json_int_t)c.progress_done, "total",
					      (json_int_t)c.progress_total));
	return o;
}

json_t *
xts_jobs_status(struct xts_jobs *t)
{
	json_t *arr = json_array(), *o;
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < t->n; i++) {
		o = job_json(t, t->v[i]);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

int
xts_jobs_run_once(struct xts_jobs *t, const char *only, void (*done)(void *arg, int code), void *arg)
{
	size_t i;
	int n = 0;

	if (only != NULL && job_find(t, only) == NULL)
		return XTS_ENOENT;
	t->once = true;
	t->once_code = 0;
	t->once_cb = NULL;
	for (i = 0; i < t->n; i++) {
		struct job *j = t->v[i];
		uv_timer_stop(&j->timer);
		j->next_mono = 0;
		if (only == NULL && j->cfg->enabled && j->paused) {
			xts_info("job %s: paused, so --once skips it (--job %s runs it anyway; "
				 "xtsyncctl resume %s ends the pause)", j->name, j->name, j->name);
			continue;
		}
		if (only != NULL ? strcmp(j->name, only) == 0 : j->cfg->enabled) {
			if (j->paused)
				xts_info("job %s: paused, but --job names it: running one cycle", j->name);
			j->paused = false; /* this process only: the stored pause stays */
			j->once_pending = true;
			j->due = true;
			n++;
		}
	}
	t->once_left = n;
	t->once_cb = done;
	t->once_arg = arg;
	if (n == 0) {
		done(arg, 0);
		return 0;
	}
	start_due(t);
	return 0;
}

int
xts_jobs_running(const struct xts_jobs *t)
{
	return t->running;
}

void
xts_jobs_shutdown(struct xts_jobs *t, void (*done)(void *arg), void *arg)
{
	size_t i;

	t->shutting_down = true;
	for (i = 0; i < t->n; i++) {
		struct job *j = t->v[i];
		uv_timer_stop(&j->timer);
		j->due = false;
		j->next_mono = 0;
		if (j->running && t->r.cancel != NULL)
			t->r.cancel(t->r.ctx, j->name);
	}
	if (t->running == 0) {
		done(arg);
		return;
	}
	t->shutdown_cb = done;
	t->shutdown_arg = arg;
}

size_t
xts_jobs_abandon(struct xts_jobs *t)
{
	size_t i, n = 0;

	if (t->r.abandon == NULL)
		return 0;
	/* A done callback may end the shutdown and free t: count first, and
	 * call no more than there are running cycles. */
	for (i = 0; i < t->n; i++)
		n += t->v[i]->running ? 1 : 0;
	for (i = 0; i < n; i++) {
		size_t k;
		struct job *j = NULL;
		for (k = 0; k < t->n && j == NULL; k++)
			j = t->v[k]->running ? t->v[k] : NULL;
		if (j == NULL)
			break;
		t->r.abandon(t->r.ctx, j->name);
	}
	return n;
}

void
xts_jobs_free(struct xts_jobs *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		job_destroy(t->v[i]);
	xts_free(t->v);
	xts_free(t->metrics_written);
	if (t->r.destroy != NULL)
		t->r.destroy(t->r.ctx);
	xts_free(t);
}
