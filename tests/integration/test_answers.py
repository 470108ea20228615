#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# One store transaction per $batch answer (TAP), against graphsim. The
# outcomes of the ~20 operations one envelope answers are recorded in one
# commit (docs/internals/engine.md, "Groups of answers"), not one commit, and
# so one fsync, each. What is checked:
#   - the initial cycle's apply phase commits the store far fewer times than
#     it has operations (the daemon's debug line counts SQLite's commits);
#   - five invitations refused inside envelopes fail alone: the other
#     operations of their envelopes are recorded (the next run finds nothing
#     in flight and writes nothing for them), and the provisioning log has
#     exactly one line per user, held until the commit and none lost;
#   - once the refusals stop, the next runs converge.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 120
REFUSED = 5
APPLY = re.compile(r"job j: apply: (\d+) operations, (\d+) store commits")


def apply_line(stderr):
    m = APPLY.findall(stderr)
    return (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)


t = X.Tap()
tmp = X.tmpdir("answers")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0011, N, 53, with_manager=True)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0, escrow_retry_base="1s")
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    ids = sorted(u["id"] for u in src)

    # ---- initial cycle: invitations 31 to 35 refused (400) inside their envelopes
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": "/invitations$", "method": "POST",
                                        "kind": "status", "status": 400, "skip": 30, "count": REFUSED})
    seq = sim.last_seq()
    p = env.once()
    refused = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["route"] == "fault"]
    t.ok(len(refused) == REFUSED and all(r.get("batch_parent") is not None for r in refused),
         "the five refused invitations were $batch sub-requests",
         [(r["route"], r.get("batch_parent")) for r in refused])
    ops, commits = apply_line(p.stderr)
    # a create is one op (invitation + PATCH), its manager another: ~2 per user
    t.ok(ops >= N and 0 < commits and commits * 4 <= ops,
         "the apply phase commits the store once per envelope, not once per operation "
         "(%d operations, %d commits)" % (ops, commits),
         (ops, commits, p.stderr[-1500:]))
    pl = env.provlog()
    made = [e["sourceIdentity"]["id"] for e in pl
            if e.get("action") == "Create" and e["provisioningStatusInfo"]["status"] == "success"]
    failed = [e["sourceIdentity"]["id"] for e in pl
              if e.get("action") == "Create" and e["provisioningStatusInfo"]["status"] == "failure"]
    t.ok(len(made) == N - REFUSED and len(set(made)) == len(made) and len(failed) == REFUSED and
         sorted(made + failed) == ids,
         "one provisioning-log line per user: %d created, %d failed, none lost or twice" % (N - REFUSED, REFUSED),
         (len(made), len(set(made)), len(failed)))

    # ---- the next run, once the refused five are due again: the envelopes'
    # other outcomes were recorded
    sim.call("DELETE", "/_admin/faults")
    time.sleep(4)
    before = len(pl)
    seq = sim.last_seq()
    p = env.once()
    again = env.provlog()[before:]
    rewritten = [e["sourceIdentity"]["id"] for e in again
                 if e["provisioningStatusInfo"]["status"] == "success" and e["sourceIdentity"]["id"] in made]
    writes = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["method"] != "GET" and
              r["route"] not in ("batch", "token")]
    t.ok("were in flight" not in p.stderr and not rewritten and len(writes) <= 3 * REFUSED,
         "the next run finds nothing in flight and writes nothing for the %d recorded users" % (N - REFUSED),
         (len(rewritten), len(writes), p.stderr[-1500:]))

    # ---- converges: the refused five were created in that run (or, on a slow
    # machine whose back-off was not over yet, in one of the next)
    probs = None
    for _ in range(3):
        probs = X.sync_problems(sim, src_tid, tgt_tid, link)
        if not probs:
            break
        time.sleep(4)
        env.once()
    tgt = X.users_list(sim.users(tgt_tid))
    t.ok(len(tgt) == N and not probs, "the target holds each of the %d users once" % N,
         (len(tgt), (probs or [])[:5]))
    ok = True
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
