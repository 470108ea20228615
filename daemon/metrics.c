/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition (format 0.0.4) of the job table's status for the
 * textfile collector: one family at a time (HELP, TYPE, then a sample per
 * job), all labelled job="NAME". It reports only what the status JSON holds;
 * it does not look at the engine or the store, and does not serve HTTP. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"

/* How a family's samples come out of one job object. */
enum kind {
	K_STATE,  /* one-hot over states[] from "state" */
	K_BOOL,   /* true/false field as 1/0 */
	K_TIME,   /* ISO 8601 UTC string as seconds since the epoch */
	K_RESULT, /* "last_result": 1 for "success", 0 for anything else */
	K_INT,    /* integer field */
	K_COUNT,  /* integer field of "counts" */
	K_USERS,  /* every actions[] field of "counts", labelled action="..." */
};

struct family {
	const char *name, *type, *help;
	enum kind kind;
	const char *key;
};

static const struct family families[] = {
	{ "xtsync_job_state", "gauge",
	  "1 for the job's current state, 0 for the other states.", K_STATE, "state" },
	{ "xtsync_job_enabled", "gauge", "1 when the job is enabled in the configuration.", K_BOOL, "enabled" },
	{ "xtsync_last_cycle_start_timestamp_seconds", "gauge",
	  "When the job's last (or running) cycle started, seconds since the epoch.", K_TIME,
	  "last_cycle_start" },
	{ "xtsync_last_cycle_end_timestamp_seconds", "gauge",
	  "When the job's last cycle ended, seconds since the epoch; absent while a cycle runs.", K_TIME,
	  "last_cycle_end" },
	{ "xtsync_last_cycle_success", "gauge",
	  "1 when the job's last cycle succeeded; 0 when it failed, completed with failures, was held or canceled.",
	  K_RESULT, "last_result" },
	{ "xtsync_next_cycle_timestamp_seconds", "gauge",
	  "When the job's next cycle is due, seconds since the epoch; absent when none is scheduled.", K_TIME,
	  "next_cycle" },
	{ "xtsync_quarantine_next_retry_timestamp_seconds", "gauge",
	  "When a quarantined job is retried automatically, seconds since the epoch.", K_TIME, "next_retry" },
	{ "xtsync_users_in_scope", "gauge", "Users in the job's scope in its last (or running) cycle.", K_COUNT,
	  "in_scope" },
	{ "xtsync_last_cycle_users", "gauge",
	  "Users by action in the job's last (or running) cycle.", K_USERS, NULL },
	{ "xtsync_cycles_total", "counter", "Cycles the job finished since the daemon started.", K_INT,
	  "cycles" },
	{ "xtsync_failed_cycles_total", "counter",
	  "Cycles of the job that failed or completed with failures since the daemon started.", K_INT,
	  "failed_cycles" },
};

static const char *const states[] = { "idle", "running", "paused", "quarantined", "deletions-held" };
static const char *const actions[] = { "created", "updated", "disabled", "deleted", "failed", "skipped" };

/* The output buffer and its first error: later writes are skipped. */
struct out {
	struct xts_buf *b;
	int ret;
	bool header; /* the current family's HELP and TYPE are written */
};

static void
put(struct out *o, const char *s)
{
	if (o->ret == 0)
		o->ret = xts_buf_puts(o->b, s);
}

/* A label value with \, " and newline escaped as the format requires. */
static void
put_label_value(struct out *o, const char *v)
{
	const char *p;

	for (p = v; *p != '\0' && o->ret == 0; p++) {
		if (*p == '\\')
			o->ret = xts_buf_puts(o->b, "\\\\");
		else if (*p == '"')
			o->ret = xts_buf_puts(o->b, "\\\"");
		else if (*p == '\n')
			o->ret = xts_buf_puts(o->b, "\\n");
		else
			o->ret = xts_buf_putc(o->b, *p);
	}
}

/* One sample; the family's header first if this is its first sample, so a
 * family without samples is left out (the collector rejects empty ones in
 * some versions, and they say nothing). lname NULL: only the job label. */
static void
sample(struct out *o, const struct family *f, const char *job, const char *lname, const char *lval,
       long long v)
{
	if (!o->header) {
		o->header = true;
		if (o->ret == 0)
			o->ret = xts_buf_printf(o->b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
						f->type);
	}
	put(o, f->name);
	put(o, "{job=\"");
	put_label_value(o, job);
	put(o, "\"");
	if (lname != NULL) {
		put(o, ",");
		put(o, lname);
		put(o, "=\"");
		put_label_value(o, lval);
		put(o, "\"");
	}
	if (o->ret == 0)
		o->ret = xts_buf_printf(o->b, "} %lld\n", v);
}

