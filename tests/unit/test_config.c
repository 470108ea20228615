/* SPDX-License-Identifier: MIT */
/* Unit tests for lib/config.c and lib/secret.c: valid configs load with their
 * defaults, every broken-config case gives the right FILE:LINE: message (all
 * in one run), durations parse, secrets are read and refused as they should,
 * and docs/internals/config.md matches the key table. */
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "tmpdir.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "secret.h"
#include "xts_build.h"

static char tmpdir[256];

static void
write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int
setup_dir(void **state)
{
	(void)state;
	if (xts_test_tmpdir(tmpdir, sizeof(tmpdir), "config") != 0)
		return -1;
	write_file("secret_a", "s3cr3t-a\n", 0600);
	write_file("secret_b", "s3cr3t-b\r\n", 0400);
	write_file("open_secret", "visible\n", 0644);
	write_file("cert.pem", "-----BEGIN CERTIFICATE-----\n", 0644);
	return 0;
}

static int
teardown_dir(void **state)
{
	(void)state;
	return xts_test_rmtree(tmpdir);
}

/* Load `text` from tmpdir/name; returns the load's result. */
static int
load(const char *name, const char *text, struct xts_config **cfg, struct xts_config_problems *p)
{
	char path[512];

	write_file(name, text, 0644);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return xts_config_load(path, cfg, p);
}

static int
load_bytes(const char *name, const char *data, size_t len, struct xts_config **cfg, struct xts_config_problems *p)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return xts_config_load(path, cfg, p);
}

/* Assert problem i is at `line` and its message contains `needle`. */
static void
assert_problem(const struct xts_config_problems *p, size_t i, int line, const char *needle)
{
	if (i >= p->n)
		fail_msg("expected problem %zu (line %d, '%s') but there are only %zu", i, line, needle, p->n);
	if (p->v[i].line != line || strstr(p->v[i].msg, needle) == NULL)
		fail_msg("problem %zu: expected line %d containing '%s', got line %d: '%s'", i, line, needle,
			 p->v[i].line, p->v[i].msg);
}

static const char good_conf[] =
	"; a valid config\n"                                                      /* 1 */
	"[daemon]\n"                                                              /* 2 */
	"state_dir = state\n"                                                     /* 3 */
	"log_level = debug\n"                                                     /* 4 */
	"\n"                                                                      /* 5 */
	"[smtp]\n"                                                                /* 6 */
	"url = smtp://127.0.0.1:2525\n"                                           /* 7 */
	"from = xtsync@contoso.example\n"                                         /* 8 */
	"\n"                                                                      /* 9 */
	"[tenant \"contoso\"]\n"                                                  /* 10 */
	"tenant_id = 00000000-0000-0000-0000-00000000000a ; inline comment\n"    /* 11 */
	"client_id = 11111111-1111-1111-1111-111111111111\n"                      /* 12 */
	"client_secret_file = ./secret_a\n"                                       /* 13 */
	"\n"                                                                      /* 14 */
	"[tenant \"fabrikam\"]\n"                                                 /* 15 */
	"tenant_id = fabrikam.onmicrosoft.com\n"                                  /* 16 */
	"client_id = 33333333-3333-3333-3333-333333333333\n"                      /* 17 */
	"client_certificate_file = cert.pem\n"                                    /* 18 */
	"client_key_file = ./secret_b\n"                                          /* 19 */
	"authority = http://127.0.0.1:8080/\n"                                    /* 20 */
	"size = large\n"                                                          /* 21 */
	"\n"                                                                      /* 22 */
	"[job \"c2f\"]\n"                                                         /* 23 */
	"source = contoso\n"                                                      /* 24 */
	"target = fabrikam\n"                                                     /* 25 */
	"assigned_groups = 22222222-2222-2222-2222-222222222222, 44444444-4444-4444-4444-444444444444\n" /* 26 */
	"interval = 1h30m\n"                                                      /* 27 */
	"notify = ops@contoso.example,sec@contoso.example\n"                      /* 28 */
	"enabled = no\n";                                                         /* 29 */

