/* SPDX-License-Identifier: MIT */
/* The daemon process around the engine: start-up (with the single-instance
 * lock on state_dir), the libuv loop, signals that only record intent (acted
 * on by a zero-delay timer), reload as load-validate-swap, graceful stop, the
 * control command table, sd_notify and the watchdog. It never runs a cycle
 * itself (jobs.c asks the engine). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "err.h"
#include "jobs.h"
#include "fsown.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "schema.h"
#include "sdnotify.h"
#include "xts_build.h"

#if __has_include("runner_engine.h")
#include "runner_engine.h"
#define HAVE_ENGINE 1
#else
#define HAVE_ENGINE 0
#endif

/* After SIGTERM, writes on the wire get this long to be answered; then they
 * are abandoned (the next cycle resolves them by matching) and the daemon
 * exits 0, as the contract's "within a few seconds" asks. */
#define STOP_GRACE_MS 5000
/* And what still does not stop after that gets this long. */
#define STOP_HARD_MS 2000

struct daemon {
	uv_loop_t loop;
	const struct xts_daemon_opts *opts;
	struct xts_config *cfg;
	struct xts_jobs *jobs;
	struct xts_control *ctl;
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t act, watchdog, stop_deadline;
	bool want_reload, want_stop, stopping, stopped;
	bool have_engine;
	int lock_fd; /* state_dir/xtsync.lock, held until xts_daemon_run returns; -1 = none */
	int lock_dir_fd; /* state_dir itself, locked too (the file can be unlinked) */
	int exit_code;
	long long started_wall;
};

/* ---- config loading (with schema checks) ---------------------------------- */

/* Check the schema file of every job that names one the config module
 * could accept: a value it refused keeps the default "" (built-in schema),
 * and a file that is missing or not a regular file was reported by it at
 * the same line already. Works on a config that has problems elsewhere. */
static int
check_schemas(struct xts_config *cfg, struct xts_config_problems *probs)
{
	size_t i, k;
	int ret = 0, r;

	for (i = 0; i < cfg->n_jobs; i++) {
		const struct xts_config_job *j = &cfg->jobs[i];
		struct xts_schema_problems sp = XTS_SCHEMA_PROBLEMS_INIT;
		struct xts_schema *s = NULL;
		int line = xts_config_key_line("job", j, "schema");
		struct stat st;

		if (j->schema[0] == '\0' || stat(j->schema, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		r = xts_schema_load_file(j->schema, &s, &sp);
		xts_schema_free(s);
		if (r == XTS_ENOMEM) {
			xts_schema_problems_free(&sp);
			return r;
		}
		for (k = 0; k < sp.count; k++) {
			if (xts_config_problem_add(probs, cfg->path, line, "schema %s: %s: %s", j->schema,
						   sp.items[k].path, sp.items[k].message) != 0)
				ret = XTS_ENOMEM;
		}
		if (r != 0 && sp.count == 0 &&
		    xts_config_problem_add(probs, cfg->path, line, "schema %s: %s", j->schema, xts_strerror(r)) != 0)
			ret = XTS_ENOMEM;
		if (r != 0 && ret == 0)
			ret = XTS_ECONFIG;
		xts_schema_problems_free(&sp);
	}
	return ret;
}

/* As xts_config_problems_print writes them: a whole-file problem (line 0,
 * e.g. "cannot open") as "FILE: message". */
static void
log_problems(const struct xts_config_problems *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->v[i].line > 0)
			xts_err("%s:%d: %s", p->v[i].file, p->v[i].line, p->v[i].msg);
		else
			xts_err("%s: %s", p->v[i].file, p->v[i].msg);
	}
}


int
xts_daemon_load_config(const char *path, struct xts_config **out, struct xts_config_problems *probs)
{
	struct xts_config_problems own = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config_problems *p = probs != NULL ? probs : &own;
	struct xts_config *cfg = NULL;
	size_t first = p->n;
	int ret, r;

	*out = NULL;
	/* Partial: a config with problems still comes back (never to be run),
	 * so its jobs' schemas are checked in the same pass and one
	 * --check-config shows every problem. */
	ret = xts_config_load_partial(path, &cfg, p);
	if (cfg != NULL) {
		r = check_schemas(cfg, p);
		if (r == XTS_ENOMEM || (r != 0 && ret == 0))
			ret = r;
		xts_config_problems_sort(p, first); /* config and schema problems together */
	}
	if (ret != 0) {
		xts_config_free(cfg);
		cfg = NULL;
	}
	if (probs == NULL) {
		log_problems(&own);
		xts_config_problems_free(&own);
	}
	*out = cfg;
	return ret;
}

