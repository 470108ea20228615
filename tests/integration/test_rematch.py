#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Managers the target already holds are not written again (TAP), against
# graphsim. After `restart` (links kept, exported values cleared) and after a
# lost store (every user matched again by the link attribute and adopted),
# each user's manager is read first (GET users/{id}/manager,
# user-list-manager.md): no PUT manager/$ref for a manager the target holds,
# exactly one for the one changed in the target meanwhile, nothing for a
# manager set in the target of a user that has none in the source (the FAQ:
# a manager removed in the source "isn't updated in the target tenant"; no
# read, no DELETE manager/$ref), no invitation, no
# duplicate. Likewise the attributes after `restart`: each user is read
# (GET users/{id}?$select=..., user-get.md) and only what differs from the
# target is PATCHed: none when nothing changed, one PATCH carrying only the
# attribute an administrator changed in the target meanwhile. A matched user
# gets no PATCH either. What was read is recorded: a later change of the
# user does not send its manager. Users we invite get no manager read (they
# have none).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 20


def target_requests(sim, seq, tid):
    """Counts by route of the target tenant's requests after seq ($batch
    sub-requests are logged under their own routes), and the paths of the
    manager PUTs."""
    by, puts = {}, []
    for r in sim.requests(seq)["value"]:
        if r["tenant"] != tid:
            continue
        by[r["route"]] = by.get(r["route"], 0) + 1
        if r["route"] == "users.manager.put":
            puts.append(r["path"])
    return by, puts


def restart(env):
    """`xtsyncctl restart j` through a running daemon (links kept, exported
    values and delta token forgotten); the reply."""
    d = X.start_daemon(env)
    try:
        X.wait_cycles(env, "j", 1)
        return env.ctl("restart", "j")
    finally:
        X.stop_daemon(d)


def move_one_manager(sim, tgt_tid, tgt, src, with_mgr, k):
    """Give the k-th source user with a manager (not reporting to src[0])
    another manager in the target, as an admin would; its source id."""
    u = [x for x in with_mgr if x["manager"] != src[0]["id"]][k]
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (tgt_tid, tgt[u["id"]]["id"]),
             {"id": tgt[src[0]["id"]]["id"]})
    return u["id"]


