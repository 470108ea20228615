/* SPDX-License-Identifier: MIT */
/* Loader and validator for Graph synchronizationSchema documents: picks the
 * enabled User->User objectMapping, reads its attributeMappings (compiling
 * Function expressions once) and hands its "scope" to scope_filter.c. Every
 * problem is reported with its JSON path. Does not evaluate anything
 * (mapping.c, scope_filter.c) and ignores fields it does not know. */
#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "expr.h"
#include "json_load.h"
#include "mem.h"
#include "schema.h"
#include "scope_filter.h"
#include "text.h"

/* The mapping plus the strings it owns (pub's pointers point into these). */
struct map_priv {
	struct xts_schema_mapping pub;
	char *target;
	char *source_text;
	char *source_attr;
	char *constant;
	char *default_value;
	xts_expr *expr;
};

struct xts_schema {
	struct map_priv *maps;
	size_t nmaps;
	const struct xts_schema_mapping *link;
	char *link_attr;
	struct xts_filter *filter;
	char **attrs; /* distinct source attributes (case-insensitive) */
	size_t nattrs;
	size_t capattrs;
};

/* Generated at build time from schema/cross-tenant-schema.json. */
extern const char xts_schema_builtin_json[];

/* ---- problems ------------------------------------------------------------ */

int
xts_schema_problem_add(struct xts_schema_problems *probs, const char *path, const char *fmt, ...)
{
	struct xts_buf msg = XTS_BUF_INIT;
	struct xts_schema_problem *p;
	char *path_copy = NULL;
	va_list ap;
	int ret = 0;

	if (probs == NULL)
		return 0;
	va_start(ap, fmt);
	{
		char tmp[1024];
		int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
		if (n < 0)
			tmp[0] = '\0';
		ret = xts_buf_puts(&msg, tmp);
	}
	va_end(ap);
	if (ret < 0)
		goto done;
	path_copy = xts_strdup(path != NULL ? path : "$");
	if (path_copy == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	if (probs->count == probs->cap) {
		size_t ncap = probs->cap ? probs->cap * 2 : 8;
		p = xts_realloc(probs->items, ncap * sizeof(*p));
		if (p == NULL) {
			ret = XTS_ENOMEM;
			goto done;
		}
		probs->items = p;
		probs->cap = ncap;
	}
	p = &probs->items[probs->count];
	p->message = xts_buf_steal(&msg);
	if (p->message == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	p->path = path_copy;
	path_copy = NULL;
	probs->count++;
done:
	xts_free(path_copy);
	xts_buf_free(&msg);
	return ret;
}

void
xts_schema_problems_free(struct xts_schema_problems *probs)
{
	size_t i;

	if (probs == NULL)
		return;
	for (i = 0; i < probs->count; i++) {
		xts_free(probs->items[i].path);
		xts_free(probs->items[i].message);
	}
	xts_free(probs->items);
	probs->items = NULL;
	probs->count = probs->cap = 0;
}

/* ---- enums --------------------------------------------------------------- */

static const char *const flow_behavior_names[] = { "FlowWhenChanged", "FlowAlways" };
static const char *const flow_type_names[] = { "Always", "ObjectAddOnly", "MultiValueAddOnly",
					       "ValueAddOnly", "AttributeAddOnly" };

int
xts_flow_behavior_parse(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(flow_behavior_names) / sizeof(flow_behavior_names[0]); i++)
		if (strcasecmp(s, flow_behavior_names[i]) == 0)
			return (int)i;
	return -1;
}

int
xts_flow_type_parse(const char *s)
{
	size_t i;

	for (i = 0; s != NULL && i < sizeof(flow_type_names) / sizeof(flow_type_names[0]); i++)
		if (strcasecmp(s, flow_type_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
xts_flow_behavior_name(enum xts_flow_behavior b)
{
	return (unsigned)b < 2 ? flow_behavior_names[b] : "?";
}

const char *
xts_flow_type_name(enum xts_flow_type t)
{
	return (unsigned)t < 5 ? flow_type_names[t] : "?";
}

/* ---- small helpers ------------------------------------------------------- */

static const char *
type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "?";
}

/* Optional string member: 0 and *out (borrowed, NULL if absent/null), or a
 * problem is recorded and 1 returned. <0 on ENOMEM. */
static int
get_opt_string(const json_t *obj, const char *key, const char *path, const char **out,
	       struct xts_schema_problems *probs)
{
	const json_t *v = json_object_get(obj, key);
	char p[XTS_PATH_MAX];
	int ret;

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return 0;
	}
	xts_strf(p, sizeof(p), "%s.%s", path, key);
	ret = xts_schema_problem_add(probs, p, "expected a string, found %s", type_name(v));
	return ret < 0 ? ret : 1;
}

static int
add_attr(struct xts_schema *s, const char *name)
{
	size_t i;
	char **a;

	if (name == NULL || name[0] == '\0')
		return 0;
	for (i = 0; i < s->nattrs; i++)
		if (strcasecmp(s->attrs[i], name) == 0)
			return 0;
	if (s->nattrs == s->capattrs) {
		size_t ncap = s->capattrs ? s->capattrs * 2 : 32;
		a = xts_realloc(s->attrs, ncap * sizeof(*a));
		if (a == NULL)
			return XTS_ENOMEM;
		s->attrs = a;
		s->capattrs = ncap;
	}
	s->attrs[s->nattrs] = xts_strdup(name);
	if (s->attrs[s->nattrs] == NULL)
		return XTS_ENOMEM;
	s->nattrs++;
	return 0;
}

struct attr_collect {
	struct xts_schema *s;
	int err;
};

static void
collect_attr_cb(const char *name, void *arg)
{
	struct attr_collect *c = arg;
	int r = add_attr(c->s, name);

	if (r < 0)
		c->err = r;
}

/* Recognise AltSecIdFromNetId([attr]) by hand, so the link is found even if
 * the expression compiler were not to know the function. Returns a new copy
 * of attr, or NULL (not a link expression or ENOMEM, *nomem says which). */
static char *
parse_link_expr(const char *e, int *nomem)
{
	static const char fn[] = "AltSecIdFromNetId";
	const char *start, *end;

	*nomem = 0;
	while (*e == ' ' || *e == '\t')
		e++;
	if (strncasecmp(e, fn, sizeof(fn) - 1) != 0)
		return NULL;
	e += sizeof(fn) - 1;
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e++ != '(')
		return NULL;
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e++ != '[')
		return NULL;
	start = e;
	while (*e != '\0' && *e != ']')
		e++;
	if (*e != ']' || e == start)
		return NULL;
	end = e++;
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e++ != ')')
		return NULL;
	while (*e == ' ' || *e == '\t')
		e++;
	if (*e != '\0')
		return NULL;
	{
		char *r = xts_strndup(start, (size_t)(end - start));
		if (r == NULL)
			*nomem = 1;
		return r;
	}
}

