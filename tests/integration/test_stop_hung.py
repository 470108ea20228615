#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# SIGTERM while a $batch of creates is on the wire and Graph does not answer
# (TAP). The contract: SIGTERM "finish[es] the in-flight request batch,
# persist[s] state and exit[s] 0 within a few seconds". A batch that never
# answers cannot be finished: after the grace (5 s) its writes are abandoned
# the way a crash abandons them (their ops stay in flight in the store) and
# the daemon exits 0. The emulator carries the batch out after its stall, as
# Graph may after the client hung up; the next run resolves those ops by
# matching, so nobody is invited twice.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

STALL = 12.0

t = X.Tap()
tmp = X.tmpdir("stophung")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x5709b001, 30, 12, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    # The target's first $batch (the first creates) stalls before Graph reads it.
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "POST", "route": r"/\$batch$",
                                        "kind": "stall_before", "seconds": STALL, "count": 1})
    seq = sim.last_seq()
    d = X.start_daemon(env, logname="live.log")
    hit = X.poll(lambda: any(f["hits"] > 0 for f in sim.call("GET", "/_admin/faults")["value"]),
                 timeout=60, step=0.05)
    time.sleep(0.3)   # the batch is on the wire, its answer held back
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    try:
        rc = d.wait(timeout=30)
    except subprocess.TimeoutExpired:
        d.kill()
        rc = d.wait()
    took = time.monotonic() - t0
    with open(os.path.join(tmp, "live.log")) as f:
        log = f.read()
    t.ok(hit and rc == 0 and took < 7.5,
         "SIGTERM with a $batch unanswered: exit 0 in %.2f s (grace 5 s)" % took, (hit, rc, log[-2000:]))
    t.ok("still unanswered" in log and "did not stop" not in log,
         "the log says the unanswered writes were abandoned and resolved by the next cycle", log[-2000:])
    after = sim.last_seq()
    time.sleep(1.0)
    t.ok(sim.last_seq() == after, "no request after the exit")

    # The emulator carries the stalled batch out once its stall is over.
    time.sleep(max(0.0, STALL - (time.monotonic() - t0)) + 1.0)
    p = env.once(timeout=300)
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    t.ok(p.returncode == 0 and not probs, "the next run converges: 30 users, nobody invited twice",
         (p.returncode, probs[:5], p.stderr[-2000:]))
    inv = [r for r in sim.requests(seq)["value"] if r["route"] == "invitations.post" and r["status"] == 201]
    t.ok(len(inv) == 30, "30 invitations in all (%d), none repeated for the abandoned batch" % len(inv))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
