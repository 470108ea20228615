#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# graphsim's own tests: start the emulator as a subprocess on a free port and check each
# documented behaviour over real HTTP with http.client; output is TAP. Each test uses its
# own freshly created tenants, so tests do not depend on each other's state.
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from urllib.parse import urlsplit, quote

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gs_auth  # noqa: E402

GRAPH_SCOPE = "https%3A%2F%2Fgraph.microsoft.com%2F.default"


def start_sim(tmp, *extra):
    port_file = os.path.join(tmp, "port-%s" % uuid.uuid4().hex[:6])
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "graphsim.py"), "--port-file", port_file,
                             "--quiet"] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(200):
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, int(f.read().strip())
        if proc.poll() is not None:
            raise RuntimeError("graphsim exited: %s" % proc.stderr.read().decode())
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("graphsim did not write its port file")


class Client:
    def __init__(self, port, scheme="http", cafile=None):
        self.port = port
        self.scheme = scheme
        self.cafile = cafile
        self.base = "%s://127.0.0.1:%d" % (scheme, port)

    def conn(self, timeout=30):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def req(self, method, url, body=None, headers=None, form=None, timeout=30, raw=False):
        if url.startswith("http"):
            sp = urlsplit(url)
            assert sp.netloc == "127.0.0.1:%d" % self.port, url
            url = sp.path + ("?" + sp.query if sp.query else "")
        h = dict(headers or {})
        data = None
        if form is not None:
            data = form.encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c = self.conn(timeout)
        try:
            c.request(method, url, body=data, headers=h)
            r = c.getresponse()
            payload = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
        finally:
            c.close()
        if raw:
            return r.status, payload, hdrs
        return r.status, (json.loads(payload) if payload else None), hdrs

    def admin(self, method, path, body=None):
        s, b, _ = self.req(method, "/_admin/" + path, body)
        assert s < 300, (method, path, s, b)
        return b


