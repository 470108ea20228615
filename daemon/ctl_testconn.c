/* SPDX-License-Identifier: MIT */
/* `xtsyncctl test-connection JOB`: builds Graph clients for the job's source
 * and target tenants on a private uv loop, runs the policy check and prints
 * its lines (Microsoft's error code and which tenant must change what). It
 * does not talk to the daemon and writes nothing. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "buf.h"
#include "ctl_test_connection.h"
#include "err.h"
#include "engine.h"
#include "graph.h"
#include "log.h"
#include "mem.h"
#include "policy_check.h"
#include "uvglue.h"

struct tc_state {
	int done, code;
};

static void
tc_cb(void *arg, const struct xts_policy_result *r)
{
	struct tc_state *s = arg;
	struct xts_buf b = XTS_BUF_INIT;

	if (xts_policy_result_format(r, &b) == 0 && b.p != NULL)
		fputs(b.p, stdout);
	if (b.len > 0 && b.p[b.len - 1] != '\n')
		fputc('\n', stdout);
	xts_buf_free(&b);
	s->code = r->err == 0 && r->n == 0 ? 0 : 1;
	s->done = 1;
}

/* A credential that cannot be read (a missing file, one readable by others,
 * a credential name without $CREDENTIALS_DIRECTORY) is a mistake in the
 * config: FILE:LINE and XTS_ECONFIG (exit 2), as xtsyncd treats it. */
static int
graph_for(struct xts_graph_ctx *ctx, const struct xts_config *cfg, const struct xts_config_tenant *t,
	  struct xts_graph **out)
{
	bool secret = t->client_secret_file[0] != '\0';
	struct xts_tenant_conn c;
	struct xts_tenant_cred cred;
	int ret;

	ret = xts_engine_tenant_conn(t, &c, &cred);
	if (ret != 0 && ret != XTS_ENOMEM) {
		fprintf(stderr, "%s:%d: tenant %s: %s: cannot read the credential: %s\n", cfg->path,
			xts_config_key_line("tenant", t, secret ? "client_secret_file" : "client_key_file"), t->name,
			secret ? "client_secret_file" : "client_certificate_file or client_key_file",
			xts_strerror(ret));
		xts_tenant_cred_free(&cred);
		return XTS_ECONFIG;
	}
	if (ret == 0)
		ret = xts_graph_new(ctx, &c, out);
	xts_tenant_cred_free(&cred);
	if (ret != 0)
		fprintf(stderr, "xtsyncctl: tenant %s: %s\n", t->name, xts_strerror(ret));
	return ret;
}

int
xts_ctl_test_connection_main(const struct xts_config *cfg, int argc, char **argv)
{
	const struct xts_config_job *job;
	struct xts_evloop *ev = NULL;
	struct xts_graph_ctx *gctx = NULL;
	struct xts_graph *src = NULL, *tgt = NULL;
	struct xts_policy_check *pc = NULL;
	struct tc_state s = { 0, 1 };
	uv_loop_t loop;
	char link[256];
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: xtsyncctl test-connection JOB\n");
		return 2;
	}
	job = xts_config_job_find(cfg, argv[1]);
	if (job == NULL) {
		fprintf(stderr, "xtsyncctl: no job named '%s'\n", argv[1]);
		return 2;
	}
	if (uv_loop_init(&loop) != 0)
		return 1;
	ret = xts_uvglue_new(&loop, &ev);
	if (ret == 0)
		ret = xts_graph_ctx_new(ev, NULL, &gctx);
	if (ret == 0)
		ret = graph_for(gctx, cfg, job->source_tenant, &src);
	if (ret == 0)
		ret = graph_for(gctx, cfg, job->target_tenant, &tgt);
	if (ret == 0)
		ret = xts_engine_job_link_attr(job, link, sizeof(link));
	if (ret == 0)
		ret = xts_policy_check_start(src, tgt, NULL, NULL, link, tc_cb, &s, &pc);
	while (ret == 0 && !s.done && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	if (ret != 0 && ret != XTS_ECONFIG)
		fprintf(stderr, "xtsyncctl: test-connection: %s\n", xts_strerror(ret));
	else if (s.code == 0)
		printf("OK: job %s: %s -> %s\n", job->name, job->source, job->target);
	xts_policy_check_free(pc);
	xts_graph_free(src);
	xts_graph_free(tgt);
	xts_graph_ctx_free(gctx);
	xts_uvglue_free(ev);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	return ret == 0 ? s.code : ret == XTS_ECONFIG ? 2 : 1;
}
