/* SPDX-License-Identifier: MIT */
/* test-connection: tokens for both tenants, then the partner policies that
 * cross-tenant synchronization needs (MicrosoftDocs/entra-docs docs/identity/
 * multi-tenant-organizations/cross-tenant-synchronization-configure.md, its
 * "Test connection fails with AzureDirectoryB2BManagementPolicyCheckFailure"
 * section; Graph crossTenantAccessPolicyConfigurationPartner and
 * crossTenantIdentitySyncPolicyPartner). Changes no policy; with
 * XTS_PC_REGISTER_LINK it registers the engine's own default link attribute
 * (a directory extension of the target app) when that is missing. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "graph.h"
#include "graph_internal.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"
#include "policy_check.h"
#include "text.h"

#define MS_POLICY_CODE "AzureDirectoryB2BManagementPolicyCheckFailure"
#define MS_AUTOREDEEM "Policy permitting auto-redemption of invitations not configured."

/* Token requests per tenant when the token service answers busy (5xx, 429):
 * a moment's failure is retried. An authority that cannot be reached is
 * reported at once (the cycle fails; graph.c's requests retry transport
 * errors, the connection test does not wait for them). */
#define PC_TOKEN_ATTEMPTS 3

enum { Q_TGT_PARTNER, Q_TGT_SYNC, Q_SRC_PARTNER, Q_TGT_LINK, Q_SRC_ORG, Q_TGT_ORG, Q__N };

struct xts_policy_check {
	struct xts_graph *src, *tgt;
	xts_policy_cb cb;
	void *arg;
	struct xts_auth_wait *aw[2];
	/* a token request the service answered busy (5xx, 429) is asked
	 * again, with graph.c's back-off and Retry-After */
	struct xts_evtimer *retry[2];
	int tok_attempts[2];
	struct xts_graph_req *q[Q__N];
	int outstanding;
	int token_ok[2];
	int delivered;
	char *link_attr;
	unsigned flags;
	char *link_code, *link_details; /* the probe's 400, kept while registering */
	struct xts_policy_result r;
};

static int
add(struct xts_policy_check *pc, enum xts_policy_finding what, const char *code,
    const char *details, const char *fix)
{
	struct xts_policy_result *r = &pc->r;

	if (r->n >= XTS_PC__COUNT)
		return XTS_ERANGE;
	r->f[r->n].what = what;
	r->f[r->n].code = xts_strdup(code ? code : "");
	r->f[r->n].details = xts_strdup(details ? details : "");
	r->f[r->n].fix = xts_strdup(fix ? fix : "");
	r->n++;
	return 0;
}

static void
finish_if_done(struct xts_policy_check *pc)
{
	struct xts_policy_result *r = &pc->r;
	int i, auth = 0, pol = 0, cfg = 0, other = 0;

	if (pc->outstanding > 0 || pc->delivered)
		return;
	for (i = 0; i < r->n; i++) {
		switch (r->f[i].what) {
		case XTS_PC_SOURCE_AUTH:
		case XTS_PC_TARGET_AUTH:
			auth = 1;
			break;
		case XTS_PC_GRAPH_ERROR:
			other = 1;
			break;
		case XTS_PC_TARGET_LINK_ATTR:
			cfg = 1;
			break;
		default:
			pol = 1;
			break;
		}
	}
	r->err = auth ? XTS_EAUTH : pol ? XTS_EPOLICY : cfg ? XTS_ECONFIG : other ? XTS_EGRAPH : 0;
	pc->delivered = 1;
	pc->cb(pc->arg, r);
}

static int
is_true(json_t *obj, const char *a, const char *b)
{
	return json_is_true(json_object_get(json_object_get(obj, a), b));
}

