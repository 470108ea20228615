#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# SIGTERM while `xtsyncctl preview` runs (TAP, xtsyncd against graphsim). A
# preview works on a copy of the store in a temp dir (the source users'
# attributes); a stop in the middle of it must not leave that copy behind
# (outside systemd's PrivateTmp= nothing else removes it), and the daemon
# still exits 0 at once.
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("preview-stop")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7d2b0001, 6, 9, with_manager=False)
    env.add_job("j", "s", "d", scope="all")
    env.write_config()
    p = env.once()
    t.ok(p.returncode == 0, "initial cycle", p.stderr[-1000:])
    tdir = os.path.join(tmp, "tmpdir")
    os.makedirs(tdir)
    d = X.start_daemon(env, extra_env={"TMPDIR": tdir})
    try:
        # the preview's read of the source waits 10 s in the emulator
        sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": "/v1.0/users/delta", "kind": "stall_before",
                                            "seconds": 10, "count": 1})
        pv = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncctl"), "-c", env.conf, "preview", "j"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the copy is made, then the preview reads the source (held 10 s)
        started = X.poll(lambda: os.listdir(tdir), timeout=30, step=0.05)
        time.sleep(1.0)
        copies = os.listdir(tdir)
        still = pv.poll() is None
        t0 = time.time()
    finally:
        rc = X.stop_daemon(d)
    took = time.time() - t0
    pv.communicate(timeout=30)
    left = os.listdir(tdir)
    t.ok(started and copies and still and rc == 0 and took < 5,
         "SIGTERM during a preview (its store copy %s in TMPDIR): exit 0 after %.1f s" % (copies, took), (rc, took))
    t.ok(left == [], "the preview's copy of the store is removed", left)
    sim.call("DELETE", "/_admin/faults")
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
