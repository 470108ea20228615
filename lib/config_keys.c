/* SPDX-License-Identifier: MIT */
/* The table of every configuration key: section, name, type, bounds, default,
 * reloadability and description. config.c parses, validates and documents
 * from it; nothing else declares a key. No parsing logic lives here. */
#include <stddef.h>

#include "config.h"
#include "config_keys.h"

static const char *const scope_names[] = { "assigned", "all", NULL };
static const char *const deprovision_names[] = { "disable", "delete", "none", NULL };
static const char *const size_names[] = { "small", "medium", "large", NULL };
static const char *const level_names[] = { "crit", "err", "warning", "notice", "info", "debug", NULL };

#define D(f) offsetof(struct xts_config_daemon, f)
#define S(f) offsetof(struct xts_config_smtp, f)
#define T(f) offsetof(struct xts_config_tenant, f)
#define J(f) offsetof(struct xts_config_job, f)

/* Sources for defaults (cite when changing):
 *  - interval 40m: cross-tenant sync runs "approximately every 40 minutes"
 *    (MicrosoftDocs/entra-docs docs/identity/multi-tenant-organizations/
 *    cross-tenant-synchronization-configure.md).
 *  - deletion_threshold 500: accidental-deletions prevention default
 *    (entra-docs docs/identity/app-provisioning/accidental-deletions.md).
 *  - quarantine_*: failure thresholds the provisioning service uses before it
 *    quarantines a job (entra-docs docs/identity/app-provisioning/
 *    application-provisioning-quarantine-status.md).
 *  - size / max_in_flight: Graph identity and access throttling by tenant size
 *    (microsoft-graph-docs-contrib concepts/throttling-limits.md). */
