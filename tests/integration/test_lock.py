#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Single-instance lock on state_dir (TAP), against graphsim: while a daemon
# holds state_dir/xtsync.lock (and state_dir itself, so removing the file
# does not let a second one in), `xtsyncd --once` on the same config exits 1
# naming the holder's pid and sends nothing to Graph; --dry-run may run beside
# it; a reload that changes state_dir keeps the lock where the store is; the
# lock goes with the holder (SIGTERM or SIGKILL); root leaves the lock file to
# the owner of state_dir. A control_socket in a missing directory, or a
# control_group the daemon's user is not in, is a configuration error (exit
# 2). Does not test cycles.
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402


t = X.Tap()
tmp = X.tmpdir("lock")
sim = X.Sim(tmp)
ok = False
d = None
try:
    env, A, B, _ = X.source_target(sim, tmp, 0x10c0001, 5, 7, names=("src", "tgt"))
    env.add_job("s2t", "src", "tgt", scope="all")
    conf = env.write_config()
    with open(conf) as f:
        conf_text = f.read()
    lock = os.path.join(tmp, "xtsync.lock")
    held_re = re.compile(r"^xtsyncd: another xtsyncd holds %s \(pid (\d+)\)$" % re.escape(lock), re.M)

    def holder(p):
        m = held_re.search(p.stderr)
        return int(m.group(1)) if m else None

    def log_text():
        with open(os.path.join(tmp, "live.log")) as f:
            return f.read()

    # ---- a running daemon holds the lock
    d = X.start_daemon(env)
    first = X.wait_cycles(env, "s2t", 1)
    t.ok(first is not None, "the daemon finished its first cycle", log_text()[-1500:])
    try:
        mode = os.stat(lock).st_mode & 0o777
        with open(lock) as f:
            content = f.read()
    except OSError as e:
        mode, content = 0, str(e)
    t.ok(mode == 0o600 and content == "%d\n" % d.pid,
         "state_dir/xtsync.lock is mode 0600 and holds the daemon's pid",
         "mode %o content %r pid %d" % (mode, content, d.pid))

    seq = sim.last_seq()
    p = env.once(timeout=60)
    sent = sim.requests(seq)["value"]
    t.ok(p.returncode == 1, "--once beside the daemon exits 1 (rc %d)" % p.returncode, p.stderr[-1500:])
    t.ok(holder(p) == d.pid, "it says another xtsyncd holds STATE_DIR/xtsync.lock, with the daemon's pid",
         p.stderr[-1500:])
    t.ok(not sent, "it sent no request to Graph", [(r["method"], r["route"]) for r in sent][:10])
    t.ok(d.poll() is None and X.job_status(env, "s2t") is not None, "the daemon keeps running and answering")

    p = env.once("--dry-run", timeout=120)
    t.ok(p.returncode == 0 and holder(p) is None,
         "--once --dry-run runs beside the daemon (it writes nothing; rc %d)" % p.returncode, p.stderr[-1500:])

    # ---- SIGHUP with a new state_dir: refused for that key, lock stays on the old one
    other = os.path.join(tmp, "other-state")
    os.mkdir(other, 0o700)
    orig = os.path.join(tmp, "orig.conf")
    with open(orig, "w") as f:
        f.write(conf_text)
    with open(conf, "w") as f:
        f.write(conf_text.replace("state_dir = %s\n" % tmp, "state_dir = %s\n" % other))
    d.send_signal(signal.SIGHUP)
    warned = X.poll(lambda: "state_dir changed; restart xtsyncd to apply" in log_text() and
                    "configuration reloaded" in log_text(), timeout=30)
    t.ok(warned and d.poll() is None, "a reload changing state_dir is applied except state_dir (warned)",
         log_text()[-1500:])
    p = subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", orig, "--once"],
                         capture_output=True, text=True, timeout=60)
    t.ok(p.returncode == 1 and holder(p) == d.pid and not os.path.exists(os.path.join(other, "xtsync.lock")),
         "after that reload the daemon still holds the lock of the store it has open", p.stderr[-1500:])
    with open(conf, "w") as f:
        f.write(conf_text)

    # ---- the lock file removed ("a stale lock") while the daemon runs: the
    # directory is locked too, so --once still refuses
    os.unlink(lock)
    seq = sim.last_seq()
    p = env.once(timeout=60)
    t.ok(p.returncode == 1 and "its xtsync.lock was removed" in p.stderr and not sim.requests(seq)["value"],
         "with the lock file removed, --once still exits 1 and sends nothing (rc %d)" % p.returncode,
         p.stderr[-1500:])

    # a stray SIGUSR1/SIGUSR2 (a postrotate copied from another daemon) is ignored
    d.send_signal(signal.SIGUSR1)
    d.send_signal(signal.SIGUSR2)
    time.sleep(0.3)
    t.ok(d.poll() is None and X.job_status(env, "s2t") is not None,
         "SIGUSR1 and SIGUSR2 leave the daemon running", d.returncode)

    rc = X.stop_daemon(d)
    d = None
    t.ok(rc == 0, "the daemon stops on SIGTERM (rc %s)" % rc)
    seq = sim.last_seq()
    p = env.once(timeout=120)
    t.ok(p.returncode == 0 and holder(p) is None and sim.requests(seq)["value"],
         "once the daemon has stopped, --once runs (rc %d)" % p.returncode, p.stderr[-1500:])

    # ---- SIGKILL leaves no stale lock
    d = X.start_daemon(env)
    d.kill()
    d.wait()
    d = None
    p = env.once(timeout=120)
    t.ok(p.returncode == 0 and holder(p) is None, "after the daemon is killed (SIGKILL), --once runs (rc %d)" %
         p.returncode, p.stderr[-1500:])

    # ---- a lock file root made is given to the owner of state_dir (the daemon's user)
    if os.geteuid() != 0:
        t.n += 1
        print("ok %d # SKIP giving the lock file away needs root" % t.n)
    else:
        owned = os.path.join(tmp, "owned-state")
        os.mkdir(owned, 0o700)
        os.chown(owned, 65534, 65534)
        oconf = os.path.join(tmp, "owned.conf")
        with open(oconf, "w") as f:
            f.write(conf_text.replace("state_dir = %s\n" % tmp, "state_dir = %s\n" % owned))
        ofd = os.open(os.path.join(owned, "xtsync.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(ofd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        p = subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", oconf, "--once"],
                           capture_output=True, text=True, timeout=60)
        st = os.fstat(ofd)
        os.close(ofd)
        t.ok(p.returncode == 1 and (st.st_uid, st.st_gid) == (65534, 65534),
             "run as root, xtsyncd gives state_dir/xtsync.lock to the owner of state_dir (%d:%d)" %
             (st.st_uid, st.st_gid), p.stderr[-1500:])

    # ---- any holder refuses a daemon start too, before the control socket or Graph
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.ftruncate(fd, 0)
    os.write(fd, b"4242\n")
    sock = os.path.join(tmp, "control.sock")
    if os.path.exists(sock):
        os.unlink(sock)  # left behind by the SIGKILL above
    seq = sim.last_seq()
    try:
        p = subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", conf, "--foreground"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired as e:  # it started: killed by run()
        p = subprocess.CompletedProcess(e.cmd, -1, "", (e.stderr or b"").decode(errors="replace"))
    t.ok(p.returncode == 1 and holder(p) == 4242 and not os.path.exists(sock)
         and not sim.requests(seq)["value"],
         "the daemon does not start while another process holds the lock (exit 1, pid named, nothing sent)",
         "rc %d %s" % (p.returncode, p.stderr[-1500:]))
    os.close(fd)

    # ---- mistakes in control_socket / control_group found only at start are
    # configuration errors: exit 2 with a message the operator can act on
    # (libuv alone says "permission denied" for a missing directory)
    def start_refused(cmd, cfg_text, cfg_path):
        with open(cfg_path, "w") as f:
            f.write(cfg_text)
        try:
            return subprocess.run(cmd + [os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", cfg_path, "--foreground"],
                                  capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired as e:  # it started: killed by run()
            return subprocess.CompletedProcess(e.cmd, -1, "", (e.stderr or b"").decode(errors="replace"))

    missing = os.path.join(tmp, "no-such-dir")
    p = start_refused([], conf_text.replace("control_socket = %s/control.sock" % tmp,
                                            "control_socket = %s/control.sock" % missing),
                      os.path.join(tmp, "nodir.conf"))
    t.ok(p.returncode == 2 and "directory %s does not exist" % missing in p.stderr
         and "permission denied" not in p.stderr.lower(),
         "a control_socket in a missing directory: exit 2, the directory named", "rc %d %s" % (p.returncode,
                                                                                           p.stderr[-1500:]))
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"):
        t.n += 1
        print("ok %d # SKIP control_group the daemon's user is not in needs root and setpriv" % t.n)
    else:
        own = os.path.join("/tmp", "xts-cg-%d" % os.getpid())
        os.mkdir(own, 0o700)
        try:
            with open(os.path.join(tmp, "secret")) as f:
                secret = f.read()
            with open(os.path.join(own, "secret"), "w") as f:
                f.write(secret)
            os.chmod(os.path.join(own, "secret"), 0o600)
            text = conf_text.replace(tmp, own).replace("[daemon]\n", "[daemon]\ncontrol_group = root\n", 1)
            cfg = os.path.join(own, "cg.conf")
            with open(cfg, "w") as f:
                f.write(text)
            for name in (own, os.path.join(own, "secret"), cfg):
                os.chown(name, 65534, 65534)
            p = start_refused(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"], text, cfg)
            t.ok(p.returncode == 2 and "is not a member of it" in p.stderr and "control_group root" in p.stderr,
                 "run as a user not in control_group: exit 2, the group named",
                 "rc %d %s" % (p.returncode, p.stderr[-1500:]))
        finally:
            shutil.rmtree(own, ignore_errors=True)
    ok = t.failed == 0
finally:
    if d is not None:
        X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
