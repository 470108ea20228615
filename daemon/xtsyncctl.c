/* SPDX-License-Identifier: MIT */
/* xtsyncctl: the operator's tool. Daemon commands go over the control socket
 * (ctl_client.c); offline commands (eval, check-schema, logs,
 * test-connection) are dispatched to their own files when this build has
 * them. Exit: 0 ok, 1 failure reply or daemon unreachable, 2 usage or
 * configuration error (an unknown job is one), as xtsyncd's 0/1/2. */
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctl_client.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "text.h"
#include "xts_build.h"

#include "ctl_eval.h"
#include "ctl_check_schema.h"
#include "ctl_logs.h"
#include "ctl_test_connection.h"
#include "ctl_provision.h"

#define DEFAULT_CONFIG "/etc/xtsync/xtsync.conf"
#define DEFAULT_SOCKET "/run/xtsync/control.sock"
#define TIMEOUT_MS 30000
/* provision and preview talk to Graph: give them longer. */
#define LONG_TIMEOUT_MS 600000

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: xtsyncctl [-c CONFIG] [-s SOCKET] COMMAND [ARGS]\n"
		"commands (daemon):\n"
		"  status [--json]          per-job state, last/next cycle and counts\n"
		"  sync JOB                 start a cycle now\n"
		"  pause JOB | resume JOB\n"
		"  restart JOB              forget delta token and shadow state (next cycle is initial)\n"
		"  provision JOB USER       provision one source user now\n"
		"  preview JOB              the plan the next cycle would apply\n"
		"  allow-deletions JOB      release deletions held by the threshold\n"
		"  reload                   same as SIGHUP\n"
		"commands (offline):\n"
		"  test-connection JOB      tokens and cross-tenant access policy check\n"
		"  logs [--follow] [--job J] [--user U] [--action A] [--status S] [--since T] [--json]\n"
		"  eval [--attributes JSON|@FILE] EXPRESSION\n"
		"  check-schema FILE\n"
		"  -c CONFIG defaults to " DEFAULT_CONFIG "; -s defaults to its control_socket.\n"
		"exit status: 0 ok; 1 failure or daemon unreachable (also allow-deletions when\n"
		"  the job has no deletions held); 2 usage or configuration error, or no such job\n");
}

