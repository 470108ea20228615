#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A job's target, then its source, changed in the config (TAP, xtsyncd against
# graphsim). The job's links (source id -> target id), shadow state and delta
# links name nothing in the new tenants. Before, a reload that moved the job
# to another target left it incremental: only users that changed afterwards
# reached the new target, while status said success; a new source failed
# every cycle on the old delta token. The job now starts over, as a new job
# would: an initial cycle that creates (or matches) every in-scope user in
# the new target, and nothing is removed from the old one.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("tenant-change")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7c4a0001, 12, 17, with_manager=False)
    e_tid, e_cid = X.guid(0xb3, 0x7c4a0001), X.guid(0xc3, 0x7c4a0001)
    s2_tid, s2_cid = X.guid(0xb4, 0x7c4a0001), X.guid(0xc4, 0x7c4a0001)
    env.add_tenant("e", e_tid, e_cid)
    env.add_tenant("s2", s2_tid, s2_cid)
    sim.allow(src_tid, e_tid)
    sim.allow(s2_tid, e_tid)
    sim.call("POST", "/_admin/tenants/%s/seed" % s2_tid, {"count": 5, "seed": 18, "prefix": "two",
                                                         "guest_fraction": 0.0, "disabled_fraction": 0.0,
                                                         "with_manager": False})
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    d = X.start_daemon(env)
    try:
        X.poll(lambda: "success" in env.ctl("status").stdout, timeout=60)
        t.ok(len(X.linked(sim, tgt_tid, link)) == 12, "the first target gets the 12 users",
             env.ctl("status").stdout)
        # the target changes by a reload
        env.jobs[0] = ("j", "s", "e", env.jobs[0][3])
        env.write_config()
        rl = env.ctl("reload")
        sy = env.ctl("sync", "j")
        link_e = X.app_ext(e_cid)
        got = X.poll(lambda: len(X.linked(sim, e_tid, link_e)) >= 12, timeout=60)
        X.poll(lambda: " running " not in env.ctl("status").stdout, timeout=60)
        st = env.ctl("status")
    finally:
        rc = X.stop_daemon(d)
    with open(os.path.join(tmp, "live.log")) as f:
        live = f.read()
    t.ok(rl.returncode == 0 and sy.returncode == 0 and got and len(X.linked(sim, e_tid, link_e)) == 12 and
         "success" in st.stdout,
         "target changed by a reload: the next cycle creates all 12 users in the new target (%d)" %
         len(X.linked(sim, e_tid, link_e)), (rl.stdout, sy.stdout, st.stdout, live[-1500:]))
    t.ok(len(X.linked(sim, tgt_tid, link)) == 12 and rc == 0,
         "nothing is removed from the old target; the daemon stops cleanly", (rc, len(X.linked(sim, tgt_tid, link))))
    t.ok("the source or target tenant changed; what the job knew of the old tenants is forgotten" in live and
         "this cycle is initial" in live, "a warning says what happened", live[-1500:])
    good, bad = X.check_converged(sim, src_tid, e_tid, link_e)
    t.ok(good, "the new target converged (one user per source user, attributes, no duplicate)", bad)

    # the source changes (--once: the same check at the start of a cycle);
    # a dry run first plans what the cycle will do: the new source's users,
    # nothing for the old source's (forgotten, not deprovisioned)
    env.jobs[0] = ("j", "s2", "e", env.jobs[0][3])
    env.write_config()
    dr = env.once("--dry-run")
    plan = dr.stdout.splitlines()
    t.ok(dr.returncode == 0 and len([ln for ln in plan if " CREATE user " in ln]) == 5 and
         not [ln for ln in plan if '"accountEnabled":false' in ln or " DELETE " in ln],
         "a dry run plans the same: 5 creates, no disable or delete of the old source's users",
         "\n".join(plan)[-1500:])
    p = env.once()
    two = [u for u in X.linked(sim, e_tid, link_e).values() if u[link_e].startswith(s2_tid + ":")]
    t.ok(p.returncode == 0 and "Invalid syncToken" not in p.stderr and len(two) == 5,
         "source changed: no failure on the old delta token, the 5 users of the new source are created (%d)" %
         len(two), p.stderr[-1500:])
    p = env.once()
    t.ok(p.returncode == 0 and "forgotten" not in p.stderr and "(incremental)" in p.stderr,
         "the cycle after it is incremental again", p.stderr[-1200:])
    # the same tenant written in capitals is the same tenant
    with open(env.conf) as f:
        text = f.read()
    with open(env.conf, "w") as f:
        f.write(text.replace("tenant_id = %s" % e_tid, "tenant_id = %s" % e_tid.upper()))
    p = env.once()
    t.ok(p.returncode == 0 and "forgotten" not in p.stderr and "(incremental)" in p.stderr,
         "a tenant_id written in capitals changes nothing", p.stderr[-1200:])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
