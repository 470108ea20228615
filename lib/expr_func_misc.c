/* SPDX-License-Identifier: MIT */
/* The function table (names, arity, implementations) and the logical,
 * null-testing, multi-value and flow-control functions: IIF, Switch,
 * Coalesce, IsNull..., Item, Count, Redact, IgnoreFlowIfNullOrEmpty,
 * SelectUniqueValue and the app-provisioning-only stubs. Text and date
 * functions live in expr_func_str.c and expr_func_date.c. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "expr_internal.h"
#include "mem.h"

/* null, or an empty multi-valued attribute (Graph omits both the same way). */
static int
is_nullish(const json_t *v)
{
	return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0);
}

static int
is_null_or_empty(const json_t *v)
{
	return is_nullish(v) || (json_is_string(v) && json_string_length(v) == 0);
}

static int
fn_altsecid(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	/* In an exported cross-tenant schema AltSecIdFromNetId([netId]) names the
	 * engine's own source-target link; it has no value to flow. */
	*out = json_null();
	return 0;
}

static int
fn_app_only(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return xts_ev_fail(ev, call, "'%s' is not supported outside app provisioning",
			   call->fn->name);
}

static int
fn_assertnotnull(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	json_t *v;
	int ret = xts_ev_arg(ev, call, 0, &v);

	if (ret < 0)
		return ret;
	if (is_null_or_empty(v)) {
		json_decref(v);
		return xts_ev_fail(ev, call, "AssertNotNull: the value is null or empty");
	}
	*out = v;
	return 0;
}

static int
fn_bitand(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	long long a, b;
	int na, nb, ret;

	ret = xts_ev_int(ev, call, 0, &a, &na);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &b, &nb);
	if (ret < 0)
		return ret;
	*out = json_integer(a & b);
	return 0;
}

static int
truth_arg(struct xts_ev *ev, const struct xts_node *call, int i, int *t)
{
	json_t *v;
	int ret = xts_ev_arg(ev, call, i, &v);

	if (ret < 0)
		return ret;
	*t = xts_val_truth(v);
	json_decref(v);
	if (*t < 0)
		return xts_ev_fail(ev, call->args[i], "'%s' expects True or False in argument %d",
				   call->fn->name, i + 1);
	return 0;
}

static int
fn_cbool(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	int t, ret = truth_arg(ev, call, 0, &t);

	if (ret == 0)
		*out = json_boolean(t);
	return ret;
}

static int
fn_iif(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	int t, ret = truth_arg(ev, call, 0, &t);

	if (ret < 0)
		return ret;
	return xts_ev_arg(ev, call, t ? 1 : 2, out);
}

static int
fn_coalesce(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	int i, ret;

	for (i = 0; i < call->nargs; i++) {
		json_t *v;
		ret = xts_ev_arg(ev, call, i, &v);
		if (ret < 0)
			return ret;
		if (!is_nullish(v)) {
			*out = v;
			return 0;
		}
		json_decref(v);
	}
	*out = json_null();
	return 0;
}

static int
fn_count(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	json_t *v;
	int ret = xts_ev_arg(ev, call, 0, &v);

	if (ret < 0)
		return ret;
	if (json_is_array(v))
		*out = json_integer((json_int_t)json_array_size(v));
	else
		*out = json_integer(json_is_null(v) ? 0 : 1);
	json_decref(v);
	return 0;
}

static int
fn_ignoreflow(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	json_t *v;
	int ret = xts_ev_arg(ev, call, 0, &v);

	if (ret < 0)
		return ret;
	if (is_null_or_empty(v)) {
		json_decref(v);
		ev->flags |= XTS_EXPR_IGNORE_FLOW;
		*out = json_null();
		return 0;
	}
	*out = v;
	return 0;
}

static int
test_arg(struct xts_ev *ev, const struct xts_node *call, int (*pred)(const json_t *), int negate,
	 json_t **out)
{
	json_t *v;
	int ret = xts_ev_arg(ev, call, 0, &v);

	if (ret < 0)
		return ret;
	*out = json_boolean(negate ? !pred(v) : pred(v));
	json_decref(v);
	return 0;
}

static int
val_is_true(const json_t *v)
{
	return xts_val_truth(v) == 1;
}

/* Microsoft: "If source value is True, returns False. Otherwise, returns
 * True." -- so a value that is not a boolean at all ("abc", a multi-valued
 * attribute) gives True rather than an error, unlike CBool. */
static int
fn_not(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return test_arg(ev, call, val_is_true, 1, out);
}

