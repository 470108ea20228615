/* SPDX-License-Identifier: MIT */
/* Unit tests for scoping filters: every documented operator with true, false
 * and null/empty cases, case sensitivity, Graph and portal spellings, AND/OR
 * of clauses and groups, input filters, the failure reason, and the regex
 * backtracking limit. Not the schema loader (test_schema.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "err.h"
#include "mem.h"
#include "schema.h"
#include "scope_filter.h"

static json_t *
J(const char *s)
{
	char *d = xts_strdup(s);
	json_error_t e;
	json_t *j;
	size_t i;

	assert_non_null(d);
	for (i = 0; d[i]; i++)
		if (d[i] == '\'')
			d[i] = '"';
	j = json_loads(d, JSON_DECODE_ANY, &e);
	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", e.text, d);
	xts_free(d);
	return j;
}

static struct xts_filter *
compile(const char *scope)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_filter *f = NULL;
	json_t *j = J(scope);
	size_t i;

	if (xts_filter_compile(j, "$.scope", &f, &probs) != 0) {
		for (i = 0; i < probs.count; i++)
			print_message("  problem: %s: %s\n", probs.items[i].path, probs.items[i].message);
		fail_msg("filter did not compile: %s", scope);
	}
	xts_schema_problems_free(&probs);
	json_decref(j);
	return f;
}

/* One clause "attr op values" against a user given as JSON; returns in_scope. */
static int
clause(const char *op, const char *values, const char *user)
{
	char buf[2048];
	struct xts_filter *f;
	json_t *u = J(user);
	int in = -1;

	snprintf(buf, sizeof(buf),
		 "{'groups':[{'name':'g','clauses':[{'operatorName':'%s','sourceOperandName':'a',"
		 "'targetOperand':{'values':[%s]}}]}]}", op, values);
	f = compile(buf);
	assert_int_equal(xts_filter_eval(f, u, &in, NULL), 0);
	xts_filter_free(f);
	json_decref(u);
	return in;
}

static void
test_equals(void **state)
{
	(void)state;
	assert_true(clause("EQUALS", "'Sales'", "{'a':'Sales'}"));
	assert_false(clause("EQUALS", "'Sales'", "{'a':'sales'}")); /* case sensitive */
	assert_false(clause("EQUALS", "'Sales'", "{'a':'Sales '}"));
	assert_false(clause("EQUALS", "'Sales'", "{}"));
	assert_false(clause("EQUALS", "'Sales'", "{'a':null}"));
	assert_false(clause("EQUALS", "''", "{'a':''}")); /* empty is always false */
	assert_true(clause("EQUALS", "'True'", "{'a':true}"));
	assert_true(clause("EQUALS", "'true'", "{'a':true}"));
	assert_false(clause("EQUALS", "'true'", "{'a':false}"));
	assert_true(clause("EQUALS", "'42'", "{'a':42}"));
	/* attribute names are case-insensitive */
	assert_true(clause("EQUALS", "'x'", "{'A':'x'}"));
	/* several values: any */
	assert_true(clause("EQUALS", "'a','b'", "{'a':'b'}"));

	assert_true(clause("NOT EQUALS", "'Sales'", "{'a':'Marketing'}"));
	assert_true(clause("NOT EQUALS", "'Sales'", "{'a':'sales'}"));
	assert_false(clause("NOT EQUALS", "'Sales'", "{'a':'Sales'}"));
	assert_false(clause("NOT EQUALS", "'Sales'", "{}")); /* null: false */
	assert_false(clause("NOT EQUALS", "'Sales'", "{'a':''}"));
	assert_false(clause("NOT EQUALS", "'a','b'", "{'a':'b'}"));
}

static void
test_booleans_and_null(void **state)
{
	(void)state;
	assert_true(clause("IS TRUE", "", "{'a':true}"));
	assert_true(clause("IS TRUE", "", "{'a':'True'}"));
	assert_false(clause("IS TRUE", "", "{'a':false}"));
	assert_false(clause("IS TRUE", "", "{'a':'yes'}"));
	assert_false(clause("IS TRUE", "", "{}"));
	assert_true(clause("IS FALSE", "", "{'a':false}"));
	assert_false(clause("IS FALSE", "", "{'a':true}"));
	assert_false(clause("IS FALSE", "", "{'a':null}"));

	assert_true(clause("IS NULL", "", "{}"));
	assert_true(clause("IS NULL", "", "{'a':null}"));
	assert_true(clause("IS NULL", "", "{'a':''}"));
	assert_true(clause("IS NULL", "", "{'a':[]}"));
	assert_false(clause("IS NULL", "", "{'a':'x'}"));
	assert_false(clause("IS NULL", "", "{'a':false}"));
	assert_true(clause("IS NOT NULL", "", "{'a':'x'}"));
	assert_true(clause("IS NOT NULL", "", "{'a':['x']}"));
	assert_false(clause("IS NOT NULL", "", "{'a':''}"));
	assert_false(clause("IS NOT NULL", "", "{}"));
}

