/* SPDX-License-Identifier: MIT */
/* The xtsync configuration: /etc/xtsync/xtsync.conf (INI, parsed by inih)
 * loaded into fresh, immutable structures, with every problem collected as
 * "FILE:LINE: message". Every key is declared once in a table (config.c) that
 * drives parsing, validation, defaults and the generated documentation.
 * It does not read secrets (secret.h) nor apply a config (the daemon does). */
#ifndef XTS_CONFIG_H
#define XTS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One problem found in a config file. */
struct xts_config_problem {
	char *file; /* the config file's path as given */
	int line;   /* 1-based; 0 when the problem concerns the whole file */
	char *msg;  /* one sentence, no trailing newline, never contains a secret */
};

/* All problems of one load, in line order. Zero-initialise before use
 * (or XTS_CONFIG_PROBLEMS_INIT); release with xts_config_problems_free. */
struct xts_config_problems {
	struct xts_config_problem *v;
	size_t n, cap;
};
#define XTS_CONFIG_PROBLEMS_INIT { NULL, 0, 0 }

/* A comma-separated list value, split and trimmed (empty items dropped). */
struct xts_strlist {
	char **v;
	size_t n;
};

enum xts_scope { XTS_SCOPE_ASSIGNED = 0, XTS_SCOPE_ALL = 1 };
enum xts_deprovision { XTS_DEPROVISION_DISABLE = 0, XTS_DEPROVISION_DELETE = 1, XTS_DEPROVISION_NONE = 2 };
/* Microsoft Graph identity-and-access throttling classes (tenant size). */
enum xts_tenant_size { XTS_TENANT_SMALL = 0, XTS_TENANT_MEDIUM = 1, XTS_TENANT_LARGE = 2 };

/* Line numbers: `line` is the section header's line; key_line[i] is the line
 * that set the section's i-th key in table order (0 = default used). Use
 * xts_config_key_line() rather than indexing key_line directly. */
#define XTS_CONFIG_MAX_SECTION_KEYS 32

struct xts_config_daemon {
	int line;
	int key_line[XTS_CONFIG_MAX_SECTION_KEYS];
	char *state_dir;          /* directory holding xtsync.db */
	char *provisioning_log;   /* provisioning log file (JSON lines) */
	char *control_socket;     /* Unix socket path */
	char *metrics_file;       /* "" = no metrics */
	int log_level;            /* XTS_LOG_* */
	char *control_group;      /* "" = root only */
	long long max_concurrent_jobs;
};

struct xts_config_smtp {
	int line;                 /* 0 when there is no [smtp] section */
	int key_line[XTS_CONFIG_MAX_SECTION_KEYS];
	bool present;             /* false: no mail is sent */
	char *url;                /* smtp://host[:port] or smtps://host[:port] */
	char *from;
	char *username;           /* "" = no authentication */
	char *password_file;      /* "" or a path / credential name (secret.h) */
	char *ca_file;            /* "" or an extra PEM trust anchor */
};

struct xts_config_tenant {
	int line;
	int key_line[XTS_CONFIG_MAX_SECTION_KEYS];
	char *name;                    /* from [tenant "NAME"] */
	char *tenant_id;               /* GUID or initial domain */
	char *client_id;               /* GUID */
	char *client_secret_file;      /* "" or path / credential name */
	char *client_certificate_file; /* "" or path */
	char *client_key_file;         /* "" or path / credential name */
	char *authority;               /* no trailing slash */
	char *graph_endpoint;          /* no trailing slash */
	char *ca_file;                 /* "" = system trust store only */
	enum xts_tenant_size size;
	long long max_in_flight;       /* concurrent requests to this tenant */
};

struct xts_config_job {
	int line;
	int key_line[XTS_CONFIG_MAX_SECTION_KEYS];
	char *name;                    /* from [job "NAME"] */
	char *source, *target;         /* tenant names */
	const struct xts_config_tenant *source_tenant; /* resolved; borrowed from the same config */
	const struct xts_config_tenant *target_tenant;
	char *schema;                  /* "" = built-in cross-tenant schema */
	enum xts_scope scope;
	struct xts_strlist assigned_groups; /* object ids (GUIDs) */
	struct xts_strlist assigned_users;  /* object ids (GUIDs) */
	uint64_t interval_ms;
	long long deletion_threshold;  /* 0 = guard off */
	enum xts_deprovision deprovision;
	struct xts_strlist notify;     /* e-mail addresses */
	char *link_attribute;          /* "" = engine derives extension_<appid>_xtsyncSourceLink */
	long long quarantine_min_operations;
	long long quarantine_min_failures;
	double quarantine_failure_ratio;    /* 0..1 */
	long long quarantine_max_failures;
	uint64_t escrow_retry_base_ms;
	bool enabled;
};

