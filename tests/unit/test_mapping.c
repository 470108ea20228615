/* SPDX-License-Identifier: MIT */
/* Unit tests for mapping apply (create vs update, ObjectAddOnly, defaultValue
 * only on create, IgnoreFlowIfNullOrEmpty, Redact, type coercion, the link
 * skipped) and diff (FlowWhenChanged, FlowAlways, the add-only flow types).
 * Uses the real expression compiler; no mocks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "mapping.h"
#include "mem.h"
#include "schema.h"

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

/* Compare v with the JSON text want (single-quoted), printing both on mismatch. */
static void
assert_json(const json_t *v, const char *want)
{
	json_t *w = J(want);

	if (!json_equal((json_t *)v, w)) {
		char *a = json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
		char *b = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
		print_message("got:  %s\nwant: %s\n", a, b);
		xts_free(a);
		xts_free(b);
		json_decref(w);
		fail();
	}
	json_decref(w);
}

static const char *const mappings =
	"{'targetAttributeName':'alternativeSecurityIds','matchingPriority':1,"
	"'source':{'type':'Function','expression':'AltSecIdFromNetId([netId])'}},"
	"{'targetAttributeName':'displayName','source':{'type':'Attribute','name':'displayName'}},"
	"{'targetAttributeName':'userType','flowType':'ObjectAddOnly','source':{'type':'Constant',"
	"'expression':'\\'Member\\'','name':'Member'}},"
	"{'targetAttributeName':'showInAddressList','source':{'type':'Constant','name':'true'}},"
	"{'targetAttributeName':'department','defaultValue':'Unassigned','source':{'type':'Attribute','name':'department'}},"
	"{'targetAttributeName':'mail','source':{'type':'Function','expression':'IgnoreFlowIfNullOrEmpty([mail])'}},"
	"{'targetAttributeName':'employeeId','flowType':'AttributeAddOnly','source':{'type':'Function',"
	"'expression':'Redact([employeeId])'}},"
	"{'targetAttributeName':'city','flowBehavior':'FlowAlways','source':{'type':'Attribute','name':'city'}},"
	"{'targetAttributeName':'businessPhones','flowType':'ValueAddOnly','source':{'type':'Attribute','name':'businessPhones'}},"
	"{'targetAttributeName':'jobTitle','source':{'type':'Function','expression':'Join(\\' \\', [givenName], [surname])'}},"
	"{'targetAttributeName':'IsSoftDeleted','source':{'type':'Attribute','name':'IsSoftDeleted'}},"
	"{'targetAttributeName':'companyName','source':{'type':'Function','expression':'CDate([companyName])'}}";

static struct xts_schema *
load_with(const char *maps)
{
	char buf[8192];
	struct xts_schema_problems probs = XTS_SCHEMA_PROBLEMS_INIT;
	struct xts_schema *s = NULL;
	json_t *doc;
	size_t i;

	snprintf(buf, sizeof(buf),
		 "{'synchronizationRules':[{'objectMappings':[{'sourceObjectName':'User',"
		 "'targetObjectName':'User','attributeMappings':[%s]}]}]}", maps);
	doc = J(buf);
	if (xts_schema_load_json(doc, &s, &probs) != 0) {
		for (i = 0; i < probs.count; i++)
			print_message("problem: %s: %s\n", probs.items[i].path, probs.items[i].message);
		fail();
	}
	xts_schema_problems_free(&probs);
	json_decref(doc);
	return s;
}

static struct xts_schema *
load(void)
{
	return load_with(mappings);
}

static void
test_apply_create_update(void **state)
{
	struct xts_schema *s = load();
	struct xts_expr_error err;
	json_t *user, *out = NULL, *red = NULL;

	(void)state;
	user = J("{'displayName':'Ann Lee','department':'','mail':'ann@contoso.com','employeeId':'E1',"
		 "'city':'Oslo','businessPhones':['+47 1'],'givenName':'Ann','surname':'Lee','netId':'1003',"
		 "'IsSoftDeleted':false,'companyName':null}");
	assert_int_equal(xts_mapping_apply(s, user, 1, &out, &red, &err), 0);
	/* create: ObjectAddOnly included, default for the empty department,
	 * constant "true" coerced to a boolean, link and IsSoftDeleted skipped. */
	assert_json(out, "{'displayName':'Ann Lee','userType':'Member','showInAddressList':true,"
			 "'department':'Unassigned','mail':'ann@contoso.com','employeeId':'E1','city':'Oslo',"
			 "'businessPhones':['+47 1'],'jobTitle':'Ann Lee','companyName':null}");
	assert_json(red, "['employeeId']");
	json_decref(out);
	json_decref(red);

	/* update: no ObjectAddOnly, no default value (department stays ""). */
	assert_int_equal(xts_mapping_apply(s, user, 0, &out, &red, &err), 0);
	assert_null(json_object_get(out, "userType"));
	assert_json(json_object_get(out, "department"), "''");
	assert_json(json_object_get(out, "showInAddressList"), "true");
	json_decref(out);
	json_decref(red);

	/* IgnoreFlowIfNullOrEmpty: mail omitted, not null. */
	json_object_set_new(user, "mail", json_null());
	assert_int_equal(xts_mapping_apply(s, user, 1, &out, NULL, &err), 0);
	assert_null(json_object_get(out, "mail"));
	assert_non_null(json_object_get(out, "displayName"));
	json_decref(out);
	json_decref(user);
	xts_schema_free(s);
}

