/* SPDX-License-Identifier: MIT */
/* Unit tests for the base modules: error names, the byte buffer, the
 * allocator's failure injection and trim, the log rate limiter and the text
 * helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "text.h"

static void
test_err_names(void **state)
{
	(void)state;
	assert_string_equal(xts_errname(XTS_ENOMEM), "XTS_ENOMEM");
	assert_string_equal(xts_strerror(XTS_ENOMEM), "out of memory");
	assert_string_equal(xts_errname(XTS_EINTERNAL), "XTS_EINTERNAL");
	assert_string_equal(xts_errname(0), "XTS_OK");
	assert_string_equal(xts_errname(12345), "XTS_EUNKNOWN");
	assert_true(XTS_ENOMEM < 0 && XTS_EINTERNAL < 0);
	assert_int_equal(xts_err_from_errno(28 /* ENOSPC */), XTS_ENOSPC);
}

static void
test_buf(void **state)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *s;
	int i;

	(void)state;
	assert_string_equal(xts_buf_str(&b), "");
	for (i = 0; i < 1000; i++)
		assert_int_equal(xts_buf_printf(&b, "%d,", i), 0);
	assert_int_equal(strncmp(b.p, "0,1,2,", 6), 0);
	assert_int_equal(b.len, strlen(b.p));
	xts_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(xts_buf_puts(&b, "abc"), 0);
	assert_int_equal(xts_buf_putc(&b, 'd'), 0);
	s = xts_buf_steal(&b);
	assert_string_equal(s, "abcd");
	assert_null(b.p);
	xts_free(s);
}

static void
test_mem_fail_nth(void **state)
{
	void *a, *b, *c;

	(void)state;
	xts_mem_fail_after(2, 0);
	a = xts_malloc(10);
	b = xts_malloc(10);
	c = xts_malloc(10);
	assert_non_null(a);
	assert_null(b);
	assert_non_null(c);
	xts_free(a);
	xts_free(c);
	xts_mem_fail_after(1, 1);
	assert_null(xts_strdup("x"));
	assert_null(xts_calloc(1, 1));
	xts_mem_fail_after(0, 0);
	a = xts_strdup("ok");
	assert_string_equal(a, "ok");
	xts_free(a);
}

/* mem.c keeps freed jansson blocks for reuse except under AddressSanitizer
 * (which must see every free). */
#if defined(__SANITIZE_ADDRESS__)
#define POOLED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOLED 0
#endif
#endif
#ifndef POOLED
#define POOLED 1
#endif

static void
test_mem_trim(void **state)
{
	json_t *a, *o;
	int i;

	(void)state;
	assert_int_equal(xts_mem_install(), 0);
	a = json_array();
	assert_non_null(a);
	for (i = 0; i < 1000; i++)
		assert_int_equal(json_array_append_new(a, json_integer(i)), 0);
	json_decref(a);
	if (POOLED)
		assert_true(xts_mem_pooled() >= 1000); /* the integers wait for reuse */
	xts_mem_trim();
	assert_int_equal(xts_mem_pooled(), 0);
	o = json_pack("{s:i}", "after", 1); /* the allocator still works */
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "after")), 1);
	json_decref(o);
}

static void
test_ratelimit(void **state)
{
	struct xts_ratelimit rl = { 0, 60000, 3, 0, 0 };
	int i, ok = 0;

	(void)state;
	for (i = 0; i < 10; i++)
		ok += xts_ratelimit_ok(&rl);
	assert_int_equal(ok, 3);
	assert_int_equal(rl.suppressed, 7);
}

static void
test_log_levels(void **state)
{
	(void)state;
	assert_int_equal(xts_log_level_parse("debug"), XTS_LOG_DEBUG);
	assert_int_equal(xts_log_level_parse("warning"), XTS_LOG_WARNING);
	assert_int_equal(xts_log_level_parse("err"), XTS_LOG_ERR);
	assert_int_equal(xts_log_level_parse("loud"), -1);
	assert_string_equal(xts_log_level_name(XTS_LOG_INFO), "info");
}

static void
test_text(void **state)
{
	char p[8];

	(void)state;
	assert_true(xts_is_guid("22222222-2222-4222-8222-222222222222"));
	assert_true(xts_is_guid("ABCDEF01-abcd-EF01-abcd-0123456789aB"));
	assert_false(xts_is_guid(NULL));
	assert_false(xts_is_guid(""));
	assert_false(xts_is_guid("22222222-2222-4222-8222-22222222222"));   /* short */
	assert_false(xts_is_guid("22222222-2222-4222-8222-2222222222222")); /* long */
	assert_false(xts_is_guid("222222222222-4222-8222-222222222222-"));  /* dash moved */
	assert_false(xts_is_guid("2222222g-2222-4222-8222-222222222222"));  /* not hex */
	assert_false(xts_is_guid("{2222222-2222-4222-8222-222222222222}"));
	assert_false(xts_is_guid("contoso.onmicrosoft.com"));
	xts_strf(p, sizeof(p), "a[%d].%s", 12, "name");
	assert_string_equal(p, "a[12].n"); /* truncated, terminated */

	/* object ids: what may go into a URL path or a log line */
	assert_true(xts_is_object_id("22222222-2222-4222-8222-222222222222"));
	assert_true(xts_is_object_id("u-7"));
	assert_false(xts_is_object_id(NULL));
	assert_false(xts_is_object_id(""));
	assert_false(xts_is_object_id("a/../b"));
	assert_false(xts_is_object_id("0bad\n<0>x"));
	assert_false(xts_is_object_id("a b"));
	assert_false(xts_is_object_id("x%2f"));
	assert_false(xts_is_object_id("0123456789012345678901234567890123456789012345678901234567890123X")); /* 65 */
}

static void
test_scrub(void **state)
{
	char s[64];

	(void)state;
	/* C0, DEL, C1 (U+009B, an 8-bit CSI), bidi overrides/isolates */
	assert_int_equal(xts_text_unsafe_at("\x1b[1m"), 1);
	assert_int_equal(xts_text_unsafe_at("\x7f"), 1);
	assert_int_equal(xts_text_unsafe_at("\xc2\x9b" "2J"), 2);
	assert_int_equal(xts_text_unsafe_at("\xe2\x80\xae"), 3);
	assert_int_equal(xts_text_unsafe_at("\xe2\x81\xa6"), 3);
	assert_int_equal(xts_text_unsafe_at(""), 0);
	/* safe: letters with diacritics (U+00E9 is C3 A9), U+00A0, U+2014 */
	assert_int_equal(xts_text_unsafe_at("\xc3\xa9"), 0);
	assert_int_equal(xts_text_unsafe_at("\xc2\xa0"), 0);
	assert_int_equal(xts_text_unsafe_at("\xe2\x80\x94"), 0);
	snprintf(s, sizeof(s), "a\r\n<0>b\x1b[31m\xc2\x9b\xe2\x80\xae" "c\xc3\xa9");
	xts_text_scrub(s);
	assert_string_equal(s, "a?" "?<0>b?[31m?" "?" "?" "?" "?c\xc3\xa9");
	/* a cut UTF-8 sequence at the end reads no further than the NUL */
	snprintf(s, sizeof(s), "x\xc2");
	xts_text_scrub(s);
	assert_string_equal(s, "x\xc2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_mem_fail_nth),
		cmocka_unit_test(test_mem_trim),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_log_levels),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_scrub),
	};
	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