/* ---- reload --------------------------------------------------------------- */

static void
notify_status(struct daemon *d)
{
	size_t running = d->jobs != NULL ? (size_t)xts_jobs_running(d->jobs) : 0;

	xts_sd_notifyf("STATUS=%zu job(s) configured, %zu running%s", d->cfg->n_jobs, running,
		       d->have_engine ? "" : " (engine not available)");
}

/* Warn about keys a reload cannot change (the old values stay in effect). */
static void
warn_static_changes(const struct xts_config *old, struct xts_config *nw)
{
	if (strcmp(old->daemon.state_dir, nw->daemon.state_dir) != 0)
		xts_warn("reload: state_dir changed; restart xtsyncd to apply");
	if (strcmp(old->daemon.control_socket, nw->daemon.control_socket) != 0)
		xts_warn("reload: control_socket changed; restart xtsyncd to apply");
	if (strcmp(old->daemon.control_group, nw->daemon.control_group) != 0)
		xts_warn("reload: control_group changed; restart xtsyncd to apply");
}

static void
swap_str(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/* The runner's flags for these options (XTS_RUNNER_*). */
static unsigned
runner_flags(const struct xts_daemon_opts *o)
{
	return (o->dry_run ? XTS_RUNNER_DRY_RUN : 0) | (o->once && o->only_job != NULL ? XTS_RUNNER_RETRY_NOW : 0) |
	       (o->once ? XTS_RUNNER_ONCE : 0);
}

/* Returns 0 (swapped) or XTS_ECONFIG with problems filled (old config kept). */
static int
do_reload(struct daemon *d, struct xts_config_problems *probs)
{
	struct xts_config *nw = NULL, *old = d->cfg;
	int ret;

	xts_sd_notify_reloading();
	xts_info("reloading configuration from %s", d->opts->config_path);
	ret = xts_daemon_load_config(d->opts->config_path, &nw, probs);
	if (ret != 0) {
		xts_err("configuration has errors, not reloading");
		log_problems(probs);
		/* The old configuration again: a SIGHUP still reopens the
		 * provisioning log (logrotate's postrotate does not know the
		 * config has a typo). */
		xts_jobs_apply(d->jobs, old, runner_flags(d->opts));
		goto done;
	}
	warn_static_changes(old, nw);
	ret = xts_jobs_apply(d->jobs, nw, runner_flags(d->opts));
	if (ret != 0) {
		xts_err("configuration refused by the engine (%s), not reloading", xts_strerror(ret));
		xts_config_problem_add(probs, nw->path, 0, "refused by the engine: %s", xts_strerror(ret));
		/* The table may hold pointers into nw: point it back at the old one. */
		xts_jobs_apply(d->jobs, old, runner_flags(d->opts));
		xts_config_free(nw);
		ret = XTS_ECONFIG;
		goto done;
	}
	/* Keys that need a restart keep their running values. */
	swap_str(&nw->daemon.control_socket, &old->daemon.control_socket);
	swap_str(&nw->daemon.state_dir, &old->daemon.state_dir);
	swap_str(&nw->daemon.control_group, &old->daemon.control_group);
	d->cfg = nw;
	xts_config_free(old);
	xts_log_set_level(nw->daemon.log_level);
	xts_info("configuration reloaded: %zu tenant(s), %zu job(s)", nw->n_tenants, nw->n_jobs);
done:
	xts_sd_notify("READY=1");
	notify_status(d);
	return ret;
}

/* ---- stop ----------------------------------------------------------------- */

static void
close_cb_noop(uv_handle_t *h)
{
	(void)h;
}

static void
finish(struct daemon *d)
{
	if (d->stopped)
		return;
	d->stopped = true;
	uv_close((uv_handle_t *)&d->sighup, close_cb_noop);
	uv_close((uv_handle_t *)&d->sigterm, close_cb_noop);
	uv_close((uv_handle_t *)&d->sigint, close_cb_noop);
	uv_close((uv_handle_t *)&d->act, close_cb_noop);
	uv_close((uv_handle_t *)&d->watchdog, close_cb_noop);
	uv_close((uv_handle_t *)&d->stop_deadline, close_cb_noop);
	xts_control_stop(d->ctl);
	d->ctl = NULL;
	xts_jobs_free(d->jobs);
	d->jobs = NULL;
	/* Engine handles the runner did not close would keep uv_run going. */
	uv_stop(&d->loop);
}

static void
jobs_stopped(void *arg)
{
	struct daemon *d = arg;

	xts_info("all cycles stopped; exiting");
	finish(d);
}

static void
stop_hard_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	xts_err("cycles did not stop %d ms after their writes were abandoned; exiting anyway "
		"(committed state is safe)", STOP_HARD_MS);
	d->exit_code = 1;
	finish(d);
}

