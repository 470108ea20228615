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

    # ---- a due retry that fails for another reason (a malformed users/delta page) is
    #      still a failed retry: next_retry moves on to +12 h (the "Retry duration" of
    #      application-provisioning-quarantine-status.md), the reason stays, and the
    #      next plain --once waits instead of retrying at every run
    now = int(time.time() * 1000)
    since = now - 7 * 3600 * 1000
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    db.execute("UPDATE job SET state = 1, state_reason = 'AADSTS7000215', quarantine_since = ?, "
               "next_retry = ?, retry_step = 0 WHERE name = 'j'", (since, since + 6 * 3600 * 1000))
    db.commit()
    db.close()
    fid = sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": "/v1.0/users/delta",
                                              "kind": "malformed", "count": 50})["id"]
    o = env.once()
    r = X.job_row(tmp, "j")
    t.ok(o.returncode != 0 and "the quarantine retry failed" in o.stderr and r["state"] == 1 and
         r["state_reason"] == "AADSTS7000215" and r["quarantine_since"] == since and
         r["next_retry"] == since + 12 * 3600 * 1000 and r["retry_step"] == 1,
         "a due retry failing on a malformed page: still quarantined, next retry at +12 h "
         "(exit %d, store %s)" % (o.returncode, {k: r[k] for k in ("state", "state_reason", "next_retry",
                                                                    "retry_step")}), o.stderr[-1500:])
    seq = sim.last_seq()
    o = env.once()
    hits = [f for f in sim.call("GET", "/_admin/faults")["value"] if f["id"] == fid]
    t.ok(o.returncode == 3 and "next attempt in" in o.stderr and
         not [q for q in sim.requests(seq)["value"] if q["tenant"] == src_tid],
         "the next plain --once waits for that time (exit %d, no request to the source)" % o.returncode,
         (o.stderr[-1500:], hits))
    sim.call("DELETE", "/_admin/faults")
    o = env.once("--job", "j")
    t.ok(o.returncode == 0 and "left quarantine" in o.stderr and X.job_row(tmp, "j")["state"] == 0,
         "the fault gone, --once --job leaves quarantine (exit %d)" % o.returncode, o.stderr[-1500:])

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
