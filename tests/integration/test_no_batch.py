#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A target endpoint that does not take JSON $batch (TAP), against graphsim
# with a status fault on the target's POST /v1.0/$batch. Graph has JSON
# batching (concepts/json-batching.md), but a proxy or an emulator in front of
# it may answer the envelope 404 (unknown path) or 400 ("Resource not found
# for the segment", Graph's own answer to a path it does not know). Nothing in
# such an envelope ran, so the writer sends the same operations one request
# each: the initial cycle creates every user once, with its manager, and a
# later cycle updates only what changed. One warning says so, not one per
# envelope.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 12
WARN = "does not take JSON batches"


def by_route(sim, seq, tid):
    """Counts by route of tid's requests after seq, and how many of them
    came inside a $batch envelope."""
    by, inside = {}, 0
    for r in sim.requests(seq)["value"]:
        if r["tenant"] != tid:
            continue
        by[r["route"]] = by.get(r["route"], 0) + 1
        if r.get("batch_parent") is not None:
            inside += 1
    return by, inside


t = X.Tap()
tmp = X.tmpdir("no-batch")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0005, N, 41)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    nmgr = sum(1 for u in src if u.get("manager"))

    # ---- initial cycle: every envelope answered 404
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "method": "POST",
                                        "kind": "status", "status": 404})
    seq = sim.last_seq()
    p = env.once()
    by, inside = by_route(sim, seq, tgt_tid)
    print("# target requests: %s" % by)
    t.ok(p.returncode == 0, "the initial cycle succeeds without $batch (exit %d)" % p.returncode, p.stderr[-1500:])
    t.ok(p.stderr.count(WARN) == 1, "one warning names the refused $batch (%d)" % p.stderr.count(WARN),
         p.stderr[-1500:])
    t.ok(not X.sync_problems(sim, src_tid, tgt_tid, link) and by.get("invitations.post") == N and
         inside == 0, "every user created once, by %d invitations sent on their own" % by.get("invitations.post", 0),
         X.sync_problems(sim, src_tid, tgt_tid, link))
    t.ok(nmgr >= N - 2 and not X.manager_problems(sim, src_tid, tgt_tid, link) and
         by.get("users.manager.put") == nmgr,
         "each of the %d managers set by one PUT manager/$ref" % nmgr, X.manager_problems(sim, src_tid, tgt_tid, link))
    t.ok(by.get("users.patch") == N, "one PATCH per created user (%s)" % by.get("users.patch"))

    # ---- a later cycle, envelopes now answered 400 as Graph answers an
    # unknown segment: three changed users, three PATCHes, nothing else
    sim.call("DELETE", "/_admin/faults")
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "method": "POST",
                                        "kind": "status", "status": 400})
    for u in src[:3]:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]), {"jobTitle": "Buyer " + u["id"][:4]})
    seq = sim.last_seq()
    p = env.once()
    by, inside = by_route(sim, seq, tgt_tid)
    print("# target requests: %s" % by)
    writes = {k: v for k, v in by.items() if k not in ("token", "fault") and not k.endswith(".get") and
              k not in ("users.list", "batch")}
    t.ok(p.returncode == 0 and not X.sync_problems(sim, src_tid, tgt_tid, link) and
         writes == {"users.patch": 3} and inside == 0,
         "the changed users are updated by 3 PATCHes on their own %s" % writes,
         p.stderr[-1500:] + str(X.sync_problems(sim, src_tid, tgt_tid, link)))

    # ---- one envelope refused 400 ("If the batch request itself is
    # malformed, the status code is 400", json-batching.md): its operations go
    # alone, and batching goes on for the others (a later process: batching
    # is on again)
    sim.call("DELETE", "/_admin/faults")
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "method": "POST",
                                        "kind": "status", "status": 400, "count": 1})
    for u in src:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]), {"department": "Dept " + u["id"][:4]})
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, {"count": 15, "seed": 42, "prefix": "more",
                                                          "guest_fraction": 0.0, "disabled_fraction": 0.0})
    seq = sim.last_seq()
    p = env.once()
    by, inside = by_route(sim, seq, tgt_tid)
    print("# target requests: %s" % by)
    alone = sum(1 for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r.get("batch_parent") is None and
                r["method"] != "GET" and r["route"] not in ("token", "fault", "batch"))
    t.ok(p.returncode == 0 and not X.sync_problems(sim, src_tid, tgt_tid, link) and
         p.stderr.count("the envelope was refused") == 1 and WARN not in p.stderr and
         by.get("fault", 0) == 1 and by.get("batch", 0) >= 1 and inside > 0 and alone >= 1,
         "one envelope answered 400: its operations go alone (%d), the other envelopes are still batched "
         "(%d $batch requests, %d operations inside)" % (alone, by.get("batch", 0), inside),
         p.stderr[-1500:])
    ok = t.failed == 0
finally:
    sim.call("DELETE", "/_admin/faults")
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