static void
stop_deadline_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;
	size_t n;

	xts_warn("cycles still wait for Graph %d ms after the stop; abandoning their writes", STOP_GRACE_MS);
	/* Arm the last deadline first: abandoning may end the shutdown (and
	 * close this timer) before it returns. */
	uv_timer_start(&d->stop_deadline, stop_hard_cb, STOP_HARD_MS, 0);
	n = xts_jobs_abandon(d->jobs);
	if (n == 0 && !d->stopped) {
		xts_err("cycles did not stop within %d ms; exiting anyway (committed state is safe)", STOP_GRACE_MS);
		d->exit_code = 1;
		finish(d);
	}
}

static void
begin_stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	xts_info("stopping: finishing in-flight work");
	xts_sd_notify("STOPPING=1");
	xts_control_stop(d->ctl);
	d->ctl = NULL;
	uv_timer_stop(&d->watchdog);
	uv_timer_start(&d->stop_deadline, stop_deadline_cb, STOP_GRACE_MS, 0);
	xts_jobs_shutdown(d->jobs, jobs_stopped, d);
}

/* ---- signals: record intent; act_cb acts at a safe point ------------------ */

static void
act_cb(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (d->want_stop) {
		d->want_stop = false;
		begin_stop(d);
		return;
	}
	if (d->want_reload && !d->stopping) {
		struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
		d->want_reload = false;
		do_reload(d, &p);
		xts_config_problems_free(&p);
	}
}

static void
signal_cb(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (signum == SIGHUP)
		d->want_reload = true;
	else
		d->want_stop = true;
	if (!d->stopped)
		uv_timer_start(&d->act, act_cb, 0, 0);
}

static void
watchdog_cb(uv_timer_t *t)
{
	(void)t;
	xts_sd_notify("WATCHDOG=1");
}

/* ---- control commands ------------------------------------------------------ */

struct command {
	const char *name;
	bool needs_job;
	void (*fn)(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg);
};

static void
cmd_status(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	json_t *jobs = xts_jobs_status(d->jobs);

	(void)job;
	(void)msg;
	if (jobs == NULL) {
		xts_control_reply(req, NULL);
		return;
	}
	xts_control_reply(req, json_pack("{s:b,s:{s:s,s:I,s:s,s:I,s:b,s:b},s:o}", "ok", 1, "daemon", "version",
					 XTS_VERSION, "pid", (json_int_t)getpid(), "config", d->cfg->path,
					 "uptime_s", (json_int_t)((xts_wall_ms() - d->started_wall) / 1000),
					 "engine", d->have_engine, "stopping", d->stopping, "jobs", jobs));
}

static void
cmd_reload(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	json_t *arr;
	size_t i;
	int ret;

	(void)job;
	(void)msg;
	ret = do_reload(d, &p);
	if (ret == 0) {
		xts_control_reply(req, json_pack("{s:b,s:I}", "ok", 1, "jobs", (json_int_t)d->cfg->n_jobs));
		xts_config_problems_free(&p);
		return;
	}
	arr = json_array();
	for (i = 0; arr != NULL && i < p.n; i++) {
		char line[1400];
		if (p.v[i].line > 0)
			snprintf(line, sizeof(line), "%s:%d: %s", p.v[i].file, p.v[i].line, p.v[i].msg);
		else
			snprintf(line, sizeof(line), "%s: %s", p.v[i].file, p.v[i].msg);
		json_array_append_new(arr, json_string(line));
	}
	xts_config_problems_free(&p);
	xts_control_reply(req, json_pack("{s:b,s:s,s:o}", "ok", 0, "error",
					 "configuration has errors, not reloading", "problems",
					 arr != NULL ? arr : json_array()));
}