static void
test_apply_errors(void **state)
{
	struct xts_schema *s = load();
	struct xts_expr_error err;
	json_t *user, *out = (json_t *)1, *red = (json_t *)1;

	(void)state;
	memset(&err, 0, sizeof(err));
	/* CDate on a non-date is a runtime error: reported with the target name. */
	user = J("{'companyName':'not a date'}");
	assert_int_equal(xts_mapping_apply(s, user, 1, &out, &red, &err), XTS_EEXPR);
	assert_null(out);
	assert_null(red);
	assert_int_equal(strncmp(err.message, "companyName: ", 13), 0);
	json_decref(user);
	assert_int_equal(xts_mapping_apply(s, NULL, 1, &out, &red, &err), XTS_EINVAL);
	xts_schema_free(s);
}

static void
test_diff(void **state)
{
	struct xts_schema *s = load();
	json_t *desired, *last, *ch = NULL;

	(void)state;
	desired = J("{'displayName':'Ann Lee','department':'Sales','employeeId':'E2','city':'Oslo',"
		    "'businessPhones':['+47 2'],'showInAddressList':true}");
	last = J("{'displayName':'Ann Lee','department':'Sales','employeeId':'E1','city':'Oslo',"
		 "'businessPhones':['+47 1'],'showInAddressList':true,'userType':'Member'}");

	/* employeeId is AttributeAddOnly and already has a value: not sent.
	 * businessPhones ValueAddOnly: union, nothing removed.
	 * city is FlowAlways: rides along with any update. */
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{'businessPhones':['+47 1','+47 2'],'city':'Oslo'}");
	json_decref(ch);

	/* Nothing changed: empty diff, even with a FlowAlways attribute. */
	json_object_set_new(desired, "businessPhones", J("['+47 1']"));
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{}");
	json_decref(ch);

	/* FlowWhenChanged change; null and absent are equal; "" equals null. */
	json_object_set_new(desired, "displayName", json_string("Ann Berg"));
	json_object_set_new(desired, "jobTitle", json_null());
	json_object_set_new(desired, "department", json_string(""));
	json_object_set_new(last, "department", json_null());
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{'displayName':'Ann Berg','city':'Oslo'}");
	json_decref(ch);

	/* A value removed in the source (null or "") is not written: Entra's
	 * provisioning "doesn't support provisioning null values"
	 * (customize-application-attributes.md); the target keeps its value,
	 * with reassert too. */
	json_object_set_new(desired, "displayName", json_string("Ann Lee"));
	json_object_set_new(last, "displayName", json_string("Ann Lee"));
	json_object_set_new(last, "jobTitle", json_string("Boss"));
	json_object_set_new(last, "department", json_string("Sales"));
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{}"); /* no change: FlowAlways city does not ride alone */
	json_decref(ch);
	assert_int_equal(xts_mapping_diff_ex(s, desired, last, 1, &ch), 0);
	assert_null(json_object_get(ch, "jobTitle"));
	assert_null(json_object_get(ch, "department"));
	json_decref(ch);
	json_object_set_new(last, "department", json_null());

	/* ObjectAddOnly never on update; AttributeAddOnly flows when the target had nothing. */
	json_object_set_new(desired, "userType", json_string("Guest"));
	json_object_del(last, "employeeId");
	json_object_del(last, "jobTitle");
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{'employeeId':'E2','city':'Oslo'}");
	json_decref(ch);

	/* Nothing exported before: everything with a value. */
	assert_int_equal(xts_mapping_diff(s, desired, NULL, &ch), 0);
	assert_null(json_object_get(ch, "userType"));
	assert_json(json_object_get(ch, "city"), "'Oslo'");
	assert_json(json_object_get(ch, "employeeId"), "'E2'");
	json_decref(ch);

	/* A FlowAlways attribute that changed is sent by itself, too. */
	json_object_set_new(desired, "city", json_string("Bergen"));
	json_object_set_new(desired, "employeeId", json_string("E1"));
	json_object_set_new(last, "employeeId", json_string("E1"));
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{'city':'Bergen'}");
	json_decref(ch);

	/* reassert (the user changed in the source): nothing differs, yet
	 * every value the source has that flows on updates is sent, as if
	 * FlowAlways; not the empty department or null jobTitle, not
	 * ObjectAddOnly userType, AttributeAddOnly employeeId (the target has
	 * one) or the ValueAddOnly union that adds nothing. Without reassert:
	 * nothing. */
	json_object_set_new(last, "city", json_string("Bergen"));
	assert_int_equal(xts_mapping_diff(s, desired, last, &ch), 0);
	assert_json(ch, "{}");
	json_decref(ch);
	assert_int_equal(xts_mapping_diff_ex(s, desired, last, 1, &ch), 0);
	assert_json(ch, "{'displayName':'Ann Lee','showInAddressList':true,'city':'Bergen'}");
	json_decref(ch);
	/* and with a change, the change plus the same riders */
	json_object_set_new(desired, "jobTitle", json_string("Boss"));
	assert_int_equal(xts_mapping_diff_ex(s, desired, last, 1, &ch), 0);
	assert_json(ch, "{'jobTitle':'Boss','displayName':'Ann Lee','showInAddressList':true,'city':'Bergen'}");
	json_decref(ch);

	json_decref(desired);
	json_decref(last);
	xts_schema_free(s);
}

