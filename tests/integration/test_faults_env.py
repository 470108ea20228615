#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Fault matrix, host side (TAP): the real xtsyncd --once against graphsim when
# the SMTP server is down (mail kept in the outbox and retried, syncing goes
# on; a real SMTP server, smtpsink.py), when the state directory's filesystem
# is full (a small tmpfs: the cycle stops cleanly, the store stays intact, it
# resumes when space returns), and when the SQLite store is unusable (garbage,
# truncated, read-only filesystem): a clear error, no crash, exit code 1.
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"
CA = "11111111-1111-4111-8111-111111111111"
CB = "22222222-2222-4222-8222-222222222222"
LINK = X.app_ext(CB)

t = X.Tap()
tmp = X.tmpdir("faults-env")
sim = X.Sim(tmp)
ok = False
step = [0]
mounted = []
sink = None


def change_source(n_new=2, n_patch=2, n_delete=0):
    step[0] += 1
    k = step[0]
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": n_new, "seed": 200 + k, "prefix": "e%d" % k,
                                                     "guest_fraction": 0.0, "disabled_fraction": 0.0,
                                                     "with_manager": False})
    live = [u for u in X.users_list(sim.users(A)) if not u.get("deleted") and "e%d" % k not in
            u.get("userPrincipalName", "")]
    for u in live[k % 4: k % 4 + n_patch]:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, u["id"]), {"jobTitle": "env title %d" % k})
    gone = live[-n_delete:] if n_delete else []
    for u in gone:
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, u["id"]))
    return gone


def converged(what):
    good, bad = X.check_converged(sim, A, B, LINK)
    t.ok(good, "%s: target converged (one user per source member, attributes, no duplicate)" % what, bad)


def quiet(err):
    return "\n".join(line for line in err.splitlines() if "debug" not in line)[-2500:]


def crashed(p):
    return p.returncode < 0 or p.returncode > 3 or "AddressSanitizer" in p.stderr or "runtime error" in p.stderr


def copy_store(src, dst):
    """Move a store that no process has open: the file and its WAL. Committed
    transactions may still be in the -wal (xtsyncd's close checkpoints only
    when it is the last connection: the outbox flusher's thread may still
    hold one), so the file alone can be older than the store."""
    shutil.copy(src, dst)
    for sfx in ("-wal", "-shm"):
        if os.path.exists(src + sfx):
            shutil.copy(src + sfx, dst + sfx)
        elif os.path.exists(dst + sfx):
            os.unlink(dst + sfx)


def integrity(db):
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return c.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        c.close()


def write_config(env, state_dir, smtp_port):
    env.write_config()
    with open(env.conf) as f:
        text = f.read()
    text = text.replace("state_dir = %s\n" % env.tmp, "state_dir = %s\n" % state_dir, 1)
    text = text.replace("[tenant", "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = xtsync@src.example\n\n[tenant" %
                        smtp_port, 1)
    with open(env.conf, "w") as f:
        f.write(text)


