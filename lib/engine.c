/* SPDX-License-Identifier: MIT */
/* The engine object: configuration (one Graph client per tenant, one schema
 * per job, copied job settings), the job table, and the small operator
 * actions that are one store transaction (allow-deletions, restart, resume).
 * The cycle itself is engine_cycle.c; decisions engine_plan.c; writes
 * engine_apply.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "engine_internal.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "secret.h"
#include "text.h"
#include "throttle.h"

/* ---- small pure helpers (public) ------------------------------------------ */

int
xts_engine_link_value(const char *source_tid, const char *source_id, char *buf, size_t len)
{
	int n;

	if (source_tid == NULL || source_id == NULL || buf == NULL || len == 0)
		return XTS_EINVAL;
	n = snprintf(buf, len, "%s:%s", source_tid, source_id);
	return n < 0 || (size_t)n >= len ? XTS_ERANGE : 0;
}

int
xts_engine_link_attr(const char *target_client_id, char *buf, size_t len)
{
	char hex[64];
	size_t i, k = 0;
	int n;

	if (target_client_id == NULL || buf == NULL || len == 0)
		return XTS_EINVAL;
	for (i = 0; target_client_id[i] != '\0'; i++) {
		char ch = target_client_id[i];
		if (ch == '-')
			continue;
		if (k + 1 >= sizeof(hex))
			return XTS_ERANGE;
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F')))
			return XTS_EINVAL;
		hex[k++] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
	}
	hex[k] = '\0';
	if (k == 0)
		return XTS_EINVAL;
	n = snprintf(buf, len, "extension_%s_xtsyncSourceLink", hex);
	return n < 0 || (size_t)n >= len ? XTS_ERANGE : 0;
}

static int
ends_with_ci(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int
xts_engine_is_internal_member(const json_t *user, const char **why)
{
	const char *ut, *ct, *upn, *key;
	json_t *v;

	if (!json_is_object(user)) {
		*why = "no attributes";
		return 0;
	}
	ut = json_string_value(json_object_get(user, "userType"));
	ct = json_string_value(json_object_get(user, "creationType"));
	upn = json_string_value(json_object_get(user, "userPrincipalName"));
	/* An absent userType is a member (Graph omits properties never set). */
	if (ut != NULL && strcasecmp(ut, "Member") != 0) {
		*why = "userType is not Member (B2B guests are not synchronized)";
		return 0;
	}
	if (ct != NULL && strcasecmp(ct, "Invitation") == 0) {
		*why = "creationType is Invitation (an external user in this tenant)";
		return 0;
	}
	if (upn != NULL && strstr(upn, "#EXT#") != NULL) {
		*why = "userPrincipalName contains #EXT# (an external user in this tenant)";
		return 0;
	}
	json_object_foreach((json_t *)user, key, v) {
		/* the first byte inline: this runs for every attribute of every user */
		if ((key[0] | 0x20) == 'e' && strncasecmp(key, "extension_", 10) == 0 &&
		    ends_with_ci(key, "_xtsyncSourceLink") &&
		    json_is_string(v) && json_string_length(v) > 0) {
			*why = "carries an xtsync link attribute (synchronized from another tenant)";
			return 0;
		}
	}
	*why = NULL;
	return 1;
}

long long
xts_engine_quarantine_next_retry(long long since, long long now)
{
	static const long long h = 3600LL * 1000;
	long long at = since + 6 * h;

	/* +6 h, +12 h, +24 h after the first failure, then every 24 h
	 * (application-provisioning-quarantine-status.md, "Retry duration");
	 * the first such time still ahead, so a retry that ran late (the host
	 * was down) does not make the next one due at once */
	if (at <= now)
		at = since + 12 * h;
	if (at <= now)
		at = since + 24 * h;
	if (at <= now)
		at += ((now - at) / (24 * h) + 1) * 24 * h;
	return at;
}

long long
xts_engine_escrow_delay_ms(long long base_ms, int attempts)
{
	const long long cap = 24LL * 3600 * 1000;
	long long d = base_ms > 0 ? base_ms : 1000;
	int i;

	for (i = 0; i < attempts && d < cap; i++)
		d *= 2;
	return d > cap ? cap : d;
}

int
xts_engine_should_quarantine(long long ops, long long failed, long long ref_ops, long long ref_failed,
			     long long min_ops, long long min_failures, double ratio, long long max_failures)
{
	/* application-provisioning-quarantine-status.md, "Escrow thresholds":
	 * evaluated from 5,000 failures; reference failures (a manager) count
	 * toward neither the 40 % nor the 40,000; an absolute 60,000 counts
	 * every failure */
	long long own_ops = ops - ref_ops, own_failed = failed - ref_failed;

	if (failed > XTS_QUARANTINE_ALL_FAILURES)
		return 1;
	if (own_failed <= 0 || own_failed < min_failures || ops < min_ops || own_ops <= 0)
		return 0;
	if (max_failures > 0 && own_failed > max_failures)
		return 1;
	return (double)own_failed > ratio * (double)own_ops;
}

/* ---- tenants, schemas, job settings --------------------------------------- */

void
eng_tenant_unref(struct eng_tenant *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	xts_graph_free(t->g);
	xts_free(t->name);
	xts_free(t->tenant_id);
	xts_free(t->client_id);
	xts_free(t);
}

void
eng_schema_unref(struct eng_schema *s)
{
	if (s == NULL || --s->refs > 0)
		return;
	xts_schema_free(s->s);
	xts_free(s);
}

static void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		xts_free(v[i]);
	xts_free(v);
}

