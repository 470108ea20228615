/* SPDX-License-Identifier: MIT */
/* Unit tests for compiling expressions: every parse error with its column,
 * the length and nesting limits, attribute listing, AltSecIdFromNetId, the
 * value printer, and allocation failure at every step of compile and eval
 * (run under ASan, the same loop shows leaks). Function results: test_expr_funcs.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "expr.h"
#include "mem.h"

static void
test_parse_errors(void **state)
{
	static const struct {
		const char *src;
		int column;
		const char *message; /* prefix of the expected message */
	} cases[] = {
		{ "Foo(1)", 1, "unknown function 'Foo'" },
		{ "Join(\",\", Fooo([a]))", 11, "unknown function 'Fooo'" },
		{ "Left(\"a\", 1, 2)", 1, "'Left' takes 2 arguments, got 3" },
		{ "Mid(\"a\")", 1, "'Mid' takes 3 arguments, got 1" },
		{ "Coalesce()", 1, "'Coalesce' takes at least 1 arguments, got 0" },
		{ "InStr(\"a\")", 1, "'InStr' takes 2 to 4 arguments, got 1" },
		{ "Guid(1)", 1, "'Guid' takes 0 arguments, got 1" },
		{ "Replace([x], \"a\", \"b\")", 1, "'Replace' takes 7 arguments, got 3" },
		{ "Switch([a], \"d\", \"k\")", 1, "'Switch' takes at least 4 arguments, got 3" },
		{ "Switch([a], \"d\", \"k\", \"v\", \"k2\")", 1, "'Switch' takes source, defaultValue" },
		{ "AltSecIdFromNetId([a], [b])", 1, "'AltSecIdFromNetId' takes 1 argument, got 2" },
		{ "Left(\"abc", 6, "unterminated string" },
		{ "Left(\"abc\", 1", 14, "expected ')' to close 'Left(' opened at column 1" },
		{ "Left(\"abc\" 1)", 12, "expected ',' or ')'" },
		{ "Left([abc", 6, "unterminated attribute name" },
		{ "[a b]", 3, "invalid character in attribute name" },
		{ "[]", 1, "empty attribute name" },
		{ "", 1, "empty expression" },
		{ "   ", 4, "empty expression" },
		{ "Left(\"a\",1) x", 13, "unexpected 'x' after the end of the expression" },
		{ "vbFoo", 1, "unknown name 'vbFoo'" },
		{ "Mid(\"é\", 1, 1) )", 16, "unexpected ')'" },
		{ "Replace([x], , \"(\", , \"y\", , )", 16, "Replace: invalid regular expression" },
		{ "BitAnd(&H, 1)", 8, "expected hexadecimal digits after '&H'" },
		{ "BitAnd(&H12345678901234567, 1)", 8, "hexadecimal constant too large" },
		{ "IIF([a] = , 1, 2)", 11, "unexpected character ','" },
		{ "IIF([a] = 1 = 2, 1, 2)", 13, "expected ',' or ')'" },
		{ "Left(\"a\", 12x)", 13, "unexpected character after number" },
		{ "Left(\"a\", 99999999999999999999)", 11, "number out of range" },
		{ "Left(\"a\", -)", 11, "expected a number" },
		{ "(\"a\"", 5, "expected ')' to close '(' at column 1" },
		{ "\"a\xff\"", 3, "invalid UTF-8" },
		{ "Left(\"a\", 1)\x01", 13, "unexpected '?'" },
		/* doc: SelectUniqueValue "must be at the top-level and can't be nested" */
		{ "Append(SelectUniqueValue(\"a\", \"b\"), \"x\")", 8,
		  "'SelectUniqueValue' must be the whole expression" },
		{ "SelectUniqueValue(\"a\", SelectUniqueValue(\"b\", \"c\"))", 24,
		  "'SelectUniqueValue' must be the whole expression" },
		{ "SelectUniqueValue(\"a\", \"b\") = \"a\"", 1,
		  "'SelectUniqueValue' must be the whole expression" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xts_expr_error err;
		xts_expr *e = NULL;
		int ret = xts_expr_compile(cases[i].src, &e, &err);

		if (ret != XTS_EPARSE)
			fail_msg("%s: want XTS_EPARSE, got %d", cases[i].src, ret);
		assert_null(e);
		if (err.column != cases[i].column ||
		    strncmp(err.message, cases[i].message, strlen(cases[i].message)) != 0)
			fail_msg("%s:\n  want column %d: %s...\n  got  column %d: %s", cases[i].src,
				 cases[i].column, cases[i].message, err.column, err.message);
	}
}