static void
graph_error(struct xts_policy_check *pc, int target, const char *what, const struct xts_graph_result *res)
{
	char det[700], fix[300];
	const char *code = res->gerr && res->gerr->code[0] ? res->gerr->code : xts_errname(res->err);

	snprintf(det, sizeof(det), "%s: HTTP %ld %s", what, res->status,
		 res->gerr && res->gerr->message[0] ? res->gerr->message : xts_strerror(res->err));
	if (res->err == XTS_EAUTH) {
		/* the token expired in flight and its successor was refused: the
		 * credentials, as when the token step itself is refused */
		snprintf(fix, sizeof(fix), "check the %s tenant (%s) in the config: tenant_id, client_id "
			 "and its client secret or certificate", target ? "target" : "source",
			 target ? pc->r.target_tenant_id : pc->r.source_tenant_id);
		add(pc, target ? XTS_PC_TARGET_AUTH : XTS_PC_SOURCE_AUTH, code, det, fix);
		return;
	}
	add(pc, XTS_PC_GRAPH_ERROR, code, det,
	    res->status == 403 ? "grant the app the Policy.Read.All application permission (admin consent) in that tenant"
			       : "retry later; if it persists, check the tenant's graph_endpoint and network");
}

static void
on_tgt_partner(void *arg, const struct xts_graph_result *res)
{
	struct xts_policy_check *pc = arg;
	char fix[400];

	pc->q[Q_TGT_PARTNER] = NULL;
	pc->outstanding--;
	snprintf(fix, sizeof(fix),
		 "in the TARGET tenant %s: Cross-tenant access settings > organizational settings > add %s, "
		 "then Inbound access > Trust settings > check \"Automatically redeem invitations with the tenant %s\"",
		 pc->r.target_tenant_id, pc->r.source_tenant_id, pc->r.source_tenant_id);
	if (res->err == XTS_ENOENT)
		add(pc, XTS_PC_TARGET_NO_PARTNER, MS_POLICY_CODE, MS_AUTOREDEEM, fix);
	else if (res->err != 0)
		graph_error(pc, 1, "reading the target tenant's partner policy", res);
	else if (!is_true(res->body, "automaticUserConsentSettings", "inboundAllowed"))
		add(pc, XTS_PC_TARGET_INBOUND_DENIED, MS_POLICY_CODE, MS_AUTOREDEEM, fix);
	finish_if_done(pc);
}

static void
on_tgt_sync(void *arg, const struct xts_graph_result *res)
{
	struct xts_policy_check *pc = arg;
	char fix[400];

	pc->q[Q_TGT_SYNC] = NULL;
	pc->outstanding--;
	snprintf(fix, sizeof(fix),
		 "in the TARGET tenant %s: Cross-tenant access settings > %s > Inbound access > Cross-tenant sync > "
		 "check \"Allow users sync into this tenant\" (identitySynchronization userSyncInbound.isSyncAllowed)",
		 pc->r.target_tenant_id, pc->r.source_tenant_id);
	if (res->err == XTS_ENOENT ||
	    (res->err == 0 && !is_true(res->body, "userSyncInbound", "isSyncAllowed")))
		add(pc, XTS_PC_TARGET_SYNC_DENIED, MS_POLICY_CODE,
		    "Policy permitting synchronization of users into the target tenant not configured.", fix);
	else if (res->err != 0)
		graph_error(pc, 1, "reading the target tenant's identitySynchronization policy", res);
	finish_if_done(pc);
}

static void
on_src_partner(void *arg, const struct xts_graph_result *res)
{
	struct xts_policy_check *pc = arg;
	char fix[400];

	pc->q[Q_SRC_PARTNER] = NULL;
	pc->outstanding--;
	snprintf(fix, sizeof(fix),
		 "in the SOURCE tenant %s: Cross-tenant access settings > organizational settings > add %s, "
		 "then Outbound access > Trust settings > check \"Automatically redeem invitations with the tenant %s\"",
		 pc->r.source_tenant_id, pc->r.target_tenant_id, pc->r.target_tenant_id);
	if (res->err == XTS_ENOENT)
		add(pc, XTS_PC_SOURCE_NO_PARTNER, MS_POLICY_CODE, MS_AUTOREDEEM, fix);
	else if (res->err != 0)
		graph_error(pc, 0, "reading the source tenant's partner policy", res);
	else if (!is_true(res->body, "automaticUserConsentSettings", "outboundAllowed"))
		add(pc, XTS_PC_SOURCE_OUTBOUND_DENIED, MS_POLICY_CODE, MS_AUTOREDEEM, fix);
	finish_if_done(pc);
}

/* Today's finding for an unusable link attribute: the probe's own error and
 * the exact request that registers it. */
