/* SPDX-License-Identifier: MIT */
/* Unit tests of the read phase's decisions (engine_plan.c through
 * eng_users_page) on a real store, without a network: the fast path for
 * users of an untouched job, and the cases it must not take (a link or an
 * open operation without a source_user row, as xtsyncctl restart leaves). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "engine_internal.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "members.h"
#include "tmpdir.h"

struct fx {
	char dir[64];
	struct xts_store *st;
	struct xts_engine e;
	struct eng_schema es;
	struct eng_tenant src, tgt;
	struct eng_cycle cy;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	if (xts_test_tmpdir(f->dir, sizeof(f->dir), "plan") != 0 || xts_store_open(f->dir, &f->st) != 0 ||
	    xts_schema_builtin(&f->es.s) != 0)
		return -1;
	f->es.refs = 1;
	f->src.tenant_id = (char *)"11111111-1111-4111-8111-111111111111";
	f->tgt.tenant_id = (char *)"22222222-2222-4222-8222-222222222222";
	f->e.o.store = f->st;
	f->cy.e = &f->e;
	f->cy.st = f->st;
	f->cy.sch = &f->es;
	f->cy.src = &f->src;
	f->cy.tgt = &f->tgt;
	f->cy.kind = XTS_CYCLE_INITIAL;
	f->cy.c.name = (char *)"j";
	f->cy.c.link_attr = (char *)"extension_2222222222224222822222222222abcd_xtsyncSourceLink";
	f->cy.c.notify = (char *)"";
	f->cy.c.scope = XTS_SCOPE_ALL;
	f->cy.c.deprovision = XTS_DEPROVISION_DISABLE;
	f->cy.changed = json_object();
	if (f->cy.changed == NULL || xts_store_job_ensure(f->st, "j") != 0 ||
	    xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INITIAL, xts_wall_ms(), &f->cy.id) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	xts_store_batch_abort(f->st, &f->cy.batch);
	eng_groups_drop(&f->cy);
	xts_free(f->cy.mev);
	json_decref(f->cy.changed);
	xts_store_close(f->st);
	xts_schema_free(f->es.s);
	if (xts_test_rmtree(f->dir) != 0)
		return -1;
	free(f);
	return 0;
}

static json_t *
entry(const char *id)
{
	char upn[64];

	snprintf(upn, sizeof(upn), "%s@contoso.example", id);
	return json_pack("{s:s,s:s,s:n,s:s,s:b,s:s,s:s,s:s}", "id", id, "userType", "Member",
			 "creationType", "userPrincipalName", upn, "accountEnabled", 1, "displayName", id,
			 "mail", upn, "department", "Sales");
}

/* Begin the users read as step_users does, then decide one page. */
static int
read_page(struct fx *f, const char *const *ids, size_t n)
{
	json_t *page = json_array();
	size_t i;
	int yes = 0, ret;

	assert_non_null(page);
	for (i = 0; i < n; i++)
		assert_int_equal(json_array_append_new(page, entry(ids[i])), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	ret = eng_users_page(&f->cy, page, 1);
	json_decref(page);
	return ret;
}

/* 1 when the user has an open op of kind. */
static int
open_op(struct fx *f, const char *id, int kind)
{
	struct xts_store_op_row r;
	int ret;

	memset(&r, 0, sizeof(r));
	ret = xts_store_op_find_open(f->st, "j", id, kind, &r);
	xts_store_op_row_clear(&r);
	assert_true(ret == 0 || ret == XTS_ENOENT);
	return ret == 0;
}

/* The open op of kind for id, its payload in *payload (a new reference). */
static json_t *
op_payload(struct fx *f, const char *id, int kind)
{
	struct xts_store_op_row r;
	json_t *p;

	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_op_find_open(f->st, "j", id, kind, &r), 0);
	p = json_incref(r.o.payload);
	xts_store_op_row_clear(&r);
	return p;
}

/* What id's open create writes when it is sent: its op carries no values
 * (a create maps them at dispatch, eng_create_values, from the stored
 * row). A new reference. */