static int
strv_dup(char ***dst, char *const *src, size_t n)
{
	size_t i;

	*dst = NULL;
	if (n == 0)
		return 0;
	*dst = xts_calloc(n, sizeof(char *));
	if (*dst == NULL)
		return XTS_ENOMEM;
	for (i = 0; i < n; i++) {
		(*dst)[i] = xts_strdup(src[i]);
		if ((*dst)[i] == NULL)
			return XTS_ENOMEM;
	}
	return 0;
}

void
eng_jobcfg_clear(struct eng_jobcfg *c)
{
	if (c == NULL)
		return;
	xts_free(c->name);
	xts_free(c->link_attr);
	xts_free(c->src_link_attr);
	xts_free(c->notify);
	strv_free(c->groups, c->n_groups);
	strv_free(c->users, c->n_users);
	memset(c, 0, sizeof(*c));
}

int
eng_jobcfg_dup(struct eng_jobcfg *dst, const struct eng_jobcfg *src)
{
	*dst = *src;
	dst->name = xts_strdup(src->name);
	dst->link_attr = xts_strdup(src->link_attr);
	dst->src_link_attr = src->src_link_attr != NULL ? xts_strdup(src->src_link_attr) : NULL;
	dst->notify = xts_strdup(src->notify);
	dst->groups = NULL;
	dst->users = NULL;
	if (dst->name == NULL || dst->link_attr == NULL || dst->notify == NULL ||
	    (src->src_link_attr != NULL && dst->src_link_attr == NULL) ||
	    strv_dup(&dst->groups, src->groups, src->n_groups) != 0 ||
	    strv_dup(&dst->users, src->users, src->n_users) != 0) {
		dst->n_groups = dst->groups != NULL ? src->n_groups : 0;
		dst->n_users = dst->users != NULL ? src->n_users : 0;
		eng_jobcfg_clear(dst);
		return XTS_ENOMEM;
	}
	return 0;
}

int
xts_engine_job_link_attr(const struct xts_config_job *jc, char *buf, size_t len)
{
	if (jc->link_attribute != NULL && jc->link_attribute[0] != '\0') {
		int n = snprintf(buf, len, "%s", jc->link_attribute);
		return n < 0 || (size_t)n >= len ? XTS_ERANGE : 0;
	}
	return xts_engine_link_attr(jc->target_tenant->client_id, buf, len);
}

