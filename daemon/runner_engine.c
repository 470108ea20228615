/* SPDX-License-Identifier: MIT */
/* The daemon's struct xts_job_runner on top of lib/engine: owns the evloop
 * glue, the Graph context, the store, the provisioning log and the outbox
 * flusher (a libuv worker thread with its own store connection, so an SMTP
 * outage never blocks syncing). Dry runs work on a snapshot copy of the store.
 * Until the engine has counts of a job, status gets its last cycle's from the
 * store. It schedules nothing (jobs.c does) and decides nothing (the engine
 * does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "engine.h"
#include "err.h"
#include "jobs.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "provlog.h"
#include "runner_engine.h"
#include "secret.h"
#include "store.h"
#include "uvglue.h"

struct flush_work;
struct loaded;

struct rctx {
	uv_loop_t *loop;
	struct xts_evloop *ev;
	struct xts_graph_ctx *gctx;
	struct xts_store *store;
	struct xts_provlog *provlog;
	struct xts_engine *eng;
	const struct xts_config *cfg;
	unsigned flags;
	char *state_dir;
	char *snapshot_dir;    /* dry run: the temporary copy of the store */
	/* smtp */
	bool smtp;
	char *smtp_url, *smtp_from, *smtp_user, *smtp_pass, *smtp_ca;
	struct flush_work *flushing;
	bool flush_again;
	uv_timer_t *outbox_timer; /* the next flush of a mail waiting to be retried */
	uv_timer_t reaper;     /* frees preview engines from the loop */
	struct preview *dead;
	struct preview *live;  /* previews still running (freed by r_destroy) */
	struct loaded *loaded; /* last cycles read from the store (r_last_cycle) */
};

/* ---- snapshot copies for dry runs --------------------------------------------- */

/* Copy the committed state of state_dir/xtsync.db into a new temp dir and
 * open the copy there (no store yet: an empty one). The copy is SQLite's
 * backup under one read transaction, so it is consistent even while a daemon
 * beside a --dry-run, or this one during a preview, commits or checkpoints;
 * a paused read batch of ours is not committed and so not in the copy.
 * *dir_out (the caller removes it, also on failure) is set once the dir
 * exists. */
static int
snapshot_open(const char *state_dir, char **dir_out, struct xts_store **out)
{
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	int ret, e;

	*dir_out = NULL;
	snprintf(dir, sizeof(dir), "%s/xtsync-dryrun-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		e = errno;
		xts_err("dry run: cannot create a temporary directory %s: %s", dir, strerror(e));
		return xts_err_from_errno(e);
	}
	*dir_out = xts_strdup(dir);
	if (*dir_out == NULL) {
		rmdir(dir);
		return XTS_ENOMEM;
	}
	ret = xts_store_snapshot(state_dir, dir);
	if (ret == XTS_ENOENT)
		ret = 0;
	if (ret == 0)
		ret = xts_store_open(dir, out);
	return ret;
}

static void
snapshot_remove(char *dir)
{
	const char *sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[1024];
	size_t i;

	if (dir == NULL)
		return;
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s/xtsync.db%s", dir, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
	xts_free(dir);
}

/* ---- outbox flusher ------------------------------------------------------------ */

struct flush_work {
	uv_work_t w;
	struct rctx *r; /* NULL once the runner is gone */
	char *state_dir, *url, *from, *user, *pass, *ca;
	int sent, failed, err;
	int stop;            /* set by the loop thread when the daemon stops (atomic) */
	int again;           /* a mail was queued while this flush ran (atomic) */
	uv_loop_t *loop;
	long long next_due;  /* wall ms of the next mail to retry, 0 = none */
};

/* A stopping daemon does not wait for a slow SMTP server: the transfer in
 * flight is aborted and its mail stays queued (sent after the restart). */
static int
flush_stopping(void *arg)
{
	struct flush_work *f = arg;

	return __atomic_load_n(&f->stop, __ATOMIC_ACQUIRE);
}

