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

#include "buf.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "provlog.h"
#include "text.h"
#include "tmpdir.h"

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
	if (xts_test_tmpdir(f->dir, sizeof(f->dir), "provlog") != 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/provisioning.log", f->dir);
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
	assert_true(xts_is_guid(change));
	assert_int_equal(strspn(change, "0123456789abcdef-"), 36);
	assert_non_null(strchr("89ab", change[19])); /* RFC 4122 variant */
	{
		char g1[37], g2[37];

		assert_int_equal(xts_provlog_guid(g1, 36), XTS_EINVAL);
		assert_int_equal(xts_provlog_guid(g1, sizeof(g1)), 0);
		assert_int_equal(xts_provlog_guid(g2, sizeof(g2)), 0);
		assert_true(xts_is_guid(g1) && xts_is_guid(g2));
		assert_string_not_equal(g1, g2);
		assert_true(g1[8] == '-' && g1[13] == '-' && g1[18] == '-' && g1[23] == '-' && g1[36] == '\0');
	}
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
		/* and at the top level, where the contract lists it */
		assert_string_equal(json_string_value(json_object_get(t, "tenantId")), "tenant-b");
		assert_string_equal(json_string_value(json_object_get(s, "tenantId")), "tenant-a");
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

/* Held lines (the engine holds one $batch answer's lines until the store
 * has committed them): nothing reaches the file until the outermost
 * release, then every line in order; an allocation failure while held drops
 * that line whole; close writes what is still held. */
static void
test_hold(void **state)
{
	struct fx *f = *state;
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e, big;
	json_t *lines[8] = { 0 };
	static char huge[65536];
	struct stat sb;
	int i, ret;

	fill(&e);
	assert_int_equal(xts_provlog_open(f->path, &pl), 0);
	assert_int_equal(xts_provlog_release(pl), XTS_EINVAL); /* not held */
	xts_provlog_hold(pl);
	xts_provlog_hold(pl);
	e.cycle_id = 1;
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	e.cycle_id = 2;
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	/* a line too long for what is held so far, whose growth fails, leaves
	 * none of it behind */
	fill(&big);
	big.cycle_id = 99;
	memset(huge, 'x', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	assert_int_equal(xts_prov_entry_add_prop(&big, "department", NULL, huge, 0), 0);
	xts_mem_fail_after(1, 0);
	ret = xts_provlog_write(pl, &big);
	xts_mem_fail_after(0, 0);
	assert_int_equal(ret, XTS_ENOMEM);
	assert_int_equal(xts_provlog_release(pl), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_size, 0); /* the inner release writes nothing */
	e.cycle_id = 3;
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(xts_provlog_release(pl), 0);
	assert_int_equal(read_lines(f->path, lines, 8), 3);
	for (i = 0; i < 3; i++) {
		char want[4];

		snprintf(want, sizeof(want), "%d", i + 1);
		assert_string_equal(json_string_value(json_object_get(lines[i], "cycleId")), want);
		json_decref(lines[i]);
	}
	/* not held: written at once; held at close: written by close */
	assert_int_equal(truncate(f->path, 0), 0);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(read_lines(f->path, NULL, 0), 1);
	xts_provlog_hold(pl);
	assert_int_equal(xts_provlog_write(pl, &e), 0);
	assert_int_equal(read_lines(f->path, NULL, 0), 1);
	xts_provlog_close(pl);
	assert_int_equal(read_lines(f->path, NULL, 0), 2);
	xts_prov_entry_clear(&e);
	xts_prov_entry_clear(&big);
}

/* Graph fields the engine does not fill: microsoft-graph-docs-contrib
 * api-reference/v1.0/resources/provisioningobjectsummary.md (id, tenantId,
 * provisioningAction, durationInMilliseconds Int32) and initiator.md. */
static void
test_graph_summary_fields(void **state)
{
	static const struct {
		int action;
		const char *contract, *graph;
	} acts[] = {
		{ XTS_PROV_CREATE, "Create", "create" },
		{ XTS_PROV_UPDATE, "Update", "update" },
		{ XTS_PROV_DELETE, "Delete", "delete" },
		{ XTS_PROV_DISABLE, "Disable", "disable" },
		{ XTS_PROV_SKIP, "Skip", "other" },
		{ XTS_PROV_STAGED_DELETE, "StagedDelete", "stagedDelete" },
		{ XTS_PROV_OTHER, "Other", "other" },
	};
	struct xts_prov_entry e;
	json_t *o = NULL, *o2 = NULL, *ib;
	const char *id;
	size_t i;

	(void)state;
	fill(&e);
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	assert_int_equal(xts_prov_entry_to_json(&e, &o2), 0);
	id = json_string_value(json_object_get(o, "id"));
	assert_non_null(id);
	assert_int_equal(strlen(id), 36);
	assert_int_equal(id[14], '4');
	assert_string_not_equal(id, json_string_value(json_object_get(o, "changeId")));
	assert_string_not_equal(id, json_string_value(json_object_get(o2, "id"))); /* one per line */
	/* The source tenant owns a cross-tenant sync job and its log. */
	assert_string_equal(json_string_value(json_object_get(o, "tenantId")), "tenant-a");
	assert_true(json_is_string(json_object_get(o, "cycleId")));
	assert_null(json_object_get(o, "durationInMilliseconds")); /* unset: left out */
	ib = json_object_get(o, "initiatedBy");
	assert_string_equal(json_string_value(json_object_get(ib, "displayName")), "xtsync");
	assert_string_equal(json_string_value(json_object_get(ib, "initiatorType")), "system");
	json_decref(o);
	json_decref(o2);

	e.initiated_by = "xtsyncctl provision";
	e.duration_ms = 5000000000LL;
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	ib = json_object_get(o, "initiatedBy");
	assert_string_equal(json_string_value(json_object_get(ib, "displayName")), "xtsyncctl provision");
	assert_string_equal(json_string_value(json_object_get(ib, "initiatorType")), "user");
	assert_true(json_is_integer(json_object_get(o, "durationInMilliseconds")));
	assert_int_equal(json_integer_value(json_object_get(o, "durationInMilliseconds")), 2147483647LL);
	json_decref(o);

	for (i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
		e.action = acts[i].action;
		assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
		/* action stays as the contract spells it; provisioningAction is Graph's. */
		assert_string_equal(json_string_value(json_object_get(o, "action")), acts[i].contract);
		assert_string_equal(json_string_value(json_object_get(o, "provisioningAction")),
		    acts[i].graph);
		assert_string_equal(xts_prov_graph_action_name(acts[i].action), acts[i].graph);
		json_decref(o);
	}
	assert_null(xts_prov_graph_action_name(99));
	xts_prov_entry_clear(&e);
}

/* errorInformation: provisioningerrorinfo.md (errorCode, reason,
 * additionalDetails, errorCategory in failure / nonServiceFailure / success,
 * recommendedAction); provisioningstatusinfo.md (status). */
static void
test_error_information(void **state)
{
	struct xts_prov_entry e;
	json_t *o = NULL, *ei;

	(void)state;
	fill(&e);
	e.error_code = "ReferenceNotYetProvisioned";
	e.error_reason = "the manager has no target user yet";
	e.error_category = XTS_PROV_ERRCAT_FAILURE;
	e.additional_details = "HTTP 503, request-id 0f1e";
	e.recommended_action = "Wait for the next cycle.";
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	ei = json_object_get(json_object_get(o, "provisioningStatusInfo"), "errorInformation");
	assert_string_equal(json_string_value(json_object_get(ei, "errorCode")), "ReferenceNotYetProvisioned");
	assert_string_equal(json_string_value(json_object_get(ei, "reason")),
	    "the manager has no target user yet");
	assert_string_equal(json_string_value(json_object_get(ei, "errorCategory")), "failure");
	assert_string_equal(json_string_value(json_object_get(ei, "additionalDetails")),
	    "HTTP 503, request-id 0f1e");
	assert_string_equal(json_string_value(json_object_get(ei, "recommendedAction")),
	    "Wait for the next cycle.");
	json_decref(o);

	e.error_category = NULL;
	e.additional_details = NULL;
	e.recommended_action = NULL;
	e.error_code = NULL;
	e.error_reason = "invited; the attribute update is left to the next cycle";
	e.status = XTS_PROV_WARNING;
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	ei = json_object_get(json_object_get(o, "provisioningStatusInfo"), "errorInformation");
	assert_null(json_object_get(ei, "errorCode"));
	assert_string_equal(json_string_value(json_object_get(ei, "reason")),
	    "invited; the attribute update is left to the next cycle");
	json_decref(o);

	/* A plain success has no errorInformation at all (not null: readers
	 * index it with .get("errorInformation", {})). */
	e.error_reason = NULL;
	e.status = XTS_PROV_SUCCESS;
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	assert_null(json_object_get(json_object_get(o, "provisioningStatusInfo"), "errorInformation"));
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "provisioningStatusInfo"),
	    "status")), "success");
	json_decref(o);
	xts_prov_entry_clear(&e);
}

