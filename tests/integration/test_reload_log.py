#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The provisioning log across SIGHUP, and --once stopped by a signal, against
# graphsim (TAP). The contract: the log is "rotated with SIGHUP"; an invalid
# new config is refused and the old one keeps running; SIGTERM/SIGINT finish
# the in-flight batch, persist state and exit 0.
#  - a SIGHUP while the config has an error still reopens the log (logrotate
#    moved it; its postrotate cannot know about the typo);
#  - a reload that changes provisioning_log writes the new file from then on;
#  - a reload to a provisioning_log that cannot be opened (its directory is
#    missing) is refused with one line naming the file and the OS reason, and
#    the old file keeps being written;
#  - `xtsyncd --once` interrupted by SIGINT exits 0, and the next run
#    finishes the work without a duplicate;
#  - start-up with a provisioning_log that cannot be opened (missing
#    directory, permission denied) fails with exit 1 and one line naming the
#    file and the OS reason (no second cause, no false store line).
# Also: `status` progress of a running cycle counts all planned ops.
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 4


def add_members(sim, tid, name, n):
    """n new enabled member users in tid: "<name> i", <name>i@s.example."""
    for i in range(n):
        low = "%s%d" % (name.lower(), i)
        sim.call("POST", "/_admin/tenants/%s/users" % tid, {
            "displayName": "%s %d" % (name, i), "userPrincipalName": low + "@s.example",
            "mail": low + "@s.example", "mailNickname": low, "accountEnabled": True, "userType": "Member"})


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


def errors(text):
    """The diagnostics' err lines."""
    return [ln for ln in text.splitlines() if " err: " in ln or ln.startswith("err: ") or ln.startswith("<3>")]


def said_once(text, path, reason):
    """True when exactly one err line names path, and it gives reason."""
    named = [ln for ln in errors(text) if path in ln]
    return len(named) == 1 and reason in named[0]


def startup_ok(p, path, reason):
    """--once refused to start: exit 1, one line with the path and reason,
    at most one generic `start-up failed`, nothing else said as a cause."""
    errs = errors(p.stderr)
    generic = [ln for ln in errs if "start-up failed" in ln]
    return (p.returncode == 1 and said_once(p.stderr, path, reason) and len(generic) <= 1 and
            len(errs) == 1 + len(generic) and not [ln for ln in errs if "store" in ln])


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
    # ---- a reload to a provisioning_log in a missing directory: refused,
    # said once with the OS reason, the old file still written
    nodir = os.path.join(tmp, "nodir", "provisioning.log")
    moved_conf = open(env.conf).read()
    with open(env.conf, "w") as f:
        f.write(moved_conf.replace("provisioning_log = %s" % moved, "provisioning_log = %s" % nodir))
    mark = len(open(live).read())
    c = env.ctl("reload")
    X.poll(lambda: "not reloading" in open(live).read()[mark:], timeout=10, step=0.1)
    said = open(live).read()[mark:]
    t.ok(c.returncode != 0 and said_once(said, nodir, "No such file or directory") and
         "still writing %s" % moved in said and "configuration reloaded" not in said,
         "a reload to a provisioning_log in a missing directory is refused, said once with the OS reason",
         (c.returncode, c.stdout + c.stderr, said))
    t.ok(change_and_sync(sim, env, src_tid, src[2]["id"], "After a refused move", 4) and
         [ln for ln in lines(moved) if "After a refused move" in ln] and not os.path.exists(os.path.dirname(nodir)),
         "the old provisioning log keeps being written", (lines(moved)[-2:], open(live).read()[-800:]))
    with open(env.conf, "w") as f:
        f.write(moved_conf)

    # ---- progress of a running cycle counts against every planned op, not
    # against those dispatched so far (the apply window is 200)
    add_members(sim, src_tid, "Bulk", 250)
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": r"/\$batch$", "kind": "stall_before",
                                        "seconds": 0.3})
    env.ctl("sync", "j")
    seen = X.poll(lambda: (X.job_status(env, "j") or {}).get("progress"), timeout=60, step=0.1)
    done = X.wait_cycles(env, "j", 5, timeout=240)
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
    add_members(sim, src_tid, "Late", 3)
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

    # ---- start-up with a provisioning_log that cannot be opened
    with open(env.conf, "w") as f:
        f.write(good.replace("provisioning_log = %s" % log, "provisioning_log = %s" % nodir))
    p = env.once()
    t.ok(startup_ok(p, nodir, "No such file or directory"),
         "start-up with the log's directory missing: exit 1, one line with the file and the OS reason",
         (p.returncode, p.stderr[-1200:]))
    ro = os.path.join(tmp, "readonly.log")
    with open(ro, "w"):
        pass
    os.chmod(ro, 0o400)
    with open(env.conf, "w") as f:
        f.write(good.replace("provisioning_log = %s" % log, "provisioning_log = %s" % ro))
    cmd = [os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # root writes any file: drop the capabilities that let it
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] + cmd
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        t.n += 1
        print("ok %d # SKIP permission denied as root needs setpriv" % t.n)
    else:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        t.ok(startup_ok(p, ro, "Permission denied"),
             "start-up with a log file it may not write: exit 1, one line with the file and the OS reason",
             (p.returncode, p.stderr[-1200:]))
    with open(env.conf, "w") as f:
        f.write(good)
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