static void
flush_run(uv_work_t *w)
{
	struct flush_work *f = w->data;
	struct xts_smtp_conf c;
	struct xts_store *st = NULL;

	memset(&c, 0, sizeof(c));
	c.url = f->url;
	c.from = f->from;
	c.username = f->user;
	c.password = f->pass;
	c.ca_file = f->ca;
	c.should_stop = flush_stopping;
	c.stop_arg = f;
	f->err = xts_store_open(f->state_dir, &st);
	/* a mail queued while a pass ran gets a pass of its own */
	while (f->err == 0 && !flush_stopping(f)) {
		int sent = 0, failed = 0;

		__atomic_store_n(&f->again, 0, __ATOMIC_RELEASE);
		f->err = xts_notify_flush(st, &c, xts_wall_ms(), &sent, &failed);
		f->sent += sent;
		f->failed += failed;
		if (!__atomic_load_n(&f->again, __ATOMIC_ACQUIRE))
			break;
	}
	if (f->err == 0 && xts_notify_next_attempt(st, &f->next_due) != 0)
		f->next_due = 0;
	xts_store_close(st);
}

static void flush_kick(void *arg);

static void
outbox_timer_cb(uv_timer_t *t)
{
	flush_kick(t->data);
}

static void
flush_after(uv_work_t *w, int status)
{
	struct flush_work *f = w->data;
	struct rctx *r = f->r;

	(void)status;
	if (r == NULL && f->err == 0 && __atomic_load_n(&f->again, __ATOMIC_ACQUIRE) && !flush_stopping(f) &&
	    uv_queue_work(f->loop, &f->w, flush_run, flush_after) == 0)
		return; /* --once: a mail queued at the very end still goes out */
	if (f->err != 0)
		xts_warn("notifications: outbox flush failed: %s", xts_strerror(f->err));
	else if (f->sent > 0 || f->failed > 0)
		xts_info("notifications: %d sent, %d failed (retried later)", f->sent, f->failed);
	xts_free(f->state_dir);
	xts_free(f->url);
	xts_free(f->from);
	xts_free(f->user);
	xts_secret_free(f->pass);
	xts_free(f->ca);
	if (r == NULL) {
		xts_free(f);
		return;
	}
	r->flushing = NULL;
	if (r->flush_again) {
		r->flush_again = false;
		flush_kick(r);
	} else if (f->next_due > 0 && r->outbox_timer != NULL) {
		/* a mail waits for its retry: flush again then, whether or not
		 * a cycle runs (a quarantined job's cycles do not) */
		long long ms = f->next_due - xts_wall_ms();

		uv_timer_start(r->outbox_timer, outbox_timer_cb, ms < 1000 ? 1000 : (uint64_t)ms, 0);
	}
	xts_free(f);
}

static void
flush_kick(void *arg)
{
	struct rctx *r = arg;
	struct flush_work *f;

	if (!r->smtp || r->snapshot_dir != NULL || (r->flags & XTS_RUNNER_DRY_RUN) != 0)
		return;
	if (r->flushing != NULL) {
		r->flush_again = true;
		__atomic_store_n(&r->flushing->again, 1, __ATOMIC_RELEASE);
		return;
	}
	f = xts_calloc(1, sizeof(*f));
	if (f == NULL)
		return;
	f->r = r;
	f->loop = r->loop;
	f->w.data = f;
	f->state_dir = xts_strdup(r->state_dir);
	f->url = xts_strdup(r->smtp_url);
	f->from = xts_strdup(r->smtp_from);
	f->user = xts_strdup(r->smtp_user != NULL ? r->smtp_user : "");
	f->pass = r->smtp_pass != NULL ? xts_strdup(r->smtp_pass) : NULL;
	f->ca = r->smtp_ca != NULL && r->smtp_ca[0] != '\0' ? xts_strdup(r->smtp_ca) : NULL;
	if (f->state_dir == NULL || f->url == NULL || f->from == NULL || f->user == NULL ||
	    (r->smtp_pass != NULL && f->pass == NULL) || (f->ca == NULL && r->smtp_ca != NULL &&
	    r->smtp_ca[0] != '\0') || uv_queue_work(r->loop, &f->w, flush_run, flush_after) != 0) {
		xts_free(f->state_dir);
		xts_free(f->url);
		xts_free(f->from);
		xts_free(f->user);
		xts_secret_free(f->pass);
		xts_free(f->ca);
		xts_free(f);
		return;
	}
	if (r->outbox_timer != NULL)
		uv_timer_stop(r->outbox_timer);
	r->flushing = f;
}