/* A command the store did not take (locked, full, failing): the command is
 * refused and nothing changed, which the reply says. */
static bool
store_refused(int ret)
{
	return ret == XTS_ESTORE || ret == XTS_ENOSPC || ret == XTS_EBUSY;
}

static void
reply_job_result(struct xts_control_req *req, const char *job, int ret, const char *what)
{
	if (ret == 0)
		xts_control_reply(req, json_pack("{s:b,s:s,s:s}", "ok", 1, "job", job, "result", what));
	else if (ret == XTS_ENOENT)
		xts_control_reply_error(req, "no job named '%s'", job);
	else if (ret == XTS_EAGAIN)
		xts_control_reply_error(req, "job '%s' is already running or about to", job);
	else if (ret == XTS_EINVAL)
		xts_control_reply_error(req, "job '%s': not possible in its current state (%s)", job,
					xts_strerror(ret));
	else if (store_refused(ret))
		xts_control_reply_error(req, "job '%s': refused, nothing changed: %s (the daemon's log says why)",
					job, xts_strerror(ret));
	else
		xts_control_reply_error(req, "job '%s': %s", job, xts_strerror(ret));
}

static void
drop_reply(void *arg, json_t *resp)
{
	(void)arg;
	json_decref(resp);
}

/* sync: start a cycle now. A quarantined job's quarantine is cleared first,
 * as Graph's synchronizationJob start does ("If the job is in quarantine,
 * the quarantine status is cleared", synchronization-synchronizationjob-
 * start.md); without that the cycle would stop at the quarantine check. The
 * cycle starts from the loop, after the clearing. */
static void
cmd_sync(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	const struct xts_job_runner *r = xts_jobs_runner(d->jobs);
	int ret = xts_jobs_sync_now(d->jobs, job);

	if (ret == 0 && r->quarantined != NULL && r->command != NULL && r->quarantined(r->ctx, job) == 1) {
		ret = r->command(r->ctx, "resume", msg, drop_reply, NULL);
		if (ret != 0) {
			xts_control_reply_error(req, "job '%s': cycle started, but its quarantine could not be "
					       "cleared (%s): the cycle stops at the quarantine check", job,
					       xts_strerror(ret));
			return;
		}
		reply_job_result(req, job, 0, "quarantine cleared; cycle started");
		return;
	}
	if (ret == XTS_EINVAL && xts_jobs_sync_refusal(d->jobs, job) != NULL) {
		xts_control_reply_error(req, "job '%s' %s", job, xts_jobs_sync_refusal(d->jobs, job));
		return;
	}
	reply_job_result(req, job, ret, "cycle started");
}

/* pause and resume succeed when there is nothing to do, so that scripts
 * may repeat them; the reply says that nothing changed. */
static void
cmd_pause(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	bool already;
	int ret = xts_jobs_pause(d->jobs, job, &already);

	(void)msg;
	reply_job_result(req, job, ret, already ? "already paused" : "paused");
}

static void
engine_reply(void *arg, json_t *resp)
{
	xts_control_reply(arg, resp);
}

/* resume: un-pause the job table's side and, when the engine holds the job
 * quarantined, clear the quarantine too and run a cycle now (it re-checks the
 * connection), as the contract's `resume` promises. */
static void
cmd_resume(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	const struct xts_job_runner *r = xts_jobs_runner(d->jobs);
	bool already;
	int ret = xts_jobs_resume(d->jobs, job, &already);

	if (ret != XTS_ENOENT && r->quarantined != NULL && r->command != NULL &&
	    r->quarantined(r->ctx, job)) {
		ret = r->command(r->ctx, "resume", msg, engine_reply, req);
		if (ret != 0) {
			xts_control_reply_error(req, "resume: %s", xts_strerror(ret));
			return;
		}
		if (xts_jobs_sync_now(d->jobs, job) != 0)
			xts_debug("job %s: resumed; its next cycle runs on schedule", job);
		return;
	}
	reply_job_result(req, job, ret, already ? "not paused; nothing to resume" : "resumed");
}

struct allow_ctx {
	struct daemon *d;
	struct xts_control_req *req;
	const char *job;
};

/* allow-deletions: the engine released them (its reply); run a cycle now
 * that applies them, so status stops saying deletions-held. */