/* "[name]" -> "name" (new string); anything else copied as is. */
static char *
strip_brackets(const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
		return xts_strndup(s + 1, n - 2);
	return xts_strdup(s);
}

/* "\"text\"" -> "text" (new string); anything else copied. */
static char *
strip_quotes(const char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		return xts_strndup(s + 1, n - 2);
	return xts_strdup(s);
}

/* ---- one attributeMapping ------------------------------------------------ */

/* Whether expr is a SelectUniqueValue call (it cannot be nested, so only
 * the whole expression can be one). */
static bool
is_select_unique(const char *expr)
{
	static const char fn[] = "SelectUniqueValue";

	expr += strspn(expr, " \t\r\n");
	if (strncasecmp(expr, fn, sizeof(fn) - 1) != 0)
		return false;
	expr += sizeof(fn) - 1;
	expr += strspn(expr, " \t\r\n");
	return *expr == '(';
}

static int
load_source(struct map_priv *m, const json_t *src, const char *path,
	    struct xts_schema_problems *probs, int *bad)
{
	const char *type = NULL, *expr = NULL, *name = NULL;
	char p[XTS_PATH_MAX];
	int r, ret = 0;

	if (src == NULL || json_is_null(src)) {
		/* The portal's mapping type "None": "the target attribute is
		 * left unmodified. However, if the target attribute is ever
		 * empty, it populates with the default value that you specify"
		 * (customize-application-attributes.md; objectMapping's
		 * example exports it as "source": null with a defaultValue):
		 * the default as a constant that flows only into an empty
		 * attribute. Without a default it would do nothing at all. */
		if (m->default_value != NULL) {
			m->pub.source_type = XTS_SOURCE_CONSTANT;
			m->pub.flow_type = XTS_FLOWTYPE_ATTRIBUTE_ADD_ONLY;
			m->constant = xts_strdup(m->default_value);
			m->source_text = xts_strdup("");
			return m->constant == NULL || m->source_text == NULL ? XTS_ENOMEM : 0;
		}
		*bad = 1;
		return xts_schema_problem_add(probs, path, "missing \"source\" (a mapping of type None needs a "
					      "defaultValue)");
	}
	if (!json_is_object(src)) {
		*bad = 1;
		return xts_schema_problem_add(probs, path, "expected an object, found %s",
					      type_name(src));
	}
	r = get_opt_string(src, "type", path, &type, probs);
	if (r < 0)
		return r;
	*bad |= r;
	r = get_opt_string(src, "expression", path, &expr, probs);
	if (r < 0)
		return r;
	*bad |= r;
	r = get_opt_string(src, "name", path, &name, probs);
	if (r < 0)
		return r;
	*bad |= r;
	if (*bad)
		return 0;
	xts_strf(p, sizeof(p), "%s.type", path);
	/* attributeMappingSource.type: "Default is Attribute." */
	if (type == NULL || strcasecmp(type, "Attribute") == 0) {
		const char *n = (name != NULL && name[0] != '\0') ? name : expr;
		m->pub.source_type = XTS_SOURCE_ATTRIBUTE;
		if (n == NULL || n[0] == '\0') {
			*bad = 1;
			xts_strf(p, sizeof(p), "%s.name", path);
			return xts_schema_problem_add(probs, p, "an Attribute source needs a name");
		}
		m->source_attr = strip_brackets(n);
		m->source_text = xts_strdup(expr != NULL ? expr : n);
		if (m->source_attr == NULL || m->source_text == NULL)
			return XTS_ENOMEM;
	} else if (strcasecmp(type, "Constant") == 0) {
		m->pub.source_type = XTS_SOURCE_CONSTANT;
		/* Entra exports {"expression":"\"Member\"","name":"Member"}. */
		if (name != NULL)
			m->constant = xts_strdup(name);
		else if (expr != NULL)
			m->constant = strip_quotes(expr);
		else
			m->constant = xts_strdup("");
		m->source_text = xts_strdup(expr != NULL ? expr : (name != NULL ? name : ""));
		if (m->constant == NULL || m->source_text == NULL)
			return XTS_ENOMEM;
	} else if (strcasecmp(type, "Function") == 0) {
		struct xts_expr_error err;
		int nomem;

		m->pub.source_type = XTS_SOURCE_FUNCTION;
		xts_strf(p, sizeof(p), "%s.expression", path);
		if (expr == NULL || expr[0] == '\0') {
			*bad = 1;
			return xts_schema_problem_add(probs, p, "a Function source needs an expression");
		}
		m->source_text = xts_strdup(expr);
		if (m->source_text == NULL)
			return XTS_ENOMEM;
		m->source_attr = parse_link_expr(expr, &nomem);
		if (nomem)
			return XTS_ENOMEM;
		if (m->source_attr != NULL) {
			/* The engine's own link: never compiled or evaluated. */
			m->pub.is_link = 1;
			return 0;
		}
		if (strlen(expr) > XTS_EXPR_MAX_LEN) {
			*bad = 1;
			return xts_schema_problem_add(probs, p, "expression longer than %d characters",
						      XTS_EXPR_MAX_LEN);
		}
		if (is_select_unique(expr)) {
			/* The engine never asks the target whether a candidate
			 * is taken: better refused than a duplicate value. */
			*bad = 1;
			return xts_schema_problem_add(probs, p, "SelectUniqueValue \"is currently only supported for "
				"Workday to Active Directory User Provisioning and SuccessFactors to Active Directory "
				"User Provisioning. It cannot be used with other provisioning applications\" "
				"(functions-for-customizing-application-data.md)");
		}
		memset(&err, 0, sizeof(err));
		r = xts_expr_compile(expr, &m->expr, &err);
		if (r == XTS_ENOMEM)
			return r;
		if (r < 0) {
			*bad = 1;
			m->expr = NULL;
			err.message[sizeof(err.message) - 1] = '\0';
			if (err.column > 0)
				ret = xts_schema_problem_add(probs, p, "column %d: %s", err.column,
							     err.message[0] ? err.message : "invalid expression");
			else
				ret = xts_schema_problem_add(probs, p, "%s",
							     err.message[0] ? err.message : "invalid expression");
			return ret;
		}
	} else {
		*bad = 1;
		return xts_schema_problem_add(probs, p,
					      "unknown source type \"%s\" (expected Attribute, Constant or Function)",
					      type);
	}
	return 0;
}