/* JSON types: modifiedproperty.md (displayName, oldValue, newValue are
 * Strings; an absent value is null as in provisioningobjectsummary-list.md),
 * provisioningstep.md (enum values), activityDateTime ISO 8601 UTC with Z. */
static void
test_json_types(void **state)
{
	static const char *const types[] = { "import", "scoping", "matching", "processing",
		"referenceResolution", "export" };
	struct xts_prov_entry e;
	json_t *o = NULL, *props, *steps, *t = json_true(), *n = json_integer(3);
	const char *ts;
	int i;

	(void)state;
	fill(&e);
	assert_int_equal(xts_prov_entry_add_prop_json(&e, "accountEnabled", NULL, t, 0), 0);
	assert_int_equal(xts_prov_entry_add_prop_json(&e, "x", n, json_null(), 0), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(xts_prov_entry_add_step(&e, "s", i, XTS_PROV_SKIPPED, NULL, NULL), 0);
	assert_int_equal(xts_prov_entry_to_json(&e, &o), 0);
	ts = json_string_value(json_object_get(o, "activityDateTime"));
	assert_non_null(ts);
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[23], 'Z');
	props = json_object_get(o, "modifiedProperties");
	assert_true(json_is_array(props));
	assert_true(json_is_null(json_object_get(json_array_get(props, 0), "oldValue")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 0), "newValue")), "true");
	assert_string_equal(json_string_value(json_object_get(json_array_get(props, 1), "oldValue")), "3");
	assert_true(json_is_null(json_object_get(json_array_get(props, 1), "newValue")));
	steps = json_object_get(o, "provisioningSteps");
	assert_int_equal(json_array_size(steps), 6);
	for (i = 0; i < 6; i++) {
		json_t *s = json_array_get(steps, (size_t)i);

		assert_string_equal(json_string_value(json_object_get(s, "provisioningStepType")), types[i]);
		assert_string_equal(json_string_value(json_object_get(s, "status")), "skipped");
	}
	assert_true(json_is_object(json_object_get(o, "sourceIdentity")));
	assert_true(json_is_object(json_object_get(o, "targetIdentity")));
	assert_true(json_is_object(json_object_get(o, "sourceSystem")));
	assert_true(json_is_object(json_object_get(o, "targetSystem")));
	json_decref(o);
	json_decref(t);
	json_decref(n);
	xts_prov_entry_clear(&e);
}

