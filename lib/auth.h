/* SPDX-License-Identifier: MIT */
/* OAuth2 client-credentials tokens for Microsoft Graph: client secret or a
 * certificate (PS256 JWT client assertion), cached per (tenant, app) and
 * refreshed before expiry; AADSTS errors mapped to messages and XTS_EAUTH.
 * It does not read secret files (secret.c does) and never logs a secret, a
 * token or an assertion. */
#ifndef XTS_AUTH_H
#define XTS_AUTH_H

#include <stddef.h>

#include "http.h"

/* One tenant as the Graph client sees it; filled by the engine from the
 * config. All strings are borrowed by the call they are passed to and
 * copied where kept. */
struct xts_tenant_conn {
	const char *name;           /* config section name, for logs */
	const char *tenant_id;      /* GUID or initial domain */
	const char *client_id;
	const char *client_secret;  /* value, or NULL */
	const char *cert_pem;       /* PEM text of the app certificate, or NULL */
	const char *key_pem;        /* PEM text of its private key, or NULL */
	const char *authority;      /* e.g. "https://login.microsoftonline.com"; NULL = that */
	const char *graph_endpoint; /* e.g. "https://graph.microsoft.com"; NULL = that */
	const char *ca_file;        /* extra trust anchor, or NULL */
	int size_class;             /* XTS_SIZE_SMALL/MEDIUM/LARGE (throttle.h); 0 = small */
	int max_in_flight;          /* 0 = default */
};

/* Graph's client-credentials scope in the global service. */
#define XTS_GRAPH_SCOPE "https://graph.microsoft.com/.default"

struct xts_auth;
struct xts_auth_wait;

/* Result of a token request. token and detail are borrowed (valid during the
 * callback). err: 0, XTS_EAUTH (credentials refused: detail names the AADSTS
 * code and Microsoft's meaning — the engine quarantines on this one only),
 * XTS_ESERVER / XTS_ETHROTTLED (the token service answered 5xx / 429: retry),
 * or a transport error (XTS_EHTTP, XTS_ETLS, XTS_ETIMEDOUT, ...). aadsts is
 * the AADSTS number or 0. */
typedef void (*xts_auth_cb)(void *arg, int err, const char *token, long aadsts,
			    const char *detail);

/* Token cache on top of http (borrowed). Returns 0 or XTS_ENOMEM. */
int xts_auth_new(struct xts_http *http, struct xts_auth **out);
/* Timeout of one token request: ms (at most 60 s, the default); ms <= 0
 * keeps the current one. */
void xts_auth_set_timeout(struct xts_auth *a, long ms);
/* Cancels waiters (their callbacks do not fire) and wipes tokens. */
void xts_auth_free(struct xts_auth *a);

/* Get a token for tc. A cached token with enough life left is delivered from
 * the loop on the next iteration (never synchronously); otherwise one token
 * request per (tenant, app) is in flight at a time and all waiters share it.
 * force: 1 ignores a cached token (after a 401). *out (may be NULL) lets the
 * caller cancel with xts_auth_cancel until cb has run. Returns 0, XTS_EINVAL
 * (no credential, bad URL), XTS_ENOMEM. */
int xts_auth_get(struct xts_auth *a, const struct xts_tenant_conn *tc, int force,
		 xts_auth_cb cb, void *arg, struct xts_auth_wait **out);
void xts_auth_cancel(struct xts_auth_wait *w);
/* How long the token endpoint asked tc's (tenant, app) to wait (its
 * Retry-After on a 429 or 5xx), ms from now; 0 when it did not. Until then
 * xts_auth_get answers a caller without a cached token XTS_ETHROTTLED at once
 * instead of asking again. */
long long xts_auth_wait_ms(struct xts_auth *a, const struct xts_tenant_conn *tc);

/* Forget the cached token of tc (e.g. the resource said 401). */
void xts_auth_invalidate(struct xts_auth *a, const struct xts_tenant_conn *tc);

/* Test hook: tokens are refreshed this many ms before they expire, or at 80 %
 * of their lifetime for short-lived tokens, whichever is earlier (default
 * 300000). */
void xts_auth_set_refresh_margin(struct xts_auth *a, long long ms);

/* "https://host/{tenant}/oauth2/v2.0/token" for tc into a new string (caller
 * frees), or NULL on ENOMEM. */
char *xts_auth_token_url(const struct xts_tenant_conn *tc);
/* The client-credentials scope for a tenant whose Graph is graph_endpoint
 * (NULL = the global service): a national cloud's own .default scope, else
 * XTS_GRAPH_SCOPE. Static string. */
const char *xts_auth_scope(const char *graph_endpoint);

/* Build a signed client assertion (PS256; header alg, typ, x5t (SHA-1) and
 * x5t#S256; claims aud, iss = sub = client_id, jti, nbf = iat = now_s,
 * exp = now_s + 600).
 * *out is a new string (caller frees with xts_free). Returns 0, XTS_EINVAL
 * (PEM does not parse / key does not match), XTS_ENOMEM, XTS_EINTERNAL. */
int xts_jwt_client_assertion(const char *cert_pem, const char *key_pem, const char *client_id,
			     const char *aud, long long now_s, char **out);

/* base64url without padding of len bytes into a new string (caller frees). */
char *xts_b64url(const unsigned char *p, size_t len);

/* Parse a token-endpoint response. On 200 with an access_token: 0, *token a
 * new string (caller frees), *expires_in_s. Otherwise XTS_EAUTH (error
 * response, *aadsts and detail filled: "AADSTS7000215: invalid client
 * secret ...") or XTS_EPARSE (garbage). detail may be NULL. */
int xts_auth_parse_token_response(long status, const char *body, size_t len, char **token,
				  long long *expires_in_s, long *aadsts, char *detail,
				  size_t detail_len);

/* Microsoft's meaning of an AADSTS code, or NULL when not in our table. */
const char *xts_auth_aadsts_text(long code);

#endif
