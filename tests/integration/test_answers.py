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
#   - once the refusals stop, the next runs converge;
#   - a record that fails inside a group (a trigger refuses one user's link
#     update) is undone alone (a savepoint), and an op start that fails
#     inside a refill's transaction rolls the whole window back, unsent.
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 120
REFUSED = 5
APPLY = re.compile(r"job j: apply: (\d+) operations, (\d+) store commits")


def sql(db, q):
    c = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        return c.execute(q).fetchall()
    finally:
        c.close()


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
    envelopes = len([r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["route"] == "batch"])
    # a manager whose own create was refused is deferred at dispatch, before
    # any envelope: one commit of its own
    deferred = p.stderr.count("deferred: ReferenceNotYetProvisioned")
    # a create is one op (invitation + PATCH), its manager another: ~2 per
    # user. A commit per envelope answered and one per refill after it (a
    # few more around the phase); with one commit per op it was > ops.
    t.ok(ops >= N and 0 < commits < ops and commits <= 2 * envelopes + deferred + 10,
         "the apply phase commits the store once per envelope, not once per operation "
         "(%d operations, %d envelopes, %d deferred, %d commits)" % (ops, envelopes, deferred, commits),
         (ops, envelopes, deferred, commits, p.stderr[-1500:]))
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
    # their managers may be written now (deferred while a manager's own
    # create was refused); nothing else of theirs is
    rewritten = [(e["action"], [m["displayName"] for m in e.get("modifiedProperties", [])]) for e in again
                 if e["sourceIdentity"]["id"] in made and
                 (e["action"] != "Update" or
                  any(m["displayName"] != "manager" for m in e.get("modifiedProperties", [])))]
    invites = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["route"] == "invitations.post"]
    t.ok("were in flight" not in p.stderr and not rewritten and len(invites) == REFUSED,
         "the next run finds nothing in flight and writes nothing but managers for the %d recorded users" %
         (N - REFUSED), (rewritten[:5], len(invites), p.stderr[-1500:]))

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

    # ---- one record of a group fails (a trigger refuses one user's link
    # update): it alone is undone, the other updates of its envelope stay
    # recorded, and the next run resolves that one op
    db = os.path.join(tmp, "xtsync.db")
    victim = ids[7]
    for k, sid in enumerate(ids):
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, sid), {"jobTitle": "Title %d" % k})
    sql(db, "CREATE TRIGGER test_refuse BEFORE UPDATE OF exported ON link WHEN NEW.source_id = '%s' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" % victim)
    p = env.once()
    sql(db, "DROP TRIGGER test_refuse")
    states = dict(sql(db, "SELECT state, count(*) FROM op WHERE job = 'j' AND state IN (0, 1) GROUP BY state"))
    mine = sql(db, "SELECT state FROM op WHERE job = 'j' AND source_id = '%s' AND state IN (0, 1)" % victim)
    t.ok(p.returncode != 0 and "written but not recorded" in p.stderr and states.get(1, 0) == 1 and
         mine == [(1,)] and states.get(0, 0) == 0,
         "a record refused inside a group: that op alone stays in flight, the other %d are recorded" % (N - 1),
         (p.returncode, states, mine, p.stderr[-1200:]))
    p = env.once()
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    t.ok(p.returncode == 0 and "1 operations were in flight" in p.stderr and not probs,
         "the next run resolves the one op left in flight and converges", (p.returncode, probs[:5], p.stderr[-1200:]))

    # ---- an op start refused inside a refill's transaction: the whole
    # window is rolled back, nothing of it is sent, nothing is left in flight
    for k, sid in enumerate(ids):
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, sid), {"jobTitle": "Again %d" % k})
    sql(db, "CREATE TRIGGER test_refuse BEFORE UPDATE OF state ON op WHEN NEW.state = 1 AND "
            "NEW.source_id = '%s' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END" % victim)
    seq = sim.last_seq()
    p = env.once()
    sql(db, "DROP TRIGGER test_refuse")
    writes = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["route"] == "users.patch"]
    inflight = sql(db, "SELECT count(*) FROM op WHERE job = 'j' AND state = 1")[0][0]
    # the 120 updates fit one window (up to 200 ops): the refused start is in it
    t.ok(p.returncode != 0 and "apply stopped" in p.stderr and inflight == 0 and not writes,
         "a refused op start: its window is not sent and nothing is left in flight (%d of %d PATCHes sent)" %
         (len(writes), N), (p.returncode, inflight, p.stderr[-1200:]))
    p = env.once()
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    t.ok(p.returncode == 0 and "were in flight" not in p.stderr and not probs and
         len(X.users_list(sim.users(tgt_tid))) == N,
         "the next run sends them and converges", (p.returncode, probs[:5], p.stderr[-1200:]))
    ok = True
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