static void
test_regex(void **state)
{
	(void)state;
	assert_true(clause("REGEX MATCH", "'.*\\\\@contoso\\\\.com'", "{'a':'ann@contoso.com'}"));
	assert_false(clause("REGEX MATCH", "'.*\\\\@contoso\\\\.com'", "{'a':'ann@fabrikam.com'}"));
	assert_false(clause("REGEX MATCH", "'^sales$'", "{'a':'Sales'}")); /* case sensitive */
	assert_true(clause("REGEX MATCH", "'([1-9][0-9])'", "{'a':'42'}"));
	assert_false(clause("REGEX MATCH", "'.*'", "{}"));
	assert_false(clause("REGEX MATCH", "'.*'", "{'a':''}"));
	assert_true(clause("NOT REGEX MATCH", "'.*\\\\@contoso\\\\.com'", "{'a':'ann@fabrikam.com'}"));
	assert_false(clause("NOT REGEX MATCH", "'.*\\\\@contoso\\\\.com'", "{'a':'ann@contoso.com'}"));
	/* "It returns false if the attribute is null / empty." */
	assert_false(clause("NOT REGEX MATCH", "'x'", "{}"));
	assert_false(clause("NOT REGEX MATCH", "'x'", "{'a':''}"));
}

static void
test_string_ops(void **state)
{
	(void)state;
	assert_true(clause("Includes", "'ale'", "{'a':'Sales'}"));
	assert_false(clause("Includes", "'ALE'", "{'a':'Sales'}"));
	assert_false(clause("Includes", "'x'", "{}"));
	assert_true(clause("ENDS_WITH", "'@contoso.com'", "{'a':'ann@contoso.com'}"));
	assert_false(clause("ENDS_WITH", "'@contoso.com'", "{'a':'ann@contoso.com.evil'}"));
	assert_false(clause("ENDS_WITH", "'@CONTOSO.com'", "{'a':'ann@contoso.com'}"));
	assert_false(clause("ENDS_WITH", "'x'", "{'a':null}"));
}

static void
test_numeric_ops(void **state)
{
	(void)state;
	assert_true(clause("Greater_Than", "'1000000'", "{'a':'1500000'}"));
	assert_true(clause("Greater_Than", "'1000000'", "{'a':1000001}"));
	assert_false(clause("Greater_Than", "'1000000'", "{'a':'1000000'}"));
	assert_false(clause("Greater_Than", "'10'", "{'a':'abc'}"));
	assert_false(clause("Greater_Than", "'10'", "{}"));
	assert_true(clause("Greater_Than_OR_EQUALS", "'1000000'", "{'a':'1000000'}"));
	assert_false(clause("Greater_Than_OR_EQUALS", "'1000000'", "{'a':'999999'}"));
	assert_false(clause("Greater_Than_OR_EQUALS", "'1'", "{'a':''}"));

	/* & / !& : bitwise AND on integers (userAccountControl & 2) */
	assert_true(clause("&", "'2'", "{'a':514}"));
	assert_false(clause("&", "'2'", "{'a':512}"));
	assert_true(clause("!&", "'2'", "{'a':512}"));
	assert_false(clause("!&", "'2'", "{'a':'514'}"));
	assert_false(clause("!&", "'2'", "{}"));
	assert_false(clause("&", "'2'", "{}"));
	/* non-integer: the attribute value occurs in the given string */
	assert_true(clause("&", "'Sales,Marketing'", "{'a':'Sales'}"));
	assert_false(clause("&", "'Sales,Marketing'", "{'a':'HR'}"));
	assert_true(clause("!&", "'Sales,Marketing'", "{'a':'HR'}"));
}

static void
test_spellings(void **state)
{
	(void)state;
	assert_true(clause("NOT_EQUALS", "'x'", "{'a':'y'}"));
	assert_true(clause("NotEquals", "'x'", "{'a':'y'}"));
	assert_true(clause("IsTrue", "", "{'a':true}"));
	assert_true(clause("IS_NOT_NULL", "", "{'a':'y'}"));
	assert_true(clause("REGEX_MATCH", "'^y$'", "{'a':'y'}"));
	assert_true(clause("GREATER_THAN_OR_EQUALS", "'3'", "{'a':3}"));
	assert_true(clause("EndsWith", "'y'", "{'a':'xy'}"));
	assert_true(clause("INCLUDES", "'x'", "{'a':'xy'}"));
}

