#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# `xtsyncctl provision JOB USER` of a user whose last write failed and waits
# out its escrow back-off (TAP, xtsyncd against graphsim). On demand means
# now: Microsoft's provision on demand (app-provisioning/provision-on-demand.md)
# runs the user's export at once; the back-off paces the automatic retries of
# the cycles, not the operator. So the failed update is sent in that run and
# the reply says it was written, not "nothing was written".
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("provision-escrow")
sim = X.Sim(tmp)
ok = False
d = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x9e0e5c01, 3, 41, with_manager=False)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0, escrow_retry_base="1h")
    env.write_config()
    u = X.users_list(sim.users(src_tid))[0]["id"]

    o = env.once()
    tu = X.linked(sim, tgt_tid, link)[u]["id"]
    t.ok(o.returncode == 0 and not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the first cycle creates the users", o.stderr[-1500:])

    # the update's PATCH fails once (400): escrowed, next attempt in an hour or more
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u), {"jobTitle": "On Demand"})
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "PATCH", "kind": "status", "status": 400,
                                        "count": 1, "route": "/users/%s$" % tu})
    o = env.once()
    r = X.job_row(tmp, "j")
    t.ok(o.returncode != 0 and "failed 1" in o.stderr and
         X.linked(sim, tgt_tid, link)[u].get("jobTitle") != "On Demand",
         "the update fails and is escrowed (exit %d)" % o.returncode, (r, o.stderr[-1500:]))
    sim.call("DELETE", "/_admin/faults")

    # the daemon's own cycle leaves it to its back-off; provision writes it now
    d = X.start_daemon(env)
    X.wait_cycles(env, "j", 1, timeout=60)
    t.ok(X.linked(sim, tgt_tid, link)[u].get("jobTitle") != "On Demand",
         "a scheduled cycle does not retry it before its back-off ends")
    seq = sim.last_seq()
    c = env.ctl("provision", "j", u)
    patches = [q for q in sim.requests(seq)["value"] if q["tenant"] == tgt_tid and q["method"] == "PATCH"
               and q["path"].endswith(tu)]
    t.ok(c.returncode == 0 and "updated 1" in c.stdout and "nothing was written" not in c.stdout and
         len(patches) == 1 and X.linked(sim, tgt_tid, link)[u].get("jobTitle") == "On Demand",
         "provision sends the escrowed update now and says it wrote it (%d PATCH)" % len(patches),
         c.stdout + c.stderr)
    seq = sim.last_seq()
    c = env.ctl("provision", "j", u)
    t.ok(c.returncode == 0 and "nothing was written" in c.stdout and
         not [q for q in sim.requests(seq)["value"] if q["tenant"] == tgt_tid and q["method"] == "PATCH"],
         "a second provision finds nothing left to write", c.stdout + c.stderr)
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