static const char *
str_or(json_t *o, const char *key, const char *dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* "2026-01-02T03:04:05Z" -> "2026-01-02 03:04:05Z"; "-" when absent. */
static const char *
when(json_t *o, const char *key, char *buf, size_t n)
{
	const char *s = str_or(o, key, NULL);

	if (s == NULL)
		return "-";
	snprintf(buf, n, "%s", s);
	if (strlen(buf) > 10 && buf[10] == 'T')
		buf[10] = ' ';
	return buf;
}

static long long
count(json_t *counts, const char *key)
{
	json_t *v = json_object_get(counts, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static void
print_count(long long v)
{
	if (v < 0)
		printf(" %8s", "-");
	else
		printf(" %8lld", v);
}

/* Every string in v, replaced by a copy without control characters
 * (xts_text_scrub). */
static void
scrub_strings(json_t *v)
{
	const char *key;
	json_t *m;
	size_t i;
	char *c;

	if (json_is_object(v)) {
		json_object_foreach(v, key, m)
			scrub_strings(m);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			scrub_strings(m);
	} else if (json_is_string(v)) {
		c = xts_strdup(json_string_value(v));
		if (c == NULL)
			return;
		xts_text_scrub(c);
		json_string_set(v, c);
		xts_free(c);
	}
}

static void
print_status(json_t *resp)
{
	json_t *d = json_object_get(resp, "daemon"), *jobs = json_object_get(resp, "jobs"), *j;
	char b1[40], b2[40];
	size_t i;

	printf("xtsyncd %s (pid %lld), config %s%s\n", str_or(d, "version", "?"),
	       (long long)json_integer_value(json_object_get(d, "pid")), str_or(d, "config", "?"),
	       json_is_true(json_object_get(d, "engine")) ? "" : " -- engine not available in this build");
	if (json_array_size(jobs) == 0) {
		printf("no jobs configured\n");
		return;
	}
	printf("%-24s %-15s %-20s %-20s %8s %8s %8s %8s %8s %8s  %s\n", "JOB", "STATE", "LAST CYCLE",
	       "NEXT CYCLE", "IN SCOPE", "CREATED", "UPDATED", "DELETED", "DISABLED", "FAILED", "LAST RESULT");
	json_array_foreach(jobs, i, j) {
		json_t *c = json_object_get(j, "counts");
		json_t *prog = json_object_get(j, "progress");
		const char *res = str_or(j, "last_result", "-");
		const char *e = str_or(j, "last_error", NULL);
		char state[32];

		snprintf(state, sizeof(state), "%s%s", str_or(j, "state", "?"),
			 json_is_false(json_object_get(j, "enabled")) ? "*" : "");
		printf("%-24s %-15s %-20s %-20s", str_or(j, "name", "?"), state,
		       when(j, json_is_null(json_object_get(j, "last_cycle_end")) ? "last_cycle_start" : "last_cycle_end",
			    b1, sizeof(b1)),
		       when(j, "next_cycle", b2, sizeof(b2)));
		print_count(count(c, "in_scope"));
		print_count(count(c, "created"));
		print_count(count(c, "updated"));
		print_count(count(c, "deleted"));
		print_count(count(c, "disabled"));
		print_count(count(c, "failed"));
		printf("  %s%s%s", res, e != NULL ? ": " : "", e != NULL ? e : "");
		if (json_is_string(json_object_get(j, "quarantine_reason")))
			printf(" [reason %s, next retry %s]", str_or(j, "quarantine_reason", "?"),
			       str_or(j, "next_retry", "none"));
		if (json_is_object(prog))
			printf(" (%lld/%lld)", (long long)json_integer_value(json_object_get(prog, "done")),
			       (long long)json_integer_value(json_object_get(prog, "total")));
		printf("\n");
	}
	printf("(* = disabled in the configuration)\n");
}

/* The config as far as it can be read, for a command that needs one [daemon]
 * value (`key`) from it. Problems elsewhere in the file are not ours to
 * refuse over: the daemon reports them (reload, --check-config), and an
 * operator must still reach the daemon and read the log while the file is
 * being fixed. A problem on the key's own line is printed, since the value
 * is then the default. Returns 0 with *out (free it); XTS_ENOMEM; or
 * another code when the file cannot be read, with the reason in why. */
static int
tolerant_config(const char *path, const char *key, struct xts_config **out, char *why, size_t whylen)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	const char *value;
	int ret, line;
	size_t i;

	why[0] = '\0';
	ret = xts_config_load_partial(path, out, &p);
	if (*out == NULL) {
		if (ret == 0 || ret == XTS_ECONFIG)
			ret = XTS_EIO;
		snprintf(why, whylen, "%s", p.n > 0 && p.v[0].line == 0 ? p.v[0].msg : xts_strerror(ret));
		goto done;
	}
	ret = 0;
	/* The section's header line when the key was not set: nothing to say. */
	line = xts_config_key_line("daemon", &(*out)->daemon, key);
	value = strcmp(key, "control_socket") == 0 ? (*out)->daemon.control_socket : (*out)->daemon.provisioning_log;
	for (i = 0; line != (*out)->daemon.line && i < p.n; i++)
		if (p.v[i].line == line)
			fprintf(stderr, "xtsyncctl: %s:%d: %s; using the default %s\n", p.v[i].file, line, p.v[i].msg,
				value);
done:
	xts_config_problems_free(&p);
	return ret;
}

/* Socket: -s, else the config's control_socket (even when the config has
 * problems elsewhere), else, when the config cannot be read, the default. */
static char *
socket_from_config(const char *config_path, const char *given)
{
	struct xts_config *cfg = NULL;
	char why[512], *s;
	int ret;

	if (given != NULL)
		return xts_strdup(given);
	ret = tolerant_config(config_path, "control_socket", &cfg, why, sizeof(why));
	if (ret == XTS_ENOMEM) {
		fprintf(stderr, "xtsyncctl: out of memory\n");
		return NULL;
	}
	if (ret != 0) {
		fprintf(stderr, "xtsyncctl: %s: %s; using the default socket %s\n", config_path, why, DEFAULT_SOCKET);
		return xts_strdup(DEFAULT_SOCKET);
	}
	s = xts_strdup(cfg->daemon.control_socket);
	xts_config_free(cfg);
	return s;
}

/* The daemon's error reply, with the exit code it maps to: an unknown job
 * is a usage error (2), as test-connection and xtsyncd --job treat it. */
static int
print_error_reply(const char *cmd, const char *job, json_t *resp)
{
	const char *msg = str_or(resp, "error", "request failed");
	json_t *probs = json_object_get(resp, "problems"), *p;
	char expect[160];
	size_t k;

	if (job != NULL) {
		snprintf(expect, sizeof(expect), "no job named '%s'", job);
		if (strcmp(msg, expect) == 0) {
			fprintf(stderr, "xtsyncctl: %s\n", msg);
			return 2;
		}
		/* The engine refuses allow-deletions with EINVAL when nothing is held. */
		snprintf(expect, sizeof(expect), "%s: %s", cmd, xts_strerror(XTS_EINVAL));
		if (strcmp(cmd, "allow-deletions") == 0 && strcmp(msg, expect) == 0) {
			fprintf(stderr, "xtsyncctl: job %s has no deletions held\n", job);
			return 1;
		}
	}
	fprintf(stderr, "xtsyncctl: %s\n", msg);
	json_array_foreach(probs, k, p)
		if (json_is_string(p))
			fprintf(stderr, "%s\n", json_string_value(p));
	return 1;
}

static int
daemon_command(const char *config_path, const char *sock_opt, int argc, char **argv)
{
	const char *cmd = argv[0];
	bool json_out = false, needs_job;
	json_t *req = NULL, *resp = NULL;
	char err[512], *sock = NULL;
	int ret, code = 1, i, nargs = 0;
	const char *args[2] = { NULL, NULL };

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json_out = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "xtsyncctl %s: unknown option %s\n", cmd, argv[i]);
			return 2;
		} else if (nargs < 2) {
			args[nargs++] = argv[i];
		} else {
			fprintf(stderr, "xtsyncctl %s: too many arguments\n", cmd);
			return 2;
		}
	}
	needs_job = strcmp(cmd, "status") != 0 && strcmp(cmd, "reload") != 0;
	if (needs_job && nargs != (strcmp(cmd, "provision") == 0 ? 2 : 1)) {
		fprintf(stderr, "usage: xtsyncctl %s JOB%s\n", cmd, strcmp(cmd, "provision") == 0 ? " USER" : "");
		return 2;
	}
	if (!needs_job && nargs != 0) {
		fprintf(stderr, "usage: xtsyncctl %s%s\n", cmd, strcmp(cmd, "status") == 0 ? " [--json]" : "");
		return 2;
	}
	req = json_pack("{s:s}", "cmd", cmd);
	if (req == NULL || (needs_job && json_object_set_new(req, "job", json_string(args[0])) != 0) ||
	    (nargs == 2 && json_object_set_new(req, "user", json_string(args[1])) != 0)) {
		fprintf(stderr, "xtsyncctl: out of memory (or arguments not UTF-8)\n");
		goto done;
	}
	sock = socket_from_config(config_path, sock_opt);
	if (sock == NULL)
		goto done;
	ret = xts_ctl_request(sock, req,
			      strcmp(cmd, "provision") == 0 || strcmp(cmd, "preview") == 0 ? LONG_TIMEOUT_MS : TIMEOUT_MS,
			      &resp, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "xtsyncctl: %s\n", err);
		goto done;
	}
	if (json_out) {
		json_dumpf(resp, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
	} else {
		/* printed for a terminal: tenant text (Graph's error messages,
		 * source ids and addresses) loses its control characters */
		scrub_strings(resp);
	}
	if (!json_is_true(json_object_get(resp, "ok")) && strcmp(cmd, "provision") == 0 &&
	    json_is_array(json_object_get(resp, "steps"))) {
		/* The steps say where it failed. */
		if (!json_out)
			xts_ctl_print_provision(stdout, args[0], resp);
		goto done;
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		code = print_error_reply(cmd, needs_job ? args[0] : NULL, resp);
		goto done;
	}
	code = 0;
	if (json_out)
		goto done;
	if (strcmp(cmd, "status") == 0) {
		print_status(resp);
	} else if (strcmp(cmd, "reload") == 0) {
		printf("configuration reloaded\n");
	} else if (strcmp(cmd, "provision") == 0) {
		code = xts_ctl_print_provision(stdout, args[0], resp);
	} else if (strcmp(cmd, "preview") == 0) {
		xts_ctl_print_preview(stdout, args[0], resp);
	} else if (json_is_string(json_object_get(resp, "result")) && json_object_size(resp) <= 3) {
		printf("%s: %s\n", args[0], str_or(resp, "result", ""));
	} else {
		json_object_del(resp, "ok");
		json_dumpf(resp, stdout, JSON_INDENT(2));
		printf("\n");
	}
done:
	json_decref(req);
	json_decref(resp);
	xts_free(sock);
	return code;
}

