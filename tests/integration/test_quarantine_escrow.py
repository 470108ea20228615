#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Leaving a quarantine for failed writes (EncounteredEscrowProportionThreshold)
# retries those writes (TAP, xtsyncd against graphsim). how-provisioning-works.md:
# "The provisioning job exits quarantine after all of the offending errors are
# fixed and the next sync cycle starts." The offending errors are the failed
# writes, so the retry (--once --job, `sync`, `resume`, or the scheduled one)
# sends them in that cycle, whatever their escrow back-off; left to the
# back-off (an hour here) the retry wrote nothing, said "success" and left
# quarantine while nobody had been created.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 6

t = X.Tap()
tmp = X.tmpdir("quarantine-escrow")
sim = X.Sim(tmp)
ok = False
d = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9e5c0e01, N, 47, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0, escrow_retry_base="1h",
                quarantine_min_operations=4, quarantine_min_failures=4, quarantine_failure_ratio=0.4)
    env.write_config()

    def invitations_fail():
        sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": "/invitations", "method": "POST",
                                            "kind": "status", "status": 403})

    invitations_fail()
    o = env.once()
    r = X.job_row(tmp, "j")
    t.ok(o.returncode == 3 and r["state"] == 1 and r["state_reason"] == "EncounteredEscrowProportionThreshold" and
         not X.linked(sim, tgt_tid, link),
         "every invitation refused: quarantined, nobody created (exit %d, %s)" % (o.returncode, r["state_reason"]),
         o.stderr[-1500:])

    # the cause is fixed; --once --job retries now, and the retry sends the failed creates
    sim.call("DELETE", "/_admin/faults")
    o = env.once("--job", "j")
    r = X.job_row(tmp, "j")
    t.ok(o.returncode == 0 and "failed write(s) are retried in this cycle" in o.stderr and
         len(X.linked(sim, tgt_tid, link)) == N and r["state"] == 0 and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "--once --job: the escrowed creates are sent in the retry, and it leaves quarantine with %d of %d "
         "users (exit %d)" % (len(X.linked(sim, tgt_tid, link)), N, o.returncode), o.stderr[-1500:])

    # again, through the daemon: `sync` clears the quarantine and its cycle sends them
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, {"count": N, "seed": 48, "prefix": "b",
                                                          "guest_fraction": 0.0, "disabled_fraction": 0.0,
                                                          "with_manager": False})
    invitations_fail()
    o = env.once()
    t.ok(o.returncode == 3 and X.job_row(tmp, "j")["state"] == 1, "new users, invitations refused: quarantined "
         "again (exit %d)" % o.returncode, o.stderr[-1500:])
    sim.call("DELETE", "/_admin/faults")
    d = X.start_daemon(env)
    st = X.wait_cycles(env, "j", 1, timeout=60) or {}
    n = st.get("cycles", 0)
    c = env.ctl("sync", "j")
    j = X.wait_cycles(env, "j", n + 1, timeout=60) or {}
    t.ok(st.get("state") == "quarantined" and "quarantine cleared; cycle started" in c.stdout and
         j.get("last_result") == "success" and j.get("state") == "idle" and
         len(X.linked(sim, tgt_tid, link)) == 2 * N and not X.sync_problems(sim, src_tid, tgt_tid, link),
         "sync: its cycle sends the escrowed creates (%d of %d users, %s)"
         % (len(X.linked(sim, tgt_tid, link)), 2 * N, j.get("last_result")), (c.stdout, j))
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
