/* SPDX-License-Identifier: MIT */
/* Evaluates a compiled expression against one object's attributes: node
 * dispatch, comparisons, value coercions (VB-like text/number/boolean rules),
 * the bounded PCRE2 helpers and xts_value_to_text. The functions themselves
 * live in expr_func_*.c; nothing here parses text or touches the network. */
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <math.h>

#include <unistr.h>

#include "err.h"
#include "expr_internal.h"
#include "mem.h"

/* A hostile pattern (catastrophic backtracking) stops here instead of hanging. */
#define XTS_RE_MATCH_LIMIT 1000000
#define XTS_RE_DEPTH_LIMIT 10000

int
xts_ev_fail(struct xts_ev *ev, const struct xts_node *n, const char *fmt, ...)
{
	va_list ap;

	if (ev->err) {
		ev->err->column = n ? n->col : 0;
		va_start(ap, fmt);
		vsnprintf(ev->err->message, sizeof(ev->err->message), fmt, ap);
		va_end(ap);
	}
	return XTS_EEXPR;
}

size_t
xts_u8_count(const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

size_t
xts_u8_offset(const char *s, size_t len, size_t ci)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == ci)
				return i;
			n++;
		}
	}
	return len;
}

int
xts_val_text(const json_t *v, struct xts_buf *b)
{
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return xts_buf_append(b, json_string_value(v), json_string_length(v));
	if (json_is_true(v))
		return xts_buf_puts(b, "True");
	if (json_is_false(v))
		return xts_buf_puts(b, "False");
	if (json_is_integer(v))
		return xts_buf_printf(b, "%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return xts_buf_printf(b, "%.15g", json_real_value(v));
	return XTS_EINVAL; /* arrays and objects have no single text form */
}

/* Whether s is entirely a decimal number ([+-]digits[.digits][e[+-]digits]);
 * if so *d gets its value. Stricter than strtod on purpose: "NaN", "Inf",
 * hexadecimal and surrounding blanks are text, so a surname "Nan" neither
 * equals "NAN" nor every number (NaN compares as neither < nor >). */
static int
decimal_value(const char *s, double *d)
{
	const char *p = s;
	size_t nd = 0;

	if (*p == '+' || *p == '-')
		p++;
	for (; *p >= '0' && *p <= '9'; p++)
		nd++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			nd++;
	if (nd == 0)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p != '\0')
		return 0;
	errno = 0;
	*d = strtod(s, NULL);
	return errno == 0 && isfinite(*d);
}

int
xts_val_truth(const json_t *v)
{
	const char *s;
	double d;

	if (!v || json_is_null(v))
		return 0;
	if (json_is_boolean(v))
		return json_is_true(v);
	if (json_is_integer(v))
		return json_integer_value(v) != 0;
	if (json_is_real(v))
		return json_real_value(v) != 0.0;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	if (strcasecmp(s, "true") == 0)
		return 1;
	if (strcasecmp(s, "false") == 0 || s[0] == '\0')
		return 0;
	if (decimal_value(s, &d))
		return d != 0.0;
	return -1;
}

int
xts_arg_given(const struct xts_node *call, int i)
{
	return i < call->nargs && call->args[i]->kind != XN_EMPTY;
}

int
xts_ev_arg(struct xts_ev *ev, const struct xts_node *call, int i, json_t **out)
{
	if (i >= call->nargs) {
		*out = json_null();
		return 0;
	}
	return xts_ev_node(ev, call->args[i], out);
}

int
xts_ev_str(struct xts_ev *ev, const struct xts_node *call, int i, char **s, size_t *len)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_t *v = NULL;
	int ret;

	*s = NULL;
	if (len)
		*len = 0;
	ret = xts_ev_arg(ev, call, i, &v);
	if (ret < 0)
		goto done;
	if (json_is_null(v))
		goto done;
	if (json_is_array(v) || json_is_object(v)) {
		ret = xts_ev_fail(ev, call->args[i], "'%s' expects a single value in argument %d, "
				  "not a multi-valued attribute", call->fn->name, i + 1);
		goto done;
	}
	ret = xts_val_text(v, &b);
	if (ret < 0)
		goto done;
	if (len)
		*len = b.len;
	*s = xts_buf_steal(&b);
	if (!*s)
		ret = XTS_ENOMEM;
done:
	json_decref(v);
	xts_buf_free(&b);
	return ret;
}

