/* SPDX-License-Identifier: MIT */
/* xtsyncd's main: command-line options of the contract, --check-config,
 * --dump-keys and --version; everything else is xts_daemon_run (loop.c).
 * The daemon never forks and always logs to stderr (journald under systemd). */
#include <errno.h>
#include <getopt.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "xts_build.h"

#define DEFAULT_CONFIG "/etc/xtsync/xtsync.conf"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: xtsyncd [OPTIONS]\n"
		"  -c, --config FILE   configuration file (default " DEFAULT_CONFIG ")\n"
		"      --check-config  validate the configuration and every job's schema; exit 0 or 2\n"
		"      --once          run one cycle of every job (or of --job) and exit\n"
		"      --job NAME      limit --once / --dry-run to one job; it runs even when paused,\n"
		"                      and a quarantined job's retry runs now\n"
		"      --dry-run       with --once: print the plan, write nothing\n"
		"      --foreground    log to stderr (always the case; accepted for systemd units)\n"
		"      --dump-keys     print the configuration key table (Markdown)\n"
		"      --version       print the version and exit\n"
		"  -h, --help          this text\n"
		"exit status: 0 ok, 1 runtime failure, 2 usage or configuration error, 3 something held\n");
}

static int
check_config(const char *path)
{
	struct xts_config_problems probs = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	int ret;

	ret = xts_daemon_load_config(path, &cfg, &probs);
	xts_config_problems_print(&probs, stdout);
	xts_config_problems_free(&probs);
	if (ret == 0) {
		printf("%s: ok (%zu tenant(s), %zu job(s))\n", path, cfg->n_tenants, cfg->n_jobs);
		xts_config_free(cfg);
		return 0;
	}
	if (ret == XTS_ENOMEM) {
		fprintf(stderr, "xtsyncd: out of memory\n");
		return 1;
	}
	return 2;
}

int
main(int argc, char **argv)
{
	enum { OPT_CHECK = 256, OPT_ONCE, OPT_JOB, OPT_DRY, OPT_FG, OPT_VERSION, OPT_DUMP };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "job", required_argument, NULL, OPT_JOB },
		{ "dry-run", no_argument, NULL, OPT_DRY },
		{ "foreground", no_argument, NULL, OPT_FG },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "dump-keys", no_argument, NULL, OPT_DUMP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct xts_daemon_opts o;
	int c, check = 0;

	memset(&o, 0, sizeof(o));
	o.config_path = DEFAULT_CONFIG;
	xts_log_init(XTS_LOG_INFO, -1);
	for (;;) {
		c = getopt_long(argc, argv, "c:h", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case OPT_CHECK: check = 1; break;
		case OPT_ONCE: o.once = true; break;
		case OPT_JOB: o.only_job = optarg; break;
		case OPT_DRY: o.dry_run = true; break;
		case OPT_FG: break;
		case OPT_VERSION: printf("xtsyncd %s\n", XTS_VERSION); return 0;
		case OPT_DUMP: return xts_config_dump_keys(stdout, 1) == 0 ? 0 : 1;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xtsyncd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (xts_mem_install() != 0) {
		fprintf(stderr, "xtsyncd: cannot install allocator hooks\n");
		return 1;
	}
	/* Before any secret is read: the process holds client secrets, private
	 * keys, access tokens and the SMTP password, so it never writes a core
	 * dump (nor lets a same-uid process ptrace it or read /proc/PID/mem). */
	if (prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L) != 0)
		fprintf(stderr, "xtsyncd: warning: cannot disable core dumps: %s\n", strerror(errno));
	if (check)
		return check_config(o.config_path);
	if (o.dry_run && !o.once) {
		fprintf(stderr, "xtsyncd: --dry-run needs --once\n");
		return 2;
	}
	if (o.only_job != NULL && !o.once) {
		fprintf(stderr, "xtsyncd: --job needs --once\n");
		return 2;
	}
	return xts_daemon_run(&o);
}
