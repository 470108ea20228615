/* SPDX-License-Identifier: MIT */
/* Client-credentials tokens (MicrosoftDocs/entra-docs
 * docs/identity-platform/v2-oauth2-client-creds-grant-flow.md): one cache
 * entry per (authority, tenant, app) with at most one token request in flight
 * and a list of waiters. Refreshes before expiry. AADSTS codes are mapped to
 * Microsoft's meanings (docs/identity-platform/reference-error-codes.md).
 * Never logs the secret, the assertion or the token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "json_load.h"
#include "log.h"
#include "mem.h"
#include "text.h"

struct entry;

/* A token endpoint's Retry-After is honoured up to this long. */
#define AUTH_MAX_WAIT_MS (10LL * 60 * 1000)
/* A failed early refresh keeps the current token while it has at least a
 * tenth of its lifetime, at most this long, to live, and is tried again after
 * AUTH_REFRESH_RETRY_MS. */
#define AUTH_KEEP_MIN_MS (60LL * 1000)
#define AUTH_REFRESH_RETRY_MS (30LL * 1000)

struct xts_auth_wait {
	struct xts_auth *a;
	struct entry *e;    /* waiting on e's request; NULL when on the ready list */
	xts_auth_cb cb;
	void *arg;
	struct xts_auth_wait *next;
	/* ready-list delivery copies, so a later refresh cannot change them */
	char *token;
	int err; /* on the ready list without a token: XTS_ETHROTTLED */
};

struct entry {
	char *key;          /* authority|tenant|client|credential digest */
	char *name;         /* for logs */
	char *tenant;
	char *client;
	char *token;
	long long acquired; /* monotonic ms */
	long long refresh_at;
	long long expires_at;
	/* the token endpoint said Retry-After (429, 5xx): no request before */
	long long not_before;
	struct xts_http_xfer *xfer;
	struct xts_auth_wait *waiters;
	struct xts_auth *auth;
	struct entry *next;
};

struct xts_auth {
	struct xts_http *http;
	struct xts_evloop *ev;
	struct xts_evtimer *timer; /* drains the ready list */
	struct entry *entries;
	struct xts_auth_wait *ready;
	long long margin_ms;
	long timeout_ms; /* one token request */
};

static const struct {
	long code;
	const char *text;
} aadsts_tab[] = {
	{ 7000215, "invalid client secret: the secret is wrong (or the secret ID was used instead of its value)" },
	{ 7000222, "the client secret has expired: create a new secret for the app" },
	{ 700027, "client assertion failed: the certificate is not registered on the app, has expired, or the signature is invalid" },
	{ 700024, "client assertion is not within its valid time range (check the host clock)" },
	{ 700016, "application not found in the tenant: wrong client_id, or the app was never consented in this tenant" },
	{ 90002, "tenant not found: wrong tenant_id or domain, or the tenant has no active subscriptions" },
	{ 900023, "the tenant identifier is neither a valid domain nor a valid tenant GUID" },
	{ 90014, "a required field is missing from the token request" },
	{ 7000112, "the application is disabled" },
	{ 70011, "invalid scope: client credentials need the .default scope of the tenant's Graph (graph_endpoint)" },
	{ 500011, "the resource principal (Microsoft Graph) was not found in the tenant" },
	{ 65001, "the application has not been consented in this tenant" },
	{ 50126, "invalid credentials" },
	{ 700023, "invalid audience in the client assertion" },
	{ 7000274, "the client assertion header has no valid x5t or x5t#S256 thumbprint" },
	{ 50058, "the session is unknown or invalid" },
	{ 90006, "the token service is temporarily unavailable (retried)" },
	{ 90024, "a transient error in the token service (retried)" },
	{ 90033, "Microsoft Online Directory Service is unavailable (retried)" },
	{ 90055, "too many requests to the token service for this tenant (retried)" },
};