static void
test_parse_forms(void **state)
{
	static const char *ok[] = {
		"Replace([x], , \"re\", , \"y\", , )",
		"Replace([x],,\"re\",,\"y\",,)",
		"  Append ( [a] , \"b\" )  ",
		"tolower(\"A\")",
		"TOLOWER(\"A\", \"en-US\")",
		"InStr(\"a\", \"b\", 1, vbtextcompare)",
		"IIF([a]<>\"x\", True, False)",
		"IIF([a] >= -1.5, Nothing, null)",
		"BitAnd(&hff, &H0)",
		"[extension_abc_foo]",
		"\"constant\"",
		"Join(\"\", 1000, [x])",
		"Switch([Active], , \n  \"1\", \"a\", \n  \"0\", \"False\")",
		"AppRoleAssignmentsComplex([appRoleAssignments])",
		"SingleAppRoleAssignment([appRoleAssignments])",
		("Switch(IsPresent([directManager]),[directManager], IsPresent([skiplevelManager]),"
		 "[skiplevelManager], IsPresent([director]),[director])"),
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct xts_expr_error err;
		xts_expr *e = NULL;
		int ret = xts_expr_compile(ok[i], &e, &err);
		if (ret != 0)
			fail_msg("%s: %d column %d: %s", ok[i], ret, err.column, err.message);
		assert_non_null(e);
		xts_expr_free(e);
	}
	xts_expr_free(NULL);
}