static int
load_mapping(struct map_priv *m, const json_t *am, const char *path,
	     struct xts_schema_problems *probs, int *bad)
{
	const char *target = NULL, *defval = NULL, *fb = NULL, *ft = NULL;
	const json_t *v;
	char p[XTS_PATH_MAX];
	int r;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(am)) {
		*bad = 1;
		return xts_schema_problem_add(probs, path, "expected an object, found %s",
					      type_name(am));
	}
	r = get_opt_string(am, "targetAttributeName", path, &target, probs);
	if (r < 0)
		return r;
	*bad |= r;
	if (r == 0 && (target == NULL || target[0] == '\0')) {
		*bad = 1;
		xts_strf(p, sizeof(p), "%s.targetAttributeName", path);
		r = xts_schema_problem_add(probs, p, "missing targetAttributeName");
		if (r < 0)
			return r;
	}
	r = get_opt_string(am, "defaultValue", path, &defval, probs);
	if (r < 0)
		return r;
	*bad |= r;
	r = get_opt_string(am, "flowBehavior", path, &fb, probs);
	if (r < 0)
		return r;
	*bad |= r;
	r = get_opt_string(am, "flowType", path, &ft, probs);
	if (r < 0)
		return r;
	*bad |= r;

	m->pub.flow_behavior = XTS_FLOW_WHEN_CHANGED;
	if (fb != NULL) {
		int b = xts_flow_behavior_parse(fb);
		if (b < 0) {
			*bad = 1;
			xts_strf(p, sizeof(p), "%s.flowBehavior", path);
			r = xts_schema_problem_add(probs, p,
						   "unknown flowBehavior \"%s\" (expected FlowWhenChanged or FlowAlways)", fb);
			if (r < 0)
				return r;
		} else {
			m->pub.flow_behavior = (enum xts_flow_behavior)b;
		}
	}
	m->pub.flow_type = XTS_FLOWTYPE_ALWAYS;
	if (ft != NULL) {
		int t = xts_flow_type_parse(ft);
		if (t < 0) {
			*bad = 1;
			xts_strf(p, sizeof(p), "%s.flowType", path);
			r = xts_schema_problem_add(probs, p,
						   "unknown flowType \"%s\" (expected Always, ObjectAddOnly, MultiValueAddOnly, ValueAddOnly or AttributeAddOnly)", ft);
			if (r < 0)
				return r;
		} else {
			m->pub.flow_type = (enum xts_flow_type)t;
		}
	}
	v = json_object_get(am, "matchingPriority");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
			*bad = 1;
			xts_strf(p, sizeof(p), "%s.matchingPriority", path);
			r = xts_schema_problem_add(probs, p, "expected an integer >= 0, found %s",
						   json_is_integer(v) ? "a negative or huge integer" : type_name(v));
			if (r < 0)
				return r;
		} else {
			m->pub.matching_priority = (int)json_integer_value(v);
		}
	}
	v = json_object_get(am, "exportMissingReferences");
	if (v != NULL && !json_is_null(v)) {
		if (!json_is_boolean(v)) {
			*bad = 1;
			xts_strf(p, sizeof(p), "%s.exportMissingReferences", path);
			r = xts_schema_problem_add(probs, p, "expected a boolean, found %s", type_name(v));
			if (r < 0)
				return r;
		} else {
			m->pub.export_missing_references = json_is_true(v);
		}
	}
	if (target != NULL) {
		m->target = xts_strdup(target);
		if (m->target == NULL)
			return XTS_ENOMEM;
	}
	if (defval != NULL && defval[0] != '\0') {
		m->default_value = xts_strdup(defval);
		if (m->default_value == NULL)
			return XTS_ENOMEM;
	}
	xts_strf(p, sizeof(p), "%s.source", path);
	r = load_source(m, json_object_get(am, "source"), p, probs, bad);
	if (r < 0)
		return r;
	if (m->target != NULL) {
		if (strcasecmp(m->target, "alternativeSecurityIds") == 0 &&
		    m->pub.source_type != XTS_SOURCE_CONSTANT)
			m->pub.is_link = 1; /* the matching attribute is the engine's link */
		if (strcasecmp(m->target, "IsSoftDeleted") == 0)
			m->pub.is_soft_delete = 1;
		if (strcasecmp(m->target, "manager") == 0)
			m->pub.is_reference = 1;
	}
	m->pub.target = m->target;
	m->pub.source_text = m->source_text;
	m->pub.source_attr = m->source_attr;
	m->pub.constant = m->constant;
	m->pub.expr = m->expr;
	m->pub.default_value = m->default_value;
	return 0;
}

