#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# `xtsyncctl status` after a restart of the daemon (TAP, against graphsim):
# the last cycle (start, end, result) and its counts (in scope, created, ...)
# come from the store, so a job that has not run a cycle in this process yet
# shows what its last cycle did instead of `-` and zeros:
#  - a paused job after a restart, and one added paused by a reload;
#  - once the job runs a cycle, status shows that cycle's counts, not the
#    loaded ones;
#  - a job disabled in the config after a restart;
#  - after a cycle killed mid-way (SIGKILL), the last *ended* cycle, with its
#    own start time, not the start of the cycle that never ended.
import calendar
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 5
JOB = "j"


def show(j):
    keep = ("state", "last_cycle_start", "last_cycle_end", "last_result", "last_error", "cycles", "counts")
    return {k: (j or {}).get(k) for k in keep}


def text_row(env):
    """The job's LAST CYCLE and CREATED cells of the status table."""
    c = env.ctl("status")
    lines = c.stdout.split("\n")
    hdr = next((ln for ln in lines if ln.startswith("JOB ")), "")
    row = next((ln for ln in lines if ln.startswith(JOB + " ")), "")
    m = re.search(r"\bCREATED\b", hdr)
    last = hdr.find("LAST CYCLE")
    return (row[last:last + 20].strip() if last >= 0 else None,
            row[m.end() - 8:m.end()].strip() if m else None, c.stdout + c.stderr)


def iso_cell(iso):
    """2026-01-02T03:04:05Z as the table prints it."""
    return iso.replace("T", " ", 1) if iso else None


def secs(iso):
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")) if iso else None


def near(a, b):
    """Two status times of one cycle: the daemon that ran it took them a few
    ms apart from the store's, which may straddle a second."""
    return a is not None and b is not None and abs(secs(a) - secs(b)) <= 1


def same_last(j, ref):
    """j shows ref's last cycle: its start, end, result and counts."""
    c = (j or {}).get("counts") or {}
    want = ref.get("counts") or {}
    return (j is not None and near(j.get("last_cycle_end"), ref.get("last_cycle_end")) and
            near(j.get("last_cycle_start"), ref.get("last_cycle_start")) and
            j.get("last_result") == ref.get("last_result") and
            all(c.get(k) == want.get(k) for k in ("in_scope", "created", "updated", "deleted", "disabled",
                                                   "failed")))


def iso_ms(ms):
    """Wall ms as status prints it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def cycles(state_dir):
    """The store's cycle rows of the job: (id, started, ended, result), oldest first."""
    db = sqlite3.connect(os.path.join(state_dir, "xtsync.db"))
    try:
        return db.execute("SELECT id, started, ended, result FROM cycle WHERE job = ? ORDER BY id",
                          (JOB,)).fetchall()
    finally:
        db.close()


