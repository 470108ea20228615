#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# mkcert: test certificates for graphsim users. `app` makes a self-signed RSA 2048
# client certificate + key (PEM) for certificate credentials; `other-ca` makes a
# server certificate for 127.0.0.1 signed by a fresh CA nobody trusts (negative TLS tests).
# It never touches graphsim's own PKI directory.
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gs_auth  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402


def write(path, data, mode):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description="make test certificates for graphsim")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("app", help="client certificate + key for certificate credentials")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cn", default="xtsync test app")
    p = sub.add_parser("other-ca", help="server cert/key for 127.0.0.1 from an untrusted CA")
    p.add_argument("--dir", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "app":
        cert, key = gs_auth.make_client_cert(a.cn)
        write(a.cert, cert, 0o644)
        write(a.key, key, 0o600)
        return 0
    os.makedirs(a.dir, exist_ok=True)
    ca, cakey = gs_auth.make_ca("graphsim untrusted CA")
    cert, key = gs_auth.make_server_cert(ca, cakey)
    write(os.path.join(a.dir, "other-ca.crt"), ca.public_bytes(serialization.Encoding.PEM), 0o644)
    write(os.path.join(a.dir, "server.crt"), cert.public_bytes(serialization.Encoding.PEM), 0o644)
    write(os.path.join(a.dir, "server.key"), gs_auth._key_pem(key), 0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