/* ---- the document -------------------------------------------------------- */

static int
str_member_is(const json_t *obj, const char *key, const char *want)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) && strcasecmp(json_string_value(v), want) == 0;
}

/* Find the enabled User->User objectMapping. Returns 0 with *om (borrowed) and
 * its path, or records a problem. */
static int
find_user_mapping(const json_t *doc, const json_t **om, char *om_path, size_t om_path_len,
		  struct xts_schema_problems *probs)
{
	const json_t *rules = json_object_get(doc, "synchronizationRules");
	const json_t *rule, *maps, *m, *en;
	size_t i, j;
	char p[XTS_PATH_MAX];
	int r, found = 0;

	*om = NULL;
	if (rules == NULL)
		return xts_schema_problem_add(probs, "$", "missing \"synchronizationRules\"");
	if (!json_is_array(rules))
		return xts_schema_problem_add(probs, "$.synchronizationRules",
					      "expected an array, found %s", type_name(rules));
	json_array_foreach(rules, i, rule) {
		xts_strf(p, sizeof(p), "$.synchronizationRules[%zu]", i);
		if (!json_is_object(rule)) {
			r = xts_schema_problem_add(probs, p, "expected an object, found %s", type_name(rule));
			if (r < 0)
				return r;
			continue;
		}
		maps = json_object_get(rule, "objectMappings");
		if (maps == NULL || json_is_null(maps))
			continue;
		if (!json_is_array(maps)) {
			xts_strf(p, sizeof(p), "$.synchronizationRules[%zu].objectMappings", i);
			r = xts_schema_problem_add(probs, p, "expected an array, found %s", type_name(maps));
			if (r < 0)
				return r;
			continue;
		}
		json_array_foreach(maps, j, m) {
			xts_strf(p, sizeof(p), "$.synchronizationRules[%zu].objectMappings[%zu]", i, j);
			if (!json_is_object(m)) {
				r = xts_schema_problem_add(probs, p, "expected an object, found %s",
							   type_name(m));
				if (r < 0)
					return r;
				continue;
			}
			en = json_object_get(m, "enabled");
			if (en != NULL && !json_is_null(en) && !json_is_boolean(en)) {
				char pe[XTS_PATH_MAX];
				xts_strf(pe, sizeof(pe), "%s.enabled", p);
				r = xts_schema_problem_add(probs, pe, "expected a boolean, found %s",
							   type_name(en));
				if (r < 0)
					return r;
				continue;
			}
			if (json_is_false(en))
				continue;
			if (!str_member_is(m, "sourceObjectName", "User") ||
			    !str_member_is(m, "targetObjectName", "User"))
				continue;
			if (found) {
				r = xts_schema_problem_add(probs, p,
							   "a second enabled User to User object mapping (only one is allowed; the first is at %s)",
							   om_path);
				if (r < 0)
					return r;
				continue;
			}
			found = 1;
			*om = m;
			xts_strf(om_path, om_path_len, "%s", p);
		}
	}
	if (!found)
		return xts_schema_problem_add(probs, "$.synchronizationRules",
					      "no enabled objectMapping with sourceObjectName \"User\" and targetObjectName \"User\"");
	return 0;
}

