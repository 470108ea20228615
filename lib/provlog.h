/* SPDX-License-Identifier: MIT */
/* The provisioning log: the operator's record of every object decision, one
 * JSON object per line shaped like Graph's provisioningObjectSummary
 * (microsoft-graph-docs-contrib api-reference/v1.0/resources/
 * provisioningobjectsummary.md and the pages it links). Appended with
 * O_APPEND, one write(2) per line. Not the diagnostics log (log.h), and it
 * holds no secret: an entry has no field that could carry one. */
#ifndef XTS_PROVLOG_H
#define XTS_PROVLOG_H

#include <stddef.h>

#include <jansson.h>

enum xts_prov_action {
	XTS_PROV_CREATE = 0,
	XTS_PROV_UPDATE,
	XTS_PROV_DELETE,
	XTS_PROV_DISABLE,
	XTS_PROV_SKIP,
	XTS_PROV_STAGED_DELETE,
	XTS_PROV_OTHER,
};
enum xts_prov_status {
	XTS_PROV_SUCCESS = 0,
	XTS_PROV_FAILURE,
	XTS_PROV_SKIPPED,
	XTS_PROV_WARNING,
};
/* errorInformation.errorCategory, provisioningStatusErrorCategory in
 * provisioningerrorinfo.md: FAILURE for what a retry may cure (throttling, 5xx,
 * no response), NON_SERVICE for what the target refused and an operator must
 * look at. */
#define XTS_PROV_ERRCAT_FAILURE     "failure"
#define XTS_PROV_ERRCAT_NON_SERVICE "nonServiceFailure"
#define XTS_PROV_ERRCAT_SUCCESS     "success"
enum xts_prov_step_type {
	XTS_STEP_IMPORT = 0,
	XTS_STEP_SCOPING,
	XTS_STEP_MATCHING,
	XTS_STEP_PROCESSING,
	XTS_STEP_REFERENCE_RESOLUTION,
	XTS_STEP_EXPORT,
};
/* "Create", "Update", "Delete", "Disable", "Skip", "StagedDelete", "Other". */
const char *xts_prov_action_name(int action);
/* The same action as Graph v1.0's provisioningAction enum spells it
 * (provisioningobjectsummary.md): "create", "update", "delete", "disable",
 * "stagedDelete", "other"; Skip, which Graph has no member for, is "other".
 * NULL for an unknown action. */
const char *xts_prov_graph_action_name(int action);
/* Case-insensitive; -1 if unknown. */
int xts_prov_action_parse(const char *s);
/* "success", "failure", "skipped", "warning". */
const char *xts_prov_status_name(int status);
int xts_prov_status_parse(const char *s);
/* "import", "scoping", "matching", "processing", "referenceResolution", "export". */
const char *xts_prov_step_type_name(int type);

struct xts_prov_prop {     /* a modifiedProperty; strings owned by the entry */
	char *name;
	char *old_value;   /* NULL: absent before */
	char *new_value;   /* NULL: removed */
	int redacted;      /* both values print as "[Redact]" */
};
struct xts_prov_step {     /* a provisioningStep; strings owned by the entry */
	char *name;
	int type;          /* enum xts_prov_step_type */
	int status;        /* enum xts_prov_status */
	char *description;
	json_t *details;   /* object or NULL; owned (new ref taken at add) */
};

/* The builder the engine fills for one object decision. Scalar string
 * fields are BORROWED (must stay valid until xts_provlog_write returns);
 * properties and steps are COPIED by the add functions and freed by
 * xts_prov_entry_clear. Unset (NULL / 0) fields are left out of the line.
 * The writer adds what Graph has and the entry need not carry: a fresh GUID
 * `id` per line, `tenantId` (the source tenant, which owns a cross-tenant
 * sync job and its log), `provisioningAction` and `initiatedBy`. */
struct xts_prov_entry {
	long long activity_ms;       /* wall ms; 0 = now */
	long long cycle_id;          /* written as the string cycleId */
	const char *change_id;       /* NULL: a new GUID is generated */
	const char *job_id;
	int action;                  /* enum xts_prov_action */
	int status;                  /* enum xts_prov_status */
	long long duration_ms;       /* durationInMilliseconds; < 0 leaves it out */
	const char *error_code;      /* errorInformation.errorCode (e.g. Graph's code) */
	const char *error_reason;    /* errorInformation.reason */
	const char *error_category;  /* errorInformation.errorCategory: XTS_PROV_ERRCAT_* */
	const char *recommended_action; /* errorInformation.recommendedAction */
	const char *additional_details; /* errorInformation.additionalDetails */
	const char *source_id, *source_display_name, *source_upn, *source_tenant_id;
	const char *target_id, *target_display_name, *target_upn, *target_tenant_id;
	const char *initiated_by;    /* initiatedBy.displayName of an operator's request, e.g.
				      * "xtsyncctl provision" (initiatorType "user"); NULL:
				      * the scheduled service ("xtsync", "system") */