static void
add_link_finding(struct xts_policy_check *pc, const char *code, const char *details)
{
	const struct xts_tenant_conn *tc = xts_graph_conn(pc->tgt);
	char fix[700];
	/* extension_{appId without hyphens}_{name}: the fix names that
	 * application and that name (graph: extensionproperty-post). */
	char app[40], name[128];
	const char *la = pc->link_attr, *us;

	snprintf(app, sizeof(app), "%s", tc != NULL && tc->client_id != NULL ? tc->client_id : "?");
	snprintf(name, sizeof(name), "xtsyncSourceLink");
	if (la != NULL && strncmp(la, "extension_", 10) == 0 && strlen(la) > 43 && la[42] == '_' &&
	    strspn(la + 10, "0123456789abcdefABCDEF") == 32) {
		us = la + 10;
		snprintf(app, sizeof(app), "%.8s-%.4s-%.4s-%.4s-%.12s", us, us + 8, us + 12, us + 16, us + 20);
		snprintf(name, sizeof(name), "%s", la + 43);
	}
	snprintf(fix, sizeof(fix),
		 "in the TARGET tenant %s: register the directory extension for users "
		 "(POST /v1.0/applications(appId='%s')/extensionProperties with "
		 "{\"name\": \"%s\", \"dataType\": \"String\", "
		 "\"targetObjects\": [\"User\"]}), or set the job's link_attribute to "
		 "an attribute that exists", pc->r.target_tenant_id, app, name);
	add(pc, XTS_PC_TARGET_LINK_ATTR, code, details, fix);
}

/* The short name of the link attribute when it is a directory extension of
 * the target tenant's own app (extension_{its client id, no hyphens}_{name}),
 * else NULL: only then may the engine register it. */
