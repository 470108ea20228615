/* SPDX-License-Identifier: MIT */
/* Provisioning log writer: builds a provisioningObjectSummary-shaped JSON
 * object from the engine's entry and appends it as one line with a single
 * write(2) on an O_APPEND descriptor. It does not rotate files (logrotate
 * does, then SIGHUP -> xts_provlog_reopen) and does not read the log
 * (daemon/ctl_logs.c does). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "mem.h"
#include "provlog.h"
#include "store_int.h"

struct xts_provlog {
	char *path;
	int fd;
};

static const char *const action_names[] = { "Create", "Update", "Delete", "Disable", "Skip",
	"StagedDelete", "Other" };
/* Graph v1.0 provisioningAction (provisioningobjectsummary.md; the enum
 * members as the metadata spells them), in enum xts_prov_action order: Graph
 * has no "skip", and logs a skipped object as "other". */
static const char *const graph_action_names[] = { "create", "update", "delete", "disable", "other",
	"stagedDelete", "other" };
static const char *const status_names[] = { "success", "failure", "skipped", "warning" };
static const char *const step_names[] = { "import", "scoping", "matching", "processing",
	"referenceResolution", "export" };

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *
xts_prov_action_name(int action)
{
	return action >= 0 && action < N_OF(action_names) ? action_names[action] : NULL;
}

const char *
xts_prov_graph_action_name(int action)
{
	return action >= 0 && action < N_OF(graph_action_names) ? graph_action_names[action] : NULL;
}

int
xts_prov_action_parse(const char *s)
{
	int i;

	for (i = 0; s && i < N_OF(action_names); i++)
		if (strcasecmp(s, action_names[i]) == 0)
			return i;
	return -1;
}

const char *
xts_prov_status_name(int status)
{
	return status >= 0 && status < N_OF(status_names) ? status_names[status] : NULL;
}

int
xts_prov_status_parse(const char *s)
{
	int i;

	for (i = 0; s && i < N_OF(status_names); i++)
		if (strcasecmp(s, status_names[i]) == 0)
			return i;
	return -1;
}

const char *
xts_prov_step_type_name(int type)
{
	return type >= 0 && type < N_OF(step_names) ? step_names[type] : NULL;
}

/* ---- the entry builder ---------------------------------------------------- */

void
xts_prov_entry_init(struct xts_prov_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->duration_ms = -1;
}

void
xts_prov_entry_clear(struct xts_prov_entry *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_props; i++) {
		xts_free(e->props[i].name);
		xts_free(e->props[i].old_value);
		xts_free(e->props[i].new_value);
	}
	for (i = 0; i < e->n_steps; i++) {
		xts_free(e->steps[i].name);
		xts_free(e->steps[i].description);
		json_decref(e->steps[i].details);
	}
	xts_free(e->props);
	xts_free(e->steps);
	xts_prov_entry_init(e);
}

static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	p = xts_realloc(*arr, ncap * elem);
	if (p == NULL)
		return XTS_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* Copy s; *ok cleared when s was non-NULL and the copy failed. */
static char *
dup_opt(const char *s, int *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = xts_strdup(s);
	if (d == NULL)
		*ok = 0;
	return d;
}

int
xts_prov_entry_add_prop(struct xts_prov_entry *e, const char *name, const char *old_value,
    const char *new_value, int redacted)
{
	struct xts_prov_prop *p;
	int ok = 1;

	if (e == NULL || name == NULL)
		return XTS_EINVAL;
	if (grow((void **)&e->props, &e->cap_props, e->n_props, sizeof(*e->props)) < 0)
		return XTS_ENOMEM;
	p = &e->props[e->n_props];
	memset(p, 0, sizeof(*p));
	p->name = dup_opt(name, &ok);
	/* A redacted value is never copied, so it cannot leak later either. */
	if (!redacted) {
		p->old_value = dup_opt(old_value, &ok);
		p->new_value = dup_opt(new_value, &ok);
	}
	p->redacted = redacted ? 1 : 0;
	if (!ok) {
		xts_free(p->name);
		xts_free(p->old_value);
		xts_free(p->new_value);
		return XTS_ENOMEM;
	}
	e->n_props++;
	return 0;
}