static char *
repeat(const char *head, const char *unit, int n, const char *mid, const char *tail)
{
	struct xts_buf b = XTS_BUF_INIT;
	int i;

	assert_int_equal(xts_buf_puts(&b, head), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(xts_buf_puts(&b, unit), 0);
	assert_int_equal(xts_buf_puts(&b, mid), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(xts_buf_puts(&b, tail), 0);
	return xts_buf_steal(&b);
}

static void
test_limits(void **state)
{
	struct xts_expr_error err;
	xts_expr *e = NULL;
	char *s;

	(void)state;
	/* exactly XTS_EXPR_MAX_LEN characters compiles; one more does not */
	s = repeat("\"", "a", XTS_EXPR_MAX_LEN - 2, "\"", "");
	assert_int_equal(strlen(s), XTS_EXPR_MAX_LEN);
	assert_int_equal(xts_expr_compile(s, &e, &err), 0);
	xts_expr_free(e);
	xts_free(s);
	s = repeat("\"", "a", XTS_EXPR_MAX_LEN - 1, "\"", "");
	assert_int_equal(strlen(s), 10001);
	assert_int_equal(xts_expr_compile(s, &e, &err), XTS_EPARSE);
	assert_null(e);
	assert_string_equal(err.message, "expression longer than 10000 characters");
	xts_free(s);

	/* nesting: XTS_EXPR_MAX_DEPTH calls deep is fine, one more is refused */
	s = repeat("", "ToLower(", XTS_EXPR_MAX_DEPTH, "\"A\"", ")");
	assert_int_equal(xts_expr_compile(s, &e, &err), 0);
	xts_expr_free(e);
	xts_free(s);
	s = repeat("", "ToLower(", XTS_EXPR_MAX_DEPTH + 1, "\"A\"", ")");
	assert_int_equal(xts_expr_compile(s, &e, &err), XTS_EPARSE);
	assert_int_equal(err.column, 1 + 8 * XTS_EXPR_MAX_DEPTH);
	assert_non_null(strstr(err.message, "nested deeper than 64"));
	xts_free(s);
	s = repeat("", "(", 3000, "1", ")");
	assert_int_equal(xts_expr_compile(s, &e, &err), XTS_EPARSE);
	xts_free(s);
	assert_int_equal(xts_expr_compile(NULL, &e, &err), XTS_EINVAL);
}

static void
collect(const char *name, void *arg)
{
	struct xts_buf *b = arg;

	assert_int_equal(xts_buf_printf(b, "%s;", name), 0);
}

static void
test_attrs_and_single_call(void **state)
{
	struct xts_expr_error err;
	struct xts_buf b = XTS_BUF_INIT;
	xts_expr *e = NULL;

	(void)state;
	assert_int_equal(xts_expr_compile("Join([a], [b], [a], Mid([c],1,1), IIF([b]=[d],1,2))",
					  &e, &err), 0);
	xts_expr_foreach_attr(e, collect, &b);
	assert_string_equal(xts_buf_str(&b), "a;b;c;d;");
	assert_null(xts_expr_single_call_attr(e, "Join"));
	xts_expr_free(e);
	xts_buf_free(&b);

	assert_int_equal(xts_expr_compile("AltSecIdFromNetId([netId])", &e, &err), 0);
	assert_string_equal(xts_expr_single_call_attr(e, "AltSecIdFromNetId"), "netId");
	assert_string_equal(xts_expr_single_call_attr(e, "altsecidfromnetid"), "netId");
	assert_null(xts_expr_single_call_attr(e, "Append"));
	xts_expr_free(e);
	assert_int_equal(xts_expr_compile("altSecIdFromNetID( [netId] )", &e, &err), 0);
	assert_string_equal(xts_expr_single_call_attr(e, "AltSecIdFromNetId"), "netId");
	xts_expr_free(e);
	assert_int_equal(xts_expr_compile("AltSecIdFromNetId(\"x\")", &e, &err), 0);
	assert_null(xts_expr_single_call_attr(e, "AltSecIdFromNetId"));
	xts_expr_free(e);
	assert_int_equal(xts_expr_compile("[netId]", &e, &err), 0);
	assert_null(xts_expr_single_call_attr(e, "AltSecIdFromNetId"));
	xts_expr_foreach_attr(e, collect, &b);
	assert_string_equal(xts_buf_str(&b), "netId;");
	xts_buf_free(&b);
	xts_expr_free(e);
}

static void
test_value_to_text(void **state)
{
	json_t *v;
	char *s;

	(void)state;
	v = json_string("a\"b");
	s = xts_value_to_text(v);
	assert_string_equal(s, "a\"b");
	xts_free(s);
	json_decref(v);
	v = json_pack("[si]", "x", 5);
	s = xts_value_to_text(v);
	assert_string_equal(s, "[\"x\",5]");
	xts_free(s);
	json_decref(v);
	s = xts_value_to_text(NULL);
	assert_string_equal(s, "null");
	xts_free(s);
	v = json_true();
	s = xts_value_to_text(v);
	assert_string_equal(s, "true");
	xts_free(s);
}

/* The compiled form is reusable: many evaluations, different attributes. */
static void
test_reuse(void **state)
{
	struct xts_expr_ctx ctx;
	struct xts_expr_error err;
	xts_expr *e = NULL;
	json_t *attrs, *res;
	char name[32];
	int i;

	(void)state;
	assert_int_equal(xts_expr_compile("Replace([n], , \"(?<d>\\\\d+)\", \"d\", \"#\", , )", &e,
					  &err), 0);
	memset(&ctx, 0, sizeof(ctx));
	for (i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "user%d-x", i);
		attrs = json_pack("{ss}", "n", name);
		ctx.attrs = attrs;
		assert_int_equal(xts_expr_eval(e, &ctx, &res, NULL, &err), 0);
		assert_string_equal(json_string_value(res), "user#-x");
		json_decref(res);
		json_decref(attrs);
	}
	ctx.attrs = NULL; /* no attributes at all: every reference is null */
	assert_int_equal(xts_expr_eval(e, &ctx, &res, NULL, &err), 0);
	assert_true(json_is_null(res));
	json_decref(res);
	xts_expr_free(e);
}

/* Fail the Nth allocation for every N: compile and eval must return
 * XTS_ENOMEM (never crash, never leak -- ASan checks the latter). */
static void
test_alloc_failures(void **state)
{
	static const char *srcs[] = {
		"Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\", [g], [s]))), \"contoso.com\")",
		"Replace([t], , \"\\\\+(?<isd>\\\\d* )(?<p>\\\\d{10})\", , \"${p}\", , )",
		"IIF(DateDiff(\"d\", Now(), CDate([h])) > 5, PCase([g]), ToUpper(ConvertToBase64([s])))",
		"Switch(Item(Split([l], \",\"), 2), , \"b\", ToUpper([l]))",
		"RemoveDuplicates(Split(FormatDateTime([h], , \"yyyy-MM-dd\", \"yyyy,MM,yyyy\"), \",\"))",
	};
	json_t *attrs;
	size_t k;

	(void)state;
	attrs = json_pack("{ss ss ss ss ss}", "g", "Zoë Ann", "s", "Smith", "t", "+91 9998887777",
			  "h", "2021-08-24", "l", "a,b");
	assert_non_null(attrs);
	for (k = 0; k < sizeof(srcs) / sizeof(srcs[0]); k++) {
		unsigned long n;
		int done = 0;
		for (n = 1; !done && n < 5000; n++) {
			struct xts_expr_ctx ctx;
			struct xts_expr_error err;
			xts_expr *e = NULL;
			json_t *res = NULL;
			unsigned long before;
			int ret;

			memset(&ctx, 0, sizeof(ctx));
			ctx.attrs = attrs;
			ctx.now = 1625240018;
			before = xts_mem_count();
			xts_mem_fail_after(n, 0);
			ret = xts_expr_compile(srcs[k], &e, &err);
			if (ret == 0) {
				ret = xts_expr_eval(e, &ctx, &res, NULL, &err);
				json_decref(res);
			}
			xts_mem_fail_after(0, 0);
			xts_expr_free(e);
			if (ret == 0 && xts_mem_count() - before < n)
				done = 1; /* the injected failure was never reached */
			else if (ret != 0 && ret != XTS_ENOMEM)
				fail_msg("%s: fail at %lu: got %d (%s)", srcs[k], n, ret, err.message);
		}
		assert_true(done);
		assert_true(n > 20); /* the loop really failed allocations inside */
	}
	json_decref(attrs);
}

static int
setup(void **state)
{
	(void)state;
	return xts_mem_install();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_forms),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_attrs_and_single_call),
		cmocka_unit_test(test_value_to_text),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_alloc_failures),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