static void
test_valid_config_and_defaults(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	const struct xts_config_job *j;
	const struct xts_config_tenant *t;
	char expect[600];
	int ret;

	(void)state;
	ret = load("good.conf", good_conf, &cfg, &p);
	if (ret != 0) {
		xts_config_problems_print(&p, stderr);
		fail_msg("good config refused: %s", xts_errname(ret));
	}
	assert_int_equal(p.n, 0);
	assert_non_null(cfg);
	/* relative paths resolve against the config's directory */
	snprintf(expect, sizeof(expect), "%s/state", tmpdir);
	assert_string_equal(cfg->daemon.state_dir, expect);
	assert_int_equal(cfg->daemon.log_level, XTS_LOG_DEBUG);
	/* defaults */
	assert_string_equal(cfg->daemon.control_socket, "/run/xtsync/control.sock");
	assert_string_equal(cfg->daemon.provisioning_log, "/var/log/xtsync/provisioning.log");
	assert_string_equal(cfg->daemon.control_group, "");
	assert_int_equal(cfg->daemon.max_concurrent_jobs, 4);
	assert_true(cfg->smtp.present);
	assert_int_equal(cfg->smtp.line, 6);
	assert_int_equal(cfg->n_tenants, 2);
	t = xts_config_tenant_find(cfg, "contoso");
	assert_non_null(t);
	assert_int_equal(t->line, 10);
	assert_string_equal(t->tenant_id, "00000000-0000-0000-0000-00000000000a");
	assert_string_equal(t->authority, "https://login.microsoftonline.com");
	assert_string_equal(t->graph_endpoint, "https://graph.microsoft.com");
	assert_int_equal(t->size, XTS_TENANT_SMALL);
	assert_int_equal(t->max_in_flight, 8);
	snprintf(expect, sizeof(expect), "%s/./secret_a", tmpdir);
	assert_string_equal(t->client_secret_file, expect);
	t = xts_config_tenant_find(cfg, "fabrikam");
	assert_non_null(t);
	assert_string_equal(t->authority, "http://127.0.0.1:8080"); /* trailing slash dropped */
	assert_int_equal(t->size, XTS_TENANT_LARGE);
	assert_int_equal(xts_config_key_line("tenant", t, "size"), 21);
	assert_int_equal(xts_config_key_line("tenant", t, "max_in_flight"), 15); /* default: header line */
	assert_null(xts_config_tenant_find(cfg, "nope"));

	assert_int_equal(cfg->n_jobs, 1);
	j = xts_config_job_find(cfg, "c2f");
	assert_non_null(j);
	assert_ptr_equal(j->source_tenant, xts_config_tenant_find(cfg, "contoso"));
	assert_ptr_equal(j->target_tenant, xts_config_tenant_find(cfg, "fabrikam"));
	assert_int_equal(j->assigned_groups.n, 2);
	assert_string_equal(j->assigned_groups.v[1], "44444444-4444-4444-4444-444444444444");
	assert_int_equal(j->assigned_users.n, 0);
	assert_int_equal(j->interval_ms, 5400000);
	assert_int_equal(j->notify.n, 2);
	assert_false(j->enabled);
	assert_int_equal(j->scope, XTS_SCOPE_ASSIGNED);
	assert_int_equal(j->deprovision, XTS_DEPROVISION_DISABLE);
	assert_int_equal(j->deletion_threshold, 500);
	assert_int_equal(j->quarantine_min_operations, 5000);
	assert_int_equal(j->quarantine_min_failures, 5000);
	assert_true(j->quarantine_failure_ratio > 0.399 && j->quarantine_failure_ratio < 0.401);
	assert_int_equal(j->quarantine_max_failures, 40000);
	assert_int_equal(j->escrow_retry_base_ms, 300000);
	assert_string_equal(j->schema, "");
	assert_string_equal(j->link_attribute, "");
	assert_int_equal(xts_config_key_line("job", j, "interval"), 27);
	xts_config_free(cfg);
	xts_config_problems_free(&p);
}

