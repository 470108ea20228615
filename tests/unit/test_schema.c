/* SPDX-License-Identifier: MIT */
/* Unit tests for the synchronizationSchema loader: the built-in schema, an
 * exported Entra schema with unknown fields, every validation problem with
 * its JSON path, the fingerprint, and allocation failure. Filters and
 * mapping evaluation have their own tests (test_filter.c, test_mapping.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "err.h"
#include "mem.h"
#include "schema.h"
#include "scope_filter.h"

/* JSON from a string written with ' instead of " (readable in C). */
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
	j = json_loads(d, 0, &e);
	if (j == NULL)
		fail_msg("bad test JSON: %s: %s", e.text, d);
	xts_free(d);
	return j;
}

#define LINK "{'targetAttributeName':'alternativeSecurityIds','matchingPriority':1," \
	     "'source':{'type':'Function','expression':'AltSecIdFromNetId([netId])'}}"
#define DN "{'targetAttributeName':'displayName','source':{'type':'Attribute','name':'displayName'}}"

/* A minimal valid document with the given attributeMappings and scope. */
static json_t *
doc_with(const char *mappings, const char *scope)
{
	char buf[8192];

	snprintf(buf, sizeof(buf),
		 "{'synchronizationRules':[{'objectMappings':[{'enabled':true,'sourceObjectName':'User',"
		 "'targetObjectName':'User','attributeMappings':[%s],'scope':%s}]}]}",
		 mappings, scope ? scope : "null");
	return J(buf);
}

#define AM "$.synchronizationRules[0].objectMappings[0].attributeMappings"

/* Load doc, expect failure with a problem at path whose message contains msg. */
static void
expect_problem(json_t *doc, const char *path, const char *msg)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = (struct xts_schema *)1;
	size_t i;
	int found = 0;

	assert_int_equal(xts_schema_load_json(doc, &s, &probs), XTS_ESCHEMA);
	assert_null(s);
	for (i = 0; i < probs.count; i++)
		if (strcmp(probs.items[i].path, path) == 0 && strstr(probs.items[i].message, msg) != NULL)
			found = 1;
	if (!found) {
		for (i = 0; i < probs.count; i++)
			print_message("  problem: %s: %s\n", probs.items[i].path, probs.items[i].message);
		fail_msg("expected a problem at %s containing \"%s\"", path, msg);
	}
	xts_schema_problems_free(&probs);
	json_decref(doc);
}

static void
test_builtin(void **state)
{
	struct xts_schema *s = NULL;
	const struct xts_schema_mapping *m;
	const struct xts_schema_mapping *match[4];
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	json_t *doc;

	(void)state;
	assert_int_equal(xts_schema_builtin(&s), 0);
	assert_non_null(s);
	/* The builtin text itself also loads with zero problems. */
	doc = json_loads(xts_schema_builtin_text(), 0, NULL);
	assert_non_null(doc);
	{
		struct xts_schema *s2 = NULL;
		assert_int_equal(xts_schema_load_json(doc, &s2, &probs), 0);
		assert_int_equal(probs.count, 0);
		xts_schema_free(s2);
	}
	json_decref(doc);

	assert_int_equal(xts_schema_mapping_count(s), 25);
	m = xts_schema_link_mapping(s);
	assert_non_null(m);
	assert_string_equal(m->target, "alternativeSecurityIds");
	assert_int_equal(m->matching_priority, 1);
	assert_true(m->is_link);
	assert_string_equal(xts_schema_link_source_attr(s), "netId");
	/* The link is the only matching mapping; xts_schema_matching excludes it. */
	assert_int_equal(xts_schema_matching(s, match, 4), 0);

	m = xts_schema_mapping_find(s, "usertype");
	assert_non_null(m);
	assert_int_equal(m->source_type, XTS_SOURCE_CONSTANT);
	assert_string_equal(m->constant, "Member");
	assert_int_equal(m->flow_type, XTS_FLOWTYPE_OBJECT_ADD_ONLY);
	m = xts_schema_mapping_find(s, "showInAddressList");
	assert_non_null(m);
	assert_string_equal(m->constant, "true");
	m = xts_schema_mapping_find(s, "IsSoftDeleted");
	assert_non_null(m);
	assert_true(m->is_soft_delete);
	m = xts_schema_mapping_find(s, "manager");
	assert_non_null(m);
	assert_true(m->is_reference);
	m = xts_schema_mapping_find(s, "displayName");
	assert_non_null(m);
	assert_int_equal(m->source_type, XTS_SOURCE_ATTRIBUTE);
	assert_string_equal(m->source_attr, "displayName");
	assert_int_equal(m->flow_behavior, XTS_FLOW_WHEN_CHANGED);
	assert_null(xts_schema_mapping_find(s, "userPrincipalName")); /* set by the invitation */
	assert_int_equal(xts_schema_filter_group_count(s), 0);
	xts_schema_free(s);
}

