/* SPDX-License-Identifier: MIT */
/* Unit tests for the provisioning log writer on real files: field shapes
 * (provisioningObjectSummary), redaction, one line per write, copytruncate
 * and rename rotation with reopen, and concurrent writers never interleaving. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "provlog.h"

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
	snprintf(f->dir, sizeof(f->dir), "/tmp/xts-provlog-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/provisioning.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char p[160];

	unlink(f->path);
	snprintf(p, sizeof(p), "%s.1", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Every line of the file parsed; returns the count, lines in out[] (new refs). */
static int
read_lines(const char *path, json_t **out, int max)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int count = 0;

	if (fp == NULL)
		return -1;
	while ((n = getline(&line, &cap, fp)) > 0) {
		json_error_t e;
		json_t *j;

		assert_true(line[n - 1] == '\n');
		j = json_loadb(line, (size_t)n, 0, &e);
		if (j == NULL) {
			fprintf(stderr, "bad line: %s (%s)\n", line, e.text);
			count = -2;
			break;
		}
		if (count < max)
			out[count] = j;
		else
			json_decref(j);
		count++;
	}
	free(line);
	fclose(fp);
	return count;
}

static void
fill(struct xts_prov_entry *e)
{
	xts_prov_entry_init(e);
	e->activity_ms = 1714566896789LL; /* 2024-05-01T12:34:56.789Z */
	e->cycle_id = 42;
	e->job_id = "contoso-to-fabrikam";
	e->action = XTS_PROV_UPDATE;
	e->status = XTS_PROV_FAILURE;
	e->error_code = "AzureActiveDirectoryForbidden";
	e->error_reason = "Insufficient privileges to complete the operation.";
	e->source_id = "11111111-aaaa-4aaa-8aaa-111111111111";
	e->source_display_name = "Adele Vance";
	e->source_upn = "adele@contoso.example";
	e->source_tenant_id = "tenant-a";
	e->target_id = "22222222-bbbb-4bbb-8bbb-222222222222";
	e->target_tenant_id = "tenant-b";
}

