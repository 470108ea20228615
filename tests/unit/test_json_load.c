/* SPDX-License-Identifier: MIT */
/* Unit tests for xts_json_loadb (lib/json_load.c) against jansson's
 * json_loadb as the oracle: crafted edge cases and mutations of a Graph
 * users/delta page must give the same verdict and, when accepted, the same
 * value with the same key order; the common page must take the fast path;
 * allocation failure at every step must not crash or leak. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "json_load.h"
#include "mem.h"

static const char page[] =
	"{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\",\"value\":["
	"{\"id\":\"00000000-1111-4000-8000-000000000001\",\"userType\":\"Member\",\"creationType\":null,"
	"\"accountEnabled\":true,\"displayName\":\"Zo\xc3\xab M\xc3\xbcller \\\"1\\\"\",\"count\":-42,"
	"\"businessPhones\":[\"+48 12 0000001\"],\"city\":\"Krak\\u00f3w \\ud83d\\ude00\",\"n\":0,"
	"\"manager@delta\":[{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"m-1\"}]},"
	"{\"id\":\"u-2\",\"@removed\":{\"reason\":\"changed\"},\"tab\":\"a\\tb\\n\\/\\\\\",\"e\":{},\"a\":[]}"
	"],\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=x\"}";

static char *
dump(const json_t *j)
{
	return j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Same verdict as jansson; same value and key order when accepted. */
static int
same(const char *buf, size_t len, size_t flags)
{
	json_t *a = xts_json_loadb(buf, len, flags, NULL), *b = json_loadb(buf, len, flags, NULL);
	char *da = dump(a), *db = dump(b);
	int ok = (a == NULL && b == NULL) ||
		 (a != NULL && b != NULL && json_equal(a, b) && da != NULL && db != NULL &&
		  strcmp(da, db) == 0);

	if (!ok)
		fprintf(stderr, "# differ on %.*s: ours %s, jansson's %s\n", (int)(len > 200 ? 200 : len),
			buf, da ? da : "NULL", db ? db : "NULL");
	free(da);
	free(db);
	json_decref(a);
	json_decref(b);
	return ok;
}

static void
test_cases(void **state)
{
	static const char *const cases[] = {
		"{}", "[]", " { } ", "{\"a\":1}", "{\"a\":1,}", "[1,]", "[1 2]", "{\"a\" 1}", "{a:1}",
		"{\"a\":1}x", "{\"a\":1} ", "\t[\n1\r]", "", " ", "1", "\"s\"", "null", "true", "[true,false,null]",
		"[tru]", "[nul]", "[truex]", "[-]", "[-0]", "[0]", "[01]", "[-01]", "[1.5]", "[1e3]", "[1E3]",
		"[123456789012345678]", "[1234567890123456789]", "[9223372036854775807]",
		"[9223372036854775808]", "[-9223372036854775808]", "[99999999999999999999]",
		"{\"a\":1,\"a\":2}", "{\"b\":1,\"a\":2,\"b\":3}", "[\"\\u0000\"]", "[\"\\u0041\"]",
		"[\"\\ud800\"]", "[\"\\udc00\"]", "[\"\\ud800\\u0041\"]", "[\"\\ud83d\\ude00\"]", "[\"\\x\"]",
		"[\"\\u12\"]", "[\"\\u12g4\"]", "[\"a\nb\"]", "[\"a\tb\"]", "[\"\\", "[\"abc", "[\"\\\"\"]",
		"[\"\xc3\xa9\"]", "[\"\xc3\"]", "[\"\xc0\xaf\"]", "[\"\xe0\x80\xaf\"]", "[\"\xed\xa0\x80\"]",
		"[\"\xf4\x90\x80\x80\"]", "[\"\xf0\x9f\x98\x80\"]", "[\"\xff\"]", "[\"\x80\"]", "\xef\xbb\xbf{}",
		"{\"\\u00e9\":\"k\"}", "{\"a\\\"b\":1}", "[[[[[[]]]]]]", "[{\"a\":[{\"b\":{}}]}]", "{\"a\":}",
		"{,}", "[,]", "{\"a\":1 \"b\":2}", "[\"\\/\"]", "[-a]", "[+1]", "[.5]", "[0x10]", "[1,2,3",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_true(same(cases[i], strlen(cases[i]), 0));
		assert_true(same(cases[i], strlen(cases[i]), JSON_DECODE_ANY));
	}
	/* a NUL byte inside the buffer: in a string, between tokens, at the end */
	assert_true(same("[\"a\0b\"]", 7, 0));
	assert_true(same("[1,\0 2]", 7, 0));
	assert_true(same("[1]\0", 4, 0));
	/* a key longer than the on-stack copy */
	{
		char big[600];

		memset(big, 'k', sizeof(big));
		memcpy(big, "{\"", 2);
		memcpy(big + sizeof(big) - 5, "\":1}", 4);
		big[sizeof(big) - 1] = '\0';
		assert_true(same(big, strlen(big), 0));
	}
	/* deep nesting: past the fast path's limit, jansson decides */
	{
		char deep[2 * 3000 + 1];

		memset(deep, '[', 3000);
		memset(deep + 3000, ']', 3000);
		deep[6000] = '\0';
		assert_true(same(deep, 6000, 0));
		assert_true(same(deep, 200, 0));
		assert_true(same(deep + 2800, 400, 0));
	}
	assert_true(same(page, sizeof(page) - 1, 0));
}

