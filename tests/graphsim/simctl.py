#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# simctl: a small command-line client for graphsim's /_admin/ API, for shell-based
# integration tests. Prints the JSON answer; exits 1 when graphsim answers >= 400.
# It does not talk to the Graph or token endpoints (tests use the daemon for that).
import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from urllib.parse import quote


def jarg(s):
    if s.startswith("@"):
        with open(s[1:], encoding="utf-8") as f:
            return json.load(f)
    return json.loads(s)


def boolarg(s):
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError("expected true or false")


def call(args, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    ctx = None
    if args.url.startswith("https"):
        ctx = ssl.create_default_context(cafile=args.cacert)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        out = json.loads(raw) if raw else {}
    except ValueError:
        out = {"raw": raw.decode("utf-8", "replace")}
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0 if status < 400 else 1


def main(argv=None):
    ap = argparse.ArgumentParser(description="graphsim admin client")
    ap.add_argument("--url", required=True, help="graphsim base URL, e.g. http://127.0.0.1:PORT")
    ap.add_argument("--cacert", help="CA file when graphsim runs with --tls")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("tenant-create")
    p.add_argument("--id", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--size", default="small")
    p.add_argument("--app", action="append", default=[], help="CLIENT_ID:SECRET")
    p.add_argument("--cert-app", action="append", default=[], help="CLIENT_ID:CERT_PEM_FILE")
    p.add_argument("--no-guest-invite", action="store_true")
    p.add_argument("--ext", action="append", default=[], help="extension_{appid}_{name}")

    p = sub.add_parser("seed")
    p.add_argument("tenant")
    p.add_argument("count", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default="u")
    p.add_argument("--group")
    p.add_argument("--guest-fraction", type=float, default=0.05)
    p.add_argument("--disabled-fraction", type=float, default=0.05)
    p.add_argument("--no-manager", action="store_true")

    p = sub.add_parser("users")
    p.add_argument("tenant")
    p.add_argument("--id")
    p.add_argument("--upn")
    p = sub.add_parser("user-create")
    p.add_argument("tenant")
    p.add_argument("json", help="user properties as JSON or @file")
    p = sub.add_parser("user-update")
    p.add_argument("tenant")
    p.add_argument("id")
    p.add_argument("json")
    p = sub.add_parser("user-delete")
    p.add_argument("tenant")
    p.add_argument("id")
    p.add_argument("--hard", action="store_true")
    p = sub.add_parser("user-restore")
    p.add_argument("tenant")
    p.add_argument("id")
    p = sub.add_parser("manager-set")
    p.add_argument("tenant")
    p.add_argument("id")
    p.add_argument("manager", help="manager id or 'null'")
    p = sub.add_parser("group-create")
    p.add_argument("tenant")
    p.add_argument("name")
    p = sub.add_parser("member-add")
    p.add_argument("tenant")
    p.add_argument("group")
    p.add_argument("user")
    p = sub.add_parser("member-remove")
    p.add_argument("tenant")
    p.add_argument("group")
    p.add_argument("user")
    p = sub.add_parser("policy-set")
    p.add_argument("tenant")
    p.add_argument("partner")
    p.add_argument("--inbound", type=boolarg)
    p.add_argument("--outbound", type=boolarg)
    p.add_argument("--sync", type=boolarg)
    p = sub.add_parser("extension-add")
    p.add_argument("tenant")
    p.add_argument("name")
    p = sub.add_parser("invalidate-delta")
    p.add_argument("tenant")
    p = sub.add_parser("fault-add")
    p.add_argument("json", help='e.g. {"route": "users/delta", "kind": "status", "status": 503, "count": 2}')
    sub.add_parser("fault-clear")
    p = sub.add_parser("settings")
    p.add_argument("json", nargs="?")
    p = sub.add_parser("requests")
    p.add_argument("--since", type=int, default=0)
    p.add_argument("--clear", action="store_true")
    sub.add_parser("counters")
    p = sub.add_parser("dump")
    p.add_argument("tenant")
    p = sub.add_parser("raw")
    p.add_argument("method")
    p.add_argument("path", help="path under /_admin/, e.g. tenants")
    p.add_argument("json", nargs="?")

    a = ap.parse_args(argv)
    c = a.cmd
    T = lambda t: "/_admin/tenants/" + quote(t, safe="")  # noqa: E731
    if c == "tenant-create":
        apps = []
        for s in a.app:
            cid, _, sec = s.partition(":")
            apps.append({"client_id": cid, "secret": sec})
        for s in a.cert_app:
            cid, _, path = s.partition(":")
            with open(path, encoding="ascii") as f:
                apps.append({"client_id": cid, "certificates": [f.read()]})
        return call(a, "POST", "/_admin/tenants", {"id": a.id, "domain": a.domain, "size": a.size, "apps": apps,
                                                    "guest_invite_allowed": not a.no_guest_invite,
                                                    "extension_properties": a.ext})
    if c == "seed":
        b = {"count": a.count, "seed": a.seed, "prefix": a.prefix, "guest_fraction": a.guest_fraction,
             "disabled_fraction": a.disabled_fraction, "with_manager": not a.no_manager}
        if a.group:
            b["group"] = a.group
        return call(a, "POST", T(a.tenant) + "/seed", b)
    if c == "users":
        q = ""
        if a.id:
            q = "?id=" + quote(a.id)
        elif a.upn:
            q = "?upn=" + quote(a.upn)
        return call(a, "GET", T(a.tenant) + "/users" + q)
    if c == "user-create":
        return call(a, "POST", T(a.tenant) + "/users", jarg(a.json))
    if c == "user-update":
        return call(a, "PATCH", T(a.tenant) + "/users/" + quote(a.id, safe=""), jarg(a.json))
    if c == "user-delete":
        return call(a, "DELETE", T(a.tenant) + "/users/" + quote(a.id, safe="") + ("?hard=1" if a.hard else ""))
    if c == "user-restore":
        return call(a, "POST", T(a.tenant) + "/users/" + quote(a.id, safe="") + "/restore", {})
    if c == "manager-set":
        return call(a, "PUT", T(a.tenant) + "/users/" + quote(a.id, safe="") + "/manager",
                    {"id": None if a.manager == "null" else a.manager})
    if c == "group-create":
        return call(a, "POST", T(a.tenant) + "/groups", {"displayName": a.name})
    if c == "member-add":
        return call(a, "POST", T(a.tenant) + "/groups/" + a.group + "/members", {"id": a.user})
    if c == "member-remove":
        return call(a, "DELETE", T(a.tenant) + "/groups/" + a.group + "/members/" + a.user)
    if c == "policy-set":
        b = {}
        if a.inbound is not None:
            b["inboundAllowed"] = a.inbound
        if a.outbound is not None:
            b["outboundAllowed"] = a.outbound
        if a.sync is not None:
            b["isSyncAllowed"] = a.sync
        return call(a, "PUT", T(a.tenant) + "/partners/" + a.partner, b)
    if c == "extension-add":
        return call(a, "POST", T(a.tenant) + "/extensions", {"name": a.name})
    if c == "invalidate-delta":
        return call(a, "POST", T(a.tenant) + "/invalidate-delta", {})
    if c == "fault-add":
        return call(a, "POST", "/_admin/faults", jarg(a.json))
    if c == "fault-clear":
        return call(a, "DELETE", "/_admin/faults")
    if c == "settings":
        if a.json:
            return call(a, "POST", "/_admin/settings", jarg(a.json))
        return call(a, "GET", "/_admin/settings")
    if c == "requests":
        if a.clear:
            return call(a, "DELETE", "/_admin/requests")
        return call(a, "GET", "/_admin/requests?since=%d" % a.since)
    if c == "counters":
        return call(a, "GET", "/_admin/counters")
    if c == "dump":
        return call(a, "GET", T(a.tenant) + "/dump")
    if c == "raw":
        return call(a, a.method.upper(), "/_admin/" + a.path.lstrip("/"), jarg(a.json) if a.json else None)
    return 2


if __name__ == "__main__":
    sys.exit(main())
