/* SPDX-License-Identifier: MIT */
/* test-connection: get tokens for a job's source and target tenants and check
 * the cross-tenant access policies cross-tenant synchronization needs, with
 * Microsoft's own error codes and which tenant must change which setting. It
 * reads policies only; it never changes them (with XTS_PC_REGISTER_LINK it may
 * register the engine's own link attribute on the target app). */
#ifndef XTS_POLICY_CHECK_H
#define XTS_POLICY_CHECK_H

#include "buf.h"
#include "graph.h"

enum xts_policy_finding {
	XTS_PC_OK = 0,
	XTS_PC_SOURCE_AUTH,          /* no token for the source tenant (AADSTS in detail) */
	XTS_PC_TARGET_AUTH,          /* no token for the target tenant */
	XTS_PC_TARGET_NO_PARTNER,    /* target has no partner config for the source */
	XTS_PC_TARGET_SYNC_DENIED,   /* target: identitySynchronization userSyncInbound.isSyncAllowed false/absent */
	XTS_PC_TARGET_INBOUND_DENIED,/* target: automaticUserConsentSettings.inboundAllowed false */
	XTS_PC_SOURCE_NO_PARTNER,    /* source has no partner config for the target */
	XTS_PC_SOURCE_OUTBOUND_DENIED,/* source: automaticUserConsentSettings.outboundAllowed false */
	XTS_PC_TARGET_LINK_ATTR,     /* target: the link attribute is not a user property there
					(directory extension not registered) */
	XTS_PC_GRAPH_ERROR,          /* a policy read failed otherwise (permissions, transport) */
	XTS_PC__COUNT
};

/* Result: ok when n == 0. Strings are owned by the result (borrowed by the
 * callback; copy what you keep). */
struct xts_policy_result {
	int err;                 /* 0, XTS_EAUTH, XTS_EPOLICY, XTS_ECONFIG (link attribute) or another XTS_E* */
	int n;                   /* findings */
	struct {
		enum xts_policy_finding what;
		char *code;      /* Microsoft's error code, e.g. "AzureDirectoryB2BManagementPolicyCheckFailure", "AADSTS7000215" */
		char *details;   /* Microsoft's words */
		char *fix;       /* which tenant must change which setting */
	} f[XTS_PC__COUNT];
	int link_unregistered;   /* XTS_PC_DRY_RUN, or no XTS_PC_REGISTER_LINK: the own link
				    attribute is not registered yet (a real run registers it; no
				    target user can carry it) */
	char *note;              /* test-connection: what the first cycle will still do (the link
				    attribute to register), or NULL */
	int link_unavailable;    /* the target's Graph has no such attribute and refused to
				    register it (400/404/405/501): run without it (warned) */
	char *source_tenant_id;  /* GUIDs as used in the policy URLs */
	char *target_tenant_id;
};

typedef void (*xts_policy_cb)(void *arg, const struct xts_policy_result *r);

struct xts_policy_check;

/* Start the check for src -> tgt (both borrowed; must outlive the check).
 * source_tid/target_tid: the tenants' GUIDs (the partner URLs need GUIDs), or
 * NULL to use xts_graph_conn()'s tenant_id; when that is a domain, the "tid"
 * claim of the tenant's access token is used instead.
 * cb fires once from the loop. *out may be NULL; free it with
 * xts_policy_check_free (after the callback, or to cancel). Returns 0 or
 * XTS_E*. */
int xts_policy_check_start(struct xts_graph *src, struct xts_graph *tgt, const char *source_tid,
			   const char *target_tid, const char *link_attr, xts_policy_cb cb, void *arg,
			   struct xts_policy_check **out);
/* Flags for xts_policy_check_start_ex. */
enum {
	/* When link_attr is a directory extension of the target tenant's own app
	 * (extension_{client id without hyphens}_{name}) and is not registered,
	 * POST it (dataType String, targetObjects User) instead of reporting
	 * XTS_PC_TARGET_LINK_ATTR; the finding stays when the POST is refused. */
	XTS_PC_REGISTER_LINK = 1,
	/* With XTS_PC_REGISTER_LINK: write nothing; log what would be
	 * registered and report no finding for it. */
	XTS_PC_DRY_RUN = 2
};
int xts_policy_check_start_ex(struct xts_graph *src, struct xts_graph *tgt, const char *source_tid,
			      const char *target_tid, const char *link_attr, unsigned flags,
			      xts_policy_cb cb, void *arg, struct xts_policy_check **out);
void xts_policy_check_free(struct xts_policy_check *pc);

/* Append the human-readable lines for r to out ("OK: ..." or, per finding,
 * "Error code: X", "Details: ...", "Fix: ..."). 0 or XTS_ENOMEM. */
int xts_policy_result_format(const struct xts_policy_result *r, struct xts_buf *out);

#endif