try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    env.add_tenant("tgt", B, CB)
    sim.allow(A, B)
    sim.call("POST", "/_admin/settings", {"page_size": 5})
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 12, "seed": 9, "guest_fraction": 0.0,
                                                     "disabled_fraction": 0.0})
    env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=2, notify="ops@src.example")
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    smtp_port = X.free_port()           # nothing listens there yet: the SMTP server is down
    write_config(env, state, smtp_port)
    db = os.path.join(state, "xtsync.db")

    p = env.once()
    t.ok(p.returncode == 0, "initial cycle", quiet(p.stderr))
    converged("initial")

    # ---- SMTP down: deletions held -> a mail that cannot be sent; syncing goes on
    gone = change_source(n_delete=3)
    p = env.once()
    t.ok(p.returncode == 3, "3 deletions over the threshold of 2: held, --once exits 3 (got %d)" % p.returncode,
         quiet(p.stderr))
    t.ok(re.search(r'notify: sending ".*" to ops@src\.example failed \(.*\); retrying in 60s', p.stderr),
         "SMTP down: a log line says the mail failed and when it is retried", quiet(p.stderr))
    c = sqlite3.connect(db)
    rows = c.execute("SELECT id, attempts, sent_at, next_attempt, last_error FROM outbox").fetchall()
    c.close()
    t.ok(len(rows) == 1 and rows[0][1] == 1 and rows[0][2] == 0 and rows[0][3] > 0 and rows[0][4],
         "the mail stays in the store's outbox: 1 attempt, not sent, a retry time and the error", rows)
    good, bad = X.check_converged(sim, A, B, LINK)
    held = [b for b in bad if "still enabled" in b]
    t.ok(len(bad) == len(held) == 3, "syncing unaffected: creates and updates applied, only the 3 held "
         "deletions wait", bad)
    change_source()
    p = env.once()
    good, bad = X.check_converged(sim, A, B, LINK)
    t.ok(p.returncode == 3 and len(bad) == 3 and all("still enabled" in b for b in bad),
         "the next cycle syncs new changes while the mail is still pending", bad + [quiet(p.stderr)])
    # the server comes back; the retry time has come (moved into the past, as time would)
    sinkdir = os.path.join(tmp, "sink")
    sink, _ = X.start_smtpsink(sinkdir, smtp_port)
    c = sqlite3.connect(db)
    c.execute("UPDATE outbox SET next_attempt = 1 WHERE sent_at = 0")
    c.commit()
    c.close()
    p = env.once()
    got = X.poll(lambda: [f for f in os.listdir(sinkdir) if f.endswith(".eml")], timeout=20)
    subjects = []
    for f in got or []:
        with open(os.path.join(sinkdir, f), errors="replace") as fh:
            subjects += [line for line in fh.read().splitlines() if line.startswith("Subject:")]
    t.ok(len(got or []) == 1 and re.search(r'notify: sent ".*" to ops@src\.example', p.stderr),
         "SMTP back: the held-deletions mail is delivered exactly once, and logged", (got, subjects,
                                                                                      quiet(p.stderr)))
    c = sqlite3.connect(db)
    unsent = c.execute("SELECT count(*) FROM outbox WHERE sent_at = 0").fetchone()[0]
    c.close()
    t.ok(unsent == 0, "the outbox has nothing left to send (%d)" % unsent)
    # release the held deletions (the daemon's allow-deletions), then a clean cycle
    d = X.start_daemon(env)
    try:
        X.poll(lambda: "deletions-held" in env.ctl("status").stdout, timeout=60)
        a = env.ctl("allow-deletions", "s2t")
        env.ctl("sync", "s2t")
        X.poll(lambda: X.check_converged(sim, A, B, LINK)[0], timeout=60)
    finally:
        X.stop_daemon(d)
    t.ok(a.returncode == 0, "allow-deletions releases the held deletions", a.stdout + a.stderr)
    converged("SMTP down")

    # ---- the state directory's filesystem is full
    small = os.path.join(tmp, "small")
    os.makedirs(small)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", small],
                       capture_output=True, text=True)
    if m.returncode != 0:
        for _ in range(7):
            t.n += 1
            print("ok %d # SKIP cannot mount a tmpfs (%s)" % (t.n, (m.stderr.strip() or "not root")[:120]))
    else:
        mounted.append(small)
        copy_store(db, os.path.join(small, "xtsync.db"))
        write_config(env, small, smtp_port)
        p = env.once()
        t.ok(p.returncode == 0, "the store moved to a 4 MiB tmpfs works", quiet(p.stderr))
        filler = os.path.join(small, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
            # leave 96 KiB: the store opens (its -shm needs 32 KiB) and fills up mid-cycle
            f.truncate(max(0, f.tell() - 96 * 1024))
        st = os.statvfs(small)
        change_source(n_new=40, n_patch=3)
        p = env.once()
        t.ok(st.f_bavail * st.f_frsize <= 128 * 1024 and p.returncode == 1 and not crashed(p),
             "filesystem full: the cycle fails cleanly, --once exits 1 (got %d, %d blocks free)" %
             (p.returncode, st.f_bavail), quiet(p.stderr))
        print("# " + "\n# ".join(quiet(p.stderr).splitlines()[-12:]))
        t.ok(re.search(r"(database or disk is full|No space left|SQLITE_FULL|XTS_ENOSPC)", p.stderr, re.I),
             "filesystem full: the log says the disk is full", quiet(p.stderr))
        os.unlink(filler)
        t.ok(integrity(os.path.join(small, "xtsync.db")) == "ok", "nothing half-written: integrity_check ok")
        p = env.once()
        t.ok(p.returncode == 0, "space back: the next cycle succeeds", quiet(p.stderr))
        converged("filesystem full")
        # read-only filesystem: SQLite cannot write at all
        change_source()
        r = subprocess.run(["mount", "-o", "remount,ro", small], capture_output=True, text=True)
        p = env.once()
        t.ok(r.returncode == 0 and p.returncode in (1, 2) and not crashed(p) and
             re.search(r"(readonly|read-only|XTS_E)", p.stderr, re.I),
             "read-only state filesystem: a clear error, no crash, exit %d" % p.returncode, quiet(p.stderr))
        subprocess.run(["mount", "-o", "remount,rw", small], capture_output=True)
        copy_store(os.path.join(small, "xtsync.db"), db)
        write_config(env, state, smtp_port)

    # ---- SQLite store damaged: garbage, then truncated
    p = env.once()
    t.ok(p.returncode == 0, "back on the normal state dir", quiet(p.stderr))
    keep = os.path.join(tmp, "good.db")
    shutil.copy(db, keep)
    for sfx in ("-wal", "-shm"):
        if os.path.exists(db + sfx):
            os.unlink(db + sfx)
    with open(db, "wb") as f:
        f.write(os.urandom(8192))
    p = env.once()
    t.ok(p.returncode in (1, 2) and not crashed(p) and re.search(r"(not a database|malformed|corrupt)", p.stderr),
         "a garbage store: a clear error, no crash, exit %d" % p.returncode, quiet(p.stderr))
    with open(keep, "rb") as f:
        data = f.read()
    with open(db, "wb") as f:
        f.write(data[:len(data) // 2])
    p = env.once()
    t.ok(p.returncode in (1, 2) and not crashed(p) and re.search(r"is corrupt .*restore or remove it", p.stderr),
         "a truncated store: the log says it is corrupt and what to do, no crash, exit %d" % p.returncode,
         quiet(p.stderr))
    shutil.copy(keep, db)
    change_source()
    p = env.once()
    t.ok(p.returncode == 0, "the store restored: the next cycle succeeds", quiet(p.stderr))
    converged("store restored")
    ok = t.failed == 0
finally:
    for d in mounted:
        subprocess.run(["umount", "-l", d], capture_output=True)
    if sink is not None:
        sink.terminate()
        sink.wait(30)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
