/* SPDX-License-Identifier: MIT */
/* Unit tests for the engine's pure rules: the link value and attribute name,
 * which source users count as internal members, quarantine and escrow
 * back-off, Microsoft's escrow quarantine rule, and the matching query
 * encoding. Cycles themselves are tested against graphsim (integration). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"
#include "engine_internal.h"
#include "err.h"
#include "mem.h"

static void
test_link(void **state)
{
	char buf[128], tiny[8];

	(void)state;
	assert_int_equal(xts_engine_link_value("t1", "o1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "t1:o1");
	assert_int_equal(xts_engine_link_value("tenant", "object", tiny, sizeof(tiny)), XTS_ERANGE);
	assert_int_equal(xts_engine_link_attr("22222222-2222-4222-8222-22222222AbCd", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "extension_2222222222224222822222222222abcd_xtsyncSourceLink");
	assert_int_equal(xts_engine_link_attr("not-a-guid!", buf, sizeof(buf)), XTS_EINVAL);
	assert_int_equal(xts_engine_link_attr("", buf, sizeof(buf)), XTS_EINVAL);
	assert_int_equal(xts_engine_link_attr("abcd", tiny, sizeof(tiny)), XTS_ERANGE);
}

static int
member(const char *json)
{
	const char *why = NULL;
	json_t *u = json_loads(json, 0, NULL);
	int r;

	assert_non_null(u);
	r = xts_engine_is_internal_member(u, &why);
	if (r == 0)
		assert_non_null(why);
	json_decref(u);
	return r;
}

static void
test_internal_member(void **state)
{
	(void)state;
	assert_int_equal(member("{\"userType\":\"Member\",\"userPrincipalName\":\"a@x\"}"), 1);
	assert_int_equal(member("{\"userPrincipalName\":\"a@x\"}"), 1); /* absent = member */
	assert_int_equal(member("{\"userType\":\"Guest\"}"), 0);
	assert_int_equal(member("{\"userType\":\"member\",\"creationType\":\"Invitation\"}"), 0);
	assert_int_equal(member("{\"userType\":\"Member\",\"userPrincipalName\":\"a_b.c#EXT#@x\"}"), 0);
	assert_int_equal(member("{\"userType\":\"Member\",\"extension_abc_xtsyncSourceLink\":\"t:o\"}"), 0);
	/* an empty link value does not mark the user as ours */
	assert_int_equal(member("{\"userType\":\"Member\",\"extension_abc_xtsyncSourceLink\":\"\"}"), 1);
	assert_int_equal(member("{\"userType\":\"Member\",\"extension_abc_other\":\"t:o\"}"), 1);
}

static void
test_backoff(void **state)
{
	const long long h = 3600LL * 1000;
	const long long t = 1700000000000LL; /* the first failure */

	(void)state;
	/* Microsoft's retries: 6, 12 and 24 hours after the first failure,
	 * then every 24 hours; each one counted from that failure, not from
	 * the previous retry */
	assert_int_equal(xts_engine_quarantine_next_retry(t, t), t + 6 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 6 * h), t + 12 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 6 * h + 5000), t + 12 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 12 * h + 1), t + 24 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 24 * h), t + 48 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 48 * h + 60000), t + 72 * h);
	/* a retry that ran late (host down for 3 days): the next one ahead */
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 75 * h), t + 96 * h);
	assert_int_equal(xts_engine_quarantine_next_retry(t, t + 27 * 24 * h), t + 28 * 24 * h);
	assert_int_equal(xts_engine_escrow_delay_ms(1000, 0), 1000);
	assert_int_equal(xts_engine_escrow_delay_ms(1000, 3), 8000);
	assert_int_equal(xts_engine_escrow_delay_ms(1000, 60), 24 * h);
	assert_int_equal(xts_engine_escrow_delay_ms(0, 1), 2000);
}

static void
test_escrow_rule(void **state)
{
	(void)state;
	/* below the minimum number of operations nothing quarantines */
	assert_int_equal(xts_engine_should_quarantine(5, 5, 0, 0, 10, 1, 0.5, 100), 0);
	assert_int_equal(xts_engine_should_quarantine(10, 5, 0, 0, 10, 1, 0.5, 100), 0);
	assert_int_equal(xts_engine_should_quarantine(10, 6, 0, 0, 10, 1, 0.5, 100), 1);
	assert_int_equal(xts_engine_should_quarantine(1000, 101, 0, 0, 10, 1, 0.5, 100), 1);
	assert_int_equal(xts_engine_should_quarantine(1000, 100, 0, 0, 10, 1, 0.5, 100), 0);
	assert_int_equal(xts_engine_should_quarantine(1000, 0, 0, 0, 10, 1, 0.0, 0), 0);
	/* Microsoft's examples, at its defaults (5,000, 40 %, 40,000) */
	assert_int_equal(xts_engine_should_quarantine(5000, 4000, 0, 0, 5000, 5000, 0.4, 40000), 0);
	assert_int_equal(xts_engine_should_quarantine(5000, 5000, 0, 0, 5000, 5000, 0.4, 40000), 1);
	assert_int_equal(xts_engine_should_quarantine(35000, 30000, 0, 0, 5000, 5000, 0.4, 40000), 1);
	assert_int_equal(xts_engine_should_quarantine(120000, 20000, 0, 0, 5000, 5000, 0.4, 40000), 0);
	assert_int_equal(xts_engine_should_quarantine(200000, 45000, 0, 0, 5000, 5000, 0.4, 40000), 1);
	/* reference (manager) failures count toward neither the ratio nor the
	 * maximum (nor the minimum, set to 1 here): all 6,000 manager updates
	 * of 10,000 ops failed */
	assert_int_equal(xts_engine_should_quarantine(10000, 6000, 6000, 6000, 5000, 1, 0.4, 40000), 0);
	/* ...but one own failure more than 40 % of the own ops still counts */
	assert_int_equal(xts_engine_should_quarantine(10000, 7601, 6000, 6000, 5000, 1, 0.4, 40000), 1);
	/* 40,000 users and 21,000 manager updates failed: 61,000 > 60,000 */
	assert_int_equal(xts_engine_should_quarantine(1000000, 61000, 500000, 21000, 5000, 5000, 0.4, 40000), 1);
	assert_int_equal(xts_engine_should_quarantine(1000000, 60000, 500000, 21000, 5000, 5000, 0.4, 40000), 0);
}

static void
test_encoding(void **state)
{
	char *s;

	(void)state;
	s = eng_odata_quote("O'Brien");
	assert_string_equal(s, "'O''Brien'");
	xts_free(s);
	s = eng_urlenc("mail eq 'a+b@x.example'");
	assert_string_equal(s, "mail%20eq%20%27a%2Bb%40x.example%27");
	xts_free(s);
	s = eng_urlenc("");
	assert_string_equal(s, "");
	xts_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_internal_member),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_escrow_rule),
		cmocka_unit_test(test_encoding),
	};

	xts_mem_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
