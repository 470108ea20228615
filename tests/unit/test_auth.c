/* SPDX-License-Identifier: MIT */
/* Unit tests for the certificate credential (a PS256 client assertion checked
 * with OpenSSL here: header, x5t#S256, claims, signature) and for parsing
 * token-endpoint answers (success, AADSTS errors, garbage). No network. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "auth.h"
#include "err.h"
#include "mem.h"

struct pem {
	char *cert;
	char *key;
	X509 *x509;
	EVP_PKEY *pkey;
};

static char *
bio_str(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = malloc((size_t)n + 1);

	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	return s;
}

static void
make_cert(struct pem *out)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	X509_NAME *nm;
	BIO *b;

	assert_non_null(k);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 42);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"xtsync test", -1, -1, 0);
	X509_set_issuer_name(x, nm);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	out->cert = bio_str(b);
	BIO_free(b);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	out->key = bio_str(b);
	BIO_free(b);
	out->x509 = x;
	out->pkey = k;
}

static void
free_cert(struct pem *p)
{
	free(p->cert);
	free(p->key);
	X509_free(p->x509);
	EVP_PKEY_free(p->pkey);
}

static unsigned char *
b64url_decode(const char *s, size_t n, size_t *outlen)
{
	char *t = malloc(n + 4);
	unsigned char *out = malloc(n + 4);
	size_t i, m;
	int r;

	for (i = 0; i < n; i++)
		t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	m = n;
	while (m % 4)
		t[m++] = '=';
	r = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
	assert_true(r >= 0);
	*outlen = (size_t)r - (m - n); /* padding bytes decode to zeros */
	free(t);
	return out;
}

static json_t *
decode_json(const char *s, size_t n)
{
	size_t len;
	unsigned char *raw = b64url_decode(s, n, &len);
	json_t *j = json_loadb((char *)raw, len, 0, NULL);

	free(raw);
	assert_non_null(j);
	return j;
}

static void
test_assertion(void **state)
{
	struct pem p;
	char *a = NULL, *d1, *d2, *x5t;
	json_t *hdr, *cl;
	unsigned char *sig, *der = NULL, dg[32];
	size_t siglen;
	int derlen;
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx = NULL;
	const char *aud = "https://login.example/t1/oauth2/v2.0/token";

	(void)state;
	make_cert(&p);
	assert_int_equal(xts_jwt_client_assertion(p.cert, p.key, "app-1", aud, 1700000000, &a), 0);
	d1 = strchr(a, '.');
	assert_non_null(d1);
	d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	assert_null(strchr(a, '=')); /* base64url without padding */

	hdr = decode_json(a, (size_t)(d1 - a));
	assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "PS256");
	assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
	derlen = i2d_X509(p.x509, &der);
	SHA256(der, (size_t)derlen, dg);
	x5t = xts_b64url(dg, sizeof(dg));
	assert_string_equal(json_string_value(json_object_get(hdr, "x5t#S256")), x5t);
	xts_free(x5t);
	/* and the SHA-1 thumbprint of the page's earlier revision */
	SHA1(der, (size_t)derlen, dg);
	x5t = xts_b64url(dg, 20);
	assert_string_equal(json_string_value(json_object_get(hdr, "x5t")), x5t);

	cl = decode_json(d1 + 1, (size_t)(d2 - d1 - 1));
	assert_string_equal(json_string_value(json_object_get(cl, "aud")), aud);
	assert_string_equal(json_string_value(json_object_get(cl, "iss")), "app-1");
	assert_string_equal(json_string_value(json_object_get(cl, "sub")), "app-1");
	assert_int_equal(strlen(json_string_value(json_object_get(cl, "jti"))), 36);
	assert_int_equal(json_integer_value(json_object_get(cl, "nbf")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(cl, "iat")), 1700000000);
	assert_true(json_integer_value(json_object_get(cl, "exp")) > 1700000000);
	assert_true(json_integer_value(json_object_get(cl, "exp")) <= 1700000000 + 600);

	/* PS256 signature over "header.claims" with the certificate's key */
	sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
	assert_int_equal(siglen, 256);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(p.x509)), 1);
	EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
	EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, (unsigned char *)a, (size_t)(d2 - a)), 1);
	/* a flipped byte must not verify */
	a[3] ^= 1;
	EVP_MD_CTX_free(md);
	md = EVP_MD_CTX_new();
	pctx = NULL;
	EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, X509_get0_pubkey(p.x509));
	EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
	EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
	assert_int_not_equal(EVP_DigestVerify(md, sig, siglen, (unsigned char *)a, (size_t)(d2 - a)), 1);
	EVP_MD_CTX_free(md);

	free(sig);
	OPENSSL_free(der);
	xts_free(x5t);
	json_decref(hdr);
	json_decref(cl);
	xts_free(a);
	free_cert(&p);
}

