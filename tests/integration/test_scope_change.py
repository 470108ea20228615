#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A job's scope or assigned_users changed in the config (TAP, xtsyncd against
# graphsim). Users the source does not change are not in the next users
# delta, so deciding only those would leave a user removed from
# assigned_users enabled and one added to it uncreated. Like Microsoft's
# service ("A new initial cycle is triggered because of a change in attribute
# mappings or scoping filters ... causes all source objects to be evaluated
# again", entra: app-provisioning/how-provisioning-works.md) the next cycle
# reads every user again. The cycle after is incremental.
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("scope-change")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x5c0e0001, 6, 23, with_manager=False)
    u = [x["id"] for x in X.users_list(sim.users(src_tid))]
    g = sim.call("POST", "/_admin/tenants/%s/groups" % src_tid, {"displayName": "one"})["id"]
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (src_tid, g), {"id": u[0]})

    def configure(**kw):
        env.jobs = []
        env.add_job("a", "s", "d", deletion_threshold=0, deprovision="disable", **kw)
        env.write_config()

    def enabled():
        return sorted(k for k, v in X.linked(sim, tgt_tid, link).items() if v.get("accountEnabled"))

    configure(scope="assigned", assigned_groups=g, assigned_users="%s,%s" % (u[2], u[3]))
    p = env.once()
    t.ok(p.returncode == 0 and enabled() == sorted([u[0], u[2], u[3]]),
         "first cycle: the group's member and the two assigned users", (p.returncode, p.stderr[-1200:]))

    configure(scope="assigned", assigned_groups=g, assigned_users="%s,%s" % (u[2], u[4]))
    p = env.once()
    t.ok(p.returncode == 0 and "scope or assigned_users changed; this cycle is a full resync" in p.stderr and
         "(initial)" in p.stderr, "assigned_users changed: a full read, saying why", (p.returncode, p.stderr[-1500:]))
    t.ok(enabled() == sorted([u[0], u[2], u[4]]) and
         X.linked(sim, tgt_tid, link).get(u[3], {}).get("accountEnabled") is False,
         "the user taken out of assigned_users is disabled, the one added is created", enabled())

    configure(scope="all")
    p = env.once()
    t.ok(p.returncode == 0 and enabled() == sorted(u), "scope = all: every user, u3 enabled again",
         (p.returncode, enabled(), p.stderr[-1200:]))

    p = env.once()
    t.ok(p.returncode == 0 and "(incremental)" in p.stderr and "full resync" not in p.stderr,
         "the next cycle is incremental", p.stderr[-800:])

    # a store written before the fingerprint had its scope part: no resync, upgraded
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    db.execute("UPDATE job SET schema_fingerprint = substr(schema_fingerprint, 1, instr(schema_fingerprint, ';') - 1)")
    db.commit()
    old = db.execute("SELECT schema_fingerprint FROM job").fetchone()[0]
    db.close()
    p = env.once()
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    new = db.execute("SELECT schema_fingerprint FROM job").fetchone()[0]
    db.close()
    t.ok(p.returncode == 0 and "(incremental)" in p.stderr and "full resync" not in p.stderr and
         len(old) == 64 and new.startswith(old + ";"),
         "a fingerprint without the scope part (an older store): kept incremental, rewritten", (old, new))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