static void
allow_reply(void *arg, json_t *resp)
{
	struct allow_ctx *a = arg;
	const char *was = json_string_value(json_object_get(resp, "result"));
	char text[192];
	int ret;

	if (!json_is_true(json_object_get(resp, "ok")) || was == NULL) {
		xts_control_reply(a->req, resp);
		return;
	}
	ret = xts_jobs_released(a->d->jobs, a->job);
	if (ret == 0)
		snprintf(text, sizeof(text), "%s; cycle started to apply them", was);
	else if (ret == XTS_EAGAIN)
		snprintf(text, sizeof(text), "%s; the cycle already due applies them", was);
	else
		snprintf(text, sizeof(text), "%s; no cycle can start now (paused or disabled): the job's next "
			 "cycle applies them", was);
	json_object_set_new(resp, "result", json_string(text));
	xts_control_reply(a->req, resp);
}

/* restart, provision, preview, allow-deletions: the engine's. */
static void
cmd_engine(struct daemon *d, struct xts_control_req *req, const char *job, json_t *msg)
{
	const struct xts_job_runner *r = xts_jobs_runner(d->jobs);
	const char *cmd = json_string_value(json_object_get(msg, "cmd"));
	int ret;

	if (xts_config_job_find(d->cfg, job) == NULL) {
		xts_control_reply_error(req, "no job named '%s'", job);
		return;
	}
	if (r->command == NULL) {
		xts_control_reply_error(req, "'%s' is not available: engine not available", cmd);
		return;
	}
	if (cmd != NULL && strcmp(cmd, "allow-deletions") == 0) {
		struct allow_ctx a = { d, req, job };
		/* the engine replies before it returns: a may live on the stack */
		ret = r->command(r->ctx, cmd, msg, allow_reply, &a);
	} else {
		ret = r->command(r->ctx, cmd, msg, engine_reply, req);
	}
	if (ret == XTS_EAGAIN)
		xts_control_reply_error(req, "%s: job '%s' is running; try again when its cycle has finished", cmd,
					job);
	else if (store_refused(ret))
		xts_control_reply_error(req, "%s: refused, nothing changed: %s (the daemon's log says why)", cmd,
					xts_strerror(ret));
	else if (ret != 0)
		xts_control_reply_error(req, "%s: %s", cmd, xts_strerror(ret));
}

static const struct command commands[] = {
	{ "status", false, cmd_status },
	{ "reload", false, cmd_reload },
	{ "sync", true, cmd_sync },
	{ "pause", true, cmd_pause },
	{ "resume", true, cmd_resume },
	{ "restart", true, cmd_engine },
	{ "provision", true, cmd_engine },
	{ "preview", true, cmd_engine },
	{ "allow-deletions", true, cmd_engine },
	{ NULL, false, NULL },
};

static void
on_request(void *arg, struct xts_control_req *req, const char *cmd, json_t *msg)
{
	struct daemon *d = arg;
	const struct command *c;
	json_t *job;

	for (c = commands; c->name != NULL; c++)
		if (strcmp(c->name, cmd) == 0)
			break;
	if (c->name == NULL) {
		xts_control_reply_error(req, "unknown command '%.64s'", cmd);
		return;
	}
	if (d->stopping) {
		xts_control_reply_error(req, "xtsyncd is stopping");
		return;
	}
	job = json_object_get(msg, "job");
	if (c->needs_job && (!json_is_string(job) || json_string_length(job) == 0 || json_string_length(job) > 64)) {
		xts_control_reply_error(req, "'%s' needs a \"job\" name", cmd);
		return;
	}
	xts_debug("control: %s", cmd);
	c->fn(d, req, c->needs_job ? json_string_value(job) : NULL, msg);
}

/* ---- single-instance lock on state_dir ------------------------------------ */

#define LOCK_NAME "xtsync.lock"

/* The pid a holder wrote into the lock file, or 0 when it has not (yet). */
static long
lock_holder_pid(int fd)
{
	char buf[32], *end;
	ssize_t n;
	long pid;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || pid <= 0)
		return 0;
	return pid;
}

/* Take state_dir/xtsync.lock exclusively (flock, so the kernel drops it when
 * the process dies, even by SIGKILL: no stale lock to clean up) and write our
 * pid into it for the next one's message. Two processes cycling the same jobs
 * on one store claim each other's in-flight operations, so a second daemon or
 * --once must not start. Returns the fd (the lock lives as long as it stays
 * open) or -1 after printing why. Never blocks. */
