#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A source tenant's graph_endpoint changed between cycles (TAP, xtsyncd against
# graphsim). The stored delta links are absolute URLs on the old origin
# ("the entire URL, including the encoded token", delta-query-overview.md) and
# the Graph client never sends a token to another origin. The operator expects
# the job to go on: the next cycle forgets the old links and reads users and
# assigned groups in full (a resync), then stores links on the new endpoint.
# The store is made to hold links on https://graph.microsoft.com, as a store
# kept while graph_endpoint had that value would.
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("endpoint")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x6e9d0001, 8, 21, with_manager=False)
    users = [u["id"] for u in X.users_list(sim.users(src_tid))]
    g = sim.call("POST", "/_admin/tenants/%s/groups" % src_tid, {"displayName": "sync"})["id"]
    for uid in users[0:6]:
        sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (src_tid, g), {"id": uid})
    env.add_job("a", "s", "d", scope="assigned", assigned_groups=g, deletion_threshold=0,
                deprovision="disable")
    env.write_config()
    p = env.once()
    t.ok(p.returncode == 0 and len(X.linked(sim, tgt_tid, link)) == 6, "first cycle creates the 6 members",
         (p.returncode, p.stderr[-1200:]))

    # changes made meanwhile: a new member, a renamed user
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (src_tid, g), {"id": users[6]})
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, users[0]), {"jobTitle": "Moved Endpoint"})
    # the store's links as a graph_endpoint of https://graph.microsoft.com left them
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    n = db.execute("UPDATE job SET delta_link = replace(delta_link, ?, 'https://graph.microsoft.com'), "
                   "groups_delta_link = replace(groups_delta_link, ?, 'https://graph.microsoft.com') "
                   "WHERE name = 'a' AND delta_link LIKE ? AND groups_delta_link LIKE ?",
                   (sim.url, sim.url, sim.url + "/%", "%" + sim.url + "/%")).rowcount
    db.commit()
    db.close()
    t.ok(n == 1, "the stored users and groups links were on %s" % sim.url, n)
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0, "the cycle after the change exits 0", (p.returncode, p.stderr[-1500:]))
    t.ok("is a full resync" in p.stderr and "not on source tenant s's graph_endpoint" in p.stderr,
         "the log says why the cycle reads in full", p.stderr[-1500:])
    t.ok(sorted(lk) == sorted(users[0:7]) and lk[users[0]].get("jobTitle") == "Moved Endpoint",
         "the new member is created and the change reaches the target", (sorted(lk), lk.get(users[0])))
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    row = db.execute("SELECT delta_link, groups_delta_link FROM job WHERE name = 'a'").fetchone()
    db.close()
    t.ok(row is not None and row[0] is not None and row[0].startswith(sim.url + "/") and
         "graph.microsoft.com" not in row[0] + (row[1] or "") and sim.url + "/" in (row[1] or ""),
         "the stored links are now on the new endpoint", row)
    p = env.once()
    t.ok(p.returncode == 0 and "full resync" not in p.stderr and "(incremental)" in p.stderr,
         "the next cycle is incremental again", (p.returncode, p.stderr[-1200:]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