static int
load_mappings(struct xts_schema *s, const json_t *om, const char *om_path,
	      struct xts_schema_problems *probs, int *bad)
{
	const json_t *ams = json_object_get(om, "attributeMappings");
	const json_t *am;
	size_t i, j;
	char p[XTS_PATH_MAX];
	int r, has_match = 0, dup_target, dup_prio;

	xts_strf(p, sizeof(p), "%s.attributeMappings", om_path);
	if (ams == NULL || json_is_null(ams)) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "missing \"attributeMappings\"");
	}
	if (!json_is_array(ams)) {
		*bad = 1;
		return xts_schema_problem_add(probs, p, "expected an array, found %s", type_name(ams));
	}
	s->maps = xts_calloc(json_array_size(ams) + 1, sizeof(*s->maps));
	if (s->maps == NULL)
		return XTS_ENOMEM;
	json_array_foreach(ams, i, am) {
		struct map_priv *m = &s->maps[s->nmaps];
		int mbad = 0;

		xts_strf(p, sizeof(p), "%s.attributeMappings[%zu]", om_path, i);
		r = load_mapping(m, am, p, probs, &mbad);
		s->nmaps++; /* keep it either way, so free releases its strings */
		if (r < 0)
			return r;
		*bad |= mbad;
		if (mbad)
			continue;
		/* Duplicates: the same target twice, the same matching priority twice. */
		/* Name only the first earlier duplicate of each kind. */
		dup_target = dup_prio = 0;
		for (j = 0; j + 1 < s->nmaps; j++) {
			const struct map_priv *o = &s->maps[j];
			if (!dup_target && o->target != NULL && m->target != NULL &&
			    strcasecmp(o->target, m->target) == 0) {
				char pt[XTS_PATH_MAX];
				*bad = 1;
				dup_target = 1;
				xts_strf(pt, sizeof(pt), "%s.targetAttributeName", p);
				r = xts_schema_problem_add(probs, pt,
							   "target attribute \"%s\" is mapped twice (also by attributeMappings[%zu])",
							   m->target, j);
				if (r < 0)
					return r;
			}
			if (!dup_prio && m->pub.matching_priority > 0 &&
			    o->pub.matching_priority == m->pub.matching_priority) {
				char pt[XTS_PATH_MAX];
				*bad = 1;
				dup_prio = 1;
				xts_strf(pt, sizeof(pt), "%s.matchingPriority", p);
				r = xts_schema_problem_add(probs, pt,
							   "matchingPriority %d is also used by attributeMappings[%zu]",
							   m->pub.matching_priority, j);
				if (r < 0)
					return r;
			}
		}
		if (m->pub.is_link && s->link == NULL) {
			s->link = &m->pub;
			if (m->source_attr != NULL) {
				s->link_attr = xts_strdup(m->source_attr);
				if (s->link_attr == NULL)
					return XTS_ENOMEM;
			}
		}
		if (m->pub.matching_priority > 0 || m->pub.is_link)
			has_match = 1;
	}
	if (!has_match && !*bad) {
		*bad = 1;
		xts_strf(p, sizeof(p), "%s.attributeMappings", om_path);
		return xts_schema_problem_add(probs, p,
					      "no matching attribute (matchingPriority > 0) and no AltSecIdFromNetId([netId]) link mapping");
	}
	return 0;
}