/* Text form of a JSON attribute value; NULL for null/absent. *err on ENOMEM. */
static char *
json_value_text(const json_t *v, int *err)
{
	size_t len;
	char *d;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v)) {
		d = xts_strndup(json_string_value(v), json_string_length(v));
		if (d == NULL)
			*err = XTS_ENOMEM;
		return d;
	}
	len = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	d = len ? xts_malloc(len + 1) : NULL;
	if (d && json_dumpb(v, d, len, JSON_COMPACT | JSON_ENCODE_ANY) == len) {
		d[len] = '\0';
		return d;
	}
	xts_free(d);
	d = NULL;
	if (d == NULL)
		*err = XTS_ENOMEM;
	return d;
}

int
xts_prov_entry_add_prop_json(struct xts_prov_entry *e, const char *name, const json_t *old_value,
    const json_t *new_value, int redacted)
{
	char *o = NULL, *n = NULL;
	int err = 0, ret;

	if (!redacted) {
		o = json_value_text(old_value, &err);
		n = json_value_text(new_value, &err);
	}
	ret = err < 0 ? err : xts_prov_entry_add_prop(e, name, o, n, redacted);
	xts_free(o);
	xts_free(n);
	return ret;
}

int
xts_prov_entry_add_step(struct xts_prov_entry *e, const char *name, int type, int status,
    const char *description, const json_t *details)
{
	struct xts_prov_step *s;
	int ok = 1;

	if (e == NULL || name == NULL || xts_prov_step_type_name(type) == NULL ||
	    xts_prov_status_name(status) == NULL || (details && !json_is_object(details)))
		return XTS_EINVAL;
	if (grow((void **)&e->steps, &e->cap_steps, e->n_steps, sizeof(*e->steps)) < 0)
		return XTS_ENOMEM;
	s = &e->steps[e->n_steps];
	memset(s, 0, sizeof(*s));
	s->name = dup_opt(name, &ok);
	s->description = dup_opt(description, &ok);
	s->type = type;
	s->status = status;
	if (!ok) {
		xts_free(s->name);
		xts_free(s->description);
		return XTS_ENOMEM;
	}
	s->details = details ? json_incref((json_t *)details) : NULL;
	e->n_steps++;
	return 0;
}

/* ---- rendering ------------------------------------------------------------ */

void
xts_provlog_time(long long wall_ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)(wall_ms / 1000);
	int ms = (int)(wall_ms % 1000);

	if (ms < 0) {
		ms += 1000;
		t -= 1;
	}
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

int
xts_provlog_guid(char *buf, size_t len)
{
	unsigned char b[16];
	ssize_t n;

	if (len < 37)
		return XTS_EINVAL;
	do
		n = getrandom(b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(b))
		return XTS_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(buf, len,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
	    b[14], b[15]);
	return 0;
}

/* obj[key] = string s, if s is set. Returns 0 or XTS_ENOMEM. */
static int
set_str(json_t *obj, const char *key, const char *s)
{
	if (s == NULL)
		return 0;
	return json_object_set_new(obj, key, json_string(s)) == 0 ? 0 : XTS_ENOMEM;
}

static int
set_new(json_t *obj, const char *key, json_t *v)
{
	if (v == NULL)
		return XTS_ENOMEM;
	return json_object_set_new(obj, key, v) == 0 ? 0 : XTS_ENOMEM;
}

static json_t *
identity(const char *id, const char *display, const char *upn, const char *tenant, int *err)
{
	json_t *o = json_object(), *d = NULL;

	if (o == NULL) {
		*err = XTS_ENOMEM;
		return NULL;
	}
	if (set_str(o, "id", id) < 0 || set_str(o, "displayName", display) < 0 ||
	    set_str(o, "identityType", "User") < 0)
		goto nomem;
	/* provisionedIdentity has no UPN or tenant property; Graph carries such
	 * facts in its open `details` object (detailsInfo). UPN and tenantId are
	 * also kept at the top level, as the contract lists them there
	 * ("targetIdentity (id, tenant)"). */
	if (set_str(o, "userPrincipalName", upn) < 0)
		goto nomem;
	if (tenant) {
		if (set_str(o, "tenantId", tenant) < 0)
			goto nomem;
		d = json_object();
		if (d == NULL || set_str(d, "tenantId", tenant) < 0) {
			json_decref(d);
			goto nomem;
		}
		if (set_new(o, "details", d) < 0) /* steals d, also on failure */
			goto nomem;
	}
	return o;
nomem:
	json_decref(o);
	*err = XTS_ENOMEM;
	return NULL;
}