t = X.Tap()
tmp = X.tmpdir("rematch")
sim = X.Sim(tmp)
d = None
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0001, N, 23)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    with_mgr = [u for u in src if u.get("manager")]
    t.ok(len(src) == N and len(with_mgr) >= N - 2, "the source: %d users, %d with a manager" % (N, len(with_mgr)))

    # ---- the first sync creates everyone, managers included
    seq = sim.last_seq()
    p = env.once()
    by, _ = target_requests(sim, seq, tgt_tid)
    t.ok(p.returncode == 0 and not X.sync_problems(sim, src_tid, tgt_tid, link) and
         not X.manager_problems(sim, src_tid, tgt_tid, link),
         "first sync: %d users created with their managers" % N, (p.returncode, p.stderr[-1500:]))
    t.ok(by.get("users.manager.put", 0) == len(with_mgr) and by.get("users.manager.get", 0) == 0,
         "first sync: one PUT manager/$ref per user with a manager (%d), no manager read for users it invited"
         % len(with_mgr), by)

    # ---- restart: the daemon keeps the links but forgets what was exported
    # (xts_store_reset_job), so the managers are unknown again
    d = X.start_daemon(env)
    X.wait_cycles(env, "j", 1)
    c = env.ctl("restart", "j")
    t.ok(c.returncode == 0 and "initial cycle" in c.stdout, "restart answers", c.stdout + c.stderr)
    X.stop_daemon(d)
    d = None
    tgt = X.linked(sim, tgt_tid, link)
    moved = move_one_manager(sim, tgt_tid, tgt, src, with_mgr, 0)
    # and a user without a manager in the source gets one in the target: it
    # keeps it (not read, not removed: the FAQ's manager rule)
    stale = next(u for u in src if not u.get("manager"))["id"]
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (tgt_tid, tgt[stale]["id"]),
             {"id": tgt[with_mgr[0]["id"]]["id"]})
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    by, puts = target_requests(sim, seq, tgt_tid)
    dels = [r["path"] for r in sim.requests(seq)["value"] if r["route"] == "users.manager.delete"]
    exports = [st["description"] for e in env.provlog()[pl0:] for st in e["provisioningSteps"]
               if st["name"] == "EntryExport" and not
               any(m["displayName"] == "manager" for m in e["modifiedProperties"])]
    print("# after restart, target requests by route: %s" % sorted(by.items()))
    t.ok(p.returncode == 0 and "(initial)" in p.stderr, "the cycle after restart is initial and succeeds",
         (p.returncode, p.stderr[-1500:]))
    # restart clears every link's exported values, so the plan wants every
    # mapped attribute written; the target holds them all already: each user
    # is read once and nothing is PATCHed (20 PATCH before the read).
    t.ok(by.get("users.patch", 0) == 0 and by.get("users.get", 0) == N,
         "after restart: each user read once (%d GET users/{id}), no PATCH (nothing changed)" % N, by)
    t.ok(not exports, "after restart: users read and left as they were get no provisioning-log line",
         exports[:3])
    t.ok(by.get("invitations.post", 0) == 0 and len(X.users_list(sim.users(tgt_tid))) == N and
         not X.sync_problems(sim, src_tid, tgt_tid, link), "after restart: no invitation, no duplicate target user",
         (by.get("invitations.post"), X.sync_problems(sim, src_tid, tgt_tid, link)))
    t.ok(by.get("users.manager.get", 0) == len(with_mgr),
         "after restart: the manager of each user with one in the source is read once (%d GET manager)"
         % len(with_mgr), by)
    t.ok(len(puts) == 1 and puts[0].endswith("/users/%s/manager/$ref" % tgt[moved]["id"]),
         "after restart: exactly one PUT manager/$ref, for the manager changed in the target", puts)
    t.ok(not dels and X.linked(sim, tgt_tid, link)[stale].get("manager") == tgt[with_mgr[0]["id"]]["id"],
         "after restart: no DELETE manager/$ref; the manager set in the target of a user without one in "
         "the source stays (FAQ)", dels)
    t.ok(not X.manager_problems(sim, src_tid, tgt_tid, link, kept=(stale,)),
         "after restart: every target manager is right", X.manager_problems(sim, src_tid, tgt_tid, link, (stale,)))

    # ---- what was read is recorded: a later change of a user does not send its manager
    other = next(u for u in with_mgr if u["id"] != moved)
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, other["id"]), {"jobTitle": "Rematched"})
    seq = sim.last_seq()
    p = env.once()
    by, puts = target_requests(sim, seq, tgt_tid)
    t.ok(p.returncode == 0 and by.get("users.patch", 0) == 1 and not puts and
         by.get("users.manager.get", 0) == 0 and by.get("users.get", 0) == 0 and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the next cycle: one PATCH for the changed user, neither it nor its manager read", by)

    # ---- restart again; meanwhile an administrator changes one attribute of
    # one target user: one PATCH, carrying only that attribute
    c = restart(env)
    src = X.users_list(sim.users(src_tid))
    tgt = X.linked(sim, tgt_tid, link)
    victim = next(u for u in src if u["id"] != other["id"] and u.get("department"))
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (tgt_tid, tgt[victim["id"]]["id"]),
             {"department": "Changed in the target"})
    pl0 = len(env.provlog())
    seq = sim.last_seq()
    p = env.once()
    by, puts = target_requests(sim, seq, tgt_tid)
    print("# restart, one attribute changed in the target, requests by route: %s" % sorted(by.items()))
    ups = [e for e in env.provlog()[pl0:] if e["action"] == "Update" and not
           any(m["displayName"] == "manager" for m in e["modifiedProperties"])]
    mine = [e for e in ups if e["sourceIdentity"]["id"] == victim["id"]]
    props = [(m["displayName"], m.get("oldValue"), m.get("newValue")) for e in mine for m in e["modifiedProperties"]]
    t.ok(c.returncode == 0 and p.returncode == 0 and by.get("users.patch", 0) == 1 and
         by.get("users.get", 0) == N and not puts and not X.sync_problems(sim, src_tid, tgt_tid, link),
         "restart, one attribute changed in the target: %d users read, exactly one PATCH, it converges" % N,
         (by, puts, p.stderr[-800:]))
    t.ok(len(ups) == 1 and len(mine) == 1 and mine[0]["provisioningStatusInfo"]["status"] == "success" and
         props == [("department", "Changed in the target", victim["department"])],
         "that PATCH carries only the changed attribute; its old value is what the target held", (props, len(ups)))

    # ---- the store lost: every user is matched again (link attribute) and adopted
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(tmp, "xtsync.db" + sfx)):
            os.unlink(os.path.join(tmp, "xtsync.db" + sfx))
    moved = move_one_manager(sim, tgt_tid, tgt, src, with_mgr, 1)
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (tgt_tid, tgt[stale]["id"]),
             {"id": tgt[with_mgr[1]["id"]]["id"]})
    # A dry run first: its plan names the matches, not invitations the cycle
    # will not send (contract: --dry-run "compute the plan, print it").
    seq = sim.last_seq()
    p = env.once("--dry-run")
    by, puts = target_requests(sim, seq, tgt_tid)
    plan = p.stdout.splitlines()
    t.ok(p.returncode == 0 and not [ln for ln in plan if ln.startswith("j: CREATE user")] and
         len([ln for ln in plan if ln.startswith("j: MATCH user") and
              "(Matched by the xtsync link attribute)" in ln]) == N,
         "store lost, --dry-run: the plan has %d MATCH lines and no CREATE" % N, (p.returncode, plan[:6]))
    t.ok(not [r for r in by if r.endswith((".post", ".patch", ".put", ".delete"))] and
         not os.path.exists(os.path.join(tmp, "xtsync.db")),
         "store lost, --dry-run: no write to the target, no store created", by)
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    by, puts = target_requests(sim, seq, tgt_tid)
    dels = [r["path"] for r in sim.requests(seq)["value"] if r["route"] == "users.manager.delete"]
    exports = [st["description"] for e in env.provlog()[pl0:] for st in e["provisioningSteps"]
               if st["name"] == "EntryExport" and not
               any(m["displayName"] == "manager" for m in e["modifiedProperties"])]
    print("# store lost, target requests by route: %s" % sorted(by.items()))
    t.ok(p.returncode == 0 and p.stderr.count("matched target user") == N,
         "with a new store every user matches its target user", (p.returncode, p.stderr[-1500:]))
    t.ok(by.get("invitations.post", 0) == 0 and len(X.users_list(sim.users(tgt_tid))) == N and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "matched: no invitation, no duplicate target user", by)
    t.ok(by.get("users.patch", 0) == 0, "matched: no PATCH (the target users hold the mapped values)", by)
    t.ok(len(exports) == N and
         all(d == "Nothing written: the target user already has these values" for d in exports),
         "matched: each user's log line says nothing was written, not 'Written to the target tenant'",
         exports[:3])
    t.ok(by.get("users.manager.get", 0) == len(with_mgr) and len(puts) == 1 and
         puts[0].endswith("/users/%s/manager/$ref" % tgt[moved]["id"]),
         "matched: the manager of each user with one in the source read once, exactly one PUT manager/$ref "
         "(the one changed in the target)", (by, puts))
    t.ok(not dels and X.linked(sim, tgt_tid, link)[stale].get("manager") == tgt[with_mgr[1]["id"]]["id"],
         "matched: no DELETE manager/$ref; the user without a manager in the source keeps the target's (FAQ)",
         dels)
    t.ok(not X.manager_problems(sim, src_tid, tgt_tid, link, kept=(stale,)), "matched: every target manager is right",
         X.manager_problems(sim, src_tid, tgt_tid, link, (stale,)))

    # ---- a failed read does not lose the write: it falls back to the PUT,
    # or to the PATCH as planned (every mapped attribute) for a user read
    c = restart(env)
    tgt = X.linked(sim, tgt_tid, link)
    victim = [u for u in with_mgr if u["id"] != moved][2]["id"]
    unread = [u for u in with_mgr if u["id"] not in (moved, victim)][3]["id"]
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "GET", "kind": "status", "status": 403,
                                        "route": "/users/%s/manager$" % tgt[victim]["id"]})
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "GET", "kind": "status", "status": 403,
                                        "route": "/users/%s$" % tgt[unread]["id"]})
    pl0 = len(env.provlog())
    seq = sim.last_seq()
    p = env.once()
    sim.call("DELETE", "/_admin/faults")
    by, puts = target_requests(sim, seq, tgt_tid)
    denied = [r for r in sim.requests(seq)["value"] if r["route"] == "fault" and r["status"] == 403 and
              r["path"].endswith("/users/%s/manager" % tgt[victim]["id"])]
    t.ok(c.returncode == 0 and p.returncode == 0 and "failed 0" in p.stderr and len(denied) == 1 and len(puts) == 1 and
         puts[0].endswith("/users/%s/manager/$ref" % tgt[victim]["id"]) and
         not X.manager_problems(sim, src_tid, tgt_tid, link, kept=(stale,)),
         "a manager read that fails (403) falls back to the PUT; the others are not written",
         (by, puts, len(denied), p.stderr[-800:]))
    denied = [r for r in sim.requests(seq)["value"] if r["route"] == "fault" and r["status"] == 403 and
              r["path"].endswith("/users/%s" % tgt[unread]["id"])]
    ups = [e["sourceIdentity"]["id"] for e in env.provlog()[pl0:] if e["action"] == "Update" and
           e["provisioningStatusInfo"]["status"] == "success" and
           any(m["displayName"] == "displayName" for m in e["modifiedProperties"])]
    t.ok(len(denied) == 1 and by.get("users.get", 0) == N - 1 and by.get("users.patch", 0) == 1 and ups == [unread] and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "a user read that fails (403) falls back to the PATCH as planned (every attribute); the others are not written",
         (by, len(denied), ups))

    # ---- a user we created without a jobTitle gets one in the source: the
    # link records what we wrote, so the update is sent without a read
    nid = "7e3a0001-0000-4000-8000-00000000beef"
    sim.call("POST", "/_admin/tenants/%s/users" % src_tid, {
        "id": nid, "displayName": "Plain Member", "userPrincipalName": "plain@s.example",
        "mail": "plain@s.example", "mailNickname": "plain", "accountEnabled": True, "userType": "Member"})
    p = env.once()
    t.ok(p.returncode == 0 and nid in X.linked(sim, tgt_tid, link), "a new user without a jobTitle is created",
         p.stderr[-800:])
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, nid), {"jobTitle": "Newly titled"})
    seq = sim.last_seq()
    p = env.once()
    by, puts = target_requests(sim, seq, tgt_tid)
    t.ok(p.returncode == 0 and by.get("users.patch", 0) == 1 and by.get("users.get", 0) == 0 and
         X.linked(sim, tgt_tid, link)[nid].get("jobTitle") == "Newly titled",
         "an attribute empty at create, set later: one PATCH, no read of the user", by)
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