/* "2024-05-01T10:00:00Z" (jobs.c's iso_time) as seconds; -1 when not that. */
static long long
iso_seconds(const char *s)
{
	struct tm tm;
	int n = -1;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec, &n) != 6 || n < 0 || s[n] != '\0')
		return -1;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59 || tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	return t == (time_t)-1 ? -1 : (long long)t;
}

static void
job_samples(struct out *o, const struct family *f, const json_t *jo)
{
	const char *job = json_string_value(json_object_get(jo, "name"));
	const json_t *v = f->key != NULL ? json_object_get(jo, f->key) : NULL;
	const json_t *counts = json_object_get(jo, "counts");
	const char *s;
	long long secs;
	size_t i;

	if (job == NULL)
		return;
	switch (f->kind) {
	case K_STATE:
		s = json_string_value(v);
		if (s == NULL)
			return;
		for (i = 0; i < sizeof(states) / sizeof(states[0]); i++)
			sample(o, f, job, "state", states[i], strcmp(s, states[i]) == 0);
		break;
	case K_BOOL:
		if (json_is_boolean(v))
			sample(o, f, job, NULL, NULL, json_is_true(v));
		break;
	case K_TIME:
		s = json_string_value(v);
		secs = s != NULL ? iso_seconds(s) : -1;
		if (secs >= 0)
			sample(o, f, job, NULL, NULL, secs);
		break;
	case K_RESULT:
		s = json_string_value(v);
		if (s != NULL)
			sample(o, f, job, NULL, NULL, strcmp(s, "success") == 0);
		break;
	case K_INT:
		if (json_is_integer(v))
			sample(o, f, job, NULL, NULL, (long long)json_integer_value(v));
		break;
	case K_COUNT:
		v = json_object_get(counts, f->key);
		if (json_is_integer(v))
			sample(o, f, job, NULL, NULL, (long long)json_integer_value(v));
		break;
	case K_USERS:
		for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
			v = json_object_get(counts, actions[i]);
			if (json_is_integer(v))
				sample(o, f, job, "action", actions[i], (long long)json_integer_value(v));
		}
		break;
	}
}

int
xts_metrics_format(const json_t *status, struct xts_buf *b)
{
	struct out o = { b, 0, false };
	const json_t *jobs = status;
	size_t f, i;

	if (json_is_object(status))
		jobs = json_object_get(status, "jobs");
	if (!json_is_array(jobs))
		return XTS_EINVAL;
	for (f = 0; f < sizeof(families) / sizeof(families[0]) && o.ret == 0; f++) {
		o.header = false;
		for (i = 0; i < json_array_size(jobs); i++)
			job_samples(&o, &families[f], json_array_get(jobs, i));
	}
	return o.ret;
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* errno after a failed call; EIO in case a call failed without setting it,
 * so a failure is never reported as success. */
static int
errno_or_eio(void)
{
	return errno != 0 ? errno : EIO;
}

int
xts_metrics_write(const char *path, const json_t *status)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *tmp = NULL;
	const char *why;
	size_t n;
	int fd = -1, ret, e = 0;

	ret = xts_metrics_format(status, &b);
	if (ret != 0)
		goto done;
	n = strlen(path) + sizeof(".XXXXXX");
	tmp = xts_malloc(n);
	if (tmp == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	/* Beside the target so rename(2) replaces it in one step; the suffix
	 * keeps it out of the collector's *.prom glob meanwhile. */
	snprintf(tmp, n, "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		e = errno_or_eio();
		tmp[0] = '\0'; /* nothing to remove */
		goto done;
	}
	/* mkstemp makes it 0600; the collector may run as another user. */
	if (fchmod(fd, 0644) != 0 || write_all(fd, xts_buf_str(&b), b.len) != 0) {
		e = errno_or_eio();
		goto done;
	}
	if (close(fd) != 0) {
		fd = -1;
		e = errno_or_eio();
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		e = errno_or_eio();
		goto done;
	}
	tmp[0] = '\0'; /* renamed: it is the target now */
done:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL && tmp[0] != '\0')
		unlink(tmp);
	xts_free(tmp);
	xts_buf_free(&b);
	if (e != 0)
		ret = xts_err_from_errno(e);
	if (ret != 0) {
		why = e != 0 ? strerror(e) : xts_strerror(ret);
		xts_warn("metrics file %s not written: %s", path, why);
	}
	return ret;
}

int
xts_metrics_remove(const char *path)
{
	int e;

	if (path == NULL || path[0] == '\0')
		return XTS_EINVAL;
	if (unlink(path) == 0)
		return 0;
	e = errno_or_eio();
	if (e == ENOENT)
		return XTS_ENOENT;
	xts_warn("metrics file %s not removed: %s", path, strerror(e));
	return xts_err_from_errno(e);
}