/* Both identities always carry id, displayName and userPrincipalName, as
 * null when not known: a job-level line (a failed connection test) has no
 * user, a skipped user no target user (contract: sourceIdentity (id,
 * displayName, userPrincipalName), targetIdentity (id, tenant)). */
static void
test_identity_members(void **state)
{
	static const char *const side[] = { "sourceIdentity", "targetIdentity" };
	static const char *const mem[] = { "id", "displayName", "userPrincipalName" };
	struct xts_prov_entry e;
	struct xts_buf b = XTS_BUF_INIT;
	json_error_t je;
	json_t *o, *id;
	size_t i, k;

	(void)state;
	fill(&e);
	e.action = XTS_PROV_OTHER;
	e.source_id = e.source_display_name = e.source_upn = NULL;
	e.target_id = e.target_display_name = e.target_upn = NULL;
	assert_int_equal(xts_prov_entry_text(&e, &b), 0);
	o = json_loadb(b.p, b.len, 0, &je);
	assert_non_null(o);
	for (i = 0; i < 2; i++) {
		id = json_object_get(o, side[i]);
		assert_true(json_is_object(id));
		for (k = 0; k < 3; k++) {
			if (json_object_get(id, mem[k]) == NULL)
				fail_msg("%s has no %s", side[i], mem[k]);
			assert_true(json_is_null(json_object_get(id, mem[k])));
		}
	}
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "targetIdentity"), "tenantId")),
			    "tenant-b");
	json_decref(o);
	xts_buf_free(&b);
	xts_prov_entry_clear(&e);
}

/* The line is written as text, not through a jansson tree: it must be the
 * text jansson's compact dump gives for the same value (key order, escapes,
 * no spaces), with step details nested, and a value that is not UTF-8 (a
 * source's mangled byte) must still give a line, with U+FFFD, as jansson
 * would have refused the string and lost the line. */
