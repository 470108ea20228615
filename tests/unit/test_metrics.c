/* SPDX-License-Identifier: MIT */
/* Tests of the metrics_file writer (daemon/metrics.c): the exact exposition
 * text for a status, label escaping, fields that are null or missing, and the
 * file replacement: mode 0644, no temporary file left behind after success,
 * a missing directory, a rename that fails, or a failed allocation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "../../daemon/metrics.h"
#include "tmpdir.h"

/* One idle job after a successful cycle, as xts_jobs_status() gives it. */
static const char STATUS_IDLE[] =
	"[{\"name\": \"a\", \"state\": \"idle\", \"enabled\": true, \"source\": \"s\", \"target\": \"d\","
	" \"interval_s\": 2400, \"last_cycle_start\": \"2024-05-01T10:00:00Z\","
	" \"last_cycle_end\": \"2024-05-01T10:00:42Z\", \"next_cycle\": \"2024-05-01T10:40:00Z\","
	" \"last_result\": \"success\", \"last_error\": null, \"cycles\": 3, \"failed_cycles\": 1,"
	" \"counts\": {\"in_scope\": 30, \"created\": 5, \"updated\": 2, \"deleted\": 0, \"disabled\": 1,"
	" \"failed\": 0, \"skipped\": 4}}]";

static const char TEXT_IDLE[] =
	"# HELP xtsync_job_state 1 for the job's current state, 0 for the other states.\n"
	"# TYPE xtsync_job_state gauge\n"
	"xtsync_job_state{job=\"a\",state=\"idle\"} 1\n"
	"xtsync_job_state{job=\"a\",state=\"running\"} 0\n"
	"xtsync_job_state{job=\"a\",state=\"paused\"} 0\n"
	"xtsync_job_state{job=\"a\",state=\"quarantined\"} 0\n"
	"xtsync_job_state{job=\"a\",state=\"deletions-held\"} 0\n"
	"# HELP xtsync_job_enabled 1 when the job is enabled in the configuration.\n"
	"# TYPE xtsync_job_enabled gauge\n"
	"xtsync_job_enabled{job=\"a\"} 1\n"
	"# HELP xtsync_last_cycle_start_timestamp_seconds When the job's last (or running) cycle started, "
	"seconds since the epoch.\n"
	"# TYPE xtsync_last_cycle_start_timestamp_seconds gauge\n"
	"xtsync_last_cycle_start_timestamp_seconds{job=\"a\"} 1714557600\n"
	"# HELP xtsync_last_cycle_end_timestamp_seconds When the job's last cycle ended, seconds since the "
	"epoch; absent while a cycle runs.\n"
	"# TYPE xtsync_last_cycle_end_timestamp_seconds gauge\n"
	"xtsync_last_cycle_end_timestamp_seconds{job=\"a\"} 1714557642\n"
	"# HELP xtsync_last_cycle_success 1 when the job's last cycle succeeded; 0 when it failed, completed "
	"with failures, was held or canceled.\n"
	"# TYPE xtsync_last_cycle_success gauge\n"
	"xtsync_last_cycle_success{job=\"a\"} 1\n"
	"# HELP xtsync_next_cycle_timestamp_seconds When the job's next cycle is due, seconds since the "
	"epoch; absent when none is scheduled.\n"
	"# TYPE xtsync_next_cycle_timestamp_seconds gauge\n"
	"xtsync_next_cycle_timestamp_seconds{job=\"a\"} 1714560000\n"
	"# HELP xtsync_users_in_scope Users in the job's scope in its last (or running) cycle.\n"
	"# TYPE xtsync_users_in_scope gauge\n"
	"xtsync_users_in_scope{job=\"a\"} 30\n"
	"# HELP xtsync_last_cycle_users Users by action in the job's last (or running) cycle.\n"
	"# TYPE xtsync_last_cycle_users gauge\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"created\"} 5\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"updated\"} 2\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"disabled\"} 1\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"deleted\"} 0\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"failed\"} 0\n"
	"xtsync_last_cycle_users{job=\"a\",action=\"skipped\"} 4\n"
	"# HELP xtsync_cycles_total Cycles the job finished since the daemon started.\n"
	"# TYPE xtsync_cycles_total counter\n"
	"xtsync_cycles_total{job=\"a\"} 3\n"
	"# HELP xtsync_failed_cycles_total Cycles of the job that failed or completed with failures since the "
	"daemon started.\n"
	"# TYPE xtsync_failed_cycles_total counter\n"
	"xtsync_failed_cycles_total{job=\"a\"} 1\n";

