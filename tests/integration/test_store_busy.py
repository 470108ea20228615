#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The store locked by another process (TAP, against graphsim). An operator's
# `sqlite3 xtsync.db` session or a backup tool can hold the store's write lock
# past the daemon's busy timeout (5 s). What the daemon then says must be
# what happened:
#  - a cycle that cannot write its store fails, and says so ("the state store
#    is locked by another process"), not "completed with failures; retried on
#    later cycles", which sends the operator to a provisioning log with no
#    failure in it; it writes nothing to the target;
#  - `restart JOB` is refused ("refused, nothing changed"), not "try again"
#    or "already running", and it really changed nothing: once the lock is
#    gone the next cycle is incremental, not initial, and applies a change.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

LOCKED = "the state store is locked by another process"

t = X.Tap()
tmp = X.tmpdir("store-busy")
sim = X.Sim(tmp)
ok = False
p = None
db = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9a05e0b5, 4, 47)
    env.add_job("j", "s", "d", scope="all", interval="1h")
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    log = os.path.join(tmp, "live.log")

    p = X.start_daemon(env)
    first = X.wait_cycles(env, "j", 1)
    t.ok(first is not None and first.get("last_result") == "success" and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the first cycle converges", first)

    # ---- a cycle against a locked store fails, and says why
    sim.set_user(src_tid, src[0]["id"], {"jobTitle": "Busy Title"})
    seq = sim.last_seq()
    db = X.lock_store(tmp)
    c = env.ctl("sync", "j")
    j = X.wait_cycles(env, "j", 2, timeout=60) or {}
    text = open(log).read()
    t.ok(c.returncode == 0 and j.get("last_result") == "failed" and LOCKED in (j.get("last_error") or "") and
         "job j: cycle failed: %s" % LOCKED in text and "completed with failures" not in text and
         not X.target_writes(sim, seq, tgt_tid),
         "a cycle against the locked store fails: %s, %r, no target write" %
         (j.get("last_result"), j.get("last_error")), j)

    # ---- restart is refused while the lock is held, and changes nothing
    c = env.ctl("restart", "j")
    db.rollback()
    db.close()
    db = None
    t.ok(c.returncode == 1 and "restart: refused, nothing changed: %s" % LOCKED in c.stderr,
         "restart while the store is locked is refused (exit %d)" % c.returncode, c.stderr)
    c = env.ctl("sync", "j")
    j = X.wait_cycles(env, "j", 3, timeout=60) or {}
    got = X.linked(sim, tgt_tid, link).get(src[0]["id"], {}).get("jobTitle")
    kinds = re.findall(r"job j: cycle \d+ \((\w+)\)", open(log).read())
    t.ok(j.get("last_result") == "success" and got == "Busy Title" and kinds[-1:] == ["incremental"],
         "with the lock gone the next cycle is incremental (the restart did not happen) and applies the change "
         "(%s, %r, cycles %s)" % (j.get("last_result"), got, kinds), kinds)
    ok = t.failed == 0
finally:
    if db is not None:
        db.close()
    X.stop_daemon(p)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
