#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# 410 Gone in the middle of a job's first (full) users/delta round, against
# graphsim (TAP). Graph answers 410 when a delta or paging token can no longer
# be used: "the application must restart with a full synchronization"
# (concepts/delta-query-overview.md). The round had no stored token to drop,
# yet it starts over and the cycle succeeds: every user created once. A
# source that keeps answering 410 fails the cycle after a bounded number of
# restarts instead of reading forever.
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 10


def run_once_invalidating(sim, env, src_tid, seq, times):
    """xtsyncd --once while every users/delta request of the source waits
    3 s: after each page served 200, the source's delta (and paging) tokens
    are invalidated while the next request waits, `times` times. Returns
    (returncode, stderr, users/delta statuses)."""
    sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": "/users/delta", "kind": "stall_before",
                                        "seconds": 3})
    proc = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def served(n):
        return lambda: len([r for r in sim.requests(seq)["value"] if r["route"] == "users.delta" and
                            r["status"] == 200]) >= n or None
    try:
        for i in range(times):
            X.poll(served(i + 1), timeout=120, step=0.02)
            sim.call("POST", "/_admin/tenants/%s/invalidate-delta" % src_tid)
    finally:
        sim.call("DELETE", "/_admin/faults")
    out, err = proc.communicate(timeout=240)
    with open(os.path.join(env.tmp, "daemon.log"), "a") as f:
        f.write("=== once (410 x%d) -> %d\n%s\n" % (times, proc.returncode, err))
    st = [r["status"] for r in sim.requests(seq)["value"] if r["route"] == "users.delta"]
    return proc.returncode, err, st


t = X.Tap()
tmp = X.tmpdir("gone-initial")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0003, N, 37, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    sim.call("POST", "/_admin/settings", {"page_size": 3})

    seq = sim.last_seq()
    rc, err, st = run_once_invalidating(sim, env, src_tid, seq, 1)
    print("# users/delta statuses: %s" % st)
    t.ok(410 in st and st.index(410) > 0 and st[0] == 200 and st[st.index(410) + 1:].count(200) >= 4,
         "the first round got 410 on a later page, then a full read of 4 pages followed %s" % st)
    t.ok(rc == 0 and "full resync" in err and "(initial)" in err,
         "the initial round starts over and the cycle succeeds", err[-1500:])
    reqs = sim.requests(seq)["value"]
    t.ok(len(X.users_list(sim.users(tgt_tid))) == N and not X.sync_problems(sim, src_tid, tgt_tid, link) and
         sum(1 for r in reqs if r["route"] == "invitations.post") == N,
         "every user is created once (%d invitations), no duplicate" % N,
         X.sync_problems(sim, src_tid, tgt_tid, link))

    # ---- a source that keeps answering 410: bounded (two restarts), then the
    # cycle fails, and a failed read writes nothing. A new store makes the
    # next round a first (full) one again.
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(tmp, "xtsync.db" + sfx)):
            os.unlink(os.path.join(tmp, "xtsync.db" + sfx))
    seq = sim.last_seq()
    rc, err, st = run_once_invalidating(sim, env, src_tid, seq, 3)
    print("# users/delta statuses: %s" % st)
    writes = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid and r["method"] != "GET" and
              r["route"] not in ("token", "batch")]
    t.ok(st.count(410) == 3 and rc != 0 and "reading source users failed" in err,
         "three 410s in one cycle: two restarts, then the cycle fails (exit %d) %s" % (rc, st), err[-1500:])
    t.ok(not writes and len(X.users_list(sim.users(tgt_tid))) == N and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the failed read writes nothing to the target", writes)
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