	struct xts_prov_prop *props;
	size_t n_props, cap_props;
	struct xts_prov_step *steps;
	size_t n_steps, cap_steps;
};

/* Zero the entry (duration_ms = -1). Never fails. */
void xts_prov_entry_init(struct xts_prov_entry *e);
/* Free the copied properties and steps; the entry may be reused after init. */
void xts_prov_entry_clear(struct xts_prov_entry *e);
/* Add a modifiedProperty with string values (copied; NULL allowed). 0 or XTS_ENOMEM. */
int xts_prov_entry_add_prop(struct xts_prov_entry *e, const char *name, const char *old_value,
    const char *new_value, int redacted);
/* Same with JSON values (borrowed): strings as they are, null/NULL as absent,
 * anything else (arrays of a multi-valued attribute, booleans, numbers) as
 * its compact JSON text. */
int xts_prov_entry_add_prop_json(struct xts_prov_entry *e, const char *name, const json_t *old_value,
    const json_t *new_value, int redacted);
/* Add a provisioningStep (strings copied, details borrowed and kept with a
 * new reference; it must not carry a redacted attribute's value). */
int xts_prov_entry_add_step(struct xts_prov_entry *e, const char *name, int type, int status,
    const char *description, const json_t *details);

/* Render the entry as one JSON object (new reference) — what write appends. */
struct xts_buf;
/* Append the entry as one compact JSON object (no newline) to b; on error
 * b is as it was. Strings that are not UTF-8 are written with U+FFFD. */
int xts_prov_entry_text(const struct xts_prov_entry *e, struct xts_buf *b);
/* The same, parsed (tests). */
int xts_prov_entry_to_json(const struct xts_prov_entry *e, json_t **out);

struct xts_provlog;

/* Open (creating, mode 0640) path for appending. *out owns the log. The
 * three open functions log nothing; when open(2) fails they return its
 * XTS_E* and leave errno set for the caller's message. */
int xts_provlog_open(const char *path, struct xts_provlog **out);
/* Reopen the same path (SIGHUP after logrotate moved the file). On failure
 * the old descriptor is kept and the error returned. */
int xts_provlog_reopen(struct xts_provlog *pl);
/* Reopen at path (a reload that changed provisioning_log); the same path or
 * NULL is xts_provlog_reopen. On failure the log stays at its old file. */
int xts_provlog_reopen_path(struct xts_provlog *pl, const char *path);
/* The file the log writes (borrowed, valid until the next reopen_path). */
const char *xts_provlog_path(const struct xts_provlog *pl);
void xts_provlog_close(struct xts_provlog *pl);
/* Append one line (a single write(2) with O_APPEND, so truncation by
 * copytruncate is harmless and concurrent writers never interleave); while
 * held (below) the line waits in memory instead. Blocks on local disk only.
 * 0, XTS_EINVAL (bad entry), XTS_ENOMEM, XTS_EIO/XTS_ENOSPC. */
int xts_provlog_write(struct xts_provlog *pl, const struct xts_prov_entry *e);
/* Hold lines written from now on in memory, in order, until the matching
 * release writes them all (one write(2)). The engine holds the lines of
 * one $batch answer until the store has committed what they report. Holds
 * nest; close writes what is held. */
void xts_provlog_hold(struct xts_provlog *pl);
/* 0, XTS_EINVAL (not held), or the write's error (the lines are dropped,
 * as a failed xts_provlog_write drops its line). */
int xts_provlog_release(struct xts_provlog *pl);

/* Format wall ms as "2024-05-01T12:34:56.789Z" into buf (>= 25 bytes). */
void xts_provlog_time(long long wall_ms, char *buf, size_t len);
/* A random RFC 4122 version-4 GUID, lowercase, into buf (>= 37 bytes). 0 or XTS_EIO. */
int xts_provlog_guid(char *buf, size_t len);

#endif
