/* SPDX-License-Identifier: MIT */
/* Compiles an attribute-mapping expression into an immutable tree: lexing,
 * recursive-descent parsing, function-name and arity validation, regex
 * precompilation (via the function's check hook) and the attribute list.
 * Does not evaluate anything (expr_eval.c) or know function semantics. */
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>

#include <unistr.h>

#include "err.h"
#include "expr_internal.h"
#include "mem.h"

struct parser {
	const char *src;
	size_t len;
	size_t pos;
	int depth;
	struct xts_expr *e;
	struct xts_expr_error *err;
};

static int
column_of(const char *src, size_t off)
{
	int col = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (((unsigned char)src[i] & 0xC0) != 0x80)
			col++;
	return col;
}

static int __attribute__((format(printf, 3, 4)))
perr(struct parser *p, size_t off, const char *fmt, ...)
{
	va_list ap;

	if (p->err) {
		p->err->column = column_of(p->src, off);
		va_start(ap, fmt);
		vsnprintf(p->err->message, sizeof(p->err->message), fmt, ap);
		va_end(ap);
	}
	return XTS_EPARSE;
}

static void
node_free(struct xts_node *n)
{
	int i;

	if (!n)
		return;
	for (i = 0; i < n->nargs; i++)
		node_free(n->args[i]);
	xts_free(n->args);
	json_decref(n->val);
	xts_free(n->name);
	if (n->re)
		pcre2_code_free(n->re);
	xts_free(n);
}

static struct xts_node *
node_new(enum xts_node_kind kind, struct parser *p, size_t off)
{
	struct xts_node *n = xts_calloc(1, sizeof(*n));

	if (n) {
		n->kind = kind;
		n->col = column_of(p->src, off);
	}
	return n;
}

static void
skip_ws(struct parser *p)
{
	while (p->pos < p->len) {
		char c = p->src[p->pos];
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		p->pos++;
	}
}

