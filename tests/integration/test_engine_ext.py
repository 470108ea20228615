#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Engine integration test (TAP): the engine registers its own link attribute
# (the directory extension extension_<target app>_xtsyncSourceLink) when the
# target tenant lacks it, once; never an attribute of another app; and when the
# app may not (403) the job is quarantined with the exact fix, before any write.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000e1"
B = "bbbbbbbb-0000-4000-8000-0000000000e2"
C = "cccccccc-0000-4000-8000-0000000000e3"
D = "dddddddd-0000-4000-8000-0000000000e4"
CA = "11111111-1111-4111-8111-1111111111e1"
CB = "22222222-2222-4222-8222-2222222222e2"
CC = "33333333-3333-4333-8333-3333333333e3"
CD = "44444444-4444-4444-8444-4444444444e4"
OTHER = "0123abcd-4567-4890-8abc-def0123456e9"
ROUTE = "applications.extensionProperties.post"


def ext_posts(reqs, tid):
    return [r for r in reqs if r["route"] == ROUTE and r["tenant"] == tid]


def user_writes(reqs, tid):
    """Writes to the tenant's directory other than the extension registration."""
    return [(r["method"], r["path"]) for r in reqs if r["method"] != "GET" and r["tenant"] == tid and
            r["route"] not in ("token", "batch", ROUTE)]


def fix_text(app, name="xtsyncSourceLink"):
    return ("POST /v1.0/applications(appId='%s')/extensionProperties with {\"name\": \"%s\", "
            "\"dataType\": \"String\", \"targetObjects\": [\"User\"]}" % (app, name))


t = X.Tap()
tmp = X.tmpdir("engine-ext")
sim = X.Sim(tmp)
ok = False
try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    # targets with no directory extension registered; C's app lacks Application.ReadWrite.*
    sim.tenant(D, "custom.example", CD, "s3cret-value", ())
    env.tenants["custom"] = (D, CD)
    sim.tenant(B, "tgt.example", CB, "s3cret-value", ())
    env.tenants["tgt"] = (B, CB)
    sim.tenant(C, "denied.example", CC, "s3cret-value", ())
    env.tenants["denied"] = (C, CC)
    sim.call("PATCH", "/_admin/tenants/%s/apps/%s" % (C, CC), {"application_write": False})
    sim.allow(A, B)
    sim.allow(A, C)
    sim.allow(A, D)
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 8, "seed": 5, "guest_fraction": 0.0,
                                                     "disabled_fraction": 0.0})
    other_link = "extension_%s_customLink" % OTHER.replace("-", "")
    env.add_job("other", "src", "custom", scope="all", link_attribute=other_link)
    env.add_job("own", "src", "tgt", scope="all")
    env.add_job("denied", "src", "denied", scope="all")
    env.write_config()
    link = X.app_ext(CB)

    # ---- a custom attribute of another app is never registered
    seq = sim.last_seq()
    p = env.once("--job", "other")
    reqs = sim.requests(seq)["value"]
    t.ok(p.returncode == 3 and fix_text(OTHER, "customLink") in p.stderr,
         "another app's unregistered attribute: quarantined (exit 3) with the fix naming that app",
         "rc=%d %s" % (p.returncode, p.stderr[-1500:]))
    t.ok(not [r for r in reqs if r["route"] == ROUTE] and not user_writes(reqs, D),
         "no extension POST and no user write for another app's attribute",
         [(r["method"], r["path"]) for r in reqs if r["method"] != "GET"][:5])

    # ---- dry run: says what it would register, registers nothing
    seq = sim.last_seq()
    p = env.once("--job", "own", "--dry-run")
    reqs = sim.requests(seq)["value"]
    t.ok("dry run: would register directory extension %s on application %s" % (link, CB) in p.stderr and
         not ext_posts(reqs, B) and not user_writes(reqs, B) and
         link not in sim.call("GET", "/_admin/tenants/" + B)["extensions"],
         "--dry-run logs the registration it would make and sends no POST", p.stderr[-1500:])
    t.ok(p.returncode == 0 and p.stdout.count("own: CREATE user") == 8,
         "--dry-run plans the 8 creates (no user can carry the unregistered link yet)",
         "rc=%d %s %s" % (p.returncode, p.stdout[-600:], p.stderr[-1200:]))

    # ---- first real run: registers the extension once, then syncs and links
    seq = sim.last_seq()
    p = env.once("--job", "own")
    reqs = sim.requests(seq)["value"]
    posts = ext_posts(reqs, B)
    t.ok(p.returncode == 0, "first --once with the extension missing succeeds",
         "rc=%d %s" % (p.returncode, p.stderr[-2000:]))
    t.ok(len(posts) == 1 and posts[0]["status"] == 201 and
         posts[0]["path"] == "/v1.0/applications(appId='%s')/extensionProperties" % CB,
         "exactly one POST applications(appId=...)/extensionProperties, answered 201",
         [(r["path"], r["status"]) for r in posts])
    lines = [ln for ln in p.stderr.splitlines() if "registered directory extension" in ln]
    t.ok(len(lines) == 1 and link in lines[0] and "on application %s" % CB in lines[0],
         "one info line: registered directory extension ... on application ...", lines or p.stderr[-1500:])
    t.ok(link in sim.call("GET", "/_admin/tenants/" + B)["extensions"],
         "the target tenant now has the extension registered")
    conv, bad = X.check_converged(sim, A, B, link)
    t.ok(conv, "all 8 source users have a linked target user with the mapped attributes", bad[:5])
    t.ok(sum(1 for u in X.users_list(sim.users(B)) if u.get(link)) == 8,
         "8 target users carry the link in the registered extension")

    # ---- second run: nothing to register
    seq = sim.last_seq()
    p = env.once("--job", "own")
    reqs = sim.requests(seq)["value"]
    t.ok(p.returncode == 0 and not ext_posts(reqs, B) and "registered directory extension" not in p.stderr,
         "second --once does not POST the extension again",
         "rc=%d posts=%d" % (p.returncode, len(ext_posts(reqs, B))))

    # ---- permission denied: today's quarantine with the exact fix, no user writes
    seq = sim.last_seq()
    p = env.once("--job", "denied")
    reqs = sim.requests(seq)["value"]
    posts = ext_posts(reqs, C)
    t.ok(p.returncode == 3, "registration refused: --once exits 3 (quarantined)",
         "rc=%d %s" % (p.returncode, p.stderr[-1500:]))
    t.ok(len(posts) == 1 and posts[0]["status"] == 403, "the one registration attempt got 403",
         [(r["path"], r["status"]) for r in posts])
    t.ok(fix_text(CC) in p.stderr and "Error code: Request_BadRequest" in p.stderr,
         "the log gives Microsoft's error code and the exact fix text", p.stderr[-1500:])
    t.ok(not user_writes(reqs, C) and not X.users_list(sim.users(C)),
         "no invitation or user write reached the target", user_writes(reqs, C)[:5])
    pl = [e for e in env.provlog() if e.get("jobId") == "denied"]
    t.ok(any(fix_text(CC) in (e.get("provisioningStatusInfo", {}).get("errorInformation", {})
                              .get("recommendedAction") or "") for e in pl),
         "the provisioning log's recommended action is the fix", pl[-2:])
    c = env.ctl("test-connection", "denied")
    t.ok(c.returncode == 0 and "Note: the link attribute" in c.stdout and
         "POST /v1.0/applications(appId='%s')/extensionProperties" % CC in c.stdout,
         "xtsyncctl test-connection (read-only) notes the unregistered extension and the request that "
         "registers it", (c.stdout + c.stderr)[-1500:])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
