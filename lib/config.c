/* SPDX-License-Identifier: MIT */
/* Loading and validating xtsync.conf: inih does the INI syntax; a line-counting
 * reader gives every key and section header its line number; the key table
 * (config_keys.c) drives value parsing, defaults and cross-checks, and every
 * problem is collected as FILE:LINE: message. Does not read secret contents
 * and does not validate job schema files (the daemon does, via schema.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "buf.h"
#include "config.h"
#include "config_keys.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "secret.h"
#include "text.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define CONFIG_MAX_PROBLEMS 500
#define CONFIG_MAX_SECTIONS 2000
#define NAME_MAX_LEN 64

enum sect_kind { SK_NONE = 0, SK_DAEMON, SK_SMTP, SK_TENANT, SK_JOB, SK_BAD };

static const char *const kind_names[] = { "", "daemon", "smtp", "tenant", "job", "" };

struct sect {
	enum sect_kind kind;
	char *name;  /* tenant/job name, else NULL */
	int line;
	size_t index; /* into tenants/jobs */
};

struct loader {
	const char *file;     /* for problems */
	char *basedir;        /* for relative paths ("" = cwd) */
	const char *text;
	size_t len, pos;
	int lineno;
	int cont_ok;          /* an indented line may continue the previous key */
	int line_is_cont;     /* the line just read is such a continuation */
	int last_key_failed;  /* the previous key was refused: skip its continuations */
	struct xts_config *cfg;
	struct xts_config_problems *probs;
	struct xts_config_problems own_probs;
	struct sect *sects;
	size_t n_sects, cap_sects;
	int cur;              /* index into sects, -1 before the first header */
	int smtp_seen, daemon_seen;
	size_t cap_tenants, cap_jobs;
	int nomem;
};

/* ---- problems ------------------------------------------------------------ */

static int problem_vadd(struct xts_config_problems *p, const char *file, int line, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int
problem_vadd(struct xts_config_problems *p, const char *file, int line, const char *fmt, va_list ap)
{
	struct xts_config_problem *nv;
	char msg[1024];
	int ret = 0;

	if (p->n >= CONFIG_MAX_PROBLEMS)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (p->n + 1 >= CONFIG_MAX_PROBLEMS)
		snprintf(msg, sizeof(msg), "too many problems; stopping here");
	if (p->n == p->cap) {
		size_t ncap = p->cap != 0 ? p->cap * 2 : 16;
		nv = xts_realloc(p->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return XTS_ENOMEM;
		p->v = nv;
		p->cap = ncap;
	}
	/* Control characters from a hostile file must not reach a terminal. */
	for (char *c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	p->v[p->n].file = xts_strdup(file != NULL ? file : "");
	p->v[p->n].msg = xts_strdup(msg);
	p->v[p->n].line = line;
	if (p->v[p->n].file == NULL || p->v[p->n].msg == NULL) {
		xts_free(p->v[p->n].file);
		xts_free(p->v[p->n].msg);
		ret = XTS_ENOMEM;
	} else {
		p->n++;
	}
	return ret;
}

int
xts_config_problem_add(struct xts_config_problems *p, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = problem_vadd(p, file, line, fmt, ap);
	va_end(ap);
	return ret;
}

static void prob(struct loader *L, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
prob(struct loader *L, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (problem_vadd(L->probs, L->file, line, fmt, ap) != 0)
		L->nomem = 1;
	va_end(ap);
}

void
xts_config_problems_print(const struct xts_config_problems *p, FILE *out)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->v[i].line > 0)
			fprintf(out, "%s:%d: %s\n", p->v[i].file, p->v[i].line, p->v[i].msg);
		else
			fprintf(out, "%s: %s\n", p->v[i].file, p->v[i].msg);
	}
}

void
xts_config_problems_free(struct xts_config_problems *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		xts_free(p->v[i].file);
		xts_free(p->v[i].msg);
	}
	xts_free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
}

void
xts_config_problems_sort(struct xts_config_problems *p, size_t from)
{
	size_t i, j;

	for (i = from + 1; i < p->n; i++) {
		struct xts_config_problem t = p->v[i];
		for (j = i; j > from && p->v[j - 1].line > t.line; j--)
			p->v[j] = p->v[j - 1];
		p->v[j] = t;
	}
}

/* ---- small value parsers -------------------------------------------------- */

int
xts_config_parse_duration(const char *s, uint64_t *ms)
{
	unsigned long long total = 0, v;
	const unsigned long long max_s = 30ULL * 86400;
	int digits, units = 0;

	if (s == NULL || *s == '\0')
		return XTS_EINVAL;
	while (*s != '\0') {
		unsigned long long mult;

		v = 0;
		digits = 0;
		while (*s >= '0' && *s <= '9') {
			v = v * 10 + (unsigned long long)(*s - '0');
			if (v > max_s)
				return XTS_ERANGE;
			s++;
			digits++;
		}
		if (digits == 0)
			return XTS_EINVAL;
		switch (*s) {
		case 'h': mult = 3600; s++; break;
		case 'm': mult = 60; s++; break;
		case 's': mult = 1; s++; break;
		case '\0':
			if (units > 0)
				return XTS_EINVAL; /* "1h30" is ambiguous */
			mult = 1;
			break;
		default: return XTS_EINVAL;
		}
		units++;
		total += v * mult;
		if (total > max_s)
			return XTS_ERANGE;
	}
	*ms = total * 1000;
	return 0;
}