static void
test_builtin_apply(void **state)
{
	struct xts_schema *s = NULL;
	struct xts_expr_error err;
	json_t *user, *out = NULL;

	(void)state;
	assert_int_equal(xts_schema_builtin(&s), 0);
	user = J("{'id':'u1','displayName':'Ann','accountEnabled':true,'businessPhones':[],"
		 "'manager':'m-1','netId':'10032000ABCDEF','userPrincipalName':'ann@contoso.com'}");
	assert_int_equal(xts_mapping_apply(s, user, 1, &out, NULL, &err), 0);
	assert_json(json_object_get(out, "userType"), "'Member'");
	assert_json(json_object_get(out, "showInAddressList"), "true");
	assert_json(json_object_get(out, "accountEnabled"), "true");
	assert_json(json_object_get(out, "manager"), "'m-1'");
	assert_null(json_object_get(out, "alternativeSecurityIds"));
	assert_null(json_object_get(out, "IsSoftDeleted"));
	assert_null(json_object_get(out, "userPrincipalName"));
	json_decref(out);
	json_decref(user);
	xts_schema_free(s);
}

/* The portal's mapping type "None" ("source": null with a defaultValue):
 * "the target attribute is left unmodified. However, if the target
 * attribute is ever empty, it populates with the default value"
 * (customize-application-attributes.md). */
static void
test_none_mapping(void **state)
{
	struct xts_schema *s = load_with("{'targetAttributeName':'alternativeSecurityIds','matchingPriority':1,"
					 "'source':{'type':'Function','expression':'AltSecIdFromNetId([netId])'}},"
					 "{'targetAttributeName':'preferredLanguage','defaultValue':'en-US',"
					 "'source':null}");
	struct xts_expr_error err;
	json_t *user = J("{'preferredLanguage':'de-DE'}"), *out = NULL, *ch = NULL, *last;

	(void)state;
	/* created with the default, whatever the source holds */
	assert_int_equal(xts_mapping_apply(s, user, 1, &out, NULL, &err), 0);
	assert_json(json_object_get(out, "preferredLanguage"), "'en-US'");
	/* left as it is in the target ... */
	last = J("{'preferredLanguage':'fr-FR'}");
	assert_int_equal(xts_mapping_diff_ex(s, out, last, 1, &ch), 0);
	assert_null(json_object_get(ch, "preferredLanguage"));
	json_decref(ch);
	json_decref(last);
	/* ... unless it is empty there */
	last = J("{'preferredLanguage':null}");
	assert_int_equal(xts_mapping_diff(s, out, last, &ch), 0);
	assert_json(ch, "{'preferredLanguage':'en-US'}");
	json_decref(ch);
	json_decref(last);
	json_decref(out);
	json_decref(user);
	xts_schema_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_create_update),
		cmocka_unit_test(test_apply_errors),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_builtin_apply),
		cmocka_unit_test(test_none_mapping),
	};

	xts_mem_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
