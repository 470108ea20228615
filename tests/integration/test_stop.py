#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# SIGTERM while a cycle is writing (TAP), against graphsim with Microsoft's
# write limits on: the contract says SIGTERM/SIGINT "finish the in-flight
# request batch, persist state and exit 0 within a few seconds". Writes the
# throttle had not let out yet are not sent; they are planned again and the
# next run makes them without a duplicate user. Every user that was invited
# has its Create line in the provisioning log (a warning when the shutdown
# came between the invitation and its attribute PATCH).
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("stop")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x5709a001, 400, 11, with_manager=False)
    # Microsoft's limits (3,000 writes per 150 s per app and tenant) make
    # the apply phase last: the window holds far more than the budget lets out.
    sim.call("POST", "/_admin/settings", {"throttle": True, "time_scale": 1.0})
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()

    for sig, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        seq = sim.last_seq()
        d = X.start_daemon(env, logname="live-%s.log" % name)
        invited = X.poll(lambda: len([r for r in sim.requests(seq)["value"]
                                      if r["route"] == "invitations.post" and r["status"] == 201]) >= 20,
                         timeout=120, step=0.1)
        t0 = time.monotonic()
        d.send_signal(sig)
        try:
            rc = d.wait(timeout=30)
        except subprocess.TimeoutExpired:
            d.kill()
            rc = d.wait()
        took = time.monotonic() - t0
        with open(os.path.join(tmp, "live-%s.log" % name)) as f:
            log = f.read()
        t.ok(invited and rc == 0 and took < 4.0 and "did not stop" not in log,
             "%s during the apply phase: exit 0 in %.2f s (the in-flight batches finished, nothing more sent)"
             % (name, took), (rc, log[-1500:]))
        tgt = X.users_list(sim.users(tgt_tid))
        after = sim.last_seq()
        time.sleep(1.0)
        t.ok(sim.last_seq() == after, "no request after the exit")
        creates = {e["sourceIdentity"]["id"] for e in env.provlog() if e.get("action") == "Create" and
                   e["provisioningStatusInfo"]["status"] in ("success", "warning")}
        missing = [u["id"] for u in tgt if u.get(link) and u[link].split(":", 1)[1] not in creates]
        t.ok(tgt and not missing and len(tgt) < 400,
             "%s: each of the %d users invited so far has its Create line" % (name, len(tgt)), missing[:5])
        # contract: a status with errorInformation.errorCode and reason
        bare = [e["provisioningStatusInfo"] for e in env.provlog()
                if e["provisioningStatusInfo"]["status"] != "success" and
                not (e["provisioningStatusInfo"].get("errorInformation") or {}).get("errorCode")]
        t.ok(not bare, "%s: every line that is not a success names an errorCode" % name, bare[:3])

    # the next run makes what was not sent, without a duplicate (unthrottled: quicker)
    sim.call("POST", "/_admin/settings", {"throttle": False})
    p = env.once(timeout=600)
    probs = X.sync_problems(sim, src_tid, tgt_tid, link)
    t.ok(p.returncode == 0 and not probs, "the next run converges: 400 users, no duplicate",
         (p.returncode, probs[:5], p.stderr[-1500:]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