static const char *
own_extension_name(const struct xts_policy_check *pc)
{
	const struct xts_tenant_conn *tc = xts_graph_conn(pc->tgt);
	const char *la = pc->link_attr, *c, *p;

	if (la == NULL || tc == NULL || tc->client_id == NULL || strncmp(la, "extension_", 10) != 0)
		return NULL;
	p = la + 10;
	for (c = tc->client_id; *c != '\0'; c++) {
		if (*c == '-')
			continue;
		if (*p == '\0' || tolower((unsigned char)*p) != tolower((unsigned char)*c))
			return NULL;
		p++;
	}
	if (p == la + 10 || *p != '_' || p[1] == '\0')
		return NULL;
	for (c = p + 1; *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return NULL;
	return p + 1;
}

static void
on_tgt_register(void *arg, const struct xts_graph_result *res)
{
	struct xts_policy_check *pc = arg;
	const struct xts_tenant_conn *tc = xts_graph_conn(pc->tgt);
	const char *app = tc != NULL && tc->client_id != NULL ? tc->client_id : "?";

	pc->q[Q_TGT_LINK] = NULL;
	pc->outstanding--;
	if (res->err == 0) {
		xts_info("registered directory extension %s on application %s in target tenant %s "
			 "(the job's link attribute)", pc->link_attr, app, pc->r.target_tenant_id);
	} else if (res->status == 400 && res->gerr != NULL && strstr(res->gerr->message, "already exists") != NULL) {
		/* A retried POST whose first attempt did land. */
		xts_info("directory extension %s is already registered on application %s", pc->link_attr, app);
	} else if (res->status == 400 || res->status == 404 || res->status == 405 || res->status == 501) {
		/* Not a permission (403) but no extension to be had here: the
		 * application object lives in another tenant (404), or the
		 * endpoint is a proxy or emulator without directory extensions.
		 * Users stay linked in the store and are matched by e-mail
		 * after a lost store; better than not syncing at all. */
		xts_warn("cannot register directory extension %s on application %s in target tenant %s: "
			 "HTTP %ld %s; running without it: users are linked in the store only and matched "
			 "by e-mail when the store does not know them (register it to restore the link "
			 "attribute)", pc->link_attr, app, pc->r.target_tenant_id, res->status,
			 res->gerr != NULL && res->gerr->code[0] != '\0' ? res->gerr->code : "-");
		pc->r.link_unavailable = 1;
	} else {
		xts_warn("cannot register directory extension %s on application %s: HTTP %ld %s",
			 pc->link_attr, app, res->status,
			 res->gerr != NULL && res->gerr->message[0] != '\0' ? res->gerr->message : xts_strerror(res->err));
		add_link_finding(pc, pc->link_code, pc->link_details);
	}
	finish_if_done(pc);
}

/* POST the missing link attribute on the target app (dataType String, for
 * users: graph application-post-extensionproperty). 0 when sent. */
static int
register_link(struct xts_policy_check *pc, const char *name)
{
	const struct xts_tenant_conn *tc = xts_graph_conn(pc->tgt);
	struct xts_buf u = XTS_BUF_INIT;
	json_t *body = json_pack("{s:s, s:s, s:[s]}", "name", name, "dataType", "String",
				 "targetObjects", "User");
	int ret = body == NULL ? XTS_ENOMEM : 0;

	if (ret == 0)
		ret = xts_buf_printf(&u, "/v1.0/applications(appId='%s')/extensionProperties", tc->client_id);
	if (ret == 0)
		ret = xts_graph_request(pc->tgt, "POST", u.p, body, 0, on_tgt_register, pc, &pc->q[Q_TGT_LINK]);
	if (ret == 0)
		pc->outstanding++;
	json_decref(body);
	xts_buf_free(&u);
	return ret;
}

static void
on_tgt_link(void *arg, const struct xts_graph_result *res)
{
	struct xts_policy_check *pc = arg;

	pc->q[Q_TGT_LINK] = NULL;
	pc->outstanding--;
	if (res->status == 400) {
		/* Graph: "Could not find a property named 'extension_..._x' on
		 * type 'microsoft.graph.user'" for an unregistered extension. */
		const char *code = res->gerr != NULL && res->gerr->code[0] != '\0' ? res->gerr->code : "Request_BadRequest";
		const char *det = res->gerr != NULL && res->gerr->message[0] != '\0' ? res->gerr->message :
				  "the link attribute cannot be filtered on";
		const char *own = own_extension_name(pc);

		if (own == NULL) {
			add_link_finding(pc, code, det);
		} else if (!(pc->flags & XTS_PC_REGISTER_LINK)) {
			/* test-connection: not a fault of the setup, the first
			 * cycle registers it (a refusal then is reported) */
			struct xts_buf n = XTS_BUF_INIT;

			pc->r.link_unregistered = 1;
			if (xts_buf_printf(&n, "the link attribute %s is not registered in target tenant %s "
					   "yet: the first cycle registers it on application %s (that needs "
					   "Application.ReadWrite.OwnedBy or .All; or register it yourself: "
					   "POST /v1.0/applications(appId='%s')/extensionProperties with "
					   "{\"name\": \"%s\", \"dataType\": \"String\", "
					   "\"targetObjects\": [\"User\"]})", pc->link_attr,
					   pc->r.target_tenant_id ? pc->r.target_tenant_id : "?",
					   xts_graph_conn(pc->tgt)->client_id, xts_graph_conn(pc->tgt)->client_id,
					   own) == 0) {
				xts_free(pc->r.note);
				pc->r.note = xts_buf_steal(&n);
			}
			xts_buf_free(&n);
		} else if (pc->flags & XTS_PC_DRY_RUN) {
			xts_info("dry run: would register directory extension %s on application %s",
				 pc->link_attr, xts_graph_conn(pc->tgt)->client_id);
			pc->r.link_unregistered = 1;
		} else {
			xts_free(pc->link_code);
			xts_free(pc->link_details);
			pc->link_code = xts_strdup(code);
			pc->link_details = xts_strdup(det);
			if (pc->link_code == NULL || pc->link_details == NULL || register_link(pc, own) != 0)
				add_link_finding(pc, code, det);
		}
	} else if (res->err != 0) {
		graph_error(pc, 1, "filtering the target tenant's users on the link attribute", res);
	}
	finish_if_done(pc);
}

static void
query(struct xts_policy_check *pc, int which, struct xts_graph *g, const char *url,
      xts_graph_cb cb)
{
	int ret;

	pc->outstanding++;
	ret = xts_graph_request(g, "GET", url, NULL, 0, cb, pc, &pc->q[which]);
	if (ret != 0) {
		pc->outstanding--;
		add(pc, XTS_PC_GRAPH_ERROR, xts_errname(ret), "cannot send a policy request",
		    "check the tenant configuration");
	}
}

static void
start_queries(struct xts_policy_check *pc)
{
	struct xts_buf u = XTS_BUF_INIT;

	if (pc->token_ok[1]) {
		if (xts_buf_printf(&u, "/v1.0/policies/crossTenantAccessPolicy/partners/%s",
				   pc->r.source_tenant_id) == 0)
			query(pc, Q_TGT_PARTNER, pc->tgt, u.p, on_tgt_partner);
		xts_buf_reset(&u);
		if (xts_buf_printf(&u, "/v1.0/policies/crossTenantAccessPolicy/partners/%s/identitySynchronization",
				   pc->r.source_tenant_id) == 0)
			query(pc, Q_TGT_SYNC, pc->tgt, u.p, on_tgt_sync);
		xts_buf_reset(&u);
		/* Any value will do: only whether the property exists matters. */
		if (pc->link_attr != NULL &&
		    xts_buf_printf(&u, "/v1.0/users?$filter=%s%%20eq%%20%%27xtsync-probe%%27&$select=id",
				   pc->link_attr) == 0)
			query(pc, Q_TGT_LINK, pc->tgt, u.p, on_tgt_link);
		xts_buf_reset(&u);
	}
	if (pc->token_ok[0]) {
		if (xts_buf_printf(&u, "/v1.0/policies/crossTenantAccessPolicy/partners/%s",
				   pc->r.target_tenant_id) == 0)
			query(pc, Q_SRC_PARTNER, pc->src, u.p, on_src_partner);
	}
	xts_buf_free(&u);
}

/* The "tid" claim of an access token (a JWT from Entra ID), as a new string,
 * or NULL. Used when the config names the tenant by domain: the partner
 * policy URLs need the GUID. The token is not verified: it only names. */
static char *
token_tid(const char *token)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const char *p = token ? strchr(token, '.') : NULL, *q, *c;
	struct xts_buf raw = XTS_BUF_INIT;
	unsigned acc = 0;
	int bits = 0;
	json_t *j;
	char *tid = NULL;

	if (p == NULL)
		return NULL;
	p++;
	q = strchr(p, '.');
	if (q == NULL)
		return NULL;
	for (; p < q; p++) {
		c = strchr(tab, *p);
		if (c == NULL || *p == '\0')
			goto done;
		acc = (acc << 6) | (unsigned)(c - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (xts_buf_putc(&raw, (char)((acc >> bits) & 0xff)) != 0)
				goto done;
		}
	}
	j = xts_json_loadb(xts_buf_str(&raw), raw.len, 0, NULL);
	if (xts_is_guid(json_string_value(json_object_get(j, "tid"))))
		tid = xts_strdup(json_string_value(json_object_get(j, "tid")));
	json_decref(j);
done:
	xts_buf_free(&raw);
	return tid;
}

