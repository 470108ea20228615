/* SPDX-License-Identifier: MIT */
/* Apply a schema's attribute mappings to one source user (the target's
 * desired attributes) and diff them against what was last exported (what to
 * PATCH). Flow rules: MicrosoftDocs/entra-docs docs/identity/app-provisioning/
 * customize-application-attributes.md and Graph's attributeMapping resource.
 * No I/O: the engine decides what to do with the result. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "expr.h"
#include "mapping.h"
#include "mem.h"
#include "schema.h"
#include "text.h"

/* Graph user properties that are not strings; a Constant or an expression
 * yields text, so "true" must become a boolean and a lone phone number an
 * array before Graph accepts the PATCH (Entra does this from the target
 * directory's attributeDefinition types). */
static const char *const bool_attrs[] = { "accountEnabled", "showInAddressList" };
static const char *const multi_attrs[] = { "businessPhones", "otherMails", "proxyAddresses",
					   "imAddresses", "alternativeSecurityIds" };

/* strcasecmp(a, b) == 0, with the first bytes compared inline first: most
 * names differ there, and this runs for every mapping of every user.
 * (c | 0x20) folds ASCII case; bytes equal under strcasecmp stay equal. */
static int
same_ci(const char *a, const char *b)
{
	return ((unsigned char)a[0] | 0x20) == ((unsigned char)b[0] | 0x20) && strcasecmp(a, b) == 0;
}

static int
in_list(const char *name, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (same_ci(name, list[i]))
			return 1;
	return 0;
}

/* Takes ownership of v; returns the coerced value (new ref) or NULL on ENOMEM. */
static json_t *
coerce(const char *target, json_t *v)
{
	json_t *r;

	if (v == NULL)
		return NULL;
	if (in_list(target, bool_attrs, 2) && json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0) {
			r = json_boolean(strcasecmp(s, "true") == 0);
			json_decref(v);
			return r;
		}
	}
	if (in_list(target, multi_attrs, 5) && !json_is_array(v) && !json_is_null(v)) {
		r = json_array();
		if (r == NULL || json_array_append_new(r, v) < 0) {
			json_decref(r);
			return NULL;
		}
		return r;
	}
	return v;
}

static int
is_empty(const json_t *v)
{
	return v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0);
}

static const json_t *
lookup(const json_t *user, const char *name)
{
	const json_t *v = json_object_get(user, name);
	const char *k;
	json_t *vv;

	if (v != NULL)
		return v;
	json_object_foreach((json_t *)user, k, vv)
		if (same_ci(k, name))
			return vv;
	return NULL;
}

/* "target: msg" into err (msg must not be err->message). Truncates. */
static void
set_err(struct xts_expr_error *err, int column, const char *target, const char *msg)
{
	if (err == NULL)
		return;
	err->column = column;
	xts_strf(err->message, sizeof(err->message), "%s: %s", target, msg);
}

/* Evaluate one mapping: *value new ref (json null for null), *flags. */
static int
eval_one(const struct xts_schema_mapping *m, const struct xts_expr_ctx *ctx, json_t **value,
	 unsigned *flags, struct xts_expr_error *err)
{
	const json_t *v;
	int r;

	*value = NULL;
	*flags = 0;
	switch (m->source_type) {
	case XTS_SOURCE_ATTRIBUTE:
		v = lookup(ctx->attrs, m->source_attr);
		/* Scalars are shared (nothing here changes a json value in place);
		 * arrays and objects are copied, since results are edited. */
		if (v == NULL)
			*value = json_null();
		else if (json_is_object(v) || json_is_array(v))
			*value = json_deep_copy(v);
		else
			*value = json_incref((json_t *)v);
		break;
	case XTS_SOURCE_CONSTANT:
		*value = json_string(m->constant != NULL ? m->constant : "");
		break;
	case XTS_SOURCE_FUNCTION:
		if (m->expr == NULL) {
			set_err(err, 0, m->target, "expression was not compiled");
			return XTS_EINTERNAL;
		}
		{
			struct xts_expr_error e;
			memset(&e, 0, sizeof(e));
			r = xts_expr_eval(m->expr, ctx, value, flags, &e);
			if (r < 0) {
				e.message[sizeof(e.message) - 1] = '\0';
				set_err(err, e.column, m->target, e.message);
				*value = NULL;
				return r == XTS_ENOMEM ? r : XTS_EEXPR;
			}
		}
		break;
	}
	return *value != NULL ? 0 : XTS_ENOMEM;
}

