/* SPDX-License-Identifier: MIT */
/* Micro-benchmark: microseconds per user to evaluate the built-in cross-tenant
 * schema (scoping filter + every attribute mapping + diff against the last
 * export) over synthetic users. Prints figures; asserts no time. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "mapping.h"
#include "schema.h"
#include "scope_filter.h"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
make_user(long i)
{
	char id[40], upn[64], name[64];

	snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012ld", i);
	snprintf(upn, sizeof(upn), "user%ld@contoso.example", i);
	snprintf(name, sizeof(name), "Zoë Müller %ld", i);
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:[s],s:s,s:s}",
			 "id", id, "userPrincipalName", upn, "mail", upn, "displayName", name,
			 "givenName", "Zoë", "surname", "Müller", "department", "Engineering",
			 "jobTitle", "Engineer", "employeeId", id + 24, "city", "Kraków",
			 "country", "Poland", "mailNickname", upn, "userType", "Member",
			 "accountEnabled", 1, "businessPhones", "+48 12 000 00 00",
			 "preferredLanguage", "pl-PL", "companyName", "Contoso");
}

int
main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	struct xts_schema *s = NULL;
	struct xts_expr_error err;
	json_t *users, *desired, *changes, *last = NULL;
	double t0, t1;
	long i, in_scope = 0, patched = 0;

	if (n <= 0 || xts_schema_builtin(&s) != 0) {
		fprintf(stderr, "bench_mapping: cannot load the built-in schema\n");
		return 1;
	}
	users = json_array();
	for (i = 0; i < 1000; i++)
		json_array_append_new(users, make_user(i));
	t0 = now_s();
	for (i = 0; i < n; i++) {
		json_t *u = json_array_get(users, (size_t)(i % 1000));
		int ok = 0;

		xts_scope_filter_eval(s, u, &ok, NULL);
		in_scope += ok;
		if (xts_mapping_apply(s, u, 0, &desired, NULL, &err) != 0) {
			fprintf(stderr, "bench_mapping: %s\n", err.message);
			return 1;
		}
		if (xts_mapping_diff(s, desired, last, &changes) == 0) {
			patched += json_object_size(changes) > 0;
			json_decref(changes);
		}
		json_decref(last);
		last = desired;
	}
	t1 = now_s();
	printf("bench_mapping: %ld users, built-in schema (%zu mappings): %.2f us/user, %.0f users/s "
	       "(in scope %ld, with changes %ld)\n",
	       n, xts_schema_mapping_count(s), (t1 - t0) * 1e6 / (double)n, (double)n / (t1 - t0),
	       in_scope, patched);
	json_decref(last);
	json_decref(users);
	xts_schema_free(s);
	return 0;
}