static void
test_durations(void **state)
{
	uint64_t ms = 0;

	(void)state;
	assert_int_equal(xts_config_parse_duration("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(xts_config_parse_duration("90s", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(xts_config_parse_duration("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(xts_config_parse_duration("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(xts_config_parse_duration("1h30m15s", &ms), 0);
	assert_int_equal(ms, 5415000);
	assert_int_equal(xts_config_parse_duration("", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("m", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("5d", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("-5s", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("1h30", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("5 m", &ms), XTS_EINVAL);
	assert_int_equal(xts_config_parse_duration("99999999999999999999", &ms), XTS_ERANGE);
	assert_int_equal(xts_config_parse_duration("721h", &ms), XTS_ERANGE);
}

/* Every kind of problem, in one file, reported in one run with its line. */
static const char bad_conf[] =
	"[daemon]\n"                                                              /* 1 */
	"log_level = loud\n"                                                      /* 2 */
	"bogus_key = 1\n"                                                         /* 3 */
	"max_concurrent_jobs = 0\n"                                               /* 4 */
	"[nonsense]\n"                                                            /* 5 */
	"x = y\n"                                                                 /* 6 */
	"[tenant \"a\"]\n"                                                        /* 7 */
	"tenant_id = not a guid!\n"                                               /* 8 */
	"client_id = 11111111-1111-1111-1111-111111111111\n"                      /* 9 */
	"client_id = 11111111-1111-1111-1111-111111111112\n"                      /* 10 */
	"client_secret_file = ./open_secret\n"                                    /* 11 */
	"authority = http://login.example.com\n"                                  /* 12 */
	"graph_endpoint = https://\n"                                             /* 13 */
	"[tenant \"b\"]\n"                                                        /* 14 */
	"tenant_id = b.example\n"                                                 /* 15 */
	"client_id = 22222222-2222-2222-2222-222222222222\n"                      /* 16 */
	"client_secret_file = ./missing_secret\n"                                 /* 17 */
	"[tenant \"a\"]\n"                                                        /* 18 */
	"tenant_id = dup.example\n"                                               /* 19 */
	"[tenant \"c\"]\n"                                                        /* 20 */
	"tenant_id = c.example\n"                                                 /* 21 */
	"client_id = 33333333-3333-3333-3333-333333333333\n"                      /* 22 */
	"client_secret_file = ./secret_a\n"                                       /* 23 */
	"client_key_file = ./secret_b\n"                                          /* 24 */
	"[tenant \"d\"]\n"                                                        /* 25 */
	"tenant_id = d.example\n"                                                 /* 26 */
	"client_id = 44444444-4444-4444-4444-444444444444\n"                      /* 27 */
	"[job \"j1\"]\n"                                                          /* 28 */
	"source = a\n"                                                            /* 29 */
	"target = ghost\n"                                                        /* 30 */
	"interval = 5x\n"                                                         /* 31 */
	"deprovision = shred\n"                                                   /* 32 */
	"notify = ops@contoso.example\n"                                          /* 33 */
	"[job \"j2\"]\n"                                                          /* 34 */
	"source = b\n"                                                            /* 35 */
	"target = b\n"                                                            /* 36 */
	"scope = assigned\n"                                                      /* 37 */
	"quarantine_failure_ratio = 1.5\n"                                        /* 38 */
	"enabled = maybe\n"                                                       /* 39 */
	"this line has no equals sign\n"                                          /* 40 */
	"[job \"j3\"]\n"                                                          /* 41 */
	"scope = all\n"                                                           /* 42 */
	"assigned_users = 12345\n";                                               /* 43 */

static void
test_all_problems_in_one_run(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = (struct xts_config *)1;
	char path[512];
	size_t i = 0;
	int ret;

	(void)state;
	ret = load("bad.conf", bad_conf, &cfg, &p);
	assert_int_equal(ret, XTS_ECONFIG);
	assert_null(cfg);
	if (getenv("XTS_TEST_VERBOSE") != NULL)
		xts_config_problems_print(&p, stderr);
	snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
	assert_string_equal(p.v[0].file, path);
	assert_problem(&p, i++, 2, "log_level: 'loud' is not one of: crit, err, warning, notice, info, debug");
	assert_problem(&p, i++, 3, "unknown key 'bogus_key' in [daemon]");
	assert_problem(&p, i++, 4, "max_concurrent_jobs: '0' is not an integer between 1 and 64");
	assert_problem(&p, i++, 5, "unknown section [nonsense]");
	assert_problem(&p, i++, 8, "tenant_id: 'not a guid!' is neither a GUID nor a domain name");
	assert_problem(&p, i++, 10, "duplicate key 'client_id' (first set on line 9)");
	assert_problem(&p, i++, 11, "readable by others");
	assert_problem(&p, i++, 12, "http:// is allowed only for loopback hosts");
	assert_problem(&p, i++, 13, "malformed URL: no host");
	assert_problem(&p, i++, 17, "client_secret_file:");
	assert_problem(&p, i - 1, 17, "No such file or directory");
	assert_problem(&p, i++, 18, "duplicate section [tenant \"a\"] (first defined on line 7)");
	assert_problem(&p, i++, 23, "set either client_secret_file or client_certificate_file + client_key_file, not both");
	assert_problem(&p, i++, 25, "[tenant \"d\"]: no credential");
	assert_problem(&p, i++, 28, "[job \"j1\"]: scope = assigned needs");
	assert_problem(&p, i++, 30, "target: no [tenant \"ghost\"] is defined");
	assert_problem(&p, i++, 31, "interval: '5x' is not a duration");
	assert_problem(&p, i++, 32, "deprovision: 'shred' is not one of: disable, delete, none");
	/* 33: notify without [smtp] is a notice, not a problem (test_notify_without_smtp) */
	assert_problem(&p, i++, 36, "source and target are the same tenant 'b'");
	assert_problem(&p, i++, 37, "scope = assigned needs assigned_groups or assigned_users");
	assert_problem(&p, i++, 38, "quarantine_failure_ratio: '1.5' is not a number in (0, 1]");
	assert_problem(&p, i++, 39, "enabled: 'maybe' is not a boolean");
	assert_problem(&p, i++, 40, "syntax error");
	assert_problem(&p, i++, 41, "[job \"j3\"]: required key 'source' is missing");
	assert_problem(&p, i++, 41, "[job \"j3\"]: required key 'target' is missing");
	assert_problem(&p, i++, 43, "assigned_users: '12345' is not an object id (GUID)");
	if (p.n != i) {
		xts_config_problems_print(&p, stderr);
		fail_msg("expected %zu problems, got %zu", i, p.n);
	}
	xts_config_problems_free(&p);
}

static void
test_problem_format_and_small_cases(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	char *out = NULL;
	size_t outlen = 0;
	FILE *mf;

	(void)state;
	/* key before any section; unterminated header; bare [job]; bad name */
	assert_int_equal(xts_config_load_string("x.conf", "a = b\n[daemon\n[job]\n[job \"a b\"]\n[smtp]\n", &cfg, &p),
			 XTS_ECONFIG);
	assert_problem(&p, 0, 1, "key 'a' outside any section");
	assert_problem(&p, 1, 2, "malformed section header");
	assert_problem(&p, 2, 3, "needs a quoted name");
	assert_problem(&p, 3, 4, "job name \"a b\" must be");
	assert_problem(&p, 4, 5, "[smtp]: required key 'url' is missing");
	assert_problem(&p, 5, 5, "[smtp]: required key 'from' is missing");
	mf = open_memstream(&out, &outlen);
	assert_non_null(mf);
	xts_config_problems_print(&p, mf);
	fclose(mf);
	assert_non_null(strstr(out, "x.conf:1: key 'a' outside any section\n"));
	assert_non_null(strstr(out, "x.conf:5: [smtp]: required key 'url' is missing\n"));
	free(out);
	xts_config_problems_free(&p);

	/* An https URL with userinfo, a non-smtp smtp url, http on 127.x and ::1 */
	assert_int_equal(xts_config_load_string("y.conf",
						 "[smtp]\nurl = http://127.0.0.1\nfrom = a@b.example\n"
						 "[tenant \"t\"]\ntenant_id = t.example\n"
						 "client_id = 11111111-1111-1111-1111-111111111111\n"
						 "client_secret_file = /nonexistent/s\n"
						 "authority = https://user@login.example\n"
						 "graph_endpoint = http://[::1]:9000\n",
						 &cfg, &p),
			 XTS_ECONFIG);
	assert_problem(&p, 0, 2, "url: 'http://127.0.0.1': unsupported or missing URL scheme");
	assert_problem(&p, 1, 7, "client_secret_file: /nonexistent/s:");
	assert_problem(&p, 2, 8, "must not carry credentials");
	assert_int_equal(p.n, 3); /* http://[::1] is accepted */
	xts_config_problems_free(&p);

	/* state_dir and control_socket always name a path: empty is a problem
	 * here, not a start-up failure (exit 1) later; metrics_file defaults
	 * to none and an empty provisioning_log writes no log, so those are fine */
	assert_int_equal(xts_config_load_string("e.conf",
						 "[daemon]\nstate_dir =\ncontrol_socket =  \n"
						 "provisioning_log =\nmetrics_file =\n",
						 &cfg, &p),
			 XTS_ECONFIG);
	assert_problem(&p, 0, 2, "state_dir: an empty value is not a path (leave the line out for the "
		       "default, /var/lib/xtsync)");
	assert_problem(&p, 1, 3, "control_socket: an empty value is not a path");
	assert_int_equal(p.n, 2);
	xts_config_problems_free(&p);
	assert_int_equal(xts_config_load_string("f.conf", "[daemon]\nmetrics_file =\nprovisioning_log =\n",
						 &cfg, &p), 0);
	assert_int_equal(p.n, 0);
	assert_string_equal(cfg->daemon.state_dir, "/var/lib/xtsync");
	assert_string_equal(cfg->daemon.provisioning_log, "");
	xts_config_free(cfg);
	cfg = NULL;

	/* a missing file is one problem at line 0 */
	assert_int_equal(xts_config_load("/nonexistent/xtsync.conf", &cfg, &p), XTS_ECONFIG);
	assert_int_equal(p.n, 1);
	assert_int_equal(p.v[0].line, 0);
	assert_non_null(strstr(p.v[0].msg, "cannot open"));
	xts_config_problems_free(&p);
}

static void
test_credentials(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	static const char conf[] = "[tenant \"t\"]\ntenant_id = t.example\n"
				   "client_id = 11111111-1111-1111-1111-111111111111\n"
				   "client_secret_file = secret_a\n";
	char *s = NULL;

	(void)state;
	/* a bare name is a systemd credential: without $CREDENTIALS_DIRECTORY the
	 * config cannot check it (a notice, not a problem) but reading it fails */
	unsetenv("CREDENTIALS_DIRECTORY");
	assert_int_equal(xts_config_load_string("c.conf", conf, &cfg, &p), 0);
	assert_int_equal(p.n, 0);
	xts_config_free(cfg);
	cfg = NULL;
	assert_int_equal(xts_secret_read("secret_a", &s), XTS_ENOENT);
	assert_null(s);

	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	assert_int_equal(xts_config_load_string("c.conf", conf, &cfg, &p), 0);
	assert_int_equal(p.n, 0);
	assert_string_equal(cfg->tenants[0].client_secret_file, "secret_a");
	xts_config_free(cfg);
	assert_int_equal(xts_secret_read("secret_a", &s), 0);
	assert_string_equal(s, "s3cr3t-a");
	xts_secret_free(s);
	assert_int_equal(xts_secret_read("secret_b", &s), 0);
	assert_string_equal(s, "s3cr3t-b"); /* one \r\n stripped */
	xts_secret_free(s);
	assert_int_equal(xts_secret_read("open_secret", &s), XTS_EPERM);
	assert_null(s);
	assert_int_equal(xts_secret_read("nope", &s), XTS_ENOENT);
	assert_int_equal(xts_secret_read("", &s), XTS_EINVAL);
	unsetenv("CREDENTIALS_DIRECTORY");
}

static void
test_defaults_only_and_reloadable(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;

	(void)state;
	assert_int_equal(xts_config_load_string("e.conf", "# nothing\n", &cfg, &p), 0);
	assert_false(cfg->smtp.present);
	assert_int_equal(cfg->n_jobs, 0);
	assert_string_equal(cfg->daemon.state_dir, "/var/lib/xtsync");
	assert_int_equal(cfg->daemon.log_level, XTS_LOG_INFO);
	xts_config_free(cfg);
	assert_int_equal(xts_config_key_reloadable("daemon", "control_socket"), 0);
	assert_int_equal(xts_config_key_reloadable("daemon", "log_level"), 1);
	assert_int_equal(xts_config_key_reloadable("job", "interval"), 1);
	assert_int_equal(xts_config_key_reloadable("job", "nope"), -1);
}

static void
test_long_lines_and_continuations(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	char *text = xts_malloc(20000);
	const struct xts_config_job *j;
	size_t n;

	(void)state;
	assert_non_null(text);
	n = (size_t)snprintf(text, 20000, "[daemon]\nmetrics_file = ");
	memset(text + n, 'a', 10000);
	memcpy(text + n + 10000, "\nlog_level = info\n", 19);
	assert_int_equal(xts_config_load_string("l.conf", text, &cfg, &p), XTS_ECONFIG);
	assert_problem(&p, 0, 2, "line too long");
	assert_int_equal(p.n, 1);
	xts_config_problems_free(&p);
	/* a 150-character value is fine */
	n = (size_t)snprintf(text, 20000, "[daemon]\nmetrics_file = /");
	memset(text + n, 'a', 150);
	text[n + 150] = '\0';
	assert_int_equal(xts_config_load_string("l.conf", text, &cfg, &p), 0);
	assert_int_equal(strlen(cfg->daemon.metrics_file), 151);
	xts_config_free(cfg);

	/* long lists continue on indented lines; indented keys are keys */
	assert_int_equal(xts_config_load_string("m.conf",
		"[tenant \"a\"]\ntenant_id = a.example\nclient_id = 11111111-1111-1111-1111-111111111111\n"
		"client_certificate_file = /etc/hostname\nclient_key_file = /etc/hostname\n"
		"[tenant \"b\"]\ntenant_id = b.example\nclient_id = 11111111-1111-1111-1111-111111111111\n"
		"client_certificate_file = /etc/hostname\nclient_key_file = /etc/hostname\n"
		"[job \"j\"]\n"
		"  source = a\n"
		"\ttarget = b\n"
		"assigned_groups = 22222222-2222-2222-2222-222222222222,\n"
		"    33333333-3333-3333-3333-333333333333 ,\n"
		"; a comment inside\n"
		"    44444444-4444-4444-4444-444444444444\n",
		&cfg, &p), XTS_ECONFIG); /* /etc/hostname is world-readable */
	assert_problem(&p, 0, 5, "client_key_file: /etc/hostname is readable by others");
	assert_problem(&p, 1, 10, "client_key_file: /etc/hostname is readable by others");
	assert_int_equal(p.n, 2);
	xts_config_problems_free(&p);
	assert_int_equal(xts_config_load_string("m.conf",
		"[tenant \"a\"]\ntenant_id = a.example\nclient_id = 11111111-1111-1111-1111-111111111111\n"
		"client_secret_file = /nonexistent\n"
		"  bad continuation\n"
		"[job \"j\"]\n"
		"  continuation right after a header\n"
		"source = a\ntarget = a\nscope = all\n"
		"assigned_users = 22222222-2222-2222-2222-222222222222,\n"
		"   not-a-guid\n",
		&cfg, &p), XTS_ECONFIG);
	assert_problem(&p, 0, 4, "client_secret_file: /nonexistent:");
	assert_problem(&p, 1, 5, "client_secret_file: only lists may continue on an indented line");
	assert_problem(&p, 2, 7, "syntax error");
	assert_problem(&p, 3, 9, "source and target are the same tenant");
	assert_problem(&p, 4, 12, "assigned_users: 'not-a-guid' is not an object id (GUID)");
	assert_int_equal(p.n, 5);
	xts_config_problems_free(&p);

	/* the valid list case */
	write_file("cont.conf",
		   "[tenant \"a\"]\ntenant_id = a.example\nclient_id = 11111111-1111-1111-1111-111111111111\n"
		   "client_secret_file = ./secret_a\n"
		   "[tenant \"b\"]\ntenant_id = b.example\nclient_id = 11111111-1111-1111-1111-111111111111\n"
		   "client_secret_file = ./secret_a\n"
		   "[job \"j\"]\n  source = a\n\ttarget = b\n"
		   "assigned_groups = 22222222-2222-2222-2222-222222222222,\n"
		   "    33333333-3333-3333-3333-333333333333 , ; inline comment\n"
		   "; a comment inside\n"
		   "    44444444-4444-4444-4444-444444444444\n", 0644);
	snprintf(text, 20000, "%s/cont.conf", tmpdir);
	if (xts_config_load(text, &cfg, &p) != 0) {
		xts_config_problems_print(&p, stderr);
		fail_msg("continuation config refused");
	}
	j = xts_config_job_find(cfg, "j");
	assert_non_null(j);
	assert_string_equal(j->source, "a");
	assert_int_equal(j->assigned_groups.n, 3);
	assert_string_equal(j->assigned_groups.v[1], "33333333-3333-3333-3333-333333333333");
	assert_string_equal(j->assigned_groups.v[2], "44444444-4444-4444-4444-444444444444");
	xts_config_free(cfg);

	/* a NUL byte inside a line */
	assert_int_equal(load_bytes("nul.conf", "[daemon]\nlog_level = in\0fo\n", 28, &cfg, &p), XTS_ECONFIG);
	assert_problem(&p, 0, 2, "NUL byte");
	xts_config_problems_free(&p);
	xts_free(text);
}

/* '#' starts a comment like ';': at the start of a line, and after
 * whitespace on key and continuation lines. Not preceded by whitespace it is
 * part of the value (a#b, a URL fragment), as ';' is. */
static const char hash_conf[] =
	"# a valid config with hash comments\n"                                  /* 1 */
	"[daemon]   # header comment\n"                                          /* 2 */
	"state_dir = state   # a path\n"                                         /* 3 */
	"metrics_file = /tmp/m#1.prom\n"                                         /* 4 */
	"control_socket = /run/x;y.sock\n"                                       /* 5 */
	"[smtp]\n"                                                               /* 6 */
	"url = smtp://127.0.0.1:2525 # loopback\n"                               /* 7 */
	"from = xtsync@contoso.example\t# sender\n"                              /* 8 */
	"[tenant \"contoso\"]\n"                                                 /* 9 */
	"tenant_id = 00000000-0000-0000-0000-00000000000a   # GUID\n"            /* 10 */
	"client_id = 11111111-1111-1111-1111-111111111111 # app: xtsync\n"       /* 11 */
	"client_secret_file = ./secret_a   # a path\n"                           /* 12 */
	"graph_endpoint = http://127.0.0.1:8080/g#frag\n"                        /* 13 */
	"[tenant \"fabrikam\"]\n"                                                /* 14 */
	"tenant_id = fabrikam.onmicrosoft.com   # note\n"                        /* 15 */
	"client_id = 33333333-3333-3333-3333-333333333333\n"                     /* 16 */
	"client_secret_file = ./secret_a\n"                                      /* 17 */
	"[job \"c2f\"]\n"                                                        /* 18 */
	"  source = contoso #src\n"                                              /* 19 */
	"target = fabrikam\n"                                                    /* 20 */
	"assigned_groups = 22222222-2222-2222-2222-222222222222, # first\n"      /* 21 */
	"    44444444-4444-4444-4444-444444444444 # second: with a colon\n"      /* 22 */
	"    # an indented comment line\n"                                       /* 23 */
	"    55555555-5555-5555-5555-555555555555 ; third: with a colon\n"       /* 24 */
	"interval = 2m  # hash\n"                                                /* 25 */
	"deletion_threshold = 0 #\n"                                             /* 26 */
	"notify = ops@contoso.example, sec@contoso.example # who\n"              /* 27 */
	"link_attribute = a#b\n";                                                /* 28 */

static void
test_inline_hash_comments(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	const struct xts_config_tenant *t;
	const struct xts_config_job *j;
	char expect[600];
	int ret;

	(void)state;
	ret = load("hash.conf", hash_conf, &cfg, &p);
	if (ret != 0) {
		xts_config_problems_print(&p, stderr);
		fail_msg("config with '#' comments refused: %s", xts_errname(ret));
	}
	assert_int_equal(p.n, 0);
	snprintf(expect, sizeof(expect), "%s/state", tmpdir);
	assert_string_equal(cfg->daemon.state_dir, expect);
	assert_string_equal(cfg->daemon.metrics_file, "/tmp/m#1.prom");
	assert_string_equal(cfg->daemon.control_socket, "/run/x;y.sock");
	assert_string_equal(cfg->smtp.url, "smtp://127.0.0.1:2525");
	assert_string_equal(cfg->smtp.from, "xtsync@contoso.example");
	t = xts_config_tenant_find(cfg, "contoso");
	assert_non_null(t);
	assert_string_equal(t->tenant_id, "00000000-0000-0000-0000-00000000000a");
	assert_string_equal(t->client_id, "11111111-1111-1111-1111-111111111111");
	snprintf(expect, sizeof(expect), "%s/./secret_a", tmpdir);
	assert_string_equal(t->client_secret_file, expect);
	assert_string_equal(t->graph_endpoint, "http://127.0.0.1:8080/g#frag");
	t = xts_config_tenant_find(cfg, "fabrikam");
	assert_non_null(t);
	assert_string_equal(t->tenant_id, "fabrikam.onmicrosoft.com");
	j = xts_config_job_find(cfg, "c2f");
	assert_non_null(j);
	assert_string_equal(j->source, "contoso");
	assert_int_equal(xts_config_key_line("job", j, "source"), 19);
	assert_int_equal(j->assigned_groups.n, 3);
	assert_string_equal(j->assigned_groups.v[0], "22222222-2222-2222-2222-222222222222");
	assert_string_equal(j->assigned_groups.v[1], "44444444-4444-4444-4444-444444444444");
	assert_string_equal(j->assigned_groups.v[2], "55555555-5555-5555-5555-555555555555");
	assert_int_equal(j->interval_ms, 120000);
	assert_int_equal(xts_config_key_line("job", j, "interval"), 25);
	assert_int_equal(j->deletion_threshold, 0);
	assert_int_equal(j->notify.n, 2);
	assert_string_equal(j->notify.v[1], "sec@contoso.example");
	assert_string_equal(j->link_attribute, "a#b");
	xts_config_free(cfg);
}

/* A comment does not move FILE:LINE: problems, nor end up in their values;
 * a comment before the '=' leaves a line with no '=' (';' and '#' alike). */
static const char hash_bad_conf[] =
	"[daemon]\n"                                                             /* 1 */
	"log_level = loud # too loud\n"                                          /* 2 */
	"[job \"j\"]\n"                                                          /* 3 */
	"interval = 5x   # bad\n"                                                /* 4 */
	"  # an indented comment line\n"                                         /* 5 */
	"source = a # no such tenant\n"                                          /* 6 */
	"bogus # = 1\n"                                                          /* 7 */
	"other ; = 1\n"                                                          /* 8 */
	"target = b;c # ';' kept, '#' cut\n"                                     /* 9 */
	"scope = all\n"                                                          /* 10 */
	"assigned_users = 22222222-2222-2222-2222-222222222222, # first\n"       /* 11 */
	"   not-a-guid # second\n";                                              /* 12 */

static void
test_inline_hash_comment_problems(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = (struct xts_config *)1;
	char *out = NULL, want[600];
	size_t outlen = 0, i = 0;
	FILE *mf;

	(void)state;
	assert_int_equal(load("hash_bad.conf", hash_bad_conf, &cfg, &p), XTS_ECONFIG);
	assert_null(cfg);
	if (getenv("XTS_TEST_VERBOSE") != NULL)
		xts_config_problems_print(&p, stderr);
	assert_problem(&p, i++, 2, "log_level: 'loud' is not one of");
	assert_problem(&p, i++, 4, "interval: '5x' is not a duration");
	assert_problem(&p, i++, 6, "source: no [tenant \"a\"] is defined");
	assert_problem(&p, i++, 7, "syntax error");
	assert_problem(&p, i++, 8, "syntax error");
	assert_problem(&p, i++, 9, "target: no [tenant \"b;c\"] is defined");
	assert_problem(&p, i++, 12, "assigned_users: 'not-a-guid' is not an object id (GUID)");
	if (p.n != i) {
		xts_config_problems_print(&p, stderr);
		fail_msg("expected %zu problems, got %zu", i, p.n);
	}
	mf = open_memstream(&out, &outlen);
	assert_non_null(mf);
	xts_config_problems_print(&p, mf);
	fclose(mf);
	snprintf(want, sizeof(want), "%s/hash_bad.conf:4: interval: '5x' is not a duration", tmpdir);
	assert_non_null(strstr(out, want));
	free(out);
	xts_config_problems_free(&p);
}

/* Run load() with the log at notice level and stderr in a file; the
 * diagnostics written go to log (size n). Returns the load's result. */
static int
load_logged(const char *name, const char *text, struct xts_config **cfg, struct xts_config_problems *p,
	    char *log, size_t n)
{
	char path[512];
	FILE *f;
	size_t got;
	int saved, fd, ret;

	snprintf(path, sizeof(path), "%s/%s.log", tmpdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(2);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
	xts_log_set_level(XTS_LOG_NOTICE);
	ret = load(name, text, cfg, p);
	xts_log_set_level(XTS_LOG_CRIT);
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	got = fread(log, 1, n - 1, f);
	log[got] = '\0';
	fclose(f);
	return ret;
}

/* notify without [smtp]: the contract makes [smtp] optional ("without it no
 * mail is sent"), so the config loads; a notice says no mail will be sent. */
static const char notify_nosmtp_conf[] =
	"[tenant \"a\"]\n"                                                       /* 1 */
	"tenant_id = a.example\n"                                                /* 2 */
	"client_id = 11111111-1111-1111-1111-111111111111\n"                     /* 3 */
	"client_secret_file = ./secret_a\n"                                      /* 4 */
	"[tenant \"b\"]\n"                                                       /* 5 */
	"tenant_id = b.example\n"                                                /* 6 */
	"client_id = 22222222-2222-2222-2222-222222222222\n"                     /* 7 */
	"client_secret_file = ./secret_a\n"                                      /* 8 */
	"[job \"j\"]\n"                                                          /* 9 */
	"source = a\n"                                                           /* 10 */
	"target = b\n"                                                           /* 11 */
	"scope = all\n"                                                          /* 12 */
	"notify = ops@contoso.example, sec@contoso.example\n"                    /* 13 */
	"[job \"quiet\"]\n"                                                      /* 14 */
	"source = b\n"                                                           /* 15 */
	"target = a\n"                                                           /* 16 */
	"scope = all\n";                                                         /* 17 */

static void
test_notify_without_smtp(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	const struct xts_config_job *j;
	char log[4096], want[600], path[512];
	int ret;

	(void)state;
	ret = load_logged("nosmtp.conf", notify_nosmtp_conf, &cfg, &p, log, sizeof(log));
	if (ret != 0) {
		xts_config_problems_print(&p, stderr);
		fail_msg("notify without [smtp] refused: %s", xts_errname(ret));
	}
	assert_int_equal(p.n, 0);
	assert_non_null(cfg);
	assert_false(cfg->smtp.present);
	j = xts_config_job_find(cfg, "j");
	assert_non_null(j);
	assert_int_equal(j->notify.n, 2);
	assert_string_equal(j->notify.v[0], "ops@contoso.example");
	xts_config_free(cfg);
	/* one notice, at the notify line, for the job that has recipients */
	snprintf(want, sizeof(want),
		 "xtsync: notice: %s/nosmtp.conf:13: notify: set, but there is no [smtp] section: no mail will be sent\n",
		 tmpdir);
	if (strstr(log, want) == NULL)
		fail_msg("expected notice '%s', log was '%s'", want, log);
	assert_null(strstr(strstr(log, want) + strlen(want), "no [smtp] section"));
	/* the daemon's path (partial load) agrees: no problem, a config */
	snprintf(path, sizeof(path), "%s/nosmtp.conf", tmpdir);
	assert_int_equal(xts_config_load_partial(path, &cfg, &p), 0);
	assert_non_null(cfg);
	assert_int_equal(p.n, 0);
	xts_config_free(cfg);

	/* with [smtp] there is no notice */
	snprintf(want, sizeof(want), "%s[smtp]\nurl = smtp://127.0.0.1:25\nfrom = xtsync@a.example\n",
		 notify_nosmtp_conf);
	ret = load_logged("withsmtp.conf", want, &cfg, &p, log, sizeof(log));
	assert_int_equal(ret, 0);
	assert_int_equal(p.n, 0);
	assert_true(cfg->smtp.present);
	xts_config_free(cfg);
	assert_null(strstr(log, "no [smtp] section"));
}

/* A config with problems unrelated to [daemon]: the partial load still gives
 * xtsyncctl its control_socket and provisioning_log (reload, logs). */
static const char partial_conf[] =
	"[daemon]\n"                                                             /* 1 */
	"control_socket = /run/elsewhere/ctl.sock\n"                             /* 2 */
	"provisioning_log = logs/prov.log\n"                                     /* 3 */
	"frobnicate = 1\n"                                                       /* 4 */
	"[tenant \"contoso\"]\n"                                                 /* 5 */
	"tenant_id = 00000000-0000-0000-0000-00000000000a\n"                     /* 6 */
	"client_id = 11111111-1111-1111-1111-111111111111\n"                     /* 7 */
	"client_secret_file = ./open_secret\n"                                   /* 8 */
	"[job \"j\"]\n"                                                          /* 9 */
	"source = contoso\n"                                                     /* 10 */
	"target = nosuch\n"                                                      /* 11 */
	"scope = all\n"                                                          /* 12 */
	"interval = 5q\n";                                                       /* 13 */

static void
test_partial_load(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT, q = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	char path[512], want[600];

	(void)state;
	/* The strict load refuses it... */
	assert_int_equal(load("partial.conf", partial_conf, &cfg, &p), XTS_ECONFIG);
	assert_null(cfg);
	/* ...the partial one keeps what it read, with the same problems. */
	snprintf(path, sizeof(path), "%s/partial.conf", tmpdir);
	assert_int_equal(xts_config_load_partial(path, &cfg, &q), XTS_ECONFIG);
	assert_non_null(cfg);
	assert_int_equal(q.n, p.n);
	assert_problem(&q, 0, 4, "unknown key 'frobnicate'");
	assert_problem(&q, 1, 8, "readable by others");
	assert_problem(&q, 2, 11, "no [tenant \"nosuch\"]");
	assert_problem(&q, 3, 13, "interval");
	assert_string_equal(cfg->daemon.control_socket, "/run/elsewhere/ctl.sock");
	snprintf(want, sizeof(want), "%s/logs/prov.log", tmpdir);
	assert_string_equal(cfg->daemon.provisioning_log, want);
	assert_int_equal(xts_config_key_line("daemon", &cfg->daemon, "control_socket"), 2);
	/* A bad value keeps its default. */
	assert_int_equal(cfg->n_jobs, 1);
	assert_int_equal(cfg->jobs[0].interval_ms, 40ULL * 60 * 1000);
	assert_null(cfg->jobs[0].target_tenant);
	xts_config_free(cfg);
	xts_config_problems_free(&p);
	xts_config_problems_free(&q);

	/* A valid file: 0, as xts_config_load. */
	write_file("partial_ok.conf", "[daemon]\ncontrol_socket = /s\n", 0644);
	snprintf(path, sizeof(path), "%s/partial_ok.conf", tmpdir);
	assert_int_equal(xts_config_load_partial(path, &cfg, &q), 0);
	assert_non_null(cfg);
	assert_int_equal(q.n, 0);
	assert_string_equal(cfg->daemon.control_socket, "/s");
	xts_config_free(cfg);

	/* A file that cannot be read: no config, and a line-0 problem says why. */
	snprintf(path, sizeof(path), "%s/nosuch.conf", tmpdir);
	cfg = (struct xts_config *)&q; /* must be reset */
	assert_int_equal(xts_config_load_partial(path, &cfg, &q), XTS_ECONFIG);
	assert_null(cfg);
	assert_int_equal(q.n, 1);
	assert_problem(&q, 0, 0, "cannot open: No such file or directory");
	xts_config_problems_free(&q);
}

/* Partial loads under allocation failure: either XTS_ENOMEM and no config,
 * or the partial config; never a crash or a leak. */
static void
test_partial_allocation_failures(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	char path[512];
	unsigned long nth;
	int ret;

	(void)state;
	write_file("partial_alloc.conf", partial_conf, 0644);
	snprintf(path, sizeof(path), "%s/partial_alloc.conf", tmpdir);
	for (nth = 1; nth < 2000; nth++) {
		xts_mem_fail_after(nth, 1);
		ret = xts_config_load_partial(path, &cfg, &p);
		xts_mem_fail_after(0, 0);
		xts_config_problems_free(&p);
		if (ret == XTS_ECONFIG) {
			assert_non_null(cfg);
			assert_string_equal(cfg->daemon.control_socket, "/run/elsewhere/ctl.sock");
			xts_config_free(cfg);
			break;
		}
		assert_int_equal(ret, XTS_ENOMEM);
		assert_null(cfg);
	}
	assert_true(nth < 2000);
}

/* Fail every allocation in turn: the loader must fail cleanly, never crash or leak. */
static void
test_allocation_failures(void **state)
{
	struct xts_config_problems p = XTS_CONFIG_PROBLEMS_INIT;
	struct xts_config *cfg = NULL;
	char path[512];
	unsigned long nth;
	int ret, saw_enomem = 0;

	(void)state;
	write_file("alloc.conf", good_conf, 0644);
	snprintf(path, sizeof(path), "%s/alloc.conf", tmpdir);
	for (nth = 1; nth < 2000; nth++) {
		xts_mem_fail_after(nth, 1);
		ret = xts_config_load(path, &cfg, &p);
		xts_mem_fail_after(0, 0);
		xts_config_problems_free(&p);
		if (ret == 0) {
			xts_config_free(cfg);
			break;
		}
		assert_int_equal(ret, XTS_ENOMEM);
		assert_null(cfg);
		saw_enomem = 1;
	}
	assert_true(saw_enomem);
	assert_true(nth < 2000);
}

/* docs/internals/config.md is the output of xts_config_dump_keys. */
static void
test_docs_current(void **state)
{
	const char *root = getenv("XTS_SOURCE_ROOT");
	char path[1024], *gen = NULL, *doc = NULL;
	size_t genlen = 0, doclen = 0;
	FILE *f;

	(void)state;
	if (root == NULL)
		root = XTS_SOURCE_ROOT;
	f = open_memstream(&gen, &genlen);
	assert_non_null(f);
	assert_int_equal(xts_config_dump_keys(f, 1), 0);
	fclose(f);
	snprintf(path, sizeof(path), "%s/docs/internals/config.md", root);
	f = fopen(path, "r");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	doc = calloc(1, 1 << 20);
	assert_non_null(doc);
	doclen = fread(doc, 1, (1 << 20) - 1, f);
	fclose(f);
	/* The generated table is the head of the doc (prose may follow). */
	if (doclen < genlen || memcmp(doc, gen, genlen) != 0)
		fail_msg("%s is stale: regenerate with `xtsyncd --dump-keys > docs/internals/config.md`", path);
	free(gen);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_config_and_defaults),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_all_problems_in_one_run),
		cmocka_unit_test(test_problem_format_and_small_cases),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_defaults_only_and_reloadable),
		cmocka_unit_test(test_long_lines_and_continuations),
		cmocka_unit_test(test_inline_hash_comments),
		cmocka_unit_test(test_inline_hash_comment_problems),
		cmocka_unit_test(test_notify_without_smtp),
		cmocka_unit_test(test_allocation_failures),
		cmocka_unit_test(test_partial_load),
		cmocka_unit_test(test_partial_allocation_failures),
		cmocka_unit_test(test_docs_current),
	};

	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