static int
collect_attrs(struct xts_schema *s)
{
	struct attr_collect c = { s, 0 };
	size_t i;
	int r;

	for (i = 0; i < s->nmaps; i++) {
		const struct map_priv *m = &s->maps[i];
		if (m->source_attr != NULL) {
			r = add_attr(s, m->source_attr);
			if (r < 0)
				return r;
		}
		if (m->expr != NULL)
			xts_expr_foreach_attr(m->expr, collect_attr_cb, &c);
		if (c.err < 0)
			return c.err;
	}
	if (s->filter != NULL)
		xts_filter_foreach_attr(s->filter, collect_attr_cb, &c);
	return c.err;
}

int
xts_schema_load_json(const json_t *doc, struct xts_schema **out, struct xts_schema_problems *probs)
{
	struct xts_schema_problems local = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	const json_t *om = NULL;
	char om_path[XTS_PATH_MAX] = "$";
	char p[XTS_PATH_MAX];
	size_t before;
	int ret = 0, bad = 0;

	if (out == NULL)
		return XTS_EINVAL;
	*out = NULL;
	if (probs == NULL)
		probs = &local;
	before = probs->count;
	if (doc == NULL || !json_is_object(doc)) {
		ret = xts_schema_problem_add(probs, "$", "expected a synchronizationSchema object, found %s",
					     doc == NULL ? "nothing" : type_name(doc));
		goto done;
	}
	s = xts_calloc(1, sizeof(*s));
	if (s == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	ret = find_user_mapping(doc, &om, om_path, sizeof(om_path), probs);
	if (ret < 0 || om == NULL)
		goto done;
	ret = load_mappings(s, om, om_path, probs, &bad);
	if (ret < 0)
		goto done;
	xts_strf(p, sizeof(p), "%s.scope", om_path);
	ret = xts_filter_compile(json_object_get(om, "scope"), p, &s->filter, probs);
	if (ret == XTS_ENOMEM)
		goto done;
	ret = 0;
	if (probs->count == before) {
		ret = collect_attrs(s);
		if (ret < 0)
			goto done;
		ret = add_attr(s, s->link_attr);
	}
done:
	if (ret == 0 && probs->count > before)
		ret = XTS_ESCHEMA;
	if (ret == 0) {
		*out = s;
		s = NULL;
	}
	xts_schema_free(s);
	xts_schema_problems_free(&local);
	return ret;
}

/* The whole of f (a file, or a pipe: `check-schema <(...)`) into b. */
static int
read_all(FILE *f, struct xts_buf *b)
{
	char chunk[16384];
	size_t n;
	int ret = 0;

	for (;;) {
		n = fread(chunk, 1, sizeof(chunk), f);
		if (n == 0)
			break;
		ret = xts_buf_append(b, chunk, n);
		if (ret != 0)
			break;
	}
	if (ret == 0 && ferror(f))
		ret = XTS_EIO;
	return ret;
}

int
xts_schema_load_file(const char *path, struct xts_schema **out, struct xts_schema_problems *probs)
{
	struct xts_buf b = XTS_BUF_INIT;
	const unsigned char *u;
	json_error_t jerr;
	json_t *doc = NULL;
	FILE *f = NULL;
	size_t bom;
	int ret;

	if (path == NULL || out == NULL)
		return XTS_EINVAL;
	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL) {
		int e = errno;
		ret = xts_schema_problem_add(probs, "$", "cannot open: %s", strerror(e));
		if (ret == 0)
			ret = xts_err_from_errno(e) == XTS_ENOENT ? XTS_ENOENT : XTS_EIO;
		goto done;
	}
	ret = read_all(f, &b);
	if (ret != 0) {
		if (ret != XTS_ENOMEM && xts_schema_problem_add(probs, "$", "cannot read: %s", xts_strerror(ret)) != 0)
			ret = XTS_ENOMEM;
		goto done;
	}
	/* A byte-order mark: a UTF-8 one is skipped (RFC 8259 8.1 lets a
	 * parser ignore it; Windows PowerShell 5.1 writes one when it saves
	 * UTF-8); a UTF-16 one is named (jansson reads UTF-8 only). */
	u = (const unsigned char *)(b.p != NULL ? b.p : "");
	if (b.len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF))) {
		ret = xts_schema_problem_add(probs, "$", "the file is UTF-16; save it as UTF-8");
		if (ret == 0)
			ret = XTS_ESCHEMA;
		goto done;
	}
	bom = b.len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF ? 3 : 0;
	doc = xts_json_loadb((const char *)u + bom, b.len - bom, JSON_REJECT_DUPLICATES, &jerr);
	if (doc == NULL) {
		ret = xts_schema_problem_add(probs, "$", "not valid JSON: line %d column %d: %s",
					     jerr.line, jerr.column, jerr.text);
		if (ret == 0)
			ret = XTS_ESCHEMA;
		goto done;
	}
	ret = xts_schema_load_json(doc, out, probs);
