/* SPDX-License-Identifier: MIT */
/* Unit tests for the throttle governor with an injected clock (no sleeping):
 * the documented cost table, budgets per window (never above the documented
 * quota in any window, at least 95 % of it sustained), Retry-After gating,
 * back-off on 429 and x-ms-throttle-limit-percentage, recovery, time_scale. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "throttle.h"

static void
test_costs(void **state)
{
	struct xts_throttle_cost c;

	(void)state;
	c = xts_throttle_cost_of("GET", "/v1.0/users?$filter=mail%20eq%20'a@b'");
	assert_int_equal(c.ru, 2);
	assert_int_equal(c.writes, 0);
	c = xts_throttle_cost_of("GET", "/v1.0/users?$filter=x&$select=id,mail");
	assert_int_equal(c.ru, 1);
	c = xts_throttle_cost_of("GET", "https://graph.example/v1.0/users/delta?$select=id");
	assert_int_equal(c.ru, 1); /* 1 - 1 for $select, floored at 1 */
	c = xts_throttle_cost_of("GET", "/v1.0/groups/abc/members");
	assert_int_equal(c.ru, 3);
	c = xts_throttle_cost_of("GET", "/v1.0/groups/abc/members?$top=10");
	assert_int_equal(c.ru, 2);
	c = xts_throttle_cost_of("GET", "/v1.0/users/u1?$expand=manager");
	assert_int_equal(c.ru, 2);
	c = xts_throttle_cost_of("PATCH", "/users/u1");
	assert_int_equal(c.ru, 1);
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.invitation, 0);
	c = xts_throttle_cost_of("POST", "/invitations");
	assert_int_equal(c.writes, 1);
	assert_int_equal(c.invitation, 1);
	/* bare or odd absolute URLs (found by fuzzing: "http://" read past its end) */
	c = xts_throttle_cost_of("GET", "http://");
	assert_int_equal(c.ru, 1);
	c = xts_throttle_cost_of("GET", "https://h");
	assert_int_equal(c.ru, 1);
	c = xts_throttle_cost_of("GET", "https://h/v1.0/users?$top=5");
	assert_int_equal(c.ru, 1);
	c = xts_throttle_cost_of("POST", "/v1.0/directoryObjects/getByIds");
	assert_int_equal(c.ru, 3);
	assert_int_equal(c.writes, 0);
}

/* Send as fast as the governor allows for duration ms; record times. */
static int
run(struct xts_throttle *t, const char *method, const char *url, long long start,
    long long duration, long long *times, int max)
{
	struct xts_throttle_cost c = xts_throttle_cost_of(method, url);
	long long now = start, w;
	int n = 0;

	while (now < start + duration && n < max) {
		w = xts_throttle_admit(t, &c, now);
		if (w == 0)
			times[n++] = now;
		else
			now += w;
	}
	return n;
}

static int
max_in_window(const long long *times, int n, long long window)
{
	int i, j = 0, best = 0;

	for (i = 0; i < n; i++) {
		while (times[i] - times[j] >= window)
			j++;
		if (i - j + 1 > best)
			best = i - j + 1;
	}
	return best;
}

static void
test_ru_budget(void **state)
{
	struct xts_throttle *t;
	static long long times[200000];
	int n;

	(void)state;
	assert_int_equal(xts_throttle_new(XTS_SIZE_SMALL, 1.0, 0, &t), 0);
	n = run(t, "GET", "/v1.0/users/u1", 0, 60000, times, 200000);
	/* 3,500 RU per 10 s: over 60 s at least 95 % of 21,000, never more
	 * than 3,500 in any 10 s window */
	assert_true(n >= 21000 * 95 / 100);
	assert_true(n <= 21000);
	assert_true(max_in_window(times, n, 10000) <= 3500);
	xts_throttle_free(t);

	assert_int_equal(xts_throttle_new(XTS_SIZE_LARGE, 1.0, 0, &t), 0);
	n = run(t, "GET", "/v1.0/users/u1", 0, 10000, times, 200000);
	assert_true(n >= 8000 * 95 / 100 && n <= 8000);
	xts_throttle_free(t);
}

static void
test_write_and_invite_budget(void **state)
{
	struct xts_throttle *t;
	static long long times[20000];
	int n;

	(void)state;
	assert_int_equal(xts_throttle_new(XTS_SIZE_LARGE, 1.0, 0, &t), 0);
	n = run(t, "PATCH", "/users/x", 0, 150000, times, 20000);
	assert_true(n >= 3000 * 95 / 100);
	assert_true(max_in_window(times, n, 150000) <= 3000);
	xts_throttle_free(t);

	assert_int_equal(xts_throttle_new(XTS_SIZE_LARGE, 1.0, 0, &t), 0);
	n = run(t, "POST", "/invitations", 0, 5000, times, 20000);
	assert_true(n >= 150 * 95 / 100);
	assert_true(max_in_window(times, n, 5000) <= 150);
	xts_throttle_free(t);
}