static void
test_multivalued(void **state)
{
	(void)state;
	/* filterOperatorSchema default comparison "All". */
	assert_true(clause("ENDS_WITH", "'.com'", "{'a':['a.com','b.com']}"));
	assert_false(clause("ENDS_WITH", "'.com'", "{'a':['a.com','b.org']}"));
	assert_false(clause("EQUALS", "'x'", "{'a':[]}"));
}

static void
test_groups(void **state)
{
	struct xts_filter *f;
	json_t *u;
	const char *reason = NULL;
	int in = -1;

	(void)state;
	/* No groups: everyone. */
	f = compile("{'groups':[],'inputFilterGroups':[],'categoryFilterGroups':[]}");
	u = J("{}");
	assert_int_equal(xts_filter_eval(f, u, &in, &reason), 0);
	assert_true(in);
	assert_null(reason);
	json_decref(u);
	xts_filter_free(f);
	f = compile("null");
	u = J("{}");
	assert_int_equal(xts_filter_eval(f, u, &in, NULL), 0);
	assert_true(in);
	json_decref(u);
	xts_filter_free(f);

	/* AND within a group, OR across groups. */
	f = compile("{'groups':["
		    "{'name':'NY engineers','clauses':["
		    "{'operatorName':'EQUALS','sourceOperandName':'state','targetOperand':{'values':['NY']}},"
		    "{'operatorName':'EQUALS','sourceOperandName':'department','targetOperand':{'values':['Eng']}}]},"
		    "{'name':'execs','clauses':["
		    "{'operatorName':'IS TRUE','sourceOperandName':'isExec'}]}]}");
	u = J("{'state':'NY','department':'Eng'}");
	assert_int_equal(xts_filter_eval(f, u, &in, &reason), 0);
	assert_true(in);
	json_decref(u);
	u = J("{'state':'NY','department':'Sales','isExec':true}");
	assert_int_equal(xts_filter_eval(f, u, &in, &reason), 0);
	assert_true(in);
	json_decref(u);
	u = J("{'state':'NY','department':'Sales'}");
	assert_int_equal(xts_filter_eval(f, u, &in, &reason), 0);
	assert_false(in);
	assert_non_null(reason);
	assert_string_equal(reason, "scoping filter 'NY engineers': department EQUALS \"Eng\" is false");
	json_decref(u);
	xts_filter_free(f);

	/* inputFilterGroups are evaluated separately, and also gate scope. */
	f = compile("{'inputFilterGroups':[{'name':'members','clauses':[{'operatorName':'EQUALS',"
		    "'sourceOperandName':'userType','targetOperand':{'values':['Member']}}]}]}");
	u = J("{'userType':'Guest'}");
	assert_int_equal(xts_filter_eval_input(f, u, &in, &reason), 0);
	assert_false(in);
	assert_non_null(strstr(reason, "input filter 'members'"));
	assert_int_equal(xts_filter_eval(f, u, &in, NULL), 0);
	assert_false(in);
	json_decref(u);
	u = J("{'userType':'Member'}");
	assert_int_equal(xts_filter_eval_input(f, u, &in, NULL), 0);
	assert_true(in);
	json_decref(u);
	assert_int_equal(xts_filter_group_count(f), 1);
	xts_filter_free(f);
}

static void
test_compile_problems(void **state)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_filter *f = NULL;
	json_t *j;

	(void)state;
	j = J("{'groups':[{'name':'g','clauses':["
	      "{'operatorName':'Greater_Than','sourceOperandName':'a','targetOperand':{'values':['ten']}},"
	      "{'operatorName':'EQUALS','sourceOperandName':'a','targetOperand':{'values':[]}},"
	      "{'operatorName':'EQUALS','targetOperand':{'values':['x']}},"
	      "{'operatorName':'IsMemberOf','sourceOperandName':'a','targetOperand':{'values':['x']}}]},"
	      "{'name':'empty','clauses':[]}],"
	      "'inputFilterGroups':'nope'}");
	assert_int_equal(xts_filter_compile(j, "$.s", &f, &probs), XTS_ESCHEMA);
	assert_null(f);
	assert_int_equal(probs.count, 6);
	assert_string_equal(probs.items[0].path, "$.s.groups[0].clauses[0].targetOperand.values[0]");
	assert_non_null(strstr(probs.items[0].message, "integer"));
	assert_string_equal(probs.items[1].path, "$.s.groups[0].clauses[1].targetOperand.values");
	assert_string_equal(probs.items[2].path, "$.s.groups[0].clauses[2].sourceOperandName");
	assert_string_equal(probs.items[3].path, "$.s.groups[0].clauses[3].operatorName");
	assert_string_equal(probs.items[4].path, "$.s.groups[1].clauses");
	assert_string_equal(probs.items[5].path, "$.s.inputFilterGroups");
	xts_schema_problems_free(&probs);
	json_decref(j);
}