done:
	if (f != NULL)
		fclose(f);
	xts_buf_free(&b);
	json_decref(doc);
	return ret;
}

const char *
xts_schema_builtin_text(void)
{
	return xts_schema_builtin_json;
}

int
xts_schema_builtin(struct xts_schema **out)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	json_error_t jerr;
	json_t *doc;
	int ret;

	if (out == NULL)
		return XTS_EINVAL;
	*out = NULL;
	doc = xts_json_loads(xts_schema_builtin_json, 0, &jerr);
	if (doc == NULL)
		return jerr.position > 0 ? XTS_EINTERNAL : XTS_ENOMEM;
	ret = xts_schema_load_json(doc, out, &probs);
	json_decref(doc);
	xts_schema_problems_free(&probs);
	return ret;
}

void
xts_schema_free(struct xts_schema *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nmaps; i++) {
		struct map_priv *m = &s->maps[i];
		xts_free(m->target);
		xts_free(m->source_text);
		xts_free(m->source_attr);
		xts_free(m->constant);
		xts_free(m->default_value);
		xts_expr_free(m->expr);
	}
	xts_free(s->maps);
	for (i = 0; i < s->nattrs; i++)
		xts_free(s->attrs[i]);
	xts_free(s->attrs);
	xts_free(s->link_attr);
	xts_filter_free(s->filter);
	xts_free(s);
}

/* ---- fingerprint --------------------------------------------------------- */

static int
cmp_maps(const void *a, const void *b)
{
	const struct map_priv *const *x = a, *const *y = b;
	const char *tx = (*x)->target ? (*x)->target : "";
	const char *ty = (*y)->target ? (*y)->target : "";
	int c = strcasecmp(tx, ty);

	return c != 0 ? c : strcmp(tx, ty);
}

static json_t *
mapping_canonical(const struct map_priv *m)
{
	static const char *const types[] = { "Attribute", "Constant", "Function" };
	const char *src = m->pub.source_type == XTS_SOURCE_ATTRIBUTE ? m->source_attr :
			  m->pub.source_type == XTS_SOURCE_CONSTANT ? m->constant : m->source_text;

	return json_pack("{s:s?, s:s, s:s?, s:s?, s:s, s:s, s:i, s:b}",
			 "target", m->target, "type", types[m->pub.source_type], "source", src,
			 "default", m->default_value,
			 "flowBehavior", xts_flow_behavior_name(m->pub.flow_behavior),
			 "flowType", xts_flow_type_name(m->pub.flow_type),
			 "matchingPriority", m->pub.matching_priority, "link", m->pub.is_link);
}