static void
smtp_clear(struct rctx *r)
{
	xts_free(r->smtp_url);
	xts_free(r->smtp_from);
	xts_free(r->smtp_user);
	xts_secret_free(r->smtp_pass);
	xts_free(r->smtp_ca);
	r->smtp_url = r->smtp_from = r->smtp_user = r->smtp_pass = r->smtp_ca = NULL;
	r->smtp = false;
}

static int
smtp_load(struct rctx *r, const struct xts_config *cfg)
{
	int ret = 0;

	smtp_clear(r);
	if (!cfg->smtp.present)
		return 0;
	r->smtp_url = xts_strdup(cfg->smtp.url);
	r->smtp_from = xts_strdup(cfg->smtp.from);
	r->smtp_user = xts_strdup(cfg->smtp.username);
	r->smtp_ca = xts_strdup(cfg->smtp.ca_file != NULL ? cfg->smtp.ca_file : "");
	if (cfg->smtp.password_file != NULL && cfg->smtp.password_file[0] != '\0')
		ret = xts_secret_read(cfg->smtp.password_file, &r->smtp_pass);
	if (r->smtp_url == NULL || r->smtp_from == NULL || r->smtp_user == NULL || r->smtp_ca == NULL)
		ret = XTS_ENOMEM;
	r->smtp = ret == 0;
	if (ret != 0)
		xts_warn("notifications disabled: %s", xts_strerror(ret));
	return 0;
}

/* ---- the provisioning log ------------------------------------------------------ */

/* What to check when the provisioning log cannot be opened with errno e. */
static const char *
provlog_hint(int e)
{
	if (e == ENOENT || e == ENOTDIR)
		return " (does its directory exist?)";
	if (e == EACCES || e == EPERM || e == EROFS)
		return " (check the owner and mode of the file and its directory)";
	return "";
}

/* The reason an open of the provisioning log failed with ret: open(2)'s
 * words (lib/provlog leaves errno set) and what to check. */
static void
provlog_why(int ret, char *why, size_t len)
{
	int e = errno;

	if (ret == XTS_ENOMEM || e == 0)
		snprintf(why, len, "%s", xts_strerror(ret));
	else
		snprintf(why, len, "%s%s", strerror(e), provlog_hint(e));
}

/* Open the provisioning log at start-up; a failure is logged here, once. */
static int
provlog_open(const char *path, struct xts_provlog **out)
{
	char why[256];
	int ret;

	errno = 0;
	ret = xts_provlog_open(path, out);
	if (ret != 0) {
		provlog_why(ret, why, sizeof(why));
		xts_err("cannot open the provisioning log %s: %s", path, why);
	}
	return ret;
}

/* SIGHUP: a rotated log is reopened and a changed provisioning_log takes
 * effect. A new path that cannot be opened refuses the reload (returned, said
 * once, the old file is still written); the same path that cannot be reopened
 * is said once and keeps the open file, so the rest of the reload applies. */