/* A catastrophic-backtracking pattern hits the match limit: clause false, fast. */
static void
test_regex_limit(void **state)
{
	char user[200];
	struct timespec a, b;
	double ms;

	(void)state;
	snprintf(user, sizeof(user), "{'a':'%s'}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab");
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_false(clause("REGEX MATCH", "'^(a+)+$'", user));
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	print_message("# catastrophic regex took %.1f ms\n", ms);
	assert_true(ms < 2000);
}

/* The schema-level wrappers use the schema's compiled filter. */
static void
test_schema_wrappers(void **state)
{
	struct xts_schema *s = NULL;
	json_t *doc, *u;
	const char *reason = NULL;
	int in = -1;

	(void)state;
	doc = J("{'synchronizationRules':[{'objectMappings':[{'sourceObjectName':'User','targetObjectName':'User',"
		"'attributeMappings':[{'targetAttributeName':'alternativeSecurityIds','matchingPriority':1,"
		"'source':{'type':'Function','expression':'AltSecIdFromNetId([netId])'}}],"
		"'scope':{'groups':[{'name':'sales','clauses':[{'operatorName':'EQUALS','sourceOperandName':"
		"'department','targetOperand':{'values':['Sales']}}]}]}}]}]}");
	assert_int_equal(xts_schema_load_json(doc, &s, NULL), 0);
	u = J("{'department':'Sales'}");
	assert_int_equal(xts_scope_filter_eval(s, u, &in, &reason), 0);
	assert_true(in);
	json_decref(u);
	u = J("{'department':'HR'}");
	assert_int_equal(xts_scope_filter_eval(s, u, &in, &reason), 0);
	assert_false(in);
	assert_non_null(strstr(reason, "sales"));
	assert_int_equal(xts_scope_filter_eval_input(s, u, &in, NULL), 0);
	assert_true(in); /* no input filter */
	json_decref(u);
	assert_int_equal(xts_scope_filter_eval(s, NULL, &in, NULL), XTS_EINVAL);
	xts_schema_free(s);
	json_decref(doc);
}

/* Allocation failure anywhere while compiling (PCRE2 included) is ENOMEM. */
static void
test_alloc_failure(void **state)
{
	json_t *j = J("{'groups':[{'name':'g','clauses':[{'operatorName':'REGEX MATCH',"
		      "'sourceOperandName':'mail','targetOperand':{'values':['^[a-z]+@contoso\\\\.com$']}},"
		      "{'operatorName':'Greater_Than','sourceOperandName':'n','targetOperand':{'values':['3']}}]}],"
		      "'inputFilterGroups':[{'clauses':[{'operatorName':'IS NULL','sourceOperandName':'x'}]}]}");
	json_t *u = J("{'mail':'ann@contoso.com','n':4}");
	unsigned long n;
	int ok = 0, r, in = 0;

	(void)state;
	for (n = 1; n < 1000 && !ok; n++) {
		struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
		struct xts_filter *f = NULL;

		xts_mem_fail_after(n, 1);
		r = xts_filter_compile(j, "$", &f, &probs);
		xts_mem_fail_after(0, 0);
		if (r == 0) {
			ok = 1;
			assert_int_equal(xts_filter_eval(f, u, &in, NULL), 0);
			assert_true(in);
		} else {
			assert_int_equal(r, XTS_ENOMEM);
			assert_null(f);
		}
		xts_filter_free(f);
		xts_schema_problems_free(&probs);
	}
	assert_true(ok);
	assert_true(n > 10);
	json_decref(u);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equals),
		cmocka_unit_test(test_booleans_and_null),
		cmocka_unit_test(test_regex),
		cmocka_unit_test(test_string_ops),
		cmocka_unit_test(test_numeric_ops),
		cmocka_unit_test(test_spellings),
		cmocka_unit_test(test_multivalued),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_compile_problems),
		cmocka_unit_test(test_regex_limit),
		cmocka_unit_test(test_schema_wrappers),
		cmocka_unit_test(test_alloc_failure),
	};

	xts_mem_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
