/* SPDX-License-Identifier: MIT */
/* TAP checks of xts_store_op_foreach_refs, the walk the apply window refills
 * with (added with the benchmarks): reference ops only or every other kind,
 * in id order, planned and due-failed states, the max hint, and that it
 * returns the same rows as a filtered xts_store_op_foreach on a real file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "store.h"

static int n_test, n_fail;

static void
ok(int cond, const char *what)
{
	n_test++;
	if (!cond)
		n_fail++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", n_test, what);
}

struct seen {
	long long ids[64];
	int kinds[64];
	int n, stop_at;
};

static int
collect(void *arg, const struct xts_store_op *o)
{
	struct seen *s = arg;

	if (s->n < 64) {
		s->ids[s->n] = o->id;
		s->kinds[s->n] = o->kind;
		s->n++;
	}
	return s->stop_at > 0 && s->n >= s->stop_at ? 1 : 0;
}

static int
collect_filtered(void *arg, const struct xts_store_op *o)
{
	if (o->kind == XTS_OP_MANAGER)
		return 0;
	return collect(arg, o);
}

int
main(void)
{
	char dir[] = "/tmp/xts-check-refs-XXXXXX", db[256], p[300];
	struct xts_store *st = NULL;
	struct seen a, b;
	json_t *pl = json_pack("{s:s}", "manager", "m");
	long long id;
	int i, sorted = 1, kinds_ok = 1, same = 1;

	printf("1..8\n");
	if (mkdtemp(dir) == NULL || pl == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/xtsync.db", dir);
	if (xts_store_open_path(db, &st) != 0 || xts_store_job_ensure(st, "j") != 0)
		return 1;
	/* as an initial cycle plans them: create, manager, create, manager, ... */
	for (i = 0; i < 20; i++) {
		char sid[16];
		snprintf(sid, sizeof(sid), "s%02d", i);
		xts_store_op_add(st, "j", sid, XTS_OP_CREATE, pl, XTS_OP_PLANNED, 1, &id);
		xts_store_op_add(st, "j", sid, XTS_OP_MANAGER, pl, XTS_OP_PLANNED, 1, &id);
	}
	/* one failed update that is due, one that is not */
	xts_store_op_add(st, "j", "f1", XTS_OP_UPDATE, pl, XTS_OP_PLANNED, 1, &id);
	xts_store_op_start(st, id);
	xts_store_op_fail(st, id, XTS_EIO, "x", 1000);
	xts_store_op_add(st, "j", "f2", XTS_OP_MANAGER, pl, XTS_OP_PLANNED, 1, &id);
	xts_store_op_start(st, id);
	xts_store_op_fail(st, id, XTS_EIO, "x", 1000);

	memset(&a, 0, sizeof(a));
	ok(xts_store_op_foreach_refs(st, "j", XTS_OP_PLANNED, 0, 0, 0, 0, collect, &a) == 0 && a.n == 20,
	   "pass 1 walk: the 20 planned creates and no manager op");
	for (i = 0; i < a.n; i++) {
		kinds_ok &= a.kinds[i] == XTS_OP_CREATE;
		if (i > 0 && a.ids[i] <= a.ids[i - 1])
			sorted = 0;
	}
	ok(kinds_ok && sorted, "pass 1 rows are creates in id order");
	memset(&b, 0, sizeof(b));
	xts_store_op_foreach(st, "j", XTS_OP_PLANNED, 0, collect_filtered, &b);
	same = a.n == b.n && memcmp(a.ids, b.ids, sizeof(a.ids[0]) * (size_t)a.n) == 0;
	ok(same, "same rows as the unfiltered walk with the kind filter in the callback");
	memset(&a, 0, sizeof(a));
	kinds_ok = 1;
	ok(xts_store_op_foreach_refs(st, "j", XTS_OP_PLANNED, 0, 0, 1, 0, collect, &a) == 0 && a.n == 20,
	   "pass 2 walk: the 20 planned manager ops");
	for (i = 0; i < a.n; i++)
		kinds_ok &= a.kinds[i] == XTS_OP_MANAGER;
	ok(kinds_ok, "pass 2 rows are all manager ops");
	memset(&a, 0, sizeof(a));
	a.stop_at = 5;
	ok(xts_store_op_foreach_refs(st, "j", XTS_OP_PLANNED, 0, 0, 0, 5, collect, &a) == 1 && a.n == 5,
	   "max 5: five rows, the callback's stop is returned");
	{
		long long fifth = a.ids[4];

		memset(&a, 0, sizeof(a));
		ok(xts_store_op_foreach_refs(st, "j", XTS_OP_PLANNED, 0, fifth, 0, 0, collect, &a) == 0 &&
		   a.n == 15 && a.ids[0] > fifth && a.kinds[0] == XTS_OP_CREATE,
		   "after the fifth create's id: the 15 creates past it, nothing at or below it");
	}
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	xts_store_op_foreach_refs(st, "j", XTS_OP_FAILED, 2000, 0, 0, 0, collect, &a);
	xts_store_op_foreach_refs(st, "j", XTS_OP_FAILED, 500, 0, 0, 0, collect, &b);
	ok(a.n == 1 && a.kinds[0] == XTS_OP_UPDATE && b.n == 0,
	   "due failed ops: the update when due, nothing before its next attempt, not the manager op");
	xts_store_close(st);
	json_decref(pl);
	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	rmdir(dir);
	return n_fail == 0 ? 0 : 1;
}