/* The Graph page shape is read by the fast path, not handed to jansson. */
/* The string scan reads eight bytes at a time: a stop ('"', '\\', a control
 * byte, a UTF-8 sequence, a bad byte) at every offset of the first and
 * second word, strings of every length to 20, and texts that end inside a
 * word. */
static void
test_string_words(void **state)
{
	static const char *const stops[] = { "\"", "\\n", "\\u00e9", "\x01", "\x1f", "\xc3\xa9",
					     "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\x80", "\xff", "\x7f",
					     " ", "~", "\\\"" };
	char buf[96];
	size_t i, k, len;
	int n;

	(void)state;
	for (len = 0; len <= 20; len++) {
		for (i = 0; i < len; i++)
			buf[2 + i] = (char)('a' + (int)(i % 26));
		buf[0] = '[';
		buf[1] = '"';
		memcpy(buf + 2 + len, "\"]", 3);
		assert_true(same(buf, len + 4, 0));
		/* cut short at every byte: inside a word, no closing quote */
		for (i = 1; i < len + 4; i++)
			assert_true(same(buf, i, 0));
	}
	for (k = 0; k < sizeof(stops) / sizeof(stops[0]); k++) {
		for (i = 0; i <= 17; i++) {
			n = snprintf(buf, sizeof(buf), "[\"%.*s%sxyzxyzxyz\",\"%.*s\"]", (int)i,
				     "abcdefghijklmnopq", stops[k], (int)i, "ABCDEFGHIJKLMNOPQ");
			assert_true(n > 0 && (size_t)n < sizeof(buf));
			assert_true(same(buf, (size_t)n, 0));
		}
	}
}

static void
test_fast_path_taken(void **state)
{
	json_t *v = xts_json__load_fast(page, sizeof(page) - 1, 0), *u;

	(void)state;
	assert_non_null(v);
	u = json_array_get(json_object_get(v, "value"), 0);
	assert_string_equal(json_string_value(json_object_get(u, "city")), "Krak\xc3\xb3w \xf0\x9f\x98\x80");
	assert_int_equal(json_integer_value(json_object_get(u, "count")), -42);
	json_decref(v);
	assert_null(xts_json__load_fast("[1.5]", 5, 0));
	assert_null(xts_json__load_fast("{}", 2, JSON_REJECT_DUPLICATES));
}

/* Every single-byte change, truncation and a seeded random sample of
 * multi-byte changes of the page: same verdict and value as jansson. */
static void
test_mutations(void **state)
{
	static const unsigned char bytes[] = { '"', '\\', '{', '}', '[', ']', ',', ':', ' ', '0', '-',
		'e', '.', 'u', 'n', 't', 0, 0x7f, 0x80, 0xc3, 0xed, 0xf4, 0xff, '\n' };
	size_t n = sizeof(page) - 1, i, b;
	char *m = malloc(n);
	unsigned seed = 12345;
	int k;

	(void)state;
	assert_non_null(m);
	for (i = 0; i < n; i++) {
		assert_true(same(page, i, 0));
		for (b = 0; b < sizeof(bytes); b += 3) {
			memcpy(m, page, n);
			m[i] = (char)bytes[(b + i) % sizeof(bytes)];
			assert_true(same(m, n, 0));
		}
	}
	for (k = 0; k < 20000; k++) {
		int j, changes = 1 + k % 4;

		memcpy(m, page, n);
		for (j = 0; j < changes; j++) {
			seed = seed * 1103515245u + 12345u;
			i = (seed >> 8) % n;
			seed = seed * 1103515245u + 12345u;
			m[i] = (char)bytes[(seed >> 8) % sizeof(bytes)];
		}
		assert_true(same(m, n, k % 2 ? JSON_DECODE_ANY : 0));
	}
	free(m);
}