static json_t *
create_values(struct fx *f, const char *id)
{
	struct xts_store_user_row r;
	struct xts_expr_error xe;
	json_t *p = op_payload(f, id, XTS_OP_CREATE), *v = NULL, *red = NULL;

	assert_null(json_object_get(p, "attrs"));
	json_decref(p);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", id, &r), 0);
	assert_int_equal(eng_create_values(f->es.s, r.u.attrs, &v, &red, &xe), 0);
	xts_store_user_row_clear(&r);
	json_decref(red);
	assert_non_null(v);
	return v;
}

/* Decide an incremental page of one entry naming sid's manager. */
static void
page_manager(struct fx *f, const char *sid, const char *mgr)
{
	json_t *page = json_pack("[{s:s,s:[{s:s}]}]", "id", sid, "manager@delta", "id", mgr);

	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
}

static long long
ops_of(struct fx *f, int state)
{
	long long n = -1;

	assert_int_equal(xts_store_op_count(f->st, "j", state, &n), 0);
	return n;
}

/* New users of an untouched job: one create each, also for a user the
 * delta round returns twice. */
static void
test_untouched_job(void **state)
{
	struct fx *f = *state;
	const char *const ids[] = { "u-1", "u-2", "u-1" };
	int yes = 0;

	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	assert_true(yes);
	assert_int_equal(read_page(f, ids, 3), 0);
	assert_true(open_op(f, "u-1", XTS_OP_CREATE));
	assert_true(open_op(f, "u-2", XTS_OP_CREATE));
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 2);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	assert_false(yes);
}

/* A new user's entry becomes its stored attributes: manager@delta as
 * "manager", annotations dropped; the manager travels in the create's
 * payload (its op is planned when the create succeeds): one op row. */
static void
test_entry_attrs(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	json_t *page = json_array(), *e = entry("u-6"), *m, *p;
	const char *key;
	json_t *v;
	int yes = 0;

	assert_non_null(page);
	assert_non_null(e);
	m = json_pack("[{s:s,s:s}]", "@odata.type", "#microsoft.graph.user", "id", "m-1");
	assert_non_null(m);
	assert_int_equal(json_object_set_new(e, "manager@delta", m), 0);
	assert_int_equal(json_object_set_new(e, "@odata.etag", json_string("W/1")), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", "u-6", &r), 0);
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, "manager")), "m-1");
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, "department")), "Sales");
	json_object_foreach(r.u.attrs, key, v)
		assert_null(strchr(key, '@'));
	xts_store_user_row_clear(&r);
	assert_true(open_op(f, "u-6", XTS_OP_CREATE));
	assert_false(open_op(f, "u-6", XTS_OP_MANAGER));
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 1);
	p = op_payload(f, "u-6", XTS_OP_CREATE);
	assert_string_equal(json_string_value(json_object_get(p, "manager")), "m-1");
	json_decref(p);
}

/* A create's payload is JSON text the plan writes itself (not jansson's):
 * a display name that needs escaping comes back as it was; without a mail
 * the invited address is the UPN; a mail of "" counts as none; no manager,
 * no "manager" key. Then a second round replaces the payload of the open
 * create in place (the text path of op_put_ex's reuse). */
