#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The read batch (docs/internals/store.md, "The read batch") against
# graphsim (TAP): the read phase decides pages in one relaxed transaction
# that stays open between pages and holds SQLite's write lock, so a batch
# left waiting for a slow page is committed after ENG_BATCH_IDLE_MS (1 s):
# another connection (the mail flusher has its own) can write while the
# second users/delta page stalls for 4 s. Then the cycle converges, and a
# kill -9 while a batch is open loses nothing the next cycle cannot redo.
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

DELTA = "/v1.0/users/delta"
t = X.Tap()
tmp = X.tmpdir("engine-batch")
sim = X.Sim(tmp)
ok = False
try:
    env = X.Env(sim, tmp)
    src_tid, src_cid = X.guid(0xb1, 0xba7c0001), X.guid(0xc1, 0xba7c0001)
    tgt_tid, tgt_cid = X.guid(0xb2, 0xba7c0002), X.guid(0xc2, 0xba7c0002)
    env.add_tenant("s", src_tid, src_cid)
    env.add_tenant("d", tgt_tid, tgt_cid)
    sim.allow(src_tid, tgt_tid)
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, {"count": 250, "seed": 3, "guest_fraction": 0.0,
                                                            "disabled_fraction": 0.0, "with_manager": False})
    env.add_job("b", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    db = os.path.join(tmp, "xtsync.db")
    link = X.app_ext(tgt_cid)

    # ---- a write from another connection while the second page stalls
    sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": DELTA, "kind": "stall_before",
                                        "seconds": 4, "skip": 1, "count": 1})
    seq = sim.last_seq()
    d = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = X.poll(lambda: [r for r in sim.requests(seq)["value"] if r["route"] == "users.delta" and
                            r["status"] == 200], timeout=60, step=0.05)
    time.sleep(0.3)   # page 1 decided, its batch paused, page 2 requested and stalling
    waited, err = None, None
    try:
        c = sqlite3.connect(db, timeout=2.5, isolation_level=None)
        t0 = time.monotonic()
        c.execute("BEGIN IMMEDIATE")
        waited = time.monotonic() - t0
        c.execute("ROLLBACK")
        c.close()
    except sqlite3.Error as e:
        err = str(e)
    stalled = [r for r in sim.requests(seq)["value"] if r["route"] == "users.delta"]
    t.ok(first and err is None and waited is not None and waited < 2.5 and len(stalled) == 1,
         "another connection gets the write lock while a users page stalls (the paused batch was committed)",
         (err, waited, len(stalled)))
    rc = d.wait(timeout=120)
    stderr = d.stderr.read()
    sim.call("DELETE", "/_admin/faults")
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    t.ok(rc == 0 and not probs, "the cycle converges: 250 users in the target", (rc, probs[:5], stderr[-1500:]))

    # ---- kill -9 with a batch open, then a normal run converges
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, {"count": 150, "seed": 4, "prefix": "k",
                                                            "guest_fraction": 0.0, "disabled_fraction": 0.0,
                                                            "with_manager": False})
    sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": DELTA, "kind": "stall_before",
                                        "seconds": 8, "skip": 1, "count": 1})
    seq = sim.last_seq()
    d = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    X.poll(lambda: len([r for r in sim.requests(seq)["value"] if r["route"] == "users.delta" and
                        r["status"] == 200]) >= 1, timeout=60, step=0.05)
    time.sleep(0.2)   # the incremental round's page 1 (100 new users) in the open batch; page 2 stalls
    d.send_signal(signal.SIGKILL)
    d.wait(timeout=30)
    sim.call("DELETE", "/_admin/faults")
    t.ok(X.store_integrity(db) == "ok", "the store is sound after a kill -9 with the batch open")
    p = env.once()
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    tgt = X.users_list(sim.users(tgt_tid))
    t.ok(p.returncode == 0 and not probs and len(tgt) == 400,
         "the next run converges: 400 users, none twice", (p.returncode, probs[:5], len(tgt), p.stderr[-1500:]))
    ok = True
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
