#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Clearing a quarantine (TAP, against graphsim), also without the daemon.
#  - An operator who runs xtsyncd --once from a timer has no control socket,
#    so no `xtsyncctl resume`: once the cause is fixed, `--once --job J` runs
#    J's retry now (a plain `--once` waits for the retry time and exits 3). A
#    retry that succeeds leaves quarantine; one that fails stays in it.
#  - A job quarantined for 28 days is disabled (no more automatic retries);
#    the log tells the operator to `xtsyncctl resume` it, so resume must
#    clear that too, and `--once --job` retries it without restarting its
#    28-day clock.
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

DAY_MS = 86400 * 1000


def job_row(tmp):
    r = X.job_row(tmp, "j")
    return (r["state"], r["state_reason"], r["quarantine_since"])


t = X.Tap()
tmp = X.tmpdir("quarantine-once")
sim = X.Sim(tmp)
ok = False
p = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9a05e0c7, 3, 53)
    env.add_job("j", "s", "d", scope="all", interval="1h")
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    bad = os.path.join(tmp, "bad")
    with open(bad, "w") as f:
        f.write("wrong\n")
    os.chmod(bad, 0o600)

    o = env.once()
    t.ok(o.returncode == 0 and not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the first --once converges (exit %d)" % o.returncode, o.stderr[-1500:])

    # ---- quarantined by a wrong secret; a plain --once waits for the retry time
    env.write_config(secret=bad)
    o = env.once()
    row = job_row(tmp)
    t.ok(o.returncode == 3 and row[0] == 1 and row[1] == "AADSTS7000215",
         "a wrong secret quarantines the job (exit %d, store %s)" % (o.returncode, row), o.stderr[-1500:])
    env.write_config()
    sim.set_user(src_tid, src[0]["id"], {"jobTitle": "Retried Title"})
    seq = sim.last_seq()
    o = env.once()
    t.ok(o.returncode == 3 and "quarantined (AADSTS7000215); next attempt in" in o.stderr and
         not X.target_writes(sim, seq, tgt_tid),
         "secret fixed, plain --once: still waits for the retry time (exit %d, no write)" % o.returncode,
         o.stderr[-1500:])

    # ---- --once --job retries it now; success leaves quarantine
    o = env.once("--job", "j")
    got = X.linked(sim, tgt_tid, link).get(src[0]["id"], {}).get("jobTitle")
    row = job_row(tmp)
    t.ok(o.returncode == 0 and "--job names it, so --once retries it now" in o.stderr and
         "left quarantine" in o.stderr and got == "Retried Title" and row[0] == 0,
         "--once --job j retries now: exit %d, change applied (%r), store state %s" % (o.returncode, got, row[0]),
         o.stderr[-1500:])
    o = env.once()
    t.ok(o.returncode == 0, "after that a plain --once runs the job (exit %d)" % o.returncode, o.stderr[-1500:])

    # ---- disabled after 28 days: --once --job with the cause still there keeps it disabled
    since = int(time.time() * 1000) - 29 * DAY_MS
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    db.execute("UPDATE job SET state = 3, state_reason = 'AADSTS7000215', quarantine_since = ?, "
               "next_retry = 0, retry_step = 9 WHERE name = 'j'", (since,))
    db.commit()
    db.close()
    sim.set_user(src_tid, src[1]["id"], {"jobTitle": "Resumed Title"})
    seq = sim.last_seq()
    o = env.once()
    t.ok(o.returncode == 3 and "disabled after 28 days in quarantine" in o.stderr and
         not X.target_writes(sim, seq, tgt_tid),
         "a job disabled after 28 days: plain --once skips it (exit %d, no write)" % o.returncode, o.stderr[-1500:])
    env.write_config(secret=bad)
    o = env.once("--job", "j")
    row = job_row(tmp)
    t.ok(o.returncode == 3 and "--once retries it now" in o.stderr and row == (3, "AADSTS7000215", since),
         "--once --job with the secret still wrong: exit %d, still disabled, its 28-day clock kept (%s)"
         % (o.returncode, row), o.stderr[-1500:])

    # ---- xtsyncctl resume clears a job disabled after 28 days
    env.write_config()
    p = X.start_daemon(env)
    st = X.wait_cycles(env, "j", 1, timeout=60) or {}
    c = env.ctl("resume", "j")
    j = X.wait_cycles(env, "j", st.get("cycles", 0) + 1, timeout=60) or {}
    got = X.linked(sim, tgt_tid, link).get(src[1]["id"], {}).get("jobTitle")
    t.ok(st.get("state") == "quarantined" and c.returncode == 0 and j.get("last_result") == "success" and
         got == "Resumed Title" and job_row(tmp)[0] == 0,
         "resume clears a job disabled after 28 days (status %s) and runs it (exit %d, %s, %r)"
         % (st.get("state"), c.returncode, j.get("last_result"), got), (c.stdout, c.stderr, j))
    ok = t.failed == 0
finally:
    X.stop_daemon(p)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
