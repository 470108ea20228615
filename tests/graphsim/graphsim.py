#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# graphsim: a Microsoft Graph + identity-platform emulator for xtsync's tests. This file
# is the process: CLI, HTTP(S) server, request pipeline (auth, throttling, fault
# injection, request log, counters), JSON $batch and the /_admin/ API.
# Graph semantics live in gs_graph.py, tokens in gs_auth.py; it never leaves loopback.
import argparse
import json
import os
import random
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, parse_qsl, unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gs_auth  # noqa: E402
import gs_graph as G  # noqa: E402
import gs_model as M  # noqa: E402
import gs_throttle  # noqa: E402

DEFAULT_SETTINGS = {
    "time_scale": 1.0,
    "throttle": True,
    "token_lifetime_s": 3599.0,
    "opaque_tokens": False,
    "delta_token_max_age_s": 604800.0,
    "page_size": 100,
    "members_page_size": 100,
    "replay_probability": 0.0,
    "duplicate_probability": 0.0,
    "reorder_batch": True,
    "enforce_sync_policy": True,
    "oversize_bytes": 64 * 1024 * 1024,
    "max_log": 200000,
}
FAULT_KINDS = ("status", "reset", "stall_before", "stall_body", "truncate", "malformed", "oversize",
               "foreign_next", "alias_next", "relative_next", "null_annotations", "empty_value", "loop_next")
POSTPROC_KINDS = ("stall_body", "truncate", "malformed", "oversize", "foreign_next", "alias_next", "relative_next",
                  "null_annotations", "empty_value", "loop_next")
ERROR_CODES = {400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Forbidden", 404: "NotFound",
               409: "Conflict", 429: "TooManyRequests", 500: "generalException", 502: "BadGateway",
               503: "serviceNotAvailable", 504: "GatewayTimeout"}
TOKEN_RX = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
OIDC_RX = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$")


class Fault:
    def __init__(self, spec):
        self.id = str(uuid.uuid4())
        self.tenant = (spec.get("tenant") or "*").lower()
        self.route = re.compile(spec.get("route") or ".*")
        self.method = (spec.get("method") or "").upper() or None
        self.kind = spec.get("kind", "status")
        if self.kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % self.kind)
        self.status = int(spec.get("status", 503))
        self.code = spec.get("code")   # the error code, else the status's usual one
        self.retry_after = spec.get("retry_after")
        self.seconds = float(spec.get("seconds", 5))
        self.count = spec.get("count")
        self.probability = spec.get("probability")
        self.skip = int(spec.get("skip") or 0)   # let the first N matching requests through
        self.seen = 0
        self.hits = 0
        self.spec = spec

    def matches(self, tenant_id, method, path, rng):
        if self.tenant != "*" and self.tenant != (tenant_id or "").lower():
            return False
        if self.method and self.method != method:
            return False
        if not self.route.search(path):
            return False
        if self.seen < self.skip:
            self.seen += 1
            return False
        if self.count is not None:
            if self.hits >= int(self.count):
                return False
        elif self.probability is not None and rng.random() >= float(self.probability):
            return False
        self.hits += 1
        return True


