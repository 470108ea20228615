#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A manager reference deferred because the manager has no target user
# (ReferenceNotYetProvisioned) is set in the cycle after the manager gets
# one, not after its escrow back-off (TAP, xtsyncd --once against graphsim).
# Microsoft: "For you to provision the manager attribute, both the user and
# their manager must be in scope" (entra-docs multi-tenant-organizations/
# cross-tenant-synchronization-overview.md, FAQ); the README promises the
# reference "is retried each cycle and set once the manager has a target
# user". While the manager stays out of scope the deferred reference is not
# sent (nor logged) again every cycle: it keeps its back-off.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("ref-due")
sim = X.Sim(tmp)
ok = False
try:
    env, s, d, link = X.source_target(sim, tmp, 0x4ef0d001, 6, 31)
    src = X.users_list(sim.users(s))
    user = next(u for u in src if u.get("manager"))
    boss = user["manager"]
    g = sim.call("POST", "/_admin/tenants/%s/groups" % s, {"displayName": "sync"})["id"]
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (s, g), {"id": user["id"]})
    env.add_job("j", "s", "d", scope="assigned", assigned_groups=g, deletion_threshold=0)
    env.write_config()

    def cycle():
        n0 = len(env.provlog())
        seq = sim.last_seq()
        p = env.once()
        refs = [r for r in sim.requests(seq)["value"] if r["tenant"] == d and r["route"] == "users.manager.put"]
        mine = [(e["action"], e["provisioningStatusInfo"]["status"],
                 (e["provisioningStatusInfo"].get("errorInformation") or {}).get("errorCode"))
                for e in env.provlog()[n0:] if e["sourceIdentity"]["id"] == user["id"]]
        return p, refs, mine

    p, refs, mine = cycle()
    t.ok(p.returncode == 0 and ("Create", "success", None) in mine and
         ("Update", "skipped", "ReferenceNotYetProvisioned") in mine and not refs,
         "the user is created; its manager, out of scope, is deferred (skipped, ReferenceNotYetProvisioned)",
         (p.returncode, mine, p.stderr[-1000:]))
    p, refs, mine = cycle()
    t.ok(p.returncode == 0 and not mine and not refs,
         "while the manager has no target user, the next cycle neither sends nor logs the reference again",
         (mine, len(refs)))

    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (s, g), {"id": boss})
    p, refs, mine = cycle()
    linked = X.linked(sim, d, link)
    t.ok(p.returncode == 0 and boss in linked, "the manager, now assigned, is created",
         (p.returncode, p.stderr[-1000:]))
    p, refs, mine = cycle()
    linked = X.linked(sim, d, link)
    mgr = sim.call("GET", "/_admin/tenants/%s/users/%s" % (d, linked[user["id"]]["id"])).get("manager")
    t.ok(p.returncode == 0 and len(refs) == 1 and mgr == linked[boss]["id"] and ("Update", "success", None) in mine
         and "deferred manager reference(s) can be set now" in p.stderr,
         "the next cycle sets the deferred reference (not after its back-off of minutes to a day)",
         (p.returncode, len(refs), mgr, linked[boss]["id"], mine, p.stderr[-1500:]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
