/* SPDX-License-Identifier: MIT */
/* Provisioning log writer: writes a provisioningObjectSummary-shaped JSON
 * line from the engine's entry and appends it with a single
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

#include <unistr.h>

#include "err.h"
#include "fsown.h"
#include "json_bytes.h"
#include "json_load.h"
#include "json_text.h"
#include "log.h"
#include "mem.h"
#include "provlog.h"

struct xts_provlog {
	char *path;
	int fd;
	int held;            /* xts_provlog_hold depth: lines wait in pend */
	struct xts_buf pend; /* whole lines, each with its newline */
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
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	ssize_t n;
	char *o;
	int i;

	if (len < 37)
		return XTS_EINVAL;
	do
		n = getrandom(b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(b))
		return XTS_EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	/* by hand: snprintf's sixteen %02x cost ~6,000 instructions a GUID,
	 * and every provisioning-log line has two */
	for (i = 0, o = buf; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 15];
	}
	*o = '\0';
	return 0;
}

/* The line is written straight into a buffer (no jansson tree: building one
 * cost more than the write itself), in the key order Graph's
 * provisioningObjectSummary lists them. */
struct out {
	struct xts_buf *b;
	int err;
	int first; /* no comma before the next member */
};

static void
raw(struct out *o, const char *s, size_t n)
{
	if (o->err == 0 && xts_buf_append(o->b, s, n) != 0)
		o->err = XTS_ENOMEM;
}

#define RAW(o, lit) raw((o), (lit), sizeof(lit) - 1)

/* 1 when s[0..n) is all ASCII: eight bytes at a time, no byte >= 0x80. */
static int
ascii(const char *s, size_t n)
{
	uint64_t w, any = 0;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		any |= w;
	}
	for (; i < n; i++)
		any |= (unsigned char)s[i];
	return (any & XTS_BYTES_HIGHS) == 0;
}

/* A JSON string of s. Bytes that are not UTF-8 become U+FFFD: the line is
 * still written (with a jansson tree such a string failed the whole line). */
static void
str(struct out *o, const char *s)
{
	size_t n = strlen(s);
	const uint8_t *bad;
	struct xts_buf fixed = XTS_BUF_INIT;

	if (o->err != 0)
		return;
	/* ASCII (most of a line: ids, names, codes) is valid UTF-8: no
	 * byte-wise check for it */
	bad = ascii(s, n) ? NULL : u8_check((const uint8_t *)s, n);
	while (bad != NULL && o->err == 0) {
		size_t good = (size_t)((const char *)bad - s);
		if (xts_buf_append(&fixed, s, good) != 0 || xts_buf_append(&fixed, "\xEF\xBF\xBD", 3) != 0)
			o->err = XTS_ENOMEM;
		s += good + 1;
		n -= good + 1;
		bad = u8_check((const uint8_t *)s, n);
	}
	if (o->err == 0 && fixed.p != NULL && xts_buf_append(&fixed, s, n) != 0)
		o->err = XTS_ENOMEM;
	if (o->err == 0 && xts_json_str(fixed.p != NULL ? fixed.p : s,
					       fixed.p != NULL ? fixed.len : n, o->b) != 0)
		o->err = XTS_ENOMEM;
	xts_buf_free(&fixed);
}

/* "k": after a comma unless first; k is a plain literal. One reservation:
 * a line has ~70 keys. */
static void
key(struct out *o, const char *k)
{
	size_t n = strlen(k);
	char *p;

	if (o->err == 0 && xts_buf_reserve(o->b, n + 4) != 0)
		o->err = XTS_ENOMEM;
	if (o->err != 0)
		return;
	p = o->b->p + o->b->len;
	if (!o->first)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, k, n);
	p += n;
	*p++ = '"';
	*p++ = ':';
	o->b->len = (size_t)(p - o->b->p);
	o->first = 0;
}

/* "k":"v", left out when v is NULL */
static void
kstr(struct out *o, const char *k, const char *v)
{
	if (v == NULL)
		return;
	key(o, k);
	str(o, v);
}

/* "k":"v", or "k":null when v is NULL */
static void
kstr_null(struct out *o, const char *k, const char *v)
{
	key(o, k);
	if (v == NULL)
		RAW(o, "null");
	else
		str(o, v);
}

/* {, as member k or (k NULL) as the next array element */
static void
open_obj(struct out *o, const char *k)
{
	if (k != NULL)
		key(o, k);
	else if (!o->first)
		RAW(o, ",");
	RAW(o, "{");
	o->first = 1;
}

static void
close_obj(struct out *o)
{
	RAW(o, "}");
	o->first = 0;
}