static void
test_time_scale(void **state)
{
	struct xts_throttle *t;
	static long long times[100000];
	int n;

	(void)state;
	assert_int_equal(xts_throttle_new(XTS_SIZE_SMALL, 10.0, 0, &t), 0);
	n = run(t, "GET", "/v1.0/users/u1", 0, 10000, times, 100000);
	assert_true(n >= 35000 * 95 / 100 && n <= 35000);
	xts_throttle_free(t);
	assert_int_equal(xts_throttle_new(XTS_SIZE_SMALL, 0, 0, &t), XTS_EINVAL);
	assert_int_equal(xts_throttle_new(7, 1.0, 0, &t), XTS_EINVAL);
}

static void
test_retry_after_and_recovery(void **state)
{
	struct xts_throttle *t;
	struct xts_throttle_cost c = xts_throttle_cost_of("GET", "/v1.0/users/u1");
	struct xts_throttle_stats st;
	long long now = 1000, w;
	int i;

	(void)state;
	assert_int_equal(xts_throttle_new(XTS_SIZE_SMALL, 1.0, now, &t), 0);
	assert_int_equal(xts_throttle_admit(t, &c, now), 0);
	xts_throttle_feedback(t, 429, 3000, -1, now);
	assert_int_equal(xts_throttle_gate_until(t), now + 3000);
	/* nothing before Retry-After elapsed */
	for (i = 0; i < 3000; i += 250) {
		w = xts_throttle_admit(t, &c, now + i);
		assert_true(w > 0);
		assert_true(now + i + w >= now + 3000);
	}
	assert_true(xts_throttle_factor(t) < 0.51 && xts_throttle_factor(t) > 0.49);
	assert_int_equal(xts_throttle_admit(t, &c, now + 3000), 0);
	/* 429 without Retry-After: a default gate, not zero */
	xts_throttle_feedback(t, 429, -1, -1, now + 3000);
	assert_true(xts_throttle_gate_until(t) >= now + 3000 + 1000);
	assert_true(xts_throttle_factor(t) < 0.26);
	/* creeping back: one step per second of successes */
	now += 10000;
	xts_throttle_feedback(t, 200, -1, -1, now);
	xts_throttle_feedback(t, 200, -1, -1, now + 10); /* too soon to step again */
	assert_true(xts_throttle_factor(t) > 0.29 && xts_throttle_factor(t) < 0.31);
	for (i = 1; i <= 20; i++)
		xts_throttle_feedback(t, 200, -1, -1, now + i * 1000);
	assert_true(xts_throttle_factor(t) > 0.999);
	/* x-ms-throttle-limit-percentage: 0.85 holds, 1.2 slows to fit */
	xts_throttle_feedback(t, 200, -1, 0.85, now + 30000);
	assert_true(xts_throttle_factor(t) > 0.999);
	xts_throttle_feedback(t, 200, -1, 1.2, now + 31000);
	assert_true(xts_throttle_factor(t) > 0.80 && xts_throttle_factor(t) < 0.82);
	xts_throttle_stats(t, &st);
	assert_int_equal(st.throttled, 2);
	assert_int_equal(st.slowdowns, 2);
	assert_true(st.delayed >= 12);
	xts_throttle_free(t);
}

static void
test_refund(void **state)
{
	struct xts_throttle *t;
	struct xts_throttle_cost c = xts_throttle_cost_of("POST", "/invitations");
	int i;

	(void)state;
	assert_int_equal(xts_throttle_new(XTS_SIZE_SMALL, 1.0, 0, &t), 0);
	for (i = 0; xts_throttle_admit(t, &c, 0) == 0; i++)
		;
	assert_true(i >= 4);
	assert_true(xts_throttle_admit(t, &c, 0) > 0);
	xts_throttle_refund(t, &c, 0);
	assert_int_equal(xts_throttle_admit(t, &c, 0), 0);
	xts_throttle_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_costs),
		cmocka_unit_test(test_ru_budget),
		cmocka_unit_test(test_write_and_invite_budget),
		cmocka_unit_test(test_time_scale),
		cmocka_unit_test(test_retry_after_and_recovery),
		cmocka_unit_test(test_refund),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