static int
jobcfg_from_config(struct eng_jobcfg *c, const struct xts_config *cfg,
		   const struct xts_config_job *jc)
{
	char attr[256];
	struct xts_buf nb = XTS_BUF_INIT;
	size_t i;
	int ret;

	memset(c, 0, sizeof(*c));
	ret = xts_engine_job_link_attr(jc, attr, sizeof(attr));
	if (ret != 0) {
		xts_err("job %s: cannot derive the link attribute from the target's client_id", jc->name);
		return ret;
	}
	c->name = xts_strdup(jc->name);
	c->link_attr = xts_strdup(attr);
	/* A tenant that is the target of another job carries that job's link
	 * attribute on users we created there: read it to keep a mesh echo-free. */
	for (i = 0; i < cfg->n_jobs; i++) {
		const struct xts_config_job *o = &cfg->jobs[i];
		if (strcmp(o->target, jc->source) == 0 && xts_engine_job_link_attr(o, attr, sizeof(attr)) == 0) {
			c->src_link_attr = xts_strdup(attr);
			break;
		}
	}
	/* Without [smtp] no mail is sent (the contract), so none is queued
	 * either: an outbox kept for later would mail stale news the day
	 * [smtp] is added. */
	for (i = 0; cfg->smtp.present && i < jc->notify.n; i++)
		if (xts_buf_printf(&nb, "%s%s", i > 0 ? "," : "", jc->notify.v[i]) != 0)
			ret = XTS_ENOMEM;
	c->notify = nb.p != NULL ? xts_buf_steal(&nb) : xts_strdup("");
	xts_buf_free(&nb);
	c->scope = (int)jc->scope;
	c->deprovision = (int)jc->deprovision;
	c->deletion_threshold = jc->deletion_threshold;
	c->q_min_ops = jc->quarantine_min_operations;
	c->q_min_failures = jc->quarantine_min_failures;
	c->q_ratio = jc->quarantine_failure_ratio;
	c->q_max_failures = jc->quarantine_max_failures;
	c->escrow_base_ms = (long long)jc->escrow_retry_base_ms;
	if (ret == 0 && strv_dup(&c->groups, jc->assigned_groups.v, jc->assigned_groups.n) == 0)
		c->n_groups = jc->assigned_groups.n;
	else
		ret = XTS_ENOMEM;
	if (ret == 0 && strv_dup(&c->users, jc->assigned_users.v, jc->assigned_users.n) == 0)
		c->n_users = jc->assigned_users.n;
	else
		ret = XTS_ENOMEM;
	if (ret == 0 && (c->name == NULL || c->link_attr == NULL || c->notify == NULL))
		ret = XTS_ENOMEM;
	if (ret != 0)
		eng_jobcfg_clear(c);
	return ret;
}

/* A certificate is public: read it as a plain file (up to 256 KiB), not with
 * xts_secret_read, whose 0600 rule the config check does not apply to it. */
static int
read_cert_file(const char *path, char **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	char chunk[4096];
	size_t n;
	int ret = 0;
	FILE *f = fopen(path, "re");

	*out = NULL;
	if (f == NULL) {
		ret = xts_err_from_errno(errno);
		xts_err("cannot open the certificate %s: %s", path, strerror(errno));
		return ret;
	}
	for (;;) {
		n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0)
			break;
		if (b.len + n > 256 * 1024)
			ret = XTS_ETOOBIG;
		else
			ret = xts_buf_append(&b, chunk, n);
		if (ret != 0)
			break;
	}
	if (ret == 0 && ferror(f))
		ret = XTS_EIO;
	fclose(f);
	if (ret == 0 && b.len == 0)
		ret = XTS_EINVAL;
	if (ret == 0)
		*out = xts_buf_steal(&b);
	else
		xts_err("cannot read the certificate %s: %s", path, xts_strerror(ret));
	xts_buf_free(&b);
	return ret;
}