static void
identity(struct out *o, const char *k, const char *id, const char *display, const char *upn,
    const char *tenant)
{
	/* Every line names the same members: null when not known (a job-level
	 * line has no user; a skipped user has no target), so a reader can
	 * index sourceIdentity.id on any line (contract: sourceIdentity (id,
	 * displayName, userPrincipalName), targetIdentity (id, tenant)). */
	open_obj(o, k);
	kstr_null(o, "id", id);
	kstr_null(o, "displayName", display);
	kstr(o, "identityType", "User");
	/* provisionedIdentity has no UPN or tenant property; Graph carries such
	 * facts in its open `details` object (detailsInfo). UPN and tenantId are
	 * also kept at the top level, as the contract lists them there
	 * ("targetIdentity (id, tenant)"). */
	kstr_null(o, "userPrincipalName", upn);
	if (tenant != NULL) {
		kstr(o, "tenantId", tenant);
		open_obj(o, "details");
		kstr(o, "tenantId", tenant);
		close_obj(o);
	}
	close_obj(o);
}

static void
system_obj(struct out *o, const char *k, const char *tenant)
{
	if (tenant == NULL)
		return;
	open_obj(o, k);
	kstr(o, "id", tenant);
	kstr(o, "displayName", "Microsoft Entra ID");
	close_obj(o);
}

int
xts_prov_entry_text(const struct xts_prov_entry *e, struct xts_buf *b)
{
	char ts[40], id[40], guid[40], num[32];
	struct out o = { b, 0, 1 };
	const char *action, *status;
	long long duration;
	size_t i, start = b->len;
	int ret;

	action = e ? xts_prov_action_name(e->action) : NULL;
	status = e ? xts_prov_status_name(e->status) : NULL;
	if (action == NULL || status == NULL)
		return XTS_EINVAL;
	xts_provlog_time(e->activity_ms ? e->activity_ms : xts_wall_ms(), ts, sizeof(ts));
	ret = xts_provlog_guid(id, sizeof(id));
	if (ret == 0 && e->change_id == NULL)
		ret = xts_provlog_guid(guid, sizeof(guid));
	if (ret < 0)
		return ret;
	RAW(&o, "{");
	kstr(&o, "activityDateTime", ts);
	kstr(&o, "id", id);
	kstr(&o, "tenantId", e->source_tenant_id);
	snprintf(num, sizeof(num), "%lld", e->cycle_id);
	kstr(&o, "cycleId", num);
	kstr(&o, "changeId", e->change_id ? e->change_id : guid);
	kstr(&o, "jobId", e->job_id);
	kstr(&o, "action", action);
	kstr(&o, "provisioningAction", xts_prov_graph_action_name(e->action));
	/* durationInMilliseconds is an Int32 in Graph. */
	duration = e->duration_ms > 2147483647LL ? 2147483647LL : e->duration_ms;
	if (duration >= 0) {
		key(&o, "durationInMilliseconds");
		raw(&o, num, (size_t)snprintf(num, sizeof(num), "%lld", duration));
	}

	open_obj(&o, "provisioningStatusInfo");
	kstr(&o, "status", status);
	if (e->error_code || e->error_reason || e->error_category || e->recommended_action ||
	    e->additional_details) {
		open_obj(&o, "errorInformation");
		kstr(&o, "errorCode", e->error_code);
		kstr(&o, "reason", e->error_reason);
		kstr(&o, "errorCategory", e->error_category);
		kstr(&o, "recommendedAction", e->recommended_action);
		kstr(&o, "additionalDetails", e->additional_details);
		close_obj(&o);
	}
	close_obj(&o);

	identity(&o, "sourceIdentity", e->source_id, e->source_display_name, e->source_upn,
	    e->source_tenant_id);
	identity(&o, "targetIdentity", e->target_id, e->target_display_name, e->target_upn,
	    e->target_tenant_id);
	system_obj(&o, "sourceSystem", e->source_tenant_id);
	system_obj(&o, "targetSystem", e->target_tenant_id);
	/* initiator.md: initiatorType is user, application or system. */
	open_obj(&o, "initiatedBy");
	kstr(&o, "displayName", e->initiated_by ? e->initiated_by : "xtsync");
	kstr(&o, "initiatorType", e->initiated_by ? "user" : "system");
	close_obj(&o);

	key(&o, "modifiedProperties");
	RAW(&o, "[");
	o.first = 1;
	for (i = 0; i < e->n_props; i++) {
		const struct xts_prov_prop *p = &e->props[i];

		open_obj(&o, NULL);
		kstr(&o, "displayName", p->name);
		kstr_null(&o, "oldValue", p->redacted ? "[Redact]" : p->old_value);
		kstr_null(&o, "newValue", p->redacted ? "[Redact]" : p->new_value);
		close_obj(&o);
	}
	RAW(&o, "]");
	o.first = 0;

	key(&o, "provisioningSteps");
	RAW(&o, "[");
	o.first = 1;
	for (i = 0; i < e->n_steps; i++) {
		const struct xts_prov_step *s = &e->steps[i];

		open_obj(&o, NULL);
		kstr(&o, "name", s->name);
		kstr(&o, "provisioningStepType", xts_prov_step_type_name(s->type));
		kstr(&o, "status", xts_prov_status_name(s->status));
		kstr_null(&o, "description", s->description);
		if (s->details != NULL) {
			key(&o, "details");
			if (o.err == 0 && xts_json_text(s->details, b, 1) != 0)
				o.err = XTS_ENOMEM;
		}
		close_obj(&o);
	}
	RAW(&o, "]}");
	if (o.err != 0)
		b->len = start; /* never a partial line */
	return o.err;
}