static int
is_domain(const char *s)
{
	size_t len = strlen(s), label = 0;
	int dots = 0;
	const char *p;

	if (len == 0 || len > 253)
		return 0;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return 0;
			dots++;
			label = 0;
		} else if (isalnum(c) || (c == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return dots > 0 && label > 0 && p[-1] != '-';
}

static int
is_email(const char *s)
{
	const char *at = strchr(s, '@');
	const char *p;

	if (at == NULL || at == s || strchr(at + 1, '@') != NULL)
		return 0;
	for (p = s; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == ',' || *p == '<' || *p == '>' || *p == '"' || *p == 0x7f)
			return 0;
	return is_domain(at + 1);
}

static int
is_loopback_host(const char *host)
{
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/* Validate "scheme://host[:port][/path]"; schemes is a NULL-terminated list.
 * Returns NULL when fine, else a static reason. *scheme_idx gets the scheme
 * index, host (size hostlen) the host text. */
static const char *
url_check(const char *url, const char *const *schemes, int *scheme_idx, char *host, size_t hostlen)
{
	const char *p = NULL, *h, *end;
	size_t n;
	int i;

	for (i = 0; schemes[i] != NULL; i++) {
		n = strlen(schemes[i]);
		if (strncasecmp(url, schemes[i], n) == 0 && strncmp(url + n, "://", 3) == 0) {
			p = url + n + 3;
			break;
		}
	}
	if (p == NULL)
		return "unsupported or missing URL scheme";
	*scheme_idx = i;
	h = p;
	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL)
			return "malformed URL: unterminated [IPv6] host";
		end++;
	} else {
		end = h;
		while (*end != '\0' && *end != ':' && *end != '/' && *end != '?' && *end != '#') {
			unsigned char c = (unsigned char)*end;
			if (c == '@')
				return "URLs must not carry credentials (user@host)";
			if (!isalnum(c) && c != '.' && c != '-' && c != '_')
				return "malformed URL: bad character in host";
			end++;
		}
	}
	n = (size_t)(end - h);
	if (n == 0)
		return "malformed URL: no host";
	if (n >= hostlen)
		return "malformed URL: host too long";
	memcpy(host, h, n);
	host[n] = '\0';
	if (*end == ':') {
		long port = 0;
		int digits = 0;
		end++;
		while (*end >= '0' && *end <= '9' && digits < 6) {
			port = port * 10 + (*end - '0');
			end++;
			digits++;
		}
		if (digits == 0 || port < 1 || port > 65535)
			return "malformed URL: bad port";
	}
	if (*end != '\0' && *end != '/')
		return "malformed URL: unexpected text after host";
	for (; *end != '\0'; end++)
		if ((unsigned char)*end <= ' ' || *end == 0x7f)
			return "malformed URL: space or control character";
	return NULL;
}

/* ---- section storage ------------------------------------------------------ */

