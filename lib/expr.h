/* SPDX-License-Identifier: MIT */
/* Microsoft's attribute-mapping expression language (the "Expression" source
 * of an attributeMapping): compile once when a schema loads, evaluate per
 * user. Values are jansson values: string, array (multi-valued), boolean,
 * number (integer or real), null. Not the scoping filters (scope_filter.h). */
#ifndef XTS_EXPR_H
#define XTS_EXPR_H

#include <stddef.h>
#include <time.h>

#include <jansson.h>

/* Microsoft's documented limit on an expression's length. */
#define XTS_EXPR_MAX_LEN 10000
/* Nesting cap (calls within calls), so a hostile schema cannot blow the stack. */
#define XTS_EXPR_MAX_DEPTH 64

typedef struct xts_expr xts_expr; /* compiled, immutable, shareable */

struct xts_expr_error {
	int column;        /* 1-based column of the problem in the source text, 0 if none */
	char message[256]; /* a sentence a person understands */
};

/* Compile src (NUL-terminated, at most XTS_EXPR_MAX_LEN characters).
 * On success *out owns a compiled expression (free with xts_expr_free) and 0
 * is returned. On a syntax error, unknown function or wrong argument count
 * returns XTS_EPARSE and fills *err (err may be NULL). Never blocks. */
int xts_expr_compile(const char *src, xts_expr **out, struct xts_expr_error *err);
void xts_expr_free(xts_expr *e);

/* Result flags of an evaluation. */
enum {
	XTS_EXPR_IGNORE_FLOW = 1 << 0, /* IgnoreFlowIfNullOrEmpty: do not send the attribute */
	XTS_EXPR_REDACT = 1 << 1,      /* Redact(): show "[Redact]" in logs */
};

struct xts_expr_ctx {
	const json_t *attrs;  /* borrowed: the source object's attributes by name */
	time_t now;           /* value of Now(); 0 means time(NULL) */
	/* Random bytes for Guid()/RandomString(); NULL means OpenSSL RAND_bytes. */
	int (*random)(void *arg, unsigned char *buf, size_t len);
	void *random_arg;
	/* SelectUniqueValue: return 1 when value is not yet used in the target,
	 * 0 when taken, <0 on error. NULL: the first non-empty candidate wins
	 * (the engine then checks uniqueness itself). value is borrowed. */
	int (*is_unique)(void *arg, const json_t *value);
	void *unique_arg;
};

/* Evaluate e against ctx. On success *result is a new reference (never NULL;
 * json null for a null result) and *flags gets XTS_EXPR_* bits (flags may be
 * NULL). On a runtime error returns XTS_EEXPR with err filled (column = the
 * failing call or argument); XTS_ENOMEM when memory ran out. Never blocks
 * (except ctx->random / ctx->is_unique if they do). Pure and thread-
 * compatible: e is not modified. Semantics per function and the deviations
 * from Microsoft: docs/internals/expr.md. */
int xts_expr_eval(const xts_expr *e, const struct xts_expr_ctx *ctx, json_t **result,
		  unsigned *flags, struct xts_expr_error *err);

/* Call cb once per distinct [attribute] the expression references (so the
 * engine can build its $select). */
void xts_expr_foreach_attr(const xts_expr *e, void (*cb)(const char *name, void *arg), void *arg);

/* If e is exactly a call F([attr]) of the named function (case-insensitive),
 * return attr (borrowed from e), else NULL. Used for AltSecIdFromNetId([netId]). */
const char *xts_expr_single_call_attr(const xts_expr *e, const char *function);

/* Serialize a value for output and logs: strings as-is, others as compact JSON.
 * Caller frees with xts_free. */
char *xts_value_to_text(const json_t *v);

#endif