int
xts_prov_entry_to_json(const struct xts_prov_entry *e, json_t **out)
{
	char ts[40], id[40], guid[40], cyc[32];
	json_t *o = NULL, *si = NULL, *ei = NULL, *arr = NULL, *it = NULL;
	const char *action, *status;
	long long duration;
	size_t i;
	int ret = 0;

	*out = NULL;
	action = e ? xts_prov_action_name(e->action) : NULL;
	status = e ? xts_prov_status_name(e->status) : NULL;
	if (action == NULL || status == NULL)
		return XTS_EINVAL;
	o = json_object();
	if (o == NULL)
		return XTS_ENOMEM;
	xts_provlog_time(e->activity_ms ? e->activity_ms : xts_wall_ms(), ts, sizeof(ts));
	ret = xts_provlog_guid(id, sizeof(id));
	if (ret < 0)
		goto done;
	if (e->change_id == NULL) {
		ret = xts_provlog_guid(guid, sizeof(guid));
		if (ret < 0)
			goto done;
	}
	snprintf(cyc, sizeof(cyc), "%lld", e->cycle_id);
	/* durationInMilliseconds is an Int32 in Graph. */
	duration = e->duration_ms > 2147483647LL ? 2147483647LL : e->duration_ms;
	if (set_str(o, "activityDateTime", ts) < 0 ||
	    set_str(o, "id", id) < 0 ||
	    set_str(o, "tenantId", e->source_tenant_id) < 0 ||
	    set_str(o, "cycleId", cyc) < 0 ||
	    set_str(o, "changeId", e->change_id ? e->change_id : guid) < 0 ||
	    set_str(o, "jobId", e->job_id) < 0 ||
	    set_str(o, "action", action) < 0 ||
	    set_str(o, "provisioningAction", xts_prov_graph_action_name(e->action)) < 0)
		goto nomem;
	if (duration >= 0 && set_new(o, "durationInMilliseconds", json_integer(duration)) < 0)
		goto nomem;

	si = json_object();
	if (si == NULL || set_str(si, "status", status) < 0)
		goto nomem;
	if (e->error_code || e->error_reason || e->error_category || e->recommended_action ||
	    e->additional_details) {
		ei = json_object();
		if (ei == NULL || set_str(ei, "errorCode", e->error_code) < 0 ||
		    set_str(ei, "reason", e->error_reason) < 0 ||
		    set_str(ei, "errorCategory", e->error_category) < 0 ||
		    set_str(ei, "recommendedAction", e->recommended_action) < 0 ||
		    set_str(ei, "additionalDetails", e->additional_details) < 0)
			goto nomem;
		if (set_new(si, "errorInformation", ei) < 0) {
			ei = NULL;
			goto nomem;
		}
		ei = NULL;
	}
	ret = set_new(o, "provisioningStatusInfo", si);
	si = NULL;
	if (ret < 0)
		goto done;

	it = identity(e->source_id, e->source_display_name, e->source_upn, e->source_tenant_id, &ret);
	if (it == NULL || set_new(o, "sourceIdentity", it) < 0)
		goto nomem;
	it = identity(e->target_id, e->target_display_name, e->target_upn, e->target_tenant_id, &ret);
	if (it == NULL || set_new(o, "targetIdentity", it) < 0)
		goto nomem;
	it = NULL;
	if (e->source_tenant_id) {
		it = json_pack("{s:s,s:s}", "id", e->source_tenant_id, "displayName", "Microsoft Entra ID");
		if (set_new(o, "sourceSystem", it) < 0)
			goto nomem;
	}
	if (e->target_tenant_id) {
		it = json_pack("{s:s,s:s}", "id", e->target_tenant_id, "displayName", "Microsoft Entra ID");
		if (set_new(o, "targetSystem", it) < 0)
			goto nomem;
	}
	/* initiator.md: initiatorType is user, application or system. */
	it = json_pack("{s:s,s:s}", "displayName", e->initiated_by ? e->initiated_by : "xtsync",
	    "initiatorType", e->initiated_by ? "user" : "system");
	if (set_new(o, "initiatedBy", it) < 0)
		goto nomem;
	it = NULL;

	arr = json_array();
	if (arr == NULL)
		goto nomem;
	for (i = 0; i < e->n_props; i++) {
		const struct xts_prov_prop *p = &e->props[i];
		const char *ov = p->redacted ? "[Redact]" : p->old_value;
		const char *nv = p->redacted ? "[Redact]" : p->new_value;

		it = json_pack("{s:s,s:s?,s:s?}", "displayName", p->name, "oldValue", ov, "newValue", nv);
		if (it == NULL || json_array_append_new(arr, it) < 0)
			goto nomem;
	}
	it = NULL;
	ret = set_new(o, "modifiedProperties", arr);
	arr = NULL;
	if (ret < 0)
		goto done;

	arr = json_array();
	if (arr == NULL)
		goto nomem;
	for (i = 0; i < e->n_steps; i++) {
		const struct xts_prov_step *s = &e->steps[i];

		it = json_pack("{s:s,s:s,s:s,s:s?}", "name", s->name, "provisioningStepType",
		    xts_prov_step_type_name(s->type), "status", xts_prov_status_name(s->status),
		    "description", s->description);
		if (it == NULL || json_array_append_new(arr, it) < 0)
			goto nomem;
		if (s->details && json_object_set(it, "details", s->details) < 0)
			goto nomem;
	}
	it = NULL;
	ret = set_new(o, "provisioningSteps", arr);
	arr = NULL;
	goto done;
nomem:
	ret = XTS_ENOMEM;
done:
	json_decref(ei);
	json_decref(si);
	json_decref(arr);
	if (ret < 0) {
		json_decref(o);
		return ret;
	}
	*out = o;
	return 0;
}

