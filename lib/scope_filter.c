/* SPDX-License-Identifier: MIT */
/* Scoping filters: compile a Graph "filter" (groups of clauses; regexes via
 * PCRE2, compiled once with match limits) and evaluate it per source user.
 * Semantics: MicrosoftDocs/entra-docs docs/identity/app-provisioning/
 * define-conditional-rules-for-provisioning-user-accounts.md. Does not know
 * about assignment (assigned users/groups) scope; the engine does. */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "schema.h"
#include "scope_filter.h"
#include "text.h"

/* Backtracking budget for one regex match, so a hostile pattern cannot hang a cycle. */
#define XTS_FILTER_MATCH_LIMIT 100000
#define XTS_FILTER_DEPTH_LIMIT 1000

enum op {
	OP_EQUALS,
	OP_NOT_EQUALS,
	OP_IS_TRUE,
	OP_IS_FALSE,
	OP_IS_NULL,
	OP_IS_NOT_NULL,
	OP_REGEX,
	OP_NOT_REGEX,
	OP_INCLUDES,
	OP_ENDS_WITH,
	OP_BIT_AND,
	OP_NOT_BIT_AND,
	OP_GT,
	OP_GE,
};

/* Accepted spellings are compared after dropping spaces, '_' and '-' and
 * ignoring case, so "NOT EQUALS", "NOT_EQUALS" and "NotEquals" are one operator. */
static const struct {
	const char *key; /* normalized */
	enum op op;
	int unary;
	const char *canon; /* portal spelling, used in messages and the fingerprint */
} ops[] = {
	{ "EQUALS", OP_EQUALS, 0, "EQUALS" },
	{ "NOTEQUALS", OP_NOT_EQUALS, 0, "NOT EQUALS" },
	{ "ISTRUE", OP_IS_TRUE, 1, "IS TRUE" },
	{ "ISFALSE", OP_IS_FALSE, 1, "IS FALSE" },
	{ "ISNULL", OP_IS_NULL, 1, "IS NULL" },
	{ "ISNOTNULL", OP_IS_NOT_NULL, 1, "IS NOT NULL" },
	{ "REGEXMATCH", OP_REGEX, 0, "REGEX MATCH" },
	{ "NOTREGEXMATCH", OP_NOT_REGEX, 0, "NOT REGEX MATCH" },
	{ "INCLUDES", OP_INCLUDES, 0, "Includes" },
	{ "ENDSWITH", OP_ENDS_WITH, 0, "ENDS_WITH" },
	{ "&", OP_BIT_AND, 0, "&" },
	{ "!&", OP_NOT_BIT_AND, 0, "!&" },
	{ "GREATERTHAN", OP_GT, 0, "Greater_Than" },
	{ "GREATERTHANOREQUALS", OP_GE, 0, "Greater_Than_OR_EQUALS" },
};

struct clause {
	enum op op;
	char *attr;
	char **vals;
	size_t nvals;
	pcre2_code **re;      /* per value, REGEX ops */
	long long *ivals;     /* per value, GT/GE/&/!& */
	int *ival_ok;
	char *reason;         /* "group 'x': attr OP "v" is false" */
};

struct group {
	char *name;
	struct clause *clauses;
	size_t nclauses;
};

struct gset {
	struct group *groups;
	size_t ngroups;
};

enum { SET_GROUPS, SET_INPUT, SET_CATEGORY, SET_COUNT };
static const char *const set_keys[SET_COUNT] = { "groups", "inputFilterGroups", "categoryFilterGroups" };

struct xts_filter {
	struct gset sets[SET_COUNT];
	pcre2_general_context *gctx; /* routes PCRE2's allocations to xts_malloc */
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
};

static void *
pcre_alloc(size_t n, void *arg)
{
	(void)arg;
	return xts_malloc(n);
}

static void
pcre_dealloc(void *p, void *arg)
{
	(void)arg;
	xts_free(p);
}