static int
parse_ll(const char *s, long long *v)
{
	char *end;
	double d;

	while (*s == ' ')
		s++;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (end != s && *end == '\0' && errno == 0)
		return 0;
	if ((s[0] == '&') && (s[1] == 'H' || s[1] == 'h') && s[2]) {
		errno = 0;
		*v = (long long)strtoull(s + 2, &end, 16);
		if (*end == '\0' && errno == 0)
			return 0;
	}
	errno = 0;
	d = strtod(s, &end);
	if (end != s && *end == '\0' && errno == 0 && isfinite(d) && d > -9.2e18 && d < 9.2e18) {
		*v = (long long)d;
		return 0;
	}
	return -1;
}

int
xts_ev_int(struct xts_ev *ev, const struct xts_node *call, int i, long long *v, int *isnull)
{
	json_t *j = NULL;
	int ret;

	*v = 0;
	*isnull = 0;
	ret = xts_ev_arg(ev, call, i, &j);
	if (ret < 0)
		return ret;
	if (json_is_null(j)) {
		*isnull = 1;
	} else if (json_is_integer(j)) {
		*v = json_integer_value(j);
	} else if (json_is_real(j) && isfinite(json_real_value(j)) &&
		   fabs(json_real_value(j)) < 9.2e18) {
		*v = (long long)json_real_value(j);
	} else if (json_is_boolean(j)) {
		*v = json_is_true(j) ? -1 : 0; /* VB: True is -1 */
	} else if (!json_is_string(j) || parse_ll(json_string_value(j), v) < 0) {
		ret = xts_ev_fail(ev, call->args[i], "'%s' expects a number in argument %d",
				  call->fn->name, i + 1);
	}
	json_decref(j);
	return ret;
}

int
xts_ev_ret_buf(struct xts_ev *ev, const struct xts_node *n, struct xts_buf *b, json_t **out)
{
	json_t *v = json_stringn(b->p ? b->p : "", b->len);
	int ret = 0;

	if (!v && b->p && u8_check((const uint8_t *)b->p, b->len) != NULL)
		ret = xts_ev_fail(ev, n, "result is not valid text");
	else if (!v)
		ret = XTS_ENOMEM;
	xts_buf_free(b);
	*out = v;
	return ret;
}

/* Numeric view of a scalar for comparisons: 1 when v is a number or a string
 * that is entirely a number. */
static int
as_number(const json_t *v, double *d)
{
	if (json_is_number(v)) {
		*d = json_number_value(v);
		return 1;
	}
	return json_is_string(v) && decimal_value(json_string_value(v), d);
}

static int
eval_cmp(struct xts_ev *ev, const struct xts_node *n, json_t **out)
{
	json_t *a = NULL, *b = NULL;
	struct xts_buf ta = XTS_BUF_INIT, tb = XTS_BUF_INIT;
	double da, db;
	int c = 0, res, ret;

	ret = xts_ev_node(ev, n->args[0], &a);
	if (ret < 0)
		goto done;
	ret = xts_ev_node(ev, n->args[1], &b);
	if (ret < 0)
		goto done;
	/* Microsoft: "If the source attribute used within the IIF function is
	 * empty or null, the condition check fails" (functions-for-customizing-
	 * application-data.md, IIF known limitations): any comparison with a
	 * null side is False. */
	if (json_is_null(a) || json_is_null(b)) {
		*out = json_false();
		goto done;
	}
	if (json_is_array(a) || json_is_array(b) || json_is_object(a) || json_is_object(b)) {
		ret = xts_ev_fail(ev, n, "cannot compare a multi-valued attribute");
		goto done;
	}
	if (as_number(a, &da) && as_number(b, &db)) {
		c = da < db ? -1 : da > db ? 1 : 0;
	} else {
		size_t m;
		ret = xts_val_text(a, &ta);
		if (ret == 0)
			ret = xts_val_text(b, &tb);
		if (ret < 0)
			goto done;
		m = ta.len < tb.len ? ta.len : tb.len;
		c = m ? memcmp(ta.p, tb.p, m) : 0; /* binary, case-sensitive like VB */
		if (c == 0)
			c = ta.len < tb.len ? -1 : ta.len > tb.len ? 1 : 0;
	}
	switch (n->op) {
	case XC_EQ: res = c == 0; break;
	case XC_NE: res = c != 0; break;
	case XC_LT: res = c < 0; break;
	case XC_LE: res = c <= 0; break;
	case XC_GT: res = c > 0; break;
	default: res = c >= 0; break;
	}
	*out = json_boolean(res);
done:
	json_decref(a);
	json_decref(b);
	xts_buf_free(&ta);
	xts_buf_free(&tb);
	return ret;
}