static void
collect(const char *name, void *arg)
{
	json_t *arr = arg;

	json_array_append_new(arr, json_string(name));
}

static int
arr_has(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

static void
test_entra_export(void **state)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	const struct xts_schema_mapping *m;
	const char *root = getenv("XTS_SOURCE_ROOT");
	char path[4096];
	json_t *attrs;

	(void)state;
	assert_non_null(root);
	snprintf(path, sizeof(path), "%s/tests/unit/data/entra-export-schema.json", root);
	assert_int_equal(xts_schema_load_file(path, &s, &probs), 0);
	assert_int_equal(probs.count, 0);
	assert_int_equal(xts_schema_mapping_count(s), 7);
	assert_int_equal(xts_schema_filter_group_count(s), 1);
	m = xts_schema_mapping_find(s, "displayName");
	assert_int_equal(m->source_type, XTS_SOURCE_FUNCTION);
	assert_non_null(m->expr);
	assert_string_equal(m->source_text, "Join(\" \", [givenName], [surname])");
	assert_null(m->default_value); /* "" means none */
	m = xts_schema_mapping_find(s, "manager");
	assert_true(m->export_missing_references);
	assert_string_equal(xts_schema_link_source_attr(s), "netId");

	attrs = json_array();
	xts_schema_foreach_source_attr(s, collect, attrs);
	/* From Attribute mappings, expressions, the link and the filter; once each. */
	assert_true(arr_has(attrs, "netId"));
	assert_true(arr_has(attrs, "givenName"));
	assert_true(arr_has(attrs, "surname"));
	assert_true(arr_has(attrs, "accountEnabled"));
	assert_true(arr_has(attrs, "department"));
	assert_true(arr_has(attrs, "mail"));
	assert_false(arr_has(attrs, "displayName"));
	assert_int_equal(json_array_size(attrs), 8); /* + IsSoftDeleted, manager */
	json_decref(attrs);
	xts_schema_free(s);
}

static void
test_problems(void **state)
{
	(void)state;
	expect_problem(J("[1]"), "$", "expected a synchronizationSchema object");
	expect_problem(J("{'version':'v1'}"), "$", "missing \"synchronizationRules\"");
	expect_problem(J("{'synchronizationRules':{}}"), "$.synchronizationRules", "expected an array");
	expect_problem(J("{'synchronizationRules':[{'objectMappings':[{'enabled':false,"
			 "'sourceObjectName':'User','targetObjectName':'User','attributeMappings':[]}]}]}"),
		       "$.synchronizationRules", "no enabled objectMapping");
	expect_problem(doc_with(LINK ",{'source':{'type':'Attribute','name':'x'}}", NULL),
		       AM "[1].targetAttributeName", "missing targetAttributeName");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','source':{'type':'Function',"
			       "'expression':'NoSuchFunction([a])'}}", NULL),
		       AM "[1].source.expression", "column");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','source':{'type':'Function',"
			       "'expression':'Left([a])'}}", NULL),
		       AM "[1].source.expression", "column");
	/* functions-for-customizing-application-data.md: SelectUniqueValue
	 * "cannot be used with other provisioning applications" */
	expect_problem(doc_with(LINK ",{'targetAttributeName':'mailNickname','source':{'type':'Function',"
			       "'expression':' selectUniqueValue ([a], [b])'}}", NULL),
		       AM "[1].source.expression", "It cannot be used with other provisioning applications");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','source':{'type':'Magic','name':'a'}}", NULL),
		       AM "[1].source.type", "unknown source type \"Magic\"");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x'}", NULL), AM "[1].source",
		       "missing \"source\" (a mapping of type None needs a defaultValue)");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','source':null,'defaultValue':''}", NULL),
		       AM "[1].source", "missing \"source\"");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'mail','matchingPriority':1,"
			       "'source':{'type':'Attribute','name':'mail'}}", NULL),
		       AM "[1].matchingPriority", "matchingPriority 1 is also used by attributeMappings[0]");
	expect_problem(doc_with(DN, NULL), AM, "no matching attribute");
	expect_problem(doc_with(LINK "," DN "," DN, NULL), AM "[2].targetAttributeName",
		       "mapped twice");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','flowBehavior':5,"
			       "'source':{'type':'Attribute','name':'a'}}", NULL),
		       AM "[1].flowBehavior", "expected a string, found an integer");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','flowBehavior':'Sometimes',"
			       "'source':{'type':'Attribute','name':'a'}}", NULL),
		       AM "[1].flowBehavior", "unknown flowBehavior");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','flowType':'Never',"
			       "'source':{'type':'Attribute','name':'a'}}", NULL),
		       AM "[1].flowType", "unknown flowType");
	expect_problem(doc_with(LINK ",{'targetAttributeName':'x','matchingPriority':'2',"
			       "'source':{'type':'Attribute','name':'a'}}", NULL),
		       AM "[1].matchingPriority", "expected an integer");
	expect_problem(doc_with(LINK, "{'groups':[{'name':'g','clauses':[{'operatorName':'REGEX MATCH',"
				      "'sourceOperandName':'upn','targetOperand':{'values':['(abc']}}]}]}"),
		       "$.synchronizationRules[0].objectMappings[0].scope.groups[0].clauses[0].targetOperand.values[0]",
		       "bad regular expression");
	expect_problem(doc_with(LINK, "{'groups':[{'name':'g','clauses':[{'operatorName':'LIKE',"
				      "'sourceOperandName':'upn','targetOperand':{'values':['a']}}]}]}"),
		       "$.synchronizationRules[0].objectMappings[0].scope.groups[0].clauses[0].operatorName",
		       "unknown operator \"LIKE\"");
	expect_problem(J("{'synchronizationRules':[{'objectMappings':[{'sourceObjectName':'User',"
			 "'targetObjectName':'User','attributeMappings':[" LINK "]},{'sourceObjectName':'User',"
			 "'targetObjectName':'User','attributeMappings':[" LINK "]}]}]}"),
		       "$.synchronizationRules[0].objectMappings[1]", "a second enabled User to User");
}