static int
lock_state_dir(const char *state_dir, int *dir_fd)
{
	char path[4096], pid[32];
	int fd, n, e;
	long holder;

	n = snprintf(path, sizeof(path), "%s/" LOCK_NAME, state_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "xtsyncd: state_dir %s: path too long\n", state_dir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "xtsyncd: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	xts_give_to_dir_owner(fd, path); /* root's --once must not keep the daemon's user out */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		if (e == EWOULDBLOCK) {
			holder = lock_holder_pid(fd);
			if (holder > 0)
				fprintf(stderr, "xtsyncd: another xtsyncd holds %s (pid %ld)\n", path, holder);
			else
				fprintf(stderr, "xtsyncd: another xtsyncd holds %s (pid unknown)\n", path);
		} else {
			fprintf(stderr, "xtsyncd: cannot lock %s: %s\n", path, strerror(e));
		}
		close(fd);
		return -1;
	}
	/* The file can be unlinked ("a stale lock") while we hold it; the next
	 * process would lock a new one. The directory cannot go while it holds
	 * the store: it is locked too. */
	*dir_fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dir_fd < 0 || flock(*dir_fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		if (*dir_fd >= 0 && e == EWOULDBLOCK)
			fprintf(stderr, "xtsyncd: another xtsyncd holds %s (its %s was removed; pid unknown)\n",
				state_dir, LOCK_NAME);
		else
			fprintf(stderr, "xtsyncd: cannot lock %s: %s\n", state_dir, strerror(e));
		if (*dir_fd >= 0)
			close(*dir_fd);
		*dir_fd = -1;
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		xts_warn("cannot write the pid into %s: %s (the lock is held all the same)", path, strerror(errno));
	return fd;
}

/* ---- start-up ------------------------------------------------------------- */

static void
once_done(void *arg, int code)
{
	struct daemon *d = arg;

	d->exit_code = code;
	xts_info("--once: all cycles finished (exit %d)", code);
	d->want_stop = true;
	uv_timer_start(&d->act, act_cb, 0, 0);
}

static int
init_runner(struct daemon *d, struct xts_job_runner *r)
{
	memset(r, 0, sizeof(*r));
#if HAVE_ENGINE
	{
		int ret = xts_runner_engine_init(&d->loop, r);
		if (ret != 0) {
			xts_err("engine failed to start: %s", xts_strerror(ret));
			return ret;
		}
		d->have_engine = true;
	}
#else
	xts_warn("this build has no sync engine: cycles are reported as \"engine not available\"");
	d->have_engine = false;
#endif
	return 0;
}

static int
start_control(struct daemon *d)
{
	gid_t gid = (gid_t)-1;

	if (d->cfg->daemon.control_group[0] != '\0') {
		struct group *g = getgrnam(d->cfg->daemon.control_group);
		if (g == NULL) {
			xts_err("control_group '%s' does not exist", d->cfg->daemon.control_group);
			return XTS_ECONFIG;
		}
		gid = g->gr_gid;
	}
	return xts_control_start(&d->loop, d->cfg->daemon.control_socket, gid, on_request, d, &d->ctl);
}

static void
walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, close_cb_noop);
}