static void
test_text_compact(void **state)
{
	struct xts_prov_entry e;
	struct xts_buf b = XTS_BUF_INIT;
	json_t *o, *details = json_pack("{s:s,s:[i,b]}", "matchedBy", "mail", "n", 1, 1);
	json_error_t je;
	char *dump;
	size_t before;

	(void)state;
	assert_non_null(details);
	fill(&e);
	e.error_reason = "quote \" backslash \\ tab \t nl \n ctl \x01 caf\xC3\xA9 \xE2\x82\xAC";
	e.source_display_name = "Ad\xFF" "ele \xC3"; /* a stray byte, a cut sequence */
	/* a cut sequence past the first eight bytes only (the ASCII fast
	 * path's tail), and a valid one there */
	e.source_upn = "abcdefgh" "ij\xC3";
	e.target_display_name = "abcdefgh" "Ren\xC3\xA9" "e";
	e.duration_ms = 12;
	e.initiated_by = "xtsyncctl provision";
	assert_int_equal(xts_prov_entry_add_prop(&e, "jobTitle", NULL, "Pilot", 0), 0);
	assert_int_equal(xts_prov_entry_add_prop(&e, "mobilePhone", "1", "2", 1), 0);
	assert_int_equal(xts_prov_entry_add_step(&e, "EntryImport", XTS_STEP_IMPORT, XTS_PROV_SUCCESS, NULL,
	    details), 0);
	assert_int_equal(xts_buf_append(&b, "x", 1), 0);
	before = b.len;
	assert_int_equal(xts_prov_entry_text(&e, &b), 0);
	o = json_loadb(b.p + before, b.len - before, 0, &je);
	assert_non_null(o);
	dump = json_dumps(o, JSON_COMPACT);
	assert_non_null(dump);
	assert_int_equal(strlen(dump), b.len - before);
	assert_memory_equal(dump, b.p + before, b.len - before);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(o,
	    "provisioningStatusInfo"), "errorInformation"), "reason")), e.error_reason);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "sourceIdentity"),
	    "displayName")), "Ad\xEF\xBF\xBD" "ele \xEF\xBF\xBD");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "sourceIdentity"),
	    "userPrincipalName")), "abcdefghij\xEF\xBF\xBD");
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "targetIdentity"),
	    "displayName")), "abcdefghRen\xC3\xA9" "e");
	assert_true(json_equal(json_object_get(json_array_get(json_object_get(o, "provisioningSteps"), 0),
	    "details"), details));
	assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(o,
	    "modifiedProperties"), 1), "newValue")), "[Redact]");
	assert_int_equal(json_integer_value(json_object_get(o, "durationInMilliseconds")), 12);
	assert_string_equal(json_string_value(json_object_get(json_object_get(o, "initiatedBy"),
	    "initiatorType")), "user");
	free(dump);
	json_decref(o);
	/* an allocation failing anywhere in the line leaves the buffer as it
	 * was: never a partial line */
	{
		unsigned long nth;
		int fails = 0, ret;
		for (nth = 1; nth < 64; nth++) {
			struct xts_buf t = XTS_BUF_INIT;
			assert_int_equal(xts_buf_append(&t, "x", 1), 0);
			xts_mem_fail_after(nth, 0);
			ret = xts_prov_entry_text(&e, &t);
			xts_mem_fail_after(0, 0);
			assert_true(ret == 0 || ret == XTS_ENOMEM);
			if (ret != 0) {
				fails++;
				assert_int_equal(t.len, 1);
			}
			xts_buf_free(&t);
		}
		assert_true(fails > 0);
	}
	/* an invalid entry leaves the buffer as it was */
	before = b.len;
	e.action = 99;
	assert_int_equal(xts_prov_entry_text(&e, &b), XTS_EINVAL);
	assert_int_equal(b.len, before);
	json_decref(details);
	xts_buf_free(&b);
	xts_prov_entry_clear(&e);
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
		cmocka_unit_test_setup_teardown(test_hold, setup, teardown),
		cmocka_unit_test(test_graph_summary_fields),
		cmocka_unit_test(test_error_information),
		cmocka_unit_test(test_json_types),
		cmocka_unit_test(test_identity_members),
		cmocka_unit_test(test_text_compact),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("provlog", tests, NULL, NULL);
}