/* ---- compile ------------------------------------------------------------- */

static int
op_lookup(const char *name, int *unary, const char **canon)
{
	char norm[64];
	size_t i, n = 0;

	for (i = 0; name[i] != '\0'; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == ' ' || c == '_' || c == '-')
			continue;
		if (n + 1 >= sizeof(norm))
			return -1;
		norm[n++] = (char)toupper(c);
	}
	norm[n] = '\0';
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(norm, ops[i].key) == 0) {
			*unary = ops[i].unary;
			*canon = ops[i].canon;
			return (int)ops[i].op;
		}
	}
	return -1;
}

static const char *
op_canon(enum op op)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].op == op)
			return ops[i].canon;
	return "?";
}

/* Strict decimal integer (optional sign, no spaces, fits in long long). */
static int
parse_int(const char *s, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return 0;
	*out = v;
	return 1;
}

static void
clause_free(struct clause *c)
{
	size_t i;

	for (i = 0; i < c->nvals; i++) {
		xts_free(c->vals[i]);
		if (c->re != NULL)
			pcre2_code_free(c->re[i]);
	}
	xts_free(c->vals);
	xts_free(c->re);
	xts_free(c->ivals);
	xts_free(c->ival_ok);
	xts_free(c->attr);
	xts_free(c->reason);
}

void
xts_filter_free(struct xts_filter *f)
{
	size_t s, g, c;

	if (f == NULL)
		return;
	for (s = 0; s < SET_COUNT; s++) {
		for (g = 0; g < f->sets[s].ngroups; g++) {
			struct group *gr = &f->sets[s].groups[g];
			for (c = 0; c < gr->nclauses; c++)
				clause_free(&gr->clauses[c]);
			xts_free(gr->clauses);
			xts_free(gr->name);
		}
		xts_free(f->sets[s].groups);
	}
	pcre2_match_context_free(f->mctx);
	pcre2_compile_context_free(f->cctx);
	pcre2_general_context_free(f->gctx);
	xts_free(f);
}

static int
make_reason(struct clause *c, const char *setname, const char *group)
{
	struct xts_buf b = XTS_BUF_INIT;
	size_t i;
	int r;

	r = xts_buf_printf(&b, "%s '%s': %s %s", setname, group, c->attr, op_canon(c->op));
	for (i = 0; r == 0 && i < c->nvals; i++)
		r = xts_buf_printf(&b, "%s\"%s\"", i ? ", " : " ", c->vals[i]);
	if (r == 0)
		r = xts_buf_puts(&b, " is false");
	if (r == 0) {
		c->reason = xts_buf_steal(&b);
		if (c->reason == NULL)
			r = XTS_ENOMEM;
	}
	xts_buf_free(&b);
	return r;
}