static void
test_create_payload_text(void **state)
{
	struct fx *f = *state;
	static const char name[] = "Zo\xc3\xab \"Q\" back\\slash\nline\ttab\x01";
	json_t *page = json_array(), *e = entry("u-40"), *p;
	int yes = 0;

	assert_non_null(page);
	assert_non_null(e);
	assert_int_equal(json_object_set_new(e, "displayName", json_string(name)), 0);
	assert_int_equal(json_object_set_new(e, "mail", json_string("")), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	assert_int_equal(eng_users_page(&f->cy, page, 0), 0);
	json_decref(page);
	p = op_payload(f, "u-40", XTS_OP_CREATE);
	assert_non_null(p);
	assert_string_equal(json_string_value(json_object_get(p, "displayName")), name);
	assert_string_equal(json_string_value(json_object_get(p, "email")), "u-40@contoso.example");
	assert_null(json_object_get(p, "manager"));
	assert_int_equal(json_object_size(p), 2); /* no "invite": the mail is empty, email is the UPN */
	json_decref(p);
	/* a name too long for the plan's stack buffer: the same text, from the heap */
	{
		char longname[700];
		size_t i;

		for (i = 0; i + 1 < sizeof(longname); i++)
			longname[i] = "ab\"c\\"[i % 5];
		longname[sizeof(longname) - 1] = '\0';
		page = json_array();
		e = entry("u-41");
		assert_non_null(page);
		assert_non_null(e);
		assert_int_equal(json_object_set_new(e, "displayName", json_string(longname)), 0);
		assert_int_equal(json_array_append_new(page, e), 0);
		assert_int_equal(eng_users_page(&f->cy, page, 0), 0);
		json_decref(page);
		p = op_payload(f, "u-41", XTS_OP_CREATE);
		assert_non_null(p);
		assert_string_equal(json_string_value(json_object_get(p, "displayName")), longname);
		json_decref(p);
	}
	/* the next round: a mail now, and no display name */
	page = json_pack("[{s:s,s:s,s:n,s:s,s:b,s:n,s:s}]", "id", "u-40", "userType", "Member",
			 "creationType", "userPrincipalName", "u-40@contoso.example", "accountEnabled", 1,
			 "displayName", "mail", "zoe@contoso.example");
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 2);
	p = op_payload(f, "u-40", XTS_OP_CREATE);
	assert_non_null(p);
	assert_true(json_is_null(json_object_get(p, "displayName")));
	assert_string_equal(json_string_value(json_object_get(p, "email")), "zoe@contoso.example");
	/* a mail that is not the UPN: invited at the UPN (its #EXT# prefix) */
	assert_string_equal(json_string_value(json_object_get(p, "invite")), "u-40@contoso.example");
	json_decref(p);
	p = op_payload(f, "u-41", XTS_OP_CREATE);
	assert_null(json_object_get(p, "invite")); /* mail == UPN: no second address */
	json_decref(p);
}

/* manager@delta entries marked "@removed" name no manager
 * (concepts/delta-query-overview.md): a new user gets "manager": null and a
 * create without one; a later round removing a planned manager drops it from
 * the create, and one that names a manager again puts it back. */
static void
test_manager_removed(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	json_t *page = json_array(), *e = entry("u-7"), *m, *p;
	int yes = 0;

	assert_non_null(page);
	assert_non_null(e);
	m = json_pack("[{s:s,s:{s:s}},{s:s}]", "id", "m-old", "@removed", "reason", "deleted", "id", "m-2");
	assert_non_null(m);
	assert_int_equal(json_object_set_new(e, "manager@delta", m), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	e = entry("u-8");
	m = json_pack("[{s:s,s:{s:s}}]", "id", "m-old", "@removed", "reason", "deleted");
	assert_non_null(e);
	assert_non_null(m);
	assert_int_equal(json_object_set_new(e, "manager@delta", m), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	assert_int_equal(eng_users_page(&f->cy, page, 0), 0);
	json_decref(page);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", "u-7", &r), 0);
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, "manager")), "m-2");
	xts_store_user_row_clear(&r);
	p = op_payload(f, "u-7", XTS_OP_CREATE);
	assert_string_equal(json_string_value(json_object_get(p, "manager")), "m-2");
	json_decref(p);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", "u-8", &r), 0);
	assert_true(json_is_null(json_object_get(r.u.attrs, "manager")));
	xts_store_user_row_clear(&r);
	p = op_payload(f, "u-8", XTS_OP_CREATE);
	assert_null(json_object_get(p, "manager"));
	json_decref(p);
	assert_false(open_op(f, "u-7", XTS_OP_MANAGER));
	assert_false(open_op(f, "u-8", XTS_OP_MANAGER));
	/* the next round: u-7's manager removed before it was written */
	page = json_pack("[{s:s,s:[{s:s,s:{s:s}}]}]", "id", "u-7", "manager@delta", "id", "m-2", "@removed",
			 "reason", "deleted");
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	assert_false(open_op(f, "u-7", XTS_OP_MANAGER));
	p = op_payload(f, "u-7", XTS_OP_CREATE);
	assert_null(json_object_get(p, "manager"));
	json_decref(p);
	/* and a manager again: back in the create */
	page = json_pack("[{s:s,s:[{s:s}]}]", "id", "u-7", "manager@delta", "id", "m-3");
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	p = op_payload(f, "u-7", XTS_OP_CREATE);
	assert_string_equal(json_string_value(json_object_get(p, "manager")), "m-3");
	json_decref(p);
	assert_false(open_op(f, "u-7", XTS_OP_MANAGER));
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 2);
}