int
xts_schema_fingerprint(const struct xts_schema *s, char out[65])
{
	const struct map_priv **sorted = NULL;
	json_t *root = NULL, *maps = NULL, *filt = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char *text = NULL;
	size_t i, textlen;
	int ret = XTS_ENOMEM;

	out[0] = '\0';
	if (s == NULL)
		return XTS_EINVAL;
	sorted = xts_calloc(s->nmaps + 1, sizeof(*sorted));
	maps = json_array();
	filt = json_array();
	if (sorted == NULL || maps == NULL || filt == NULL)
		goto done;
	for (i = 0; i < s->nmaps; i++)
		sorted[i] = &s->maps[i];
	qsort(sorted, s->nmaps, sizeof(*sorted), cmp_maps);
	for (i = 0; i < s->nmaps; i++)
		if (json_array_append_new(maps, mapping_canonical(sorted[i])) < 0)
			goto done;
	if (s->filter != NULL && xts_filter_canonical(s->filter, filt) < 0)
		goto done;
	root = json_pack("{s:i, s:O, s:O}", "v", 1, "mappings", maps, "filter", filt);
	if (root == NULL)
		goto done;
	/* json_dumpb into our own allocation (json_dumps would use jansson's). */
	textlen = json_dumpb(root, NULL, 0, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII);
	if (textlen == 0)
		goto done;
	text = xts_malloc(textlen);
	if (text == NULL)
		goto done;
	if (json_dumpb(root, text, textlen, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENSURE_ASCII) != textlen)
		goto done; /* key sorting allocates: this is ENOMEM */
	if (EVP_Digest(text, textlen, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		ret = XTS_EINTERNAL;
		goto done;
	}
	for (i = 0; i < 32; i++) {
		static const char hex[] = "0123456789abcdef";
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	ret = 0;
done:
	xts_free(text);
	json_decref(root);
	json_decref(maps);
	json_decref(filt);
	xts_free(sorted);
	return ret;
}

/* ---- accessors ----------------------------------------------------------- */

void
xts_schema_foreach_source_attr(const struct xts_schema *s, void (*cb)(const char *name, void *arg),
			       void *arg)
{
	size_t i;

	if (s == NULL || cb == NULL)
		return;
	for (i = 0; i < s->nattrs; i++)
		cb(s->attrs[i], arg);
}

size_t
xts_schema_mapping_count(const struct xts_schema *s)
{
	return s != NULL ? s->nmaps : 0;
}

const struct xts_schema_mapping *
xts_schema_mapping_at(const struct xts_schema *s, size_t i)
{
	return (s != NULL && i < s->nmaps) ? &s->maps[i].pub : NULL;
}

const struct xts_schema_mapping *
xts_schema_mapping_find(const struct xts_schema *s, const char *target)
{
	size_t i;

	if (s == NULL || target == NULL)
		return NULL;
	for (i = 0; i < s->nmaps; i++)
		if (s->maps[i].target != NULL && strcasecmp(s->maps[i].target, target) == 0)
			return &s->maps[i].pub;
	return NULL;
}

const struct xts_schema_mapping *
xts_schema_link_mapping(const struct xts_schema *s)
{
	return s != NULL ? s->link : NULL;
}

const char *
xts_schema_link_source_attr(const struct xts_schema *s)
{
	return s != NULL ? s->link_attr : NULL;
}

size_t
xts_schema_matching(const struct xts_schema *s, const struct xts_schema_mapping **out, size_t max)
{
	size_t i, n = 0;
	int prio, next, last = 0;

	if (s == NULL)
		return 0;
	/* Selection by ascending priority; schemas have a handful of mappings. */
	for (;;) {
		next = 0;
		for (i = 0; i < s->nmaps; i++) {
			prio = s->maps[i].pub.matching_priority;
			if (s->maps[i].pub.is_link || prio <= last)
				continue;
			if (next == 0 || prio < next)
				next = prio;
		}
		if (next == 0)
			break;
		for (i = 0; i < s->nmaps; i++) {
			if (s->maps[i].pub.is_link || s->maps[i].pub.matching_priority != next)
				continue;
			if (out != NULL && n < max)
				out[n] = &s->maps[i].pub;
			n++;
		}
		last = next;
	}
	return n;
}

size_t
xts_schema_filter_group_count(const struct xts_schema *s)
{
	return (s != NULL && s->filter != NULL) ? xts_filter_group_count(s->filter) : 0;
}

const struct xts_filter *
xts_schema_filter(const struct xts_schema *s)
{
	return s != NULL ? s->filter : NULL;
}
