/* SPDX-License-Identifier: MIT */
/* Test helper for the store area's integration tests: appends provisioning
 * log entries with the real writer, runs `xtsyncctl logs` code on a given
 * path, and sends / queues / flushes notification mail with the real SMTP
 * code. Not installed; not an operator tool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_logs.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "notify.h"
#include "provlog.h"
#include "store.h"

static int
usage(void)
{
	fputs("usage: store_tool provlog PATH JOB ACTION STATUS SOURCE_UPN TARGET_ID [ERRCODE] [AGE_MS]\n"
	      "       store_tool logs PATH logs [options]\n"
	      "       store_tool send URL FROM TO SUBJECT BODY   (XTS_SMTP_CA: [smtp] ca_file)\n"
	      "       store_tool queue STATE_DIR JOB CYCLE TO\n"
	      "       store_tool flush STATE_DIR URL FROM NOW_MS\n"
	      "       store_tool outbox STATE_DIR\n", stderr);
	return 2;
}

static int
cmd_provlog(int argc, char **argv)
{
	struct xts_provlog *pl = NULL;
	struct xts_prov_entry e;
	int ret;

	if (argc < 8)
		return usage();
	xts_prov_entry_init(&e);
	e.job_id = argv[3];
	e.action = xts_prov_action_parse(argv[4]);
	e.status = xts_prov_status_parse(argv[5]);
	e.source_upn = argv[6];
	e.source_id = "11111111-1111-4111-8111-111111111111";
	e.source_display_name = "Test User";
	e.target_id = argv[7];
	e.target_tenant_id = "22222222-2222-4222-8222-222222222222";
	e.cycle_id = 7;
	if (argc > 8 && *argv[8]) {
		e.error_code = argv[8];
		e.error_reason = "The operation failed.";
	}
	if (argc > 9)
		e.activity_ms = xts_wall_ms() - strtoll(argv[9], NULL, 10);
	if (xts_prov_entry_add_prop(&e, "displayName", "Old Name", "New Name", 0) < 0 ||
	    xts_prov_entry_add_prop(&e, "employeeId", "SECRET-OLD-VALUE", "SECRET-NEW-VALUE", 1) < 0 ||
	    /* re-asserted: written with the value we last wrote */
	    xts_prov_entry_add_prop(&e, "city", "Oslo", "Oslo", 0) < 0 ||
	    xts_prov_entry_add_step(&e, "Export", XTS_STEP_EXPORT, e.status, "written", NULL) < 0)
		return 1;
	ret = xts_provlog_open(argv[2], &pl);
	if (ret == 0)
		ret = xts_provlog_write(pl, &e);
	xts_provlog_close(pl);
	xts_prov_entry_clear(&e);
	if (ret < 0)
		fprintf(stderr, "provlog: %s\n", xts_strerror(ret));
	return ret < 0 ? 1 : 0;
}

static int
cmd_send(int argc, char **argv)
{
	struct xts_smtp_conf c = { .url = argv[2], .from = argv[3], .timeout_ms = 5000,
		.ca_file = getenv("XTS_SMTP_CA") };
	char err[512];
	int ret;

	if (argc != 7)
		return usage();
	ret = xts_notify_send(&c, argv[4], argv[5], argv[6], err, sizeof(err));
	if (ret < 0) {
		printf("error %s: %s\n", xts_errname(ret), err);
		return 1;
	}
	if (err[0] != '\0')
		printf("sent, but %s\n", err);
	else
		printf("sent\n");
	return 0;
}

static int
cmd_queue(int argc, char **argv)
{
	struct xts_store *st = NULL;
	struct xts_notify_event ev = { .kind = XTS_NOTIFY_DELETIONS_HELD, .held = 612, .threshold = 500 };
	int ret, queued = 0;

	if (argc != 6)
		return usage();
	ev.job = argv[3];
	ev.cycle_id = strtoll(argv[4], NULL, 10);
	ret = xts_store_open(argv[2], &st);
	if (ret == 0)
		ret = xts_notify_queue(st, &ev, argv[5], xts_wall_ms(), &queued);
	xts_store_close(st);
	if (ret < 0) {
		fprintf(stderr, "queue: %s\n", xts_strerror(ret));
		return 1;
	}
	printf("queued %d\n", queued);
	return 0;
}

static int
cmd_flush(int argc, char **argv)
{
	struct xts_store *st = NULL;
	struct xts_smtp_conf c = { .url = argv[3], .from = argv[4], .timeout_ms = 5000 };
	int ret, sent = 0, failed = 0;

	if (argc != 6)
		return usage();
	ret = xts_store_open(argv[2], &st);
	if (ret == 0)
		ret = xts_notify_flush(st, &c, strtoll(argv[5], NULL, 10), &sent, &failed);
	xts_store_close(st);
	if (ret < 0) {
		fprintf(stderr, "flush: %s\n", xts_strerror(ret));
		return 1;
	}
	printf("sent %d failed %d\n", sent, failed);
	return 0;
}

static int
print_mail(void *arg, const struct xts_store_mail *m)
{
	(void)arg;
	printf("mail %lld attempts %d next %lld\n", m->id, m->attempts, m->next_attempt);
	return 0;
}

int
main(int argc, char **argv)
{
	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_WARNING, 0);
	if (argc < 3)
		return usage();
	if (strcmp(argv[1], "provlog") == 0)
		return cmd_provlog(argc, argv);
	if (strcmp(argv[1], "logs") == 0)
		return (xts_ctl_logs_main)(argv[2], argc - 3, argv + 3);
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc, argv);
	if (strcmp(argv[1], "queue") == 0)
		return cmd_queue(argc, argv);
	if (strcmp(argv[1], "flush") == 0)
		return cmd_flush(argc, argv);
	if (strcmp(argv[1], "outbox") == 0) {
		struct xts_store *st = NULL;
		int ret = xts_store_open(argv[2], &st);

		if (ret == 0)
			ret = xts_store_outbox_foreach_due(st, (long long)(~0ULL >> 1), print_mail, NULL);
		xts_store_close(st);
		return ret < 0 ? 1 : 0;
	}
	return usage();
}