/* A tenant configured by domain whose token does not tell its GUID (access
 * tokens "must be treated as opaque strings", entra-docs
 * identity-platform/access-tokens.md): the organization's id ("The tenant
 * ID", resources/organization.md), read with that tenant's own token. The
 * partner policies are keyed by GUID. Without an answer the domain stays. */
static void
on_org(struct xts_policy_check *pc, int which, const struct xts_graph_result *res)
{
	char **tidp = which ? &pc->r.target_tenant_id : &pc->r.source_tenant_id;
	const char *id = json_string_value(
		json_object_get(json_array_get(json_object_get(res->body, "value"), 0), "id"));

	pc->q[which ? Q_TGT_ORG : Q_SRC_ORG] = NULL;
	pc->outstanding--;
	if (res->err == 0 && xts_is_guid(id)) {
		char *d = xts_strdup(id);

		if (d != NULL) {
			xts_free(*tidp);
			*tidp = d;
		}
	}
	if (pc->outstanding == 0)
		start_queries(pc);
	finish_if_done(pc);
}

static void
on_src_org(void *arg, const struct xts_graph_result *res)
{
	on_org(arg, 0, res);
}

static void
on_tgt_org(void *arg, const struct xts_graph_result *res)
{
	on_org(arg, 1, res);
}