static int
is_ident_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int
is_ident_char(char c)
{
	return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int
is_attr_char(char c)
{
	return is_ident_char(c) || c == '.' || c == '-';
}

static int
add_attr(struct parser *p, const char *name)
{
	struct xts_expr *e = p->e;
	char **na;
	size_t i;

	for (i = 0; i < e->nattrs; i++)
		if (strcmp(e->attrs[i], name) == 0)
			return 0;
	na = xts_realloc(e->attrs, (e->nattrs + 1) * sizeof(*na));
	if (!na)
		return XTS_ENOMEM;
	e->attrs = na;
	e->attrs[e->nattrs] = xts_strdup(name);
	if (!e->attrs[e->nattrs])
		return XTS_ENOMEM;
	e->nattrs++;
	return 0;
}

static int parse_expr(struct parser *p, struct xts_node **out);

static int
parse_string(struct parser *p, struct xts_node **out)
{
	struct xts_buf b = XTS_BUF_INIT;
	size_t start = p->pos;
	struct xts_node *n = NULL;
	int ret;

	p->pos++; /* opening quote */
	for (;;) {
		char c;
		if (p->pos >= p->len) {
			ret = perr(p, start, "unterminated string");
			goto done;
		}
		c = p->src[p->pos];
		if (c == '"') {
			p->pos++;
			break;
		}
		/* Microsoft: \" and \\ are escapes; any other backslash is kept. */
		if (c == '\\' && p->pos + 1 < p->len &&
		    (p->src[p->pos + 1] == '"' || p->src[p->pos + 1] == '\\')) {
			c = p->src[p->pos + 1];
			p->pos++;
		}
		ret = xts_buf_putc(&b, c);
		if (ret < 0)
			goto done;
		p->pos++;
	}
	n = node_new(XN_CONST, p, start);
	if (!n) {
		ret = XTS_ENOMEM;
		goto done;
	}
	n->val = json_stringn(b.p ? b.p : "", b.len);
	if (!n->val) {
		ret = XTS_ENOMEM;
		goto done;
	}
	*out = n;
	n = NULL;
	ret = 0;
done:
	node_free(n);
	xts_buf_free(&b);
	return ret;
}

static int
parse_number(struct parser *p, struct xts_node **out)
{
	size_t start = p->pos, i = p->pos;
	char tmp[64];
	struct xts_node *n;
	int neg = 0, real = 0;
	json_t *v;

	if (p->src[i] == '-' || p->src[i] == '+') {
		neg = p->src[i] == '-';
		i++;
	}
	if (i + 1 < p->len && p->src[i] == '&' && (p->src[i + 1] == 'H' || p->src[i + 1] == 'h')) {
		unsigned long long x = 0;
		size_t d = 0;
		i += 2;
		while (i < p->len) {
			char c = p->src[i];
			int h;
			if (c >= '0' && c <= '9')
				h = c - '0';
			else if (c >= 'a' && c <= 'f')
				h = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				h = c - 'A' + 10;
			else
				break;
			if (++d > 16)
				return perr(p, start, "hexadecimal constant too large");
			x = x << 4 | (unsigned)h;
			i++;
		}
		if (d == 0)
			return perr(p, start, "expected hexadecimal digits after '&H'");
		v = json_integer(neg ? -(long long)x : (long long)x);
	} else {
		size_t ds = i;
		while (i < p->len && p->src[i] >= '0' && p->src[i] <= '9')
			i++;
		if (i < p->len && p->src[i] == '.') {
			real = 1;
			i++;
			while (i < p->len && p->src[i] >= '0' && p->src[i] <= '9')
				i++;
		}
		if (i == ds || (real && i == ds + 1))
			return perr(p, start, "expected a number");
		if (i - start >= sizeof(tmp))
			return perr(p, start, "number too long");
		memcpy(tmp, p->src + start, i - start);
		tmp[i - start] = '\0';
		errno = 0;
		if (real) {
			v = json_real(strtod(tmp, NULL));
		} else {
			long long x = strtoll(tmp, NULL, 10);
			if (errno == ERANGE)
				return perr(p, start, "number out of range");
			v = json_integer(x);
		}
	}
	if (i < p->len && is_ident_char(p->src[i])) {
		json_decref(v);
		return perr(p, i, "unexpected character after number");
	}
	if (!v)
		return XTS_ENOMEM;
	n = node_new(XN_CONST, p, start);
	if (!n) {
		json_decref(v);
		return XTS_ENOMEM;
	}
	n->val = v;
	p->pos = i;
	*out = n;
	return 0;
}

static int
parse_attr(struct parser *p, struct xts_node **out)
{
	size_t start = p->pos, i = p->pos + 1;
	struct xts_node *n;
	int ret;

	while (i < p->len && is_attr_char(p->src[i]))
		i++;
	if (i >= p->len)
		return perr(p, start, "unterminated attribute name, expected ']'");
	if (p->src[i] != ']')
		return perr(p, i, "invalid character in attribute name, expected ']'");
	if (i == start + 1)
		return perr(p, start, "empty attribute name '[]'");
	n = node_new(XN_ATTR, p, start);
	if (!n)
		return XTS_ENOMEM;
	n->name = xts_strndup(p->src + start + 1, i - start - 1);
	if (!n->name) {
		node_free(n);
		return XTS_ENOMEM;
	}
	ret = add_attr(p, n->name);
	if (ret < 0) {
		node_free(n);
		return ret;
	}
	p->pos = i + 1;
	*out = n;
	return 0;
}

static int
ident_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

static int
parse_call(struct parser *p, size_t start, const char *name, size_t nlen, struct xts_node **out)
{
	const struct xts_func *fn = xts_expr_func_find(name, nlen);
	struct xts_node *n = NULL, *arg = NULL;
	int ret;

	if (!fn) {
		ret = perr(p, start, "unknown function '%.*s'", (int)(nlen > 64 ? 64 : nlen), name);
		goto done;
	}
	if (++p->depth > XTS_EXPR_MAX_DEPTH) {
		ret = perr(p, start, "expression nested deeper than %d levels", XTS_EXPR_MAX_DEPTH);
		goto done;
	}
	n = node_new(XN_CALL, p, start);
	if (!n) {
		ret = XTS_ENOMEM;
		goto done;
	}
	n->fn = fn;
	p->pos++; /* '(' */
	skip_ws(p);
	if (p->pos < p->len && p->src[p->pos] == ')') {
		p->pos++;
	} else {
		for (;;) {
			struct xts_node **na;
			skip_ws(p);
			if (p->pos < p->len && (p->src[p->pos] == ',' || p->src[p->pos] == ')')) {
				arg = node_new(XN_EMPTY, p, p->pos);
				if (!arg) {
					ret = XTS_ENOMEM;
					goto done;
				}
			} else {
				ret = parse_expr(p, &arg);
				if (ret < 0)
					goto done;
			}
			na = xts_realloc(n->args, (size_t)(n->nargs + 1) * sizeof(*na));
			if (!na) {
				ret = XTS_ENOMEM;
				goto done;
			}
			n->args = na;
			n->args[n->nargs++] = arg;
			arg = NULL;
			skip_ws(p);
			if (p->pos >= p->len) {
				ret = perr(p, p->pos, "expected ')' to close '%s(' opened at column %d",
					   fn->name, n->col);
				goto done;
			}
			if (p->src[p->pos] == ')') {
				p->pos++;
				break;
			}
			if (p->src[p->pos] != ',') {
				ret = perr(p, p->pos, "expected ',' or ')' in the arguments of '%s'",
					   fn->name);
				goto done;
			}
			p->pos++;
		}
	}
	if (n->nargs < fn->min_args || (fn->max_args >= 0 && n->nargs > fn->max_args)) {
		if (fn->min_args == fn->max_args)
			ret = perr(p, start, "'%s' takes %d argument%s, got %d", fn->name, fn->min_args,
				   fn->min_args == 1 ? "" : "s", n->nargs);
		else if (fn->max_args < 0)
			ret = perr(p, start, "'%s' takes at least %d arguments, got %d", fn->name,
				   fn->min_args, n->nargs);
		else
			ret = perr(p, start, "'%s' takes %d to %d arguments, got %d", fn->name,
				   fn->min_args, fn->max_args, n->nargs);
		goto done;
	}
	if (fn->check) {
		ret = fn->check(n, p->err);
		if (ret < 0)
			goto done;
	}
	p->depth--;
	*out = n;
	n = NULL;
	ret = 0;
done:
	node_free(arg);
	node_free(n);
	return ret;
}

static int
parse_ident(struct parser *p, struct xts_node **out)
{
	size_t start = p->pos, i = p->pos;
	const char *s = p->src + start;
	struct xts_node *n;
	size_t len;

	while (i < p->len && is_ident_char(p->src[i]))
		i++;
	len = i - start;
	p->pos = i;
	skip_ws(p);
	if (p->pos < p->len && p->src[p->pos] == '(')
		return parse_call(p, start, s, len, out);
	n = node_new(XN_CONST, p, start);
	if (!n)
		return XTS_ENOMEM;
	if (ident_is(s, len, "True")) {
		n->val = json_true();
	} else if (ident_is(s, len, "False")) {
		n->val = json_false();
	} else if (ident_is(s, len, "Nothing") || ident_is(s, len, "null")) {
		n->val = json_null();
	} else if (ident_is(s, len, "vbBinaryCompare") || ident_is(s, len, "vbTextCompare")) {
		n->kind = XN_IDENT;
		n->name = xts_strndup(s, len);
		if (!n->name) {
			node_free(n);
			return XTS_ENOMEM;
		}
	} else {
		node_free(n);
		return perr(p, start, "unknown name '%.*s' (functions need parentheses)",
			    (int)(len > 64 ? 64 : len), s);
	}
	*out = n;
	return 0;
}

static int
parse_operand(struct parser *p, struct xts_node **out)
{
	char c;
	int ret;

	skip_ws(p);
	if (p->pos >= p->len)
		return perr(p, p->pos, "unexpected end of expression");
	c = p->src[p->pos];
	if (c == '"')
		return parse_string(p, out);
	if (c == '[')
		return parse_attr(p, out);
	if ((c >= '0' && c <= '9') || c == '&' || c == '-' || c == '+')
		return parse_number(p, out);
	if (is_ident_start(c))
		return parse_ident(p, out);
	if (c == '(') {
		size_t open = p->pos;
		if (++p->depth > XTS_EXPR_MAX_DEPTH)
			return perr(p, open, "expression nested deeper than %d levels",
				    XTS_EXPR_MAX_DEPTH);
		p->pos++;
		ret = parse_expr(p, out);
		if (ret < 0)
			return ret;
		skip_ws(p);
		if (p->pos >= p->len || p->src[p->pos] != ')') {
			node_free(*out);
			*out = NULL;
			return perr(p, p->pos, "expected ')' to close '(' at column %d",
				    column_of(p->src, open));
		}
		p->pos++;
		p->depth--;
		return 0;
	}
	return perr(p, p->pos, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
}

static int
parse_cmp_op(struct parser *p, enum xts_cmp_op *op)
{
	const char *s = p->src + p->pos;
	size_t left = p->len - p->pos;

	if (left >= 2 && s[0] == '<' && s[1] == '>') {
		*op = XC_NE;
		p->pos += 2;
	} else if (left >= 2 && s[0] == '<' && s[1] == '=') {
		*op = XC_LE;
		p->pos += 2;
	} else if (left >= 2 && s[0] == '>' && s[1] == '=') {
		*op = XC_GE;
		p->pos += 2;
	} else if (left >= 1 && s[0] == '=') {
		*op = XC_EQ;
		p->pos += 1;
	} else if (left >= 1 && s[0] == '<') {
		*op = XC_LT;
		p->pos += 1;
	} else if (left >= 1 && s[0] == '>') {
		*op = XC_GT;
		p->pos += 1;
	} else {
		return 0;
	}
	return 1;
}

/* expr := operand [ ( = | <> | < | <= | > | >= ) operand ] */
static int
parse_expr(struct parser *p, struct xts_node **out)
{
	struct xts_node *lhs = NULL, *rhs = NULL, *n;
	enum xts_cmp_op op;
	size_t opos;
	int ret;

	ret = parse_operand(p, &lhs);
	if (ret < 0)
		return ret;
	skip_ws(p);
	opos = p->pos;
	if (!parse_cmp_op(p, &op)) {
		*out = lhs;
		return 0;
	}
	ret = parse_operand(p, &rhs);
	if (ret < 0) {
		node_free(lhs);
		return ret;
	}
	n = node_new(XN_CMP, p, opos);
	if (n)
		n->args = xts_calloc(2, sizeof(*n->args));
	if (!n || !n->args) {
		node_free(n);
		node_free(lhs);
		node_free(rhs);
		return XTS_ENOMEM;
	}
	n->op = op;
	n->args[0] = lhs;
	n->args[1] = rhs;
	n->nargs = 2;
	*out = n;
	return 0;
}

/* Microsoft: SelectUniqueValue "must be at the top-level and can't be
 * nested" (it decides the whole value by asking the target). top is 1 for
 * the root only; parentheses around the root leave it the root. */
static int
check_toplevel_only(struct parser *p, const struct xts_node *n, int top)
{
	int i, ret;

	if (n->kind == XN_CALL && !top && strcmp(n->fn->name, "SelectUniqueValue") == 0) {
		if (p->err) {
			p->err->column = n->col;
			snprintf(p->err->message, sizeof(p->err->message),
				 "'SelectUniqueValue' must be the whole expression, it cannot be nested");
		}
		return XTS_EPARSE;
	}
	for (i = 0; i < n->nargs; i++) {
		ret = check_toplevel_only(p, n->args[i], 0);
		if (ret < 0)
			return ret;
	}
	return 0;
}

void
xts_expr_free(xts_expr *e)
{
	size_t i;

	if (!e)
		return;
	node_free(e->root);
	for (i = 0; i < e->nattrs; i++)
		xts_free(e->attrs[i]);
	xts_free(e->attrs);
	xts_free(e);
}

int
xts_expr_compile(const char *src, xts_expr **out, struct xts_expr_error *err)
{
	struct parser p;
	const uint8_t *bad;
	size_t len;
	int ret;

	if (err) {
		err->column = 0;
		err->message[0] = '\0';
	}
	*out = NULL;
	if (!src)
		return XTS_EINVAL;
	memset(&p, 0, sizeof(p));
	p.src = src;
	p.err = err;
	len = strnlen(src, XTS_EXPR_MAX_LEN + 1);
	if (len > XTS_EXPR_MAX_LEN)
		return perr(&p, 0, "expression longer than %d characters", XTS_EXPR_MAX_LEN);
	p.len = len;
	bad = u8_check((const uint8_t *)src, len);
	if (bad)
		return perr(&p, (size_t)((const char *)bad - src), "invalid UTF-8");
	p.e = xts_calloc(1, sizeof(*p.e));
	if (!p.e)
		return XTS_ENOMEM;
	skip_ws(&p);
	if (p.pos >= p.len) {
		ret = perr(&p, p.pos, "empty expression");
		goto done;
	}
	ret = parse_expr(&p, &p.e->root);
	if (ret < 0)
		goto done;
	skip_ws(&p);
	if (p.pos < p.len) {
		ret = perr(&p, p.pos, "unexpected '%c' after the end of the expression",
			   p.src[p.pos] >= 0x20 && p.src[p.pos] < 0x7f ? p.src[p.pos] : '?');
		goto done;
	}
	ret = check_toplevel_only(&p, p.e->root, 1);
	if (ret < 0)
		goto done;
	*out = p.e;
	p.e = NULL;
	ret = 0;
done:
	xts_expr_free(p.e);
	if (ret < 0 && ret != XTS_EPARSE && err) {
		err->column = 0;
		snprintf(err->message, sizeof(err->message), "%s", xts_strerror(ret));
	}
	return ret;
}

void
xts_expr_foreach_attr(const xts_expr *e, void (*cb)(const char *name, void *arg), void *arg)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->nattrs; i++)
		cb(e->attrs[i], arg);
}

const char *
xts_expr_single_call_attr(const xts_expr *e, const char *function)
{
	const struct xts_node *n;

	if (!e || !function)
		return NULL;
	n = e->root;
	if (n->kind != XN_CALL || strcasecmp(n->fn->name, function) != 0 || n->nargs != 1 ||
	    n->args[0]->kind != XN_ATTR)
		return NULL;
	return n->args[0]->name;
}