/* A passphrase-protected key is refused at once. OpenSSL's default would ask
 * for the passphrase: on /dev/tty, or, without a terminal (CI), on stdin. The
 * passphrase waits on stdin here, so asking would succeed and show up. */
static void
encrypted_key_refused(struct pem *p)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *enc, *a = NULL;
	int fds[2], saved;

	assert_true(PEM_write_bio_PrivateKey(b, p->pkey, EVP_aes_256_cbc(), (unsigned char *)"pw", 2,
					     NULL, NULL) == 1);
	enc = bio_str(b);
	BIO_free(b);
	assert_non_null(strstr(enc, "ENCRYPTED"));
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write(fds[1], "pw\npw\n", 6), 6);
	close(fds[1]);
	saved = dup(0);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fds[0], 0), 0);
	close(fds[0]);
	assert_int_equal(xts_jwt_client_assertion(p->cert, enc, "c", "aud", 1, &a), XTS_EINVAL);
	assert_null(a);
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	free(enc);
}

static void
test_assertion_jti_fresh_and_bad_input(void **state)
{
	struct pem p, q;
	char *a = NULL, *b = NULL;

	(void)state;
	make_cert(&p);
	make_cert(&q);
	assert_int_equal(xts_jwt_client_assertion(p.cert, p.key, "c", "aud", 1, &a), 0);
	assert_int_equal(xts_jwt_client_assertion(p.cert, p.key, "c", "aud", 1, &b), 0);
	assert_string_not_equal(a, b); /* fresh jti (and PSS salt) every time */
	xts_free(a);
	xts_free(b);
	a = (char *)1;
	/* key of another certificate */
	assert_int_equal(xts_jwt_client_assertion(p.cert, q.key, "c", "aud", 1, &a), XTS_EINVAL);
	assert_null(a);
	assert_int_equal(xts_jwt_client_assertion("garbage", p.key, "c", "aud", 1, &a), XTS_EINVAL);
	assert_int_equal(xts_jwt_client_assertion(p.cert, "garbage", "c", "aud", 1, &a), XTS_EINVAL);
	encrypted_key_refused(&p);
	free_cert(&p);
	free_cert(&q);
}

static void
test_b64url(void **state)
{
	char *s;

	(void)state;
	s = xts_b64url((const unsigned char *)"\xfb\xff", 2);
	assert_string_equal(s, "-_8");
	xts_free(s);
	s = xts_b64url((const unsigned char *)"abc", 3);
	assert_string_equal(s, "YWJj");
	xts_free(s);
	s = xts_b64url((const unsigned char *)"a", 1);
	assert_string_equal(s, "YQ");
	xts_free(s);
}