static void
strlist_free(struct xts_strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		xts_free(l->v[i]);
	xts_free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void *
section_struct(struct loader *L, const struct sect *s)
{
	switch (s->kind) {
	case SK_DAEMON: return &L->cfg->daemon;
	case SK_SMTP: return &L->cfg->smtp;
	case SK_TENANT: return &L->cfg->tenants[s->index];
	case SK_JOB: return &L->cfg->jobs[s->index];
	default: return NULL;
	}
}

static int *
key_lines_of(enum sect_kind k, void *st)
{
	switch (k) {
	case SK_DAEMON: return ((struct xts_config_daemon *)st)->key_line;
	case SK_SMTP: return ((struct xts_config_smtp *)st)->key_line;
	case SK_TENANT: return ((struct xts_config_tenant *)st)->key_line;
	case SK_JOB: return ((struct xts_config_job *)st)->key_line;
	default: return NULL;
	}
}

/* Find key `name` of section kind; *idx = its index within the section. */
static const struct xts_key_def *
key_find(const char *kind, const char *name, int *idx)
{
	const struct xts_key_def *k;
	int i = 0;

	for (k = xts_config_keys; k->name != NULL; k++) {
		if (strcmp(k->section, kind) != 0)
			continue;
		if (strcmp(k->name, name) == 0) {
			if (idx != NULL)
				*idx = i;
			return k;
		}
		i++;
	}
	return NULL;
}

static char *
join_path(const char *base, const char *p)
{
	struct xts_buf b = XTS_BUF_INIT;

	if (p[0] == '/' || p[0] == '\0' || base == NULL || base[0] == '\0')
		return xts_strdup(p);
	if (xts_buf_printf(&b, "%s/%s", base, p) != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

static int
split_list(const char *value, struct xts_strlist *out)
{
	const char *p = value, *e;
	struct xts_strlist l = { NULL, 0 };
	size_t cap = 0;
	int ret = 0;

	while (*p != '\0') {
		const char *a, *z;
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		a = p;
		z = e;
		while (a < z && isspace((unsigned char)*a))
			a++;
		while (z > a && isspace((unsigned char)z[-1]))
			z--;
		if (z > a) {
			if (l.n == cap) {
				size_t ncap = cap != 0 ? cap * 2 : 4;
				char **nv = xts_realloc(l.v, ncap * sizeof(*nv));
				if (nv == NULL) {
					ret = XTS_ENOMEM;
					goto done;
				}
				l.v = nv;
				cap = ncap;
			}
			l.v[l.n] = xts_strndup(a, (size_t)(z - a));
			if (l.v[l.n] == NULL) {
				ret = XTS_ENOMEM;
				goto done;
			}
			l.n++;
		}
		p = *e == ',' ? e + 1 : e;
	}
done:
	if (ret != 0)
		strlist_free(&l);
	else
		*out = l;
	return ret;
}

static int
has_control_chars(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Store `value` for key k into section struct st. Returns 0, XTS_ENOMEM, or
 * XTS_EINVAL with a reason in why (a message without the key name). */
static int
set_value(struct loader *L, const struct xts_key_def *k, void *st, const char *value, char *why, size_t whylen)
{
	char *field = (char *)st + k->offset;
	char host[256];
	char *end, *copy = NULL;
	int ret = 0, idx;
	const char *r;

	why[0] = '\0';
	if (has_control_chars(value)) {
		snprintf(why, whylen, "control characters are not allowed");
		return XTS_EINVAL;
	}
	switch (k->type) {
	case XTS_KT_STRING:
	case XTS_KT_TENANT:
	case XTS_KT_GROUP:
	case XTS_KT_GUID:
	case XTS_KT_GUID_OR_DOMAIN:
	case XTS_KT_EMAIL:
	case XTS_KT_URL:
	case XTS_KT_SMTP_URL:
		if (value[0] != '\0') {
			if (k->type == XTS_KT_GUID && !xts_is_guid(value)) {
				snprintf(why, whylen, "'%s' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", value);
				return XTS_EINVAL;
			}
			if (k->type == XTS_KT_GUID_OR_DOMAIN && !xts_is_guid(value) && !is_domain(value)) {
				snprintf(why, whylen, "'%s' is neither a GUID nor a domain name", value);
				return XTS_EINVAL;
			}
			if (k->type == XTS_KT_EMAIL && !is_email(value)) {
				snprintf(why, whylen, "'%s' is not an e-mail address", value);
				return XTS_EINVAL;
			}
			if (k->type == XTS_KT_GROUP && getgrnam(value) == NULL) {
				snprintf(why, whylen, "group '%s' does not exist", value);
				return XTS_EINVAL;
			}
			if (k->type == XTS_KT_URL) {
				static const char *const sch[] = { "https", "http", NULL };
				r = url_check(value, sch, &idx, host, sizeof(host));
				if (r == NULL && idx == 1 && !is_loopback_host(host))
					r = "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://";
				if (r != NULL) {
					snprintf(why, whylen, "'%s': %s", value, r);
					return XTS_EINVAL;
				}
			}
			if (k->type == XTS_KT_SMTP_URL) {
				static const char *const sch[] = { "smtp", "smtps", NULL };
				r = url_check(value, sch, &idx, host, sizeof(host));
				if (r != NULL) {
					snprintf(why, whylen, "'%s': %s (smtp:// or smtps:// expected)", value, r);
					return XTS_EINVAL;
				}
			}
		}
		copy = xts_strdup(value);
		if (copy == NULL)
			return XTS_ENOMEM;
		/* Hosts are joined with paths later: keep no trailing slash. */
		if (k->type == XTS_KT_URL)
			for (size_t n = strlen(copy); n > 0 && copy[n - 1] == '/'; n--)
				copy[n - 1] = '\0';
		xts_free(*(char **)field);
		*(char **)field = copy;
		break;
	case XTS_KT_PATH:
	case XTS_KT_FILE:
	case XTS_KT_SECRET:
		/* Empty means "none" where none is the default (metrics_file,
		 * ca_file, schema) and for provisioning_log (no log is written);
		 * state_dir and control_socket always name a path, and an empty
		 * one would fail only at start (exit 1) or send xtsyncctl to "". */
		if (value[0] == '\0' && k->def != NULL && k->def[0] != '\0' &&
		    strcmp(k->name, "provisioning_log") != 0) {
			snprintf(why, whylen, "an empty value is not a path (leave the line out for the default, %s)",
				 k->def);
			return XTS_EINVAL;
		}
		if (k->type == XTS_KT_SECRET && xts_secret_is_credential(value))
			copy = xts_strdup(value);
		else
			copy = join_path(L->basedir, value);
		if (copy == NULL)
			return XTS_ENOMEM;
		xts_free(*(char **)field);
		*(char **)field = copy;
		break;
	case XTS_KT_DURATION: {
		uint64_t ms;
		ret = xts_config_parse_duration(value, &ms);
		if (ret == 0 && (ms < (uint64_t)k->min || ms > (uint64_t)k->max))
			ret = XTS_ERANGE;
		if (ret != 0) {
			snprintf(why, whylen, "'%s' is not a duration between %llds and %llds (e.g. 90s, 2m, 1h30m)",
				 value, k->min / 1000, k->max / 1000);
			return XTS_EINVAL;
		}
		*(uint64_t *)field = ms;
		break;
	}
	case XTS_KT_INT: {
		long long v;
		errno = 0;
		v = strtoll(value, &end, 10);
		if (value[0] == '\0' || *end != '\0' || errno != 0 || v < k->min || v > k->max) {
			snprintf(why, whylen, "'%s' is not an integer between %lld and %lld", value, k->min, k->max);
			return XTS_EINVAL;
		}
		*(long long *)field = v;
		break;
	}
	case XTS_KT_RATIO: {
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (value[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v <= 0.0 || v > 1.0) {
			snprintf(why, whylen, "'%s' is not a number in (0, 1]", value);
			return XTS_EINVAL;
		}
		*(double *)field = v;
		break;
	}
	case XTS_KT_BOOL:
		if (strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0 || strcasecmp(value, "on") == 0 ||
		    strcmp(value, "1") == 0) {
			*(bool *)field = true;
		} else if (strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0 ||
			   strcasecmp(value, "off") == 0 || strcmp(value, "0") == 0) {
			*(bool *)field = false;
		} else {
			snprintf(why, whylen, "'%s' is not a boolean (true or false)", value);
			return XTS_EINVAL;
		}
		break;
	case XTS_KT_ENUM:
	case XTS_KT_LOGLEVEL: {
		struct xts_buf b = XTS_BUF_INIT;
		int i;
		for (i = 0; k->names[i] != NULL; i++)
			if (strcmp(value, k->names[i]) == 0)
				break;
		if (k->names[i] == NULL) {
			int j;
			for (j = 0; k->names[j] != NULL; j++)
				if (xts_buf_printf(&b, "%s%s", j > 0 ? ", " : "", k->names[j]) != 0)
					break;
			snprintf(why, whylen, "'%s' is not one of: %s", value, xts_buf_str(&b));
			xts_buf_free(&b);
			return XTS_EINVAL;
		}
		*(int *)field = k->type == XTS_KT_LOGLEVEL ? xts_log_level_parse(value) : i;
		break;
	}
	case XTS_KT_GUID_LIST:
	case XTS_KT_EMAIL_LIST: {
		struct xts_strlist l;
		size_t i;
		ret = split_list(value, &l);
		if (ret != 0)
			return ret;
		for (i = 0; i < l.n; i++) {
			int ok = k->type == XTS_KT_GUID_LIST ? xts_is_guid(l.v[i]) : is_email(l.v[i]);
			if (!ok) {
				snprintf(why, whylen, "'%s' is not %s", l.v[i],
					 k->type == XTS_KT_GUID_LIST ? "an object id (GUID)" : "an e-mail address");
				strlist_free(&l);
				return XTS_EINVAL;
			}
		}
		strlist_free((struct xts_strlist *)field);
		*(struct xts_strlist *)field = l;
		break;
	}
	}
	return 0;
}

/* Append the items of a continuation line to a list key. */
static int
list_append(struct loader *L, const struct xts_key_def *k, void *st, const char *value, char *why, size_t whylen)
{
	struct xts_strlist *cur = (struct xts_strlist *)((char *)st + k->offset);
	struct xts_strlist add = { NULL, 0 };
	char **nv;
	size_t i;
	int ret;

	(void)L;
	why[0] = '\0';
	ret = split_list(value, &add);
	if (ret != 0)
		return ret;
	for (i = 0; i < add.n; i++) {
		int ok = k->type == XTS_KT_GUID_LIST ? xts_is_guid(add.v[i]) : is_email(add.v[i]);
		if (!ok) {
			snprintf(why, whylen, "'%s' is not %s", add.v[i],
				 k->type == XTS_KT_GUID_LIST ? "an object id (GUID)" : "an e-mail address");
			strlist_free(&add);
			return XTS_EINVAL;
		}
	}
	if (add.n == 0)
		return 0;
	nv = xts_realloc(cur->v, (cur->n + add.n) * sizeof(*nv));
	if (nv == NULL) {
		strlist_free(&add);
		return XTS_ENOMEM;
	}
	cur->v = nv;
	for (i = 0; i < add.n; i++)
		cur->v[cur->n++] = add.v[i];
	xts_free(add.v);
	return 0;
}

static int
apply_defaults(struct loader *L, enum sect_kind kind, void *st)
{
	const struct xts_key_def *k;
	char why[512];
	int ret;

	for (k = xts_config_keys; k->name != NULL; k++) {
		if (strcmp(k->section, kind_names[kind]) != 0)
			continue;
		ret = set_value(L, k, st, k->def, why, sizeof(why));
		if (ret == XTS_ENOMEM)
			return ret;
		if (ret != 0) {
			/* A default that does not parse is a bug in config_keys.c. */
			xts_crit("config: default of %s.%s does not parse: %s", k->section, k->name, why);
			return ret == XTS_ENOMEM ? ret : XTS_EINTERNAL;
		}
	}
	return 0;
}

/* ---- section headers ------------------------------------------------------ */

static int
name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

static int
push_sect(struct loader *L, enum sect_kind kind, char *name, int line)
{
	struct sect *nv;

	if (L->n_sects == L->cap_sects) {
		size_t ncap = L->cap_sects != 0 ? L->cap_sects * 2 : 8;
		nv = xts_realloc(L->sects, ncap * sizeof(*nv));
		if (nv == NULL) {
			xts_free(name);
			return XTS_ENOMEM;
		}
		L->sects = nv;
		L->cap_sects = ncap;
	}
	L->sects[L->n_sects].kind = kind;
	L->sects[L->n_sects].name = name;
	L->sects[L->n_sects].line = line;
	L->sects[L->n_sects].index = 0;
	L->cur = (int)L->n_sects;
	L->n_sects++;
	return 0;
}

static int
grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	void *nv;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap != 0 ? *cap * 2 : 4;
	nv = xts_realloc(*arr, ncap * elem);
	if (nv == NULL)
		return XTS_ENOMEM;
	memset((char *)nv + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = nv;
	*cap = ncap;
	return 0;
}

/* A section header line (text between '[' and ']', untrimmed). */
static int
section_begin(struct loader *L, const char *hdr, size_t n, int line)
{
	const char *a = hdr, *z = hdr + n, *q1, *q2;
	enum sect_kind kind = SK_BAD;
	char *name = NULL;
	size_t i;
	int ret;

	while (a < z && isspace((unsigned char)*a))
		a++;
	while (z > a && isspace((unsigned char)z[-1]))
		z--;
	if (L->n_sects >= CONFIG_MAX_SECTIONS) {
		prob(L, line, "too many sections (at most %d)", CONFIG_MAX_SECTIONS);
		return push_sect(L, SK_BAD, NULL, line);
	}
	if ((size_t)(z - a) == 6 && memcmp(a, "daemon", 6) == 0) {
		kind = SK_DAEMON;
	} else if ((size_t)(z - a) == 4 && memcmp(a, "smtp", 4) == 0) {
		kind = SK_SMTP;
	} else if (((size_t)(z - a) > 6 && memcmp(a, "tenant", 6) == 0 && isspace((unsigned char)a[6])) ||
		   ((size_t)(z - a) > 3 && memcmp(a, "job", 3) == 0 && isspace((unsigned char)a[3]))) {
		kind = a[0] == 't' ? SK_TENANT : SK_JOB;
		q1 = memchr(a, '"', (size_t)(z - a));
		q2 = z - 1;
		if (q1 == NULL || q2 <= q1 || *q2 != '"') {
			prob(L, line, "section [%.*s] needs a quoted name: [%s \"NAME\"]", (int)(z - a), a,
			     kind_names[kind]);
			return push_sect(L, SK_BAD, NULL, line);
		}
		for (const char *s = a + (kind == SK_TENANT ? 6 : 3); s < q1; s++)
			if (!isspace((unsigned char)*s)) {
				prob(L, line, "malformed section header [%.*s]", (int)(z - a), a);
				return push_sect(L, SK_BAD, NULL, line);
			}
		if (!name_ok(q1 + 1, (size_t)(q2 - q1 - 1))) {
			prob(L, line, "%s name \"%.*s\" must be 1-%d letters, digits, '-', '_' or '.'",
			     kind_names[kind], (int)(q2 - q1 - 1), q1 + 1, NAME_MAX_LEN);
			return push_sect(L, SK_BAD, NULL, line);
		}
		name = xts_strndup(q1 + 1, (size_t)(q2 - q1 - 1));
		if (name == NULL)
			return XTS_ENOMEM;
	} else if (((size_t)(z - a) == 6 && memcmp(a, "tenant", 6) == 0) ||
		   ((size_t)(z - a) == 3 && memcmp(a, "job", 3) == 0)) {
		prob(L, line, "section [%.*s] needs a quoted name: [%.*s \"NAME\"]", (int)(z - a), a, (int)(z - a), a);
		return push_sect(L, SK_BAD, NULL, line);
	} else {
		prob(L, line, "unknown section [%.*s] (expected [daemon], [smtp], [tenant \"NAME\"] or [job \"NAME\"])",
		     (int)(z - a) > 80 ? 80 : (int)(z - a), a);
		return push_sect(L, SK_BAD, NULL, line);
	}

	/* Duplicate section names: the second one is reported and ignored. */
	for (i = 0; i < L->n_sects; i++) {
		const struct sect *s = &L->sects[i];
		if (s->kind != kind)
			continue;
		if (name == NULL || (s->name != NULL && strcmp(s->name, name) == 0)) {
			if (name != NULL)
				prob(L, line, "duplicate section [%s \"%s\"] (first defined on line %d)", kind_names[kind],
				     name, s->line);
			else
				prob(L, line, "duplicate section [%s] (first defined on line %d)", kind_names[kind],
				     s->line);
			xts_free(name);
			return push_sect(L, SK_BAD, NULL, line);
		}
	}

	ret = push_sect(L, kind, name, line);
	if (ret != 0)
		return ret;
	struct sect *s = &L->sects[L->cur];
	if (kind == SK_DAEMON) {
		L->cfg->daemon.line = line;
	} else if (kind == SK_SMTP) {
		L->cfg->smtp.line = line;
		L->cfg->smtp.present = true;
	} else if (kind == SK_TENANT) {
		ret = grow((void **)&L->cfg->tenants, &L->cap_tenants, L->cfg->n_tenants, sizeof(*L->cfg->tenants));
		if (ret != 0)
			return ret;
		s->index = L->cfg->n_tenants++;
		L->cfg->tenants[s->index].line = line;
		L->cfg->tenants[s->index].name = xts_strdup(name);
		if (L->cfg->tenants[s->index].name == NULL)
			return XTS_ENOMEM;
		return apply_defaults(L, kind, &L->cfg->tenants[s->index]);
	} else if (kind == SK_JOB) {
		ret = grow((void **)&L->cfg->jobs, &L->cap_jobs, L->cfg->n_jobs, sizeof(*L->cfg->jobs));
		if (ret != 0)
			return ret;
		s->index = L->cfg->n_jobs++;
		L->cfg->jobs[s->index].line = line;
		L->cfg->jobs[s->index].name = xts_strdup(name);
		if (L->cfg->jobs[s->index].name == NULL)
			return XTS_ENOMEM;
		return apply_defaults(L, kind, &L->cfg->jobs[s->index]);
	}
	return 0;
}

/* ---- the inih callbacks --------------------------------------------------- */

/* Cut an inline comment off a key or continuation line: the first ';' or '#'
 * that follows whitespace starts it (a ';' or '#' inside a word, such as
 * "a#b" or a URL fragment, is kept). s starts at the line's first
 * non-blank character, which is neither ';' nor '#'. */
static void
cut_inline_comment(char *s)
{
	char *p;

	for (p = s + 1; *p != '\0'; p++)
		if ((*p == ';' || *p == '#') && isspace((unsigned char)p[-1])) {
			p[0] = '\n';
			p[1] = '\0';
			return;
		}
}

/* fgets-style reader over the in-memory text. Debian's libinih is built with
 * a fixed 200-byte line buffer, multi-line values on and ';' as the only
 * inline comment character (its runtime knobs are not honoured), and it only
 * reports keys. So this reader counts lines, handles section headers itself
 * (inih sees an empty line), cuts over-long lines, cuts inline comments
 * (';' and '#' after whitespace, as the contract says; inih alone would keep
 * "# ..." in the value), strips the indentation of indented "key = value"
 * lines, and lets inih see an indented line only when it continues the
 * previous key (a long list split over lines). */
static char *
reader(char *str, int num, void *stream)
{
	struct loader *L = stream;
	const char *line, *nl;
	char *a;
	size_t n, avail;

	L->line_is_cont = 0;
	if (L->pos >= L->len || num < 2 || L->nomem)
		return NULL;
	line = L->text + L->pos;
	avail = L->len - L->pos;
	nl = memchr(line, '\n', avail);
	n = nl != NULL ? (size_t)(nl - line) + 1 : avail;
	L->pos += n;
	L->lineno++;
	str[0] = '\n';
	str[1] = '\0';
	if (n > (size_t)num - 1) {
		prob(L, L->lineno, "line too long (more than %d characters); continue long lists on indented lines",
		     num - 2);
		L->cont_ok = 0;
		return str;
	}
	if (memchr(line, '\0', n) != NULL) {
		prob(L, L->lineno, "line contains a NUL byte; ignored");
		L->cont_ok = 0;
		return str;
	}
	memcpy(str, line, n);
	str[n] = '\0';

	a = str;
	if (L->lineno == 1 && (unsigned char)a[0] == 0xEF && (unsigned char)a[1] == 0xBB &&
	    (unsigned char)a[2] == 0xBF)
		a += 3;
	while (*a != '\0' && isspace((unsigned char)*a))
		a++;
	if (*a == '\0') {
		L->cont_ok = 0;
		return str;
	}
	if (*a == ';' || *a == '#')
		return str;
	if (*a == '[') {
		const char *close = strchr(a, ']');
		L->cont_ok = 0;
		if (close == NULL) {
			prob(L, L->lineno, "malformed section header (no closing ']')");
			if (push_sect(L, SK_BAD, NULL, L->lineno) != 0)
				L->nomem = 1;
		} else {
			const char *rest = close + 1;
			while (*rest != '\0' && isspace((unsigned char)*rest))
				rest++;
			if (*rest != '\0' && *rest != ';' && *rest != '#')
				prob(L, L->lineno, "unexpected text after section header");
			if (section_begin(L, a + 1, (size_t)(close - a - 1), L->lineno) != 0)
				L->nomem = 1;
		}
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	/* Before the line is classified: a ':' or '=' in a comment must not make
	 * a continuation line a key line, and a comment before the '=' leaves
	 * no key (a syntax error, not a key inih would drop unreported). */
	cut_inline_comment(a);
	if (strpbrk(a, "=:") == NULL) {
		if (a > str && L->cont_ok) {
			L->line_is_cont = 1;
			return str;
		}
		prob(L, L->lineno, "syntax error: expected 'key = value', a [section] or a comment");
		L->cont_ok = 0;
		str[0] = '\n';
		str[1] = '\0';
		return str;
	}
	/* A key line: never let inih take an indented key for a continuation. */
	if (a > str)
		memmove(str, a, strlen(a) + 1);
	L->cont_ok = 1;
	return str;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *L = user;
	const struct xts_key_def *k;
	struct sect *s;
	char why[768];
	void *st;
	int *lines, idx, ret;

	(void)section; /* we track sections ourselves, with their lines */
	if (L->nomem)
		return 1;
	if (value == NULL)
		value = "";
	if (L->line_is_cont) {
		/* Continuation of the previous key (a list split over lines). */
		if (L->last_key_failed)
			return 1;
		s = &L->sects[L->cur];
		k = key_find(kind_names[s->kind], name, &idx);
		if (k == NULL)
			return 1;
		if (k->type != XTS_KT_GUID_LIST && k->type != XTS_KT_EMAIL_LIST) {
			prob(L, L->lineno, "%s: only lists may continue on an indented line", name);
			L->last_key_failed = 1;
			return 1;
		}
		ret = list_append(L, k, section_struct(L, s), value, why, sizeof(why));
		if (ret == XTS_ENOMEM)
			L->nomem = 1;
		else if (ret != 0)
			prob(L, L->lineno, "%s: %s", name, why);
		return 1;
	}
	L->last_key_failed = 1;
	if (L->cur < 0) {
		prob(L, L->lineno, "key '%s' outside any section", name);
		return 1;
	}
	s = &L->sects[L->cur];
	if (s->kind == SK_BAD)
		return 1; /* the header's problem was reported once */
	k = key_find(kind_names[s->kind], name, &idx);
	if (k == NULL) {
		prob(L, L->lineno, "unknown key '%s' in [%s]", name, kind_names[s->kind]);
		return 1;
	}
	st = section_struct(L, s);
	lines = key_lines_of(s->kind, st);
	if (lines[idx] != 0) {
		prob(L, L->lineno, "duplicate key '%s' (first set on line %d)", name, lines[idx]);
		return 1;
	}
	lines[idx] = L->lineno;
	ret = set_value(L, k, st, value, why, sizeof(why));
	if (ret == XTS_ENOMEM)
		L->nomem = 1;
	else if (ret != 0)
		prob(L, L->lineno, "%s: %s", name, why);
	else
		L->last_key_failed = 0;
	return 1;
}

/* ---- cross-checks after parsing ------------------------------------------ */

static int
kline(int *key_line, const char *kind, const char *key, int fallback)
{
	int idx = -1;

	if (key_find(kind, key, &idx) == NULL || key_line[idx] == 0)
		return fallback;
	return key_line[idx];
}

static void
check_secret(struct loader *L, const char *spec, int line, const char *key)
{
	char why[600];
	int ret;

	char *path = NULL;

	if (spec[0] == '\0')
		return;
	/* A credential name outside systemd: whether the unit supplies it is a
	 * deployment fact this check cannot see, not a mistake in the file.
	 * Say so; reading it at run time fails with a clear error if absent. */
	ret = xts_secret_resolve(spec, &path);
	xts_free(path);
	if (ret == XTS_ENOENT) {
		xts_notice("%s:%d: %s: systemd credential '%s' not checked ($CREDENTIALS_DIRECTORY is not set)",
			   L->file, line, key, spec);
		return;
	}
	ret = xts_secret_check(spec, why, sizeof(why));
	if (ret == XTS_ENOMEM)
		L->nomem = 1;
	else if (ret != 0)
		prob(L, line, "%s: %s", key, why);
}

/* A passphrase-protected key cannot be used by a daemon (no one types the
 * passphrase): say so here, not at the first token request. A key this
 * process may not read (an operator running xtsyncctl) is not looked at. */
static void
check_key_plain(struct loader *L, const char *spec, int line)
{
	char buf[8192], *path = NULL;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (spec[0] == '\0' || xts_secret_resolve(spec, &path) != 0)
		goto done;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		goto done;
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (strstr(buf, "ENCRYPTED") != NULL)
		prob(L, line, "client_key_file: %s is encrypted with a passphrase, which a daemon cannot "
		     "type: store it unencrypted, readable only by the daemon's user (`openssl pkey -in "
		     "KEY -out NEWKEY`), or as a systemd credential", path);
	explicit_bzero(buf, sizeof(buf));
done:
	xts_free(path);
}

static void
check_file(struct loader *L, const char *path, int line, const char *key)
{
	struct stat st;

	if (path[0] == '\0')
		return;
	if (stat(path, &st) != 0)
		prob(L, line, "%s: %s: %s", key, path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		prob(L, line, "%s: %s is not a regular file", key, path);
}

static void
check_required(struct loader *L, enum sect_kind kind, int *key_line, int sect_line, const char *label)
{
	const struct xts_key_def *k;
	int i = 0;

	for (k = xts_config_keys; k->name != NULL; k++) {
		if (strcmp(k->section, kind_names[kind]) != 0)
			continue;
		if (k->required && key_line[i] == 0)
			prob(L, sect_line, "%s: required key '%s' is missing", label, k->name);
		i++;
	}
}

static void
check_tenant(struct loader *L, struct xts_config_tenant *t)
{
	char label[96];
	int *kl = t->key_line;
	int has_secret = t->client_secret_file[0] != '\0';
	int has_cert = t->client_certificate_file[0] != '\0';
	int has_key = t->client_key_file[0] != '\0';

	snprintf(label, sizeof(label), "[tenant \"%s\"]", t->name);
	check_required(L, SK_TENANT, kl, t->line, label);
	if (has_secret && (has_cert || has_key))
		prob(L, kline(kl, "tenant", "client_secret_file", t->line),
		     "%s: set either client_secret_file or client_certificate_file + client_key_file, not both", label);
	else if (!has_secret && !has_cert && !has_key)
		prob(L, t->line, "%s: no credential: set client_secret_file or client_certificate_file + client_key_file",
		     label);
	else if (!has_secret && has_cert != has_key)
		prob(L, kline(kl, "tenant", has_cert ? "client_certificate_file" : "client_key_file", t->line),
		     "%s: client_certificate_file and client_key_file go together", label);
	check_secret(L, t->client_secret_file, kline(kl, "tenant", "client_secret_file", t->line), "client_secret_file");
	check_secret(L, t->client_key_file, kline(kl, "tenant", "client_key_file", t->line), "client_key_file");
	check_key_plain(L, t->client_key_file, kline(kl, "tenant", "client_key_file", t->line));
	check_file(L, t->client_certificate_file, kline(kl, "tenant", "client_certificate_file", t->line),
		   "client_certificate_file");
	check_file(L, t->ca_file, kline(kl, "tenant", "ca_file", t->line), "ca_file");
}

static void
check_job(struct loader *L, struct xts_config_job *j)
{
	char label[96];
	int *kl = j->key_line;

	snprintf(label, sizeof(label), "[job \"%s\"]", j->name);
	check_required(L, SK_JOB, kl, j->line, label);
	if (j->source[0] != '\0') {
		j->source_tenant = xts_config_tenant_find(L->cfg, j->source);
		if (j->source_tenant == NULL)
			prob(L, kline(kl, "job", "source", j->line), "source: no [tenant \"%s\"] is defined", j->source);
	}
	if (j->target[0] != '\0') {
		j->target_tenant = xts_config_tenant_find(L->cfg, j->target);
		if (j->target_tenant == NULL)
			prob(L, kline(kl, "job", "target", j->line), "target: no [tenant \"%s\"] is defined", j->target);
	}
	if (j->source[0] != '\0' && strcmp(j->source, j->target) == 0)
		prob(L, kline(kl, "job", "target", j->line), "%s: source and target are the same tenant '%s'", label,
		     j->source);
	else if (j->source_tenant != NULL && j->target_tenant != NULL &&
		 strcasecmp(j->source_tenant->tenant_id, j->target_tenant->tenant_id) == 0 &&
		 j->source_tenant->tenant_id[0] != '\0')
		prob(L, kline(kl, "job", "target", j->line),
		     "%s: source and target tenants have the same tenant_id '%s'", label, j->source_tenant->tenant_id);
	if (j->scope == XTS_SCOPE_ASSIGNED && j->assigned_groups.n == 0 && j->assigned_users.n == 0)
		prob(L, kline(kl, "job", "scope", j->line),
		     "%s: scope = assigned needs assigned_groups or assigned_users (or scope = all)", label);
	/* [smtp] is optional (the contract: without it no mail is sent), so
	 * recipients without it are worth a word, not a refusal. */
	if (j->notify.n > 0 && !L->cfg->smtp.present)
		xts_notice("%s:%d: notify: set, but there is no [smtp] section: no mail will be sent", L->file,
			   kline(kl, "job", "notify", j->line));
	check_file(L, j->schema, kline(kl, "job", "schema", j->line), "schema");
}

static void
check_all(struct loader *L)
{
	struct xts_config *c = L->cfg;
	size_t i, k;

	if (c->smtp.present) {
		int *kl = c->smtp.key_line;
		check_required(L, SK_SMTP, kl, c->smtp.line, "[smtp]");
		check_secret(L, c->smtp.password_file, kline(kl, "smtp", "password_file", c->smtp.line), "password_file");
		check_file(L, c->smtp.ca_file, kline(kl, "smtp", "ca_file", c->smtp.line), "ca_file");
		if (c->smtp.username[0] != '\0' && c->smtp.password_file[0] == '\0')
			prob(L, kline(kl, "smtp", "username", c->smtp.line), "username: set without password_file");
	}
	for (i = 0; i < c->n_tenants; i++)
		check_tenant(L, &c->tenants[i]);
	for (i = 0; i < c->n_jobs; i++)
		check_job(L, &c->jobs[i]);
	/* Two jobs writing the same target from the same source would fight. */
	for (i = 0; i < c->n_jobs; i++)
		for (k = i + 1; k < c->n_jobs; k++)
			if (c->jobs[i].source[0] != '\0' && strcmp(c->jobs[i].source, c->jobs[k].source) == 0 &&
			    strcmp(c->jobs[i].target, c->jobs[k].target) == 0)
				prob(L, c->jobs[k].line, "[job \"%s\"]: same source and target as job \"%s\" (line %d)",
				     c->jobs[k].name, c->jobs[i].name, c->jobs[i].line);
}

/* ---- public entry points -------------------------------------------------- */

static void
tenant_free(struct xts_config_tenant *t)
{
	xts_free(t->name);
	xts_free(t->tenant_id);
	xts_free(t->client_id);
	xts_free(t->client_secret_file);
	xts_free(t->client_certificate_file);
	xts_free(t->client_key_file);
	xts_free(t->authority);
	xts_free(t->graph_endpoint);
	xts_free(t->ca_file);
}

static void
job_free(struct xts_config_job *j)
{
	xts_free(j->name);
	xts_free(j->source);
	xts_free(j->target);
	xts_free(j->schema);
	strlist_free(&j->assigned_groups);
	strlist_free(&j->assigned_users);
	strlist_free(&j->notify);
	xts_free(j->link_attribute);
}

void
xts_config_free(struct xts_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	xts_free(cfg->path);
	xts_free(cfg->daemon.state_dir);
	xts_free(cfg->daemon.provisioning_log);
	xts_free(cfg->daemon.control_socket);
	xts_free(cfg->daemon.metrics_file);
	xts_free(cfg->daemon.control_group);
	xts_free(cfg->smtp.url);
	xts_free(cfg->smtp.from);
	xts_free(cfg->smtp.username);
	xts_free(cfg->smtp.password_file);
	xts_free(cfg->smtp.ca_file);
	for (i = 0; i < cfg->n_tenants; i++)
		tenant_free(&cfg->tenants[i]);
	xts_free(cfg->tenants);
	for (i = 0; i < cfg->n_jobs; i++)
		job_free(&cfg->jobs[i]);
	xts_free(cfg->jobs);
	xts_free(cfg);
}

/* partial: on XTS_ECONFIG keep the config as far as it was read (see
 * xts_config_load_partial) instead of freeing it. */
static int
load_text(const char *name, const char *basedir, const char *text, size_t len, int partial,
	  struct xts_config **out, struct xts_config_problems *probs)
{
	struct loader L;
	size_t first;
	int ret = 0, r;

	memset(&L, 0, sizeof(L));
	L.file = name;
	L.text = text;
	L.len = len;
	L.cur = -1;
	L.probs = probs != NULL ? probs : &L.own_probs;
	first = L.probs->n;
	L.basedir = xts_strdup(basedir);
	L.cfg = xts_calloc(1, sizeof(*L.cfg));
	if (L.basedir == NULL || L.cfg == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	L.cfg->path = xts_strdup(name);
	if (L.cfg->path == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	ret = apply_defaults(&L, SK_DAEMON, &L.cfg->daemon);
	if (ret == 0)
		ret = apply_defaults(&L, SK_SMTP, &L.cfg->smtp);
	if (ret != 0)
		goto done;
	L.cfg->smtp.present = false;

	r = ini_parse_stream(reader, &L, handler, &L);
	if (L.nomem || r == -2) {
		ret = XTS_ENOMEM;
		goto done;
	}
	/* r > 0 (first bad line) was already reported by the reader. */
	check_all(&L);
	if (L.nomem) {
		ret = XTS_ENOMEM;
		goto done;
	}
	xts_config_problems_sort(L.probs, first);
	if (L.probs->n > first)
		ret = XTS_ECONFIG;
done:
	if (ret != 0 && !(partial && ret == XTS_ECONFIG)) {
		xts_config_free(L.cfg);
		L.cfg = NULL;
	}
	*out = L.cfg;
	if (probs == NULL) {
		size_t i;
		for (i = 0; i < L.own_probs.n; i++)
			xts_err("%s:%d: %s", L.own_probs.v[i].file, L.own_probs.v[i].line, L.own_probs.v[i].msg);
		xts_config_problems_free(&L.own_probs);
	}
	for (size_t i = 0; i < L.n_sects; i++)
		xts_free(L.sects[i].name);
	xts_free(L.sects);
	xts_free(L.basedir);
	return ret;
}

int
xts_config_load_string(const char *name, const char *text, struct xts_config **out,
		       struct xts_config_problems *probs)
{
	*out = NULL;
	if (text == NULL || name == NULL)
		return XTS_EINVAL;
	return load_text(name, "", text, strlen(text), 0, out, probs);
}

static int
load_file(const char *path, int partial, struct xts_config **out, struct xts_config_problems *probs)
{
	struct xts_buf text = XTS_BUF_INIT;
	char chunk[8192], *dir = NULL, *slash;
	FILE *f = NULL;
	size_t n;
	int ret = 0;

	*out = NULL;
	if (path == NULL)
		return XTS_EINVAL;
	f = fopen(path, "re");
	if (f == NULL) {
		int e = errno;
		if (probs == NULL) {
			xts_err("%s: cannot open: %s", path, strerror(e));
			return XTS_ECONFIG;
		}
		ret = xts_config_problem_add(probs, path, 0, "cannot open: %s", strerror(e));
		return ret != 0 ? ret : XTS_ECONFIG;
	}
	for (;;) {
		n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0)
			break;
		if (text.len + n > CONFIG_MAX_BYTES) {
			ret = XTS_ECONFIG;
			if (probs != NULL)
				xts_config_problem_add(probs, path, 0, "file is larger than %d bytes", CONFIG_MAX_BYTES);
			else
				xts_err("%s: file is larger than %d bytes", path, CONFIG_MAX_BYTES);
			goto done;
		}
		ret = xts_buf_append(&text, chunk, n);
		if (ret != 0)
			goto done;
	}
	if (ferror(f)) {
		ret = XTS_EIO;
		if (probs != NULL)
			xts_config_problem_add(probs, path, 0, "read error");
		goto done;
	}
	dir = xts_strdup(path);
	if (dir == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		dir[0] = '\0';
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	ret = load_text(path, dir, text.p != NULL ? text.p : "", text.len, partial, out, probs);
done:
	if (f != NULL)
		fclose(f);
	xts_free(dir);
	xts_buf_free(&text);
	return ret;
}

int
xts_config_load(const char *path, struct xts_config **out, struct xts_config_problems *probs)
{
	return load_file(path, 0, out, probs);
}

int
xts_config_load_partial(const char *path, struct xts_config **out, struct xts_config_problems *probs)
{
	return load_file(path, 1, out, probs);
}

const struct xts_config_tenant *
xts_config_tenant_find(const struct xts_config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->n_tenants; i++)
		if (strcmp(cfg->tenants[i].name, name) == 0)
			return &cfg->tenants[i];
	return NULL;
}

const struct xts_config_job *
xts_config_job_find(const struct xts_config *cfg, const char *name)
{
	size_t i;

	if (cfg == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cfg->n_jobs; i++)
		if (strcmp(cfg->jobs[i].name, name) == 0)
			return &cfg->jobs[i];
	return NULL;
}

int
xts_config_key_line(const char *kind, const void *section, const char *key)
{
	enum sect_kind k = SK_NONE;
	const int *lines;
	int idx, hdr;

	if (kind == NULL || section == NULL || key == NULL)
		return 0;
	for (int i = SK_DAEMON; i <= SK_JOB; i++)
		if (strcmp(kind, kind_names[i]) == 0)
			k = (enum sect_kind)i;
	if (k == SK_NONE || key_find(kind, key, &idx) == NULL)
		return 0;
	lines = key_lines_of(k, (void *)(uintptr_t)section);
	switch (k) {
	case SK_DAEMON: hdr = ((const struct xts_config_daemon *)section)->line; break;
	case SK_SMTP: hdr = ((const struct xts_config_smtp *)section)->line; break;
	case SK_TENANT: hdr = ((const struct xts_config_tenant *)section)->line; break;
	default: hdr = ((const struct xts_config_job *)section)->line; break;
	}
	return lines[idx] != 0 ? lines[idx] : hdr;
}

int
xts_config_key_reloadable(const char *kind, const char *key)
{
	const struct xts_key_def *k;

	if (kind == NULL || key == NULL)
		return -1;
	k = key_find(kind, key, NULL);
	return k == NULL ? -1 : k->reloadable;
}

static const char *
type_name(const struct xts_key_def *k)
{
	switch (k->type) {
	case XTS_KT_STRING: return "string";
	case XTS_KT_PATH: return "path";
	case XTS_KT_FILE: return "file";
	case XTS_KT_SECRET: return "secret file or credential";
	case XTS_KT_URL: return "url";
	case XTS_KT_SMTP_URL: return "smtp url";
	case XTS_KT_DURATION: return "duration";
	case XTS_KT_INT: return "integer";
	case XTS_KT_RATIO: return "ratio";
	case XTS_KT_BOOL: return "bool";
	case XTS_KT_ENUM: return "enum";
	case XTS_KT_LOGLEVEL: return "enum";
	case XTS_KT_GUID: return "guid";
	case XTS_KT_GUID_OR_DOMAIN: return "guid-or-domain";
	case XTS_KT_GUID_LIST: return "list of guids";
	case XTS_KT_EMAIL: return "e-mail";
	case XTS_KT_EMAIL_LIST: return "list of e-mails";
	case XTS_KT_TENANT: return "tenant name";
	case XTS_KT_GROUP: return "group";
	}
	return "?";
}

static void
range_text(const struct xts_key_def *k, char *out, size_t n)
{
	struct xts_buf b = XTS_BUF_INIT;
	int i;

	out[0] = '\0';
	if (k->type == XTS_KT_INT) {
		snprintf(out, n, "%lld..%lld", k->min, k->max);
	} else if (k->type == XTS_KT_DURATION) {
		snprintf(out, n, "%llds..%llds", k->min / 1000, k->max / 1000);
	} else if (k->type == XTS_KT_RATIO) {
		snprintf(out, n, "(0, 1]");
	} else if (k->names != NULL) {
		for (i = 0; k->names[i] != NULL; i++)
			if (xts_buf_printf(&b, "%s%s", i > 0 ? " \\| " : "", k->names[i]) != 0)
				break;
		snprintf(out, n, "%s", xts_buf_str(&b));
		xts_buf_free(&b);
	}
}

int
xts_config_dump_keys(FILE *out, int markdown)
{
	const struct xts_key_def *k;
	const char *sect = "";
	char range[256];

	if (markdown) {
		fprintf(out, "<!-- SPDX-License-Identifier: MIT -->\n"
			     "# Configuration keys\n\n"
			     "Generated by `xtsyncd --dump-keys` from the key table in `lib/config_keys.c`;\n"
			     "do not edit by hand (tests/unit/test_config.c checks it is current).\n\n"
			     "Durations are an integer with `s`, `m` or `h` (repeatable: `1h30m`); a bare\n"
			     "number means seconds. Relative paths are relative to the config file's\n"
			     "directory. A secret given as a bare name (no `/`) is a systemd credential\n"
			     "read from `$CREDENTIALS_DIRECTORY`. \"reload\" says whether SIGHUP applies\n"
			     "a change (otherwise a restart is needed; the daemon logs that).\n\n"
			     "Comments start with `;` or `#`, at the start of a line or after\n"
			     "whitespace (`value ; note`, `value # note`); inside a word they are part\n"
			     "of the value (`a#b`, a URL fragment). `[smtp]` is optional: a job's\n"
			     "`notify` without it is a notice, and no mail is sent.\n");
	}
	for (k = xts_config_keys; k->name != NULL; k++) {
		range_text(k, range, sizeof(range));
		if (!markdown) {
			fprintf(out, "%s %s %s default=\"%s\"%s%s\n", k->section, k->name, type_name(k), k->def,
				k->required ? " required" : "", k->reloadable ? " reloadable" : "");
			continue;
		}
		if (strcmp(sect, k->section) != 0) {
			sect = k->section;
			fprintf(out, "\n## [%s%s]\n\n| key | type | default | range | reload | description |\n"
				     "|---|---|---|---|---|---|\n",
				sect, strcmp(sect, "tenant") == 0 || strcmp(sect, "job") == 0 ? " \"NAME\"" : "");
		}
		fprintf(out, "| `%s` | %s | %s%s%s | %s | %s | %s |\n", k->name, type_name(k),
			k->required ? "**required**" : (k->def[0] != '\0' ? "`" : "(empty)"),
			k->required ? "" : k->def, k->required || k->def[0] == '\0' ? "" : "`", range,
			k->reloadable ? "yes" : "no", k->desc);
	}
	return ferror(out) ? XTS_EIO : 0;
}
