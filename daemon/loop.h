/* SPDX-License-Identifier: MIT */
/* xtsyncd's process: the libuv loop, signals (intent only, acted on at a safe
 * point), reload by load-validate-swap, the control commands, sd_notify and
 * the watchdog. Option parsing lives in xtsyncd.c; cycles in the engine. */
#ifndef XTS_LOOP_H
#define XTS_LOOP_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct xts_daemon_opts {
	const char *config_path;
	bool once;            /* run one cycle of each job and exit */
	const char *only_job; /* with once: just this job */
	bool dry_run;         /* with once: plan only, write nothing */
};

/* Load the config and validate every job's schema file too (the config module
 * cannot: the schema module is built after it). Same contract as
 * xts_config_load; schema problems are reported at the job's `schema` line as
 * "schema FILE: $.json.path: message", sorted by line with the config's own.
 * A config with problems elsewhere still has the schema of each job whose
 * `schema` value was accepted checked, so one call reports every problem.
 * Blocks on file I/O. */
int xts_daemon_load_config(const char *path, struct xts_config **out, struct xts_config_problems *probs);

/* Run the daemon (or --once) until it stops. Unless dry_run, first takes
 * state_dir/xtsync.lock and state_dir itself (flock, never waits: the file
 * can be unlinked, the directory cannot) and holds them until it returns;
 * when another process holds it, prints "xtsyncd: another xtsyncd holds
 * PATH (pid N)" and returns 1 before opening the store or sending a request.
 * Returns the process exit code of the contract: 0 ok, 1 runtime failure,
 * 2 configuration error, 3 held. */
int xts_daemon_run(const struct xts_daemon_opts *o);

#endif