/* Two documented forms of an attributeMapping: the portal's mapping type
 * "None" ("the target attribute is left unmodified. However, if the target
 * attribute is ever empty, it populates with the default value",
 * customize-application-attributes.md), exported as "source": null with a
 * defaultValue (synchronization-objectmapping.md's example); and a source
 * without "type" ("Default is Attribute", synchronization-
 * attributemappingsource.md). */
static void
test_none_and_default_type(void **state)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	const struct xts_schema_mapping *m;
	json_t *doc = doc_with(LINK ",{'targetAttributeName':'preferredLanguage','defaultValue':'en-US',"
			       "'source':null,'flowType':'Always'},{'targetAttributeName':'mail',"
			       "'source':{'name':'mail','expression':'[mail]'}}", NULL);

	(void)state;
	assert_int_equal(xts_schema_load_json(doc, &s, &probs), 0);
	assert_int_equal(probs.count, 0);
	m = xts_schema_mapping_find(s, "preferredLanguage");
	assert_non_null(m);
	assert_int_equal(m->source_type, XTS_SOURCE_CONSTANT);
	assert_int_equal(m->flow_type, XTS_FLOWTYPE_ATTRIBUTE_ADD_ONLY);
	assert_string_equal(m->constant, "en-US");
	m = xts_schema_mapping_find(s, "mail");
	assert_non_null(m);
	assert_int_equal(m->source_type, XTS_SOURCE_ATTRIBUTE);
	assert_string_equal(m->source_attr, "mail");
	xts_schema_free(s);
	json_decref(doc);
}

static void
test_every_problem_reported(void **state)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	json_t *doc;

	(void)state;
	doc = doc_with(LINK ",{'source':{'type':'Attribute','name':'a'}}"
			    ",{'targetAttributeName':'y','flowType':'Never','source':{'type':'Attribute','name':'a'}}"
			    ",{'targetAttributeName':'z','source':{'type':'Function','expression':'Nope()'}}",
		       "{'groups':[{'clauses':[{'operatorName':'LIKE','sourceOperandName':'a',"
		       "'targetOperand':{'values':['a']}}]}]}");
	assert_int_equal(xts_schema_load_json(doc, &s, &probs), XTS_ESCHEMA);
	assert_null(s);
	assert_int_equal(probs.count, 4);
	assert_string_equal(probs.items[0].path, AM "[1].targetAttributeName");
	assert_string_equal(probs.items[1].path, AM "[2].flowType");
	assert_string_equal(probs.items[2].path, AM "[3].source.expression");
	assert_string_equal(probs.items[3].path,
			    "$.synchronizationRules[0].objectMappings[0].scope.groups[0].clauses[0].operatorName");
	xts_schema_problems_free(&probs);
	json_decref(doc);
}