/* A store from before the manager travelled in the create's payload holds
 * a separate manager op for a user without a link: the user's next plan
 * moves the manager into its create and cancels that op, so no second
 * manager op is planned when the create succeeds. */
static void
test_manager_op_superseded(void **state)
{
	struct fx *f = *state;
	const char *const ids[] = { "u-30" };
	json_t *p;

	assert_int_equal(read_page(f, ids, 1), 0);
	p = json_pack("{s:s}", "manager", "m-9");
	assert_non_null(p);
	assert_int_equal(xts_store_op_add(f->st, "j", "u-30", XTS_OP_MANAGER, p, XTS_OP_PLANNED, f->cy.id, NULL),
			 0);
	json_decref(p);
	assert_true(open_op(f, "u-30", XTS_OP_MANAGER));
	page_manager(f, "u-30", "m-9");
	assert_false(open_op(f, "u-30", XTS_OP_MANAGER));
	p = op_payload(f, "u-30", XTS_OP_CREATE);
	assert_string_equal(json_string_value(json_object_get(p, "manager")), "m-9");
	json_decref(p);
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 1);
}

static long long
memberships(struct fx *f, const char *member)
{
	long long n = -1;

	assert_int_equal(xts_test_member_groups(f->st, "j", member, &n), 0);
	return n;
}

/* Member events are written sorted, later: the end state is that of applying
 * them in order (add then remove, remove then add, across pages), other
 * object types are ignored, and nothing is written before the flush. */
static void
test_members_buffered(void **state)
{
	struct fx *f = *state;
	const char *user = "#microsoft.graph.user";
	const struct xts_member_event p1[] = {
		{ "g-1", "m-2", user, 0 }, { "g-1", "m-1", user, 0 }, { "g-2", "m-1", user, 0 },
		{ "g-1", "m-3", user, 0 }, { "g-1", "dev-1", "#microsoft.graph.device", 0 },
	};
	const struct xts_member_event p2[] = {
		{ "g-1", "m-3", user, 1 }, { "g-2", "m-1", user, 1 }, { "g-2", "m-1", user, 0 },
		{ "g-1", "m-2", user, 1 }, { "g-1", "m-2", user, 0 }, { "g-1", "m-2", user, 1 },
	};

	assert_int_equal(xts_store_member_add(f->st, "j", "g-9", "m-3"), 0);
	assert_int_equal(eng_groups_page(&f->cy, p1, 5, 0), 0);
	assert_int_equal(eng_groups_page(&f->cy, p2, 6, 1), 0);
	assert_int_equal(memberships(f, "m-1"), 0); /* not written yet */
	assert_int_equal(eng_groups_flush(&f->cy), 0);
	assert_int_equal(memberships(f, "m-1"), 2);
	assert_int_equal(memberships(f, "m-2"), 0);
	assert_int_equal(memberships(f, "m-3"), 1); /* g-9 only */
	assert_int_equal(memberships(f, "dev-1"), 0);
	assert_int_equal(eng_groups_flush(&f->cy), 0); /* nothing left */
}

/* xtsyncctl restart forgets source users and keeps links: a linked user
 * without a row is updated, never created again. */
static void
test_link_without_row(void **state)
{
	struct fx *f = *state;
	struct xts_store_link l = { .source_id = "u-3", .target_id = "t-3" };
	const char *const ids[] = { "u-3", "u-4" };
	int yes = 1;

	assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	assert_false(yes);
	assert_int_equal(read_page(f, ids, 2), 0);
	assert_false(open_op(f, "u-3", XTS_OP_CREATE));
	assert_true(open_op(f, "u-3", XTS_OP_UPDATE));
	assert_true(open_op(f, "u-4", XTS_OP_CREATE));
}

/* A create left by a crash (restart keeps in-flight ops; the cycle's
 * recovery step puts them back to planned before the read): it is reused,
 * never doubled. */
static void
test_open_op_without_row(void **state)
{
	struct fx *f = *state;
	const char *const ids[] = { "u-5" };
	long long op = 0;
	int yes = 1;

	assert_int_equal(xts_store_op_add(f->st, "j", "u-5", XTS_OP_CREATE, NULL, XTS_OP_PLANNED, 1, &op), 0);
	assert_int_equal(xts_store_op_start(f->st, op), 0);
	assert_int_equal(xts_store_op_requeue(f->st, op), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	assert_false(yes);
	assert_int_equal(read_page(f, ids, 1), 0);
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 1);
	assert_true(open_op(f, "u-5", XTS_OP_CREATE));
}

