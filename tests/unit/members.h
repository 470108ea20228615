/* SPDX-License-Identifier: MIT */
/* The number of a job's groups a member is recorded in, counted by the unit
 * tests through the store's own walk (the same connection, so a batch not
 * yet committed is seen). The engine asks only whether there is any
 * (xts_store_member_any); an exact count is a test's question. */
#ifndef XTS_TEST_MEMBERS_H
#define XTS_TEST_MEMBERS_H

#include <string.h>

#include "store.h"

struct xts_test_members {
	const char *member;
	long long n;
};

static inline int
xts_test_members_cb(void *arg, const char *group_id, const char *member_id)
{
	struct xts_test_members *m = arg;

	(void)group_id;
	if (strcmp(member_id, m->member) == 0)
		m->n++;
	return 0;
}

/* *n = groups of job that member is in; the walk's return code. */
static inline int
xts_test_member_groups(struct xts_store *st, const char *job, const char *member, long long *n)
{
	struct xts_test_members m = { member, 0 };
	int ret = xts_store_member_foreach(st, job, NULL, xts_test_members_cb, &m);

	*n = m.n;
	return ret;
}

#endif