int
xts_engine_tenant_conn(const struct xts_config_tenant *tc, struct xts_tenant_conn *conn,
		       struct xts_tenant_cred *cred)
{
	int ret;

	memset(conn, 0, sizeof(*conn));
	memset(cred, 0, sizeof(*cred));
	if (tc->client_secret_file[0] != '\0') {
		ret = xts_secret_read(tc->client_secret_file, &cred->secret);
	} else {
		ret = read_cert_file(tc->client_certificate_file, &cred->cert);
		if (ret == 0)
			ret = xts_secret_read(tc->client_key_file, &cred->key);
	}
	if (ret != 0)
		return ret;
	conn->name = tc->name;
	conn->tenant_id = tc->tenant_id;
	conn->client_id = tc->client_id;
	conn->client_secret = cred->secret;
	conn->cert_pem = cred->cert;
	conn->key_pem = cred->key;
	conn->authority = tc->authority;
	conn->graph_endpoint = tc->graph_endpoint;
	conn->ca_file = tc->ca_file[0] != '\0' ? tc->ca_file : NULL;
	conn->size_class = (int)tc->size;
	conn->max_in_flight = (int)tc->max_in_flight;
	return 0;
}

void
xts_tenant_cred_free(struct xts_tenant_cred *cred)
{
	xts_secret_free(cred->secret);
	xts_secret_free(cred->cert);
	xts_secret_free(cred->key);
	cred->secret = cred->cert = cred->key = NULL;
}

static int
tenant_new(struct xts_engine *e, const struct xts_config_tenant *tc, struct eng_tenant **out)
{
	struct xts_tenant_conn conn;
	struct xts_tenant_cred cred;
	struct eng_tenant *t = NULL;
	int ret;

	ret = xts_engine_tenant_conn(tc, &conn, &cred);
	if (ret != 0) {
		xts_err("tenant %s: cannot read its credential: %s", tc->name, xts_strerror(ret));
		/* A missing, unreadable or too-open credential is the operator's
		 * configuration (contract: exit 2), not a runtime failure. */
		if (ret != XTS_ENOMEM)
			ret = XTS_ECONFIG;
		goto done;
	}
	t = xts_calloc(1, sizeof(*t));
	if (t == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	t->refs = 1;
	t->name = xts_strdup(tc->name);
	t->tenant_id = xts_strdup(tc->tenant_id);
	t->client_id = xts_strdup(tc->client_id);
	if (t->name == NULL || t->tenant_id == NULL || t->client_id == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	ret = xts_graph_new(e->o.gctx, &conn, &t->g);
	if (ret != 0)
		xts_err("tenant %s: cannot create its Graph client: %s", tc->name, xts_strerror(ret));
done:
	xts_tenant_cred_free(&cred);
	if (ret != 0) {
		eng_tenant_unref(t);
		t = NULL;
	}
	*out = t;
	return ret;
}

static int
schema_load(const struct xts_config_job *jc, struct eng_schema **out)
{
	struct xts_schema_problems p = XTS_SCHEMA_PROBLEMS_INIT;
	struct eng_schema *s = xts_calloc(1, sizeof(*s));
	size_t i;
	int ret;

	*out = NULL;
	if (s == NULL)
		return XTS_ENOMEM;
	s->refs = 1;
	if (jc->schema != NULL && jc->schema[0] != '\0')
		ret = xts_schema_load_file(jc->schema, &s->s, &p);
	else
		ret = xts_schema_builtin(&s->s);
	for (i = 0; i < p.count; i++)
		xts_err("job %s: schema %s: %s: %s", jc->name, jc->schema, p.items[i].path,
			p.items[i].message);
	xts_schema_problems_free(&p);
	if (ret == 0)
		ret = xts_schema_fingerprint(s->s, s->fp);
	if (ret != 0) {
		eng_schema_unref(s);
		return ret;
	}
	*out = s;
	return 0;
}

struct eng_job *
eng_job_find(struct xts_engine *e, const char *name)
{
	size_t i;

	for (i = 0; i < e->n_jobs; i++)
		if (strcmp(e->jobs[i]->name, name) == 0)
			return e->jobs[i];
	return NULL;
}

static struct eng_tenant *
tenant_find(struct eng_tenant **v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i]->name, name) == 0)
			return v[i];
	return NULL;
}

