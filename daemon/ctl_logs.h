/* SPDX-License-Identifier: MIT */
/* `xtsyncctl logs`: read (and with --follow, tail like `tail -F`) the
 * provisioning log, filtered by job, user, action, status and time, printed
 * as readable lines or as the raw JSON. Works without the daemon; never
 * writes the log and never talks to a tenant. */
#ifndef XTS_CTL_LOGS_H
#define XTS_CTL_LOGS_H

struct xts_config;

/* argv[0] is "logs"; options: [--follow] [--job J] [--user U] [--action A]
 * [--status S] [--since TIME] [--json]. TIME is ISO 8601 (2024-05-01,
 * 2024-05-01T12:00:00Z, with .fff and +hh:mm allowed) or relative: 30s,
 * 10m, 2h, 1d. --user matches the source id, UPN or display name, or the
 * target id. A log not written yet (no file, its directory there) prints
 * nothing; --follow waits for it. Returns 0; 2 on a usage error; 1 when the
 * log cannot be read.
 * Blocks: with --follow until SIGINT/SIGTERM (then returns 0). */
int xts_ctl_logs_main(const char *provisioning_log_path, int argc, char **argv);
/* The same, taking the path from a loaded config (daemon.provisioning_log). */
int xts_ctl_logs_main_config(const struct xts_config *cfg, int argc, char **argv);

/* Callers may pass either the path or the config as the first argument. */
#define xts_ctl_logs_main(first, argc, argv)                                              \
	_Generic((first),                                                                 \
	    struct xts_config *: xts_ctl_logs_main_config,                                \
	    const struct xts_config *: xts_ctl_logs_main_config,                          \
	    default: (xts_ctl_logs_main))((first), (argc), (argv))

/* Parse a --since value into wall-clock ms (now_ms for relative values).
 * 0 or -1 when it is not a time. */
int xts_ctl_logs_parse_time(const char *s, long long now_ms, long long *out_ms);

#endif