/* A refusal that says "try again", not "your credentials are wrong": the
 * OAuth error temporarily_unavailable ("The server is temporarily too busy
 * to handle the request. Retry the request.") and server_error, and the
 * transient AADSTS codes of reference-error-codes.md: 90006
 * ExternalServerRetryableError, 90024 RequestBudgetExceededError ("A
 * transient error has occurred. Try again."), 90033 MsodsServiceUnavailable,
 * 90055 TenantThrottlingError. That page says to react to `error`, never to
 * error_description. Such an answer is retried and never quarantines. */
static int
transient_refusal(const char *err, long code)
{
	if (err != NULL && (strcmp(err, "temporarily_unavailable") == 0 ||
			    strcmp(err, "server_error") == 0))
		return 1;
	return code == 90006 || code == 90024 || code == 90033 || code == 90055;
}

const char *
xts_auth_aadsts_text(long code)
{
	size_t i;

	for (i = 0; i < sizeof(aadsts_tab) / sizeof(aadsts_tab[0]); i++)
		if (aadsts_tab[i].code == code)
			return aadsts_tab[i].text;
	return NULL;
}

/* First "AADSTS<digits>" in s, or 0. */
static long
find_aadsts(const char *s)
{
	const char *p = s ? strstr(s, "AADSTS") : NULL;
	long v = 0;

	if (p == NULL)
		return 0;
	for (p += 6; *p >= '0' && *p <= '9' && v < 100000000; p++)
		v = v * 10 + (*p - '0');
	return v;
}

int
xts_auth_parse_token_response(long status, const char *body, size_t len, char **token,
			      long long *expires_in_s, long *aadsts, char *detail,
			      size_t detail_len)
{
	json_t *j = NULL, *v;
	json_error_t jerr;
	const char *err = NULL, *desc = NULL, *tok;
	int ret = XTS_EPARSE;
	long code = 0;

	*token = NULL;
	*expires_in_s = 0;
	*aadsts = 0;
	if (detail != NULL && detail_len > 0)
		detail[0] = '\0';
	j = xts_json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
		/* Our memory, not the tenant's answer: never a credential problem
		 * (XTS_EAUTH would quarantine the job for hours). jansson names
		 * every syntax error; some of its allocation failures (adding a key
		 * to an object) leave the error text empty. */
		if (detail != NULL && detail_len > 0)
			snprintf(detail, detail_len, "out of memory reading the token response");
		ret = XTS_ENOMEM;
		goto done;
	}
	if (!json_is_object(j)) {
		if (detail != NULL && detail_len > 0)
			snprintf(detail, detail_len, "token endpoint answered HTTP %ld without JSON",
				 status);
		goto done;
	}
	tok = json_string_value(json_object_get(j, "access_token"));
	if (status == 200 && tok != NULL && tok[0] != '\0') {
		v = json_object_get(j, "expires_in");
		if (json_is_integer(v))
			*expires_in_s = json_integer_value(v);
		else if (json_is_string(v))
			*expires_in_s = strtoll(json_string_value(v), NULL, 10);
		if (*expires_in_s <= 0 || *expires_in_s > 86400 * 2)
			*expires_in_s = 3599;
		*token = xts_strdup(tok);
		ret = *token ? 0 : XTS_ENOMEM;
		goto done;
	}
	err = json_string_value(json_object_get(j, "error"));
	desc = json_string_value(json_object_get(j, "error_description"));
	v = json_array_get(json_object_get(j, "error_codes"), 0);
	if (json_is_integer(v))
		code = (long)json_integer_value(v);
	if (code == 0)
		code = find_aadsts(desc);
	*aadsts = code;
	if (err == NULL && desc == NULL && code == 0) {
		if (detail != NULL && detail_len > 0)
			snprintf(detail, detail_len, "token endpoint answered HTTP %ld without an error",
				 status);
		goto done;
	}
	if (detail != NULL && detail_len > 0) {
		const char *meaning = xts_auth_aadsts_text(code);
		char first[200];
		size_t n;

		/* error_description's first line: "AADSTS7000215: Invalid client
		 * secret provided. ..." then trace and correlation ids. */
		first[0] = '\0';
		if (desc != NULL) {
			n = strcspn(desc, "\r\n");
			if (n >= sizeof(first))
				n = sizeof(first) - 1;
			memcpy(first, desc, n);
			first[n] = '\0';
		}
		if (code != 0)
			snprintf(detail, detail_len, "AADSTS%ld: %s%s%s%s", code,
				 meaning ? meaning : (err ? err : "error"), first[0] ? " (" : "",
				 first, first[0] ? ")" : "");
		else
			snprintf(detail, detail_len, "%s%s%s", err ? err : "error",
				 first[0] ? ": " : "", first);
		xts_text_scrub(detail); /* the token service's text: logs, mail, terminal */
	}
	ret = transient_refusal(err, code) ? XTS_ESERVER : XTS_EAUTH;