const struct xts_key_def xts_config_keys[] = {
	/* [daemon] */
	{ "daemon", "state_dir", XTS_KT_PATH, D(state_dir), 0, 0, "/var/lib/xtsync", NULL, 0, 0,
	  "directory of the SQLite shadow store xtsync.db" },
	{ "daemon", "provisioning_log", XTS_KT_PATH, D(provisioning_log), 0, 0,
	  "/var/log/xtsync/provisioning.log", NULL, 1, 0, "provisioning log file (one JSON object a line); empty = none" },
	{ "daemon", "control_socket", XTS_KT_PATH, D(control_socket), 0, 0, "/run/xtsync/control.sock", NULL,
	  0, 0, "Unix socket xtsyncctl talks to" },
	{ "daemon", "metrics_file", XTS_KT_PATH, D(metrics_file), 0, 0, "", NULL, 1, 0,
	  "optional Prometheus textfile-collector file; empty = none" },
	{ "daemon", "log_level", XTS_KT_LOGLEVEL, D(log_level), 0, 0, "info", level_names, 1, 0,
	  "diagnostics level: crit, err, warning, notice, info, debug" },
	{ "daemon", "control_group", XTS_KT_GROUP, D(control_group), 0, 0, "", NULL, 0, 0,
	  "group allowed on the control socket besides root; empty = root only" },
	{ "daemon", "max_concurrent_jobs", XTS_KT_INT, D(max_concurrent_jobs), 1, 64, "4", NULL, 1, 0,
	  "job cycles that may run at the same time" },

	/* [smtp] */
	{ "smtp", "url", XTS_KT_SMTP_URL, S(url), 0, 0, "", NULL, 1, 1,
	  "smtp://host[:port] (STARTTLS when offered) or smtps://host[:port]" },
	{ "smtp", "from", XTS_KT_EMAIL, S(from), 0, 0, "", NULL, 1, 1, "sender address of notification mail" },
	{ "smtp", "username", XTS_KT_STRING, S(username), 0, 0, "", NULL, 1, 0,
	  "SMTP AUTH user; empty = no authentication" },
	{ "smtp", "password_file", XTS_KT_SECRET, S(password_file), 0, 0, "", NULL, 1, 0,
	  "file or systemd credential holding the SMTP password" },
	{ "smtp", "ca_file", XTS_KT_FILE, S(ca_file), 0, 0, "", NULL, 1, 0,
	  "extra PEM trust anchor for the SMTP server's certificate; empty = system store only" },

	/* [tenant "NAME"] */
	{ "tenant", "tenant_id", XTS_KT_GUID_OR_DOMAIN, T(tenant_id), 0, 0, "", NULL, 1, 1,
	  "tenant GUID or initial domain (contoso.onmicrosoft.com)" },
	{ "tenant", "client_id", XTS_KT_GUID, T(client_id), 0, 0, "", NULL, 1, 1,
	  "application (client) id of the app registration in this tenant" },
	{ "tenant", "client_secret_file", XTS_KT_SECRET, T(client_secret_file), 0, 0, "", NULL, 1, 0,
	  "file or systemd credential with the client secret" },
	{ "tenant", "client_certificate_file", XTS_KT_PATH, T(client_certificate_file), 0, 0, "", NULL, 1, 0,
	  "PEM certificate for certificate credentials (with client_key_file)" },
	{ "tenant", "client_key_file", XTS_KT_SECRET, T(client_key_file), 0, 0, "", NULL, 1, 0,
	  "file or systemd credential with the certificate's PEM private key" },
	{ "tenant", "authority", XTS_KT_URL, T(authority), 0, 0, "https://login.microsoftonline.com", NULL, 1, 0,
	  "Microsoft identity platform host (sovereign clouds and tests override)" },
	{ "tenant", "graph_endpoint", XTS_KT_URL, T(graph_endpoint), 0, 0, "https://graph.microsoft.com", NULL, 1,
	  0, "Microsoft Graph host" },
	{ "tenant", "ca_file", XTS_KT_FILE, T(ca_file), 0, 0, "", NULL, 1, 0,
	  "extra PEM trust anchor; empty = system store only" },
	{ "tenant", "size", XTS_KT_ENUM, T(size), 0, 0, "small", size_names, 1, 0,
	  "Graph throttling class of the tenant: small, medium, large" },
	{ "tenant", "max_in_flight", XTS_KT_INT, T(max_in_flight), 1, 64, "8", NULL, 1, 0,
	  "Graph requests in flight per tenant" },

	/* [job "NAME"] */
	{ "job", "source", XTS_KT_TENANT, J(source), 0, 0, "", NULL, 1, 1, "source tenant (a [tenant] name)" },
	{ "job", "target", XTS_KT_TENANT, J(target), 0, 0, "", NULL, 1, 1, "target tenant (a [tenant] name)" },
	{ "job", "schema", XTS_KT_FILE, J(schema), 0, 0, "", NULL, 1, 0,
	  "synchronizationSchema JSON file; empty = built-in cross-tenant schema" },
	{ "job", "scope", XTS_KT_ENUM, J(scope), 0, 0, "assigned", scope_names, 1, 0,
	  "assigned (assigned_groups and assigned_users) or all users" },
	{ "job", "assigned_groups", XTS_KT_GUID_LIST, J(assigned_groups), 0, 0, "", NULL, 1, 0,
	  "comma-separated group object ids whose members are in scope" },
	{ "job", "assigned_users", XTS_KT_GUID_LIST, J(assigned_users), 0, 0, "", NULL, 1, 0,
	  "comma-separated user object ids in scope" },
	{ "job", "interval", XTS_KT_DURATION, J(interval_ms), 1000, 30LL * 86400 * 1000, "40m", NULL, 1, 0,
	  "time between the start of two cycles" },
	{ "job", "deletion_threshold", XTS_KT_INT, J(deletion_threshold), 0, 1000000000, "500", NULL, 1, 0,
	  "deletions per cycle before they are held; 0 = guard off" },
	{ "job", "deprovision", XTS_KT_ENUM, J(deprovision), 0, 0, "disable", deprovision_names, 1, 0,
	  "disable, delete or none: what leaving scope or source deletion does" },
	{ "job", "notify", XTS_KT_EMAIL_LIST, J(notify), 0, 0, "", NULL, 1, 0,
	  "comma-separated addresses mailed on quarantine and held deletions" },
	{ "job", "link_attribute", XTS_KT_STRING, J(link_attribute), 0, 0, "", NULL, 1, 0,
	  "target attribute holding the source link; empty = extension_<appid>_xtsyncSourceLink" },
	{ "job", "quarantine_min_operations", XTS_KT_INT, J(quarantine_min_operations), 1, 1000000000, "5000", NULL,
	  1, 0, "operations in a cycle before the failure ratio can quarantine" },
	{ "job", "quarantine_min_failures", XTS_KT_INT, J(quarantine_min_failures), 1, 1000000000, "5000", NULL,
	  1, 0, "failures (manager references left out) in a cycle before the escrow rule can quarantine" },
	{ "job", "quarantine_failure_ratio", XTS_KT_RATIO, J(quarantine_failure_ratio), 0, 0, "0.4", NULL, 1, 0,
	  "failed/total operations (0..1], manager references left out, that quarantines the job" },
	{ "job", "quarantine_max_failures", XTS_KT_INT, J(quarantine_max_failures), 1, 1000000000, "40000", NULL, 1,
	  0, "failures (manager references left out) that quarantine the job whatever the ratio" },
	{ "job", "escrow_retry_base", XTS_KT_DURATION, J(escrow_retry_base_ms), 1000, 86400LL * 1000, "5m", NULL, 1,
	  0, "first retry delay of a failed object (doubles per failure)" },
	{ "job", "enabled", XTS_KT_BOOL, J(enabled), 0, 0, "true", NULL, 1, 0,
	  "false keeps the job configured but never scheduled" },
	{ NULL, NULL, 0, 0, 0, 0, NULL, NULL, 0, 0, NULL },
};