class GraphsimTest(unittest.TestCase):
    tmp = None
    proc = None
    c = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="graphsim-test-")
        cls.proc, port = start_sim(cls.tmp)
        cls.c = Client(port)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.c.admin("POST", "settings", {"time_scale": 1.0, "throttle": True, "token_lifetime_s": 3599,
                                          "delta_token_max_age_s": 604800, "page_size": 100,
                                          "members_page_size": 100, "replay_probability": 0.0,
                                          "duplicate_probability": 0.0, "reorder_batch": True,
                                          "oversize_bytes": 64 * 1024 * 1024})
        self.c.admin("DELETE", "faults")

    # -- helpers -----------------------------------------------------------------------
    def tenant(self, seed=0, **kw):
        tid = str(uuid.uuid4())
        dom = "t%s.example" % uuid.uuid4().hex[:10]
        app = str(uuid.uuid4())
        body = {"id": tid, "domain": dom, "apps": [{"client_id": app, "secret": "s3cret"}]}
        body.update(kw)
        self.c.admin("POST", "tenants", body)
        if seed:
            self.c.admin("POST", "tenants/%s/seed" % tid, {"count": seed, "seed": 7})
        return tid, dom, app

    def token(self, tenant, app, secret="s3cret"):
        s, b, _ = self.c.req("POST", "/%s/oauth2/v2.0/token" % tenant,
                             form="grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s"
                             % (app, secret, GRAPH_SCOPE))
        self.assertEqual(s, 200, b)
        return b["access_token"]

    def g(self, tok, method, url, body=None, headers=None, **kw):
        h = {"Authorization": "Bearer " + tok}
        h.update(headers or {})
        if not url.startswith("http") and not url.startswith("/"):
            url = "/v1.0/" + url
        return self.c.req(method, url, body, h, **kw)

    def setup_tenant(self, seed=0, **kw):
        tid, dom, app = self.tenant(seed, **kw)
        return tid, dom, app, self.token(tid, app)

    def delta_round(self, tok, url, headers=None):
        """Follows nextLinks to the deltaLink. Returns (entries, deltaLink, pages)."""
        out, pages = [], 0
        while True:
            s, b, _ = self.g(tok, "GET", url, headers=headers)
            self.assertEqual(s, 200, b)
            pages += 1
            out.extend(b["value"])
            if "@odata.nextLink" in b:
                self.assertNotIn("@odata.deltaLink", b)
                url = b["@odata.nextLink"]
                continue
            return out, b["@odata.deltaLink"], pages

    def admin_users(self, tid):
        return self.c.admin("GET", "tenants/%s/users" % tid)["value"]

    # -- token endpoint ---------------------------------------------------------------
    def test_token_secret(self):
        tid, dom, app = self.tenant()
        for key in (tid, dom):
            s, b, h = self.c.req("POST", "/%s/oauth2/v2.0/token" % key,
                                 form="grant_type=client_credentials&client_id=%s&client_secret=s3cret&scope=%s"
                                 % (app, GRAPH_SCOPE))
            self.assertEqual(s, 200, b)
            self.assertEqual(b["token_type"], "Bearer")
            self.assertGreater(b["expires_in"], 3000)
            self.assertTrue(b["access_token"])
            issued = [x["access_token"] for x in self.c.admin("GET", "tokens")["value"]]
            self.assertIn(b["access_token"], issued)

    def test_token_wrong_secret(self):
        tid, dom, app = self.tenant()
        s, b, _ = self.c.req("POST", "/%s/oauth2/v2.0/token" % tid,
                             form="grant_type=client_credentials&client_id=%s&client_secret=nope&scope=%s"
                             % (app, GRAPH_SCOPE))
        self.assertEqual(s, 401)
        self.assertEqual(b["error"], "invalid_client")
        self.assertEqual(b["error_codes"], [7000215])
        self.assertTrue(b["error_description"].startswith("AADSTS7000215:"))
        for k in ("timestamp", "trace_id", "correlation_id"):
            self.assertIn(k, b)
        self.assertNotIn("nope", json.dumps(b))

    def test_token_unknown_tenant_and_app(self):
        s, b, _ = self.c.req("POST", "/nosuch.example/oauth2/v2.0/token",
                             form="grant_type=client_credentials&client_id=x&client_secret=y&scope=" + GRAPH_SCOPE)
        self.assertEqual((s, b["error_codes"]), (400, [90002]))
        tid, dom, app = self.tenant()
        s, b, _ = self.c.req("POST", "/%s/oauth2/v2.0/token" % tid,
                             form="grant_type=client_credentials&client_id=%s&client_secret=y&scope=%s"
                             % (uuid.uuid4(), GRAPH_SCOPE))
        self.assertEqual((s, b["error"], b["error_codes"]), (400, "unauthorized_client", [700016]))

    def test_token_bad_scope(self):
        tid, dom, app = self.tenant()
        s, b, _ = self.c.req("POST", "/%s/oauth2/v2.0/token" % tid,
                             form="grant_type=client_credentials&client_id=%s&client_secret=s3cret"
                                  "&scope=User.Read" % app)
        self.assertEqual((s, b["error"], b["error_codes"]), (400, "invalid_scope", [1002012]))

    def _cert_tenant(self):
        cert, key = gs_auth.make_client_cert()
        tid = str(uuid.uuid4())
        app = str(uuid.uuid4())
        self.c.admin("POST", "tenants", {"id": tid, "domain": "c%s.example" % uuid.uuid4().hex[:8],
                                         "apps": [{"client_id": app, "certificates": [cert.decode()]}]})
        return tid, app, cert, key

    def _assert_token(self, tid, app, assertion):
        return self.c.req("POST", "/%s/oauth2/v2.0/token" % tid,
                          form="grant_type=client_credentials&client_id=%s&scope=%s&client_assertion_type=%s"
                               "&client_assertion=%s" % (app, GRAPH_SCOPE, quote(gs_auth.ASSERTION_TYPE, safe=""),
                                                         assertion))

    def test_cert_assertion_ps256_rs256(self):
        tid, app, cert, key = self._cert_tenant()
        aud = "%s/%s/oauth2/v2.0/token" % (self.c.base, tid)
        for alg, sha1 in (("PS256", False), ("RS256", False), ("RS256", True)):
            s, b, _ = self._assert_token(tid, app, gs_auth.make_assertion(cert, key, app, aud, alg=alg,
                                                                          use_sha1=sha1))
            self.assertEqual(s, 200, (alg, b))
            s, b2, _ = self.c.req("GET", "/v1.0/organization", headers={"Authorization": "Bearer " + b["access_token"]})
            self.assertEqual((s, b2["value"][0]["id"]), (200, tid))

    def test_cert_assertion_rejections(self):
        tid, app, cert, key = self._cert_tenant()
        aud = "%s/%s/oauth2/v2.0/token" % (self.c.base, tid)
        a = gs_auth.make_assertion(cert, key, app, aud)
        self.assertEqual(self._assert_token(tid, app, a)[0], 200)
        s, b, _ = self._assert_token(tid, app, a)                  # jti replay
        self.assertEqual((s, b["error"]), (401, "invalid_client"))
        self.assertEqual(b["error_codes"], [500133])
        s, b, _ = self._assert_token(tid, app, gs_auth.make_assertion(cert, key, app, aud + "x"))
        self.assertEqual((s, b["error_codes"]), (401, [700212]))  # wrong aud
        other_cert, other_key = gs_auth.make_client_cert()
        s, b, _ = self._assert_token(tid, app, gs_auth.make_assertion(other_cert, other_key, app, aud))
        self.assertEqual((s, b["error_codes"]), (401, [700027]))  # unregistered certificate
        forged = gs_auth.make_assertion(cert, other_key, app, aud)
        s, b, _ = self._assert_token(tid, app, forged)
        self.assertEqual((s, b["error_codes"]), (401, [700027]))  # signature by another key
        old = gs_auth.make_assertion(cert, key, app, aud, now=time.time() - 7200)
        s, b, _ = self._assert_token(tid, app, old)
        self.assertEqual((s, b["error_codes"]), (401, [700024]))  # expired
        s, b, _ = self._assert_token(tid, app, "not.a.jwt")
        self.assertEqual(s, 400)

    # -- Graph basics -------------------------------------------------------------------
    def test_graph_requires_valid_token(self):
        s, b, h = self.c.req("GET", "/v1.0/users")
        self.assertEqual((s, b["error"]["code"]), (401, "InvalidAuthenticationToken"))
        s, b, h = self.c.req("GET", "/v1.0/users", headers={"Authorization": "Bearer abc.def.ghi"})
        self.assertEqual((s, b["error"]["code"]), (401, "InvalidAuthenticationToken"))

    def test_expired_token(self):
        self.c.admin("POST", "settings", {"token_lifetime_s": 1})
        tid, dom, app, tok = self.setup_tenant()
        self.assertEqual(self.g(tok, "GET", "users")[0], 200)
        time.sleep(2.1)
        s, b, _ = self.g(tok, "GET", "users")
        self.assertEqual((s, b["error"]["code"]), (401, "InvalidAuthenticationToken"))
        self.assertIn("expired", b["error"]["message"])

    def test_error_shape_and_request_ids(self):
        tid, dom, app, tok = self.setup_tenant()
        s, b, h = self.g(tok, "GET", "users/%s" % uuid.uuid4(), headers={"client-request-id": "abc-123"})
        self.assertEqual(s, 404)
        self.assertEqual(b["error"]["code"], "Request_ResourceNotFound")
        inner = b["error"]["innerError"]
        self.assertEqual(inner["client-request-id"], "abc-123")
        self.assertEqual(h["client-request-id"], "abc-123")
        self.assertEqual(h["request-id"], inner["request-id"])
        self.assertIn("date", inner)

    # -- users/delta --------------------------------------------------------------------
    def test_delta_paging_to_deltalink(self):
        tid, dom, app, tok = self.setup_tenant(seed=250)
        s, b, _ = self.g(tok, "GET", "users/delta")
        self.assertEqual(s, 200)
        self.assertEqual(len(b["value"]), 100)
        nl = b["@odata.nextLink"]
        self.assertTrue(nl.startswith(self.c.base + "/v1.0/users/delta?$skiptoken="), nl)
        self.assertEqual(set(b["value"][0]), {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                                              "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                                              "userPrincipalName", "id"} & set(b["value"][0]) | {"id"})
        s, b, _ = self.g(tok, "GET", nl + "&$select=displayName")
        self.assertEqual(s, 400)                   # $select with $skiptoken is not supported
        entries, dl, pages = self.delta_round(tok, "users/delta")
        self.assertEqual(pages, 3)
        self.assertEqual(len({e["id"] for e in entries}), 250)
        self.assertTrue(dl.startswith(self.c.base + "/v1.0/users/delta?$deltatoken="), dl)
        entries, dl2, pages = self.delta_round(tok, dl)
        self.assertEqual((entries, pages), ([], 1))

    def test_delta_select_tracks_only_selected(self):
        tid, dom, app, tok = self.setup_tenant(seed=20)
        entries, dl, _ = self.delta_round(tok, "users/delta?$select=displayName,jobTitle")
        self.assertEqual(set(entries[0]) - {"displayName", "jobTitle", "id"}, set())
        u0, u1 = entries[0]["id"], entries[1]["id"]
        self.assertEqual(self.g(tok, "PATCH", "users/" + u0, {"department": "Unselected"})[0], 204)
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual(entries, [])
        self.assertEqual(self.g(tok, "PATCH", "users/" + u1, {"displayName": "Zoë Ünselected"})[0], 204)
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual([e["id"] for e in entries], [u1])
        self.assertEqual(entries[0]["displayName"], "Zoë Ünselected")
        self.assertIn("jobTitle", entries[0])      # default: unchanged selected props too

    def test_delta_incremental_and_minimal(self):
        tid, dom, app, tok = self.setup_tenant(seed=30)
        entries, dl, _ = self.delta_round(tok, "users/delta?$select=displayName,jobTitle,city")
        ids = [e["id"] for e in entries]
        self.g(tok, "PATCH", "users/" + ids[3], {"jobTitle": "Chief"})
        self.g(tok, "PATCH", "users/" + ids[7], {"city": None})
        entries, dl_next, _ = self.delta_round(tok, dl, headers={"Prefer": "return=minimal"})
        got = {e["id"]: e for e in entries}
        self.assertEqual(set(got), {ids[3], ids[7]})
        self.assertEqual(got[ids[3]], {"id": ids[3], "jobTitle": "Chief"})
        self.assertEqual(got[ids[7]], {"id": ids[7], "city": None})
        entries, _, _ = self.delta_round(tok, dl)    # the same round again without minimal
        got = {e["id"]: e for e in entries}
        self.assertEqual(set(got[ids[3]]), {"id", "jobTitle", "displayName", "city"})

    def test_delta_new_user_and_removed(self):
        tid, dom, app, tok = self.setup_tenant(seed=10)
        entries, dl, _ = self.delta_round(tok, "users/delta")
        ids = [e["id"] for e in entries]
        self.assertEqual(self.g(tok, "DELETE", "users/" + ids[0])[0], 204)
        self.c.admin("DELETE", "tenants/%s/users/%s?hard=1" % (tid, ids[1]))
        new = self.c.admin("POST", "tenants/%s/users" % tid, {"displayName": "Łukasz Nowy",
                                                             "userPrincipalName": "lukasz@%s" % dom})
        entries, dl, _ = self.delta_round(tok, dl)
        got = {e["id"]: e for e in entries}
        self.assertEqual(got[ids[0]], {"id": ids[0], "@removed": {"reason": "changed"}})
        self.assertEqual(got[ids[1]], {"id": ids[1], "@removed": {"reason": "deleted"}})
        self.assertEqual(got[new["id"]]["displayName"], "Łukasz Nowy")
        self.assertEqual(len(got), 3)
        fresh, _, _ = self.delta_round(tok, "users/delta")       # a new initial round
        got = {e["id"]: e for e in fresh}
        self.assertEqual(got[ids[0]], {"id": ids[0], "@removed": {"reason": "changed"}})
        self.assertEqual(got[ids[1]], {"id": ids[1], "@removed": {"reason": "deleted"}})
        s, b, _ = self.g(tok, "POST", "directory/deletedItems/%s/restore" % ids[0])
        self.assertEqual(s, 200, b)
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual([e["id"] for e in entries], [ids[0]])
        self.assertNotIn("@removed", entries[0])

    def test_delta_410_after_invalidate(self):
        tid, dom, app, tok = self.setup_tenant(seed=150)
        s, b, _ = self.g(tok, "GET", "users/delta?$select=displayName")
        nl = b["@odata.nextLink"]
        entries, dl, _ = self.delta_round(tok, "users/delta")
        self.c.admin("POST", "tenants/%s/invalidate-delta" % tid, {})
        for link in (dl, nl):
            s, b, h = self.g(tok, "GET", link)
            self.assertEqual(s, 410)
            self.assertEqual(b["error"]["code"], "resyncRequired")
            self.assertIn("$deltatoken=", h["location"])
            self.assertTrue(h["location"].startswith(self.c.base + "/v1.0/users/delta"))
        entries, _, _ = self.delta_round(tok, h["location"])
        self.assertEqual(len(entries), 150)

    def test_delta_token_max_age(self):
        tid, dom, app, tok = self.setup_tenant(seed=5)
        entries, dl, _ = self.delta_round(tok, "users/delta")
        self.assertEqual(self.g(tok, "GET", dl)[0], 200)
        self.c.admin("POST", "settings", {"delta_token_max_age_s": 0.2})
        time.sleep(0.3)
        s, b, _ = self.g(tok, "GET", dl)
        self.assertEqual((s, b["error"]["code"]), (410, "syncStateNotFound"))

    def test_delta_latest_and_filter(self):
        tid, dom, app, tok = self.setup_tenant(seed=60)
        ids = [u["id"] for u in self.admin_users(tid)]
        s, b, _ = self.g(tok, "GET", "users/delta?$deltatoken=latest")
        self.assertEqual((s, b["value"]), (200, []))
        dl = b["@odata.deltaLink"]
        self.g(tok, "PATCH", "users/" + ids[5], {"displayName": "Only Me"})
        entries, _, _ = self.delta_round(tok, dl)
        self.assertEqual([e["id"] for e in entries], [ids[5]])
        flt = quote("id eq '%s' or id eq '%s'" % (ids[1], ids[2]))
        entries, dl, _ = self.delta_round(tok, "users/delta?$filter=" + flt)
        self.assertEqual(sorted(e["id"] for e in entries), sorted(ids[1:3]))
        self.g(tok, "PATCH", "users/" + ids[2], {"displayName": "Filtered"})
        self.g(tok, "PATCH", "users/" + ids[9], {"displayName": "Not filtered"})
        entries, _, _ = self.delta_round(tok, dl)
        self.assertEqual([e["id"] for e in entries], [ids[2]])
        many = quote(" or ".join("id eq '%s'" % i for i in ids[:51]))
        s, b, _ = self.g(tok, "GET", "users/delta?$filter=" + many)
        self.assertEqual(s, 400)

    def test_delta_replays_and_duplicates(self):
        tid, dom, app, tok = self.setup_tenant(seed=40)
        entries, dl, _ = self.delta_round(tok, "users/delta")
        ids = [e["id"] for e in entries]
        self.c.admin("POST", "settings", {"duplicate_probability": 1.0})
        self.g(tok, "PATCH", "users/" + ids[0], {"displayName": "Dup"})
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual([e["id"] for e in entries], [ids[0], ids[0]])
        self.c.admin("POST", "settings", {"duplicate_probability": 0.0, "replay_probability": 1.0})
        self.g(tok, "PATCH", "users/" + ids[1], {"displayName": "New"})
        entries, dl, _ = self.delta_round(tok, dl)
        got = {e["id"] for e in entries}
        self.assertIn(ids[1], got)
        self.assertIn(ids[0], got)          # already delivered last round, replayed
        self.assertGreater(len(got), 2)     # replays of the initial round's users too

    def test_delta_reorders_changes(self):
        tid, dom, app, tok = self.setup_tenant(seed=60)
        entries, dl, _ = self.delta_round(tok, "users/delta?$select=displayName")
        ids = [e["id"] for e in entries]
        for i in ids:
            self.g(tok, "PATCH", "users/" + i, {"displayName": "R " + i[:4]})
        entries, _, _ = self.delta_round(tok, dl)
        self.assertEqual(sorted(e["id"] for e in entries), sorted(ids))
        self.assertNotEqual([e["id"] for e in entries], ids)

    def test_delta_manager(self):
        tid, dom, app, tok = self.setup_tenant(seed=12)
        entries, dl, _ = self.delta_round(tok, "users/delta?$select=displayName,manager")
        by = {e["id"]: e for e in entries}
        users = self.admin_users(tid)
        u5 = users[5]
        self.assertEqual(by[u5["id"]]["manager@delta"], [{"@odata.type": "#microsoft.graph.user",
                                                          "id": u5["manager"]}])
        s, _, _ = self.g(tok, "PUT", "users/%s/manager/$ref" % u5["id"],
                         {"@odata.id": "https://graph.microsoft.com/v1.0/users/%s" % users[11]["id"]})
        self.assertEqual(s, 204)
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0]["manager@delta"][0]["id"], users[11]["id"])

    # -- groups ---------------------------------------------------------------------------
    def test_groups_delta_members(self):
        tid, dom, app, tok = self.setup_tenant(seed=8)
        ids = [u["id"] for u in self.admin_users(tid)]
        gid = self.c.admin("POST", "tenants/%s/groups" % tid, {"displayName": "Sync scope"})["id"]
        for i in ids[:3]:
            self.c.admin("POST", "tenants/%s/groups/%s/members" % (tid, gid), {"id": i})
        entries, dl, _ = self.delta_round(tok, "groups/delta?$filter=" + quote("id eq '%s'" % gid))
        self.assertEqual(len(entries), 1)
        self.assertEqual(sorted(m["id"] for m in entries[0]["members@delta"]), sorted(ids[:3]))
        self.c.admin("DELETE", "tenants/%s/groups/%s/members/%s" % (tid, gid, ids[0]))
        self.c.admin("POST", "tenants/%s/groups/%s/members" % (tid, gid), {"id": ids[4]})
        entries, dl, _ = self.delta_round(tok, dl)
        md = {m["id"]: m for m in entries[0]["members@delta"]}
        self.assertEqual(set(md), {ids[0], ids[4]})
        self.assertEqual(md[ids[0]]["@removed"], {"reason": "deleted"})
        self.assertNotIn("@removed", md[ids[4]])

    def test_groups_delta_select_without_members(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        ids = [u["id"] for u in self.admin_users(tid)]
        gid = self.c.admin("POST", "tenants/%s/groups" % tid, {"displayName": "Sel"})["id"]
        entries, dl, _ = self.delta_round(tok, "groups/delta?$select=displayName")
        self.assertEqual(entries, [{"id": gid, "displayName": "Sel"}])
        self.c.admin("POST", "tenants/%s/groups/%s/members" % (tid, gid), {"id": ids[0]})
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual(entries, [])              # membership not selected: not tracked
        self.c.admin("PATCH", "tenants/%s/groups/%s" % (tid, gid), {"displayName": "Renamed"})
        entries, dl, _ = self.delta_round(tok, dl)
        self.assertEqual(entries, [{"id": gid, "displayName": "Renamed"}])

    def test_groups_delta_large_group_split(self):
        self.c.admin("POST", "settings", {"members_page_size": 2})
        tid, dom, app, tok = self.setup_tenant(seed=5)
        ids = [u["id"] for u in self.admin_users(tid)]
        gid = self.c.admin("POST", "tenants/%s/groups" % tid, {"displayName": "Big"})["id"]
        for i in ids:
            self.c.admin("POST", "tenants/%s/groups/%s/members" % (tid, gid), {"id": i})
        entries, dl, pages = self.delta_round(tok, "groups/delta")
        self.assertEqual(pages, 3)
        self.assertEqual([e["id"] for e in entries], [gid] * 3)
        self.assertEqual(sorted(m["id"] for e in entries for m in e["members@delta"]), sorted(ids))

    def test_group_members_paging(self):
        tid, dom, app, tok = self.setup_tenant(seed=5)
        gid = self.c.admin("POST", "tenants/%s/groups" % tid, {"displayName": "G"})["id"]
        for u in self.admin_users(tid):
            self.c.admin("POST", "tenants/%s/groups/%s/members" % (tid, gid), {"id": u["id"]})
        url, seen, pages = "groups/%s/members?$top=2" % gid, [], 0
        while url:
            s, b, h = self.g(tok, "GET", url)
            self.assertEqual(s, 200, b)
            self.assertEqual(h["x-ms-resource-unit"], "2")   # 3, minus 1 for $top < 20
            seen += [m["id"] for m in b["value"]]
            url = b.get("@odata.nextLink")
            pages += 1
        self.assertEqual((pages, len(set(seen))), (3, 5))

    # -- users ----------------------------------------------------------------------------
    def test_users_get_and_filters(self):
        ext = "extension_%s_costCenter" % uuid.uuid4().hex
        tid, dom, app, tok = self.setup_tenant(seed=50, extension_properties=[ext])
        users = self.admin_users(tid)
        u = users[17]
        s, b, _ = self.g(tok, "GET", "users/" + quote(u["userPrincipalName"]))
        self.assertEqual((s, b["id"]), (200, u["id"]))
        for prop in ("mail", "userPrincipalName", "employeeId", "mailNickname"):
            flt = quote("%s eq '%s'" % (prop, u[prop].upper() if prop == "mail" else u[prop]))
            s, b, _ = self.g(tok, "GET", "users?$filter=" + flt)
            self.assertEqual([x["id"] for x in b["value"]], [u["id"]], prop)
        self.g(tok, "PATCH", "users/" + users[3]["id"], {"otherMails": ["o'neil@elsewhere.example"], ext: "CC-9"})
        s, b, _ = self.g(tok, "GET", "users?$filter=" + quote("otherMails/any(x:x eq 'o''neil@elsewhere.example')"))
        self.assertEqual([x["id"] for x in b["value"]], [users[3]["id"]])
        s, b, _ = self.g(tok, "GET", "users?$filter=" + quote("%s eq 'CC-9'" % ext) + "&$select=id," + ext)
        self.assertEqual(b["value"], [{"id": users[3]["id"], ext: "CC-9"}])
        s, b, _ = self.g(tok, "GET", "users?$filter=" + quote("mail eq '%s' or employeeId eq '%s'"
                                                              % (u["mail"], users[4]["employeeId"])))
        self.assertEqual(sorted(x["id"] for x in b["value"]), sorted([u["id"], users[4]["id"]]))
        s, b, _ = self.g(tok, "GET", "users?$filter=" + quote("mail eq '%s' and employeeId eq '%s'"
                                                              % (u["mail"], users[4]["employeeId"])))
        self.assertEqual(b["value"], [])
        s, b, _ = self.g(tok, "GET", "users?$filter=" + quote("nosuch eq 'x'"))
        self.assertEqual(s, 400)
        # officeLocation eq is an advanced query (concepts/aad-advanced-queries.md)
        flt = "users?$filter=" + quote("officeLocation eq '%s'" % u["officeLocation"])
        s, b, _ = self.g(tok, "GET", flt)
        self.assertEqual((s, b["error"]["code"]), (400, "Request_UnsupportedQuery"))
        s, b, _ = self.g(tok, "GET", flt + "&$count=true")
        self.assertEqual(s, 400)
        s, b, _ = self.g(tok, "GET", flt + "&$count=true", headers={"ConsistencyLevel": "eventual"})
        want = sorted(x["id"] for x in users if x.get("officeLocation") == u["officeLocation"])
        self.assertEqual((s, sorted(x["id"] for x in b["value"]), b["@odata.count"]), (200, want, len(want)))
        s, b, _ = self.g(tok, "GET", "users/%s?$select=%s" % (users[3]["id"], ext))
        self.assertEqual(b[ext], "CC-9")

    def test_patch_rules(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        uid = self.admin_users(tid)[0]["id"]
        s, b, _ = self.g(tok, "PATCH", "users/" + uid, {"jobTitle": "Ärztin", "accountEnabled": False})
        self.assertEqual((s, b), (204, None))
        s, b, _ = self.g(tok, "GET", "users/%s?$select=jobTitle,accountEnabled" % uid)
        self.assertEqual((b["jobTitle"], b["accountEnabled"]), ("Ärztin", False))
        s, b, _ = self.g(tok, "PATCH", "users/" + uid, {"favouriteColour": "blue"})
        self.assertEqual((s, b["error"]["code"]), (400, "Request_BadRequest"))
        self.assertIn("does not exist as a declared property", b["error"]["message"])
        s, b, _ = self.g(tok, "PATCH", "users/" + uid, {"id": str(uuid.uuid4())})
        self.assertEqual(s, 400)
        self.assertIn("read-only", b["error"]["message"])
        s, b, _ = self.g(tok, "PATCH", "users/" + uid, {"extension_%s_x" % uuid.uuid4().hex: "unregistered"})
        self.assertEqual(s, 400)

    def test_extension_properties(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        hexid = app.replace("-", "")
        ext = "extension_%s_srcLink" % hexid
        uid = self.admin_users(tid)[0]["id"]
        s, b, _ = self.g(tok, "PATCH", "users/" + uid, {ext: "x"})
        self.assertEqual(s, 400)
        url = "applications(appId='%s')/extensionProperties" % app
        s, b, _ = self.g(tok, "GET", url)
        self.assertEqual((s, b["value"]), (200, []))
        s, b, _ = self.g(tok, "POST", url, {"name": "srcLink", "dataType": "Nope", "targetObjects": ["User"]})
        self.assertEqual(s, 400)
        s, b, _ = self.g(tok, "POST", url, {"name": "srcLink", "dataType": "String", "targetObjects": ["User"]})
        self.assertEqual(s, 201, b)
        self.assertEqual((b["name"], b["dataType"], b["targetObjects"], b["isMultiValued"]),
                         (ext, "String", ["User"], False))
        s, b2, _ = self.g(tok, "POST", url, {"name": "srcLink", "dataType": "String", "targetObjects": ["User"]})
        self.assertEqual((s, b2["error"]["code"]), (400, "Request_BadRequest"))
        self.assertIn("already exists", b2["error"]["message"])
        # Now usable on users like an admin-registered one: PATCH, $select, $filter.
        s, _, _ = self.g(tok, "PATCH", "users/" + uid, {ext: "L-1"})
        self.assertEqual(s, 204)
        s, b3, _ = self.g(tok, "GET", "users?$filter=" + quote("%s eq 'L-1'" % ext) + "&$select=id," + ext)
        self.assertEqual(b3["value"], [{"id": uid, ext: "L-1"}])
        # The object-id path lists the same; admin-registered names of the app show too.
        self.c.admin("POST", "tenants/%s/extensions" % tid, {"name": "extension_%s_other" % hexid})
        oid = [a for a in self.c.admin("GET", "tenants/" + tid)["apps"] if a["client_id"] == app][0]["object_id"]
        s, b4, _ = self.g(tok, "GET", "applications/%s/extensionProperties" % oid)
        self.assertEqual(sorted(x["name"] for x in b4["value"]), sorted([ext, "extension_%s_other" % hexid]))
        s, b5, _ = self.g(tok, "GET", "applications(appId='%s')/extensionProperties" % uuid.uuid4())
        self.assertEqual((s, b5["error"]["code"]), (404, "Request_ResourceNotFound"))
        # Without Application.ReadWrite.*: 403 and nothing registered.
        self.c.admin("PATCH", "tenants/%s/apps/%s" % (tid, app), {"application_write": False})
        s, b6, _ = self.g(tok, "POST", url, {"name": "denied", "dataType": "String", "targetObjects": ["User"]})
        self.assertEqual((s, b6["error"]["code"]), (403, "Authorization_RequestDenied"))
        self.assertNotIn("extension_%s_denied" % hexid, self.c.admin("GET", "tenants/" + tid)["extensions"])

    def test_delete_and_restore(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        uid = self.admin_users(tid)[1]["id"]
        self.assertEqual(self.g(tok, "DELETE", "users/" + uid)[0], 204)
        self.assertEqual(self.g(tok, "GET", "users/" + uid)[0], 404)
        s, b, _ = self.g(tok, "GET", "directory/deletedItems/microsoft.graph.user")
        self.assertEqual([x["id"] for x in b["value"]], [uid])
        self.assertTrue(b["value"][0]["deletedDateTime"])
        s, b, _ = self.g(tok, "POST", "directory/deletedItems/%s/restore" % uid)
        self.assertEqual((s, b["id"]), (200, uid))
        self.assertEqual(self.g(tok, "GET", "users/" + uid)[0], 200)
        s, b, _ = self.g(tok, "POST", "directory/deletedItems/%s/restore" % uid)
        self.assertEqual(s, 404)

    def test_manager_routes(self):
        tid, dom, app, tok = self.setup_tenant()
        a = self.c.admin("POST", "tenants/%s/users" % tid, {"displayName": "A", "userPrincipalName": "a@" + dom})
        m = self.c.admin("POST", "tenants/%s/users" % tid, {"displayName": "M", "userPrincipalName": "m@" + dom})
        self.assertEqual(self.g(tok, "GET", "users/%s/manager" % a["id"])[0], 404)
        s, _, _ = self.g(tok, "PUT", "users/%s/manager/$ref" % a["id"],
                         {"@odata.id": "%s/v1.0/users/%s" % (self.c.base, m["id"])})
        self.assertEqual(s, 204)
        s, b, _ = self.g(tok, "GET", "users/%s/manager" % a["id"])
        self.assertEqual((s, b["id"]), (200, m["id"]))
        self.assertEqual(self.g(tok, "DELETE", "users/%s/manager/$ref" % a["id"])[0], 204)
        self.assertEqual(self.g(tok, "GET", "users/%s/manager" % a["id"])[0], 404)

    # -- invitations -------------------------------------------------------------------------
    def test_invitation_guest(self):
        tid, dom, app, tok = self.setup_tenant()
        s, b, _ = self.g(tok, "POST", "invitations", {"invitedUserEmailAddress": "zoe@outside.example",
                                                      "inviteRedirectUrl": "https://myapps.microsoft.com"})
        self.assertEqual(s, 201, b)
        for k in ("id", "inviteRedeemUrl", "invitedUserEmailAddress", "invitedUserType", "status", "invitedUser"):
            self.assertIn(k, b)
        self.assertEqual((b["invitedUserType"], b["status"]), ("Guest", "PendingAcceptance"))
        u = self.c.admin("GET", "tenants/%s/users?id=%s" % (tid, b["invitedUser"]["id"]))["value"][0]
        self.assertEqual(u["userPrincipalName"], "zoe_outside.example#EXT#@" + dom)
        self.assertEqual((u["userType"], u["creationType"], u["externalUserState"], u["mail"]),
                         ("Guest", "Invitation", "PendingAcceptance", "zoe@outside.example"))
        s, b2, _ = self.g(tok, "GET", "users/" + quote(u["userPrincipalName"]))
        self.assertEqual((s, b2["id"]), (200, u["id"]))
        s, b, _ = self.g(tok, "POST", "invitations", {"invitedUserEmailAddress": "zoe@outside.example"})
        self.assertEqual(s, 400)

    def test_invitation_member_cross_tenant(self):
        src, sdom, sapp = self.tenant(seed=2)
        tgt, tdom, tapp, tok = self.setup_tenant()
        src_user = self.admin_users(src)[0]
        inv = {"invitedUserEmailAddress": src_user["mail"], "inviteRedirectUrl": "https://myapps.microsoft.com",
               "invitedUserType": "Member"}
        s, b, _ = self.g(tok, "POST", "invitations", inv)
        self.assertEqual((s, b["error"]["code"]), (403, "AzureDirectoryB2BManagementPolicyCheckFailure"))
        self.assertIn("auto-redemption", b["error"]["message"])
        self.c.admin("PUT", "tenants/%s/partners/%s" % (tgt, src), {"inboundAllowed": True, "isSyncAllowed": False})
        s, b, _ = self.g(tok, "POST", "invitations", inv)     # source outbound still missing
        self.assertEqual((s, b["error"]["code"]), (403, "AzureDirectoryB2BManagementPolicyCheckFailure"))
        self.assertIn(src, b["error"]["message"])
        self.c.admin("PUT", "tenants/%s/partners/%s" % (src, tgt), {"outboundAllowed": True})
        s, b, _ = self.g(tok, "POST", "invitations", inv)     # target inbound sync still missing
        self.assertEqual((s, b["error"]["code"]), (403, "AzureDirectoryB2BManagementPolicyCheckFailure"))
        self.assertIn("isSyncAllowed", b["error"]["message"])
        self.c.admin("PUT", "tenants/%s/partners/%s" % (tgt, src), {"isSyncAllowed": True})
        s, b, _ = self.g(tok, "POST", "invitations", inv)
        self.assertEqual(s, 201, b)
        self.assertEqual((b["invitedUserType"], b["status"]), ("Member", "Completed"))
        u = self.c.admin("GET", "tenants/%s/users?id=%s" % (tgt, b["invitedUser"]["id"]))["value"][0]
        self.assertEqual((u["userType"], u["externalUserState"]), ("Member", "Accepted"))

    def test_invitation_refused_when_disabled(self):
        tid, dom, app, tok = self.setup_tenant(guest_invite_allowed=False)
        s, b, _ = self.g(tok, "POST", "invitations", {"invitedUserEmailAddress": "x@y.example",
                                                      "inviteRedirectUrl": "https://a.example"})
        self.assertEqual(s, 403)
        self.assertEqual(self.admin_users(tid), [])

    # -- $batch ---------------------------------------------------------------------------------
    def test_batch_limits_and_depends_on(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        uid = self.admin_users(tid)[0]["id"]
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": [{"id": str(i), "method": "GET", "url": "/users/" + uid}
                                                               for i in range(21)]})
        self.assertEqual(s, 400)
        reqs = [{"id": "1", "method": "PATCH", "url": "/users/" + str(uuid.uuid4()), "body": {"city": "X"},
                 "headers": {"Content-Type": "application/json"}},
                {"id": "2", "method": "GET", "url": "/users/" + uid, "dependsOn": ["1"]},
                {"id": "3", "method": "GET", "url": "/users/%s?$select=city" % uid},
                {"id": "4", "method": "PATCH", "url": "/users/" + uid, "body": {"city": "Kraków"},
                 "headers": {"Content-Type": "application/json"}},
                {"id": "5", "method": "GET", "url": "users/%s?$select=city" % uid, "dependsOn": ["4"]}]
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": reqs})
        self.assertEqual(s, 200, b)
        st = {r["id"]: r for r in b["responses"]}
        self.assertEqual({k: v["status"] for k, v in st.items()}, {"1": 404, "2": 424, "3": 200, "4": 204, "5": 200})
        self.assertEqual(st["5"]["body"]["city"], "Kraków")
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": [{"id": "1", "method": "PATCH", "url": "/users/" + uid,
                                                               "body": {"city": "Z"}}]})
        self.assertEqual(s, 400)                   # a body needs a Content-Type header
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": [{"id": "A", "method": "GET", "url": "/users/" + uid},
                                                              {"id": "a", "method": "GET", "url": "/users/" + uid}]})
        self.assertEqual(s, 400)                   # ids are not case-sensitive

    def test_batch_responses_reordered(self):
        tid, dom, app, tok = self.setup_tenant(seed=20)
        ids = [u["id"] for u in self.admin_users(tid)]
        reqs = [{"id": str(i), "method": "GET", "url": "/users/" + u} for i, u in enumerate(ids)]
        orders = set()
        for _ in range(3):
            s, b, _ = self.g(tok, "POST", "$batch", {"requests": reqs})
            orders.add(tuple(r["id"] for r in b["responses"]))
            self.assertEqual(sorted(int(r["id"]) for r in b["responses"]), list(range(20)))
        self.assertNotIn(tuple(str(i) for i in range(20)), orders)

    def test_batch_sub_request_throttled(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        uid = self.admin_users(tid)[0]["id"]
        self.c.admin("POST", "settings", {"time_scale": 0.001})   # 3.5 resource units per 10 s
        reqs = [{"id": str(i), "method": "GET", "url": "/users/" + uid} for i in range(6)]
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": reqs})
        # throttling.md: "The batch itself fails with a status code of 424", the body still
        # holds every sub-response
        self.assertEqual(s, 424)
        codes = sorted(r["status"] for r in b["responses"])
        self.assertEqual(codes, [200, 200, 200, 429, 429, 429])
        for r in b["responses"]:
            if r["status"] == 429:
                self.assertGreaterEqual(int(r["headers"]["Retry-After"]), 1)
                self.assertEqual(r["body"]["error"]["code"], "TooManyRequests")

    # -- throttling -------------------------------------------------------------------------------
    def test_throttling_headers_and_retry_after(self):
        tid, dom, app, tok = self.setup_tenant(seed=3)
        s, b, h = self.g(tok, "GET", "users")
        self.assertEqual(h["x-ms-resource-unit"], "2")            # GET users costs 2
        s, b, h = self.g(tok, "GET", "users?$select=displayName")
        self.assertEqual(h["x-ms-resource-unit"], "1")            # $select discount
        s, b, h = self.g(tok, "PATCH", "users/" + self.admin_users(tid)[0]["id"], {"city": "Y"})
        self.assertEqual(h["x-ms-resource-unit"], "1")
        self.c.admin("POST", "settings", {"time_scale": 0.002})   # 7 RU per 10 s
        statuses, pct = [], None
        for _ in range(6):
            s, b, h = self.g(tok, "GET", "users")
            statuses.append(s)
            pct = pct or h.get("x-ms-throttle-limit-percentage")
            if s == 429:
                break
        self.assertEqual(statuses, [200, 200, 200, 429])
        self.assertIsNotNone(pct)
        self.assertGreaterEqual(float(pct), 0.8)
        ra = int(h["retry-after"])
        self.assertGreaterEqual(ra, 1)
        self.assertTrue(h["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/%s/%s" % (app, tid)))
        self.assertEqual(h["x-ms-throttle-information"], "ResourceUnitLimitExceeded")
        self.assertEqual(b["error"]["code"], "TooManyRequests")
        s, b, h = self.g(tok, "GET", "users?$select=id")          # before Retry-After: still 429
        self.assertEqual(s, 429)
        c = self.c.admin("GET", "counters")
        self.assertGreaterEqual(c["by_tenant"][tid]["429s"], 2)
        time.sleep(ra + 0.1)
        self.assertEqual(self.g(tok, "GET", "users?$select=id")[0], 200)

    def test_invitation_limit(self):
        tid, dom, app, tok = self.setup_tenant()
        self.c.admin("POST", "settings", {"time_scale": 0.02})    # 3 invitations per 5 s per tenant
        codes = []
        for i in range(4):
            s, b, h = self.g(tok, "POST", "invitations", {"invitedUserEmailAddress": "g%d@ext.example" % i,
                                                          "inviteRedirectUrl": "https://a.example"})
            codes.append(s)
        self.assertEqual(codes, [201, 201, 201, 429])
        self.assertEqual(h["x-ms-throttle-information"], "InvitationLimitExceeded")
        self.assertTrue(h["x-ms-throttle-scope"].startswith("Tenant/"))
        self.assertEqual(len(self.admin_users(tid)), 3)
        c = self.c.admin("GET", "counters")
        self.assertEqual(c["by_tenant"][tid]["invitations"], 3)

    def test_throttle_disabled(self):
        tid, dom, app, tok = self.setup_tenant(seed=1)
        self.c.admin("POST", "settings", {"time_scale": 0.001, "throttle": False})
        self.assertEqual([self.g(tok, "GET", "users")[0] for _ in range(6)], [200] * 6)

    # -- faults ------------------------------------------------------------------------------------
    def fault(self, tid, **kw):
        spec = {"tenant": tid}
        spec.update(kw)
        return self.c.admin("POST", "faults", spec)["id"]

    def test_fault_status_then_recover(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="/v1.0/users/delta", kind="status", status=503, retry_after=3, count=2)
        for _ in range(2):
            s, b, h = self.g(tok, "GET", "users/delta")
            self.assertEqual((s, h["retry-after"], b["error"]["code"]), (503, "3", "serviceNotAvailable"))
        self.assertEqual(self.g(tok, "GET", "users/delta")[0], 200)
        self.fault(tid, route="oauth2", kind="status", status=500, count=1)
        s, b, h = self.c.req("POST", "/%s/oauth2/v2.0/token" % tid, form="grant_type=client_credentials")
        self.assertEqual(s, 500)

    def test_fault_status_code(self):
        # "code" names the error code (Graph's Request_ResourceNotFound for a
        # directory object not replicated yet); without it, the status's usual one
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="/v1.0/users$", kind="status", status=404, code="Request_ResourceNotFound", count=1)
        self.fault(tid, route="/v1.0/users$", kind="status", status=404, count=1)
        self.assertEqual([self.g(tok, "GET", "users")[1]["error"]["code"] for _ in range(2)],
                         ["Request_ResourceNotFound", "NotFound"])

    def test_fault_skip(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="/v1.0/users$", kind="status", status=500, skip=2, count=1)
        codes = [self.g(tok, "GET", "users")[0] for _ in range(4)]
        self.assertEqual(codes, [200, 200, 500, 200])

    def test_fault_in_batch_sub_request(self):
        # a status fault on a sub-request answers that sub-request only, and the request
        # log names it a fault, as it does a request of its own
        tid, dom, app, tok = self.setup_tenant(seed=2)
        uid = self.admin_users(tid)[0]["id"]
        self.fault(tid, route="/v1.0/users/%s$" % uid, method="GET", kind="status", status=403, count=1)
        since = self.c.admin("GET", "requests?since=0")["last"]
        s, b, _ = self.g(tok, "POST", "$batch", {"requests": [
            {"id": "1", "method": "GET", "url": "/users/" + uid},
            {"id": "2", "method": "GET", "url": "/users/" + uid}]})
        self.assertEqual(s, 200)
        self.assertEqual(sorted(r["status"] for r in b["responses"]), [200, 403])
        log = self.c.admin("GET", "requests?since=%d" % since)["value"]
        self.assertEqual([(r["route"], r["status"]) for r in log if r["batch_parent"] is not None],
                         [("fault", 403), ("users.get", 200)])

    def test_fault_reset(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="/v1.0/users$", kind="reset", count=1)
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)):
            self.g(tok, "GET", "users")
        self.assertEqual(self.g(tok, "GET", "users")[0], 200)

    def test_fault_stalls(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="users$", kind="stall_before", seconds=0.6, count=1)
        t0 = time.time()
        self.assertEqual(self.g(tok, "GET", "users")[0], 200)
        self.assertGreaterEqual(time.time() - t0, 0.6)
        self.fault(tid, route="users$", kind="stall_body", seconds=0.6, count=1)
        t0 = time.time()
        s, b, _ = self.g(tok, "GET", "users")
        self.assertEqual((s, len(b["value"])), (200, 2))
        self.assertGreaterEqual(time.time() - t0, 0.6)
        self.fault(tid, route="users$", kind="stall_before", seconds=3, count=1)
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.g(tok, "GET", "users", timeout=0.5)

    def test_fault_truncate_malformed_oversize(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        self.fault(tid, route="users/delta", kind="truncate", count=1)
        with self.assertRaises(http.client.IncompleteRead):
            self.g(tok, "GET", "users/delta")
        self.fault(tid, route="users/delta", kind="malformed", count=1)
        s, raw, _ = self.g(tok, "GET", "users/delta", raw=True)
        self.assertEqual(s, 200)
        with self.assertRaises(ValueError):
            json.loads(raw)
        self.c.admin("POST", "settings", {"oversize_bytes": 3 * 1024 * 1024})
        self.fault(tid, route="users/delta", kind="oversize", count=1)
        s, raw, _ = self.g(tok, "GET", "users/delta", raw=True)
        self.assertGreaterEqual(len(raw), 3 * 1024 * 1024 - 300)
        self.assertGreater(len(json.loads(raw)["value"]), 1000)

    def test_fault_foreign_next_and_probability(self):
        tid, dom, app, tok = self.setup_tenant(seed=150)
        self.fault(tid, route="users/delta", kind="foreign_next", count=1)
        s, b, _ = self.g(tok, "GET", "users/delta")
        self.assertTrue(b["@odata.nextLink"].startswith("http://evil.example/v1.0/users/delta?"))
        self.c.admin("DELETE", "faults")
        self.fault(tid, route="users/delta", kind="alias_next", count=1)
        s, b, _ = self.g(tok, "GET", "users/delta")
        self.assertRegex(b["@odata.nextLink"], r"^http://localhost:\d+/v1\.0/users/delta\?")
        self.fault(tid, route="users/delta", kind="relative_next", count=1)
        s, b, _ = self.g(tok, "GET", "users/delta")
        self.assertTrue(b["@odata.nextLink"].startswith("/v1.0/users/delta?"))
        self.fault(tid, route="users/delta", kind="null_annotations", count=1)
        s, b, _ = self.g(tok, "GET", "users/delta")
        self.assertIsNone(b["@odata.deltaLink"])
        self.assertTrue(all("@removed" in e and e["@removed"] is None for e in b["value"]))
        self.c.admin("DELETE", "faults")
        self.fault(tid, route="users$", kind="status", status=502, probability=0.5)
        codes = [self.g(tok, "GET", "users?$select=id")[0] for _ in range(40)]
        self.assertTrue(8 <= codes.count(502) <= 32, codes)
        self.assertEqual(set(codes), {200, 502})

    # -- policies --------------------------------------------------------------------------------
    def test_partner_policies(self):
        tid, dom, app, tok = self.setup_tenant()
        other = str(uuid.uuid4())
        base = "policies/crossTenantAccessPolicy/partners"
        s, b, _ = self.g(tok, "GET", "%s/%s" % (base, other))
        self.assertEqual((s, b["error"]["code"]), (404, "Request_ResourceNotFound"))
        s, b, _ = self.g(tok, "PUT", "%s/%s/identitySynchronization" % (base, other),
                         {"userSyncInbound": {"isSyncAllowed": True}})
        self.assertEqual(s, 404)                  # partner configuration must exist first
        s, b, _ = self.g(tok, "POST", base, {"tenantId": other})
        self.assertEqual((s, b["tenantId"]), (201, other))
        s, b, _ = self.g(tok, "PATCH", "%s/%s" % (base, other),
                         {"automaticUserConsentSettings": {"inboundAllowed": True}})
        self.assertEqual(s, 204)
        s, b, _ = self.g(tok, "GET", "%s/%s" % (base, other))
        self.assertEqual(b["automaticUserConsentSettings"]["inboundAllowed"], True)
        self.assertEqual(self.g(tok, "GET", "%s/%s/identitySynchronization" % (base, other))[0], 404)
        s, b, _ = self.g(tok, "PUT", "%s/%s/identitySynchronization" % (base, other),
                         {"displayName": "Fabrikam", "userSyncInbound": {"isSyncAllowed": True}})
        self.assertEqual(s, 204)
        s, b, _ = self.g(tok, "GET", "%s/%s/identitySynchronization" % (base, other))
        self.assertEqual((s, b["userSyncInbound"]["isSyncAllowed"], b["tenantId"]), (200, True, other))
        self.assertEqual(self.g(tok, "PATCH", "%s/%s/identitySynchronization" % (base, other),
                                {"userSyncInbound": {"isSyncAllowed": False}})[0], 204)
        s, b, _ = self.g(tok, "GET", "%s/%s/identitySynchronization" % (base, other))
        self.assertEqual(b["userSyncInbound"]["isSyncAllowed"], False)

    def test_garbage_inputs_answered(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        uid = self.admin_users(tid)[0]["id"]
        h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        for method, url, body in (("PATCH", "/v1.0/users/" + uid, b"{not json"),
                                  ("PATCH", "/v1.0/users/" + uid, b"[1, 2]"),
                                  ("POST", "/v1.0/$batch", b'{"requests": "x"}'),
                                  ("POST", "/v1.0/$batch", b"\xff\xfe"),
                                  ("POST", "/v1.0/invitations", b"null"),
                                  ("GET", "/v1.0/users?$filter=" + quote("mail eq"), None),
                                  ("GET", "/v1.0/users/delta?$skiptoken=%%%", None),
                                  ("GET", "/v1.0/users/delta?$deltatoken=AAAA", None)):
            c = self.c.conn()
            c.request(method, url, body=body, headers=h)
            r = c.getresponse()
            payload = json.loads(r.read())
            c.close()
            self.assertTrue(400 <= r.status < 500, (method, url, r.status, payload))
            self.assertIn("code", payload["error"])
        s, b, _ = self.c.req("POST", "/_admin/tenants", {"id": str(uuid.uuid4()), "domain": "pem.example",
                                                         "apps": [{"client_id": "x", "certificates": ["junk"]}]})
        self.assertEqual(s, 400)
        self.assertEqual(self.g(tok, "GET", "users/" + uid)[0], 200)

    # -- request log / counters / seeding -------------------------------------------------------
    def test_request_log_and_counters(self):
        tid, dom, app, tok = self.setup_tenant(seed=2)
        since = self.c.admin("GET", "requests?since=0")["last"]
        uid = self.admin_users(tid)[0]["id"]
        self.g(tok, "GET", "users/delta")
        self.g(tok, "PATCH", "users/" + uid, {"city": "Zürich"})
        self.g(tok, "POST", "$batch", {"requests": [{"id": "a", "method": "GET", "url": "/users/" + uid}]})
        log = self.c.admin("GET", "requests?since=%d" % since)["value"]
        mine = [r for r in log if r["tenant"] == tid]
        self.assertEqual([r["route"] for r in mine], ["users.delta", "users.patch", "batch", "users.get"])
        self.assertEqual(mine[3]["batch_parent"], mine[2]["seq"])
        self.assertEqual(mine[1]["status"], 204)
        self.assertEqual(mine[0]["app"], app)
        c = self.c.admin("GET", "counters")
        self.assertEqual(c["by_tenant"][tid]["writes"], 1)
        self.assertEqual(c["by_tenant"][tid]["requests"], 5)   # token + 4 above

    def test_seed_realistic_and_deterministic(self):
        tid, dom, app = self.tenant()
        r = self.c.admin("POST", "tenants/%s/seed" % tid, {"count": 400, "seed": 3, "guest_fraction": 0.1,
                                                           "disabled_fraction": 0.1})
        self.assertEqual(r["count"], 400)
        users = self.admin_users(tid)
        self.assertEqual([u["id"] for u in users[:10]], r["first_ids"])
        guests = [u for u in users if u["userType"] == "Guest"]
        self.assertTrue(10 < len(guests) < 80, len(guests))
        self.assertTrue(all("#EXT#@" + dom in g["userPrincipalName"] and g["creationType"] == "Invitation"
                            for g in guests))
        self.assertTrue(any(not u["accountEnabled"] for u in users))
        self.assertTrue(any(any(ch in u["displayName"] for ch in "ëŁüéøñ") for u in users))
        self.assertEqual(users[0]["manager"], None)
        self.assertEqual(users[9]["manager"], users[1]["id"])
        for k in ("department", "jobTitle", "employeeId", "city", "country", "usageLocation", "mailNickname"):
            self.assertTrue(users[5][k], k)
        tid2, dom2, app2 = self.tenant()
        self.c.admin("POST", "tenants/%s/seed" % tid2, {"count": 400, "seed": 3, "guest_fraction": 0.1,
                                                        "disabled_fraction": 0.1})
        users2 = self.admin_users(tid2)
        self.assertEqual([u["displayName"] for u in users2], [u["displayName"] for u in users])


class SimctlTest(unittest.TestCase):
    def test_simctl_round_trip(self):
        tmp = tempfile.mkdtemp(prefix="graphsim-ctl-")
        proc, port = start_sim(tmp)
        url = "http://127.0.0.1:%d" % port

        def ctl(*args):
            r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "simctl.py"), "--url", url] + list(args),
                               capture_output=True, text=True)
            return r.returncode, json.loads(r.stdout)
        try:
            tid = str(uuid.uuid4())
            rc, out = ctl("tenant-create", "--id", tid, "--domain", "ctl.example", "--app", "%s:pw" % tid,
                          "--no-guest-invite")
            self.assertEqual((rc, out["guest_invite_allowed"], out["apps"][0]["has_secret"]), (0, False, True))
            rc, out = ctl("seed", tid, "25", "--seed", "4")
            self.assertEqual((rc, out["count"]), (0, 25))
            first = out["first_ids"][0]
            rc, out = ctl("users", tid, "--id", first)
            upn = out["value"][0]["userPrincipalName"]
            rc, out = ctl("users", tid, "--upn", upn.upper())
            self.assertEqual(out["value"][0]["id"], first)
            rc, out = ctl("user-update", tid, first, '{"department": "Ops"}')
            self.assertEqual((rc, out["department"]), (0, "Ops"))
            rc, out = ctl("user-delete", tid, first)
            rc, out = ctl("users", tid, "--id", first)
            self.assertTrue(out["value"][0]["deleted"])
            rc, out = ctl("user-restore", tid, first)
            self.assertFalse(out["deleted"])
            gid = ctl("group-create", tid, "Scope")[1]["id"]
            self.assertEqual(ctl("member-add", tid, gid, first)[1]["members"], 1)
            rc, out = ctl("policy-set", tid, str(uuid.uuid4()), "--inbound", "true", "--sync", "true")
            self.assertEqual(out["partner"]["automaticUserConsentSettings"]["inboundAllowed"], True)
            self.assertEqual(out["identitySynchronization"]["userSyncInbound"]["isSyncAllowed"], True)
            rc, out = ctl("fault-add", '{"route": "users", "kind": "status", "status": 503, "count": 1}')
            self.assertEqual(rc, 0)
            self.assertEqual(ctl("settings", '{"page_size": 7}')[1]["page_size"], 7)
            rc, out = ctl("users", "no-such-tenant")
            self.assertEqual(rc, 1)
            rc, out = ctl("requests")
            self.assertEqual(rc, 0)
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)