/* Both tokens are in: look up a GUID still missing, then the policies. */
static void
tokens_done(struct xts_policy_check *pc)
{
	if (pc->token_ok[0] && !xts_is_guid(pc->r.source_tenant_id))
		query(pc, Q_SRC_ORG, pc->src, "/v1.0/organization?$select=id", on_src_org);
	if (pc->token_ok[1] && !xts_is_guid(pc->r.target_tenant_id))
		query(pc, Q_TGT_ORG, pc->tgt, "/v1.0/organization?$select=id", on_tgt_org);
	if (pc->outstanding == 0)
		start_queries(pc);
}

static void on_src_token(void *arg, int err, const char *token, long aadsts, const char *detail);
static void on_tgt_token(void *arg, int err, const char *token, long aadsts, const char *detail);
static void retry_src(void *arg);
static void retry_tgt(void *arg);

static int
ask_token(struct xts_policy_check *pc, int which)
{
	struct xts_graph *g = which ? pc->tgt : pc->src;

	return xts_auth_get(xts_graph_ctx_auth(g->ctx), &g->tc, 0, which ? on_tgt_token : on_src_token,
			    pc, &pc->aw[which]);
}

/* Ask for which's token again in delay ms (its timer made on first use). */
static int
arm_retry(struct xts_policy_check *pc, int which, long long delay)
{
	struct xts_graph *g = which ? pc->tgt : pc->src;
	int ret = 0;

	if (pc->retry[which] == NULL)
		ret = xts_ev_timer_new(xts_graph__ev(g), which ? retry_tgt : retry_src, pc, &pc->retry[which]);
	return ret == 0 ? xts_ev_timer_start(pc->retry[which], delay) : ret;
}

static void
on_token(struct xts_policy_check *pc, int which, int err, const char *token, long aadsts,
	 const char *detail)
{
	char **tidp = which ? &pc->r.target_tenant_id : &pc->r.source_tenant_id;
	struct xts_graph *g = which ? pc->tgt : pc->src;
	const struct xts_tenant_conn *tc = xts_graph_conn(g);
	char code[32], fix[300];

	pc->aw[which] = NULL;
	if ((err == XTS_ESERVER || err == XTS_ETHROTTLED) && pc->tok_attempts[which] + 1 < PC_TOKEN_ATTEMPTS) {
		long long delay = xts_graph__token_delay_ms(g, ++pc->tok_attempts[which]);

		if (arm_retry(pc, which, delay) == 0) {
			xts_log_rl(XTS_LOG_INFO, 10000, 20,
				   "policy check: %s: token endpoint: %s; retry in %lld ms", tc->name,
				   xts_strerror(err), delay);
			return;
		}
		err = XTS_ENOMEM;
		detail = "cannot arm a timer";
	}
	pc->outstanding--;
	if (err == 0) {
		pc->token_ok[which] = 1;
		if (!xts_is_guid(*tidp)) {
			char *tid = token_tid(token);

			if (tid != NULL) {
				xts_free(*tidp);
				*tidp = tid;
			}
		}
	} else {
		if (aadsts != 0)
			snprintf(code, sizeof(code), "AADSTS%ld", aadsts);
		else
			snprintf(code, sizeof(code), "%s", xts_errname(err));
		snprintf(fix, sizeof(fix),
			 "check tenant \"%s\" in the config: tenant_id, client_id and its %s (%s tenant)",
			 tc->name, tc->client_secret ? "client_secret_file" : "client certificate and key",
			 which ? "target" : "source");
		if (err == XTS_EAUTH)
			add(pc, which ? XTS_PC_TARGET_AUTH : XTS_PC_SOURCE_AUTH, code, detail, fix);
		else /* token service busy or unreachable: not a credential problem */
			add(pc, XTS_PC_GRAPH_ERROR, code, detail,
			    "the token endpoint failed or was unreachable; check the authority URL and the network, then retry");
	}
	if (pc->aw[0] == NULL && pc->aw[1] == NULL && pc->outstanding == 0)
		tokens_done(pc);
	finish_if_done(pc);
}

static void
on_src_token(void *arg, int err, const char *token, long aadsts, const char *detail)
{
	on_token(arg, 0, err, token, aadsts, detail);
}