/* One allocation failing at each step: the fast path gives up cleanly and
 * jansson (its allocations now succeed) parses the page: always the value.
 * Every allocation failing from a step on (out of memory), in a child: the
 * fast path gives up, and jansson's parser is behind the guard that ends the
 * process with status 1 (lib/mem.c); never a signal. */
static void
test_alloc_failure(void **state)
{
	long nth;

	(void)state;
	for (nth = 1; nth < 400; nth++) {
		json_t *v, *want = json_loadb(page, sizeof(page) - 1, 0, NULL);

		xts_mem_fail_after((unsigned long)nth, 0);
		v = xts_json_loadb(page, sizeof(page) - 1, 0, NULL);
		xts_mem_fail_after(0, 0);
		assert_non_null(v);
		assert_true(json_equal(v, want));
		json_decref(v);
		json_decref(want);
	}
	for (nth = 1; nth < 400; nth += 13) {
		pid_t pid;
		int st;

		fflush(NULL);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			json_t *v;

			xts_mem_fail_after((unsigned long)nth, 1);
			v = xts_json_loadb(page, sizeof(page) - 1, 0, NULL);
			_exit(v != NULL ? 0 : 2);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_true(WEXITSTATUS(st) <= 2);
	}
	assert_true(same(page, sizeof(page) - 1, 0));
}

/* xts_json_loadb_graph: a \u0000 in a value becomes U+FFFD (one user's
 * attribute must not fail its job's every delta page), in nested values
 * too; in a member name the text still fails; any text without one is
 * read exactly as xts_json_loadb reads it, invalid text included. */
static void
test_graph_nul(void **state)
{
	static const char nul[] = "{\"value\":[{\"id\":\"u-1\",\"displayName\":\"a\\u0000b\\u0000\","
				  "\"businessPhones\":[\"\\u0000\"],\"x\":{\"y\":\"\\u0000z\"},\"n\":1.5}]}";
	static const char key[] = "{\"a\\u0000b\":1}";
	static const char *const plain[] = { "{\"a\":\"\\\\u0000\"}", "{\"a\":1,}", "[1,2", "{\"a\":\"\\u0001\"}" };
	json_t *v, *u, *w;
	size_t i;

	(void)state;
	assert_null(xts_json_loadb(nul, sizeof(nul) - 1, 0, NULL));
	v = xts_json_loadb_graph(nul, sizeof(nul) - 1, NULL);
	assert_non_null(v);
	u = json_array_get(json_object_get(v, "value"), 0);
	assert_int_equal(json_string_length(json_object_get(u, "displayName")), 8);
	assert_memory_equal(json_string_value(json_object_get(u, "displayName")),
			    "a\xEF\xBF\xBD" "b\xEF\xBF\xBD", 8);
	assert_string_equal(json_string_value(json_array_get(json_object_get(u, "businessPhones"), 0)),
			    "\xEF\xBF\xBD");
	assert_string_equal(json_string_value(json_object_get(json_object_get(u, "x"), "y")), "\xEF\xBF\xBD" "z");
	assert_string_equal(json_string_value(json_object_get(u, "id")), "u-1");
	assert_true(json_is_real(json_object_get(u, "n")));
	json_decref(v);
	assert_null(xts_json_loadb_graph(key, sizeof(key) - 1, NULL));
	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		v = xts_json_loadb_graph(plain[i], strlen(plain[i]), NULL);
		w = xts_json_loadb(plain[i], strlen(plain[i]), 0, NULL);
		assert_true((v == NULL && w == NULL) || (v != NULL && w != NULL && json_equal(v, w)));
		json_decref(v);
		json_decref(w);
	}
	v = xts_json_loadb_graph(page, sizeof(page) - 1, NULL);
	w = json_loadb(page, sizeof(page) - 1, 0, NULL);
	assert_non_null(v);
	assert_true(json_equal(v, w));
	json_decref(v);
	json_decref(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_string_words),
		cmocka_unit_test(test_fast_path_taken),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_graph_nul),
	};

	if (xts_mem_install() != 0)
		return 1;
	return cmocka_run_group_tests_name("json_load", tests, NULL, NULL);
}