done:
	json_decref(j);
	return ret;
}

/* A national cloud's Graph has its own host, and "any permission scope value
 * (including the .default scope) that contains the Microsoft Graph domain
 * MUST use the domain of the Microsoft Graph service root endpoint for the
 * national cloud deployment" (microsoft-graph-docs-contrib
 * concepts/sdks/national-clouds.md; the hosts: concepts/deployments.md). Any
 * other endpoint, the global service or a test emulator, gets the global
 * scope, which is what an app registered there is consented for. */
const char *
xts_auth_scope(const char *graph_endpoint)
{
	static const char *const clouds[] = {
		"https://graph.microsoft.us",
		"https://dod-graph.microsoft.us",
		"https://microsoftgraph.chinacloudapi.cn",
	};
	static const char *const scopes[] = {
		"https://graph.microsoft.us/.default",
		"https://dod-graph.microsoft.us/.default",
		"https://microsoftgraph.chinacloudapi.cn/.default",
	};
	size_t i, n;

	if (graph_endpoint == NULL)
		return XTS_GRAPH_SCOPE;
	n = strlen(graph_endpoint);
	while (n > 0 && graph_endpoint[n - 1] == '/')
		n--;
	for (i = 0; i < sizeof(clouds) / sizeof(clouds[0]); i++) {
		if (strlen(clouds[i]) == n && strncasecmp(graph_endpoint, clouds[i], n) == 0)
			return scopes[i];
	}
	return XTS_GRAPH_SCOPE;
}