class Sim:
    def __init__(self, settings):
        self.settings = dict(DEFAULT_SETTINGS, **settings)
        self.world = M.World()
        self.auth = gs_auth.Auth(self.world, self.settings)
        self.graph = G.Graph(self.world, self.settings)
        self.throttle = gs_throttle.Throttle(self.settings)
        self.faults = []
        self.fault_lock = threading.Lock()
        self.rng = random.Random()
        self.log = []
        self.log_lock = threading.Lock()
        self.seq = 0
        self.counters = {}
        self.base = None

    # -- request log & counters ---------------------------------------------------------
    def record(self, req, status, retry_after=None):
        with self.log_lock:
            self.seq += 1
            seq = self.seq
            tid = req.tenant.id if req.tenant is not None else None
            self.log.append({"seq": seq, "time": time.time(), "method": req.method, "path": req.path,
                             "tenant": tid, "app": req.app, "status": status, "route": req.route,
                             "batch_parent": req.batch_parent, "retry_after": retry_after,
                             "query": sorted(req.query),
                             "content_type": req.headers.get("content-type")})
            if len(self.log) > int(self.settings["max_log"]):
                del self.log[:len(self.log) // 10]
            key = (tid or "-", req.route or "-")
            c = self.counters.get(key)
            if c is None:
                c = self.counters[key] = {"requests": 0, "writes": 0, "invitations": 0, "429s": 0}
            c["requests"] += 1
            if req.method != "GET" and status < 400 and req.route not in ("token", "batch"):
                c["writes"] += 1
            if req.route == "invitations.post" and status < 400:
                c["invitations"] += 1
            if status == 429:
                c["429s"] += 1
        return seq

    def match_fault(self, tenant_id, method, path, kinds=None):
        with self.fault_lock:
            for f in self.faults:
                if kinds is not None and f.kind not in kinds:
                    continue
                if f.matches(tenant_id, method, path, self.rng):
                    return f
        return None

    # -- Graph pipeline -------------------------------------------------------------------
    def graph_request(self, req, rel, sub=False):
        """Authenticates, throttles and runs one Graph request. Returns (Resp, retry_after)."""
        authz = req.headers.get("authorization", "")
        if not authz.lower().startswith("bearer ") or not authz[7:].strip():
            return G.graph_error(req, 401, "InvalidAuthenticationToken", "Access token is empty.",
                                 {"WWW-Authenticate": 'Bearer realm=""'}), None
        claims, why = self.auth.verify(authz[7:].strip())
        if claims is None:
            msg = {"expired": "Lifetime validation failed, the token is expired.",
                   "signature": "IDX10511: Signature validation failed.",
                   "malformed": "IDX14100: JWT is not well formed."}[why]
            return G.graph_error(req, 401, "InvalidAuthenticationToken", msg,
                                 {"WWW-Authenticate": 'Bearer error="invalid_token"'}), None
        t = self.world.tenants.get(claims.get("tid"))
        if t is None:
            return G.graph_error(req, 401, "InvalidAuthenticationToken", "Tenant not found."), None
        req.tenant = t
        req.app = claims.get("appid")
        if sub:
            f = self.match_fault(t.id, req.method, req.path, ("status",))
            if f is not None:
                req.route = "fault"  # logged as a fault, as a request of its own is
                return self.status_fault_resp(req, f), f.retry_after
        if rel == "$batch":
            req.route = "batch"
            if req.method != "POST":
                return G.graph_error(req, 405, "Request_BadRequest", "The HTTP method is not allowed."), None
            return self.batch(req), None
        fn, kw, name = self.graph.match(req.method, rel)
        req.route = name
        if fn is None:
            if name is not None:
                return G.graph_error(req, 405, "Request_BadRequest",
                                     "Specified HTTP method is not allowed for the request target."), None
            seg = rel.split("/")[0] or rel
            return G.graph_error(req, 400, "BadRequest", "Resource not found for the segment '%s'." % seg), None
        ok, hdrs, retry, info = self.throttle.charge(t, req.app, req.method, rel, req.query)
        if not ok:
            hdrs["Retry-After"] = str(retry)
            return G.graph_error(req, 429, "TooManyRequests",
                                 "Too many requests. %s. Retry after %d seconds." % (info, retry), hdrs), retry
        with self.world.lock:
            try:
                resp = fn(req, **kw)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                resp = G.bad_request(req, "Invalid request: %s" % e, "BadRequest")
        resp.headers.update(hdrs)
        return resp, None

    def status_fault_resp(self, req, f):
        hdrs = {}
        ra = f.retry_after
        if ra is None and f.status in (429, 503):
            ra = 2
        if ra == "none":
            ra = None   # no Retry-After at all (throttling.md: then back off exponentially)
        if ra is not None:
            hdrs["Retry-After"] = str(ra)
        if req.route == "token":
            return G.Resp(f.status, {"error": "temporarily_unavailable",
                                     "error_description": "AADSTS90006: The service is temporarily unavailable.",
                                     "error_codes": [90006]}, hdrs)
        return G.graph_error(req, f.status, f.code or ERROR_CODES.get(f.status, "generalException"),
                             "Injected fault (%d)." % f.status, hdrs)

    def batch(self, req):
        # concepts/json-batching.md
        try:
            body = req.json()
        except ValueError:
            return G.bad_request(req, "Invalid batch payload format.", "BadRequest")
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return G.bad_request(req, "Invalid batch payload format.", "BadRequest")
        if len(reqs) > 20:
            return G.bad_request(req, "Number of batch request steps exceeds the maximum of 20.",
                                 "BadRequest")
        ids = set()
        for r in reqs:
            if isinstance(r, dict) and isinstance(r.get("id"), str):
                # Batch ids are not case-sensitive (concepts/json-batching.md).
                r = dict(r, id=r["id"].lower(), dependsOn=[d.lower() for d in r.get("dependsOn") or []
                                                           if isinstance(d, str)])
            if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not r.get("method") \
               or not isinstance(r.get("url"), str):
                return G.bad_request(req, "Invalid batch payload format: each request needs id, method "
                                     "and url.", "BadRequest")
            if r["id"] in ids:
                return G.bad_request(req, "Request id '%s' is duplicated in the batch." % r["id"], "BadRequest")
            dep = r.get("dependsOn") or []
            if not isinstance(dep, list) or any(d not in ids for d in dep):
                return G.bad_request(req, "Invalid dependsOn for request '%s': it must name earlier "
                                     "requests of the batch." % r["id"], "BadRequest")
            if r.get("body") is not None and not any(k.lower() == "content-type"
                                                     for k in (r.get("headers") or {})):
                return G.bad_request(req, "Write request id : %s does not contain Content-Type header or "
                                     "body." % r["id"], "BadRequest")
            ids.add(r["id"])
        parent_seq = self.record(req, 200)
        results = {}
        out = []
        for orig in reqs:
            r = dict(orig, id=orig["id"].lower(), dependsOn=[d.lower() for d in orig.get("dependsOn") or []])
            rid = orig["id"]
            url = r["url"]
            if "://" in url:
                resp = G.bad_request(req, "Batch request URLs must be relative.", "BadRequest")
                out.append(self._sub_resp(rid, resp))
                results[r["id"]] = resp.status
                continue
            failed = [d for d in r.get("dependsOn") or [] if results.get(d, 500) >= 400]
            if failed:
                resp = G.graph_error(req, 424, "FailedDependency",
                                     "The request was not processed because a request it depends on "
                                     "('%s') failed." % failed[0])
                out.append(self._sub_resp(rid, resp))
                results[r["id"]] = 424
                continue
            sp = urlsplit(url if url.startswith("/") else "/" + url)
            path = unquote(sp.path)
            if path.startswith("/v1.0/"):
                path = path[5:]
            hdrs = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
            hdrs["authorization"] = req.headers.get("authorization", "")
            b = r.get("body")
            raw = json.dumps(b).encode() if b is not None else b""
            sub = G.Req(r["method"].upper(), "/v1.0" + path, dict(parse_qsl(sp.query, keep_blank_values=True)),
                        hdrs, raw, req.base)
            sub.batch_parent = parent_seq
            resp, retry = self.graph_request(sub, path.lstrip("/"), sub=True)
            self.record(sub, resp.status, retry)
            results[r["id"]] = resp.status
            out.append(self._sub_resp(rid, resp))
        if self.settings["reorder_batch"]:
            self.rng.shuffle(out)
        # concepts/throttling.md, "Throttling and batching": a throttled request "fails with a
        # status of 429 ... The batch itself fails with a status code of 424 (Failed Dependency)";
        # every sub-response is still in the body.
        throttled = any(o["status"] == 429 for o in out)
        resp = G.Resp(424 if throttled else 200, {"responses": out})
        if throttled:
            with self.log_lock:
                for e in reversed(self.log):
                    if e["seq"] == parent_seq:
                        e["status"] = 424
                        break
        resp.headers["_recorded"] = parent_seq
        return resp

    @staticmethod
    def _sub_resp(rid, resp):
        o = {"id": rid, "status": resp.status,
             "headers": {k: v for k, v in resp.headers.items() if not k.startswith("_")}}
        if resp.body is not None:
            o["headers"].setdefault("Content-Type", "application/json")
            o["body"] = resp.body
        return o

    # -- admin API ------------------------------------------------------------------------
    def admin(self, method, path, query, body):
        """Returns (status, body)."""
        parts = [p for p in path.split("/") if p][1:]   # drop "_admin"
        w = self.world
        with w.lock:
            if parts == ["tenants"] and method == "POST":
                return self.admin_tenant_create(body)
            if parts == ["tenants"] and method == "GET":
                return 200, {"value": [self.tenant_json(t) for t in w.tenants.values()]}
            if parts == ["settings"]:
                if method == "POST":
                    for k, v in (body or {}).items():
                        if k not in DEFAULT_SETTINGS:
                            return 400, {"error": "unknown setting %r" % k}
                        if isinstance(DEFAULT_SETTINGS[k], bool):
                            if isinstance(v, str):
                                v = v.strip().lower() in ("1", "true", "yes", "on")
                            self.settings[k] = bool(v)
                        else:
                            self.settings[k] = type(DEFAULT_SETTINGS[k])(v)
                    self.throttle.reset()
                return 200, dict(self.settings)
            if parts == ["faults"]:
                if method == "POST":
                    try:
                        f = Fault(body or {})
                    except (ValueError, TypeError, re.error) as e:
                        return 400, {"error": str(e)}
                    with self.fault_lock:
                        self.faults.append(f)
                    return 201, {"id": f.id}
                if method == "DELETE":
                    with self.fault_lock:
                        self.faults = []
                    return 200, {}
                return 200, {"value": [dict(f.spec, id=f.id, hits=f.hits) for f in self.faults]}
            if parts and parts[0] == "faults" and len(parts) == 2 and method == "DELETE":
                with self.fault_lock:
                    self.faults = [f for f in self.faults if f.id != parts[1]]
                return 200, {}
            if parts == ["tokens"] and method == "GET":
                return 200, {"value": list(self.auth.issued)}
            if parts == ["requests"]:
                with self.log_lock:
                    if method == "DELETE":
                        self.log = []
                        return 200, {}
                    since = int(query.get("since", 0))
                    return 200, {"value": [r for r in self.log if r["seq"] > since], "last": self.seq}
            if parts == ["counters"]:
                with self.log_lock:
                    by_t, by_r, tot = {}, {}, {"requests": 0, "writes": 0, "invitations": 0, "429s": 0}
                    for (tid, route), c in self.counters.items():
                        for k, v in c.items():
                            by_t.setdefault(tid, dict.fromkeys(tot, 0))[k] += v
                            by_r.setdefault(route, dict.fromkeys(tot, 0))[k] += v
                            tot[k] += v
                    if method == "DELETE":
                        self.counters = {}
                    return 200, {"total": tot, "by_tenant": by_t, "by_route": by_r}
            if parts == ["throttle", "reset"] and method == "POST":
                self.throttle.reset()
                return 200, {}
            if len(parts) >= 2 and parts[0] == "tenants":
                t = w.tenant(parts[1])
                if t is None:
                    return 404, {"error": "no tenant %s" % parts[1]}
                return self.admin_tenant(t, method, parts[2:], query, body or {})
        return 404, {"error": "no admin route %s %s" % (method, path)}

    def tenant_json(self, t):
        return {"id": t.id, "domain": t.domain, "size": t.size, "guest_invite_allowed": t.guest_invite_allowed,
                "apps": [{"client_id": a.client_id, "has_secret": a.secret is not None,
                          "certificates": len(a.certificates), "application_write": a.application_write,
                          "object_id": a.object_id} for a in t.apps.values()],
                "users": len(t.users), "groups": len(t.groups), "extensions": sorted(t.extensions)}

    def admin_tenant_create(self, body):
        body = body or {}
        tid = body.get("id") or str(uuid.uuid4())
        dom = body.get("domain") or "t%s.example" % tid[:8]
        if self.world.tenants.get(tid.lower()) or self.world.domains.get(dom.lower()):
            return 409, {"error": "tenant or domain exists"}
        size = body.get("size", "small")
        if size not in gs_throttle.RU_LIMITS:
            return 400, {"error": "size must be small, medium or large"}
        t = self.world.add_tenant(tid, dom, size=size,
                                  guest_invite_allowed=bool(body.get("guest_invite_allowed", True)))
        for a in body.get("apps") or []:
            for pem in a.get("certificates") or []:
                gs_auth.check_pem_certificate(pem)
        for a in body.get("apps") or []:
            cid = (a.get("client_id") or str(uuid.uuid4())).lower()
            t.apps[cid] = M.App(cid, a.get("secret"), a.get("certificates"))
            t.apps[cid].application_write = bool(a.get("application_write", True))
        for e in body.get("extension_properties") or []:
            t.extensions.add(e)
        return 201, self.tenant_json(t)

    def user_admin_json(self, t, u):
        o = {k: v for k, v in u.props.items()}
        o["id"] = u.id
        o["deleted"] = bool(u.deleted)
        o["deletedDateTime"] = u.deleted
        o["manager"] = u.manager
        return o

    def admin_tenant(self, t, method, rest, query, body):
        w = self.world
        if rest == [] and method == "GET":
            return 200, self.tenant_json(t)
        if rest == ["apps"] and method == "POST":
            for pem in body.get("certificates") or []:
                gs_auth.check_pem_certificate(pem)
            cid = (body.get("client_id") or str(uuid.uuid4())).lower()
            t.apps[cid] = M.App(cid, body.get("secret"), body.get("certificates"))
            t.apps[cid].application_write = bool(body.get("application_write", True))
            return 201, {"client_id": cid}
        if len(rest) == 2 and rest[0] == "apps" and method == "PATCH":
            app = t.apps.get(rest[1].lower())
            if app is None:
                return 404, {"error": "no app %s" % rest[1]}
            if "application_write" in body:
                app.application_write = bool(body["application_write"])
            return 200, {"client_id": app.client_id, "application_write": app.application_write}
        if rest == ["extensions"] and method == "POST":
            name = body.get("name", "")
            if not G.EXT_RX.match(name):
                return 400, {"error": "extension names look like extension_{appIdNoHyphens}_{name}"}
            t.extensions.add(name)
            return 201, {"name": name}
        if rest == ["seed"] and method == "POST":
            n = int(body.get("count", 0))
            grp = body.get("group")
            if grp and grp not in t.groups:
                return 404, {"error": "no group %s" % grp}
            t0 = time.time()
            ids = t.seed(n, seed=int(body.get("seed", 1)), prefix=body.get("prefix", "u"), group=grp,
                         guest_fraction=float(body.get("guest_fraction", 0.05)),
                         disabled_fraction=float(body.get("disabled_fraction", 0.05)),
                         with_manager=bool(body.get("with_manager", True)))
            return 200, {"count": len(ids), "first_ids": ids[:10], "seconds": round(time.time() - t0, 3)}
        if rest == ["invalidate-delta"] and method == "POST":
            t.epoch += 1
            return 200, {"epoch": t.epoch}
        if rest == ["users"] and method == "GET":
            if "id" in query:
                u = t.users.get(query["id"])
                us = [u] if u else []
            elif "upn" in query:
                u = t.find_user(query["upn"])
                us = [u] if u else []
            else:
                us = [t.users[i] for i in t.order if i in t.users]
            return 200, {"value": [self.user_admin_json(t, u) for u in us]}
        if rest == ["users"] and method == "POST":
            props = dict(body)
            uid = props.pop("id", None)
            if uid and uid in t.users:
                return 409, {"error": "user exists"}
            props.setdefault("userType", "Member")
            props.setdefault("accountEnabled", True)
            u = t.add_user(props, uid)
            return 201, self.user_admin_json(t, u)
        if len(rest) >= 2 and rest[0] == "users":
            u = t.users.get(rest[1]) or t.find_user(rest[1])
            if u is None:
                return 404, {"error": "no user %s" % rest[1]}
            if len(rest) == 2 and method == "GET":
                return 200, self.user_admin_json(t, u)
            if len(rest) == 2 and method == "PATCH":
                changes = {k: v for k, v in body.items() if k not in ("id", "manager", "deleted")}
                t.update_user(u, changes)
                if "manager" in body:
                    t.set_manager(u, body["manager"])
                return 200, self.user_admin_json(t, u)
            if len(rest) == 2 and method == "DELETE":
                if query.get("hard") in ("1", "true"):
                    t.hard_delete(u)
                    return 200, {"id": u.id, "hard": True}
                if not u.deleted:
                    t.soft_delete(u)
                return 200, {"id": u.id, "hard": False}
            if rest[2:] == ["restore"] and method == "POST":
                if u.deleted:
                    t.restore(u)
                return 200, self.user_admin_json(t, u)
            if rest[2:] == ["manager"] and method == "PUT":
                mid = body.get("id")
                if mid is not None and mid not in t.users:
                    return 404, {"error": "no manager %s" % mid}
                t.set_manager(u, mid)
                return 200, self.user_admin_json(t, u)
        if rest == ["groups"] and method == "POST":
            g = t.add_group({"displayName": body.get("displayName", "group"),
                             "description": body.get("description"),
                             "mailEnabled": False, "securityEnabled": True}, body.get("id"))
            return 201, {"id": g.id}
        if rest == ["groups"] and method == "GET":
            return 200, {"value": [{"id": g.id, "displayName": g.props.get("displayName"),
                                    "members": len(g.members)} for g in t.groups.values()]}
        if len(rest) >= 2 and rest[0] == "groups":
            g = t.groups.get(rest[1])
            if g is None:
                return 404, {"error": "no group %s" % rest[1]}
            if rest[2:] == ["members"] and method == "POST":
                uid = body.get("id")
                if uid not in t.users:
                    return 404, {"error": "no user %s" % uid}
                t.group_member(g, uid, True)
                return 200, {"members": len(g.members)}
            if rest[2:] == ["members"] and method == "GET":
                return 200, {"value": sorted(g.members)}
            if len(rest) == 4 and rest[2] == "members" and method == "DELETE":
                t.group_member(g, rest[3], False)
                return 200, {"members": len(g.members)}
            if len(rest) == 2 and method == "DELETE":
                del t.groups[g.id]
                t.gtomb[g.id] = t.touch_group(g.id)
                return 200, {}
            if len(rest) == 2 and method == "PATCH":
                g.props.update({k: v for k, v in body.items() if k != "id"})
                g.pver = t.touch_group(g.id)
                return 200, {"id": g.id}
        if len(rest) == 2 and rest[0] == "partners" and method == "PUT":
            other = rest[1].lower()
            p = t.partners.get(other) or self.graph._new_partner({})
            ac = dict(p.get("automaticUserConsentSettings") or {})
            if "inboundAllowed" in body:
                ac["inboundAllowed"] = bool(body["inboundAllowed"])
            if "outboundAllowed" in body:
                ac["outboundAllowed"] = bool(body["outboundAllowed"])
            p["automaticUserConsentSettings"] = ac
            t.partners[other] = p
            if "isSyncAllowed" in body:
                sp = t.sync_policies.get(other) or {"displayName": None, "userSyncInbound": {}}
                sp["userSyncInbound"] = {"isSyncAllowed": bool(body["isSyncAllowed"])}
                t.sync_policies[other] = sp
            return 200, {"partner": dict(p, tenantId=other), "identitySynchronization": t.sync_policies.get(other)}
        if rest == ["dump"] and method == "GET":
            return 200, {"tenant": self.tenant_json(t), "seq": w.seq,
                         "partners": {k: dict(v) for k, v in t.partners.items()},
                         "sync_policies": t.sync_policies}
        return 404, {"error": "no admin route %s %s" % (method, "/".join(rest))}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "graphsim/1.0"
    sim = None  # set by serve()

    def setup(self):
        super().setup()
        # Headers and body go out in one write, and without Nagle's delay, so keep-alive
        # clients are not held up by delayed ACKs.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def end_headers_with(self, data):
        self._headers_buffer.append(b"\r\n")
        if data and self.command != "HEAD":
            self._headers_buffer.append(data)
        self.flush_headers()

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("graphsim: %s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.handle_any()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def handle_any(self):
        try:
            self.handle_request_inner()
        except (ConnectionError, ssl.SSLError, BrokenPipeError, TimeoutError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - an emulator bug must not look like a network fault
            sys.stderr.write("graphsim: internal error on %s %s: %r\n" % (self.command, self.path, e))
            try:
                self.send_raw(500, {"error": {"code": "generalException",
                                              "message": "graphsim internal error: %s" % type(e).__name__}}, {})
            except OSError:
                self.close_connection = True

    def handle_request_inner(self):
        sim = self.sim
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > 32 * 1024 * 1024:
            self.send_raw(413, {"error": {"code": "RequestEntityTooLarge", "message": "Request too large."}}, {})
            self.close_connection = True
            return
        body = self.rfile.read(n) if n else b""
        sp = urlsplit(self.path)
        path = unquote(sp.path)
        query = dict(parse_qsl(sp.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = G.Req(self.command, path, query, headers, body, sim.base)
        if path.startswith("/_admin/") or path == "/_admin":
            try:
                js = json.loads(body) if body else None
            except ValueError:
                self.send_raw(400, {"error": "invalid JSON"}, {})
                return
            try:
                status, out = sim.admin(self.command, path, query, js)
            except (ValueError, TypeError, KeyError, AttributeError) as e:
                status, out = 400, {"error": "%s: %s" % (type(e).__name__, e)}
            self.send_raw(status, out, {})
            return
        tenant_hint = None
        m = TOKEN_RX.match(path)
        if m:
            tenant_hint = sim.world.tenant(m.group(1))
        else:
            authz = headers.get("authorization", "")
            if authz.lower().startswith("bearer "):
                claims, _ = sim.auth.verify(authz[7:].strip())
                if claims:
                    tenant_hint = sim.world.tenants.get(claims.get("tid"))
        fault = sim.match_fault(tenant_hint.id if tenant_hint else None, self.command, path)
        if fault is not None and fault.kind == "reset":
            req.tenant, req.route = tenant_hint, "fault.reset"
            sim.record(req, 0)
            self.reset_connection()
            return
        if fault is not None and fault.kind == "stall_before":
            time.sleep(fault.seconds)
        retry = None
        if fault is not None and fault.kind == "status":
            req.tenant = tenant_hint
            req.route = "token" if m else "fault"
            resp = sim.status_fault_resp(req, fault)
            retry = resp.headers.get("Retry-After")
        elif m:
            req.route = "token"
            if self.command != "POST":
                resp = G.Resp(405, {"error": "invalid_request", "error_description":
                                    "AADSTS900561: The endpoint only accepts POST requests. Received a %s "
                                    "request." % self.command, "error_codes": [900561]})
            else:
                token_url = "%s/%s/oauth2/v2.0/token" % (sim.base, m.group(1))
                with sim.world.lock:
                    status, out, t, app = sim.auth.token(m.group(1), body, token_url)
                req.tenant, req.app = t, app
                resp = G.Resp(status, out, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})
        elif OIDC_RX.match(path):
            t = sim.world.tenant(OIDC_RX.match(path).group(1))
            req.route = "oidc"
            if t is None:
                resp = G.Resp(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant not found."})
            else:
                resp = G.Resp(200, {"issuer": "%s/%s/v2.0" % (sim.base, t.id),
                                    "token_endpoint": "%s/%s/oauth2/v2.0/token" % (sim.base, t.id),
                                    "tenant_region_scope": "EU"})
        elif path.startswith("/v1.0/"):
            resp, retry = sim.graph_request(req, path[len("/v1.0/"):])
        else:
            req.route = None
            resp = G.graph_error(req, 400, "BadRequest", "Invalid version: the path must start with /v1.0/.")
        if "_recorded" not in resp.headers:
            sim.record(req, resp.status, int(retry) if retry is not None else None)
        else:
            with sim.log_lock:
                for r in sim.log[::-1]:
                    if r["seq"] == resp.headers["_recorded"]:
                        r["status"] = resp.status
                        break
            del resp.headers["_recorded"]
        hdrs = dict(resp.headers)
        if req.route != "token":
            hdrs["request-id"] = req.request_id
            hdrs["client-request-id"] = headers.get("client-request-id") or req.request_id
        if fault is not None and fault.kind in POSTPROC_KINDS:
            self.send_faulty(fault, resp, hdrs)
            return
        self.send_raw(resp.status, resp.body, hdrs)

    def send_raw(self, status, body, hdrs):
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;"
                             "IEEE754Compatible=false;charset=utf-8")
        for k, v in hdrs.items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers_with(data)

    def reset_connection(self):
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            raw = self.connection
            if isinstance(raw, ssl.SSLSocket):
                raw = raw  # closing the SSL socket with linger 0 still sends RST
            raw.close()
        except OSError:
            pass

    def send_faulty(self, fault, resp, hdrs):
        k = fault.kind
        if k in ("foreign_next", "alias_next", "relative_next"):
            # foreign_next: another server. The other two are legal ways to
            # name this one (delta-query-overview.md: copy the link "without
            # having to inspect the contents of the URL"): alias_next names
            # it "localhost" (an emulator taking its base URL from its own
            # settings), relative_next gives a server-relative URL (OData
            # resolves it against the service root).
            body = resp.body
            if isinstance(body, dict):
                for key in ("@odata.nextLink", "@odata.deltaLink"):
                    if key in body:
                        if k == "foreign_next":
                            body[key] = re.sub(r"^https?://[^/]+", "http://evil.example", body[key])
                        elif k == "alias_next":
                            body[key] = re.sub(r"^(https?://)[^/:]+", r"\1localhost", body[key])
                        else:
                            body[key] = re.sub(r"^https?://[^/]+", "", body[key])
            self.send_raw(resp.status, body, hdrs)
            return
        if k == "loop_next":
            # a hostile or broken server: the page links back to itself
            # (its deltaLink, or nextLink, becomes a nextLink to this very
            # request), so a client that follows links blindly never ends
            body = resp.body
            if isinstance(body, dict):
                link = body.pop("@odata.deltaLink", None) or body.get("@odata.nextLink")
                m = re.match(r"^https?://[^/]+", link or "")
                if m:
                    body["@odata.nextLink"] = m.group(0) + self.path
            self.send_raw(resp.status, body, hdrs)
            return
        if k == "empty_value":
            # a glitch: the page says there is nobody (and no next page)
            body = resp.body
            if isinstance(body, dict) and isinstance(body.get("value"), list):
                body["value"] = []
                link = body.pop("@odata.nextLink", None)
                if link is not None and "@odata.deltaLink" not in body:
                    body["@odata.deltaLink"] = link
            self.send_raw(resp.status, body, hdrs)
            return
        if k == "null_annotations":
            # an emulator that serialises a fixed model: every optional
            # annotation present, null when it does not apply
            body = resp.body
            if isinstance(body, dict) and isinstance(body.get("value"), list):
                body.setdefault("@odata.nextLink", None)
                body.setdefault("@odata.deltaLink", None)
                for e in body["value"]:
                    if isinstance(e, dict):
                        e.setdefault("@removed", None)
            self.send_raw(resp.status, body, hdrs)
            return
        if k == "oversize":
            size = int(self.sim.settings["oversize_bytes"])
            item = json.dumps({"id": "00000000-0000-0000-0000-000000000000", "displayName": "x" * 200}).encode()
            head, tail = b'{"value":[', b"]}"
            n = max(1, (size - len(head) - len(tail)) // (len(item) + 1))
            total = len(head) + len(tail) + n * len(item) + (n - 1)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            for hk, hv in hdrs.items():
                self.send_header(hk, str(hv))
            self.send_header("Content-Length", str(total))
            self.end_headers()
            try:
                self.wfile.write(head)
                chunk = b",".join([item] * 1000)
                left = n
                first = True
                while left > 0:
                    m = min(1000, left)
                    part = chunk if m == 1000 else b",".join([item] * m)
                    self.wfile.write(part if first else b"," + part)
                    first = False
                    left -= m
                self.wfile.write(tail)
            except OSError:
                self.close_connection = True
            return
        if k == "malformed":
            data = b'{"value": [{"id": "6e5a0c4e-0000-4000-a000-000000000001", "displayName": "trunc'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            for hk, hv in hdrs.items():
                self.send_header(hk, str(hv))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        data = b"" if resp.body is None else json.dumps(resp.body, ensure_ascii=False).encode("utf-8")
        if not data:
            data = b'{"value":[]}'
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/json")
        for hk, hv in hdrs.items():
            self.send_header(hk, str(hv))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        half = max(1, len(data) // 2)
        try:
            self.wfile.write(data[:half])
            self.wfile.flush()
            if k == "stall_body":
                time.sleep(fault.seconds)
                self.wfile.write(data[half:])
            else:  # truncate: promise more than we send, then close
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    ssl_ctx = None

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # never finishes it cannot stall the accept loop.
        if self.ssl_ctx is not None:
            try:
                request.settimeout(30)
                request = self.ssl_ctx.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        # Clients hanging up mid-response are normal here (faults, timeouts).
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(args):
    settings = {}
    if args.time_scale is not None:
        settings["time_scale"] = args.time_scale
    if args.no_throttle:
        settings["throttle"] = False
    sim = Sim(settings)
    handler = type("BoundHandler", (Handler,), {"sim": sim})
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("graphsim: refusing to bind %s (loopback only)" % args.host)
    srv = Server((args.host, args.port), handler)
    srv.quiet = args.quiet
    scheme = "http"
    if args.tls:
        if not args.pki_dir:
            sys.exit("graphsim: --tls needs --pki-dir")
        crt, key = gs_auth.ensure_pki(args.pki_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(crt, key)
        srv.ssl_ctx = ctx
        scheme = "https"
    port = srv.server_address[1]
    sim.base = "%s://127.0.0.1:%d" % (scheme, port)
    print("graphsim listening on %s" % sim.base, flush=True)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Microsoft Graph + identity platform emulator for tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--pki-dir")
    ap.add_argument("--time-scale", type=float)
    ap.add_argument("--no-throttle", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    serve(args)


if __name__ == "__main__":
    main()