/* Decide a page of one entry {id, key: val}; then the stored user has key =
 * val and still other = want. */
static void
one_property(struct fx *f, const char *id, const char *key, const char *val, const char *other,
	     const char *want)
{
	struct xts_store_user_row r;
	json_t *page = json_pack("[{s:s,s:s}]", "id", id, key, val);

	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", id, &r), 0);
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, key)), val);
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, other)), want);
	xts_store_user_row_clear(&r);
}

/* A full round replaces the stored attributes (api/user-delta.md: a property
 * never set is not in the response): a property the round leaves out is null
 * in the store, yet not written to the target ("doesn't support provisioning
 * null values", customize-application-attributes.md), and a manager it
 * leaves out is not removed there either (the FAQ). A later appearance in
 * the same round and an incremental round merge. */
static void
test_full_round_replaces(void **state)
{
	struct fx *f = *state;
	struct xts_store_link l = { .source_id = "u-9", .target_id = "t-9" };
	struct xts_store_user_row r;
	json_t *page = json_array(), *e = entry("u-9"), *p;

	assert_non_null(page);
	assert_non_null(e);
	assert_int_equal(json_object_set_new(e, "manager@delta", json_pack("[{s:s}]", "id", "m-1")), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	l.exported = json_pack("{s:s,s:s}", "department", "Sales", "manager", "m-1");
	assert_non_null(l.exported);
	assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
	json_decref(l.exported);

	/* a new full round (the resync after 410 Gone): no department, no manager */
	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INITIAL, xts_wall_ms(), &f->cy.id), 0);
	e = entry("u-9");
	assert_non_null(e);
	assert_int_equal(json_object_del(e, "department"), 0);
	page = json_pack("[o]", e);
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", "u-9", &r), 0);
	assert_null(json_string_value(json_object_get(r.u.attrs, "department")));
	assert_true(json_is_null(json_object_get(r.u.attrs, "manager")));
	xts_store_user_row_clear(&r);
	p = op_payload(f, "u-9", XTS_OP_UPDATE);
	assert_non_null(json_object_get(p, "changes"));
	assert_null(json_object_get(json_object_get(p, "changes"), "department"));
	json_decref(p);
	{
		/* the manager: not removed in the target (the FAQ: "the manager
		 * attribute isn't updated in the target tenant"); the planned,
		 * unwritten PUT of m-1 is dropped and no DELETE is planned */
		struct xts_store_op_row o;
		memset(&o, 0, sizeof(o));
		assert_int_equal(xts_store_op_find_open(f->st, "j", "u-9", XTS_OP_MANAGER, &o), XTS_ENOENT);
		xts_store_op_row_clear(&o);
	}

	/* the same user again in this round, with one property: merged */
	one_property(f, "u-9", "department", "Legal", "displayName", "u-9");

	/* an incremental round carries only what changed: merged */
	f->cy.kind = XTS_CYCLE_INCREMENTAL;
	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INCREMENTAL, xts_wall_ms(), &f->cy.id), 0);
	one_property(f, "u-9", "jobTitle", "Clerk", "department", "Legal");
}

static void
cancel_open(struct fx *f, const char *id, int kind)
{
	struct xts_store_op_row r;

	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_op_find_open(f->st, "j", id, kind, &r), 0);
	assert_int_equal(xts_store_op_cancel(f->st, r.o.id), 0);
	xts_store_op_row_clear(&r);
}

/* The first full round of an untouched job decides each user as new and
 * lets the row's insert tell; a user that has a row after all is decided as
 * before: a second sight in the same round merges (its manager kept when the
 * entry has no manager@delta), a row kept from an earlier round is replaced. */