static int
provlog_reload(struct xts_provlog *pl, const char *want)
{
	const char *cur = xts_provlog_path(pl);
	const char *path = want[0] != '\0' ? want : cur;
	bool moves = strcmp(path, cur) != 0;
	char why[256];
	int e;

	errno = 0;
	e = xts_provlog_reopen_path(pl, moves ? path : NULL);
	if (e != 0)
		provlog_why(e, why, sizeof(why));
	if (e != 0 && moves) {
		xts_err("cannot open the provisioning log %s: %s; still writing %s", path, why, cur);
		return e;
	}
	if (e != 0)
		xts_err("cannot reopen the provisioning log %s: %s; still writing the file open before", path, why);
	else if (moves)
		xts_info("provisioning log: now %s", path);
	if (want[0] == '\0')
		xts_warn("provisioning_log cleared: a restart stops the provisioning log; "
			 "until then it is still written");
	return 0;
}

/* ---- the last cycle as the store has it ------------------------------------------ */

/* The counts of a job's last ended cycle, read from the store when the job
 * was new to this process. They stand in for the engine's (zero until it
 * ends a cycle) while the store's cycle counter is what it was then: a cycle
 * that began since has given the engine counts of its own (a canceled one
 * too, as without a restart), and one that did not begin (a quarantined
 * job's wait) has not. `restart` drops them, as it zeroes the engine's. */
struct loaded {
	struct loaded *next;
	char *job;
	long long counter; /* the job's cycle_counter when read */
	struct xts_job_counts c;
};

static struct loaded **
loaded_find(struct rctx *r, const char *job)
{
	struct loaded **l;

	for (l = &r->loaded; *l != NULL; l = &(*l)->next)
		if (strcmp((*l)->job, job) == 0)
			return l;
	return l;
}

static void
loaded_drop(struct rctx *r, const char *job)
{
	struct loaded **l = loaded_find(r, job), *dead = *l;

	if (dead == NULL)
		return;
	*l = dead->next;
	xts_free(dead->job);
	xts_free(dead);
}

