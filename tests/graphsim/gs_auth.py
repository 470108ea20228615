# SPDX-License-Identifier: MIT
# graphsim's identity platform: the v2.0 token endpoint (client credentials with a
# secret or a certificate-signed client assertion), access-token issue/verification,
# and the test PKI (CA, server certificate, client certificates).
# It does not implement user flows (authorization code, device code, refresh tokens).
import base64
import collections
import datetime
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, ec
from cryptography.x509.oid import NameOID

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW_S = 300   # clock skew tolerated on assertion nbf/exp (Entra allows about five minutes)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_dec(s):
    if isinstance(s, str):
        s = s.encode("ascii")
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


class TokenError(Exception):
    """An AADSTS error: status, OAuth error, AADSTS number, message."""

    def __init__(self, status, error, code, message):
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def body(self):
        # Shape from docs/identity-platform/reference-error-codes.md ("sample error response").
        trace = str(uuid.uuid4())
        corr = str(uuid.uuid4())
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return {
            "error": self.error,
            "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                                 % (self.code, self.message, trace, corr, ts),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=%d" % self.code,
        }


class Auth:
    def __init__(self, world, settings):
        self.world = world
        self.settings = settings
        self.key = secrets.token_bytes(32)
        self.seen_jti = {}          # jti -> exp, pruned as they expire
        self.issued = collections.deque(maxlen=10000)   # access tokens handed out (GET /_admin/tokens)
        self.opaque = {}            # opaque access token -> claims (setting opaque_tokens)

    # -- access tokens -------------------------------------------------------
    def issue(self, tenant, app_id):
        now = int(time.time())
        life = max(1, int(round(float(self.settings["token_lifetime_s"]))))
        hdr = {"typ": "JWT", "alg": "HS256", "kid": "graphsim"}
        claims = {"aud": "https://graph.microsoft.com", "iss": "https://sts.windows.net/%s/" % tenant.id,
                  "iat": now, "nbf": now, "exp": now + life, "appid": app_id, "tid": tenant.id,
                  "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.id + app_id)),
                  "roles": ["User.ReadWrite.All", "Directory.ReadWrite.All", "User.Invite.All",
                            "Policy.ReadWrite.CrossTenantAccess", "GroupMember.Read.All"],
                  "ver": "1.0", "uti": b64u(secrets.token_bytes(12))}
        if self.settings.get("opaque_tokens"):
            # "access tokens must be treated as opaque strings ... Tokens that
            # a Microsoft API receives might not always be a JWT that can be
            # decoded" (entra-docs identity-platform/access-tokens.md)
            for t in [t for t, c in self.opaque.items() if c["exp"] <= now]:
                del self.opaque[t]
            tok = "gso" + b64u(secrets.token_bytes(32))
            self.opaque[tok] = claims
        else:
            si = b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())
            sig = hmac.new(self.key, si.encode(), hashlib.sha256).digest()
            tok = si + "." + b64u(sig)
        self.issued.append({"tenant": tenant.id, "app": app_id, "exp": now + life, "access_token": tok})
        return tok, life

    def verify(self, token):
        """Returns (claims, None) or (None, reason) for a Bearer token."""
        if token in self.opaque:
            claims = self.opaque[token]
            return (claims, None) if claims["exp"] > time.time() else (None, "expired")
        parts = token.split(".")
        if len(parts) != 3:
            return None, "malformed"
        si = parts[0] + "." + parts[1]
        try:
            sig = b64u_dec(parts[2])
            claims = json.loads(b64u_dec(parts[1]))
        except (ValueError, TypeError):
            return None, "malformed"
        if not hmac.compare_digest(sig, hmac.new(self.key, si.encode(), hashlib.sha256).digest()):
            return None, "signature"
        if not isinstance(claims, dict) or claims.get("exp", 0) <= time.time():
            return None, "expired"
        return claims, None

    # -- token endpoint --------------------------------------------------------
    def token(self, tenant_key, body, token_url):
        """POST /{tenant}/oauth2/v2.0/token. Returns (status, body dict, tenant, app_id)."""
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        app_id = form.get("client_id")
        try:
            tenant = self.world.tenant(tenant_key)
            if tenant is None:
                raise TokenError(400, "invalid_request", 90002,
                                 "Tenant '%s' not found. Check to make sure you have the correct tenant ID "
                                 "and are signing into the correct cloud." % tenant_key)
            if form.get("grant_type") != "client_credentials":
                if not form.get("grant_type"):
                    raise TokenError(400, "invalid_request", 900144,
                                     "The request body must contain the following parameter: 'grant_type'.")
                raise TokenError(400, "unsupported_grant_type", 70003,
                                 "The app requested an unsupported grant type '%s'." % form.get("grant_type"))
            if not app_id:
                raise TokenError(400, "invalid_request", 900144,
                                 "The request body must contain the following parameter: 'client_id'.")
            scope = form.get("scope")
            if not scope:
                raise TokenError(400, "invalid_request", 900144,
                                 "The request body must contain the following parameter: 'scope'.")
            if scope != GRAPH_SCOPE:
                if not scope.endswith("/.default"):
                    raise TokenError(400, "invalid_scope", 1002012,
                                     "The provided value for scope %s is not valid. Client credential flows "
                                     "must have a scope value with /.default suffixed to the resource "
                                     "identifier (application ID URI)." % scope)
                raise TokenError(400, "invalid_resource", 500011,
                                 "The resource principal named %s was not found in the tenant named %s."
                                 % (scope[:-len("/.default")], tenant.id))
            app = tenant.apps.get(app_id.lower())
            if app is None:
                raise TokenError(400, "unauthorized_client", 700016,
                                 "Application with identifier '%s' was not found in the directory '%s'. "
                                 "This can happen if the application has not been installed by the "
                                 "administrator of the tenant." % (app_id, tenant.domain))
            if "client_assertion" in form or "client_assertion_type" in form:
                if form.get("client_assertion_type") != ASSERTION_TYPE:
                    raise TokenError(400, "invalid_request", 50027,
                                     "JWT token is invalid or malformed (client_assertion_type).")
                self._check_assertion(app, form.get("client_assertion", ""), token_url)
            elif "client_secret" in form:
                if app.secret is None or not hmac.compare_digest(form["client_secret"].encode(),
                                                                 app.secret.encode()):
                    raise TokenError(401, "invalid_client", 7000215,
                                     "Invalid client secret provided. Ensure the secret being sent in the "
                                     "request is the client secret value, not the client secret ID, for a "
                                     "secret added to app '%s'." % app_id)
            else:
                raise TokenError(401, "invalid_client", 7000218,
                                 "The request body must contain the following parameter: "
                                 "'client_assertion' or 'client_secret'.")
        except TokenError as e:
            return e.status, e.body(), tenant if tenant_key else None, app_id
        tok, life = self.issue(tenant, app.client_id)
        return 200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                     "access_token": tok}, tenant, app.client_id

    def _check_assertion(self, app, assertion, token_url):
        # Rules from docs/identity-platform/certificate-credentials.md.
        parts = assertion.split(".")
        if len(parts) != 3:
            raise TokenError(400, "invalid_client", 50027, "JWT token is invalid or malformed.")
        try:
            hdr = json.loads(b64u_dec(parts[0]))
            claims = json.loads(b64u_dec(parts[1]))
            sig = b64u_dec(parts[2])
        except (ValueError, TypeError):
            raise TokenError(400, "invalid_client", 50027, "JWT token is invalid or malformed.")
        if not isinstance(hdr, dict) or not isinstance(claims, dict):
            raise TokenError(400, "invalid_client", 50027, "JWT token is invalid or malformed.")
        alg = hdr.get("alg")
        if alg not in ("RS256", "PS256"):
            raise TokenError(400, "invalid_client", 700027,
                             "Client assertion failed signature validation (unsupported alg %r)." % alg)
        cert = None
        for pem in app.certificates:
            try:
                c = x509.load_pem_x509_certificate(pem.encode())
            except ValueError:
                continue
            der = c.public_bytes(serialization.Encoding.DER)
            if hdr.get("x5t#S256") == b64u(hashlib.sha256(der).digest()) or \
               hdr.get("x5t") == b64u(hashlib.sha1(der).digest()):
                cert = c
                break
        if cert is None:
            raise TokenError(401, "invalid_client", 700027,
                             "The certificate with identifier used to sign the client assertion is not "
                             "registered on application. [Reason - The key was not found., Thumbprint of "
                             "key used by client: '%s']" % (hdr.get("x5t#S256") or hdr.get("x5t")))
        si = (parts[0] + "." + parts[1]).encode()
        pub = cert.public_key()
        try:
            if alg == "RS256":
                pub.verify(sig, si, padding.PKCS1v15(), hashes.SHA256())
            else:
                pub.verify(sig, si, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
        except (InvalidSignature, TypeError, ValueError):
            raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        if claims.get("aud") != token_url:
            raise TokenError(401, "invalid_client", 700212,
                             "No matching federated identity record found for presented assertion "
                             "audience '%s'." % claims.get("aud"))
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise TokenError(401, "invalid_client", 700021,
                             "Client assertion application identifier doesn't match 'client_id' parameter.")
        now = time.time()
        exp = claims.get("exp")
        nbf = claims.get("nbf", claims.get("iat", now))
        if not isinstance(exp, (int, float)) or not isinstance(nbf, (int, float)) or \
           now > exp + SKEW_S or now + SKEW_S < nbf:
            raise TokenError(401, "invalid_client", 700024,
                             "Client assertion is not within its valid time range. Current time: %s, "
                             "assertion valid from %s, expiry time of assertion %s." % (now, nbf, exp))
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise TokenError(401, "invalid_client", 50027, "JWT token is invalid or malformed (jti).")
        for k in [k for k, e in self.seen_jti.items() if e + SKEW_S < now]:
            del self.seen_jti[k]
        if jti in self.seen_jti:
            raise TokenError(401, "invalid_client", 500133,
                             "Assertion is not within its valid time range (replayed jti '%s')." % jti)
        self.seen_jti[jti] = exp


# -- test PKI ---------------------------------------------------------------------------

def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "graphsim test")])