static void
job_free(struct eng_job *j)
{
	eng_schema_unref(j->schema);
	eng_jobcfg_clear(j->c);
	xts_free(j->c);
	eng_tenant_unref(j->src);
	eng_tenant_unref(j->tgt);
	xts_free(j->source_tid_guid);
	xts_free(j->name);
	xts_free(j);
}

int
xts_engine_configure(struct xts_engine *e, const struct xts_config *cfg)
{
	struct eng_tenant **nt = NULL;
	struct eng_schema **ns = NULL;
	struct eng_jobcfg *nc = NULL;
	size_t i, k;
	int ret = 0;

	nt = xts_calloc(cfg->n_tenants + 1, sizeof(*nt));
	ns = xts_calloc(cfg->n_jobs + 1, sizeof(*ns));
	nc = xts_calloc(cfg->n_jobs + 1, sizeof(*nc));
	if (nt == NULL || ns == NULL || nc == NULL) {
		ret = XTS_ENOMEM;
		goto fail;
	}
	/* Build everything new first; swap only when all of it succeeded. */
	for (i = 0; i < cfg->n_tenants && ret == 0; i++)
		ret = tenant_new(e, &cfg->tenants[i], &nt[i]);
	for (i = 0; i < cfg->n_jobs && ret == 0; i++) {
		ret = schema_load(&cfg->jobs[i], &ns[i]);
		if (ret == 0)
			ret = jobcfg_from_config(&nc[i], cfg, &cfg->jobs[i]);
	}
	if (ret != 0)
		goto fail;
	for (i = 0; i < e->n_jobs; i++)
		e->jobs[i]->present = false;
	for (i = 0; i < cfg->n_jobs; i++) {
		const struct xts_config_job *jc = &cfg->jobs[i];
		struct eng_job *j = eng_job_find(e, jc->name);
		if (j == NULL) {
			struct eng_job **v = xts_realloc(e->jobs, (e->n_jobs + 1) * sizeof(*v));
			if (v == NULL) {
				ret = XTS_ENOMEM;
				goto fail_partial;
			}
			e->jobs = v;
			j = xts_calloc(1, sizeof(*j));
			if (j != NULL)
				j->name = xts_strdup(jc->name);
			if (j == NULL || j->name == NULL) {
				xts_free(j);
				ret = XTS_ENOMEM;
				goto fail_partial;
			}
			e->jobs[e->n_jobs++] = j;
		}
		j->present = true;
		eng_schema_unref(j->schema);
		j->schema = ns[i];
		ns[i] = NULL;
		if (j->c == NULL)
			j->c = xts_calloc(1, sizeof(*j->c));
		if (j->c == NULL) {
			ret = XTS_ENOMEM;
			goto fail_partial;
		}
		eng_jobcfg_clear(j->c);
		*j->c = nc[i];
		memset(&nc[i], 0, sizeof(nc[i]));
		eng_tenant_unref(j->src);
		eng_tenant_unref(j->tgt);
		j->src = tenant_find(nt, cfg->n_tenants, jc->source);
		j->tgt = tenant_find(nt, cfg->n_tenants, jc->target);
		if (j->src != NULL)
			j->src->refs++;
		if (j->tgt != NULL)
			j->tgt->refs++;
		/* New clients: test the connection again before the next cycle. */
		j->checked = false;
	}
	/* Drop jobs no longer configured (unless running: the cycle frees it). */
	for (i = 0, k = 0; i < e->n_jobs; i++) {
		if (!e->jobs[i]->present && e->jobs[i]->running == NULL)
			job_free(e->jobs[i]);
		else
			e->jobs[k++] = e->jobs[i];
	}
	e->n_jobs = k;
	for (i = 0; i < e->n_tenants; i++)
		eng_tenant_unref(e->tenants[i]);
	xts_free(e->tenants);
	e->tenants = nt;
	e->n_tenants = cfg->n_tenants;
	xts_free(ns);
	xts_free(nc);
	return 0;
fail_partial:
	xts_err("engine: configuration only partly applied: %s", xts_strerror(ret));
fail:
	for (i = 0; nt != NULL && i < cfg->n_tenants; i++)
		eng_tenant_unref(nt[i]);
	for (i = 0; ns != NULL && i < cfg->n_jobs; i++)
		eng_schema_unref(ns[i]);
	for (i = 0; nc != NULL && i < cfg->n_jobs; i++)
		eng_jobcfg_clear(&nc[i]);
	xts_free(nt);
	xts_free(ns);
	xts_free(nc);
	return ret;
}