t = X.Tap()
tmp = X.tmpdir("status-restart")
sim = X.Sim(tmp)
ok = False
p = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x5ea70001, N, 61)
    env.add_job(JOB, "s", "d", scope="all", deprovision="disable")
    env.write_config()
    full = open(env.conf).read()
    src = X.users_list(sim.users(src_tid))

    # ---- a first daemon creates the users, then the job is paused
    p = X.start_daemon(env)
    first = X.wait_cycles(env, JOB, 1) or {}
    c1 = first.get("counts") or {}
    c = env.ctl("pause", JOB)
    t.ok(first.get("last_result") == "success" and c1.get("created") == N and c1.get("in_scope") == N and
         c.returncode == 0,
         "the first cycle creates %d users (created %s, in scope %s); the job is paused" %
         (N, c1.get("created"), c1.get("in_scope")), (show(first), c.stderr))
    X.stop_daemon(p)
    p = None

    # ---- a restarted daemon shows the paused job's last cycle
    p = X.start_daemon(env)
    j = X.job_status(env, JOB)
    last, created, out = text_row(env)
    t.ok(same_last(j, first) and j.get("state") == "paused" and j.get("cycles") == 0,
         "after a restart the paused job shows its last cycle: end %s, created %s, in scope %s (%s)" %
         ((j or {}).get("last_cycle_end"), ((j or {}).get("counts") or {}).get("created"),
          ((j or {}).get("counts") or {}).get("in_scope"), (j or {}).get("state")),
         (show(first), show(j)))
    t.ok(last == iso_cell((j or {}).get("last_cycle_end")) and last is not None and last != "-" and
         created == str(N),
         "the status table shows LAST CYCLE %s and CREATED %s" % (last, created), out)
    X.stop_daemon(p)
    p = None

    # ---- a job added (paused) by a reload shows its last cycle too
    with open(env.conf, "w") as f:
        f.write(full[:full.index('[job "%s"]' % JOB)])
    p = X.start_daemon(env)
    gone = X.job_status(env, JOB) is None
    with open(env.conf, "w") as f:
        f.write(full)
    c = env.ctl("reload")
    j = X.job_status(env, JOB)
    t.ok(gone and c.returncode == 0 and same_last(j, first) and j.get("state") == "paused",
         "a job added by a reload shows its last cycle: end %s, created %s (%s)" %
         ((j or {}).get("last_cycle_end"), ((j or {}).get("counts") or {}).get("created"), (j or {}).get("state")),
         (c.stdout, c.stderr, show(j)))

    # ---- once it runs a cycle, that cycle's counts replace the loaded ones
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src_tid, src[0]["id"]))
    c = env.ctl("resume", JOB)
    second = X.wait_cycles(env, JOB, 1) or {}
    c2 = second.get("counts") or {}
    t.ok(c.returncode == 0 and second.get("last_result") == "success" and c2.get("created") == 0 and
         c2.get("disabled") == 1 and c2.get("in_scope") == N - 1,
         "after resume the new cycle's counts show: created %s, disabled %s, in scope %s" %
         (c2.get("created"), c2.get("disabled"), c2.get("in_scope")), (c.stderr, show(second)))
    X.stop_daemon(p)
    p = None

    # ---- a job disabled in the config shows its last cycle after a restart
    with open(env.conf, "w") as f:
        f.write(full.replace('[job "%s"]\n' % JOB, '[job "%s"]\nenabled = false\n' % JOB))
    p = X.start_daemon(env)
    j = X.job_status(env, JOB)
    t.ok(same_last(j, second) and j.get("enabled") is False and j.get("cycles") == 0,
         "a disabled job shows its last cycle after a restart: end %s, disabled %s, in scope %s" %
         ((j or {}).get("last_cycle_end"), ((j or {}).get("counts") or {}).get("disabled"),
          ((j or {}).get("counts") or {}).get("in_scope")), (show(second), show(j)))
    X.stop_daemon(p)
    p = None

    # ---- a cycle killed mid-way: status shows the last cycle that ended
    with open(env.conf, "w") as f:
        f.write(full)
    time.sleep(2)                   # so the killed cycle starts in another second than the last one
    sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": "/users/delta", "kind": "stall_before",
                                        "seconds": 20, "count": 1})
    p = X.start_daemon(env)
    # graphsim logs a request once answered: the fault's hit says it is stalling
    began = X.poll(lambda: any(f.get("hits", 0) > 0 for f in sim.call("GET", "/_admin/faults")["value"]),
                   timeout=60, step=0.05)
    time.sleep(0.3)
    row = X.job_row(tmp, JOB) or {}
    p.kill()
    p.wait()
    p = None
    os.unlink(os.path.join(tmp, "control.sock"))    # stale: start_daemon waits for a new one
    sim.call("DELETE", "/_admin/faults")
    with open(env.conf, "w") as f:
        f.write(full.replace('[job "%s"]\n' % JOB, '[job "%s"]\nenabled = false\n' % JOB))
    p = X.start_daemon(env)
    j = X.job_status(env, JOB) or {}
    ended = [c for c in cycles(tmp) if c[2] > 0]
    want = (iso_ms(ended[-1][1]), iso_ms(ended[-1][2])) if ended else None
    t.ok(began and row.get("last_cycle_start", 0) > row.get("last_cycle_end", 0) and same_last(j, second) and
         (j.get("last_cycle_start"), j.get("last_cycle_end")) == want and
         j.get("last_cycle_start") != iso_ms(row.get("last_cycle_start", 0)),
         "after a cycle killed mid-way, status shows the last ended cycle (start %s, end %s)" %
         (j.get("last_cycle_start"), j.get("last_cycle_end")), (row, cycles(tmp), show(second), show(j)))
    X.stop_daemon(p)
    p = None
    ok = t.failed == 0
finally:
    X.stop_daemon(p)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