static int
compile_clause(const struct xts_filter *f, struct clause *c, const json_t *jc, const char *path,
	       const char *setname,
	       const char *gname, struct xts_schema_problems *probs, int *bad)
{
	const json_t *opn, *src, *tgt, *vals, *v;
	const char *canon = NULL;
	char p[XTS_PATH_MAX];
	size_t i;
	int unary = 0, op, r;

	if (!json_is_object(jc)) {
		*bad = 1;
		return xts_schema_problem_add(probs, path, "expected a filter clause object");
	}
	opn = json_object_get(jc, "operatorName");
	src = json_object_get(jc, "sourceOperandName");
	xts_strf(p, sizeof(p), "%s.sourceOperandName", path);
	if (!json_is_string(src) || json_string_length(src) == 0) {
		*bad = 1;
		r = xts_schema_problem_add(probs, p, "missing sourceOperandName (the source attribute to test)");
		if (r < 0)
			return r;
	} else {
		c->attr = xts_strdup(json_string_value(src));
		if (c->attr == NULL)
			return XTS_ENOMEM;
	}
	xts_strf(p, sizeof(p), "%s.operatorName", path);
	if (!json_is_string(opn)) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "missing operatorName");
	}
	op = op_lookup(json_string_value(opn), &unary, &canon);
	if (op < 0) {
		*bad = 1;
		return xts_schema_problem_add(probs, p,
					      "unknown operator \"%s\" (supported: EQUALS, NOT EQUALS, IS TRUE, IS FALSE, IS NULL, IS NOT NULL, REGEX MATCH, NOT REGEX MATCH, Includes, ENDS_WITH, &, !&, Greater_Than, Greater_Than_OR_EQUALS)",
					      json_string_value(opn));
	}
	c->op = (enum op)op;

	tgt = json_object_get(jc, "targetOperand");
	vals = json_is_object(tgt) ? json_object_get(tgt, "values") : NULL;
	xts_strf(p, sizeof(p), "%s.targetOperand.values", path);
	if (tgt != NULL && !json_is_null(tgt) && !json_is_object(tgt)) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "targetOperand must be an object with \"values\"");
	}
	if (vals != NULL && !json_is_null(vals) && !json_is_array(vals)) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "expected an array of strings");
	}
	if (!unary && json_array_size(vals) == 0) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "operator %s needs a value", canon);
	}
	if (unary) /* IS NULL & co ignore any values */
		vals = NULL;
	c->nvals = 0;
	c->vals = xts_calloc(json_array_size(vals) + 1, sizeof(*c->vals));
	c->re = xts_calloc(json_array_size(vals) + 1, sizeof(*c->re));
	c->ivals = xts_calloc(json_array_size(vals) + 1, sizeof(*c->ivals));
	c->ival_ok = xts_calloc(json_array_size(vals) + 1, sizeof(*c->ival_ok));
	if (c->vals == NULL || c->re == NULL || c->ivals == NULL || c->ival_ok == NULL)
		return XTS_ENOMEM;
	json_array_foreach(vals, i, v) {
		xts_strf(p, sizeof(p), "%s.targetOperand.values[%zu]", path, i);
		if (!json_is_string(v)) {
			*bad = 1;
			r = xts_schema_problem_add(probs, p, "expected a string");
			if (r < 0)
				return r;
			continue;
		}
		c->vals[c->nvals] = xts_strndup(json_string_value(v), json_string_length(v));
		if (c->vals[c->nvals] == NULL)
			return XTS_ENOMEM;
		c->nvals++;
		if (c->op == OP_REGEX || c->op == OP_NOT_REGEX) {
			int ec = 0;
			PCRE2_SIZE eo = 0;
			c->re[c->nvals - 1] = pcre2_compile((PCRE2_SPTR)json_string_value(v),
							    json_string_length(v), PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
							    &ec, &eo, f->cctx);
			if (c->re[c->nvals - 1] == NULL && ec == PCRE2_ERROR_HEAP_FAILED)
				return XTS_ENOMEM;
			if (c->re[c->nvals - 1] == NULL) {
				PCRE2_UCHAR msg[200];
				if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
					snprintf((char *)msg, sizeof(msg), "error %d", ec);
				*bad = 1;
				r = xts_schema_problem_add(probs, p, "bad regular expression at offset %zu: %s",
							   (size_t)eo, (const char *)msg);
				if (r < 0)
					return r;
			}
		}
		if (c->op == OP_GT || c->op == OP_GE) {
			c->ival_ok[c->nvals - 1] = parse_int(json_string_value(v), &c->ivals[c->nvals - 1]);
			if (!c->ival_ok[c->nvals - 1]) {
				*bad = 1;
				r = xts_schema_problem_add(probs, p, "operator %s needs an integer value, not \"%s\"",
							   canon, json_string_value(v));
				if (r < 0)
					return r;
			}
		}
		if (c->op == OP_BIT_AND || c->op == OP_NOT_BIT_AND)
			c->ival_ok[c->nvals - 1] = parse_int(json_string_value(v), &c->ivals[c->nvals - 1]);
	}
	if (c->attr == NULL)
		return 0;
	return make_reason(c, setname, gname);
}

