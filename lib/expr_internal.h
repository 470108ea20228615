/* SPDX-License-Identifier: MIT */
/* Shared between the expression parser, evaluator and function families:
 * the compiled tree, the function table entry and the evaluation helpers.
 * Not a public API: only lib/expr_*.c include it (and the expr unit tests). */
#ifndef XTS_EXPR_INTERNAL_H
#define XTS_EXPR_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "buf.h"
#include "expr.h"

enum xts_node_kind {
	XN_EMPTY, /* an omitted positional argument: Replace([x], , "re", ...) */
	XN_CONST, /* string, number, True/False, Nothing: val holds it */
	XN_ATTR,  /* [name] */
	XN_IDENT, /* vbBinaryCompare / vbTextCompare: name holds it */
	XN_CALL,  /* fn(args) */
	XN_CMP,   /* args[0] op args[1] */
};

enum xts_cmp_op { XC_EQ, XC_NE, XC_LT, XC_LE, XC_GT, XC_GE };

struct xts_node;
struct xts_ev;

/* A function's implementation: evaluates its own arguments (so IIF, Switch
 * and Coalesce stay lazy) and stores a new reference in *out. */
typedef int (*xts_fn_impl)(struct xts_ev *ev, const struct xts_node *call, json_t **out);
/* Extra compile-time validation (arity rules, regex precompilation). */
typedef int (*xts_fn_check)(struct xts_node *call, struct xts_expr_error *err);

struct xts_func {
	const char *name; /* canonical spelling, as Microsoft documents it */
	int min_args;
	int max_args; /* -1: no upper bound */
	xts_fn_impl impl;
	xts_fn_check check; /* may be NULL */
};

struct xts_node {
	enum xts_node_kind kind;
	int col;      /* 1-based column where the node starts */
	json_t *val;  /* XN_CONST: owned */
	char *name;   /* XN_ATTR, XN_IDENT: owned */
	const struct xts_func *fn;
	struct xts_node **args;
	int nargs;
	enum xts_cmp_op op;
	pcre2_code *re; /* Replace with a constant pattern: compiled once */
};

struct xts_expr {
	struct xts_node *root;
	char **attrs; /* distinct attribute names, in order of appearance */
	size_t nattrs;
};

/* Evaluation state of one xts_expr_eval call. */
struct xts_ev {
	const struct xts_expr_ctx *ctx;
	struct xts_expr_error *err;
	unsigned flags;
	time_t now;
	int depth;
};

/* The function table (expr_func_misc.c): lookup is case-insensitive. */
const struct xts_func *xts_expr_func_find(const char *name, size_t len);

/* Evaluate any node; *out is a new reference. */
int xts_ev_node(struct xts_ev *ev, const struct xts_node *n, json_t **out);
/* Argument i of call: a new reference, json null when omitted or absent. */
int xts_ev_arg(struct xts_ev *ev, const struct xts_node *call, int i, json_t **out);
/* Whether argument i was written (not omitted with an empty slot). */
int xts_arg_given(const struct xts_node *call, int i);
/* Argument i as text (xts_malloc'ed, caller frees); *s = NULL for null.
 * A multi-valued argument is a runtime error. */
int xts_ev_str(struct xts_ev *ev, const struct xts_node *call, int i, char **s, size_t *len);
/* Argument i as an integer; *isnull set when null (then *v = 0). */
int xts_ev_int(struct xts_ev *ev, const struct xts_node *call, int i, long long *v, int *isnull);
/* Record a runtime error against node n; returns XTS_EEXPR. */
int xts_ev_fail(struct xts_ev *ev, const struct xts_node *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Turn b into a json string in *out (b is freed); invalid UTF-8 is an error. */
int xts_ev_ret_buf(struct xts_ev *ev, const struct xts_node *n, struct xts_buf *b, json_t **out);
/* Append v's text form (strings as-is, True/False, numbers) to b; null adds nothing. */
int xts_val_text(const json_t *v, struct xts_buf *b);
/* VB truthiness: 1/0, or -1 when v cannot be read as a boolean. */
int xts_val_truth(const json_t *v);
/* Number of Unicode characters in valid UTF-8 s[0..len). */
size_t xts_u8_count(const char *s, size_t len);
/* Byte offset of character index ci (0-based) in s, len when beyond. */
size_t xts_u8_offset(const char *s, size_t len, size_t ci);

/* Regex: compile with the project's options (UTF, .NET-compatible named
 * groups); on failure fills msg. Match with a bounded match limit. */
pcre2_code *xts_re_compile(const char *pat, size_t len, char *msg, size_t msgsz);
int xts_re_match(const pcre2_code *re, const char *s, size_t len, size_t start,
		 pcre2_match_data *md);

/* Function families. */
int xts_fn_append(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_base64(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_utf8hex(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_cstr(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_instr(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_join(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_left(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_mid(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_normdiac(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_pcase(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_split(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_stripspaces(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_tolower(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_toupper(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_word(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_replace(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_replace_check(struct xts_node *call, struct xts_expr_error *err);
int xts_fn_randomstring(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_guid(struct xts_ev *, const struct xts_node *, json_t **);

int xts_fn_cdate(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_dateadd(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_datediff(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_datefromnum(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_formatdatetime(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_now(struct xts_ev *, const struct xts_node *, json_t **);
int xts_fn_numfromdate(struct xts_ev *, const struct xts_node *, json_t **);

#endif