static long long
count_of(const json_t *counts, const char *key)
{
	json_t *v = json_object_get(counts, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* The result the engine reported for the text it stored (engine_cycle.c). */
static int
result_code(const char *text)
{
	if (text == NULL)
		return XTS_EINTERNAL;
	if (strcmp(text, "success") == 0)
		return 0;
	if (strcmp(text, "held") == 0)
		return XTS_EHELD;
	if (strcmp(text, "completed with failures") == 0)
		return XTS_EPARTIAL;
	if (strcmp(text, "canceled") == 0)
		return XTS_ECANCELED;
	return XTS_EINTERNAL;
}

struct start_of {
	long long ended, started;
};

static int
start_of_cb(void *arg, const struct xts_store_cycle *c)
{
	struct start_of *s = arg;

	if (c->ended != s->ended)
		return 0;
	s->started = c->started;
	return 1;
}

/* The job row says when the last cycle began and when the last one ended:
 * the same cycle unless one began and never ended (the daemon was killed or
 * the cycle canceled); then the start is the ended cycle's row's, among the
 * newest few (0, not known, otherwise). */
static long long
ended_cycle_start(struct rctx *r, const char *job, const struct xts_store_job *sj)
{
	struct start_of s = { sj->last_cycle_end, 0 };

	if (sj->last_cycle_start <= sj->last_cycle_end)
		return sj->last_cycle_start;
	if (xts_store_cycle_foreach(r->store, job, 64, start_of_cb, &s) < 0)
		return 0;
	return s.started;
}

static int
r_last_cycle(void *ctx, const char *job, struct xts_job_last *out)
{
	struct rctx *r = ctx;
	struct xts_store_job sj;
	struct loaded *l;
	int ret;

	memset(out, 0, sizeof(*out));
	loaded_drop(r, job);
	if (r->store == NULL)
		return XTS_ENOENT;
	memset(&sj, 0, sizeof(sj));
	ret = xts_store_job_get(r->store, job, &sj);
	if (ret == 0 && sj.last_cycle_end <= 0)
		ret = XTS_ENOENT;
	if (ret != 0)
		goto done;
	out->start_wall = ended_cycle_start(r, job, &sj);
	out->end_wall = sj.last_cycle_end;
	out->result = result_code(sj.last_cycle_result);
	l = xts_calloc(1, sizeof(*l));
	if (l != NULL)
		l->job = xts_strdup(job);
	if (l == NULL || l->job == NULL) {
		xts_free(l);
		ret = XTS_ENOMEM;
		goto done;
	}
	l->counter = sj.cycle_counter;
	l->c.in_scope = count_of(sj.counts, "in_scope");
	l->c.created = count_of(sj.counts, "created");
	l->c.updated = count_of(sj.counts, "updated");
	l->c.deleted = count_of(sj.counts, "deleted");
	l->c.disabled = count_of(sj.counts, "disabled");
	l->c.failed = count_of(sj.counts, "failed");
	l->c.skipped = count_of(sj.counts, "skipped");
	l->next = r->loaded;
	r->loaded = l;
done:
	xts_store_job_clear(&sj);
	return ret;
}

/* The loaded counts of job while they still stand for its last cycle, else
 * NULL (and they are dropped). Reads the job row: status asks this only for
 * jobs that have not begun a cycle in this process. */
static const struct xts_job_counts *
loaded_counts(struct rctx *r, const char *job)
{
	struct loaded *l = *loaded_find(r, job);
	struct xts_store_job sj;
	bool current;

	if (l == NULL)
		return NULL;
	memset(&sj, 0, sizeof(sj));
	if (xts_store_job_get(r->store, job, &sj) != 0)
		return &l->c; /* unreadable now: what was read stands */
	current = sj.cycle_counter == l->counter;
	xts_store_job_clear(&sj);
	if (current)
		return &l->c;
	loaded_drop(r, job);
	return NULL;
}

/* ---- runner callbacks ---------------------------------------------------------- */

static void
print_line(void *arg, const char *job, const char *line)
{
	(void)arg;
	printf("%s: %s\n", job, line);
	fflush(stdout);
}

/* Every failure is logged here or below (store, provisioning log, engine),
 * once: the callers add only the outcome (jobs.h). */
static int
r_configure(void *ctx, const struct xts_config *cfg, unsigned flags)
{
	struct rctx *r = ctx;
	struct xts_engine_opts o;
	int ret;

	r->cfg = cfg;
	if (r->eng == NULL) {
		r->flags = flags;
		r->state_dir = xts_strdup(cfg->daemon.state_dir);
		if (r->state_dir == NULL)
			return XTS_ENOMEM;
		if (flags & XTS_RUNNER_DRY_RUN)
			ret = snapshot_open(cfg->daemon.state_dir, &r->snapshot_dir, &r->store);
		else
			ret = xts_store_open(cfg->daemon.state_dir, &r->store);
		if (ret != 0) {
			xts_err("engine: cannot open the store in %s: %s", cfg->daemon.state_dir,
				xts_strerror(ret));
			return ret;
		}
		if (!(flags & XTS_RUNNER_DRY_RUN) && cfg->daemon.provisioning_log[0] != '\0') {
			ret = provlog_open(cfg->daemon.provisioning_log, &r->provlog);
			if (ret != 0)
				return ret;
		}
		memset(&o, 0, sizeof(o));
		o.ev = r->ev;
		o.gctx = r->gctx;
		o.store = r->store;
		o.provlog = r->provlog;
		o.flags = ((flags & XTS_RUNNER_DRY_RUN) ? XTS_ENGINE_DRY_RUN : 0) |
			  ((flags & XTS_RUNNER_RETRY_NOW) ? XTS_ENGINE_RETRY_NOW : 0);
		o.plan_line = (flags & XTS_RUNNER_DRY_RUN) ? print_line : NULL;
		o.outbox_kick = flush_kick;
		o.outbox_arg = r;
		ret = xts_engine_new(&o, &r->eng);
		if (ret != 0) {
			xts_err("engine: cannot start: %s", xts_strerror(ret));
			return ret;
		}
	} else if (r->provlog != NULL) {
		ret = provlog_reload(r->provlog, cfg->daemon.provisioning_log);
		if (ret != 0)
			return ret;
	} else if (!(flags & XTS_RUNNER_DRY_RUN) && cfg->daemon.provisioning_log[0] != '\0') {
		xts_warn("provisioning_log set by a reload: it takes effect at the next restart");
	}
	smtp_load(r, cfg);
	ret = xts_engine_configure(r->eng, cfg);
	/* mail queued before a restart or a reload (a quarantine the server
	 * was down for) goes out now, not at the end of some later cycle */
	if (ret == 0)
		flush_kick(r);
	return ret;
}

static int
r_start(void *ctx, const char *job, void (*done)(void *arg, int result), void *arg)
{
	struct rctx *r = ctx;

	if (r->eng == NULL)
		return XTS_EINVAL;
	return xts_engine_cycle_start(r->eng, job, done, arg);
}

static void
r_cancel(void *ctx, const char *job)
{
	struct rctx *r = ctx;

	if (r->eng != NULL)
		xts_engine_cancel(r->eng, job);
}

static void
r_abandon(void *ctx, const char *job)
{
	struct rctx *r = ctx;

	if (r->eng != NULL)
		xts_engine_abandon(r->eng, job);
}

static int
r_counts(void *ctx, const char *job, struct xts_job_counts *out)
{
	struct rctx *r = ctx;
	struct xts_engine_counts c;
	const struct xts_job_counts *l;
	int ret;

	if (r->eng == NULL)
		return XTS_ENOENT;
	ret = xts_engine_counts(r->eng, job, &c);
	if (ret != 0)
		return ret;
	memset(out, 0, sizeof(*out));
	l = loaded_counts(r, job);
	if (l != NULL) {
		*out = *l;
	} else {
		out->in_scope = c.in_scope;
		out->created = c.created;
		out->updated = c.updated;
		out->deleted = c.deleted;
		out->disabled = c.disabled;
		out->failed = c.failed;
		out->skipped = c.skipped;
	}
	out->progress_done = c.ops_total > 0 ? c.ops_done : c.users;
	out->progress_total = c.ops_total;
	return 0;
}


static int
r_quarantined(void *ctx, const char *job)
{
	struct rctx *r = ctx;

	return r->eng != NULL ? xts_engine_quarantined(r->eng, job) : 0;
}

static int
r_held(void *ctx, const char *job)
{
	struct rctx *r = ctx;

	return r->eng != NULL ? xts_engine_deletions_held(r->eng, job) : 0;
}

static int
r_qinfo(void *ctx, const char *job, char *reason, size_t len, long long *next_retry)
{
	struct rctx *r = ctx;

	*next_retry = 0;
	return r->eng != NULL ? xts_engine_quarantine_info(r->eng, job, reason, len, next_retry) : 0;
}

static int
r_paused(void *ctx, const char *job)
{
	struct rctx *r = ctx;

	return r->eng != NULL ? xts_engine_paused(r->eng, job) : 0;
}

/* A dry run's store is a throw-away copy: nothing to keep there. */
static int
r_set_paused(void *ctx, const char *job, int paused)
{
	struct rctx *r = ctx;

	if (r->eng == NULL || (r->flags & XTS_RUNNER_DRY_RUN) != 0)
		return 0;
	return xts_engine_set_paused(r->eng, job, paused);
}

/* ---- preview: a dry-run cycle on a snapshot ----------------------------------------- */

struct preview {
	struct rctx *r;
	struct xts_engine *eng;
	struct xts_store *store;
	char *dir;
	json_t *lines;
	void (*reply)(void *arg, json_t *resp);
	void *arg;
	struct preview *next;
};

static void
preview_free(struct preview *p)
{
	xts_engine_free(p->eng);
	xts_store_close(p->store);
	snapshot_remove(p->dir);
	json_decref(p->lines);
	xts_free(p);
}

static void
reaper_cb(uv_timer_t *t)
{
	struct rctx *r = t->data;
	struct preview *p;

	while (r->dead != NULL) {
		p = r->dead;
		r->dead = p->next;
		preview_free(p);
	}
}

static void
preview_line(void *arg, const char *job, const char *line)
{
	struct preview *p = arg;

	(void)job;
	json_array_append_new(p->lines, json_string(line));
}

static void
preview_done(void *arg, int result)
{
	struct preview *p = arg;
	json_t *resp;

	if (result == 0 || result == XTS_EHELD)
		resp = json_pack("{s:b,s:O,s:s}", "ok", 1, "plan", p->lines, "note",
				 result == XTS_EHELD ? "deletions would be held by the threshold" : "");
	else
		resp = json_pack("{s:b,s:s}", "ok", 0, "error", xts_strerror(result));
	p->reply(p->arg, resp);
	for (struct preview **pp = &p->r->live; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = p->r->dead;
	p->r->dead = p;
	uv_timer_start(&p->r->reaper, reaper_cb, 0, 0);
}

static int
preview_start(struct rctx *r, const char *job, void (*reply)(void *, json_t *), void *arg)
{
	struct xts_engine_opts o;
	struct preview *p = xts_calloc(1, sizeof(*p));
	int ret;

	if (p == NULL)
		return XTS_ENOMEM;
	p->r = r;
	p->reply = reply;
	p->arg = arg;
	p->lines = json_array();
	ret = p->lines == NULL ? XTS_ENOMEM : snapshot_open(r->state_dir, &p->dir, &p->store);
	if (ret == 0) {
		memset(&o, 0, sizeof(o));
		o.ev = r->ev;
		o.gctx = r->gctx;
		o.store = p->store;
		o.flags = XTS_ENGINE_DRY_RUN;
		/* the live cycle's ops in flight are in the snapshot too */
		if (r->eng != NULL && xts_engine_running(r->eng, job) == 1)
			o.flags |= XTS_ENGINE_LIVE_CYCLE;
		o.plan_line = preview_line;
		o.plan_arg = p;
		ret = xts_engine_new(&o, &p->eng);
	}
	if (ret == 0)
		ret = xts_engine_configure(p->eng, r->cfg);
	if (ret != 0) {
		preview_free(p);
		return ret;
	}
	/* on the live list first: the cycle may end (preview_done) at once */
	p->next = r->live;
	r->live = p;
	ret = xts_engine_cycle_start(p->eng, job, preview_done, p);
	if (ret != 0) {
		r->live = p->next;
		preview_free(p);
	}
	return ret;
}

static int
r_command(void *ctx, const char *cmd, json_t *req, void (*reply)(void *arg, json_t *resp), void *arg)
{
	struct rctx *r = ctx;
	const char *job = json_string_value(json_object_get(req, "job"));
	long long n = 0;
	int ret;

	if (r->eng == NULL || job == NULL)
		return XTS_EINVAL;
	if (strcmp(cmd, "restart") == 0) {
		ret = xts_engine_restart(r->eng, job);
		if (ret == 0) {
			loaded_drop(r, job); /* as the engine's counts, they are zeroed */
			reply(arg, json_pack("{s:b,s:s,s:s}", "ok", 1, "job", job, "result",
					     "restarted: the next cycle is an initial cycle"));
		}
		return ret;
	}
	if (strcmp(cmd, "allow-deletions") == 0) {
		char msg[96];
		ret = xts_engine_allow_deletions(r->eng, job, &n);
		snprintf(msg, sizeof(msg), "%lld held deletions released", n);
		if (ret == 0)
			reply(arg, json_pack("{s:b,s:s,s:s}", "ok", 1, "job", job, "result", msg));
		return ret;
	}
	if (strcmp(cmd, "resume") == 0) {
		ret = xts_engine_resume(r->eng, job);
		if (ret == 0)
			reply(arg, json_pack("{s:b,s:s,s:s}", "ok", 1, "job", job, "result", "resumed"));
		return ret;
	}
	if (strcmp(cmd, "preview") == 0)
		return preview_start(r, job, reply, arg);
	if (strcmp(cmd, "provision") == 0) {
		const char *user = json_string_value(json_object_get(req, "user"));
		if (user == NULL)
			return XTS_EINVAL;
		return xts_engine_provision(r->eng, job, user, reply, arg);
	}
	return XTS_EINVAL;
}

/* The context holds the reaper handle, so it is freed only once libuv has
 * finished closing that handle (freeing it earlier let a later loop pass
 * read freed memory: the SIGABRT in uv__finish_close under load). */
static void
r_closed(uv_handle_t *h)
{
	xts_free(h->data);
}

static void
timer_closed(uv_handle_t *h)
{
	xts_free(h);
}

static void
r_destroy(void *ctx)
{
	struct rctx *r = ctx;

	reaper_cb(&r->reaper);
	/* a preview stopped by the shutdown: its engine, and its copy of the
	 * store (the source users' attributes) in the temp dir, go too */
	while (r->live != NULL) {
		struct preview *p = r->live;

		r->live = p->next;
		/* its request is answered (the control server releases the
		 * connection it holds for it) */
		p->reply(p->arg, json_pack("{s:b,s:s}", "ok", 0, "error", "xtsyncd is stopping"));
		preview_free(p);
	}
	while (r->loaded != NULL)
		loaded_drop(r, r->loaded->job);
	if (r->flushing != NULL) {
		r->flushing->r = NULL;
		if (!(r->flags & XTS_RUNNER_ONCE))
			__atomic_store_n(&r->flushing->stop, 1, __ATOMIC_RELEASE);
	}
	if (r->outbox_timer != NULL) {
		uv_timer_stop(r->outbox_timer);
		uv_close((uv_handle_t *)r->outbox_timer, timer_closed);
		r->outbox_timer = NULL;
	}
	xts_engine_free(r->eng);
	xts_graph_ctx_free(r->gctx);
	xts_store_close(r->store);
	snapshot_remove(r->snapshot_dir);
	xts_provlog_close(r->provlog);
	xts_uvglue_free(r->ev);
	smtp_clear(r);
	xts_free(r->state_dir);
	r->state_dir = NULL;
	uv_close((uv_handle_t *)&r->reaper, r_closed);
}

int
xts_runner_engine_init(uv_loop_t *loop, struct xts_job_runner *out)
{
	struct rctx *r = xts_calloc(1, sizeof(*r));
	int ret;

	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return XTS_ENOMEM;
	r->loop = loop;
	ret = xts_uvglue_new(loop, &r->ev);
	if (ret == 0)
		ret = xts_graph_ctx_new(r->ev, NULL, &r->gctx);
	if (ret != 0) {
		xts_uvglue_free(r->ev);
		xts_free(r);
		return ret;
	}
	uv_timer_init(loop, &r->reaper);
	r->reaper.data = r;
	r->outbox_timer = xts_calloc(1, sizeof(*r->outbox_timer));
	if (r->outbox_timer != NULL) {
		uv_timer_init(loop, r->outbox_timer);
		r->outbox_timer->data = r;
	}
	out->ctx = r;
	out->configure = r_configure;
	out->start_cycle = r_start;
	out->cancel = r_cancel;
	out->abandon = r_abandon;
	out->counts = r_counts;
	out->last_cycle = r_last_cycle;
	out->quarantined = r_quarantined;
	out->deletions_held = r_held;
	out->quarantine_info = r_qinfo;
	out->paused = r_paused;
	out->set_paused = r_set_paused;
	out->command = r_command;
	out->destroy = r_destroy;
	return 0;
}
