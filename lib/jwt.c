/* SPDX-License-Identifier: MIT */
/* The certificate credential: a JWT client assertion signed PS256 (RSA-PSS,
 * SHA-256, salt 32) with the x5t#S256 thumbprint header, as described in
 * MicrosoftDocs/entra-docs docs/identity-platform/certificate-credentials.md.
 * The header also carries x5t, the SHA-1 thumbprint that page's earlier
 * revision names (and Entra still accepts): a verifier that looks for either
 * finds the certificate.
 * It builds assertions only; it verifies nothing and never logs key material. */
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "log.h"
#include "mem.h"

char *
xts_b64url(const unsigned char *p, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out, *o;
	size_t i;

	out = xts_malloc(len / 3 * 4 + 5);
	if (out == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
		*o++ = tab[v & 63];
	}
	if (len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
	} else if (len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

		*o++ = tab[v >> 18];
		*o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63];
	}
	*o = '\0';
	return out;
}

/* base64url of the compact JSON serialisation of j (new string). */
static char *
b64_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *r;

	if (s == NULL)
		return NULL;
	r = xts_b64url((const unsigned char *)s, strlen(s));
	xts_free(s);
	return r;
}

static int
sign_ps256(EVP_PKEY *key, const char *data, size_t len, unsigned char **sig, size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ret = XTS_EINTERNAL;

	*sig = NULL;
	if (md == NULL)
		return XTS_ENOMEM;
	if (EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, key) != 1)
		goto done;
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1)
		goto done;
	if (EVP_DigestSign(md, NULL, siglen, (const unsigned char *)data, len) != 1)
		goto done;
	*sig = xts_malloc(*siglen);
	if (*sig == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	if (EVP_DigestSign(md, *sig, siglen, (const unsigned char *)data, len) != 1) {
		xts_free(*sig);
		*sig = NULL;
		goto done;
	}
	ret = 0;
done:
	EVP_MD_CTX_free(md);
	return ret;
}

/* OpenSSL's default for an encrypted PEM key asks for its passphrase on the
 * controlling terminal and waits there, on the event loop. A key must be
 * stored unencrypted (the file's mode and ownership protect it), so there is
 * no passphrase to give: fail at once. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

int
xts_jwt_client_assertion(const char *cert_pem, const char *key_pem, const char *client_id,
			 const char *aud, long long now_s, char **out)
{
	BIO *bio = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL, *sig = NULL, dgst[SHA256_DIGEST_LENGTH], d1[SHA_DIGEST_LENGTH];
	int derlen, ret = XTS_EINVAL;
	size_t siglen = 0;
	char *x5t = NULL, *x5t1 = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, jti[37];
	json_t *hdr = NULL, *claims = NULL;
	struct xts_buf b = XTS_BUF_INIT;

	*out = NULL;
	if (cert_pem == NULL || key_pem == NULL || client_id == NULL || aud == NULL)
		return XTS_EINVAL;
	bio = BIO_new_mem_buf(cert_pem, -1);
	if (bio == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	bio = NULL;
	if (cert == NULL) {
		xts_err("auth: the client certificate is not a PEM certificate");
		goto done;
	}
	bio = BIO_new_mem_buf(key_pem, -1);
	if (bio == NULL) {
		ret = XTS_ENOMEM;
		goto done;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	ERR_clear_error();
	if (key == NULL) {
		if (strstr(key_pem, "ENCRYPTED") != NULL)
			xts_err("auth: the client key is encrypted with a passphrase: store it "
				"unencrypted, readable only by the daemon's user (mode 0600 or 0640), or "
				"as a systemd credential (`openssl pkey -in KEY -out NEWKEY`)");
		else
			xts_err("auth: the client key is not a PEM private key");
		goto done;
	}
	if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
		xts_err("auth: the client key must be an RSA key (PS256)");
		goto done;
	}
	if (X509_check_private_key(cert, key) != 1) {
		xts_err("auth: the client key does not belong to the client certificate");
		goto done;
	}
	derlen = i2d_X509(cert, &der);
	if (derlen <= 0)
		goto done;
	SHA256(der, (size_t)derlen, dgst);
	x5t = xts_b64url(dgst, sizeof(dgst));
	SHA1(der, (size_t)derlen, d1);
	x5t1 = xts_b64url(d1, sizeof(d1));
	ret = xts_guid_new(jti);
	if (ret != 0)
		goto done;
	ret = XTS_ENOMEM;
	if (x5t == NULL || x5t1 == NULL)
		goto done;
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg", "PS256", "typ", "JWT", "x5t", x5t1, "x5t#S256",
			x5t);
	claims = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", client_id,
			   "sub", client_id, "jti", jti, "nbf", (json_int_t)now_s, "iat",
			   (json_int_t)now_s, "exp", (json_int_t)(now_s + 600));
	if (hdr == NULL || claims == NULL)
		goto done;
	h64 = b64_json(hdr);
	c64 = b64_json(claims);
	if (h64 == NULL || c64 == NULL)
		goto done;
	if (xts_buf_printf(&b, "%s.%s", h64, c64) != 0)
		goto done;
	ret = sign_ps256(key, b.p, b.len, &sig, &siglen);
	if (ret != 0)
		goto done;
	ret = XTS_ENOMEM;
	s64 = xts_b64url(sig, siglen);
	if (s64 == NULL)
		goto done;
	if (xts_buf_putc(&b, '.') != 0 || xts_buf_puts(&b, s64) != 0)
		goto done;
	*out = xts_buf_steal(&b);
	ret = *out ? 0 : XTS_ENOMEM;
done:
	ERR_clear_error();
	BIO_free(bio);
	X509_free(cert);
	EVP_PKEY_free(key);
	OPENSSL_free(der);
	xts_free(sig);
	xts_free(x5t);
	xts_free(x5t1);
	xts_free(h64);
	xts_free(c64);
	xts_free(s64);
	json_decref(hdr);
	json_decref(claims);
	xts_buf_free(&b);
	return ret;
}