struct fx {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (xts_test_tmpdir(f->dir, sizeof(f->dir), "metrics") != 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/xtsync.prom", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int ret = xts_test_rmtree(f->dir);

	free(f);
	return ret;
}

/* Names in dir (not . and ..), joined by '|' into out. Returns the count. */
static int
list_dir(const char *dir, char *out, size_t sz)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	out[0] = '\0';
	assert_non_null(d);
	for (de = readdir(d); de != NULL; de = readdir(d)) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n++ > 0)
			strncat(out, "|", sz - strlen(out) - 1);
		strncat(out, de->d_name, sz - strlen(out) - 1);
	}
	closedir(d);
	return n;
}

static json_t *
parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (j == NULL)
		fail_msg("bad test JSON: %s", e.text);
	return j;
}

/* The file's contents (malloc'd, NUL-terminated), or NULL. */
static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	size_t n;

	if (fp == NULL)
		return NULL;
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
test_format_exact(void **state)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_t *st = parse(STATUS_IDLE), *wrapped;

	(void)state;
	assert_int_equal(xts_metrics_format(st, &b), 0);
	assert_string_equal(xts_buf_str(&b), TEXT_IDLE);
	/* the control socket's {"jobs": [...]} gives the same text */
	wrapped = json_pack("{s:O}", "jobs", st);
	assert_non_null(wrapped);
	xts_buf_reset(&b);
	assert_int_equal(xts_metrics_format(wrapped, &b), 0);
	assert_string_equal(xts_buf_str(&b), TEXT_IDLE);
	json_decref(wrapped);
	json_decref(st);
	xts_buf_free(&b);
}

/* A running job: nulls give no sample; a quarantined one has its retry;
 * a job name with \, " and a newline is escaped in the label. */
static void
test_format_nulls_and_escaping(void **state)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_t *st = parse("[{\"name\": \"we\\\"ird\\\\na\\nme\", \"state\": \"running\", \"enabled\": true,"
			   " \"last_cycle_start\": \"2024-05-01T10:00:00Z\", \"last_cycle_end\": null,"
			   " \"next_cycle\": null, \"last_result\": null, \"cycles\": 0, \"failed_cycles\": 0,"
			   " \"counts\": null, \"progress\": {\"done\": 1, \"total\": 9}},"
			   " {\"name\": \"q\", \"state\": \"quarantined\", \"enabled\": false,"
			   " \"last_cycle_start\": \"2024-05-01T10:00:00Z\","
			   " \"last_cycle_end\": \"2024-05-01T10:00:42Z\", \"next_cycle\": \"2024-05-01T16:00:00Z\","
			   " \"next_retry\": \"2024-05-01T16:00:00Z\", \"quarantine_reason\": \"AADSTS7000215\","
			   " \"last_result\": \"failed\", \"cycles\": 2, \"failed_cycles\": 2, \"counts\": null},"
			   " {\"state\": \"idle\", \"cycles\": 7},"
			   " {\"name\": \"t\", \"last_cycle_end\": \"yesterday\"}]");
	const char *text;

	(void)state;
	assert_int_equal(xts_metrics_format(st, &b), 0);
	text = xts_buf_str(&b);
	/* escaped: \ as \\, " as \", newline as \n */
	assert_non_null(strstr(text, "xtsync_job_state{job=\"we\\\"ird\\\\na\\nme\",state=\"running\"} 1\n"));
	assert_non_null(strstr(text, "xtsync_cycles_total{job=\"we\\\"ird\\\\na\\nme\"} 0\n"));
	assert_null(strchr(text, '\r'));
	/* the running job has no end, next, success or counts */
	assert_null(strstr(text, "xtsync_last_cycle_end_timestamp_seconds{job=\"we"));
	assert_null(strstr(text, "xtsync_next_cycle_timestamp_seconds{job=\"we"));
	assert_null(strstr(text, "xtsync_last_cycle_success{job=\"we"));
	assert_null(strstr(text, "xtsync_last_cycle_users"));
	assert_null(strstr(text, "xtsync_users_in_scope"));
	assert_null(strstr(text, "progress"));
	assert_non_null(strstr(text, "xtsync_job_state{job=\"q\",state=\"quarantined\"} 1\n"));
	assert_non_null(strstr(text, "xtsync_job_state{job=\"q\",state=\"idle\"} 0\n"));
	assert_non_null(strstr(text, "xtsync_job_enabled{job=\"q\"} 0\n"));
	assert_non_null(strstr(text, "xtsync_last_cycle_success{job=\"q\"} 0\n"));
	assert_non_null(strstr(text, "xtsync_quarantine_next_retry_timestamp_seconds{job=\"q\"} 1714579200\n"));
	assert_non_null(strstr(text, "xtsync_failed_cycles_total{job=\"q\"} 2\n"));
	/* nameless job skipped; an unparsable time gives no sample */
	assert_null(strstr(text, "} 7\n"));
	assert_null(strstr(text, "{job=\"t\"}"));
	/* families without a sample have no HELP/TYPE either */
	assert_null(strstr(text, "# TYPE xtsync_last_cycle_users"));
	/* one HELP and one TYPE per family, before its samples */
	assert_true(strstr(text, "# TYPE xtsync_job_state gauge\n") < strstr(text, "xtsync_job_state{"));
	assert_ptr_equal(strstr(text, "# TYPE xtsync_job_state gauge\n"),
			 strstr(text, "# TYPE xtsync_job_state"));
	assert_null(strstr(strstr(text, "# TYPE xtsync_job_state gauge\n") + 1, "# TYPE xtsync_job_state "));
	json_decref(st);

	/* no jobs: an empty text; not a status: XTS_EINVAL */
	xts_buf_reset(&b);
	st = json_array();
	assert_int_equal(xts_metrics_format(st, &b), 0);
	assert_int_equal(b.len, 0);
	json_decref(st);
	st = json_string("x");
	assert_int_equal(xts_metrics_format(st, &b), XTS_EINVAL);
	json_decref(st);
	xts_buf_free(&b);
}