/* The first line after the section whose header is at `line`: the next
 * section header of cfg, or INT_MAX. */
static int
section_end(const struct xts_config *cfg, int line)
{
	int end = INT_MAX;
	size_t i;

#define NEXT(l) do { if ((l) > line && (l) < end) end = (l); } while (0)
	NEXT(cfg->daemon.line);
	NEXT(cfg->smtp.line);
	for (i = 0; i < cfg->n_tenants; i++)
		NEXT(cfg->tenants[i].line);
	for (i = 0; i < cfg->n_jobs; i++)
		NEXT(cfg->jobs[i].line);
#undef NEXT
	return end;
}

static bool
in_section(const struct xts_config *cfg, int section, int line)
{
	return section > 0 && line >= section && line < section_end(cfg, section);
}

/* test-connection needs one job and its two tenants: read the config as far
 * as it goes and refuse only over a problem in those three sections (or in
 * the file as a whole), printing those; problems elsewhere (an unrelated
 * job, [daemon], [smtp]) get one note, as the command reads nothing from
 * there (contract: offline commands "read what they need"). An unknown job
 * (or no job named) is left to the command, which says so. NULL when the
 * config cannot be used. */
static struct xts_config *
job_config(const char *path, const char *name)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	const struct xts_config_job *job = NULL;
	struct xts_config *cfg = NULL;
	size_t i, mine = 0;
	int ret;

	ret = xts_config_load_partial(path, &cfg, &p);
	if (cfg == NULL || (ret != 0 && ret != XTS_ECONFIG)) {
		xts_config_problems_print(&p, stderr);
		fprintf(stderr, "xtsyncctl: cannot use %s\n", path);
		xts_config_free(cfg);
		cfg = NULL;
		goto done;
	}
	if (name != NULL)
		job = xts_config_job_find(cfg, name);
	for (i = 0; job != NULL && i < p.n; i++) {
		const struct xts_config_problem *q = &p.v[i];

		if (q->line == 0 || in_section(cfg, job->line, q->line) ||
		    (job->source_tenant != NULL && in_section(cfg, job->source_tenant->line, q->line)) ||
		    (job->target_tenant != NULL && in_section(cfg, job->target_tenant->line, q->line))) {
			fprintf(stderr, "%s:%d: %s\n", q->file, q->line, q->msg);
			mine++;
		}
	}
	if (job != NULL && (mine > 0 || job->source_tenant == NULL || job->target_tenant == NULL)) {
		fprintf(stderr, "xtsyncctl: cannot use %s for job %s\n", path, job->name);
		xts_config_free(cfg);
		cfg = NULL;
	} else if (p.n > 0) {
		fprintf(stderr, "xtsyncctl: note: %s has %zu problem(s)%s%s%s (xtsyncd --check-config lists them)\n",
			path, p.n, job != NULL ? " outside job " : "", job != NULL ? job->name : "",
			job != NULL ? " and its tenants" : "");
	}
