/* SPDX-License-Identifier: MIT */
/* Benchmark 1, the engine alone (no network): synthesizes users/delta and
 * groups/delta pages as Graph sends them (JSON text) and pushes them through
 * the initial cycle's read-and-decide path (page parse, per-page store
 * transaction, scope, built-in schema mappings, diff, planned operations) and
 * the post-round step (sweep walk, delta link), on a real SQLite file in a
 * temporary directory. Prints users/s on one core and peak RSS; asserts no time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "engine_internal.h"
#include "err.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"

#define GROUP_ID "0f0f0f0f-0000-4000-8000-00000000beef"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
uid(char *buf, size_t len, long i)
{
	snprintf(buf, len, "%08lx-1111-4000-8000-%012ld", (unsigned long)(i * 2654435761UL) & 0xffffffffUL,
		 i % 1000000000000L);
}

/* One users/delta page as Graph sends it for the engine's $select. */
static int
users_page(struct xts_buf *b, long first, long n, long total, int last)
{
	static const char *const first_names[] = { "Zoë", "Łukasz", "Anna", "José", "Mette", "Ömer" };
	static const char *const last_names[] = { "Müller", "Kowalski", "Nørgaard", "García", "Öztürk" };
	long i;
	int ret;

	xts_buf_reset(b);
	ret = xts_buf_printf(b, "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users(id,"
			     "displayName,mail)\",\"value\":[");
	for (i = first; i < first + n && ret == 0; i++) {
		char id[64], mgr[64];
		const char *gn = first_names[i % 6], *sn = last_names[i % 5];
		uid(id, sizeof(id), i);
		uid(mgr, sizeof(mgr), (i - 1) / 8);
		ret = xts_buf_printf(b, "%s{\"id\":\"%s\",\"userType\":\"Member\",\"creationType\":null,"
				     "\"userPrincipalName\":\"u%ld@contoso.example\",\"accountEnabled\":%s,"
				     "\"displayName\":\"%s %s %ld\",\"mail\":\"u%ld@contoso.example\","
				     "\"givenName\":\"%s\",\"surname\":\"%s\",\"mailNickname\":\"u%ld\","
				     "\"department\":\"Dept %ld\",\"jobTitle\":\"Engineer\",\"employeeId\":\"E%07ld\","
				     "\"companyName\":\"Contoso\",\"city\":\"Kraków\",\"country\":\"Poland\","
				     "\"state\":null,\"postalCode\":\"30-%03ld\",\"streetAddress\":\"ul. Długa %ld\","
				     "\"officeLocation\":\"B%ld\",\"mobilePhone\":\"+48 600 %06ld\","
				     "\"businessPhones\":[\"+48 12 %07ld\"],\"preferredLanguage\":\"pl-PL\","
				     "\"usageLocation\":\"PL\"%s%s%s}",
				     i > first ? "," : "", id, i, i % 50 == 49 ? "false" : "true", gn, sn, i, i,
				     gn, sn, i, i % 40, i, i % 1000, i % 300, i % 20, i % 1000000, i % 10000000,
				     i > 0 ? ",\"manager@delta\":[{\"@odata.type\":\"#microsoft.graph.user\",\"id\":\"" : "",
				     i > 0 ? mgr : "", i > 0 ? "\"}]" : "");
	}
	if (ret == 0)
		ret = xts_buf_printf(b, "],\"%s\":\"https://graph.microsoft.com/v1.0/users/delta?$%s=%ld-%ld\"}",
				     last ? "@odata.deltaLink" : "@odata.nextLink",
				     last ? "deltatoken" : "skiptoken", first + n, total);
	return ret;
}

/* One members@delta page as lib/graph_delta.c hands it to groups_cb. */
static int
groups_page(struct eng_cycle *cy, long first, long n, int last)
{
	struct xts_member_event ev[1000];
	static char ids[1000][64];
	long i;

	for (i = 0; i < n; i++) {
		uid(ids[i], sizeof(ids[i]), first + i);
		ev[i].group_id = GROUP_ID;
		ev[i].member_id = ids[i];
		ev[i].odata_type = "#microsoft.graph.user";
		ev[i].removed = 0;
	}
	return eng_groups_page(cy, ev, (size_t)n, last);
}