struct xts_config {
	char *path;                    /* the file it was loaded from */
	struct xts_config_daemon daemon;
	struct xts_config_smtp smtp;
	struct xts_config_tenant *tenants;
	size_t n_tenants;
	struct xts_config_job *jobs;
	size_t n_jobs;
};

/* Load and validate the config at path into a new structure.
 * Returns 0 and sets *out (caller frees with xts_config_free) when the file
 * has no problem; otherwise returns XTS_ECONFIG (or XTS_ENOMEM/XTS_EIO),
 * sets *out to NULL and appends EVERY problem found to probs (which may be
 * NULL: then each problem is logged with xts_err). What is worth a word but
 * not a mistake (a systemd credential that cannot be checked here, a job's
 * notify without [smtp]) is logged with xts_notice and is no problem.
 * Relative paths in the file are resolved against the config file's
 * directory. Checks secret files exist and are not group/other-readable,
 * but never reads them. Validates each job's schema file when the schema
 * module provides a checker.
 * Blocks on file I/O (small files); call at start-up or on reload. */
int xts_config_load(const char *path, struct xts_config **out, struct xts_config_problems *probs);

/* The same, for tools that need a few values (xtsyncctl's control_socket
 * and provisioning_log) from a file that may have problems elsewhere: when
 * the file was read and its only trouble is problems in it, returns
 * XTS_ECONFIG with the problems in probs AND *out set to the config as far
 * as it could be read (caller frees). In such a config a key whose value
 * had a problem keeps its default, a duplicate section is ignored and
 * cross-references may be unresolved (job source_tenant/target_tenant NULL):
 * read values from it, never run it. Returns 0 exactly when
 * xts_config_load would; *out is NULL when the file could not be read
 * (a line-0 problem says why) or on XTS_ENOMEM/XTS_EIO. Blocks on file I/O. */
int xts_config_load_partial(const char *path, struct xts_config **out, struct xts_config_problems *probs);

/* Like xts_config_load, from a string; `name` is the file name used in
 * problems and the base directory for relative paths is the current
 * directory. For tests/fuzzing. */
int xts_config_load_string(const char *name, const char *text, struct xts_config **out,
			   struct xts_config_problems *probs);

void xts_config_free(struct xts_config *cfg);

/* Lookups by name; borrowed pointers into cfg, NULL when absent. */
const struct xts_config_tenant *xts_config_tenant_find(const struct xts_config *cfg, const char *name);
const struct xts_config_job *xts_config_job_find(const struct xts_config *cfg, const char *name);

/* The line that set `key` in a section struct (pass &cfg->daemon, &cfg->smtp,
 * a tenant or a job, with kind "daemon", "smtp", "tenant" or "job");
 * the section's header line when the key took its default; 0 if unknown. */
int xts_config_key_line(const char *kind, const void *section, const char *key);

/* Parse a duration: an integer followed by s, m or h, possibly repeated
 * ("90s", "2m", "1h30m"); a bare integer means seconds. Returns 0 and sets
 * *ms, or XTS_EINVAL / XTS_ERANGE (above 30 days). */
int xts_config_parse_duration(const char *s, uint64_t *ms);

/* Problems list helpers. add: printf-style message; XTS_ENOMEM on failure. */
int xts_config_problem_add(struct xts_config_problems *p, const char *file, int line,
			   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Print each problem as "FILE:LINE: message\n" (or "FILE: message" for line 0). */
void xts_config_problems_print(const struct xts_config_problems *p, FILE *out);
/* Stable sort of the problems from index `from` on, by line, so that the
 * output reads top to bottom. */
void xts_config_problems_sort(struct xts_config_problems *p, size_t from);
void xts_config_problems_free(struct xts_config_problems *p);

/* Write the key table as a Markdown document (docs/internals/config.md is
 * this output) or, with markdown == 0, one "section key type default" line
 * per key. Returns 0 or XTS_EIO. */
int xts_config_dump_keys(FILE *out, int markdown);

/* 1 when `key` of section kind ("daemon", ...) can change on reload without
 * a restart, 0 when not, -1 when unknown. */
int xts_config_key_reloadable(const char *kind, const char *key);

#endif