int
xts_mapping_apply_ctx(const struct xts_schema *s, const json_t *source_user, int is_create,
		      const struct xts_expr_ctx *ctx_tmpl, json_t **target_attrs, json_t **redacted,
		      struct xts_expr_error *err)
{
	struct xts_expr_ctx ctx;
	json_t *out = NULL, *red = NULL, *val = NULL;
	size_t i, n;
	int ret = 0;

	if (target_attrs != NULL)
		*target_attrs = NULL;
	if (redacted != NULL)
		*redacted = NULL;
	if (s == NULL || !json_is_object(source_user) || target_attrs == NULL)
		return XTS_EINVAL;
	memset(&ctx, 0, sizeof(ctx));
	if (ctx_tmpl != NULL)
		ctx = *ctx_tmpl;
	ctx.attrs = source_user;
	out = json_object();
	red = json_array();
	if (out == NULL || red == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	n = xts_schema_mapping_count(s);
	for (i = 0; i < n; i++) {
		const struct xts_schema_mapping *m = xts_schema_mapping_at(s, i);
		unsigned flags = 0;

		if (m == NULL || m->target == NULL || m->is_link || m->is_soft_delete)
			continue;
		/* "Apply this mapping: only during object creation". */
		if (m->flow_type == XTS_FLOWTYPE_OBJECT_ADD_ONLY && !is_create)
			continue;
		ret = eval_one(m, &ctx, &val, &flags, err);
		if (ret < 0)
			goto done;
		if (flags & XTS_EXPR_IGNORE_FLOW) {
			/* IgnoreFlowIfNullOrEmpty: the attribute is not sent at all. */
			json_decref(val);
			val = NULL;
			continue;
		}
		if (is_create && m->default_value != NULL && is_empty(val)) {
			/* defaultValue: "used in case the source property was
			 * evaluated to null"; only when the object is created. */
			json_decref(val);
			val = json_string(m->default_value);
			if (val == NULL) {
				ret = XTS_ENOMEM;
				goto done;
			}
		}
		val = coerce(m->target, val);
		/* targets come from the schema's JSON text or the built-in
		 * schema: valid UTF-8, so jansson need not check each key again */
		if (val == NULL || json_object_set_new_nocheck(out, m->target, val) < 0) {
			val = NULL;
			ret = XTS_ENOMEM;
			goto done;
		}
		val = NULL;
		if ((flags & XTS_EXPR_REDACT) && json_array_append_new(red, json_string(m->target)) < 0) {
			ret = XTS_ENOMEM;
			goto done;
		}
	}
	*target_attrs = out;
	out = NULL;
	if (redacted != NULL) {
		*redacted = red;
		red = NULL;
	}
done:
	json_decref(val);
	json_decref(out);
	json_decref(red);
	return ret;
}

int
xts_mapping_apply(const struct xts_schema *s, const json_t *source_user, int is_create,
		  json_t **target_attrs, json_t **redacted, struct xts_expr_error *err)
{
	return xts_mapping_apply_ctx(s, source_user, is_create, NULL, target_attrs, redacted, err);
}

/* ---- diff ---------------------------------------------------------------- */

static const json_t *
get_or_null(const json_t *obj, const char *key)
{
	const json_t *v = obj != NULL ? lookup(obj, key) : NULL;

	return v != NULL ? v : json_null();
}

static int
values_equal(const json_t *a, const json_t *b)
{
	/* Absent, null, "" and [] are all "no value" to the target directory. */
	if (is_empty(a) && is_empty(b))
		return 1;
	return json_equal((json_t *)a, (json_t *)b);
}

/* last ∪ desired (order of last, then new values of desired). New ref or NULL. */
static json_t *
add_only_union(const json_t *last, const json_t *desired)
{
	json_t *r = json_is_array(last) ? json_deep_copy(last) : json_array();
	const json_t *d;
	size_t i, j;

	if (r == NULL)
		return NULL;
	if (!json_is_array(last) && !is_empty(last) && json_array_append_new(r, json_deep_copy(last)) < 0)
		goto fail;
	if (json_is_array(desired)) {
		json_array_foreach(desired, i, d) {
			int found = 0;
			for (j = 0; j < json_array_size(r) && !found; j++)
				found = json_equal(json_array_get(r, j), (json_t *)d);
			if (!found && json_array_append_new(r, json_deep_copy(d)) < 0)
				goto fail;
		}
	}
	return r;
fail:
	json_decref(r);
	return NULL;
}

int
xts_mapping_diff(const struct xts_schema *s, const json_t *desired, const json_t *last_exported,
		 json_t **changes)
{
	return xts_mapping_diff_ex(s, desired, last_exported, 0, changes);
}

int
xts_mapping_diff_ex(const struct xts_schema *s, const json_t *desired, const json_t *last_exported,
		    int reassert, json_t **changes)
{
	json_t *out = NULL, *always = NULL, *nv = NULL;
	const char *key;
	json_t *dv;
	int ret = 0;

	if (changes != NULL)
		*changes = NULL;
	if (s == NULL || !json_is_object(desired) || changes == NULL ||
	    (last_exported != NULL && !json_is_object(last_exported)))
		return XTS_EINVAL;
	out = json_object();
	always = json_object();
	if (out == NULL || always == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	json_object_foreach((json_t *)desired, key, dv) {
		const struct xts_schema_mapping *m = xts_schema_mapping_find(s, key);
		const json_t *lv = get_or_null(last_exported, key);
		enum xts_flow_type ft = m != NULL ? m->flow_type : XTS_FLOWTYPE_ALWAYS;

		if (m != NULL && (m->is_link || m->is_soft_delete))
			continue;
		nv = NULL;
		switch (ft) {
		case XTS_FLOWTYPE_OBJECT_ADD_ONLY:
			continue; /* never on update */
		case XTS_FLOWTYPE_ATTRIBUTE_ADD_ONLY:
			/* "Only propagates changes if no current value exists at all". */
			if (!is_empty(lv) || is_empty(dv))
				continue;
			nv = json_deep_copy(dv);
			break;
		case XTS_FLOWTYPE_VALUE_ADD_ONLY:
		case XTS_FLOWTYPE_MULTI_VALUE_ADD_ONLY:
			/* Add operations only: never remove a value. */
			if (json_is_array(dv) || json_is_array(lv)) {
				nv = add_only_union(lv, dv);
				if (nv == NULL) {
					ret = XTS_ENOMEM;
					goto done;
				}
				if (values_equal(nv, lv)) {
					json_decref(nv);
					continue;
				}
				break;
			}
			if (ft == XTS_FLOWTYPE_VALUE_ADD_ONLY && is_empty(dv))
				continue; /* would be a removal */
			/* single-valued MultiValueAddOnly flows as Always */
			__attribute__((fallthrough));
		case XTS_FLOWTYPE_ALWAYS:
			/* "The Microsoft Entra provisioning service doesn't
			 * support provisioning null values" (entra-docs app-
			 * provisioning/customize-application-attributes.md):
			 * clearing a target value is an opt-in preview of
			 * inbound HR and API provisioning only (clear-attribute-
			 * values.md). A value removed in the source is not
			 * written; the target keeps what it has. */
			if (is_empty(dv))
				continue;
			if (values_equal(dv, lv) &&
			    ((m != NULL && m->flow_behavior == XTS_FLOW_ALWAYS) || (reassert && !is_empty(dv)))) {
				/* Unchanged FlowAlways values ride along with any
				 * update; with reassert, every unchanged value the
				 * source has (the target may have been edited). */
				if (json_object_set(always, key, dv) < 0) {
					ret = XTS_ENOMEM;
					goto done;
				}
				continue;
			}
			if (values_equal(dv, lv))
				continue;
			nv = json_deep_copy(dv);
			break;
		}
		if (nv == NULL || json_object_set_new(out, key, nv) < 0) {
			ret = XTS_ENOMEM;
			goto done;
		}
	}
	if ((json_object_size(out) > 0 || reassert) && json_object_update(out, always) < 0) {
		ret = XTS_ENOMEM;
		goto done;
	}
	*changes = out;
	out = NULL;
done:
	json_decref(out);
	json_decref(always);
	return ret;
}