static int
is_string_value(const json_t *v)
{
	return json_is_string(v);
}

static int
fn_isnull(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return test_arg(ev, call, is_nullish, 0, out);
}

static int
fn_isnullorempty(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return test_arg(ev, call, is_null_or_empty, 0, out);
}

static int
fn_ispresent(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return test_arg(ev, call, is_null_or_empty, 1, out);
}

static int
fn_isstring(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	return test_arg(ev, call, is_string_value, 0, out);
}

static int
fn_item(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	json_t *v = NULL, *it;
	long long idx;
	int isnull, ret;

	ret = xts_ev_arg(ev, call, 0, &v);
	if (ret == 0)
		ret = xts_ev_int(ev, call, 1, &idx, &isnull);
	if (ret < 0)
		goto done;
	/* Item is 1-based ("Index 0 shouldn't be used"): out of range is null. */
	*out = json_null();
	if (isnull || idx < 1)
		goto done;
	if (json_is_array(v)) {
		if ((unsigned long long)idx <= json_array_size(v)) {
			it = json_array_get(v, (size_t)idx - 1);
			json_decref(*out);
			*out = json_incref(it);
		}
	} else if (!json_is_null(v) && idx == 1) {
		json_decref(*out);
		*out = json_incref(v);
	}
done:
	json_decref(v);
	return ret;
}

static int
fn_redact(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	int ret = xts_ev_arg(ev, call, 0, out);

	if (ret == 0)
		ev->flags |= XTS_EXPR_REDACT;
	return ret;
}

static int
fn_removedups(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	json_t *v = NULL, *r = NULL, *it;
	size_t i, j;
	int ret;

	ret = xts_ev_arg(ev, call, 0, &v);
	if (ret < 0)
		return ret;
	if (!json_is_array(v)) {
		*out = v;
		return 0;
	}
	r = json_array();
	if (!r) {
		ret = XTS_ENOMEM;
		goto done;
	}
	json_array_foreach(v, i, it) {
		int dup = 0;
		for (j = 0; j < json_array_size(r); j++)
			if (json_equal(json_array_get(r, j), it))
				dup = 1;
		if (!dup && json_array_append(r, it) < 0) {
			ret = XTS_ENOMEM;
			goto done;
		}
	}
	*out = r;
	r = NULL;
done:
	json_decref(v);
	json_decref(r);
	return ret;
}

static int
fn_selectunique(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	int i, ret;

	for (i = 0; i < call->nargs; i++) {
		json_t *v;
		int u = 1;
		ret = xts_ev_arg(ev, call, i, &v);
		if (ret < 0)
			return ret;
		if (is_null_or_empty(v)) {
			json_decref(v);
			continue;
		}
		if (ev->ctx->is_unique)
			u = ev->ctx->is_unique(ev->ctx->unique_arg, v);
		if (u < 0) {
			json_decref(v);
			return xts_ev_fail(ev, call->args[i],
					   "SelectUniqueValue: the uniqueness check failed");
		}
		if (u) {
			*out = v;
			return 0;
		}
		json_decref(v);
	}
	return xts_ev_fail(ev, call, "SelectUniqueValue: none of the %d candidates is unique",
			   call->nargs);
}

static int
text_of(const json_t *v, struct xts_buf *b)
{
	if (json_is_array(v) || json_is_object(v))
		return XTS_EINVAL;
	return xts_val_text(v, b);
}

static int
fn_switch(struct xts_ev *ev, const struct xts_node *call, json_t **out)
{
	struct xts_buf src = XTS_BUF_INIT, key = XTS_BUF_INIT;
	json_t *v = NULL;
	int i, ret;

	ret = xts_ev_arg(ev, call, 0, &v);
	if (ret < 0)
		goto done;
	/* A null source compares as "" (Microsoft recommends a "" key to catch
	 * empty or null values; hr-user-creation-issues.md). */
	ret = text_of(v, &src);
	if (ret == XTS_EINVAL)
		ret = xts_ev_fail(ev, call->args[0], "'Switch' expects a single value as source");
	if (ret < 0)
		goto done;
	for (i = 2; i + 1 < call->nargs; i += 2) {
		json_decref(v);
		v = NULL;
		xts_buf_reset(&key);
		ret = xts_ev_arg(ev, call, i, &v);
		if (ret < 0)
			goto done;
		ret = text_of(v, &key);
		if (ret == XTS_EINVAL)
			ret = xts_ev_fail(ev, call->args[i], "a 'Switch' key must be a single value");
		if (ret < 0)
			goto done;
		/* case-sensitive, as documented */
		if (key.len == src.len && (key.len == 0 || memcmp(key.p, src.p, key.len) == 0)) {
			ret = xts_ev_arg(ev, call, i + 1, out);
			goto done;
		}
	}
	ret = xts_ev_arg(ev, call, 1, out);
done:
	json_decref(v);
	xts_buf_free(&src);
	xts_buf_free(&key);
	return ret;
}