/* ---- the file ------------------------------------------------------------- */

/* Says nothing: the caller knows what the file is for and what is kept
 * (errno stays open(2)'s for its message). */
static int
open_fd(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

	return fd >= 0 ? fd : xts_err_from_errno(errno);
}

int
xts_provlog_open(const char *path, struct xts_provlog **out)
{
	struct xts_provlog *pl;
	int fd;

	*out = NULL;
	if (path == NULL || *path == '\0')
		return XTS_EINVAL;
	pl = xts_calloc(1, sizeof(*pl));
	if (pl == NULL)
		return XTS_ENOMEM;
	pl->path = xts_strdup(path);
	if (pl->path == NULL) {
		xts_free(pl);
		return XTS_ENOMEM;
	}
	fd = open_fd(path);
	if (fd < 0) {
		xts_free(pl->path);
		xts_free(pl);
		return fd;
	}
	pl->fd = fd;
	*out = pl;
	return 0;
}

int
xts_provlog_reopen(struct xts_provlog *pl)
{
	int fd = open_fd(pl->path);

	if (fd < 0)
		return fd;
	if (pl->fd >= 0)
		close(pl->fd);
	pl->fd = fd;
	return 0;
}

int
xts_provlog_reopen_path(struct xts_provlog *pl, const char *path)
{
	char *p;
	int fd;

	if (path == NULL || strcmp(path, pl->path) == 0)
		return xts_provlog_reopen(pl);
	p = xts_strdup(path);
	if (p == NULL)
		return XTS_ENOMEM;
	fd = open_fd(p);
	if (fd < 0) {
		int e = errno;

		xts_free(p);
		errno = e;
		return fd;
	}
	if (pl->fd >= 0)
		close(pl->fd);
	xts_free(pl->path);
	pl->path = p;
	pl->fd = fd;
	return 0;
}

const char *
xts_provlog_path(const struct xts_provlog *pl)
{
	return pl->path;
}

void
xts_provlog_close(struct xts_provlog *pl)
{
	if (pl == NULL)
		return;
	if (pl->fd >= 0)
		close(pl->fd);
	xts_free(pl->path);
	xts_free(pl);
}

int
xts_provlog_write(struct xts_provlog *pl, const struct xts_prov_entry *e)
{
	json_t *o = NULL;
	struct xts_buf b = XTS_BUF_INIT;
	const char *text;
	size_t len, off = 0;
	ssize_t n;
	int ret;

	if (pl == NULL)
		return XTS_EINVAL;
	if (pl->fd < 0) {
		ret = xts_provlog_reopen(pl);
		if (ret < 0)
			return ret;
	}
	ret = xts_prov_entry_to_json(e, &o);
	if (ret < 0)
		return ret;
	/* One buffer with the newline so the line is one write(2); the store's
	 * one-pass serialiser (same text as json_dumpb(JSON_COMPACT), a quarter
	 * of its cost; never a partial text on ENOMEM). */
	ret = xts_store__json_text(o, &b, 0);
	if (ret == 0 && xts_buf_putc(&b, '\n') != 0)
		ret = XTS_ENOMEM;
	if (ret != 0)
		goto done;
	text = b.p;
	len = b.len;
	while (off < len) {
		n = write(pl->fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			xts_log_rl(XTS_LOG_ERR, 10000, 3, "provlog: write %s: %s", pl->path, strerror(err));
			ret = xts_err_from_errno(err);
			goto done;
		}
		off += (size_t)n;
	}
done:
	xts_buf_free(&b);
	json_decref(o);
	return ret;
}
