/* SPDX-License-Identifier: MIT */
/* The store's one-pass JSON serialiser (lib/store.c, the text a 'j'
 * parameter stores) against jansson's json_dumpb(JSON_COMPACT): byte-equal
 * text on hand-picked and random values (TAP checks), then the time of both
 * on a typical stored user (printed figures, no time asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "buf.h"
#include "json_text.h"

static int n_test;
static int n_fail;

static char *
jansson_text(const json_t *j)
{
	size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	char *t = malloc(len + 1);

	if (t == NULL || json_dumpb(j, t, len, JSON_COMPACT | JSON_ENCODE_ANY) != len)
		abort();
	t[len] = '\0';
	return t;
}

static int
same(const json_t *j, const char *what)
{
	struct xts_buf b = XTS_BUF_INIT;
	char *want = jansson_text(j);
	int ok = xts_json_text(j, &b, 0) == 0 && b.p != NULL && strcmp(b.p, want) == 0 &&
		 strlen(want) == b.len;

	if (what != NULL) {
		n_test++;
		printf("%s %d - %s\n", ok ? "ok" : "not ok", n_test, what);
		if (!ok)
			printf("# want %s\n# got  %s\n", want, b.p != NULL ? b.p : "(null)");
	}
	if (!ok)
		n_fail++;
	free(want);
	xts_buf_free(&b);
	return ok;
}

static json_t *
random_value(unsigned *seed, int depth)
{
	int k = (int)(rand_r(seed) % (depth > 3 ? 6 : 8));
	char s[24];
	size_t i, n;
	json_t *v;

	switch (k) {
	case 0: return json_null();
	case 1: return json_boolean(rand_r(seed) & 1);
	case 2: return json_integer((json_int_t)rand_r(seed) - RAND_MAX / 2);
	case 3: return json_real((double)rand_r(seed) / 7.0);
	case 4:
	case 5:
		n = rand_r(seed) % sizeof(s);
		for (i = 0; i < n; i++) {
			/* bytes 1..127 (controls, quotes, backslash included) */
			s[i] = (char)(1 + rand_r(seed) % 127);
		}
		return json_stringn(s, n);
	case 6:
		v = json_array();
		n = rand_r(seed) % 5;
		for (i = 0; i < n; i++)
			json_array_append_new(v, random_value(seed, depth + 1));
		return v;
	default:
		v = json_object();
		n = rand_r(seed) % 5;
		for (i = 0; i < n; i++) {
			snprintf(s, sizeof(s), "k\"%u\\\n", rand_r(seed) % 100);
			json_object_set_new(v, s, random_value(seed, depth + 1));
		}
		return v;
	}
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(void)
{
	json_t *v, *deep, *user;
	unsigned seed = 12345;
	struct xts_buf b = XTS_BUF_INIT;
	double t0, t1, t2;
	int i, ok = 1;
	size_t bytes = 0;

	printf("1..11\n");
	v = json_pack("{s:s,s:s,s:i,s:b,s:n,s:[s,s]}", "displayName", "Zoë Müller \"Z\" \\ /",
		      "ctl", "a\tb\nc\rd\be\ff\x01\x1f", "n", -42, "t", 1, "z", "phones", "+48 1", "汉字");
	same(v, "an object of strings with escapes, UTF-8, numbers, true, null and an array");
	json_decref(v);
	v = json_stringn("a\0b", 3);
	same(v, "a string with a NUL byte");
	json_decref(v);
	v = json_object();
	json_object_setn_new(v, "k\0ey", 4, json_true());
	json_object_setn_new(v, "k", 1, json_false());
	same(v, "an object with a NUL byte in a key (written whole, as jansson does)");
	json_decref(v);
	v = json_pack("[f,f,f]", 0.1, 1e300, -2.0);
	same(v, "reals keep jansson's formatting");
	json_decref(v);
	v = json_object();
	same(v, "the empty object");
	json_decref(v);
	v = json_array();
	same(v, "the empty array");
	json_decref(v);
	deep = json_array();
	v = deep;
	for (i = 0; i < 100; i++) {
		json_t *in = json_array();
		json_array_append_new(v, in);
		v = in;
	}
	json_array_append_new(v, json_string("bottom"));
	same(deep, "a value nested 100 deep");
	json_decref(deep);
	{
		/* the eight-bytes-at-a-time scan (clean_text): every length
		 * across the word boundaries, clean, and with one byte that needs
		 * escaping at each position; "é" puts bytes >= 0x80 in the words */
		static const char special[] = { '"', '\\', '\n', 0x01, 0x1f, 0x00 };
		char s[48];
		size_t n, pos, k, m;
		int all = 1;

		for (n = 0; n <= 40; n++) {
			for (m = 0; m < n; m++)
				s[m] = m % 5 == 3 && m + 1 < n ? (char)0xc3 : (m % 5 == 4 && m > 0 &&
					s[m - 1] == (char)0xc3 ? (char)0xa9 : (char)(0x20 + (m * 7) % 0x5f));
			for (m = 0; m < n; m++)
				if (s[m] == '"' || s[m] == '\\')
					s[m] = '~';
			v = json_stringn(s, n);
			all &= v != NULL && same(v, NULL);
			json_decref(v);
			for (pos = 0; pos < n; pos++) {
				for (k = 0; k < sizeof(special); k++) {
					char keep = s[pos];

					if ((unsigned char)keep >= 0x80)
						continue;
					s[pos] = special[k];
					v = json_stringn(s, n);
					all &= v != NULL && same(v, NULL);
					json_decref(v);
					s[pos] = keep;
				}
			}
		}
		n_test++;
		printf("%s %d - strings of 0 to 40 bytes, clean and with one byte to escape at each position\n",
		       all ? "ok" : "not ok", n_test);
	}
	for (i = 0; i < 2000; i++) {
		v = random_value(&seed, 0);
		ok &= same(v, NULL);
		json_decref(v);
	}
	n_test++;
	printf("%s %d - 2000 random values give jansson's text\n", ok ? "ok" : "not ok", n_test);
	/* timing on a typical stored user */
	user = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:[s],s:s,s:s,s:s}",
			 "id", "0000beef-1111-4000-8000-000000012345", "userPrincipalName",
			 "u12345@contoso.example", "mail", "u12345@contoso.example", "displayName",
			 "Zoë Müller 12345", "givenName", "Zoë", "surname", "Müller", "department", "Dept 5",
			 "jobTitle", "Engineer", "employeeId", "E0012345", "city", "Kraków", "country", "Poland",
			 "mailNickname", "u12345", "userType", "Member", "accountEnabled", 1, "businessPhones",
			 "+48 12 0012345", "preferredLanguage", "pl-PL", "companyName", "Contoso", "manager",
			 "0000beef-1111-4000-8000-000000001543");
	t0 = now_s();
	for (i = 0; i < 100000; i++) {
		char *t = jansson_text(user);
		bytes += strlen(t);
		free(t);
	}
	t1 = now_s();
	for (i = 0; i < 100000; i++) {
		xts_buf_reset(&b);
		if (xts_json_text(user, &b, 0) != 0)
			abort();
		bytes += b.len;
	}
	t2 = now_s();
	n_test++;
	printf("%s %d - the timing loops produced text (%zu bytes)\n", bytes > 0 ? "ok" : "not ok",
	       n_test, bytes);
	n_test++;
	printf("%s %d - both timings are positive\n", t1 > t0 && t2 > t1 ? "ok" : "not ok", n_test);
	printf("# store JSON text of a user (%zu bytes): jansson json_dumpb twice %.2f us, one pass %.2f us\n",
	       b.len, (t1 - t0) * 10.0, (t2 - t1) * 10.0);
	printf("# RESULT store_json jansson_us=%.2f onepass_us=%.2f\n", (t1 - t0) * 10.0, (t2 - t1) * 10.0);
	json_decref(user);
	xts_buf_free(&b);
	return n_fail == 0 && ok && bytes > 0 ? 0 : 1;
}