static void
test_entry_fields(void **state)
{
	struct fx *f = *state;
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e;
	json_t *lines[4] = { 0 }, *o, *steps, *props;
	json_t *oldv = json_pack("[s,s]", "a@x", "b@x");
	json_t *newv = json_pack("[s]", "a@x");
	json_t *details = json_pack("{s:s}", "matchedBy", "mail");
	json_t *phone = json_string("+1 555");
	const char *change;

	fill(&e);
	assert_int_equal(xts_prov_entry_add_prop(&e, "department", "Sales", "Research", 0), 0);
	assert_int_equal(xts_prov_entry_add_prop(&e, "employeeId", "S3CR3T-OLD", "S3CR3T-NEW", 1), 0);
	assert_int_equal(xts_prov_entry_add_prop_json(&e, "otherMails", oldv, newv, 0), 0);
	assert_int_equal(xts_prov_entry_add_prop_json(&e, "mobilePhone", phone, NULL, 1), 0);
	assert_int_equal(xts_prov_entry_add_step(&e, "Import", XTS_STEP_IMPORT, XTS_PROV_SUCCESS,
	    "Retrieved the user from the source", NULL), 0);
	assert_int_equal(xts_prov_entry_add_step(&e, "Match", XTS_STEP_MATCHING, XTS_PROV_SUCCESS,
	    "Matched an existing user", details), 0);
	assert_int_equal(xts_prov_entry_add_step(&e, "Export", XTS_STEP_EXPORT, XTS_PROV_FAILURE,
	    "PATCH failed", NULL), 0);
	assert_int_equal(xts_prov_entry_add_step(&e, "x", 99, XTS_PROV_SUCCESS, NULL, NULL), XTS_EINVAL);

	assert_int_equal(xts_provlog_open(f->path, &pl), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	xts_prov_entry_clear(&e);
	xts_provlog_close(pl);

	assert_int_equal(read_lines(f->path, lines, 4), 1);
	o = lines[0];
	assert_string_equal(json_string_value(json_object_get(o, "activityDateTime")),
	    "2024-05-01T12:34:56.789Z");
	assert_string_equal(json_string_value(json_object_get(o, "cycleId")), "42");
	assert_string_equal(json_string_value(json_object_get(o, "jobId")), "contoso-to-fabrikam");
	assert_string_equal(json_string_value(json_object_get(o, "action")), "Update");
	change = json_string_value(json_object_get(o, "changeId"));
	assert_non_null(change);
	assert_int_equal(strlen(change), 36);
	assert_int_equal(change[14], '4'); /* version 4 GUID */
	{
		json_t *si = json_object_get(o, "provisioningStatusInfo");
		json_t *ei = json_object_get(si, "errorInformation");

		assert_string_equal(json_string_value(json_object_get(si, "status")), "failure");
		assert_string_equal(json_string_value(json_object_get(ei, "errorCode")),
		    "AzureActiveDirectoryForbidden");
		assert_string_equal(json_string_value(json_object_get(ei, "reason")),
		    "Insufficient privileges to complete the operation.");
	}
	{
		json_t *s = json_object_get(o, "sourceIdentity"), *t = json_object_get(o, "targetIdentity");

		assert_string_equal(json_string_value(json_object_get(s, "id")),
		    "11111111-aaaa-4aaa-8aaa-111111111111");
		assert_string_equal(json_string_value(json_object_get(s, "displayName")), "Adele Vance");
		assert_string_equal(json_string_value(json_object_get(s, "userPrincipalName")),
		    "adele@contoso.example");
		assert_string_equal(json_string_value(json_object_get(s, "identityType")), "User");
		assert_string_equal(json_string_value(json_object_get(t, "id")),
		    "22222222-bbbb-4bbb-8bbb-222222222222");
		assert_string_equal(json_string_value(json_object_get(json_object_get(t, "details"),
		    "tenantId")), "tenant-b");
		assert_string_equal(json_string_value(json_object_get(json_object_get(o, "targetSystem"),
		    "id")), "tenant-b");
	}
	props = json_object_get(o, "modifiedProperties");
	assert_int_equal(json_array_size(props), 4);
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "displayName")),
	    "department");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "oldValue")),
	    "Sales");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "newValue")),
	    "Research");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 1), "oldValue")),
	    "[Redact]");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 1), "newValue")),
	    "[Redact]");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 2), "oldValue")),
	    "[\"a@x\",\"b@x\"]");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 3), "newValue")),
	    "[Redact]");
	steps = json_object_get(o, "provisioningSteps");
	assert_int_equal(json_array_size(steps), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 1),
	    "provisioningStepType")), "matching");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(steps, 1),
	    "details"), "matchedBy")), "mail");
	assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 2), "status")),
	    "failure");
	json_decref(o);

	/* The redacted values never reached the file. */
	{
		FILE *fp = fopen(f->path, "r");
		char buf[8192];
		size_t n;

		assert_non_null(fp);
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		buf[n] = '\0';
		fclose(fp);
		assert_null(strstr(buf, "S3CR3T"));
		assert_null(strstr(buf, "+1 555"));
	}
	json_decref(oldv);
	json_decref(newv);
	json_decref(details);
	json_decref(phone);
}