static void
test_load_file_errors(void **state)
{
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	char path[] = "/tmp/xts-test-schema-XXXXXX";
	FILE *f;
	int fd;

	(void)state;
	assert_int_equal(xts_schema_load_file("/nonexistent/schema.json", &s, &probs), XTS_ENOENT);
	assert_int_equal(probs.count, 1);
	assert_non_null(strstr(probs.items[0].message, "cannot open"));
	xts_schema_problems_free(&probs);

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("{\n  \"synchronizationRules\": [\n    oops\n]}\n", f);
	fclose(f);
	assert_int_equal(xts_schema_load_file(path, &s, &probs), XTS_ESCHEMA);
	assert_null(s);
	assert_int_equal(probs.count, 1);
	assert_string_equal(probs.items[0].path, "$");
	assert_non_null(strstr(probs.items[0].message, "line 3"));
	xts_schema_problems_free(&probs);
	unlink(path);
}

static void
fingerprint_of(json_t *doc, char out[65])
{
	struct xts_schema *s = NULL;

	assert_int_equal(xts_schema_load_json(doc, &s, NULL), 0);
	assert_int_equal(xts_schema_fingerprint(s, out), 0);
	assert_int_equal(strlen(out), 64);
	xts_schema_free(s);
	json_decref(doc);
}

static void
test_fingerprint(void **state)
{
	char a[65], b[65], c[65], d[65], e[65];
	const char *scope = "{'groups':[{'name':'g','clauses':[{'operatorName':'EQUALS',"
			    "'sourceOperandName':'department','targetOperand':{'values':['Sales']}}]}]}";

	(void)state;
	fingerprint_of(doc_with(LINK "," DN, scope), a);
	/* Same rules: keys reordered, mappings reordered, unknown fields added. */
	fingerprint_of(J("{'version':'x','synchronizationRules':[{'objectMappings':[{'scope':"
			 "{'groups':[{'clauses':[{'targetOperand':{'values':['Sales']},'sourceOperandName':"
			 "'department','operatorName':'EQUALS'}],'name':'g'}]},"
			 "'attributeMappings':[{'source':{'name':'displayName','type':'Attribute'},"
			 "'targetAttributeName':'displayName','unknown':1}," LINK "],"
			 "'targetObjectName':'User','sourceObjectName':'User','enabled':true}]}]}"), b);
	assert_string_equal(a, b);
	/* A changed expression, flow type or filter value changes it. */
	fingerprint_of(doc_with(LINK ",{'targetAttributeName':'displayName','source':{'type':'Function',"
				"'expression':'ToUpper([displayName])'}}", scope), c);
	assert_string_not_equal(a, c);
	fingerprint_of(doc_with(LINK ",{'targetAttributeName':'displayName','flowType':'ObjectAddOnly',"
				"'source':{'type':'Attribute','name':'displayName'}}", scope), d);
	assert_string_not_equal(a, d);
	fingerprint_of(doc_with(LINK "," DN, "{'groups':[{'name':'g','clauses':[{'operatorName':'EQUALS',"
				"'sourceOperandName':'department','targetOperand':{'values':['sales']}}]}]}"), e);
	assert_string_not_equal(a, e);
	assert_string_not_equal(c, d);
}

/* Every allocation failure is reported as XTS_ENOMEM, never a crash or leak. */
static void
test_alloc_failure(void **state)
{
	const char *root = getenv("XTS_SOURCE_ROOT");
	char path[4096];
	json_t *doc;
	unsigned long n;
	int ok = 0, r;

	(void)state;
	snprintf(path, sizeof(path), "%s/tests/unit/data/entra-export-schema.json", root);
	doc = json_load_file(path, 0, NULL);
	assert_non_null(doc);
	for (n = 1; n < 5000 && !ok; n++) {
		struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
		struct xts_schema *s = NULL;
		char fp[65];

		xts_mem_fail_after(n, 1);
		r = xts_schema_load_json(doc, &s, &probs);
		if (r == 0)
			r = xts_schema_fingerprint(s, fp);
		xts_mem_fail_after(0, 0);
		if (r != 0)
			assert_int_equal(r, XTS_ENOMEM);
		else
			ok = 1;
		xts_schema_free(s);
		xts_schema_problems_free(&probs);
	}
	assert_true(ok);
	assert_true(n > 20); /* the loop really injected failures */
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin),
		cmocka_unit_test(test_entra_export),
		cmocka_unit_test(test_problems),
		cmocka_unit_test(test_none_and_default_type),
		cmocka_unit_test(test_every_problem_reported),
		cmocka_unit_test(test_load_file_errors),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_alloc_failure),
	};

	xts_mem_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