/* ---- engine object --------------------------------------------------------- */

int
xts_engine_new(const struct xts_engine_opts *o, struct xts_engine **out)
{
	struct xts_engine *e;

	*out = NULL;
	if (o == NULL || o->ev == NULL || o->gctx == NULL || o->store == NULL)
		return XTS_EINVAL;
	e = xts_calloc(1, sizeof(*e));
	if (e == NULL)
		return XTS_ENOMEM;
	e->o = *o;
	if (e->o.window <= 0)
		e->o.window = 200;
	*out = e;
	return 0;
}

void
xts_engine_free(struct xts_engine *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->n_jobs; i++) {
		struct eng_job *j = e->jobs[i];
		if (j->running != NULL) {
			j->running->done = NULL;
			eng_cycle_free(j->running);
		}
		job_free(j);
	}
	xts_free(e->jobs);
	for (i = 0; i < e->n_tenants; i++)
		eng_tenant_unref(e->tenants[i]);
	xts_free(e->tenants);
	xts_free(e);
}

int
xts_engine_counts(struct xts_engine *e, const char *job, struct xts_engine_counts *out)
{
	struct eng_job *j = eng_job_find(e, job);

	if (j == NULL)
		return XTS_ENOENT;
	*out = j->running != NULL ? j->running->counts : j->counts;
	/* "in scope" is the job's total, known when a cycle ends: a running
	 * incremental round has counted only the users it read so far (it
	 * read 0 for status and the metrics gauge for the whole cycle) */
	if (j->running != NULL && j->running->kind != XTS_CYCLE_INITIAL)
		out->in_scope = j->counts.in_scope;
	return 0;
}

int
xts_engine_running(struct xts_engine *e, const char *job)
{
	struct eng_job *j = eng_job_find(e, job);

	return j == NULL ? XTS_ENOENT : j->running != NULL;
}

static int
store_state(struct xts_engine *e, const char *job)
{
	struct xts_store_job sj;
	int state;

	memset(&sj, 0, sizeof(sj));
	if (xts_store_job_get(e->o.store, job, &sj) != 0)
		return -1;
	state = sj.state;
	xts_store_job_clear(&sj);
	return state;
}

int
xts_engine_quarantined(struct xts_engine *e, const char *job)
{
	return eng_in_quarantine(store_state(e, job));
}

int
xts_engine_quarantine_info(struct xts_engine *e, const char *job, char *reason, size_t len,
			   long long *next_retry)
{
	struct xts_store_job sj;
	int q;

	memset(&sj, 0, sizeof(sj));
	*next_retry = 0;
	if (len > 0)
		reason[0] = '\0';
	if (xts_store_job_get(e->o.store, job, &sj) != 0)
		return 0;
	q = eng_in_quarantine(sj.state);
	if (q) {
		snprintf(reason, len, "%s", sj.state_reason != NULL ? sj.state_reason : "unknown");
		*next_retry = sj.state == XTS_JOB_QUARANTINED ? sj.next_retry : 0;
	}
	xts_store_job_clear(&sj);
	return q;
}

