#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# An assigned group deleted in the source (TAP), against graphsim: groups/delta
# returns it as {"id", "@removed": {"reason": "deleted"}} ("Removed instances are
# represented by their id and an @removed object", concepts/delta-query-overview.md).
# Its members leave scope — disabled in the target — unless another assigned
# group still holds them.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("groups")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x6e0e0001, 10, 9, with_manager=False)
    users = [u["id"] for u in X.users_list(sim.users(src_tid))]
    g1 = sim.call("POST", "/_admin/tenants/%s/groups" % src_tid, {"displayName": "one"})["id"]
    g2 = sim.call("POST", "/_admin/tenants/%s/groups" % src_tid, {"displayName": "two"})["id"]
    for uid in users[0:5]:
        sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (src_tid, g1), {"id": uid})
    for uid in users[3:7]:
        sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (src_tid, g2), {"id": uid})
    env.add_job("a", "s", "d", scope="assigned", assigned_groups="%s,%s" % (g1, g2),
                deletion_threshold=0, deprovision="disable")
    env.write_config()

    def targets():
        return {u.get(link, "").split(":", 1)[-1]: u for u in X.users_list(sim.users(tgt_tid))}

    p = env.once()
    tg = targets()
    t.ok(p.returncode == 0 and sorted(tg) == sorted(users[0:7]), "the members of both groups are created (7)",
         (p.returncode, len(tg), p.stderr[-1200:]))
    sim.call("DELETE", "/_admin/tenants/%s/groups/%s" % (src_tid, g1))
    p = env.once()
    tg = targets()
    off = [uid for uid in users[0:7] if tg.get(uid, {}).get("accountEnabled") is False]
    t.ok(p.returncode == 0 and sorted(off) == sorted(users[0:3]),
         "group one deleted: its members 0-2 are disabled, 3-4 stay (still in group two), 5-6 untouched",
         (p.returncode, [users.index(u) for u in off], p.stderr[-1500:]))
    t.ok("was deleted in the source" in p.stderr, "the log says the assigned group was deleted", p.stderr[-1500:])
    p = env.once()
    tg = targets()
    t.ok(p.returncode == 0 and [uid for uid in users[0:7] if tg.get(uid, {}).get("accountEnabled") is False]
         == users[0:3], "the next cycle changes nothing more", p.stderr[-800:])
    # an unassigned user changed in the source: one Skip line saying why
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, users[8]), {"jobTitle": "Unassigned"})
    n0 = len(env.provlog())
    p = env.once()
    sk = [e for e in env.provlog()[n0:] if e.get("action") == "Skip" and e["sourceIdentity"]["id"] == users[8]]
    t.ok(p.returncode == 0 and len(sk) == 1 and sk[0]["provisioningStatusInfo"]["status"] == "skipped" and
         sk[0]["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode") == "NotEffectivelyEntitled"
         and "not assigned" in sk[0]["provisioningStatusInfo"]["errorInformation"].get("reason", ""),
         "an unassigned user's change: Skip, skipped, errorCode NotEffectivelyEntitled and the reason", sk)
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