/* The line as a JSON value (tests; the log itself is written as text). */
int
xts_prov_entry_to_json(const struct xts_prov_entry *e, json_t **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_error_t je;
	int ret;

	*out = NULL;
	ret = xts_prov_entry_text(e, &b);
	if (ret == 0) {
		*out = xts_json_loadb(b.p, b.len, 0, &je);
		if (*out == NULL)
			ret = XTS_EINTERNAL;
	}
	xts_buf_free(&b);
	return ret;
}

/* ---- the file ------------------------------------------------------------- */

/* Says nothing: the caller knows what the file is for and what is kept
 * (errno stays open(2)'s for its message). */
static int
open_fd(const char *path)
{
	/* root in a directory of another user's: not through a planted symlink */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY |
			    (xts_dir_owned_by_other(path) ? O_NOFOLLOW : 0), 0640);

	if (fd < 0)
		return xts_err_from_errno(errno);
	xts_give_to_dir_owner(fd, path);
	return fd;
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

/* text (whole lines) to the file, reopened first if a reopen failed. 0 or XTS_E*. */
static int
write_text(struct xts_provlog *pl, const char *text, size_t len)
{
	size_t off = 0;
	ssize_t n;
	int ret;

	if (pl->fd < 0) {
		ret = xts_provlog_reopen(pl);
		if (ret < 0)
			return ret;
	}
	while (off < len) {
		n = write(pl->fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;

			xts_log_rl(XTS_LOG_ERR, 10000, 3, "provlog: write %s: %s", pl->path, strerror(err));
			return xts_err_from_errno(err);
		}
		off += (size_t)n;
	}
	return 0;
}

void
xts_provlog_close(struct xts_provlog *pl)
{
	if (pl == NULL)
		return;
	if (pl->pend.len > 0)
		(void)write_text(pl, pl->pend.p, pl->pend.len);
	if (pl->fd >= 0)
		close(pl->fd);
	xts_buf_free(&pl->pend);
	xts_free(pl->path);
	xts_free(pl);
}

void
xts_provlog_hold(struct xts_provlog *pl)
{
	if (pl != NULL)
		pl->held++;
}

int
xts_provlog_release(struct xts_provlog *pl)
{
	int ret;

	if (pl == NULL || pl->held <= 0)
		return XTS_EINVAL;
	if (--pl->held > 0 || pl->pend.len == 0)
		return 0;
	ret = write_text(pl, pl->pend.p, pl->pend.len);
	/* written or not, those lines are done with: a failure was said */
	xts_buf_reset(&pl->pend);
	return ret;
}

int
xts_provlog_write(struct xts_provlog *pl, const struct xts_prov_entry *e)
{
	struct xts_buf b = XTS_BUF_INIT, *to;
	size_t mark;
	int ret;

	if (pl == NULL)
		return XTS_EINVAL;
	/* One buffer with the newline so the line is one write(2); a held
	 * line waits at the end of pend, whole or not at all. */
	to = pl->held > 0 ? &pl->pend : &b;
	mark = to->len;
	ret = xts_prov_entry_text(e, to);
	if (ret == 0 && xts_buf_putc(to, '\n') != 0)
		ret = XTS_ENOMEM;
	if (ret != 0) {
		to->len = mark;
		if (to->p != NULL)
			to->p[mark] = '\0';
	} else if (to == &b) {
		ret = write_text(pl, b.p, b.len);
	}
	xts_buf_free(&b);
	return ret;
}