class TLSTest(unittest.TestCase):
    def test_tls_with_generated_ca(self):
        tmp = tempfile.mkdtemp(prefix="graphsim-tls-")
        pki = os.path.join(tmp, "pki")
        proc, port = start_sim(tmp, "--tls", "--pki-dir", pki)
        try:
            for f in ("ca.crt", "ca.key", "server.crt", "server.key"):
                self.assertTrue(os.path.exists(os.path.join(pki, f)), f)
            self.assertEqual(os.stat(os.path.join(pki, "ca.key")).st_mode & 0o077, 0)
            c = Client(port, "https", os.path.join(pki, "ca.crt"))
            s, b, _ = c.req("GET", "/_admin/settings")
            self.assertEqual(s, 200)
            with self.assertRaises(ssl.SSLCertVerificationError):
                Client(port, "https", None).req("GET", "/_admin/settings")
            other = os.path.join(tmp, "other")
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, "mkcert.py"), "other-ca", "--dir", other],
                           check=True)
            with self.assertRaises(ssl.SSLCertVerificationError):
                Client(port, "https", os.path.join(other, "other-ca.crt")).req("GET", "/_admin/settings")
            s, b, _ = c.req("POST", "/_admin/tenants", {"id": str(uuid.uuid4()), "domain": "tls.example"})
            self.assertEqual((s, b["domain"]), (201, "tls.example"))
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(tmp, ignore_errors=True)

    def test_mkcert_app(self):
        tmp = tempfile.mkdtemp(prefix="graphsim-mk-")
        try:
            crt, key = os.path.join(tmp, "a.crt"), os.path.join(tmp, "a.key")
            subprocess.run(["/usr/bin/python3", os.path.join(HERE, "mkcert.py"), "app", "--cert", crt, "--key", key],
                           check=True)
            with open(crt, "rb") as f:
                from cryptography import x509
                c = x509.load_pem_x509_certificate(f.read())
            self.assertEqual(c.public_key().key_size, 2048)
            self.assertEqual(os.stat(key).st_mode & 0o077, 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=None):
        self.n += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", self.n, test.id().split(".", 1)[1]), flush=True)
        if extra:
            for ln in extra.rstrip().splitlines():
                print("# " + ln, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test, self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test, self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, test.id(), reason), flush=True)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    if len(sys.argv) > 1:
        suite = unittest.TestSuite(t for t in _flatten(suite) if any(a in t.id() for a in sys.argv[1:]))
    print("1..%d" % suite.countTestCases(), flush=True)
    res = TapResult()
    suite.run(res)
    return 0 if res.wasSuccessful() else 1


def _flatten(s):
    for t in s:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


if __name__ == "__main__":
    sys.exit(main())
