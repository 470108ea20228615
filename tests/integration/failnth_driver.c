/* SPDX-License-Identifier: MIT */
/* Fail-Nth allocation driver for test_failnth.py: runs one whole xtsyncd
 * --once cycle in-process (xts_daemon_run, the daemon's own body) with the
 * Nth allocation failing, checks the store with PRAGMA integrity_check, makes
 * escrowed ops due, then runs a normal cycle in the same process. Leaks are
 * LeakSanitizer's job (ASan build). STICKY=1: every allocation from N on
 * fails until, 3 s later, SIGALRM lets memory come back. Output: one line "n N first X allocs A reached R integrity I second Y". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, REG_RIP */
#endif
#include <dlfcn.h>
#include <signal.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "mem.h"

/* "ok" or the first row integrity_check returned (or the open error). */
static void
integrity(const char *state_dir, char *out, size_t n)
{
	char path[4096];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(path, sizeof(path), "%s/xtsync.db", state_dir);
	snprintf(out, n, "missing");
	if (access(path, F_OK) != 0) {
		snprintf(out, n, "absent"); /* the cycle failed before creating it */
		return;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(out, n, "open-failed:%s", db != NULL ? sqlite3_errmsg(db) : "?");
		sqlite3_close(db);
		return;
	}
	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
		snprintf(out, n, "prepare-failed:%s", sqlite3_errmsg(db));
	} else if (sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);

		snprintf(out, n, "%s", t != NULL ? (const char *)t : "null");
	}
	sqlite3_finalize(st);
	/* Time travel: the escrow back-off of ops the failing cycle could not do
	 * has elapsed, so the next cycle retries them (it must then converge).
	 * A store whose first migration failed has no op table: nothing to do. */
	if (strcmp(out, "ok") == 0 &&
	    sqlite3_exec(db, "UPDATE op SET next_attempt = 0 WHERE next_attempt > 0", NULL, NULL, NULL) != SQLITE_OK &&
	    strstr(sqlite3_errmsg(db), "no such table") == NULL)
		snprintf(out, n, "escrow-reset-failed:%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	for (size_t i = 0; out[i] != '\0'; i++)
		if (out[i] == ' ' || out[i] == '\n')
			out[i] = '_';
}

/* Sticky mode: memory "comes back" after a few seconds. Under an out-of-memory
 * that never ends, queued Graph batches are retried every second for good
 * (lib/graph_batch.c), so the cycle could not finish; with memory back it must. */
static volatile sig_atomic_t recovered;

static void
memory_back(int sig)
{
	(void)sig;
	xts_mem_fail_after(0, 0);
	recovered = 1;
}

/* libcurl 7.88 (Debian 12) can corrupt its socket hash when one of its own
 * allocations fails inside curl_multi_socket_action, and then faults inside
 * libcurl on the next call (SIGFPE: a modulo by a zeroed slot count). A fault
 * whose instruction lies in libcurl is reported apart ("libcurl-fault", exit
 * 86); any other fault keeps its default action and fails the test. */
static void
on_fault(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] = "libcurl-fault\n";
	void *pc = NULL;
	Dl_info di;

	(void)si;
#if defined(__x86_64__) && defined(REG_RIP)
	pc = (void *)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#else
	(void)uc;
#endif
	if (pc != NULL && dladdr(pc, &di) != 0 && di.dli_fname != NULL && strstr(di.dli_fname, "libcurl") != NULL) {
		if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
			_exit(87);
		_exit(86);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

int
main(int argc, char **argv)
{
	struct xts_daemon_opts o;
	unsigned long n, start, allocs;
	int sticky, first, second = -1;
	char integ[512];

	if (argc != 5) {
		fprintf(stderr, "usage: failnth_driver CONFIG STATE_DIR N STICKY(0|1)\n"
				"  N = 0: no failure, just count the allocations of one cycle\n");
		return 2;
	}
	{
		struct sigaction fa;
		int fs[] = { SIGSEGV, SIGFPE, SIGBUS };

		memset(&fa, 0, sizeof(fa));
		fa.sa_sigaction = on_fault;
		fa.sa_flags = SA_SIGINFO;
		for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
			sigaction(fs[i], &fa, NULL);
	}
	n = strtoul(argv[3], NULL, 10);
	sticky = atoi(argv[4]);
	xts_log_init(XTS_LOG_INFO, 0);
	if (xts_mem_install() != 0) {
		fprintf(stderr, "failnth_driver: cannot install allocator hooks\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	o.config_path = argv[1];
	o.once = true;

	if (sticky) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = memory_back;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
		alarm(3);
	}
	start = xts_mem_count();
	xts_mem_fail_after(n, sticky);
	first = xts_daemon_run(&o);
	xts_mem_fail_after(0, 0);
	alarm(0);
	allocs = xts_mem_count() - start;

	integrity(argv[2], integ, sizeof(integ));
	if (n != 0)
		second = xts_daemon_run(&o);
	printf("n %lu first %d allocs %lu reached %d integrity %s second %d recovered %d\n", n, first, allocs,
	       n != 0 && allocs >= n, integ, second, (int)recovered);
	fflush(stdout);
	return 0;
}