static int
switch_check(struct xts_node *call, struct xts_expr_error *err)
{
	if (call->nargs % 2 == 0)
		return 0;
	if (err) {
		err->column = call->col;
		snprintf(err->message, sizeof(err->message),
			 "'Switch' takes source, defaultValue and key/value pairs (an even number "
			 "of arguments), got %d", call->nargs);
	}
	return XTS_EPARSE;
}

static const struct xts_func funcs[] = {
	{ "AltSecIdFromNetId", 1, 1, fn_altsecid, NULL },
	{ "Append", 2, 2, xts_fn_append, NULL },
	{ "AppRoleAssignmentsComplex", 1, 1, fn_app_only, NULL },
	{ "AssertNotNull", 1, 1, fn_assertnotnull, NULL },
	{ "BitAnd", 2, 2, fn_bitand, NULL },
	{ "CBool", 1, 1, fn_cbool, NULL },
	{ "CDate", 1, 1, xts_fn_cdate, NULL },
	{ "Coalesce", 1, -1, fn_coalesce, NULL },
	{ "ConvertToBase64", 1, 1, xts_fn_base64, NULL },
	{ "ConvertToUTF8Hex", 1, 1, xts_fn_utf8hex, NULL },
	{ "Count", 1, 1, fn_count, NULL },
	{ "CStr", 1, 1, xts_fn_cstr, NULL },
	{ "DateAdd", 3, 3, xts_fn_dateadd, NULL },
	{ "DateDiff", 3, 3, xts_fn_datediff, NULL },
	{ "DateFromNum", 1, 1, xts_fn_datefromnum, NULL },
	{ "FormatDateTime", 3, 4, xts_fn_formatdatetime, NULL },
	{ "Guid", 0, 0, xts_fn_guid, NULL },
	{ "IgnoreFlowIfNullOrEmpty", 1, 1, fn_ignoreflow, NULL },
	{ "IIF", 3, 3, fn_iif, NULL },
	{ "InStr", 2, 4, xts_fn_instr, NULL },
	{ "IsNull", 1, 1, fn_isnull, NULL },
	{ "IsNullOrEmpty", 1, 1, fn_isnullorempty, NULL },
	{ "IsPresent", 1, 1, fn_ispresent, NULL },
	{ "IsString", 1, 1, fn_isstring, NULL },
	{ "Item", 2, 2, fn_item, NULL },
	{ "Join", 2, -1, xts_fn_join, NULL },
	{ "Left", 2, 2, xts_fn_left, NULL },
	{ "Mid", 3, 3, xts_fn_mid, NULL },
	{ "NormalizeDiacritics", 1, 1, xts_fn_normdiac, NULL },
	{ "Not", 1, 1, fn_not, NULL },
	{ "Now", 0, 0, xts_fn_now, NULL },
	{ "NumFromDate", 1, 1, xts_fn_numfromdate, NULL },
	{ "PCase", 1, 2, xts_fn_pcase, NULL },
	{ "RandomString", 5, 6, xts_fn_randomstring, NULL },
	{ "Redact", 1, 1, fn_redact, NULL },
	{ "RemoveDuplicates", 1, 1, fn_removedups, NULL },
	{ "Replace", 7, 7, xts_fn_replace, xts_fn_replace_check },
	{ "SelectUniqueValue", 2, -1, fn_selectunique, NULL },
	{ "SingleAppRoleAssignment", 1, 1, fn_app_only, NULL },
	{ "Split", 2, 2, xts_fn_split, NULL },
	{ "StripSpaces", 1, 1, xts_fn_stripspaces, NULL },
	{ "Switch", 4, -1, fn_switch, switch_check },
	{ "ToLower", 1, 2, xts_fn_tolower, NULL },
	{ "ToUpper", 1, 2, xts_fn_toupper, NULL },
	{ "Word", 3, 3, xts_fn_word, NULL },
};

const struct xts_func *
xts_expr_func_find(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
		if (strlen(funcs[i].name) == len && strncasecmp(funcs[i].name, name, len) == 0)
			return &funcs[i];
	return NULL;
}
