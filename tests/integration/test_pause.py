#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# `xtsyncctl pause` survives a restart of the daemon (TAP, against graphsim).
# An operator pauses a job because something is wrong; an upgrade, a reboot
# or `systemctl restart` must not quietly start writing to the target again.
#  - pause, stop the daemon, change a source user, start it: the job is
#    `paused` in status, no cycle runs and nothing is written to the target;
#  - `xtsyncd --once` skips the paused job (exit 0, one line says why) and
#    `--once --job J` runs it, leaving it paused;
#  - resume: the cycle runs at once and applies the change, and a daemon
#    started after that runs the job (the resume is stored too);
#  - a pause or resume the store cannot take (another process holds its write
#    lock past the busy timeout) is refused, and the job stays as it was, so
#    `status` never says what a restarted daemon would not do.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 4


def state(env):
    j = X.job_status(env, "j")
    return (j or {}).get("state"), (j or {}).get("cycles")


t = X.Tap()
tmp = X.tmpdir("pause")
sim = X.Sim(tmp)
ok = False
p = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9a05e001, N, 43)
    env.add_job("j", "s", "d", scope="all", interval="1s")
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    log = os.path.join(tmp, "live.log")

    p = X.start_daemon(env)
    first = X.wait_cycles(env, "j", 1)
    c = env.ctl("pause", "j")
    st = state(env)
    t.ok(first is not None and c.returncode == 0 and st[0] == "paused" and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the first cycle converges, then pause: state %s" % st[0], (c.stdout, c.stderr))
    rc = X.stop_daemon(p)
    p = None

    # ---- a restarted daemon keeps the job paused
    sim.set_user(src_tid, src[0]["id"], {"jobTitle": "Paused Title"})
    seq = sim.last_seq()
    p = X.start_daemon(env)
    time.sleep(4)                       # four intervals
    st = state(env)
    writes = X.target_writes(sim, seq, tgt_tid)
    said = "job j: paused (by xtsyncctl pause" in open(log).read()
    t.ok(rc == 0 and st == ("paused", 0) and not writes and said,
         "after a restart the job is still paused: no cycle in 4 intervals, no write (state %s, cycles %s, %d writes)"
         % (st[0], st[1], len(writes)), writes)
    c = env.ctl("sync", "j")
    t.ok(c.returncode == 1 and "job 'j' is paused (xtsyncctl pause); `xtsyncctl resume` runs it again" in c.stderr,
         "sync of the job paused before the restart is refused (exit %d)" % c.returncode, c.stderr)
    X.stop_daemon(p)
    p = None

    # ---- --once skips it; --once --job runs it and keeps the pause
    seq = sim.last_seq()
    o = env.once()
    t.ok(o.returncode == 0 and "paused, so --once skips it" in o.stderr and not X.target_writes(sim, seq, tgt_tid),
         "--once skips the paused job: exit %d, no write" % o.returncode, o.stderr[-1500:])
    o = env.once("--job", "j")
    writes = X.target_writes(sim, seq, tgt_tid)
    got = X.linked(sim, tgt_tid, link).get(src[0]["id"], {}).get("jobTitle")
    t.ok(o.returncode == 0 and "--job names it" in o.stderr and got == "Paused Title" and len(writes) >= 1,
         "--once --job j runs it: exit %d, the change applied (%r, %d writes)" % (o.returncode, got, len(writes)),
         o.stderr[-1500:])

    # ---- still paused after that; resume runs it now and is stored
    sim.set_user(src_tid, src[1]["id"], {"jobTitle": "Resumed Title"})
    p = X.start_daemon(env)
    st = state(env)
    c = env.ctl("resume", "j")
    done = X.wait_cycles(env, "j", 1, timeout=60)
    t.ok(st[0] == "paused" and c.returncode == 0 and done is not None and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "--once --job left it paused (%s); resume runs a cycle that applies the change" % st[0],
         (c.stderr, X.sync_problems(sim, src_tid, tgt_tid, link)))
    X.stop_daemon(p)
    p = X.start_daemon(env)
    again = X.wait_cycles(env, "j", 1, timeout=60)
    t.ok(again is not None and again.get("state") != "paused",
         "a daemon started after resume runs the job (state %s)" % (again or {}).get("state"))

    # ---- a pause or resume the store refuses is refused, and changes nothing
    db = X.lock_store(tmp)
    c = env.ctl("pause", "j")
    db.rollback()
    db.close()
    st = state(env)
    refused = "job 'j': refused, nothing changed"
    t.ok(c.returncode == 1 and refused in c.stderr and "paused" not in c.stdout and st[0] != "paused" and
         "pause refused: the store did not take it" in open(log).read(),
         "pause is refused while the store is locked: exit %d, state %s" % (c.returncode, st[0]),
         (c.stdout, c.stderr))
    c = env.ctl("pause", "j")
    st = state(env)
    db = X.lock_store(tmp)
    r = env.ctl("resume", "j")
    db.rollback()
    db.close()
    st2 = state(env)
    t.ok(c.returncode == 0 and st[0] == "paused" and r.returncode == 1 and refused in r.stderr and
         st2[0] == "paused",
         "with the lock gone pause works (%s); a resume the store refuses leaves it paused (exit %d, state %s)"
         % (st[0], r.returncode, st2[0]), (c.stderr, r.stdout, r.stderr))
    X.stop_daemon(p)
    p = X.start_daemon(env)
    time.sleep(2)
    st = state(env)
    t.ok(st == ("paused", 0), "a daemon restarted after the refused resume keeps the job paused (%s, %s cycles)"
         % st)
    ok = t.failed == 0
finally:
    X.stop_daemon(p)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