static void
test_token_response(void **state)
{
	char *tok = NULL, detail[300];
	long long exp = 0;
	long code = -1;
	const char *ok = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJ0.x.y\"}";
	const char *bad =
		"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided. "
		"Ensure the secret being sent in the request is the client secret value.\\r\\nTrace ID: 1\","
		"\"error_codes\":[7000215],\"timestamp\":\"2024-01-01 00:00:00Z\"}";
	const char *tenant = "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: Tenant 'x' not found.\"}";
	const char *busy = "{\"error\":\"temporarily_unavailable\",\"error_description\":\"AADSTS90006: "
			   "The service is temporarily unavailable.\",\"error_codes\":[90006]}";
	const char *msods = "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90033: "
			    "A transient error has occurred. Try again.\",\"error_codes\":[90033]}";

	(void)state;
	assert_int_equal(xts_auth_parse_token_response(200, ok, strlen(ok), &tok, &exp, &code, detail,
						       sizeof(detail)), 0);
	assert_string_equal(tok, "eyJ0.x.y");
	assert_int_equal(exp, 3599);
	xts_free(tok);

	assert_int_equal(xts_auth_parse_token_response(401, bad, strlen(bad), &tok, &exp, &code, detail,
						       sizeof(detail)), XTS_EAUTH);
	assert_null(tok);
	assert_int_equal(code, 7000215);
	assert_non_null(strstr(detail, "AADSTS7000215"));
	assert_non_null(strstr(detail, "invalid client secret"));
	assert_null(strstr(detail, "Trace ID")); /* only the first line */

	/* code only in the description */
	assert_int_equal(xts_auth_parse_token_response(400, tenant, strlen(tenant), &tok, &exp, &code,
						       detail, sizeof(detail)), XTS_EAUTH);
	assert_int_equal(code, 90002);
	assert_non_null(strstr(detail, "tenant not found"));

	/* "temporarily_unavailable ... Retry the request." and the transient
	 * AADSTS codes (entra-docs reference-error-codes.md): retried, never
	 * taken for refused credentials */
	assert_int_equal(xts_auth_parse_token_response(400, busy, strlen(busy), &tok, &exp, &code,
						       detail, sizeof(detail)), XTS_ESERVER);
	assert_int_equal(code, 90006);
	assert_non_null(strstr(detail, "AADSTS90006"));
	assert_int_equal(xts_auth_parse_token_response(400, msods, strlen(msods), &tok, &exp, &code,
						       detail, sizeof(detail)), XTS_ESERVER);
	assert_int_equal(code, 90033);

	assert_int_equal(xts_auth_parse_token_response(502, "<html>", 6, &tok, &exp, &code, detail,
						       sizeof(detail)), XTS_EPARSE);
	assert_int_equal(xts_auth_parse_token_response(200, "{}", 2, &tok, &exp, &code, NULL, 0),
			 XTS_EPARSE);
	assert_non_null(xts_auth_aadsts_text(700027));
	assert_non_null(xts_auth_aadsts_text(700016));
	assert_null(xts_auth_aadsts_text(1));
}

static void
test_token_url(void **state)
{
	struct xts_tenant_conn tc;
	char *u;

	(void)state;
	memset(&tc, 0, sizeof(tc));
	tc.tenant_id = "contoso.example";
	u = xts_auth_token_url(&tc);
	assert_string_equal(u, "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token");
	xts_free(u);
	tc.authority = "http://127.0.0.1:8080/";
	u = xts_auth_token_url(&tc);
	assert_string_equal(u, "http://127.0.0.1:8080/contoso.example/oauth2/v2.0/token");
	xts_free(u);
}

/* National clouds use their own Graph host in the scope (microsoft-graph-docs-
 * contrib concepts/sdks/national-clouds.md, concepts/deployments.md); the
 * global service and anything else (a test emulator) the global scope. */
static void
test_scope(void **state)
{
	(void)state;
	assert_string_equal(xts_auth_scope(NULL), "https://graph.microsoft.com/.default");
	assert_string_equal(xts_auth_scope("https://graph.microsoft.com"),
			    "https://graph.microsoft.com/.default");
	assert_string_equal(xts_auth_scope("https://graph.microsoft.us"),
			    "https://graph.microsoft.us/.default");
	assert_string_equal(xts_auth_scope("https://Graph.Microsoft.US/"),
			    "https://graph.microsoft.us/.default");
	assert_string_equal(xts_auth_scope("https://dod-graph.microsoft.us"),
			    "https://dod-graph.microsoft.us/.default");
	assert_string_equal(xts_auth_scope("https://microsoftgraph.chinacloudapi.cn"),
			    "https://microsoftgraph.chinacloudapi.cn/.default");
	/* look-alikes and emulators stay global */
	assert_string_equal(xts_auth_scope("https://graph.microsoft.us.evil.example"),
			    "https://graph.microsoft.com/.default");
	assert_string_equal(xts_auth_scope("http://graph.microsoft.us"),
			    "https://graph.microsoft.com/.default");
	assert_string_equal(xts_auth_scope("http://127.0.0.1:8080"),
			    "https://graph.microsoft.com/.default");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assertion),
		cmocka_unit_test(test_assertion_jti_fresh_and_bad_input),
		cmocka_unit_test(test_b64url),
		cmocka_unit_test(test_token_response),
		cmocka_unit_test(test_token_url),
		cmocka_unit_test(test_scope),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