char *
xts_auth_token_url(const struct xts_tenant_conn *tc)
{
	struct xts_buf b = XTS_BUF_INIT;
	const char *auth = tc->authority ? tc->authority : "https://login.microsoftonline.com";
	size_t n = strlen(auth);

	while (n > 0 && auth[n - 1] == '/')
		n--;
	if (xts_buf_append(&b, auth, n) != 0 ||
	    xts_buf_printf(&b, "/%s/oauth2/v2.0/token", tc->tenant_id ? tc->tenant_id : "") != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

/* The key includes a digest of the credential, so a changed secret (reload)
 * or a second credential for the same app never gets the other's token. */
static char *
entry_key(const struct xts_tenant_conn *tc)
{
	struct xts_buf b = XTS_BUF_INIT;
	unsigned char d[SHA256_DIGEST_LENGTH];
	const char *cred = tc->client_secret ? tc->client_secret : (tc->cert_pem ? tc->cert_pem : "");

	SHA256((const unsigned char *)cred, strlen(cred), d);
	if (xts_buf_printf(&b, "%s|%s|%s|%s|%02x%02x%02x%02x%02x%02x%02x%02x",
			   tc->authority ? tc->authority : "", xts_auth_scope(tc->graph_endpoint),
			   tc->tenant_id ? tc->tenant_id : "",
			   tc->client_id ? tc->client_id : "", d[0], d[1], d[2], d[3], d[4], d[5], d[6],
			   d[7]) != 0) {
		xts_buf_free(&b);
		return NULL;
	}
	return xts_buf_steal(&b);
}

static struct entry *
entry_find(struct xts_auth *a, const struct xts_tenant_conn *tc, int create)
{
	struct entry *e;
	char *key = entry_key(tc);

	if (key == NULL)
		return NULL;
	for (e = a->entries; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL && create) {
		e = xts_calloc(1, sizeof(*e));
		if (e != NULL) {
			e->key = key;
			e->auth = a;
			key = NULL;
			e->name = xts_strdup(tc->name ? tc->name : (tc->tenant_id ? tc->tenant_id : "?"));
			e->tenant = xts_strdup(tc->tenant_id);
			e->client = xts_strdup(tc->client_id);
			e->next = a->entries;
			a->entries = e;
		}
	}
	xts_free(key);
	return e;
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		xts_free(s);
	}
}

static void
wait_free(struct xts_auth_wait *w)
{
	wipe_free(w->token);
	xts_free(w);
}

static void
on_ready(void *arg)
{
	struct xts_auth *a = arg;

	/* Take one at a time: a callback may add or cancel waiters. */
	while (a->ready != NULL) {
		struct xts_auth_wait *w = a->ready;

		a->ready = w->next;
		w->cb(w->arg, w->err, w->err == 0 ? w->token : NULL, 0,
		      w->err == 0 ? "" : "the token endpoint asked to wait (Retry-After); not asking again before then");
		wait_free(w);
	}
}

int
xts_auth_new(struct xts_http *http, struct xts_auth **out)
{
	struct xts_auth *a = xts_calloc(1, sizeof(*a));
	int ret;

	if (a == NULL)
		return XTS_ENOMEM;
	a->http = http;
	a->margin_ms = 300000;
	a->timeout_ms = 60000;
	a->ev = xts_http_evloop(http);
	ret = xts_ev_timer_new(a->ev, on_ready, a, &a->timer);
	if (ret != 0) {
		xts_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void
xts_auth_set_refresh_margin(struct xts_auth *a, long long ms)
{
	a->margin_ms = ms;
}

static void
entry_drop_token(struct entry *e)
{
	wipe_free(e->token);
	e->token = NULL;
	e->refresh_at = 0;
	e->expires_at = 0;
}

void
xts_auth_set_timeout(struct xts_auth *a, long ms)
{
	if (ms > 0)
		a->timeout_ms = ms < 60000 ? ms : 60000;
}

void
xts_auth_free(struct xts_auth *a)
{
	struct entry *e, *en;
	struct xts_auth_wait *w, *wn;

	if (a == NULL)
		return;
	for (w = a->ready; w != NULL; w = wn) {
		wn = w->next;
		wait_free(w);
	}
	for (e = a->entries; e != NULL; e = en) {
		en = e->next;
		if (e->xfer != NULL)
			xts_http_cancel(e->xfer);
		for (w = e->waiters; w != NULL; w = wn) {
			wn = w->next;
			wait_free(w);
		}
		entry_drop_token(e);
		xts_free(e->key);
		xts_free(e->name);
		xts_free(e->tenant);
		xts_free(e->client);
		xts_free(e);
	}
	xts_ev_timer_free(a->timer);
	xts_free(a);
}

void
xts_auth_invalidate(struct xts_auth *a, const struct xts_tenant_conn *tc)
{
	struct entry *e = entry_find(a, tc, 0);

	if (e != NULL)
		entry_drop_token(e);
}

static void
on_token(void *arg, const struct xts_http_resp *r)
{
	struct entry *e = arg;
	struct xts_auth_wait *w;
	char detail[600];
	char *token = NULL;
	long long exp_s = 0, now = xts_now_ms(), life, early, keep;
	long code = 0;
	int err;

	e->xfer = NULL;
	if (r->err != 0) {
		err = r->err;
		snprintf(detail, sizeof(detail), "token request failed: %s (%s)", xts_strerror(err),
			 r->err_detail);
	} else {
		err = xts_auth_parse_token_response(r->status, r->body, r->body_len, &token, &exp_s,
						    &code, detail, sizeof(detail));
		/* A busy or failing token service is not a credential problem:
		 * the caller retries it, the engine must not quarantine on it.
		 * Nor is an error answer without an OAuth error (a proxy's HTML
		 * page, a 408): only the token service's own refusal is. A 200
		 * we cannot read (our memory ran out inside jansson, which then
		 * reports a syntax error) stays XTS_EPARSE: the cycle fails, the
		 * job is not quarantined. */
		if (err != 0 && r->status >= 500)
			err = XTS_ESERVER;
		else if (err != 0 && r->status == 429)
			err = XTS_ETHROTTLED;
		else if (err == XTS_EPARSE && r->status != 200)
			err = XTS_ESERVER;
		/* "Microsoft Entra ID will reply with 429 Too Many Requests,
		 * with a Retry-After: 60 header" (MSAL, client and server
		 * throttling): no token request for this app and tenant until
		 * then, whoever asks (xts_auth_get, xts_auth_wait_ms). */
		if ((err == XTS_ESERVER || err == XTS_ETHROTTLED) && r->retry_after_ms > 0)
			e->not_before = now + (r->retry_after_ms < AUTH_MAX_WAIT_MS ? r->retry_after_ms
										    : AUTH_MAX_WAIT_MS);
	}
	keep = (e->expires_at - e->acquired) / 10;
	if (keep > AUTH_KEEP_MIN_MS)
		keep = AUTH_KEEP_MIN_MS;
	if (err != 0 && err != XTS_EAUTH && e->token != NULL && now < e->expires_at - keep) {
		/* The early refresh failed, but not on the credentials, and the
		 * token we hold is still good: keep using it and try again later
		 * (MSAL and the Azure SDKs do the same; only a refusal of the
		 * credentials, or the token running out, fails the caller). */
		long long again = now + AUTH_REFRESH_RETRY_MS;

		if (again < e->not_before)
			again = e->not_before;
		if (again > e->expires_at - keep)
			again = e->expires_at - keep;
		e->refresh_at = again;
		xts_warn("auth: %s: token refresh for tenant %s app %s failed: %s; the current token "
			 "is still valid for %lld s and stays in use (client-request-id %s)",
			 e->name ? e->name : "?", e->tenant ? e->tenant : "?",
			 e->client ? e->client : "?", detail, (e->expires_at - now) / 1000,
			 r->client_request_id ? r->client_request_id : "-");
		err = 0;
		code = 0;
	} else if (err == 0) {
		entry_drop_token(e);
		e->token = token;
		e->not_before = 0;
		life = exp_s * 1000;
		/* margin_ms early, but no later than at 80 % of the lifetime */
		early = e->auth->margin_ms;
		if (early > life / 5)
			early = life / 5;
		e->acquired = now;
		e->expires_at = now + life;
		e->refresh_at = now + life - early;
	} else {
		xts_err("auth: %s: no token for tenant %s app %s: %s (client-request-id %s)",
			e->name ? e->name : "?", e->tenant ? e->tenant : "?", e->client ? e->client : "?",
			detail, r->client_request_id ? r->client_request_id : "-");
	}
	/* Deliver to every waiter; callbacks may queue new waiters. */
	while (e->waiters != NULL) {
		w = e->waiters;
		e->waiters = w->next;
		w->cb(w->arg, err, err == 0 ? e->token : NULL, code, err == 0 ? "" : detail);
		wait_free(w);
	}
}

static int
start_request(struct xts_auth *a, struct entry *e, const struct xts_tenant_conn *tc)
{
	struct xts_buf body = XTS_BUF_INIT;
	struct xts_http_req req;
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded", "Accept: application/json", NULL,
	};
	char *url = NULL, *enc = NULL, *assertion = NULL;
	int ret;

	url = xts_auth_token_url(tc);
	if (url == NULL)
		return XTS_ENOMEM;
	enc = curl_easy_escape(NULL, tc->client_id, 0);
	ret = XTS_ENOMEM;
	if (enc == NULL)
		goto done;
	if (xts_buf_printf(&body, "grant_type=client_credentials&client_id=%s", enc) != 0)
		goto done;
	curl_free(enc);
	enc = curl_easy_escape(NULL, xts_auth_scope(tc->graph_endpoint), 0);
	if (enc == NULL || xts_buf_printf(&body, "&scope=%s", enc) != 0)
		goto done;
	curl_free(enc);
	enc = NULL;
	if (tc->cert_pem != NULL && tc->key_pem != NULL) {
		ret = xts_jwt_client_assertion(tc->cert_pem, tc->key_pem, tc->client_id, url,
					       xts_wall_ms() / 1000, &assertion);
		if (ret != 0)
			goto done;
		ret = XTS_ENOMEM;
		if (xts_buf_printf(&body, "&client_assertion_type=%s&client_assertion=%s",
				   "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
				   assertion) != 0)
			goto done;
	} else if (tc->client_secret != NULL) {
		enc = curl_easy_escape(NULL, tc->client_secret, 0);
		if (enc == NULL)
			goto done;
		if (xts_buf_printf(&body, "&client_secret=%s", enc) != 0)
			goto done;
	} else {
		ret = XTS_EINVAL;
		goto done;
	}
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = url;
	req.headers = hdrs;
	req.body = body.p;
	req.body_len = body.len;
	req.ca_file = tc->ca_file;
	req.max_body = 1024 * 1024;
	req.timeout_ms = a->timeout_ms;
	ret = xts_http_submit(a->http, &req, on_token, e, &e->xfer);
done:
	if (enc != NULL) {
		explicit_bzero(enc, strlen(enc));
		curl_free(enc);
	}
	wipe_free(assertion);
	if (body.p != NULL)
		explicit_bzero(body.p, body.len);
	xts_buf_free(&body);
	xts_free(url);
	return ret;
}

/* Append to the ready list, keeping FIFO order. */
static void
ready_append(struct xts_auth *a, struct xts_auth_wait *w)
{
	struct xts_auth_wait **pp = &a->ready;

	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = w;
}

long long
xts_auth_wait_ms(struct xts_auth *a, const struct xts_tenant_conn *tc)
{
	struct entry *e = entry_find(a, tc, 0);
	long long now = xts_now_ms();

	return e != NULL && e->not_before > now ? e->not_before - now : 0;
}

int
xts_auth_get(struct xts_auth *a, const struct xts_tenant_conn *tc, int force, xts_auth_cb cb,
	     void *arg, struct xts_auth_wait **out)
{
	struct entry *e;
	struct xts_auth_wait *w;
	long long now = xts_now_ms();
	int ret;

	if (tc == NULL || tc->tenant_id == NULL || tc->client_id == NULL || cb == NULL)
		return XTS_EINVAL;
	if (tc->client_secret == NULL && (tc->cert_pem == NULL || tc->key_pem == NULL))
		return XTS_EINVAL;
	e = entry_find(a, tc, 1);
	if (e == NULL)
		return XTS_ENOMEM;
	w = xts_calloc(1, sizeof(*w));
	if (w == NULL)
		return XTS_ENOMEM;
	w->a = a;
	w->cb = cb;
	w->arg = arg;
	/* A token fetched in the last second is not refreshed again for a 401:
	 * many requests may fail with the same old token at once. */
	if (force && e->token != NULL && now - e->acquired >= 1000)
		entry_drop_token(e);
	if (e->token != NULL && now < e->refresh_at && e->xfer == NULL) {
		w->token = xts_strdup(e->token);
		if (w->token == NULL) {
			ret = XTS_ENOMEM;
			goto fail;
		}
		ret = xts_ev_timer_start(a->timer, 0);
		if (ret != 0)
			goto fail;
		ready_append(a, w);
		goto ok;
	}
	if (e->xfer == NULL && now < e->not_before) {
		/* inside the token endpoint's Retry-After: answered at once
		 * with XTS_ETHROTTLED, the caller waits xts_auth_wait_ms */
		w->err = XTS_ETHROTTLED;
		ret = xts_ev_timer_start(a->timer, 0);
		if (ret != 0)
			goto fail;
		ready_append(a, w);
		goto ok;
	}
	if (e->xfer == NULL) {
		ret = start_request(a, e, tc);
		if (ret != 0)
			goto fail;
	}
	w->e = e;
	{
		struct xts_auth_wait **pp = &e->waiters;

		while (*pp != NULL)
			pp = &(*pp)->next;
		*pp = w;
	}
ok:
	if (out != NULL)
		*out = w;
	return 0;
fail:
	wait_free(w);
	return ret;
}

void
xts_auth_cancel(struct xts_auth_wait *w)
{
	struct xts_auth_wait **pp;

	if (w == NULL)
		return;
	pp = w->e != NULL ? &w->e->waiters : &w->a->ready;
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	wait_free(w);
}
