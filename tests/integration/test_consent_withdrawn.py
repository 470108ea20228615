#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A target administrator turns off user sync while xtsyncd runs (TAP, against
# graphsim). Graph's crossTenantUserSyncInbound (microsoft-graph-docs-contrib
# api-reference/v1.0/resources/crosstenantusersyncinbound.md): isSyncAllowed
# "false causes any current user synchronization from the source tenant to
# the target tenant to stop." Graph itself would still accept the app's
# writes, so the daemon checks the policies at every cycle, not only at its
# first: the next cycle writes nothing, fails with
# AzureDirectoryB2BManagementPolicyCheckFailure and quarantines the job.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("consent-withdrawn")
sim = X.Sim(tmp)
ok = False
d = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0xc0de0001, 4, 61)
    env.add_job("j", "s", "d", scope="all", interval="1s", deletion_threshold=0)
    env.write_config()
    d = X.start_daemon(env)
    st = X.wait_cycles(env, "j", 2)
    t.ok(st is not None and st.get("state") == "idle" and len(X.linked(sim, tgt_tid, link)) == 4,
         "the daemon syncs the 4 users", st)

    sim.call("PUT", "/_admin/tenants/%s/partners/%s" % (tgt_tid, src_tid), {"isSyncAllowed": False})
    u = X.users_list(sim.users(src_tid))[0]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]), {"jobTitle": "After consent ended"})
    seq = sim.last_seq()
    X.poll(lambda: (X.job_status(env, "j") or {}).get("state") == "quarantined", timeout=30)
    st = X.job_status(env, "j")
    writes = X.target_writes(sim, seq, tgt_tid)
    log = open(os.path.join(tmp, "live.log")).read()
    t.ok(st is not None and st.get("state") == "quarantined" and not writes and
         "AzureDirectoryB2BManagementPolicyCheckFailure" in log,
         "isSyncAllowed turned off: the next cycle writes nothing and quarantines the job with "
         "AzureDirectoryB2BManagementPolicyCheckFailure", (st, [w["path"] for w in writes], log[-1500:]))
    t.ok(X.linked(sim, tgt_tid, link)[u["id"]].get("jobTitle") != "After consent ended",
         "the source's change did not reach the target")
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
