#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Microsoft's escrow rule leaves reference failures out (TAP, against
# graphsim): "Reference failures won't be counted as part of the 40%
# threshold or 40,000 threshold. For example, failure to update a manager"
# (entra-docs application-provisioning-quarantine-status.md, "Escrow
# thresholds"). Every manager reference of a cycle fails, which is more than
# 40 % of its operations: the job is not quarantined, and its users are
# created. When the creates fail too, the same rule does quarantine, with
# Graph's code EncounteredEscrowProportionThreshold.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 9   # user 0 manages users 1..8: 9 creates and 8 manager references


def job_state(tmp):
    r = X.job_row(tmp, "j")
    return (r["state"], r["state_reason"])


t = X.Tap()
tmp = X.tmpdir("escrow-refs")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9a05e0d9, N, 59, with_manager=True)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0, quarantine_min_operations=4,
                quarantine_min_failures=4, quarantine_failure_ratio=0.4, escrow_retry_base="1s")
    env.write_config()
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "PUT", "kind": "status", "status": 400,
                                        "route": "/manager/\\$ref$"})
    o = env.once()
    m = re.search(r"cycle \d+ [^:]*: .*created (\d+), .*failed (\d+)", o.stderr)
    created, failed = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    mgr_fail = len(re.findall(r"manager of user \S+ failed", o.stderr))
    st = job_state(tmp)
    t.ok(created == N and failed == N - 1 and mgr_fail == N - 1 and failed > 0.4 * (created + failed),
         "every manager reference fails: %d of %d operations (> 40 %%)" % (failed, created + failed),
         o.stderr[-2000:])
    t.ok(st[0] == 0 and o.returncode == 1 and len(X.linked(sim, tgt_tid, link)) == N and
         "job j: cycle completed with failures; they are retried on later cycles" in o.stderr,
         "...and the job is not quarantined (store state %s, exit %d); its %d users exist"
         % (st[0], o.returncode, len(X.linked(sim, tgt_tid, link))), o.stderr[-2000:])

    # the same rule on the users themselves: another job whose creates fail
    tmp2 = X.tmpdir("escrow-refs-2")
    env2, s2, t2, link2 = X.source_target(sim, tmp2, 0x9a05e0da, N, 61, names=("s2", "d2"))
    sim.call("POST", "/_admin/faults", {"tenant": t2, "route": "/invitations", "method": "POST",
                                        "kind": "status", "status": 403})
    env2.add_job("j", "s2", "d2", scope="all", deletion_threshold=0, quarantine_min_operations=4,
                 quarantine_min_failures=4, quarantine_failure_ratio=0.4, escrow_retry_base="1s")
    env2.write_config()
    o = env2.once()
    st = job_state(tmp2)
    t.ok(o.returncode == 3 and st == (1, "EncounteredEscrowProportionThreshold"),
         "every create failing quarantines the job with EncounteredEscrowProportionThreshold (exit %d, %s)"
         % (o.returncode, st), o.stderr[-2000:])
    ok = t.failed == 0
    X.cleanup(tmp2, ok)
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