static int
compile_group(const struct xts_filter *f, struct group *g, const json_t *jg, const char *path,
	      const char *setname, size_t idx,
	      struct xts_schema_problems *probs, int *bad)
{
	const json_t *name, *clauses, *jc;
	char p[XTS_PATH_MAX];
	size_t i;
	int r;

	if (!json_is_object(jg)) {
		*bad = 1;
		return xts_schema_problem_add(probs, path, "expected a filter group object");
	}
	name = json_object_get(jg, "name");
	if (json_is_string(name) && json_string_length(name) > 0)
		g->name = xts_strdup(json_string_value(name));
	else {
		char tmp[32];
		snprintf(tmp, sizeof(tmp), "#%zu", idx + 1);
		g->name = xts_strdup(tmp);
	}
	if (g->name == NULL)
		return XTS_ENOMEM;
	clauses = json_object_get(jg, "clauses");
	xts_strf(p, sizeof(p), "%s.clauses", path);
	if (!json_is_array(clauses) || json_array_size(clauses) == 0) {
		/* An empty group would be "true" and put everyone in scope: refuse. */
		*bad = 1;
		return xts_schema_problem_add(probs, p, "a filter group needs at least one clause");
	}
	g->clauses = xts_calloc(json_array_size(clauses), sizeof(*g->clauses));
	if (g->clauses == NULL)
		return XTS_ENOMEM;
	json_array_foreach(clauses, i, jc) {
		xts_strf(p, sizeof(p), "%s.clauses[%zu]", path, i);
		g->nclauses++;
		r = compile_clause(f, &g->clauses[i], jc, p, setname, g->name, probs, bad);
		if (r < 0)
			return r;
	}
	return 0;
}

int
xts_filter_compile(const json_t *scope, const char *path, struct xts_filter **out,
		   struct xts_schema_problems *probs)
{
	static const char *const set_names[SET_COUNT] = { "scoping filter", "input filter",
							  "category filter" };
	struct xts_schema_problems local = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_filter *f = NULL;
	const json_t *arr, *jg;
	size_t s, i, before;
	char p[XTS_PATH_MAX];
	int ret = 0, bad = 0;

