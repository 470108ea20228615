#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Engine integration test (TAP), harder cases: kill -9 in the middle of an
# initial sync then convergence without a duplicate; one source to two
# targets; a three-tenant mesh converging with no echo; assigned scope
# through a group, and leaving it. Uses xtsyncd --once and graphsim.
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

T = {n: ("%s-0000-4000-8000-0000000000%02x" % (c * 8, i), "%s-1111-4111-8111-1111111111%02x" % (c * 8, i))
     for i, (n, c) in enumerate([("x", "a"), ("y", "b"), ("z", "c")], 1)}


def no_dups(sim, tid, link):
    users = X.users_list(sim.users(tid))
    links = [u.get(link) for u in users if u.get(link)]
    mails = [u.get("mail") for u in users if u.get("creationType") == "Invitation"]
    return users, len(links) == len(set(links)) and len(mails) == len(set(mails))


t = X.Tap()
tmp = X.tmpdir("engine-topo")
sim = X.Sim(tmp)
ok = False
try:
    # ---- kill -9 in the middle of an initial sync
    env = X.Env(sim, os.path.join(tmp, "k"))
    env.add_tenant("x", *T["x"])
    env.add_tenant("y", *T["y"])
    sim.allow(T["x"][0], T["y"][0])
    sim.call("POST", "/_admin/tenants/%s/seed" % T["x"][0], {"count": 400, "seed": 3, "guest_fraction": 0.0})
    env.add_job("x2y", "x", "y", scope="all", deletion_threshold=0)
    env.write_config()
    seq = sim.last_seq()
    p = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed = False
    for _ in range(600):
        r = sim.requests(seq)["value"]
        if sum(1 for x in r if x["route"] == "invitations.post") >= 20:
            p.send_signal(signal.SIGKILL)
            killed = True
            break
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.wait()
    before = len(X.users_list(sim.users(T["y"][0])))
    t.ok(killed and 0 < before < 400, "xtsyncd killed with SIGKILL mid initial sync (%d of 400 created)" % before)
    codes = [env.once().returncode for _ in range(2)]
    users, clean = no_dups(sim, T["y"][0], X.app_ext(T["y"][1]))
    t.ok(codes[-1] == 0, "after the restart the job converges (exit codes %s)" % codes)
    t.ok(len(users) == 400 and clean, "exactly one target user per source user after kill -9 (%d)" % len(users))

    # ---- 1 -> 2: x also to z
    sim.call("POST", "/_admin/tenants", {"id": T["z"][0], "domain": "z.example",
                                        "apps": [{"client_id": T["z"][1], "secret": "s3cret-value"}],
                                        "extension_properties": [X.app_ext(T["z"][1])]})
    env.tenants["z"] = T["z"]
    sim.allow(T["x"][0], T["z"][0])
    env.add_job("x2z", "x", "z", scope="all", deletion_threshold=0)
    env.write_config()
    p = env.once()
    uy, cy = no_dups(sim, T["y"][0], X.app_ext(T["y"][1]))
    uz, cz = no_dups(sim, T["z"][0], X.app_ext(T["z"][1]))
    t.ok(p.returncode == 0 and len(uz) == 400 and cz and len(uy) == 400 and cy,
         "one source to two targets: both hold exactly the 400 users", (p.returncode, len(uy), len(uz)))
    sim.stop()

    # ---- 3-tenant mesh on a fresh emulator
    sim = X.Sim(os.path.join(tmp, "k"))  # its own port file and log
    env = X.Env(sim, os.path.join(tmp, "m"))
    for n in "xyz":
        env.add_tenant(n, *T[n])
        sim.call("POST", "/_admin/tenants/%s/seed" % T[n][0], {"count": 6, "seed": 5, "prefix": n,
                                                               "guest_fraction": 0.0, "with_manager": False})
    for a in "xyz":
        for b in "xyz":
            if a != b:
                sim.allow(T[a][0], T[b][0])
                env.add_job("%s2%s" % (a, b), a, b, scope="all", deletion_threshold=0)
    env.write_config()
    codes = [env.once().returncode for _ in range(2)]
    sizes = [len(X.users_list(sim.users(T[n][0]))) for n in "xyz"]
    t.ok(codes == [0, 0] and sizes == [18, 18, 18],
         "mesh: every tenant holds its 6 members and the 12 of the others (%s, exit %s)" % (sizes, codes))
    seq = sim.last_seq()
    p = env.once()
    inv = [r for r in sim.requests(seq)["value"] if r["route"] == "invitations.post"]
    t.ok(p.returncode == 0 and not inv, "mesh: a further cycle invites nobody (no echo)", len(inv))

    # ---- assigned scope via a group, then leaving it (deprovision = delete)
    g = sim.call("POST", "/_admin/tenants/%s/groups" % T["x"][0], {"displayName": "sync"})["id"]
    xs = [u for u in X.users_list(sim.users(T["x"][0])) if u.get("creationType") != "Invitation"]
    for u in xs[:3]:
        sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (T["x"][0], g), {"id": u["id"]})
    env2 = X.Env(sim, os.path.join(tmp, "g"))
    env2.tenants = {"x": T["x"], "y": T["y"]}
    env2.add_job("x2y", "x", "y", scope="assigned", assigned_groups=g, deprovision="delete",
                 deletion_threshold=0, link_attribute="extension_%s_groupLink" % T["y"][1].replace("-", ""))
    sim.call("POST", "/_admin/tenants/%s/extensions" % T["y"][0],
             {"name": "extension_%s_groupLink" % T["y"][1].replace("-", "")})
    env2.write_config()
    p = env2.once()
    link = "extension_%s_groupLink" % T["y"][1].replace("-", "")
    linked = [u for u in X.users_list(sim.users(T["y"][0])) if u.get(link)]
    t.ok(p.returncode == 0 and len(linked) == 3, "assigned scope: the 3 group members are linked (%d)" %
         len(linked), p.stderr[-2000:])
    sim.call("DELETE", "/_admin/tenants/%s/groups/%s/members/%s" % (T["x"][0], g, xs[0]["id"]))
    p = env2.once()
    gone = [u for u in X.users_list(sim.users(T["y"][0])) if u.get(link) and u.get("deleted")]
    t.ok(p.returncode == 0 and len(gone) == 1 and gone[0][link].endswith(xs[0]["id"]),
         "leaving the group with deprovision=delete soft-deletes that one target user", p.stderr[-1500:])
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (T["x"][0], g), {"id": xs[0]["id"]})
    p = env2.once()
    back = [u for u in X.users_list(sim.users(T["y"][0])) if u.get(link, "").endswith(xs[0]["id"])]
    t.ok(p.returncode == 0 and len(back) == 1 and not back[0].get("deleted"),
         "returning to scope restores the same target user (not a new one)", [b.get("id") for b in back])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
