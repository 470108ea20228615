/* SPDX-License-Identifier: MIT */
/* Tests of `xtsyncctl eval` (daemon/ctl_eval.c) through its entry point, with
 * stdout and stderr captured: JSON output per value type, --attributes inline
 * and @FILE, and the exit codes 0 / 1 (runtime) / 2 (syntax, bad attributes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../daemon/ctl_eval.h"

static char out_text[4096], err_text[4096];

static void
slurp(FILE *f, char *buf, size_t sz)
{
	size_t n;

	rewind(f);
	n = fread(buf, 1, sz - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static int
run(int argc, const char **argv)
{
	FILE *fo = tmpfile(), *fe = tmpfile();
	int so, se, rc;

	assert_non_null(fo);
	assert_non_null(fe);
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	assert_true(dup2(fileno(fo), 1) >= 0 && dup2(fileno(fe), 2) >= 0);
	rc = xts_ctl_eval_main(argc, (char **)argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, out_text, sizeof(out_text));
	slurp(fe, err_text, sizeof(err_text));
	return rc;
}

#define RUN(...)                                                                \
	({                                                                      \
		const char *a_[] = { "eval", __VA_ARGS__, NULL };               \
		run((int)(sizeof(a_) / sizeof(a_[0])) - 1, a_);                 \
	})

static void
test_values(void **state)
{
	(void)state;
	assert_int_equal(RUN("Append(\"a\", \"b\")"), 0);
	assert_string_equal(out_text, "\"ab\"\n");
	assert_int_equal(RUN("--attributes", "{\"givenName\":\"Zoë\"}", "NormalizeDiacritics([givenName])"), 0);
	assert_string_equal(out_text, "\"Zoe\"\n");
	assert_int_equal(RUN("--attributes={\"l\":\"a,b\"}", "Split([l], \",\")"), 0);
	assert_string_equal(out_text, "[\"a\",\"b\"]\n");
	assert_int_equal(RUN("IsNull([x])"), 0);
	assert_string_equal(out_text, "true\n");
	assert_int_equal(RUN("--attributes", "{\"p\":[1,2,3]}", "Count([p])"), 0);
	assert_string_equal(out_text, "3\n");
	assert_int_equal(RUN("[missing]"), 0);
	assert_string_equal(out_text, "null\n");
	assert_int_equal(RUN("IgnoreFlowIfNullOrEmpty([d])"), 0);
	assert_string_equal(out_text, "null\n");
	assert_non_null(strstr(err_text, "would not flow"));
}

static void
test_attributes_file(void **state)
{
	char path[] = "/tmp/xts-eval-XXXXXX", arg[64];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_true(write(fd, "{\"mail\":\"john.doe@contoso.com\"}", 31) == 31);
	close(fd);
	snprintf(arg, sizeof(arg), "@%s", path);
	assert_int_equal(RUN("--attributes", arg, "Replace([mail], \"@contoso.com\", , ,\"\", ,)"), 0);
	assert_string_equal(out_text, "\"john.doe\"\n");
	unlink(path);
	assert_int_equal(RUN("--attributes", arg, "[mail]"), 2);
	assert_non_null(strstr(err_text, path));
	assert_string_equal(out_text, "");
}

static void
test_errors(void **state)
{
	(void)state;
	assert_int_equal(RUN("Left(\"a\", 1, 2)"), 2);
	assert_string_equal(err_text, "error: column 1: 'Left' takes 2 arguments, got 3\n");
	assert_string_equal(out_text, "");
	assert_int_equal(RUN("Append([a], \"b\""), 2);
	assert_non_null(strstr(err_text, "error: column 16: expected ')'"));
	assert_int_equal(RUN("--attributes", "{bad", "[a]"), 2);
	assert_non_null(strstr(err_text, "--attributes"));
	assert_int_equal(RUN("--attributes", "[1]", "[a]"), 2);
	assert_non_null(strstr(err_text, "must be a JSON object"));
	assert_int_equal(RUN("Mid(\"a\", 0, 1)"), 1);
	assert_string_equal(err_text, "error: column 10: Mid: start must be 1 or more\n");
	assert_int_equal(RUN("AppRoleAssignmentsComplex([appRoleAssignments])"), 1);
	assert_non_null(strstr(err_text, "not supported outside app provisioning"));
	assert_int_equal(RUN("--bogus", "[a]"), 2);
	assert_int_equal(RUN("--attributes"), 2);
	assert_int_equal(RUN("[a]", "[b]"), 2);
	{
		const char *a[] = { "eval", NULL };
		assert_int_equal(run(1, a), 2);
		assert_non_null(strstr(err_text, "usage"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_attributes_file),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