/* lib/graph.c parses every response body; lib/engine_cycle.c's users_cb
 * hands the page's value array to eng_users_page. */
static int
users_page_apply(struct eng_cycle *cy, const char *text, size_t len, int last, long *users)
{
	json_error_t je;
	json_t *page = xts_json_loadb(text, len, 0, &je), *value;
	int ret;

	if (page == NULL) {
		fprintf(stderr, "bench_engine: page does not parse: %s\n", je.text);
		return XTS_EPARSE;
	}
	value = json_object_get(page, "value");
	*users += (long)json_array_size(value);
	ret = eng_users_page(cy, value, last);
	json_decref(page);
	return ret;
}

static int
sweep_cb(void *arg, const struct xts_store_user *u)
{
	struct eng_cycle *cy = arg;

	if (u->deleted)
		return 0;
	return eng_plan_user(cy, u->source_id, u->attrs, 1);
}

static int
count_op(void *arg, const struct xts_store_op *o)
{
	long long *n = arg;

	n[o->kind == XTS_OP_MANAGER]++;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_engine [--users N] [--page N] [--scope all|assigned] [--dir DIR]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	long n = 100000, page = 100, i, users = 0;
	int scope = XTS_SCOPE_ASSIGNED, ret, a;
	const char *dir = NULL;
	char tmpl[] = "/tmp/xts-bench-engine-XXXXXX", dbp[512];
	struct xts_store *st = NULL;
	struct xts_engine e;
	struct eng_schema es;
	struct eng_tenant src, tgt;
	struct eng_cycle cy;
	struct xts_buf b = XTS_BUF_INIT;
	char *groups[1] = { (char *)GROUP_ID };
	double t0, c0, tg, tu, tp, gen = 0, cpu_total;
	long long nops[2] = { 0, 0 }, in_scope = 0;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--users") == 0 && a + 1 < argc)
			n = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--page") == 0 && a + 1 < argc)
			page = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--scope") == 0 && a + 1 < argc)
			scope = strcmp(argv[++a], "all") == 0 ? XTS_SCOPE_ALL : XTS_SCOPE_ASSIGNED;
		else if (strcmp(argv[a], "--dir") == 0 && a + 1 < argc)
			dir = argv[++a];
		else
			usage();
	}
	if (n <= 0 || page <= 0 || page > 1000)
		usage();
	/* The allocators the daemon runs with (xtsyncd.c). */
	if (xts_mem_install() != 0) {
		fprintf(stderr, "bench_engine: xts_mem_install failed\n");
		return 1;
	}
	xts_log_set_level(XTS_LOG_WARNING);
	if (dir == NULL) {
		dir = mkdtemp(tmpl);
		if (dir == NULL) {
			perror("bench_engine: mkdtemp");
			return 1;
		}
	}
	snprintf(dbp, sizeof(dbp), "%s/xtsync.db", dir);
	memset(&e, 0, sizeof(e));
	memset(&es, 0, sizeof(es));
	memset(&src, 0, sizeof(src));
	memset(&tgt, 0, sizeof(tgt));
	memset(&cy, 0, sizeof(cy));
	if (xts_store_open_path(dbp, &st) != 0 || xts_schema_builtin(&es.s) != 0) {
		fprintf(stderr, "bench_engine: cannot open the store or the built-in schema\n");
		return 1;
	}
	es.refs = 1;
	src.tenant_id = (char *)"11111111-1111-4111-8111-111111111111";
	tgt.tenant_id = (char *)"22222222-2222-4222-8222-222222222222";
	e.o.store = st;
	e.o.window = 200;
	cy.e = &e;
	cy.st = st;
	cy.sch = &es;
	cy.src = &src;
	cy.tgt = &tgt;
	cy.kind = XTS_CYCLE_INITIAL;
	cy.c.name = (char *)"bench";
	cy.c.link_attr = (char *)"extension_2222222222224222822222222222abcd_xtsyncSourceLink";
	cy.c.notify = (char *)"";
	cy.c.scope = scope;
	cy.c.groups = groups;
	cy.c.n_groups = scope == XTS_SCOPE_ASSIGNED ? 1 : 0;
	cy.c.deprovision = XTS_DEPROVISION_DISABLE;
	cy.changed = json_object();
	ret = xts_store_job_ensure(st, cy.c.name);
	if (ret == 0)
		ret = xts_store_cycle_begin(st, cy.c.name, XTS_CYCLE_INITIAL, xts_wall_ms(), &cy.id);
	t0 = now_s();
	c0 = cpu_s();
	/* groups phase: members@delta of the assigned group, 1,000 per page */
	for (i = 0; ret == 0 && cy.c.n_groups > 0 && i < n; i += 1000)
		ret = groups_page(&cy, i, i + 1000 <= n ? 1000 : n - i, i + 1000 >= n);
	/* the end of the walk (groups_done) */
	if (ret == 0)
		ret = eng_groups_flush(&cy);
	tg = now_s();
	/* users phase: as step_users, then page after page */
	if (ret == 0) {
		int yes = 0;
		ret = xts_store_job_untouched(st, cy.c.name, &yes);
		cy.untouched = yes != 0;
	}
	for (i = 0; ret == 0 && i < n; i += page) {
		long m = i + page <= n ? page : n - i;
		double g0 = now_s();
		ret = users_page(&b, i, m, n, i + m >= n);
		gen += now_s() - g0;
		if (ret == 0)
			ret = users_page_apply(&cy, b.p, b.len, i + m >= n, &users);
	}
	tu = now_s();
	/* post: sweep walk (nobody to sweep on a full read) and the delta link */
	if (ret == 0)
		ret = xts_store_begin(st);
	if (ret == 0)
		ret = xts_store_user_foreach(st, cy.c.name, cy.id, sweep_cb, &cy);
	if (ret == 0)
		ret = xts_store_job_set_delta(st, cy.c.name, "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x");
	if (ret == 0)
		ret = xts_store_commit(st);
	if (ret == 0)
		ret = xts_store_sync(st);
	tp = now_s();
	cpu_total = cpu_s() - c0;
	if (ret != 0) {
		fprintf(stderr, "bench_engine: the cycle failed: %s\n", xts_strerror(ret));
		return 1;
	}
	xts_store_op_foreach(st, cy.c.name, XTS_OP_PLANNED, 0, count_op, nops);
	xts_store_user_count(st, cy.c.name, 1, &in_scope);
	printf("bench_engine: %ld users (scope %s, pages of %ld, built-in schema, %zu mappings), store %s\n",
	       users, scope == XTS_SCOPE_ALL ? "all" : "assigned, 1 group", page,
	       xts_schema_mapping_count(es.s), dbp);
	printf("bench_engine:   groups phase %.2f s, users phase %.2f s (of which page synthesis %.2f s), "
	       "post %.2f s\n", tg - t0, tu - tg, gen, tp - tu);
	printf("bench_engine:   in scope %lld, planned creates %lld, planned manager ops %lld\n", in_scope,
	       nops[0], nops[1]);
	printf("bench_engine: users/s %.0f (wall, excluding page synthesis), cpu %.2f s, peak RSS %.1f MiB\n",
	       (double)users / (tp - t0 - gen), cpu_total, (double)maxrss_kib() / 1024.0);
	printf("RESULT engine users=%ld users_per_s=%.0f rss_mib=%.1f creates=%lld\n", users,
	       (double)users / (tp - t0 - gen), (double)maxrss_kib() / 1024.0, nops[0]);
	xts_buf_free(&b);
	json_decref(cy.changed);
	xts_free(cy.mev);
	xts_store_close(st);
	xts_schema_free(es.s);
	if (strcmp(dir, tmpl) == 0) {
		char p[600];
		const char *sfx[] = { "", "-wal", "-shm" };
		for (a = 0; a < 3; a++) {
			snprintf(p, sizeof(p), "%s%s", dbp, sfx[a]);
			unlink(p);
		}
		rmdir(dir);
	}
	return 0;
}
