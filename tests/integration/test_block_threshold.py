#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Blocking sign-in in the source counts against the deletion threshold (TAP,
# xtsyncd against graphsim). entra-docs app-provisioning/accidental-deletions.md:
#   "This feature ensures that users aren't disabled or deleted in the target
#    tenant unexpectedly." ... "In addition to deletions, the same
#    functionality also works for disables."  Its "Common deprovisioning
#    scenarios to test" include "Block sign in for a user".
# how-provisioning-works.md: a user "disabled ... in the source system, the
# service disables the user in the target system via an update".
# So a source that blocks more users than deletion_threshold in one cycle has
# those updates held (StagedDelete lines, exit 3) until allow-deletions; a
# few blocks go through at once; a block undone in the source drops its hold.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("block-threshold")
sim = X.Sim(tmp)
ok = False
p = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x0b10c4ed, 10, 61, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=3)
    env.write_config()
    u = [x["id"] for x in X.users_list(sim.users(src_tid))]

    def block(ids, enabled=False, extra=None):
        for i in ids:
            body = {"accountEnabled": enabled}
            body.update(extra or {})
            sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, i), body)

    def enabled(ids):
        lk = X.linked(sim, tgt_tid, link)
        return [lk[i].get("accountEnabled") for i in ids]

    def target_writes(seq):
        return [(r["method"], r["path"]) for r in sim.requests(seq)["value"]
                if r["tenant"] == tgt_tid and r["method"] in ("POST", "PATCH", "PUT", "DELETE")
                and r["route"] not in ("token", "batch")]

    o = env.once()
    t.ok(o.returncode == 0 and len(X.linked(sim, tgt_tid, link)) == len(u) and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the first cycle creates the %d users" % len(u), o.stderr[-1500:])

    # ---- two blocks (under the threshold of 3) go through at once
    block(u[0:2])
    o = env.once()
    t.ok(o.returncode == 0 and enabled(u[0:2]) == [False, False],
         "2 sign-in blocks (threshold 3): applied at once (exit %d, target %s)" % (o.returncode, enabled(u[0:2])),
         o.stderr[-1500:])

    # ---- five blocks in one cycle are held: nothing disabled, one StagedDelete line each
    held = u[2:7]
    block(held, extra={"jobTitle": "Blocked"})
    seq = sim.last_seq()
    before = len(env.provlog())
    o = env.once()
    pl = env.provlog()[before:]
    staged = [e for e in pl if e.get("action") == "StagedDelete"]
    t.ok(o.returncode == 3 and "exceed the deletion threshold" in o.stderr,
         "5 sign-in blocks (threshold 3): held, --once exits 3 (got %d)" % o.returncode, o.stderr[-1500:])
    t.ok(enabled(held) == [True] * 5 and not target_writes(seq),
         "nothing is written to the 5 while held", (enabled(held), target_writes(seq)))
    t.ok(sorted(e["sourceIdentity"]["id"] for e in staged) == sorted(held) and
         all(e["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode") ==
             "DeletionThresholdExceeded" for e in staged),
         "one StagedDelete line with DeletionThresholdExceeded per held block",
         [(e.get("action"), e["sourceIdentity"]["id"]) for e in pl])
    st = X.job_row(tmp, "j")
    t.ok(st["state_reason"] == "DeletionThresholdExceeded", "the job is held (store state %s, %s)"
         % (st["state"], st["state_reason"]))

    # ---- the source undoes three of the blocks: the hold drops them; two remain held
    block(held[0:3], enabled=True)
    seq = sim.last_seq()
    o = env.once()
    t.ok(o.returncode == 3 and "2 deletions/disables still held" in o.stderr and enabled(held) == [True] * 5,
         "3 blocks undone in the source: 2 still held (exit %d, target %s)" % (o.returncode, enabled(held)),
         o.stderr[-1500:])

    # ---- allow-deletions applies the two still held
    p = X.start_daemon(env)
    X.wait_cycles(env, "j", 1, timeout=60)
    c = env.ctl("allow-deletions", "j")
    X.poll(lambda: enabled(held[3:5]) == [False, False], timeout=60)
    lk = X.linked(sim, tgt_tid, link)
    t.ok(c.returncode == 0 and "2 held deletions released" in c.stdout and enabled(held[3:5]) == [False, False]
         and enabled(held[0:3]) == [True] * 3 and all(lk[i].get("jobTitle") == "Blocked" for i in held),
         "allow-deletions releases the 2 blocks and a cycle applies them with the rest of their update "
         "(%s, target %s)" % (c.stdout.strip(), enabled(held)), (c.stdout, c.stderr))
    ok = t.failed == 0
finally:
    X.stop_daemon(p)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
