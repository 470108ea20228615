# SPDX-License-Identifier: MIT
# graphsim's Microsoft Graph v1.0 surface: users (get/list/filter/patch/delete/restore,
# manager), users/delta and groups/delta, group members, invitations, $batch and the
# cross-tenant access partner policies. Requests arrive already authenticated and
# throttled by graphsim.py; this file never touches sockets, faults or the request log.
import base64
import bisect
import collections
import hashlib
import hmac
import json
import random
import re
import secrets
import time
import uuid
from urllib.parse import quote, unquote

import gs_model as M
import gs_odata as O


class Resp:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, body=None, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}


class Req:
    def __init__(self, method, path, query, headers, body, base):
        self.method = method
        self.path = path            # path without query, percent-decoded
        self.query = query          # {name: value} (first value wins)
        self.headers = headers      # lower-cased names
        self.body = body
        self.base = base            # http(s)://127.0.0.1:PORT
        self.tenant = None
        self.app = None
        self.route = None
        self.request_id = str(uuid.uuid4())
        self.batch_parent = None

    def json(self):
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))


def graph_error(req, status, code, message, headers=None):
    """Graph's error shape (concepts/errors.md) with innerError date/request-id."""
    inner = {"date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()),
             "request-id": req.request_id if req else str(uuid.uuid4()),
             "client-request-id": (req.headers.get("client-request-id") if req else None)
             or (req.request_id if req else str(uuid.uuid4()))}
    return Resp(status, {"error": {"code": code, "message": message, "innerError": inner}}, headers)


def not_found(req, rid):
    return graph_error(req, 404, "Request_ResourceNotFound",
                       "Resource '%s' does not exist or one of its queried reference-property objects "
                       "are not present." % rid)


def bad_request(req, message, code="Request_BadRequest"):
    return graph_error(req, 400, code, message)


EXT_RX = re.compile(r"^extension_[0-9a-fA-F]{32}_\w+$")
UPN_RX = re.compile(r"^[^@\s]+@[^@\s]+$")