	if (out == NULL)
		return XTS_EINVAL;
	*out = NULL;
	if (path == NULL)
		path = "$";
	if (probs == NULL)
		probs = &local;
	before = probs->count;
	f = xts_calloc(1, sizeof(*f));
	if (f == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	f->gctx = pcre2_general_context_create(pcre_alloc, pcre_dealloc, NULL);
	f->cctx = f->gctx != NULL ? pcre2_compile_context_create(f->gctx) : NULL;
	f->mctx = f->gctx != NULL ? pcre2_match_context_create(f->gctx) : NULL;
	if (f->mctx == NULL || f->cctx == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	pcre2_set_match_limit(f->mctx, XTS_FILTER_MATCH_LIMIT);
	pcre2_set_depth_limit(f->mctx, XTS_FILTER_DEPTH_LIMIT);
	if (scope == NULL || json_is_null(scope))
		goto done;
	if (!json_is_object(scope)) {
		ret = xts_schema_problem_add(probs, path, "expected a filter object");
		goto done;
	}
	for (s = 0; s < SET_COUNT; s++) {
		arr = json_object_get(scope, set_keys[s]);
		xts_strf(p, sizeof(p), "%s.%s", path, set_keys[s]);
		if (arr == NULL || json_is_null(arr))
			continue;
		if (!json_is_array(arr)) {
			ret = xts_schema_problem_add(probs, p, "expected an array of filter groups");
			if (ret < 0)
				goto done;
			continue;
		}
		f->sets[s].groups = xts_calloc(json_array_size(arr) + 1, sizeof(struct group));
		if (f->sets[s].groups == NULL) {
			ret = XTS_ENOMEM;
			goto done;
		}
		json_array_foreach(arr, i, jg) {
			xts_strf(p, sizeof(p), "%s.%s[%zu]", path, set_keys[s], i);
			f->sets[s].ngroups++;
			ret = compile_group(f, &f->sets[s].groups[i], jg, p, set_names[s], i, probs, &bad);
			if (ret < 0)
				goto done;
		}
	}
done:
	if (ret == 0 && probs->count > before)
		ret = XTS_ESCHEMA;
	if (ret == 0) {
		*out = f;
		f = NULL;
	}
	xts_filter_free(f);
	xts_schema_problems_free(&local);
	return ret;
}

/* ---- evaluate ------------------------------------------------------------ */

/* Attribute lookup: exact name first, then case-insensitive (Entra attribute
 * names are case-insensitive; Graph returns camelCase). Borrowed, or NULL. */
static const json_t *
lookup(const json_t *user, const char *name)
{
	const json_t *v = json_object_get(user, name);
	const char *k;
	json_t *vv;

	if (v != NULL || !json_is_object(user))
		return v;
	json_object_foreach((json_t *)user, k, vv)
		if (strcasecmp(k, name) == 0)
			return vv;
	return NULL;
}

static int
is_empty(const json_t *v)
{
	return v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0);
}

/* Text form of a scalar: strings as-is, booleans "True"/"False" (.NET's
 * Boolean.ToString, what Entra compares against), integers in decimal.
 * Returns 0 if v has no text form (object, array). */
static int
scalar_text(const json_t *v, char *tmp, size_t tmplen, const char **out, size_t *len)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		*out = json_string_value(v);
		*len = json_string_length(v);
		return 1;
	case JSON_TRUE:
		*out = "True";
		*len = 4;
		return 1;
	case JSON_FALSE:
		*out = "False";
		*len = 5;
		return 1;
	case JSON_INTEGER:
		snprintf(tmp, tmplen, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = tmp;
		*len = strlen(tmp);
		return 1;
	case JSON_REAL:
		snprintf(tmp, tmplen, "%.17g", json_real_value(v));
		*out = tmp;
		*len = strlen(tmp);
		return 1;
	default:
		return 0;
	}
}

static int
scalar_int(const json_t *v, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 1;
	}
	if (json_is_string(v))
		return parse_int(json_string_value(v), out);
	return 0;
}

static int
regex_match(const struct xts_filter *f, const pcre2_code *re, const char *s, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, f->gctx);
	int rc;

	if (md == NULL)
		return 0; /* out of memory: not a match (the clause is false, safe side) */
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, f->mctx);
	pcre2_match_data_free(md);
	return rc >= 0;
}