static void
test_write_replaces(void **state)
{
	struct fx *f = *state;
	json_t *st = parse(STATUS_IDLE);
	char names[256], *text;
	struct stat sb;

	assert_int_equal(xts_metrics_write(f->path, st), 0);
	text = slurp(f->path);
	assert_non_null(text);
	assert_string_equal(text, TEXT_IDLE);
	free(text);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	assert_int_equal(list_dir(f->dir, names, sizeof(names)), 1);
	assert_string_equal(names, "xtsync.prom");

	/* again, with another status: replaced, still one file */
	json_array_clear(st);
	assert_int_equal(xts_metrics_write(f->path, st), 0);
	text = slurp(f->path);
	assert_non_null(text);
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(list_dir(f->dir, names, sizeof(names)), 1);
	json_decref(st);
}

static void
test_write_failures(void **state)
{
	struct fx *f = *state;
	json_t *st = parse(STATUS_IDLE), *bad;
	char p[200], names[256];

	/* directory missing: no file, no temp */
	snprintf(p, sizeof(p), "%s/missing/xtsync.prom", f->dir);
	assert_int_equal(xts_metrics_write(p, st), XTS_ENOENT);
	assert_int_equal(list_dir(f->dir, names, sizeof(names)), 0);

	/* the target is a directory: the temp file was written, the rename
	 * fails, and the temp file is removed */
	snprintf(p, sizeof(p), "%s/sub", f->dir);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_true(xts_metrics_write(p, st) < 0);
	assert_int_equal(list_dir(f->dir, names, sizeof(names)), 1);
	assert_string_equal(names, "sub");

	/* not a status: nothing written, the old file kept */
	assert_int_equal(xts_metrics_write(f->path, st), 0);
	bad = json_integer(1);
	assert_int_equal(xts_metrics_write(f->path, bad), XTS_EINVAL);
	json_decref(bad);
	assert_int_equal(list_dir(f->dir, names, sizeof(names)), 2);
	json_decref(st);
}

/* Every allocation failing in turn: XTS_ENOMEM or success, never a temp
 * file left, and the file is always either the old text or the new one. */
static void
test_alloc_failure(void **state)
{
	struct fx *f = *state;
	json_t *st = parse(STATUS_IDLE), *empty = json_array();
	char names[256], *text;
	unsigned long n;
	int ret, fails = 0;

	assert_non_null(empty);
	assert_int_equal(xts_metrics_write(f->path, empty), 0);
	for (n = 1; n < 200; n++) {
		xts_mem_fail_after(n, 1);
		ret = xts_metrics_write(f->path, st);
		xts_mem_fail_after(0, 0);
		assert_true(ret == 0 || ret == XTS_ENOMEM);
		assert_int_equal(list_dir(f->dir, names, sizeof(names)), 1);
		text = slurp(f->path);
		assert_non_null(text);
		assert_string_equal(text, ret == 0 ? TEXT_IDLE : "");
		free(text);
		if (ret == 0)
			break;
		fails++;
	}
	assert_true(fails > 0);
	assert_true(n < 200);
	json_decref(st);
	json_decref(empty);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_exact),
		cmocka_unit_test(test_format_nulls_and_escaping),
		cmocka_unit_test_setup_teardown(test_write_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