def _write(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(cn="graphsim test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_server_cert(ca_cert, ca_key, cn="localhost"):
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def ensure_pki(pki_dir):
    """Creates DIR/ca.crt, ca.key, server.crt, server.key if absent; returns (crt, key) paths."""
    os.makedirs(pki_dir, exist_ok=True)
    ca_crt = os.path.join(pki_dir, "ca.crt")
    ca_key = os.path.join(pki_dir, "ca.key")
    srv_crt = os.path.join(pki_dir, "server.crt")
    srv_key = os.path.join(pki_dir, "server.key")
    if not (os.path.exists(ca_crt) and os.path.exists(ca_key)):
        cert, key = make_ca()
        _write(ca_key, _key_pem(key), 0o600)
        _write(ca_crt, cert.public_bytes(serialization.Encoding.PEM))
    if not (os.path.exists(srv_crt) and os.path.exists(srv_key)):
        with open(ca_crt, "rb") as f:
            cacert = x509.load_pem_x509_certificate(f.read())
        with open(ca_key, "rb") as f:
            cakey = serialization.load_pem_private_key(f.read(), None)
        cert, key = make_server_cert(cacert, cakey)
        _write(srv_key, _key_pem(key), 0o600)
        _write(srv_crt, cert.public_bytes(serialization.Encoding.PEM))
    return srv_crt, srv_key


def make_client_cert(cn="graphsim app"):
    """Self-signed RSA 2048 certificate for certificate credentials: (cert PEM, key PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def check_pem_certificate(pem):
    """Raises ValueError unless pem is one PEM X.509 certificate."""
    if not isinstance(pem, str):
        raise ValueError("certificates must be PEM strings")
    x509.load_pem_x509_certificate(pem.encode())


def make_assertion(cert_pem, key_pem, client_id, aud, alg="PS256", lifetime=600, jti=None,
                   use_sha1=False, now=None):
    """A client assertion as certificate-credentials.md describes (used by tests)."""
    cert = x509.load_pem_x509_certificate(cert_pem if isinstance(cert_pem, bytes) else cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem if isinstance(key_pem, bytes) else key_pem.encode(), None)
    der = cert.public_bytes(serialization.Encoding.DER)
    hdr = {"alg": alg, "typ": "JWT"}
    if use_sha1:
        hdr["x5t"] = b64u(hashlib.sha1(der).digest())
    else:
        hdr["x5t#S256"] = b64u(hashlib.sha256(der).digest())
    now = int(time.time()) if now is None else int(now)
    claims = {"aud": aud, "iss": client_id, "sub": client_id, "jti": jti or str(uuid.uuid4()),
              "nbf": now, "iat": now, "exp": now + lifetime}
    si = (b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    if alg == "RS256":
        sig = key.sign(si, padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = key.sign(si, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                       salt_length=padding.PSS.DIGEST_LENGTH), hashes.SHA256())
    return si.decode() + "." + b64u(sig)