int
xts_engine_deletions_held(struct xts_engine *e, const char *job)
{
	return store_state(e, job) == XTS_JOB_DELETIONS_HELD;
}

int
xts_engine_allow_deletions(struct xts_engine *e, const char *job, long long *released)
{
	struct eng_job *j = eng_job_find(e, job);
	int ret;

	*released = 0;
	if (j == NULL)
		return XTS_ENOENT;
	if (j->running != NULL)
		return XTS_EAGAIN;
	if (store_state(e, job) != XTS_JOB_DELETIONS_HELD)
		return XTS_EINVAL;
	ret = xts_store_begin(e->o.store);
	if (ret != 0)
		return ret;
	ret = xts_store_op_release_staged(e->o.store, job, released);
	if (ret == 0)
		ret = xts_store_job_set_state(e->o.store, job, XTS_JOB_IDLE, NULL, 0, 0, 0);
	if (ret == 0)
		ret = xts_store_commit(e->o.store);
	else
		xts_store_rollback(e->o.store);
	if (ret == 0)
		xts_info("job %s: %lld held deletions released by allow-deletions", job, *released);
	return ret;
}

int
xts_engine_restart(struct xts_engine *e, const char *job)
{
	struct eng_job *j = eng_job_find(e, job);
	int ret;

	if (j == NULL)
		return XTS_ENOENT;
	if (j->running != NULL)
		return XTS_EAGAIN;
	ret = xts_store_reset_job(e->o.store, job);
	if (ret == 0) {
		j->checked = false;
		memset(&j->counts, 0, sizeof(j->counts));
		xts_info("job %s: restarted; the next cycle is an initial cycle", job);
	}
	return ret;
}

int
xts_engine_resume(struct xts_engine *e, const char *job)
{
	struct eng_job *j = eng_job_find(e, job);
	long long due = 0;
	int ret;

	if (j == NULL)
		return XTS_ENOENT;
	if (!eng_in_quarantine(store_state(e, job)))
		return 0;
	j->checked = false;
	ret = xts_store_begin(e->o.store);
	if (ret != 0)
		return ret;
	ret = xts_store_job_set_state(e->o.store, job, XTS_JOB_IDLE, NULL, 0, 0, 0);
	/* the failed writes are what the operator says is fixed: the next
	 * cycle tries them, not only after their escrow back-off */
	if (ret == 0)
		ret = xts_store_op_due_now(e->o.store, job, NULL, &due);
	if (ret == 0)
		ret = xts_store_commit(e->o.store);
	else
		xts_store_rollback(e->o.store);
	if (ret == 0)
		xts_info("job %s: quarantine cleared by the operator (resume, or sync as Graph's start); "
			 "%lld failed write(s) due again", job, due);
	return ret;
}

int
xts_engine_paused(struct xts_engine *e, const char *job)
{
	struct xts_store_job sj;
	int ret;

	memset(&sj, 0, sizeof(sj));
	ret = xts_store_job_get(e->o.store, job, &sj);
	if (ret == XTS_ENOENT)
		return 0;
	if (ret != 0)
		return ret;
	ret = sj.paused ? 1 : 0;
	xts_store_job_clear(&sj);
	return ret;
}

int
xts_engine_set_paused(struct xts_engine *e, const char *job, int paused)
{
	if (eng_job_find(e, job) == NULL)
		return XTS_ENOENT;
	return xts_store_job_set_paused(e->o.store, job, paused);
}

void
eng_plan_line(struct eng_cycle *cy, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	if (cy->e->o.plan_line == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	xts_text_scrub(line); /* source ids and addresses: printed to a terminal */
	cy->e->o.plan_line(cy->e->o.plan_arg, cy->c.name, line);
}