/* The positive form of a binary operator on one non-empty scalar value. */
static int
positive_match(const struct xts_filter *f, const struct clause *c, const json_t *v)
{
	char tmp[64];
	const char *s;
	size_t len, i, vl;
	long long iv;

	for (i = 0; i < c->nvals; i++) {
		const char *want = c->vals[i];
		switch (c->op) {
		case OP_EQUALS:
		case OP_NOT_EQUALS:
			/* Booleans compare case-insensitively ("true" == True);
			 * strings exactly (the doc: "exactly (case sensitive)"). */
			if (json_is_boolean(v)) {
				if (strcasecmp(want, json_is_true(v) ? "true" : "false") == 0)
					return 1;
				break;
			}
			if (scalar_text(v, tmp, sizeof(tmp), &s, &len) && len == strlen(want) &&
			    memcmp(s, want, len) == 0)
				return 1;
			break;
		case OP_REGEX:
		case OP_NOT_REGEX:
			if (c->re[i] != NULL && scalar_text(v, tmp, sizeof(tmp), &s, &len) &&
			    regex_match(f, c->re[i], s, len))
				return 1;
			break;
		case OP_INCLUDES:
			if (scalar_text(v, tmp, sizeof(tmp), &s, &len) && memmem(s, len, want, strlen(want)) != NULL)
				return 1;
			break;
		case OP_ENDS_WITH:
			vl = strlen(want);
			if (scalar_text(v, tmp, sizeof(tmp), &s, &len) && len >= vl &&
			    memcmp(s + len - vl, want, vl) == 0)
				return 1;
			break;
		case OP_BIT_AND:
		case OP_NOT_BIT_AND:
			/* Integers: every bit of the mask is set (LDAP bitwise-AND
			 * matching, e.g. userAccountControl & 2). Otherwise the doc's
			 * wording: the attribute's value occurs in the given string. */
			if (c->ival_ok[i] && scalar_int(v, &iv)) {
				if ((iv & c->ivals[i]) == c->ivals[i])
					return 1;
			} else if (scalar_text(v, tmp, sizeof(tmp), &s, &len) && len > 0 &&
				   memmem(want, strlen(want), s, len) != NULL) {
				return 1;
			}
			break;
		case OP_GT:
			if (c->ival_ok[i] && scalar_int(v, &iv) && iv > c->ivals[i])
				return 1;
			break;
		case OP_GE:
			if (c->ival_ok[i] && scalar_int(v, &iv) && iv >= c->ivals[i])
				return 1;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* One clause on one non-empty scalar. */
static int
clause_scalar(const struct xts_filter *f, const struct clause *c, const json_t *v)
{
	switch (c->op) {
	case OP_IS_TRUE:
		return json_is_true(v) || (json_is_string(v) && strcasecmp(json_string_value(v), "true") == 0);
	case OP_IS_FALSE:
		return json_is_false(v) || (json_is_string(v) && strcasecmp(json_string_value(v), "false") == 0);
	case OP_IS_NULL:
		return 0;
	case OP_IS_NOT_NULL:
		return 1;
	case OP_NOT_EQUALS:
	case OP_NOT_REGEX:
	case OP_NOT_BIT_AND:
		return !positive_match(f, c, v);
	default:
		return positive_match(f, c, v);
	}
}

static int
clause_eval(const struct xts_filter *f, const struct clause *c, const json_t *user)
{
	const json_t *v = lookup(user, c->attr);
	const json_t *e;
	size_t i;

	/* "Scoping filters will return false if the value is null / empty",
	 * except IS NULL, which exists to test exactly that. */
	if (is_empty(v))
		return c->op == OP_IS_NULL;
	if (json_is_object(v))
		return c->op == OP_IS_NOT_NULL;
	if (json_is_array(v)) {
		/* Multi-valued: Microsoft does not support filtering on them; we
		 * use filterOperatorSchema's default comparison, "All". */
		if (c->op == OP_IS_NOT_NULL)
			return 1;
		if (c->op == OP_IS_NULL)
			return 0;
		json_array_foreach(v, i, e)
			if (is_empty(e) || json_is_object(e) || json_is_array(e) || !clause_scalar(f, c, e))
				return 0;
		return 1;
	}
	return clause_scalar(f, c, v);
}

/* A set is satisfied if it is empty or any group has all clauses true. */
static int
set_eval(const struct xts_filter *f, const struct gset *set, const json_t *user, const char **reason)
{
	const char *first_fail = NULL;
	size_t g, c;

	if (set->ngroups == 0)
		return 1;
	for (g = 0; g < set->ngroups; g++) {
		const struct group *gr = &set->groups[g];
		int ok = 1;
		for (c = 0; c < gr->nclauses && ok; c++) {
			if (!clause_eval(f, &gr->clauses[c], user)) {
				ok = 0;
				if (first_fail == NULL)
					first_fail = gr->clauses[c].reason;
			}
		}
		if (ok)
			return 1;
	}
	if (reason != NULL)
		*reason = first_fail != NULL ? first_fail : "no scoping filter group matched";
	return 0;
}

int
xts_filter_eval(const struct xts_filter *f, const json_t *source_user, int *in_scope,
		const char **reason)
{
	size_t s;

	if (f == NULL || source_user == NULL || in_scope == NULL)
		return XTS_EINVAL;
	if (reason != NULL)
		*reason = NULL;
	*in_scope = 1;
	for (s = 0; s < SET_COUNT; s++) {
		if (!set_eval(f, &f->sets[s], source_user, reason)) {
			*in_scope = 0;
			break;
		}
	}
	return 0;
}

int
xts_filter_eval_input(const struct xts_filter *f, const json_t *source_user, int *in_scope,
		      const char **reason)
{
	if (f == NULL || source_user == NULL || in_scope == NULL)
		return XTS_EINVAL;
	if (reason != NULL)
		*reason = NULL;
	*in_scope = set_eval(f, &f->sets[SET_INPUT], source_user, reason);
	return 0;
}

void
xts_filter_foreach_attr(const struct xts_filter *f, void (*cb)(const char *name, void *arg), void *arg)
{
	size_t s, g, c;

	if (f == NULL || cb == NULL)
		return;
	for (s = 0; s < SET_COUNT; s++)
		for (g = 0; g < f->sets[s].ngroups; g++)
			for (c = 0; c < f->sets[s].groups[g].nclauses; c++)
				if (f->sets[s].groups[g].clauses[c].attr != NULL)
					cb(f->sets[s].groups[g].clauses[c].attr, arg);
}

size_t
xts_filter_group_count(const struct xts_filter *f)
{
	size_t s, n = 0;

	if (f == NULL)
		return 0;
	for (s = 0; s < SET_COUNT; s++)
		n += f->sets[s].ngroups;
	return n;
}

int
xts_filter_canonical(const struct xts_filter *f, json_t *arr)
{
	size_t s, g, c, v;

	if (f == NULL || arr == NULL)
		return XTS_EINVAL;
	for (s = 0; s < SET_COUNT; s++) {
		for (g = 0; g < f->sets[s].ngroups; g++) {
			const struct group *gr = &f->sets[s].groups[g];
			json_t *jg = json_pack("{s:s, s:s?, s:[]}", "set", set_keys[s], "name", gr->name,
					       "clauses");
			json_t *cl = jg != NULL ? json_object_get(jg, "clauses") : NULL;
			if (cl == NULL) {
				json_decref(jg);
				return XTS_ENOMEM;
			}
			for (c = 0; c < gr->nclauses; c++) {
				const struct clause *cc = &gr->clauses[c];
				json_t *vals = json_array();
				json_t *jc;
				for (v = 0; vals != NULL && v < cc->nvals; v++)
					if (json_array_append_new(vals, json_string(cc->vals[v])) < 0) {
						json_decref(vals);
						vals = NULL;
					}
				jc = vals == NULL ? NULL :
				     json_pack("{s:s?, s:s, s:o}", "attr", cc->attr, "op", op_canon(cc->op),
					       "values", vals);
				if (jc == NULL || json_array_append_new(cl, jc) < 0) {
					json_decref(jg);
					return XTS_ENOMEM;
				}
			}
			if (json_array_append_new(arr, jg) < 0)
				return XTS_ENOMEM;
		}
	}
	return 0;
}

int
xts_scope_filter_eval(const struct xts_schema *s, const json_t *source_user, int *in_scope,
		      const char **reason)
{
	return xts_filter_eval(xts_schema_filter(s), source_user, in_scope, reason);
}

int
xts_scope_filter_eval_input(const struct xts_schema *s, const json_t *source_user, int *in_scope,
			    const char **reason)
{
	return xts_filter_eval_input(xts_schema_filter(s), source_user, in_scope, reason);
}