static void
test_names_and_invalid(void **state)
{
	struct fx *f = *state;
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e;
	char ts[40];

	(void)f;
	assert_string_equal(xts_prov_action_name(XTS_PROV_STAGED_DELETE), "StagedDelete");
	assert_int_equal(xts_prov_action_parse("stageddelete"), XTS_PROV_STAGED_DELETE);
	assert_int_equal(xts_prov_action_parse("Create"), XTS_PROV_CREATE);
	assert_int_equal(xts_prov_action_parse("bogus"), -1);
	assert_int_equal(xts_prov_status_parse("Warning"), XTS_PROV_WARNING);
	assert_string_equal(xts_prov_step_type_name(XTS_STEP_REFERENCE_RESOLUTION), "referenceResolution");
	xts_provlog_time(0, ts, sizeof(ts));
	assert_string_equal(ts, "1970-01-01T00:00:00.000Z");
	xts_provlog_time(1704067199999LL, ts, sizeof(ts));
	assert_string_equal(ts, "2023-12-31T23:59:59.999Z");

	assert_int_equal(xts_provlog_open(f->path, &pl), 0);
	xts_prov_entry_init(&e);
	e.action = 77;
	assert_int_equal(xts_provlog_write(pl, &e), XTS_EINVAL);
	xts_provlog_close(pl);
	assert_int_equal(xts_provlog_open("/nonexistent-dir/x.log", &pl), XTS_ENOENT);
	assert_null(pl);
}

static void
test_rotation(void **state)
{
	struct fx *f = *state;
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e;
	json_t *lines[8] = { 0 };
	char rotated[160];
	struct stat sb;
	int i;

	fill(&e);
	assert_int_equal(xts_provlog_open(f->path, &pl), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	/* copytruncate: the file is emptied under the writer; O_APPEND writes
	 * land at the new end, with no hole of NULs before them. */
	assert_int_equal(truncate(f->path, 0), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(read_lines(f->path, lines, 8), 1);
	json_decref(lines[0]);

	/* rename + reopen (SIGHUP) */
	snprintf(rotated, sizeof(rotated), "%s.1", f->path);
	assert_int_equal(rename(f->path, rotated), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0); /* still goes to the renamed file */
	assert_int_equal(xts_provlog_reopen(pl), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(read_lines(rotated, lines, 8), 2);
	for (i = 0; i < 2; i++)
		json_decref(lines[i]);
	assert_int_equal(read_lines(f->path, lines, 8), 1);
	json_decref(lines[0]);
	xts_provlog_close(pl);
	xts_prov_entry_clear(&e);
}

static void
test_concurrent_writers(void **state)
{
	struct fx *f = *state;
	pid_t pids[4];
	int i, status, n;

	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			struct xts_provlog *pl = NULL;
			struct xts_prov_entry e;
			char big[2048];
			int k;

			memset(big, 'a' + i, sizeof(big) - 1);
			big[sizeof(big) - 1] = '\0';
			if (xts_provlog_open(f->path, &pl) != 0)
				_exit(1);
			for (k = 0; k < 300; k++) {
				fill(&e);
				if (xts_prov_entry_add_prop(&e, "description", big, big, 0) != 0 ||
				    xts_provlog_write(pl, &e) != 0)
					_exit(2);
				xts_prov_entry_clear(&e);
			}
			xts_provlog_close(pl);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	n = read_lines(f->path, NULL, 0);
	assert_int_equal(n, 1200); /* every line parses: no interleaving */
}

static void
test_alloc_failure(void **state)
{
	struct fx *f = *state;
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e;
	unsigned long nth;
	int ret, fails = 0;

	assert_int_equal(xts_provlog_open(f->path, &pl), 0);
	for (nth = 1; nth < 200; nth++) {
		fill(&e);
		xts_mem_fail_after(nth, 0);
		ret = xts_prov_entry_add_prop(&e, "a", "b", "c", 0);
		if (ret == 0)
			ret = xts_prov_entry_add_step(&e, "Import", XTS_STEP_IMPORT, XTS_PROV_SUCCESS, "d",
			    NULL);
		if (ret == 0)
			ret = xts_provlog_write(pl, &e);
		xts_mem_fail_after(0, 0);
		assert_true(ret == 0 || ret == XTS_ENOMEM);
		fails += ret != 0;
		xts_prov_entry_clear(&e);
	}
	assert_true(fails > 0);
	xts_provlog_close(pl);
	/* whatever was written is whole lines */
	assert_true(read_lines(f->path, NULL, 0) > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entry_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_names_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("provlog", tests, NULL, NULL);
}