done:
	xts_config_problems_free(&p);
	return cfg;
}

/* logs needs only [daemon] provisioning_log: read it however broken the rest
 * of the file is, so the log can be read exactly when the daemon refuses to
 * start. */
static int
logs_command(const char *config_path, int argc, char **argv)
{
	struct xts_config *cfg = NULL;
	char why[512];
	int ret;

	ret = tolerant_config(config_path, "provisioning_log", &cfg, why, sizeof(why));
	if (ret != 0) {
		fprintf(stderr, "xtsyncctl: %s: %s\n", config_path, ret == XTS_ENOMEM ? "out of memory" : why);
		return ret == XTS_ENOMEM ? 1 : 2;
	}
	ret = xts_ctl_logs_main(cfg, argc, argv);
	xts_config_free(cfg);
	return ret;
}

int
main(int argc, char **argv)
{
	static const char *const daemon_cmds[] = { "status", "sync", "pause", "resume", "restart", "provision",
						   "preview", "allow-deletions", "reload", NULL };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = DEFAULT_CONFIG, *sock = NULL, *cmd;
	int c, i;

	xts_log_init(XTS_LOG_WARNING, 0);
	/* '+': stop at the command so its own options reach it untouched. */
	for (;;) {
		c = getopt_long(argc, argv, "+c:s:h", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'c': config_path = optarg; break;
		case 's': sock = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("xtsyncctl %s\n", XTS_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (xts_mem_install() != 0) {
		fprintf(stderr, "xtsyncctl: cannot install allocator hooks\n");
		return 1;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	/* COMMAND --help: the usage, exit 0 (logs has its own, longer one) */
	if (strcmp(cmd, "logs") != 0)
		for (i = 1; i < argc; i++)
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
				usage(stdout);
				return 0;
			}
	for (i = 0; daemon_cmds[i] != NULL; i++)
		if (strcmp(cmd, daemon_cmds[i]) == 0)
			return daemon_command(config_path, sock, argc, argv);
	if (strcmp(cmd, "eval") == 0) {
		return xts_ctl_eval_main(argc, argv);
	}
	if (strcmp(cmd, "check-schema") == 0) {
		return xts_ctl_check_schema_main(argc, argv);
	}
	if (strcmp(cmd, "logs") == 0)
		return logs_command(config_path, argc, argv);
	if (strcmp(cmd, "test-connection") == 0) {
		struct xts_config *cfg = job_config(config_path, argc == 2 ? argv[1] : NULL);
		int code;
		if (cfg == NULL)
			return 2;
		code = xts_ctl_test_connection_main(cfg, argc, argv);
		xts_config_free(cfg);
		return code;
	}
	fprintf(stderr, "xtsyncctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
