#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Status while the job is busy (TAP, the daemon against graphsim):
# (a) during an incremental cycle, `status` (and the metrics gauge) shows the
#     job's users in scope, not the few the running round has read so far (it
#     showed 0 for the whole cycle);
# (b) a cycle due while `xtsyncctl provision` holds the job starts a moment
#     later: it is not a failed cycle ("could not start: try again" was
#     counted in failed_cycles and last_result);
# (c) a preview taken while the live cycle has writes in flight leaves them
#     alone: they are not a crash's leftovers to resolve (it warned "in
#     flight when the daemon stopped" and read the target for them).
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 8

t = X.Tap()
tmp = X.tmpdir("busy-status")
sim = X.Sim(tmp)
d = None
ok = False
try:
    env, s, tg, link = X.source_target(sim, tmp, 0x40b5e001, N, 5)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    d = X.start_daemon(env)
    first = X.wait_cycles(env, "j", 1)
    t.ok(first is not None and first["counts"]["in_scope"] == N, "first cycle: %d users in scope" % N,
         first and first.get("counts"))

    # (a) an incremental cycle held 3 s in its read
    fid = sim.call("POST", "/_admin/faults", {"tenant": s, "route": "users/delta", "kind": "stall_before",
                                              "seconds": 3, "count": 1})["id"]
    env.ctl("sync", "j")
    running = X.poll(lambda: (lambda j: j if j and j.get("state") == "running" else None)(X.job_status(env, "j")),
                     timeout=10, step=0.1)
    X.wait_cycles(env, "j", 2)
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    t.ok(running is not None and running["counts"]["in_scope"] == N,
         "during an incremental cycle status shows the %d users in scope" % N, running and running.get("counts"))

    # (b) provisions that hold the job while its 1 s schedule fires
    env.jobs[0][3]["interval"] = "1s"
    env.write_config()
    env.ctl("reload")
    uid = X.users_list(sim.users(s))[0]["id"]
    fid = sim.call("POST", "/_admin/faults", {"tenant": s, "route": r"/v1\.0/users/%s$" % uid, "kind": "stall_before",
                                              "seconds": 1.5})["id"]
    before = X.job_status(env, "j")
    rcs = [env.ctl("provision", "j", uid).returncode for _ in range(3)]
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    X.poll(lambda: (X.job_status(env, "j") or {}).get("cycles", 0) >= before["cycles"] + 2, timeout=30)
    after = X.job_status(env, "j")
    with open(os.path.join(tmp, "live.log")) as f:
        log = f.read()
    t.ok(rcs == [0, 0, 0] and after["failed_cycles"] == before["failed_cycles"] and
         after["cycles"] >= before["cycles"] + 2 and "could not start" not in log and
         after.get("last_result") == "success",
         "cycles due during provision on demand start a moment later; none counted failed",
         (rcs, before["failed_cycles"], after["failed_cycles"], after["cycles"], after.get("last_result")))

    # (c) a preview while the live cycle has writes in flight (the target's
    # $batch held 4 s): those ops are the live cycle's, not a crash's
    env.jobs[0][3]["interval"] = "1h"
    env.write_config()
    env.ctl("reload")
    X.poll(lambda: (X.job_status(env, "j") or {}).get("state") != "running", timeout=30)
    for i in range(3):
        sim.call("POST", "/_admin/tenants/%s/users" % s, {
            "displayName": "New %d" % i, "userPrincipalName": "new%d@s.example" % i, "mail": "new%d@s.example" % i,
            "mailNickname": "new%d" % i, "accountEnabled": True, "userType": "Member"})
    fid = sim.call("POST", "/_admin/faults", {"tenant": tg, "route": r"\$batch", "kind": "stall_before",
                                              "seconds": 6, "count": 1})["id"]
    with open(os.path.join(tmp, "live.log")) as f:
        mark = len(f.read())
    env.ctl("sync", "j")

    def in_flight():
        with open(os.path.join(tmp, "live.log")) as f:
            return "apply:" not in f.read()[mark:] and X.job_status(env, "j").get("state") == "running"
    sent = X.poll(in_flight, timeout=20, step=0.1)
    time.sleep(2)  # the read is done, the creates' envelope is held by the target
    pv = env.ctl("preview", "j")
    X.wait_cycles(env, "j", after["cycles"] + 1, timeout=60)
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    with open(os.path.join(tmp, "live.log")) as f:
        tail = f.read()[mark:]
    t.ok(sent and pv.returncode == 0 and "in flight when the daemon stopped" not in tail and
         not X.sync_problems(sim, s, tg, link),
         "a preview beside a live cycle's writes in flight does not take them for a crash's leftovers",
         (bool(sent), pv.returncode, pv.stdout[-600:], [ln for ln in tail.splitlines() if "in flight" in ln]))
    ok = t.failed == 0
finally:
    if d is not None:
        X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