static json_t *
lookup_attr(const json_t *attrs, const char *name)
{
	const char *key;
	json_t *v;

	if (!attrs || !json_is_object(attrs))
		return NULL;
	v = json_object_get(attrs, name);
	if (v)
		return v;
	/* Graph attribute names are case-insensitive. */
	json_object_foreach((json_t *)attrs, key, v)
		if (strcasecmp(key, name) == 0)
			return v;
	return NULL;
}

int
xts_ev_node(struct xts_ev *ev, const struct xts_node *n, json_t **out)
{
	json_t *v;
	int ret;

	*out = NULL;
	switch (n->kind) {
	case XN_EMPTY:
		*out = json_null();
		return 0;
	case XN_CONST:
		*out = json_incref(n->val);
		return 0;
	case XN_IDENT:
		*out = json_string(n->name);
		return *out ? 0 : XTS_ENOMEM;
	case XN_ATTR:
		v = lookup_attr(ev->ctx->attrs, n->name);
		*out = v ? json_incref(v) : json_null();
		return 0;
	case XN_CMP:
		return eval_cmp(ev, n, out);
	case XN_CALL:
		if (++ev->depth > XTS_EXPR_MAX_DEPTH + 2)
			return xts_ev_fail(ev, n, "expression nested too deeply");
		ret = n->fn->impl(ev, n, out);
		ev->depth--;
		if (ret == 0 && !*out)
			ret = XTS_ENOMEM;
		return ret;
	}
	return XTS_EINTERNAL;
}

int
xts_expr_eval(const xts_expr *e, const struct xts_expr_ctx *ctx, json_t **result,
	      unsigned *flags, struct xts_expr_error *err)
{
	struct xts_ev ev;
	json_t *v = NULL;
	int ret;

	*result = NULL;
	if (flags)
		*flags = 0;
	if (err) {
		err->column = 0;
		err->message[0] = '\0';
	}
	if (!e || !ctx)
		return XTS_EINVAL;
	memset(&ev, 0, sizeof(ev));
	ev.ctx = ctx;
	ev.err = err;
	ev.now = ctx->now ? ctx->now : time(NULL);
	ret = xts_ev_node(&ev, e->root, &v);
	if (ret < 0) {
		json_decref(v);
		if (ret != XTS_EEXPR) {
			if (err) {
				err->column = 0;
				snprintf(err->message, sizeof(err->message), "%s", xts_strerror(ret));
			}
		}
		return ret;
	}
	*result = v;
	if (flags)
		*flags = ev.flags;
	return 0;
}

char *
xts_value_to_text(const json_t *v)
{
	struct xts_buf b = XTS_BUF_INIT;
	json_malloc_t ma;
	json_free_t fr;
	char *s;
	int ret;

	if (v && json_is_string(v))
		return xts_strndup(json_string_value(v), json_string_length(v));
	s = json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
	if (!s)
		return NULL;
	/* json_dumps allocates with jansson's allocator: copy into ours. */
	json_get_alloc_funcs(&ma, &fr);
	ret = xts_buf_puts(&b, s);
	fr(s);
	if (ret < 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

pcre2_code *
xts_re_compile(const char *pat, size_t len, char *msg, size_t msgsz)
{
	pcre2_code *re;
	int ec = 0;
	PCRE2_SIZE eo = 0;

	re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_DUPNAMES, &ec, &eo, NULL);
	if (!re && msg && msgsz) {
		PCRE2_UCHAR buf[160];
		if (pcre2_get_error_message(ec, buf, sizeof(buf)) < 0)
			snprintf((char *)buf, sizeof(buf), "error %d", ec);
		snprintf(msg, msgsz, "invalid regular expression at offset %zu: %s", (size_t)eo,
			 (char *)buf);
	}
	return re;
}

int
xts_re_match(const pcre2_code *re, const char *s, size_t len, size_t start, pcre2_match_data *md)
{
	pcre2_match_context *mc = pcre2_match_context_create(NULL);
	int rc;

	if (!mc)
		return PCRE2_ERROR_NOMEMORY;
	pcre2_set_match_limit(mc, XTS_RE_MATCH_LIMIT);
	pcre2_set_depth_limit(mc, XTS_RE_DEPTH_LIMIT);
	rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, 0, md, mc);
	pcre2_match_context_free(mc);
	return rc;
}