static void
test_untouched_row_exists(void **state)
{
	struct fx *f = *state;
	struct xts_store_user_row r;
	json_t *page = json_array(), *e = entry("u-20"), *p;
	int yes = 0;

	assert_non_null(page);
	assert_non_null(e);
	assert_int_equal(json_object_set_new(e, "manager@delta", json_pack("[{s:s}]", "id", "m-1")), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	/* out of scope in this round (a guest): a row, no op */
	e = entry("u-21");
	assert_non_null(e);
	assert_int_equal(json_object_set_new(e, "userType", json_string("Guest")), 0);
	assert_int_equal(json_object_set_new(e, "manager@delta", json_pack("[{s:s}]", "id", "m-1")), 0);
	assert_int_equal(json_array_append_new(page, e), 0);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	assert_true(f->cy.untouched);
	assert_int_equal(eng_users_page(&f->cy, page, 0), 0);
	json_decref(page);

	/* u-20 again in this round, department only: merged, manager kept */
	one_property(f, "u-20", "department", "Legal", "manager", "m-1");
	assert_int_equal(ops_of(f, XTS_OP_PLANNED), 1);
	p = create_values(f, "u-20");
	assert_string_equal(json_string_value(json_object_get(p, "department")), "Legal");
	json_decref(p);
	p = op_payload(f, "u-20", XTS_OP_CREATE);
	assert_string_equal(json_string_value(json_object_get(p, "manager")), "m-1");
	json_decref(p);
	assert_false(open_op(f, "u-21", XTS_OP_CREATE));

	/* a new full round of a job that is untouched again: u-21's kept row
	 * is replaced by the entry (no manager@delta: no manager), one create */
	cancel_open(f, "u-20", XTS_OP_CREATE);
	assert_int_equal(xts_store_job_untouched(f->st, "j", &yes), 0);
	f->cy.untouched = yes != 0;
	assert_true(f->cy.untouched);
	assert_int_equal(xts_store_cycle_begin(f->st, "j", XTS_CYCLE_INITIAL, xts_wall_ms(), &f->cy.id), 0);
	page = json_pack("[o]", entry("u-21"));
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	memset(&r, 0, sizeof(r));
	assert_int_equal(xts_store_user_get(f->st, "j", "u-21", &r), 0);
	assert_true(json_is_null(json_object_get(r.u.attrs, "manager")));
	assert_string_equal(json_string_value(json_object_get(r.u.attrs, "userType")), "Member");
	assert_true(r.u.in_scope);
	assert_int_equal(r.u.last_seen_cycle, f->cy.id);
	xts_store_user_row_clear(&r);
	assert_true(open_op(f, "u-21", XTS_OP_CREATE));
	assert_false(open_op(f, "u-21", XTS_OP_MANAGER));
}

/* showInAddressList, mapped by the built-in schema, is never written:
 * "Do not use in Microsoft Graph" (resources/user.md). Not in a create's
 * attributes, not in an update, whatever the target was last given. */
static void
test_unwritable_not_sent(void **state)
{
	struct fx *f = *state;
	static const char *const ids[] = { "u-1" };
	struct xts_store_link l = { .source_id = "u-2", .target_id = "t-2" };
	json_t *p, *page;

	assert_int_equal(read_page(f, ids, 1), 0);
	p = create_values(f, "u-1");
	assert_string_equal(json_string_value(json_object_get(p, "userType")), "Member");
	assert_null(json_object_get(p, "showInAddressList"));
	json_decref(p);

	/* linked, last given false: no update for it (department differs) */
	l.exported = json_pack("{s:b,s:s,s:s}", "showInAddressList", 0, "department", "Legal", "displayName", "u-2");
	assert_non_null(l.exported);
	assert_int_equal(xts_store_link_put(f->st, "j", &l), 0);
	json_decref(l.exported);
	f->cy.untouched = false; /* the job has a link now */
	page = json_pack("[o]", entry("u-2"));
	assert_non_null(page);
	assert_int_equal(eng_users_page(&f->cy, page, 1), 0);
	json_decref(page);
	p = op_payload(f, "u-2", XTS_OP_UPDATE);
	assert_string_equal(json_string_value(json_object_get(json_object_get(p, "changes"), "department")), "Sales");
	assert_null(json_object_get(json_object_get(p, "changes"), "showInAddressList"));
	json_decref(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_untouched_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_attrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_payload_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manager_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_manager_op_superseded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_members_buffered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_without_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_op_without_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_round_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_not_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untouched_row_exists, setup, teardown),
	};

	if (xts_mem_install() != 0)
		return 1;
	xts_log_init(XTS_LOG_CRIT, 0);
	return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
