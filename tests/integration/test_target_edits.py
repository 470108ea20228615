#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Edits made in the target tenant to a synced user (TAP, xtsyncd against
# graphsim). Microsoft's FAQ (entra-docs multi-tenant-organizations/
# cross-tenant-synchronization-faq.yml):
#   "If you don't make any changes to the synced user in the source tenant,
#    then user attribute changes that you made in the target tenant persist.
#    If you make changes to the user in the source tenant, then during the
#    next synchronization cycle, the user in the target tenant is updated to
#    match the user in the source tenant."
#   "If a change is detected for the user in the source tenant, cross-tenant
#    synchronization reenables that user who's blocked from sign-in in the
#    target tenant."
# So an unchanged user is never written (not even in a full resync), and a
# user changed in the source gets all its mapped values in its one PATCH.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("target-edits")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e0d0001, 6, 31, with_manager=False)
    src = X.users_list(sim.users(src_tid))
    u = [x["id"] for x in src]
    # a user with a department, so the edit below has something to be undone by
    a = next(x for x in src if x.get("department"))
    b = next(x["id"] for x in src if x["id"] != a["id"])

    def configure(**kw):
        env.jobs = []
        env.add_job("j", "s", "d", scope="all", deletion_threshold=0, **kw)
        env.write_config()

    def patches(seq):
        return [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["method"] == "PATCH"]

    def writes(seq):
        return [(r["method"], r["route"]) for r in sim.requests(seq)["value"]
                if r["tenant"] == tgt_tid and r["method"] in ("POST", "PATCH", "PUT", "DELETE")
                and r["route"] not in ("token", "batch")]

    configure()
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and len(lk) == len(u), "first cycle creates the %d users" % len(u),
         (p.returncode, p.stderr[-1500:]))
    ta, tb = lk[a["id"]]["id"], lk[b]["id"]

    # the target's administrator blocks a's sign-in and edits a's department and b's jobTitle
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (tgt_tid, ta),
             {"accountEnabled": False, "department": "Edited in the target"})
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (tgt_tid, tb), {"jobTitle": "Edited in the target"})
    seq = sim.last_seq()
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and not writes(seq), "no source change: nothing is written", writes(seq))
    t.ok(lk[a["id"]].get("accountEnabled") is False and lk[a["id"]].get("department") == "Edited in the target",
         "the block and the edit made in the target persist", lk[a["id"]])

    # a full resync (assigned_users changed) reads every user again: still unchanged, still nothing written
    configure(assigned_users=u[0])
    seq = sim.last_seq()
    p = env.once()
    t.ok(p.returncode == 0 and "full resync" in p.stderr and not writes(seq),
         "a full resync of unchanged users writes nothing", (writes(seq), p.stderr[-1200:]))
    t.ok(X.linked(sim, tgt_tid, link)[a["id"]].get("accountEnabled") is False, "a stays blocked after the resync")

    # a changes in the source: its target copy is brought back in line with the source
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, a["id"]), {"jobTitle": "Changed in the source"})
    seq = sim.last_seq()
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    pt = patches(seq)
    t.ok(p.returncode == 0 and len(pt) == 1 and pt[0]["path"].endswith(ta),
         "one PATCH, of a's target user", [(r["route"], r["path"]) for r in pt])
    t.ok(lk[a["id"]].get("jobTitle") == "Changed in the source", "the source's change reached the target")
    t.ok(lk[a["id"]].get("accountEnabled") is True, "a, blocked in the target, is enabled again (FAQ)",
         lk[a["id"]])
    t.ok(lk[a["id"]].get("department") == a["department"], "a's department is the source's again",
         (lk[a["id"]].get("department"), a["department"]))
    t.ok(lk[b].get("jobTitle") == "Edited in the target", "b, unchanged in the source, keeps the target's edit")
    upd = [e for e in env.provlog() if e.get("action") == "Update" and e["sourceIdentity"]["id"] == a["id"]]
    mp = {m["displayName"]: m for m in (upd[-1].get("modifiedProperties", []) if upd else [])}
    t.ok("jobTitle" in mp and mp["jobTitle"]["newValue"] == "Changed in the source" and
         mp["jobTitle"]["oldValue"] != mp["jobTitle"]["newValue"] and "accountEnabled" in mp,
         "the Update line shows jobTitle's change and the values written with it", upd[-1:])

    seq = sim.last_seq()
    p = env.once()
    t.ok(p.returncode == 0 and not writes(seq), "the next cycle writes nothing", writes(seq))

    # a's department removed in the source: not written, the target keeps it.
    # "The Microsoft Entra provisioning service doesn't support provisioning
    # null values" (entra-docs app-provisioning/customize-application-
    # attributes.md); clearing is an opt-in preview of inbound HR and API
    # provisioning only (clear-attribute-values.md).
    kept = X.linked(sim, tgt_tid, link)[a["id"]].get("department")
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, a["id"]),
             {"department": None, "jobTitle": "Department removed"})
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    pt = patches(seq)
    mp = [{m["displayName"]: m.get("newValue") for m in e.get("modifiedProperties", [])}
          for e in env.provlog()[pl0:] if e.get("action") == "Update" and e["sourceIdentity"]["id"] == a["id"]]
    t.ok(p.returncode == 0 and len(pt) == 1 and len(mp) == 1 and "department" not in mp[0] and
         mp[0].get("jobTitle") == "Department removed",
         "a value removed in the source is not written: one PATCH, its Update line has jobTitle, no department",
         (len(pt), mp))
    t.ok(kept and lk[a["id"]].get("department") == kept and lk[a["id"]].get("jobTitle") == "Department removed",
         "the target keeps the department it had (%r)" % kept, lk[a["id"]])
    seq = sim.last_seq()
    p = env.once()
    t.ok(p.returncode == 0 and not writes(seq), "the cycle after that writes nothing (no retry of the removal)",
         writes(seq))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
