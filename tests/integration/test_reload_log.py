#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The provisioning log across SIGHUP, and --once stopped by a signal, against
# graphsim (TAP). The contract: the log is "rotated with SIGHUP"; an invalid
# new config is refused and the old one keeps running; SIGTERM/SIGINT finish
# the in-flight batch, persist state and exit 0.
#  - a SIGHUP while the config has an error still reopens the log (logrotate
#    moved it; its postrotate cannot know about the typo);
#  - a reload that changes provisioning_log writes the new file from then on;
#  - `xtsyncd --once` interrupted by SIGINT exits 0, and the next run
#    finishes the work without a duplicate.
# Also: `status` progress of a running cycle counts all planned ops.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 4


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [ln for ln in f if ln.strip()]


def wait_log(path, text, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and text in open(path).read():
            return True
        time.sleep(0.1)
    return False


def change_and_sync(sim, env, src_tid, uid, title, n):
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, uid), {"jobTitle": title})
    c = env.ctl("sync", "j")
    return c.returncode == 0 and X.wait_cycles(env, "j", n) is not None


t = X.Tap()
tmp = X.tmpdir("reload-log")
sim = X.Sim(tmp)
d = None
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0004, N, 41, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    good = open(env.conf).read()
    log = os.path.join(tmp, "provisioning.log")
    live = os.path.join(tmp, "live.log")
    src = X.users_list(sim.users(src_tid))
    d = X.start_daemon(env)
    t.ok(X.wait_cycles(env, "j", 1) is not None and len(lines(log)) >= N, "first cycle logged its creates",
         len(lines(log)))

    # ---- logrotate moves the log, the config has a typo, SIGHUP
    os.rename(log, log + ".1")
    with open(env.conf, "a") as f:
        f.write("bogus_key = 1\n")
    d.send_signal(signal.SIGHUP)
    t.ok(wait_log(live, "configuration has errors, not reloading"), "the broken config is refused")
    t.ok(change_and_sync(sim, env, src_tid, src[0]["id"], "After broken HUP", 2),
         "a change is synced with the old config")
    new = [ln for ln in lines(log) if "After broken HUP" in ln]
    old = [ln for ln in lines(log + ".1") if "After broken HUP" in ln]
    t.ok(len(new) == 1 and not old, "the Update line goes to a new provisioning.log, not the rotated file",
         (len(new), len(old)))

    # ---- a reload that moves the provisioning log
    moved = os.path.join(tmp, "moved.log")
    with open(env.conf, "w") as f:
        f.write(good.replace("provisioning_log = %s" % log, "provisioning_log = %s" % moved))
    c = env.ctl("reload")
    t.ok(c.returncode == 0 and wait_log(live, "provisioning log: now %s" % moved),
         "reload with provisioning_log changed: the daemon says where it writes now", c.stdout + c.stderr)
    t.ok(change_and_sync(sim, env, src_tid, src[1]["id"], "After moving the log", 3),
         "a change is synced after the reload")
    t.ok([ln for ln in lines(moved) if "After moving the log" in ln] and
         not [ln for ln in lines(log) if "After moving the log" in ln],
         "the line goes to the new provisioning_log path", (lines(moved), open(live).read()[-800:]))
    # ---- progress of a running cycle counts against every planned op, not
    # against those dispatched so far (the apply window is 200)
    for i in range(250):
        sim.call("POST", "/_admin/tenants/%s/users" % src_tid, {
            "displayName": "Bulk %d" % i, "userPrincipalName": "bulk%d@s.example" % i,
            "mail": "bulk%d@s.example" % i, "mailNickname": "bulk%d" % i, "accountEnabled": True,
            "userType": "Member"})
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "kind": "stall_before",
                                        "seconds": 0.3})
    env.ctl("sync", "j")
    seen = X.poll(lambda: (X.job_status(env, "j") or {}).get("progress"), timeout=60, step=0.1)
    done = X.wait_cycles(env, "j", 4, timeout=240)
    sim.call("DELETE", "/_admin/faults")
    created = (done or {}).get("counts", {}).get("created")
    t.ok(seen is not None and seen["total"] == 250 and created == 250,
         "status progress of the 250 creates: total 250 from the start", (seen, created))
    X.stop_daemon(d)
    d = None
    with open(env.conf, "w") as f:
        f.write(good)

    # ---- --once stopped by SIGINT while its writes wait: exit 0, then the
    # next run finishes, no duplicate
    for i in range(3):
        sim.call("POST", "/_admin/tenants/%s/users" % src_tid, {
            "displayName": "Late %d" % i, "userPrincipalName": "late%d@s.example" % i,
            "mail": "late%d@s.example" % i, "mailNickname": "late%d" % i, "accountEnabled": True,
            "userType": "Member"})
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "kind": "stall_before", "seconds": 3})
    seq = sim.last_seq()
    p = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    X.poll(lambda: [r for r in sim.requests(seq)["value"] if r["route"] == "users.list"] or None, timeout=60,
           step=0.05)
    time.sleep(0.5)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    took = time.time() - t0
    sim.call("DELETE", "/_admin/faults")
    t.ok(p.returncode == 0 and took < 15, "--once stopped by SIGINT exits 0 (in %.1f s)" % took,
         (p.returncode, err[-1200:]))
    q = env.once()
    t.ok(q.returncode == 0 and len(X.users_list(sim.users(tgt_tid))) == N + 250 + 3 and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the next --once finishes the work: %d users, no duplicate" % (N + 250 + 3),
         (q.returncode, X.sync_problems(sim, src_tid, tgt_tid, link), q.stderr[-800:]))
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