class Graph:
    def __init__(self, world, settings):
        self.world = world
        self.settings = settings
        self.key = secrets.token_bytes(32)
        self.rounds = collections.OrderedDict()   # round id -> frozen incremental item list
        self.routes = []
        r = self.routes.append
        r(("GET", r"users/delta", self.users_delta, "users.delta"))
        r(("GET", r"users/microsoft\.graph\.delta\(\)", self.users_delta, "users.delta"))
        r(("GET", r"groups/delta", self.groups_delta, "groups.delta"))
        r(("GET", r"groups/microsoft\.graph\.delta\(\)", self.groups_delta, "groups.delta"))
        r(("GET", r"users", self.users_list, "users.list"))
        r(("POST", r"users", self.users_post, "users.post"))
        r(("GET", r"users/(?P<id>[^/]+)", self.user_get, "users.get"))
        r(("PATCH", r"users/(?P<id>[^/]+)", self.user_patch, "users.patch"))
        r(("DELETE", r"users/(?P<id>[^/]+)", self.user_delete, "users.delete"))
        r(("GET", r"users/(?P<id>[^/]+)/manager", self.manager_get, "users.manager.get"))
        r(("PUT", r"users/(?P<id>[^/]+)/manager/\$ref", self.manager_put, "users.manager.put"))
        r(("DELETE", r"users/(?P<id>[^/]+)/manager/\$ref", self.manager_delete, "users.manager.delete"))
        r(("GET", r"groups", self.groups_list, "groups.list"))
        r(("GET", r"groups/(?P<id>[^/]+)", self.group_get, "groups.get"))
        r(("GET", r"groups/(?P<id>[^/]+)/members", self.group_members, "groups.members"))
        r(("GET", r"directory/deletedItems/microsoft\.graph\.user", self.deleted_list, "deleteditems.list"))
        r(("GET", r"directory/deletedItems/(?P<id>[^/]+)", self.deleted_get, "deleteditems.get"))
        r(("POST", r"directory/deletedItems/(?P<id>[^/]+)/restore", self.deleted_restore,
           "deleteditems.restore"))
        r(("DELETE", r"directory/deletedItems/(?P<id>[^/]+)", self.deleted_purge, "deleteditems.delete"))
        r(("POST", r"invitations", self.invitations_post, "invitations.post"))
        r(("GET", r"organization", self.organization, "organization.get"))
        r(("GET", r"policies/crossTenantAccessPolicy/partners", self.partners_list, "partners.list"))
        r(("POST", r"policies/crossTenantAccessPolicy/partners", self.partners_post, "partners.post"))
        r(("GET", r"policies/crossTenantAccessPolicy/partners/(?P<tid>[^/]+)", self.partner_get, "partners.get"))
        r(("PATCH", r"policies/crossTenantAccessPolicy/partners/(?P<tid>[^/]+)", self.partner_patch,
           "partners.patch"))
        r(("DELETE", r"policies/crossTenantAccessPolicy/partners/(?P<tid>[^/]+)", self.partner_delete,
           "partners.delete"))
        # Directory extensions: api-reference/v1.0/api/application-post-extensionproperty.md and
        # application-list-extensionproperty.md; applications(appId='{appId}') is the alternate key.
        r(("GET", r"applications\(appId='(?P<appid>[^'/]+)'\)/extensionProperties", self.ext_list,
           "applications.extensionProperties.list"))
        r(("POST", r"applications\(appId='(?P<appid>[^'/]+)'\)/extensionProperties", self.ext_post,
           "applications.extensionProperties.post"))
        r(("GET", r"applications/(?P<oid>[^/()]+)/extensionProperties", self.ext_list,
           "applications.extensionProperties.list"))
        r(("POST", r"applications/(?P<oid>[^/()]+)/extensionProperties", self.ext_post,
           "applications.extensionProperties.post"))
        for m in ("GET", "PUT", "PATCH", "DELETE"):
            r((m, r"policies/crossTenantAccessPolicy/partners/(?P<tid>[^/]+)/identitySynchronization",
               self.sync_policy, "partners.identitySynchronization." + m.lower()))
        self.compiled = [(m, re.compile("^" + rx + "$"), fn, name) for m, rx, fn, name in self.routes]

    def match(self, method, rel):
        """Returns (handler, kwargs, route name) or (None, None, route name or None)."""
        path_known = None
        for m, rx, fn, name in self.compiled:
            mm = rx.match(rel)
            if mm:
                if m == method:
                    return fn, mm.groupdict(), name
                path_known = name
        return None, None, path_known

    # -- state tokens ------------------------------------------------------------------
    def enc(self, state):
        raw = json.dumps(state, separators=(",", ":")).encode()
        mac = hmac.new(self.key, raw, hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(raw + mac).rstrip(b"=").decode()

    def dec(self, tok):
        try:
            raw = base64.urlsafe_b64decode(tok.encode() + b"=" * (-len(tok) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) < 13:
            return None
        body, mac = raw[:-12], raw[-12:]
        if not hmac.compare_digest(mac, hmac.new(self.key, body, hashlib.sha256).digest()[:12]):
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    # -- helpers ----------------------------------------------------------------------
    def _select(self, req):
        s = req.query.get("$select")
        if not s:
            return None
        return [p.strip() for p in s.split(",") if p.strip()]

    def _check_select(self, req, sel, tenant, allow=("manager",)):
        for p in sel or ():
            if p in M.USER_PROPS or p in allow or p in tenant.extensions:
                continue
            return bad_request(req, "Could not find a property named '%s' on type 'microsoft.graph.user'." % p)
        return None

    def user_obj(self, u, sel=None):
        props = sel or M.DEFAULT_USER_PROPS
        out = {}
        p = u.props
        for k in props:
            if k == "manager" or k in M.HIDDEN_PROPS:
                continue
            if k == "id":
                out["id"] = u.id
            elif k == "deletedDateTime":
                out[k] = u.deleted
            else:
                out[k] = p.get(k)
        out["id"] = u.id
        return out

    def _user(self, req, key, deleted_ok=False):
        key = unquote(key)
        u = req.tenant.find_user(key)
        if u is None or (u.deleted and not deleted_ok):
            return None
        return u

    # -- users ---------------------------------------------------------------------
    def user_get(self, req, id):
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        sel = self._select(req)
        err = self._check_select(req, sel, req.tenant)
        if err:
            return err
        o = self.user_obj(u, sel)
        # api-reference/v1.0/api/user-list-manager.md: GET /users/{id}?$expand=manager (optionally
        # with a nested $select); the manager comes back as an object, absent when there is none.
        exp = req.query.get("$expand")
        if exp:
            if exp.split("(", 1)[0].strip() != "manager":
                return bad_request(req, "Could not find a navigation property named '%s' on type "
                                   "'microsoft.graph.user'." % exp.split("(", 1)[0].strip())
            m = req.tenant.users.get(u.manager) if u.manager else None
            if m is not None and not m.deleted:
                o["manager"] = {"@odata.type": "#microsoft.graph.user", "id": m.id}
        o["@odata.context"] = "%s/v1.0/$metadata#users/$entity" % req.base
        return Resp(200, o)

    def users_list(self, req):
        t = req.tenant
        sel = self._select(req)
        err = self._check_select(req, sel, t)
        if err:
            return err
        try:
            top = int(req.query.get("$top", "100"))
        except ValueError:
            return bad_request(req, "Invalid value for $top.")
        if top < 1 or top > 999:
            return bad_request(req, "Invalid page size specified: '%d'. Must be between 1 and 999 inclusive." % top)
        skip = req.query.get("$skiptoken")
        if skip:
            st = self.dec(skip)
            if not st or st.get("k") != "ulist" or st.get("t") != t.id:
                return bad_request(req, "The specified page token value has expired or is invalid.",
                                   "Directory_ExpiredPageToken")
            flt, sel, top, off = st["f"], st["s"], st["n"], st["o"]
        else:
            flt, off = req.query.get("$filter"), 0
        ids = None
        if flt:
            try:
                node = O.parse(flt)
            except O.FilterError as e:
                return bad_request(req, "Invalid filter clause: %s" % e)
            advanced = (req.headers.get("consistencylevel", "").lower() == "eventual" and
                        req.query.get("$count", "").lower() == "true")
            for p in O.props_used(node):
                if p not in M.USER_PROPS and p not in t.extensions and p != "id":
                    return bad_request(req, "Property '%s' does not exist as a declared property or "
                                       "extension property." % p)
                if p in M.ADVANCED_EQ_PROPS and not advanced:
                    # concepts/aad-advanced-queries.md: an advanced-only filter without
                    # ConsistencyLevel: eventual and $count=true is an error
                    return bad_request(req, "Unsupported or invalid query filter clause specified for "
                                       "property '%s' of resource 'User'." % p, "Request_UnsupportedQuery")

            def lookup(prop, val):
                if prop == "id":
                    return {val} if isinstance(val, str) else set()
                return t.lookup(prop, val)
            cand = O.candidates(node, lookup)
            pool = sorted(cand) if cand is not None else t.order

            def get_for(u):
                p = u.props
                return lambda k: u.id if k == "id" else p.get(k)
            ids = [uid for uid in pool if uid in t.users and not t.users[uid].deleted
                   and O.evaluate(node, get_for(t.users[uid]))]
        else:
            # walk the creation order lazily: page of `top`, next offset in t.order
            page, pos = [], off
            while pos < len(t.order) and len(page) < top:
                uid = t.order[pos]
                pos += 1
                u = t.users.get(uid)
                if u is not None and not u.deleted:
                    page.append(u)
            body = {"@odata.context": "%s/v1.0/$metadata#users" % req.base,
                    "value": [self.user_obj(u, sel) for u in page]}
            if pos < len(t.order):
                body["@odata.nextLink"] = self._link(req, "users", {"$skiptoken": self.enc(
                    {"k": "ulist", "t": t.id, "f": None, "s": sel and ",".join(sel), "n": top, "o": pos})})
            return Resp(200, body)
        page = ids[off:off + top]
        body = {"@odata.context": "%s/v1.0/$metadata#users" % req.base,
                "value": [self.user_obj(t.users[uid], sel) for uid in page]}
        if not skip and req.query.get("$count", "").lower() == "true":
            body["@odata.count"] = len(ids)
        if off + top < len(ids):
            body["@odata.nextLink"] = self._link(req, "users", {"$skiptoken": self.enc(
                {"k": "ulist", "t": t.id, "f": flt, "s": sel and ",".join(sel), "n": top, "o": off + top})})
        return Resp(200, body)

    def _link(self, req, rel, params):
        return "%s/v1.0/%s?%s" % (req.base, rel, "&".join("%s=%s" % (k, quote(str(v), safe=",'"))
                                                         for k, v in params.items()))

    def _validate_user_props(self, req, body, creating):
        t = req.tenant
        if not isinstance(body, dict):
            return bad_request(req, "Invalid request body: a JSON object is required.", "BadRequest")
        for k, v in body.items():
            if k.startswith("@odata."):
                continue
            if k in M.READONLY_PROPS and not (creating and k == "id"):
                return bad_request(req, "Property '%s' is read-only and cannot be set." % k)
            if k not in M.USER_PROPS and k not in t.extensions:
                return bad_request(req, "Property '%s' does not exist as a declared property or extension "
                                   "property." % k)
            if k == "accountEnabled" and not isinstance(v, bool):
                return bad_request(req, "Invalid value specified for property 'accountEnabled' of resource 'User'.")
            if k in ("businessPhones", "otherMails", "imAddresses", "proxyAddresses") and \
               not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                return bad_request(req, "Invalid value specified for property '%s' of resource 'User'." % k)
            if k == "userPrincipalName":
                if not isinstance(v, str) or not UPN_RX.match(v):
                    return bad_request(req, "Invalid value specified for property 'userPrincipalName' of "
                                       "resource 'User'.")
                other = set(t.lookup("userPrincipalName", v) or ()) - {getattr(req, "_uid", None)}
                if other:
                    return bad_request(req, "Another object with the same value for property "
                                       "userPrincipalName already exists.")
            if k == "businessPhones" and isinstance(v, list) and len(v) > 1:
                return bad_request(req, "Invalid value specified for property 'businessPhones' of resource "
                                   "'User' (only one business phone is supported).")
        return None

    def users_post(self, req):
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        err = self._validate_user_props(req, body, True)
        if err:
            return err
        for k in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile"):
            if k not in body:
                return bad_request(req, "Invalid value specified for property '%s' of resource 'User'." % k)
        body = dict(body)
        body.pop("passwordProfile", None)
        body.setdefault("userType", "Member")
        u = req.tenant.add_user(body)
        o = self.user_obj(u)
        o["@odata.context"] = "%s/v1.0/$metadata#users/$entity" % req.base
        return Resp(201, o, {"Location": "%s/v1.0/users/%s" % (req.base, u.id)})

    def user_patch(self, req, id):
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        req._uid = u.id
        err = self._validate_user_props(req, body, False)
        if err:
            return err
        changes = {k: v for k, v in body.items() if not k.startswith("@odata.") and k != "passwordProfile"}
        req.tenant.update_user(u, changes)
        return Resp(204)

    def user_delete(self, req, id):
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        req.tenant.soft_delete(u)
        return Resp(204)

    def manager_get(self, req, id):
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        m = req.tenant.users.get(u.manager) if u.manager else None
        if m is None or m.deleted:
            return not_found(req, "manager")
        o = self.user_obj(m, self._select(req))
        o["@odata.context"] = "%s/v1.0/$metadata#directoryObjects/$entity" % req.base
        o["@odata.type"] = "#microsoft.graph.user"
        return Resp(200, o)

    def manager_put(self, req, id):
        # api-reference/v1.0/api/user-post-manager.md: {"@odata.id": ".../users/{id}"} -> 204
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        ref = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(ref, str):
            return bad_request(req, "Missing '@odata.id' in the request body.", "BadRequest")
        mid = unquote(ref.rstrip("/").rsplit("/", 1)[-1])
        m = req.tenant.find_user(mid)
        if m is None or m.deleted:
            return not_found(req, mid)
        if m.id == u.id:
            return bad_request(req, "A user cannot be their own manager.")
        req.tenant.set_manager(u, m.id)
        return Resp(204)

    def manager_delete(self, req, id):
        u = self._user(req, id)
        if u is None:
            return not_found(req, id)
        if not u.manager:
            return not_found(req, "manager")
        req.tenant.set_manager(u, None)
        return Resp(204)

    # -- deleted items (api-reference/v1.0/api/directory-deleteditems-*.md) ---------------
    def deleted_list(self, req):
        t = req.tenant
        sel = self._select(req)
        vals = []
        for uid in t.order:
            u = t.users.get(uid)
            if u is not None and u.deleted:
                o = self.user_obj(u, sel)
                o["deletedDateTime"] = u.deleted
                vals.append(o)
        return Resp(200, {"@odata.context": "%s/v1.0/$metadata#directoryObjects/microsoft.graph.user" % req.base,
                          "value": vals})

    def deleted_get(self, req, id):
        u = req.tenant.users.get(id)
        if u is None or not u.deleted:
            return not_found(req, id)
        o = self.user_obj(u, self._select(req))
        o["deletedDateTime"] = u.deleted
        o["@odata.type"] = "#microsoft.graph.user"
        return Resp(200, o)

    def deleted_restore(self, req, id):
        t = req.tenant
        u = t.users.get(id)
        if u is None or not u.deleted:
            return not_found(req, id)
        upn = (u.props.get("userPrincipalName") or "").lower()
        clash = [o for o in t.lookup("userPrincipalName", upn) or () if o != u.id and not t.users[o].deleted]
        if clash:
            return bad_request(req, "Another object with the same value for property userPrincipalName "
                               "already exists.")
        t.restore(u)
        o = self.user_obj(u)
        o["@odata.context"] = "%s/v1.0/$metadata#directoryObjects/$entity" % req.base
        o["@odata.type"] = "#microsoft.graph.user"
        return Resp(200, o)

    def deleted_purge(self, req, id):
        u = req.tenant.users.get(id)
        if u is None or not u.deleted:
            return not_found(req, id)
        req.tenant.hard_delete(u)
        return Resp(204)

    # -- delta ------------------------------------------------------------------------
    def _delta_common(self, req, kind):
        """Decodes tokens. Returns (state, error Resp)."""
        t = req.tenant
        q = req.query
        rel = "users/delta" if kind == "users" else "groups/delta"
        tok = q.get("$skiptoken") or q.get("$skipToken")
        dtok = q.get("$deltatoken") if "$deltatoken" in q else q.get("$deltaToken")
        sel = self._select(req)
        if kind == "users":
            err = self._check_select(req, sel, t)
            if err:
                return None, err
        st = None
        if tok is not None or (dtok and dtok != "latest"):
            st = self.dec(tok if tok is not None else dtok)
            if not st or st.get("k") != kind or st.get("t") != t.id or \
               ("m" in st and (st["m"] == "d") != (tok is None)):
                return None, bad_request(req, "Invalid syncToken or skipToken.", "Request_BadRequest")
            if st["e"] != t.epoch:
                # concepts/delta-query-overview.md "Synchronization reset": 410 + Location with an
                # empty $deltaToken (same as the initial query).
                loc = {"$deltatoken": ""}
                if st.get("s"):
                    loc = {"$select": st["s"], "$deltatoken": ""}
                return None, graph_error(req, 410, "resyncRequired",
                                         "The delta token is no longer valid; a full resynchronization "
                                         "is required.", {"Location": self._link(req, rel, loc)})
            if st["m"] == "d" and time.time() - st["ts"] > float(self.settings["delta_token_max_age_s"]):
                # Token duration (delta-query-overview.md): seven days for directory objects.
                return None, graph_error(req, 410, "syncStateNotFound",
                                         "The sync state generation is not found. The delta token is "
                                         "expired and data must be synchronized again.")
            if tok is not None and sel:
                # "Delta queries with both $select and $skipToken will not be supported."
                # (concepts/delta-query-overview.md)
                return None, bad_request(req, "$select cannot be combined with $skiptoken; the "
                                         "nextLink already encodes the original query.")
            if st["m"] == "d":
                # A deltaLink request starts a new round; $select may be changed on it.
                s = st.get("s")
                if sel:
                    s = ",".join(sel)
                st = {"k": kind, "t": t.id, "e": t.epoch, "m": "i", "s": s, "f": st.get("f"),
                      "since": st["since"], "end": self.world.seq, "r": secrets.token_hex(8), "o": 0}
            return st, None
        flt = q.get("$filter")
        ids = None
        if flt:
            try:
                ids = O.id_list(O.parse(flt))
            except O.FilterError as e:
                return None, bad_request(req, "Invalid filter clause: %s" % e)
            if ids is None:
                return None, bad_request(req, "Unsupported query: only 'id eq' filters (joined with 'or') "
                                         "are supported with delta.")
            if len(ids) > 50:
                return None, bad_request(req, "The number of ids in the filter clause exceeds 50.")
        s = ",".join(sel) if sel else None
        if dtok == "latest":
            return {"k": kind, "t": t.id, "e": t.epoch, "m": "latest", "s": s, "f": ids}, None
        return {"k": kind, "t": t.id, "e": t.epoch, "m": "n", "s": s, "f": ids, "start": self.world.seq,
                "o": 0, "r": secrets.token_hex(8)}, None

    def _finish(self, req, kind, st, value, done, next_state):
        rel = "users/delta" if kind == "users" else "groups/delta"
        ctx = kind
        if st.get("s") and st.get("m") == "n" and st.get("o", 0) == 0:
            ctx = "%s(%s)" % (kind, st["s"])     # as in delta-query-users.md's initial response
        body = {"@odata.context": "%s/v1.0/$metadata#%s" % (req.base, ctx), "value": value}
        if done:
            body["@odata.deltaLink"] = self._link(req, rel, {"$deltatoken": self.enc(next_state)})
        else:
            body["@odata.nextLink"] = self._link(req, rel, {"$skiptoken": self.enc(next_state)})
        return Resp(200, body)

    def _delta_link_state(self, kind, t, st, since):
        return {"k": kind, "t": t.id, "e": t.epoch, "m": "d", "s": st.get("s"), "f": st.get("f"),
                "since": since, "ts": time.time()}

    def users_delta(self, req):
        t = req.tenant
        st, err = self._delta_common(req, "users")
        if err:
            return err
        if st["m"] == "latest":
            return self._finish(req, "users", st, [], True, self._delta_link_state("users", t, st, self.world.seq))
        sel = st["s"].split(",") if st.get("s") else None
        minimal = "return=minimal" in req.headers.get("prefer", "").replace(" ", "").lower()
        ps = int(self.settings["page_size"])
        if st["m"] == "n":
            return self._users_initial(req, t, st, sel, ps)
        return self._users_incremental(req, t, st, sel, ps, minimal)

    def _users_initial(self, req, t, st, sel, ps):
        pool = st["f"] if st.get("f") is not None else t.order
        off = st["o"]
        out = []
        rng = random.Random("%s/%d" % (st["r"], off))
        rp = float(self.settings["replay_probability"])
        if rp > 0 and off > 0:
            # Replays (delta-query-overview.md "Replays"): users from earlier pages again.
            lo = max(0, off - ps * 5)
            for _ in range(int(round(rp * ps))):
                u = t.users.get(pool[rng.randrange(lo, off)])
                if u is not None and not u.deleted:
                    out.append(self._user_delta_entry(u, sel, False, 0))
        while off < len(pool) and len(out) < ps:
            uid = pool[off]
            off += 1
            u = t.users.get(uid)
            if u is None:
                # Initial responses may carry @removed, "deleted" for permanently deleted users
                # too (concepts/delta-query-users.md, initial response example).
                if uid in t.tombstones:
                    out.append({"id": uid, "@removed": {"reason": "deleted"}})
                continue
            if u.deleted:
                # Initial responses may carry @removed (delta-query-overview.md).
                out.append({"id": uid, "@removed": {"reason": "changed"}})
            else:
                out.append(self._user_delta_entry(u, sel, False, 0))
        if off >= len(pool):
            return self._finish(req, "users", st, out, True, self._delta_link_state("users", t, st, st["start"]))
        nst = dict(st)
        nst["o"] = off
        return self._finish(req, "users", st, out, False, nst)

    def _user_delta_entry(self, u, sel, minimal, since):
        props = sel or M.DEFAULT_USER_PROPS
        new = u.created > since or u.dver > since
        e = {}
        p = u.props
        for k in props:
            if k in ("id", "manager") or k in M.HIDDEN_PROPS:
                continue
            if minimal and not new and u.prop_seq(k) <= since:
                continue
            if k in p:
                e[k] = p[k]
        e["id"] = u.id
        if sel and "manager" in sel and (new or u.mver > since or not minimal):
            if u.manager:
                e["manager@delta"] = [{"@odata.type": "#microsoft.graph.user", "id": u.manager}]
            elif u.mver > since and not new:
                e["manager@delta"] = []
        return e

    def _round_items(self, t, st, kind):
        key = (kind, t.id, st["r"])
        items = self.rounds.get(key)
        if items is not None:
            self.rounds.move_to_end(key)
            return items
        since, end = st["since"], st["end"]
        lseq, lid = (t.log_seq, t.log_id) if kind == "users" else (t.glog_seq, t.glog_id)
        lo = bisect.bisect_right(lseq, since)
        hi = bisect.bisect_right(lseq, end)
        flt = set(st["f"]) if st.get("f") is not None else None
        seen = dict.fromkeys(lid[lo:hi])
        sel = st["s"].split(",") if st.get("s") else None
        items = []
        for oid in seen:
            if flt is not None and oid not in flt:
                continue
            if kind == "users" and self._user_relevant(t, oid, sel, since):
                items.append(oid)
            elif kind == "groups" and self._group_relevant(t, oid, sel, since):
                items.append(oid)
        rng = random.Random(st["r"])
        rp = float(self.settings["replay_probability"])
        if rp > 0 and lo > 0:
            for oid in dict.fromkeys(lid[max(0, lo - 5000):lo]):
                if (flt is None or oid in flt) and rng.random() < rp:
                    items.append(oid)
        dp = float(self.settings["duplicate_probability"])
        if dp > 0:
            for oid in list(items):
                if rng.random() < dp:
                    items.append(oid)
        if self.settings["reorder_batch"]:
            rng.shuffle(items)
        self.rounds[key] = items
        while len(self.rounds) > 256:
            self.rounds.popitem(last=False)
        return items

    def _user_relevant(self, t, uid, sel, since):
        if uid in t.tombstones:
            return True
        u = t.users.get(uid)
        if u is None:
            return False
        if u.created > since or u.dver > since:
            return True
        if sel and "manager" in sel and u.mver > since:
            return True
        for k in sel or M.DEFAULT_USER_PROPS:
            if k not in ("id", "manager") and u.prop_seq(k) > since:
                return True
        return False

    @staticmethod
    def _group_relevant(t, gid, sel, since):
        # With $select, only the selected properties/relationships are tracked
        # (delta-query-overview.md); membership counts only when members is selected.
        g = t.groups.get(gid)
        if g is None or sel is None or "members" in sel:
            return True
        return g.created > since or g.pver > since

    def _users_incremental(self, req, t, st, sel, ps, minimal):
        items = self._round_items(t, st, "users")
        off = st["o"]
        out = []
        for uid in items[off:off + ps]:
            u = t.users.get(uid)
            if u is None:
                if uid in t.tombstones:
                    out.append({"id": uid, "@removed": {"reason": "deleted"}})
                continue
            if u.deleted:
                out.append({"id": uid, "@removed": {"reason": "changed"}})
            else:
                out.append(self._user_delta_entry(u, sel, minimal, st["since"]))
        off += ps
        if off >= len(items):
            return self._finish(req, "users", st, out, True, self._delta_link_state("users", t, st, st["end"]))
        nst = dict(st)
        nst["o"] = off
        return self._finish(req, "users", st, out, False, nst)

    # -- groups -----------------------------------------------------------------------
    def group_obj(self, g, sel=None):
        o = {"id": g.id}
        for k, v in g.props.items():
            if k.startswith("_"):
                continue
            if sel is None or k in sel:
                o[k] = v
        return o

    def groups_list(self, req):
        t = req.tenant
        vals = [self.group_obj(t.groups[g]) for g in t.gorder if g in t.groups]
        return Resp(200, {"@odata.context": "%s/v1.0/$metadata#groups" % req.base, "value": vals})

    def group_get(self, req, id):
        g = req.tenant.groups.get(id)
        if g is None:
            return not_found(req, id)
        return Resp(200, self.group_obj(g, self._select(req)))

    def group_members(self, req, id):
        t = req.tenant
        g = t.groups.get(id)
        skip = req.query.get("$skiptoken")
        if skip:
            st = self.dec(skip)
            if not st or st.get("k") != "gm" or st.get("g") != id:
                return bad_request(req, "The specified page token value has expired or is invalid.",
                                   "Directory_ExpiredPageToken")
            top, off, sel = st["n"], st["o"], st["s"]
        else:
            try:
                top = int(req.query.get("$top", "100"))
            except ValueError:
                return bad_request(req, "Invalid value for $top.")
            if top < 1 or top > 999:
                return bad_request(req, "Invalid page size specified: '%d'. Must be between 1 and 999 "
                                   "inclusive." % top)
            off, sel = 0, req.query.get("$select")
        if g is None:
            return not_found(req, id)
        members = sorted(g.members)
        page = members[off:off + top]
        vals = []
        for uid in page:
            u = t.users.get(uid)
            if u is None:
                continue
            o = self.user_obj(u, sel.split(",") if sel else None)
            o["@odata.type"] = "#microsoft.graph.user"
            vals.append(o)
        body = {"@odata.context": "%s/v1.0/$metadata#directoryObjects" % req.base, "value": vals}
        if off + top < len(members):
            body["@odata.nextLink"] = self._link(req, "groups/%s/members" % id, {"$top": top, "$skiptoken": self.enc(
                {"k": "gm", "g": id, "n": top, "o": off + top, "s": sel})})
        return Resp(200, body)

    def groups_delta(self, req):
        t = req.tenant
        st, err = self._delta_common(req, "groups")
        if err:
            return err
        if st["m"] == "latest":
            return self._finish(req, "groups", st, [], True,
                                self._delta_link_state("groups", t, st, self.world.seq))
        sel = st["s"].split(",") if st.get("s") else None
        with_members = sel is None or "members" in sel
        chunk = int(self.settings["members_page_size"])
        if st["m"] == "n":
            pool = st["f"] if st.get("f") is not None else t.gorder
            since, end = 0, st["start"]
        else:
            pool = self._round_items(t, st, "groups")
            since, end = st["since"], st["end"]
        off = st["o"]
        moff = st.get("mo", 0)
        out = []
        budget = int(self.settings["page_size"])
        while off < len(pool) and budget > 0:
            gid = pool[off]
            g = t.groups.get(gid)
            if g is None:
                if gid in t.gtomb and since:
                    out.append({"id": gid, "@removed": {"reason": "deleted"}})
                off += 1
                moff = 0
                budget -= 1
                continue
            o = self.group_obj(g, [s for s in sel if s != "members"] if sel else None)
            more = False
            if with_members:
                if since == 0:
                    mem = sorted(g.members)
                    md = [{"@odata.type": "#microsoft.graph.user", "id": m} for m in mem[moff:moff + chunk]]
                    more = moff + chunk < len(mem)
                else:
                    net = {}
                    for seq, uid, added in g.mlog:
                        if since < seq <= end:
                            net[uid] = added
                    mem = sorted(net)
                    md = []
                    for m in mem[moff:moff + chunk]:
                        e = {"@odata.type": "#microsoft.graph.user", "id": m}
                        if not net[m]:
                            e["@removed"] = {"reason": "deleted"}
                        md.append(e)
                    more = moff + chunk < len(mem)
                if md:
                    o["members@delta"] = md
            out.append(o)
            budget -= 1
            if more:
                # A large group fills the page; the same group comes back on the next page
                # with the next slice of members@delta (delta-query-groups.md).
                moff += chunk
                break
            off += 1
            moff = 0
        if off >= len(pool):
            dl_since = st["start"] if st["m"] == "n" else st["end"]
            return self._finish(req, "groups", st, out, True, self._delta_link_state("groups", t, st, dl_since))
        nst = dict(st)
        nst["o"] = off
        nst["mo"] = moff
        return self._finish(req, "groups", st, out, False, nst)

    # -- invitations (api-reference/v1.0/api/invitation-post.md) ---------------------------
    def invitations_post(self, req):
        t = req.tenant
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        if not isinstance(body, dict):
            return bad_request(req, "Invalid request body.", "BadRequest")
        email = body.get("invitedUserEmailAddress")
        redirect = body.get("inviteRedirectUrl")
        if not isinstance(email, str) or not UPN_RX.match(email):
            return bad_request(req, "The invitedUserEmailAddress is missing or invalid.", "BadRequest")
        if not isinstance(redirect, str) or not redirect:
            return bad_request(req, "The inviteRedirectUrl is required.", "BadRequest")
        utype = body.get("invitedUserType", "Guest")
        if utype not in ("Guest", "Member"):
            return bad_request(req, "Invalid value specified for property 'invitedUserType'.", "BadRequest")
        local, _, dom = email.partition("@")
        home = self.world.domains.get(dom.lower())
        if home is t:
            return bad_request(req, "The invited user already exists in this directory as a member; "
                               "users of the inviting tenant cannot be invited.", "BadRequest")
        if not t.guest_invite_allowed:
            return graph_error(req, 403, "Forbidden",
                               "Guest invitations not allowed for your company. Contact your company "
                               "administrator for more details.")
        accepted = False
        if home is not None:
            p = t.partners.get(home.id)
            ac = (p or {}).get("automaticUserConsentSettings") or {}
            accepted = bool(ac.get("inboundAllowed"))
            if utype == "Member" and self.settings["enforce_sync_policy"]:
                # Cross-tenant synchronization needs auto-redemption inbound in the target and
                # outbound in the source, and the target's inbound user sync; the provisioning
                # service reports AzureDirectoryB2BManagementPolicyCheckFailure ("Policy permitting
                # auto-redemption of invitations not configured.", graph:
                # api-reference/v1.0/resources/synchronization-synchronizationerror.md).
                hp = home.partners.get(t.id) or {}
                out_ok = bool((hp.get("automaticUserConsentSettings") or {}).get("outboundAllowed"))
                sp = t.sync_policies.get(home.id)
                why = None
                if not accepted:
                    why = "Policy permitting auto-redemption of invitations not configured. (tenant %s, " \
                          "inbound from %s)" % (t.id, home.id)
                elif not out_ok:
                    why = "Policy permitting auto-redemption of invitations not configured. (tenant %s, " \
                          "outbound to %s)" % (home.id, t.id)
                elif not sp or not (sp.get("userSyncInbound") or {}).get("isSyncAllowed"):
                    why = "Policy permitting user synchronization not configured. (tenant %s, " \
                          "userSyncInbound.isSyncAllowed for %s)" % (t.id, home.id)
                if why:
                    return graph_error(req, 403, "AzureDirectoryB2BManagementPolicyCheckFailure", why)
        existing = [uid for uid in t.lookup("mail", email) or ()
                    if t.users[uid].props.get("creationType") == "Invitation"]
        if existing:
            u = t.users[existing[0]]
            if u.deleted:
                return bad_request(req, "The invited user is in the deleted items of this directory; "
                                   "restore it instead.", "BadRequest")
        else:
            upn = "%s_%s#EXT#@%s" % (local, dom, t.domain)
            name = body.get("invitedUserDisplayName") or local
            props = {"displayName": name, "mail": email, "userPrincipalName": upn,
                     "mailNickname": "%s_%s#EXT#" % (local, dom), "userType": utype,
                     "creationType": "Invitation", "accountEnabled": True, "otherMails": [email],
                     "externalUserState": "Accepted" if accepted else "PendingAcceptance",
                     "externalUserStateChangeDateTime": M.iso()}
            u = t.add_user(props)
        state = u.props.get("externalUserState")
        inv_id = str(uuid.uuid4())
        # inviteRedeemUrl in the form of the invitation-post.md example.
        inner = "https://invitations.microsoft.com/redeem/?tenant=%s&user=%s&ticket=%s&ver=2.0" % (
            t.id, inv_id, quote(base64.b64encode(secrets.token_bytes(24)).decode(), safe=""))
        redeem = "https://login.microsoftonline.com/redeem?rd=%s" % quote(inner, safe="").lower()
        msg = body.get("invitedUserMessageInfo") or {
            "messageLanguage": None, "customizedMessageBody": None,
            "ccRecipients": [{"emailAddress": {"name": None, "address": None}}]}
        out = {"@odata.context": "%s/v1.0/$metadata#invitations/$entity" % req.base,
               "id": inv_id,
               "inviteRedeemUrl": redeem,
               "invitedUserDisplayName": body.get("invitedUserDisplayName"),
               "invitedUserType": u.props.get("userType"),
               "invitedUserEmailAddress": email,
               "sendInvitationMessage": bool(body.get("sendInvitationMessage", False)),
               "resetRedemption": bool(body.get("resetRedemption", False)),
               "inviteRedirectUrl": redirect,
               "status": "Completed" if state == "Accepted" else "PendingAcceptance",
               "invitedUserMessageInfo": msg,
               "invitedUser": {"id": u.id}}
        return Resp(201, out)

    def organization(self, req):
        t = req.tenant
        return Resp(200, {"@odata.context": "%s/v1.0/$metadata#organization" % req.base,
                          "value": [{"id": t.id, "displayName": t.domain,
                                     "verifiedDomains": [{"name": t.domain, "isInitial": True,
                                                          "isDefault": True, "type": "Managed"}]}]})

    # -- cross-tenant access partners ------------------------------------------------------
    def _partner_obj(self, t, tid):
        p = dict(t.partners[tid])
        p["tenantId"] = tid
        return p

    def partners_list(self, req):
        t = req.tenant
        return Resp(200, {"@odata.context": "%s/v1.0/$metadata#policies/crossTenantAccessPolicy/partners" % req.base,
                          "value": [self._partner_obj(t, k) for k in t.partners]})

    def partners_post(self, req):
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        tid = body.get("tenantId") if isinstance(body, dict) else None
        if not isinstance(tid, str):
            return bad_request(req, "tenantId is required.", "BadRequest")
        t = req.tenant
        tid = tid.lower()
        if tid in t.partners:
            return graph_error(req, 409, "Conflict", "A partner configuration for tenant '%s' already exists." % tid)
        t.partners[tid] = self._new_partner(body)
        return Resp(201, self._partner_obj(t, tid))

    @staticmethod
    def _new_partner(body):
        p = {"isServiceProvider": None, "isInMultiTenantOrganization": False, "inboundTrust": None,
             "b2bCollaborationOutbound": None, "b2bCollaborationInbound": None,
             "b2bDirectConnectOutbound": None, "b2bDirectConnectInbound": None,
             "tenantRestrictions": None,
             "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": None}}
        for k, v in body.items():
            if k in p or k == "automaticUserConsentSettings":
                p[k] = v
        return p

    def partner_get(self, req, tid):
        t = req.tenant
        tid = tid.lower()
        if tid not in t.partners:
            return not_found(req, tid)
        o = self._partner_obj(t, tid)
        o["@odata.context"] = "%s/v1.0/$metadata#policies/crossTenantAccessPolicy/partners/$entity" % req.base
        return Resp(200, o)

    def partner_patch(self, req, tid):
        t = req.tenant
        tid = tid.lower()
        if tid not in t.partners:
            return not_found(req, tid)
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        if not isinstance(body, dict):
            return bad_request(req, "Invalid request body.", "BadRequest")
        for k, v in body.items():
            if k == "automaticUserConsentSettings" and isinstance(v, dict):
                t.partners[tid][k] = dict(t.partners[tid].get(k) or {}, **v)
            elif k != "tenantId":
                t.partners[tid][k] = v
        return Resp(204)

    def partner_delete(self, req, tid):
        t = req.tenant
        tid = tid.lower()
        if t.partners.pop(tid, None) is None:
            return not_found(req, tid)
        t.sync_policies.pop(tid, None)
        return Resp(204)

    def sync_policy(self, req, tid):
        # api-reference/v1.0/resources/crosstenantidentitysyncpolicypartner.md
        t = req.tenant
        tid = tid.lower()
        m = req.method
        if m == "GET":
            sp = t.sync_policies.get(tid)
            if sp is None:
                return not_found(req, tid)
            o = dict(sp, tenantId=tid)
            o["@odata.context"] = ("%s/v1.0/$metadata#policies/crossTenantAccessPolicy/partners('%s')/"
                                   "identitySynchronization/$entity" % (req.base, tid))
            return Resp(200, o)
        if m == "DELETE":
            if t.sync_policies.pop(tid, None) is None:
                return not_found(req, tid)
            return Resp(204)
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        if not isinstance(body, dict):
            return bad_request(req, "Invalid request body.", "BadRequest")
        if tid not in t.partners:
            # The partner configuration must exist before its identitySynchronization object.
            return not_found(req, tid)
        cur = t.sync_policies.get(tid)
        if m == "PATCH" and cur is None:
            return not_found(req, tid)
        if m == "PUT" or cur is None:
            cur = {"displayName": None, "userSyncInbound": {"isSyncAllowed": False}}
        for k, v in body.items():
            if k == "userSyncInbound" and isinstance(v, dict):
                cur["userSyncInbound"] = dict(cur.get("userSyncInbound") or {}, **v)
            elif k in ("displayName", "externalCloudAuthorizedApplicationId"):
                cur[k] = v
        t.sync_policies[tid] = cur
        return Resp(204)

    # -- directory extensions (extensionProperty) -----------------------------------------
    def _application(self, req, appid, oid):
        t = req.tenant
        if appid is not None:
            app = t.apps.get(appid.lower())
            key = "appId='%s'" % appid
        else:
            app = next((a for a in t.apps.values() if a.object_id == oid.lower()), None)
            key = oid
        return app, key

    @staticmethod
    def _ext_obj(app, name, data_type="String", multi=False, targets=("User",)):
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "ext:" + name.lower())), "deletedDateTime": None,
                "appDisplayName": "xtsync-%s" % app.client_id, "dataType": data_type,
                "isMultiValued": multi, "isSyncedFromOnPremises": False, "name": name,
                "targetObjects": list(targets)}

    def _app_exts(self, t, app):
        """The app's extensionProperty objects, including names registered through the admin API."""
        prefix = "extension_%s_" % app.client_id.replace("-", "").lower()
        have = {e["name"].lower() for e in app.ext_props}
        extra = [self._ext_obj(app, n) for n in sorted(t.extensions)
                 if n.lower().startswith(prefix) and n.lower() not in have]
        return app.ext_props + extra

    def ext_list(self, req, appid=None, oid=None):
        app, key = self._application(req, appid, oid)
        if app is None:
            return not_found(req, key)
        return Resp(200, {"@odata.context": "%s/v1.0/$metadata#applications('%s')/extensionProperties" %
                          (req.base, app.object_id), "value": self._app_exts(req.tenant, app)})

    def ext_post(self, req, appid=None, oid=None):
        t = req.tenant
        app, key = self._application(req, appid, oid)
        if app is None:
            return not_found(req, key)
        caller = t.apps.get((req.app or "").lower())
        if caller is None or not caller.application_write:
            # Application.ReadWrite.OwnedBy (least privileged) or Application.ReadWrite.All is required.
            return graph_error(req, 403, "Authorization_RequestDenied",
                               "Insufficient privileges to complete the operation.")
        try:
            body = req.json()
        except ValueError:
            return bad_request(req, "Unable to read JSON request payload.", "BadRequest")
        if not isinstance(body, dict):
            return bad_request(req, "Invalid request body.", "BadRequest")
        short, dt, targets = body.get("name"), body.get("dataType"), body.get("targetObjects")
        multi = body.get("isMultiValued", False)
        if not isinstance(short, str) or not re.match(r"^\w+$", short):
            return bad_request(req, "Property 'name' is required and must be a valid identifier.")
        if dt not in ("Binary", "Boolean", "DateTime", "Integer", "LargeInteger", "String"):
            return bad_request(req, "Invalid value specified for property 'dataType' of resource "
                               "'ExtensionProperty'.")
        ok_targets = ("User", "Group", "AdministrativeUnit", "Application", "Device", "Organization")
        if (not isinstance(targets, list) or not targets or
                any(x not in ok_targets for x in targets)):
            return bad_request(req, "Invalid value specified for property 'targetObjects' of resource "
                               "'ExtensionProperty'.")
        if not isinstance(multi, bool):
            return bad_request(req, "Invalid value specified for property 'isMultiValued'.")
        name = "extension_%s_%s" % (app.client_id.replace("-", "").lower(), short)
        if any(e["name"].lower() == name.lower() for e in self._app_exts(t, app)):
            return bad_request(req, "Another object with the same value for property name already exists.")
        o = self._ext_obj(app, name, dt, multi, targets)
        app.ext_props.append(o)
        if "User" in targets:
            t.extensions.add(name)
        out = dict(o)
        out["@odata.context"] = ("%s/v1.0/$metadata#applications('%s')/extensionProperties/$entity" %
                                 (req.base, app.object_id))
        return Resp(201, out)