int
xts_daemon_run(const struct xts_daemon_opts *o)
{
	struct xts_config_problems probs = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_job_runner runner;
	struct daemon *d;
	uint64_t wd;
	int ret, code = 1;
	bool busy;

	d = xts_calloc(1, sizeof(*d));
	if (d == NULL)
		return 1;
	d->opts = o;
	d->lock_fd = -1;
	d->lock_dir_fd = -1;
	d->started_wall = xts_wall_ms();
	ret = xts_daemon_load_config(o->config_path, &d->cfg, &probs);
	if (ret != 0) {
		xts_config_problems_print(&probs, stderr);
		xts_config_problems_free(&probs);
		xts_free(d);
		return ret == XTS_ENOMEM ? 1 : 2;
	}
	xts_log_set_level(d->cfg->daemon.log_level);
	if (o->only_job != NULL && xts_config_job_find(d->cfg, o->only_job) == NULL) {
		fprintf(stderr, "xtsyncd: --job %s: no such job in %s\n", o->only_job, o->config_path);
		xts_config_free(d->cfg);
		xts_free(d);
		return 2;
	}
	/* Before the store is opened. A dry run takes no lock: it writes
	 * nothing to the store or to any target (it plans on a copy of the
	 * store, runner_engine.c), so it may run beside a daemon. */
	if (!o->dry_run) {
		d->lock_fd = lock_state_dir(d->cfg->daemon.state_dir, &d->lock_dir_fd);
		if (d->lock_fd < 0) {
			xts_config_free(d->cfg);
			xts_free(d);
			return 1;
		}
	}
	if (uv_loop_init(&d->loop) != 0) {
		if (d->lock_fd >= 0)
			close(d->lock_fd);
		if (d->lock_dir_fd >= 0)
			close(d->lock_dir_fd);
		xts_config_free(d->cfg);
		xts_free(d);
		return 1;
	}
	uv_timer_init(&d->loop, &d->act);
	uv_timer_init(&d->loop, &d->watchdog);
	uv_timer_init(&d->loop, &d->stop_deadline);
	d->act.data = d->watchdog.data = d->stop_deadline.data = d;
	uv_signal_init(&d->loop, &d->sighup);
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	d->sighup.data = d->sigterm.data = d->sigint.data = d;
	uv_signal_start(&d->sighup, signal_cb, SIGHUP);
	uv_signal_start(&d->sigterm, signal_cb, SIGTERM);
	uv_signal_start(&d->sigint, signal_cb, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	/* not ours: a stray kill -USR1 (a postrotate copied from another
	 * daemon) must not end the daemon without its orderly stop */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	ret = init_runner(d, &runner);
	if (ret == 0) {
		ret = xts_jobs_new(&d->loop, &runner, &d->jobs);
		/* the jobs table did not take the runner: it is ours to free
		 * (its handles close in the loop run below) */
		if (ret != 0 && runner.destroy != NULL)
			runner.destroy(runner.ctx);
	}
	/* Timers armed by apply only fire once the loop runs; run_once disarms them. */
	if (ret == 0)
		ret = xts_jobs_apply(d->jobs, d->cfg, runner_flags(o));
	if (ret == 0 && o->once)
		ret = xts_jobs_run_once(d->jobs, o->only_job, once_done, d);
	if (ret == 0 && !o->once)
		ret = start_control(d);
	if (ret != 0) {
		xts_err("start-up failed: %s", xts_strerror(ret));
		d->exit_code = ret == XTS_ECONFIG ? 2 : 1;
		finish(d);
	} else {
		wd = xts_sd_watchdog_usec();
		if (wd > 0 && !o->once)
			uv_timer_start(&d->watchdog, watchdog_cb, 0, wd / 2000 > 0 ? wd / 2000 : 1);
		if (!o->once) {
			xts_info("xtsyncd %s ready: %zu job(s), control socket %s", XTS_VERSION, d->cfg->n_jobs,
				 d->cfg->daemon.control_socket);
			xts_sd_notify("READY=1");
			notify_status(d);
		}
	}
	uv_run(&d->loop, UV_RUN_DEFAULT);
	/* Let close callbacks run; close whatever an engine left open. */
	uv_walk(&d->loop, walk_close, NULL);
	uv_run(&d->loop, UV_RUN_NOWAIT);
	/* Work still queued on the thread pool (an outbox flush sending mail)
	 * holds a pointer to the loop: wait for it before freeing the loop,
	 * or the worker locks a freed mutex. Bounded; leak rather than
	 * free a loop that is still busy. */
	busy = uv_loop_close(&d->loop) == UV_EBUSY;
	for (int i = 0; i < 10000 && busy; i++) {
		uv_walk(&d->loop, walk_close, NULL);
		uv_run(&d->loop, UV_RUN_ONCE);
		busy = uv_loop_close(&d->loop) == UV_EBUSY;
	}
	if (busy) {
		/* The busy work may still use the store: keep the lock too. */
		xts_warn("event loop still busy at exit; not freeing it");
		code = d->exit_code;
		xts_config_free(d->cfg);
		return code;
	}
	code = d->exit_code;
	/* Closing drops the lock; a reload never moves state_dir (do_reload
	 * keeps the running value), so the lock always covers the open store. */
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->lock_dir_fd >= 0)
		close(d->lock_dir_fd);
	xts_config_free(d->cfg);
	xts_free(d);
	return code;
}