static void
retry_token(struct xts_policy_check *pc, int which)
{
	int ret = ask_token(pc, which);

	if (ret != 0)
		on_token(pc, which, ret, NULL, 0, xts_strerror(ret));
}

static void
retry_src(void *arg)
{
	retry_token(arg, 0);
}

static void
retry_tgt(void *arg)
{
	retry_token(arg, 1);
}

static void
on_tgt_token(void *arg, int err, const char *token, long aadsts, const char *detail)
{
	on_token(arg, 1, err, token, aadsts, detail);
}

int
xts_policy_check_start(struct xts_graph *src, struct xts_graph *tgt, const char *source_tid,
		       const char *target_tid, const char *link_attr, xts_policy_cb cb, void *arg,
		       struct xts_policy_check **out)
{
	return xts_policy_check_start_ex(src, tgt, source_tid, target_tid, link_attr, 0, cb, arg, out);
}

int
xts_policy_check_start_ex(struct xts_graph *src, struct xts_graph *tgt, const char *source_tid,
			  const char *target_tid, const char *link_attr, unsigned flags, xts_policy_cb cb,
			  void *arg, struct xts_policy_check **out)
{
	struct xts_policy_check *pc;
	int ret;

	if (src == NULL || tgt == NULL || cb == NULL)
		return XTS_EINVAL;
	pc = xts_calloc(1, sizeof(*pc));
	if (pc == NULL)
		return XTS_ENOMEM;
	pc->src = src;
	pc->tgt = tgt;
	pc->cb = cb;
	pc->arg = arg;
	pc->r.source_tenant_id = xts_strdup(source_tid ? source_tid : xts_graph_conn(src)->tenant_id);
	pc->r.target_tenant_id = xts_strdup(target_tid ? target_tid : xts_graph_conn(tgt)->tenant_id);
	pc->link_attr = link_attr != NULL ? xts_strdup(link_attr) : NULL;
	pc->flags = flags;
	if (pc->r.source_tenant_id == NULL || pc->r.target_tenant_id == NULL ||
	    (link_attr != NULL && pc->link_attr == NULL)) {
		ret = XTS_ENOMEM;
		goto fail;
	}
	pc->outstanding = 2;
	ret = ask_token(pc, 0);
	if (ret != 0)
		goto fail;
	ret = ask_token(pc, 1);
	if (ret != 0)
		goto fail;
	if (out != NULL)
		*out = pc;
	return 0;
fail:
	xts_policy_check_free(pc);
	return ret;
}

void
xts_policy_check_free(struct xts_policy_check *pc)
{
	int i;

	if (pc == NULL)
		return;
	for (i = 0; i < 2; i++) {
		xts_auth_cancel(pc->aw[i]);
		xts_ev_timer_free(pc->retry[i]);
	}
	for (i = 0; i < Q__N; i++)
		xts_graph_cancel(pc->q[i]);
	for (i = 0; i < pc->r.n; i++) {
		xts_free(pc->r.f[i].code);
		xts_free(pc->r.f[i].details);
		xts_free(pc->r.f[i].fix);
	}
	xts_free(pc->r.source_tenant_id);
	xts_free(pc->r.note);
	xts_free(pc->r.target_tenant_id);
	xts_free(pc->link_attr);
	xts_free(pc->link_code);
	xts_free(pc->link_details);
	xts_free(pc);
}

int
xts_policy_result_format(const struct xts_policy_result *r, struct xts_buf *out)
{
	int i, ret = 0;

	if (r->n == 0) {
		ret = xts_buf_printf(out,
				     "OK: tokens for both tenants; target %s allows user sync and "
				     "auto-redemption from source %s; source allows auto-redemption "
				     "towards the target\n",
				     r->target_tenant_id ? r->target_tenant_id : "?",
				     r->source_tenant_id ? r->source_tenant_id : "?");
		if (ret == 0 && r->note != NULL)
			ret = xts_buf_printf(out, "Note: %s\n", r->note);
		return ret;
	}
	for (i = 0; i < r->n && ret == 0; i++)
		ret = xts_buf_printf(out, "Error code: %s\nDetails: %s\nFix: %s\n",
				     r->f[i].code ? r->f[i].code : "",
				     r->f[i].details ? r->f[i].details : "",
				     r->f[i].fix ? r->f[i].fix : "");
	return ret;
}
