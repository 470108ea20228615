#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Dry-run snapshots of the live store (TAP), against graphsim: `xtsyncd --once
# --dry-run` plans from what is committed in state_dir/xtsync.db, also when it
# is only in the WAL (another connection keeps the store open, so nothing was
# checkpointed); it sees nothing of a write transaction left open by another
# process, and its snapshot stays consistent while another process keeps
# committing and checkpointing; the snapshot is 0600 and removed at exit; the
# live daemon's `preview` does the same in-process. Does not test the plan
# itself (test_engine.py does).
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

DELTA = "/v1.0/users/delta"
t = X.Tap()
tmp = X.tmpdir("snapshot")
sim = X.Sim(tmp)
ok = False
holder = None
d = None
try:
    env, A, B, link = X.source_target(sim, tmp, 0x5a0001, 6, 9, names=("src", "tgt"), with_manager=False)
    env.add_job("s2t", "src", "tgt", scope="all")
    env.write_config()
    db = os.path.join(tmp, "xtsync.db")
    snaps = os.path.join(tmp, "snaps")   # the dry runs' TMPDIR
    os.mkdir(snaps, 0o700)

    def dry_run(*pre, extra_env=None, timeout=180):
        """--once --dry-run with TMPDIR=snaps; pre is a command prefix (strace)."""
        e = dict(os.environ, TMPDIR=snaps)
        e.update(extra_env or {})
        cmd = list(pre) + [os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground",
                           "--dry-run"]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)

    def finish(p, timeout=180):
        out, err = p.communicate(timeout=timeout)
        with open(os.path.join(tmp, "daemon.log"), "a") as f:
            f.write("=== dry run -> %d\n%s\n%s\n" % (p.returncode, out, err))
        return p.returncode, [ln for ln in out.splitlines() if ln.startswith("s2t: ")], err

    def snapshot_files():
        return [os.path.join(snaps, n, "xtsync.db") for n in os.listdir(snaps)
                if n.startswith("xtsync-dryrun-")]

    # ---- the live store: created 0600 by the first run
    p = env.once()
    t.ok(p.returncode == 0, "an initial cycle syncs the 6 users (rc %d)" % p.returncode, p.stderr[-1500:])
    t.ok(os.stat(db).st_mode & 0o777 == 0o600, "state_dir/xtsync.db is created mode 0600",
         oct(os.stat(db).st_mode & 0o777))

    # ---- no other connection: the dry run leaves state_dir as it was (no
    # -wal/-shm of its own: the first run's close checkpointed and removed them)
    before = sorted(os.listdir(tmp))
    with open(db, "rb") as f:
        main_before = f.read()
    rc, plan, err = finish(dry_run())
    with open(db, "rb") as f:
        main_after = f.read()
    t.ok(rc == 0 and not any(n.endswith(("-wal", "-shm")) for n in before) and
         sorted(os.listdir(tmp)) == before and main_after == main_before,
         "a dry run on a store nothing else has open leaves state_dir unchanged (no -wal/-shm, same bytes)",
         (rc, before, sorted(os.listdir(tmp)), main_after == main_before, err[-800:]))

    # ---- (a) committed data only in the WAL
    # Another connection keeps the store open, so the next run's close does not
    # checkpoint: its links and its delta link stay in the WAL only.
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("SELECT count(*) FROM link").fetchone()
    new = sim.call("POST", "/_admin/tenants/%s/users" % A, {
        "displayName": "Wal Only", "userPrincipalName": "walonly@src.example", "mail": "walonly@src.example",
        "mailNickname": "walonly", "department": "D1", "accountEnabled": True, "userType": "Member"})
    p = env.once()
    tgt = [u["id"] for u in X.users_list(sim.users(B)) if u.get(link) == "%s:%s" % (A, new["id"])]
    t.ok(p.returncode == 0 and len(tgt) == 1, "an incremental cycle syncs a new user (rc %d)" % p.returncode,
         p.stderr[-1500:])
    mainonly = os.path.join(tmp, "mainonly")
    os.mkdir(mainonly)
    shutil.copyfile(db, os.path.join(mainonly, "xtsync.db"))
    c = sqlite3.connect(os.path.join(mainonly, "xtsync.db"))
    n_main = c.execute("SELECT count(*) FROM link").fetchone()[0]
    c.close()
    n_live = holder.execute("SELECT count(*) FROM link").fetchone()[0]
    t.ok(n_main == 6 and n_live == 7 and os.path.getsize(db + "-wal") > 0,
         "the new link is committed in the WAL only (main file %d links, committed %d)" % (n_main, n_live))

    # a user changed in the source gets its other mapped values along (the FAQ:
    # "the user in the target tenant is updated to match the user in the source tenant")
    def patch_line(dep):
        return ('PATCH /users/%s {"accountEnabled":true,"department":"%s","displayName":"Wal Only",'
                '"mail":"walonly@src.example","mailNickname":"walonly"}' % (tgt[0], dep))

    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, new["id"]), {"department": "D2"})
    want = ['s2t: ' + patch_line("D2")]
    rc, plan, err = finish(dry_run())
    t.ok(rc == 0 and plan == want,
         "--dry-run plans from the WAL's committed state: one PATCH of the synced new user, no create",
         "rc %d plan %r want %r\n%s" % (rc, plan, want, err[-1500:]))
    t.ok(not os.listdir(snaps), "the dry run removes its snapshot at exit", os.listdir(snaps))

    # ---- (b) a write transaction left open by another process is not seen
    # Its change would retarget every link; it is large enough to spill
    # uncommitted frames into the WAL file.
    w = sqlite3.connect(db, isolation_level=None, timeout=10)
    w.execute("PRAGMA cache_size = 10")
    w.execute("BEGIN IMMEDIATE")
    w.execute("UPDATE link SET target_id = 'uncommitted-' || target_id")
    w.execute("CREATE TABLE snap_pad (b BLOB)")
    w.executemany("INSERT INTO snap_pad VALUES (randomblob(4000))", [()] * 500)
    rc, plan, err = finish(dry_run())
    w.execute("ROLLBACK")
    w.close()
    t.ok(rc == 0 and plan == want, "--dry-run beside an open write transaction succeeds without seeing it",
         "rc %d plan %r want %r\n%s" % (rc, plan, want, err[-1500:]))

    # ---- (b) another process keeps committing and checkpointing
    # Its invariant: snap.n = the number of snap_rows rows, in every commit.
    # Each commit adds a 3 KB row (a new leaf page every other commit) and
    # every 10th restarts the WAL, so a copy of the database and of the WAL
    # from different moments misses pages.
    setup = sqlite3.connect(db, isolation_level=None)
    setup.executescript("CREATE TABLE snap (n INTEGER NOT NULL); INSERT INTO snap VALUES (0); "
                        "CREATE TABLE snap_rows (i INTEGER PRIMARY KEY, b BLOB);")
    setup.close()
    stop = threading.Event()
    wstat = {"commits": 0, "error": None}

    def writer():
        c = sqlite3.connect(db, isolation_level=None, timeout=10)
        try:
            i = 0
            while not stop.is_set():
                i += 1
                c.execute("BEGIN IMMEDIATE")
                c.execute("INSERT INTO snap_rows VALUES (?, randomblob(3000))", (i,))
                c.execute("UPDATE snap SET n = ?", (i,))
                c.execute("COMMIT")
                wstat["commits"] = i
                time.sleep(0.001)
                if i % 10 == 0:
                    c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as e:
            wstat["error"] = str(e)
        finally:
            c.close()

    # The old two-file copy raced with such a writer between copying the
    # database and copying the WAL; strace, when it can trace us, widens that
    # window to 2 s by delaying the open of the live WAL (SQLite opens it too,
    # before its read transaction, so a consistent copy does not care).
    pre, penv = [], {}
    if shutil.which("strace") and subprocess.run(["strace", "-o", "/dev/null", "true"],
                                                 capture_output=True).returncode == 0:
        pre = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=openat", "-P", db + "-wal",
               "-e", "inject=openat:delay_enter=2000000", "--"]
        # LeakSanitizer cannot run under ptrace
        penv = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")}
    else:
        print("# strace cannot trace here: the race is not widened")
    sim.call("POST", "/_admin/faults", {"tenant": A, "route": DELTA, "kind": "stall_before", "seconds": 4,
                                        "count": 1})
    wt = threading.Thread(target=writer)
    wt.start()
    X.poll(lambda: wstat["commits"] >= 20 or wstat["error"], timeout=30, step=0.05)
    dp = dry_run(*pre, extra_env=penv)
    # The snapshot is complete once the dry run has opened it (its -wal
    # exists); users/delta then stalls, and a reader looks at it meanwhile.
    files = X.poll(lambda: [f for f in snapshot_files() if os.path.exists(f + "-wal")], timeout=60, step=0.02)
    stop.set()
    wt.join(30)
    modes = {os.path.basename(f): oct(os.stat(f).st_mode & 0o777) for f in
             [x + s for x in files for s in ("", "-wal", "-shm")] if os.path.exists(f)}
    view, integrity = None, None
    if len(files) == 1:
        sc = sqlite3.connect("file:%s?mode=ro" % files[0], uri=True, timeout=10)
        try:
            integrity = ";".join(r[0] for r in sc.execute("PRAGMA integrity_check"))
            view = sc.execute("SELECT (SELECT n FROM snap), (SELECT count(*) FROM snap_rows), "
                              "(SELECT count(*) FROM link WHERE job = 's2t')").fetchone()
        except sqlite3.Error as e:
            integrity = "error: %s" % e
        finally:
            sc.close()
    t.ok(len(files) == 1 and modes.get("xtsync.db") == "0o600" and all(m == "0o600" for m in modes.values()),
         "the snapshot (and its -wal and -shm) are mode 0600", (files, modes))
    t.ok(wstat["error"] is None and wstat["commits"] >= 20, "the writer kept committing (%d commits)" %
         wstat["commits"], wstat["error"])
    t.ok(integrity == "ok" and view is not None and view[0] == view[1] and view[0] > 0 and view[2] == 7,
         "a snapshot taken while another process commits and checkpoints is consistent",
         "integrity %r; snap.n, rows, links = %r" % (integrity, view))
    rc, plan, err = finish(dp)
    sim.call("DELETE", "/_admin/faults")
    t.ok(rc == 0 and plan == want, "that dry run succeeds with the same plan",
         "rc %d plan %r want %r\n%s" % (rc, plan, want, err[-1500:]))
    t.ok(not os.listdir(snaps), "its snapshot is removed at exit", os.listdir(snaps))
    holder.close()
    holder = None

    # ---- preview in the live daemon: the same snapshot, in-process
    d = X.start_daemon(env)
    j = X.wait_cycles(env, "s2t", 1)
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, new["id"]), {"department": "D3"})
    pv = X.poll(lambda: [x for x in [env.ctl("preview", "s2t")] if x.returncode == 0], timeout=60)
    text = pv[0].stdout if pv else ""
    t.ok(j is not None and patch_line("D3") in text,
         "the live daemon's preview plans from its own store", text[-1500:])
    t.ok(X.stop_daemon(d) == 0, "the daemon stops cleanly")
    d = None
    t.ok(X.store_integrity(db) == "ok", "the live store is sound")
    ok = t.failed == 0
finally:
    if holder is not None:
        holder.close()
    if d is not None:
        X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
