#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A restore (POST /directory/deletedItems/{id}/restore, then a PATCH of the
# changes) against graphsim (TAP). When the PATCH fails, its retry does not
# POST the restore again (the user is no longer in deleted items: 404), it
# sends the PATCH alone and converges. When the target user was restored
# already (as after a crash between our POST and its recording) the POST's
# 404 is followed by a read: the user exists, so it is linked on, and only
# what differs is PATCHed; deleted for good, it is forgotten and created
# again. After `restart`, a restore with nothing to PATCH is still logged
# and counted. Also:
# a manager that has no target user (not assigned) logs a `skipped` line with
# errorCode ReferenceNotYetProvisioned. The restore POST (no body) is sent on
# its own, not in a $batch.
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 6


def target_requests(sim, seq, tid):
    """Counts by route of the target tenant's requests after seq; an
    injected fault counts as "fault"."""
    by = {}
    for r in sim.requests(seq)["value"]:
        if r["tenant"] == tid:
            k = "fault" if r["route"] in (None, "fault") else r["route"]
            by[k] = by.get(k, 0) + 1
    return by


def target_user(sim, tid, uid):
    return sim.call("GET", "/_admin/tenants/%s/users/%s" % (tid, uid))


def problems(sim, src_tid, tgt_tid, link, unassigned):
    """X.sync_problems, but for a job that leaves one user unassigned."""
    return [p for p in X.sync_problems(sim, src_tid, tgt_tid, link) if unassigned not in p]


def lines_of(env, since, sid):
    """sid's provisioning-log lines since, but its deferred manager's."""
    return [e for e in env.provlog()[since:] if e["sourceIdentity"]["id"] == sid and
            e["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode") != "ReferenceNotYetProvisioned"]


def cycle(sim, env, tgt_tid, sid):
    """One --once cycle: (its process, the target's requests by route, sid's
    provisioning-log lines of the cycle)."""
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    return p, target_requests(sim, seq, tgt_tid), lines_of(env, pl0, sid)


def delete_and_restore(sim, env, src_tid, tgt_tid, link, sid, title):
    """Soft-delete sid in the source, sync (the target user is soft-deleted),
    restore it in the source with a new jobTitle; the target user (as linked
    before the deletion) and the deletion run."""
    tu = X.linked(sim, tgt_tid, link)[sid]
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src_tid, sid))
    p = env.once()
    sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (src_tid, sid))
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, sid), {"jobTitle": title})
    return tu, p


t = X.Tap()
tmp = X.tmpdir("restore-retry")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e5f0001, N, 31)
    src = X.users_list(sim.users(src_tid))
    # a tree: everyone reports to one user; that one is not assigned
    boss = next(u for u in src if not u.get("manager"))
    members = [u for u in src if u["id"] != boss["id"]]
    env.add_job("j", "s", "d", scope="assigned", assigned_users=",\n    ".join(u["id"] for u in members),
                deprovision="delete", deletion_threshold=0, escrow_retry_base="1s")
    env.write_config()

    p = env.once()
    pl = env.provlog()
    deferred = [e for e in pl if e["provisioningStatusInfo"]["status"] == "skipped" and
                "no target user yet" in e["provisioningStatusInfo"].get("errorInformation", {}).get("reason", "")]
    codes = {e["provisioningStatusInfo"]["errorInformation"].get("errorCode") for e in deferred}
    t.ok(p.returncode == 0 and len(X.linked(sim, tgt_tid, link)) == len(members) and
         not problems(sim, src_tid, tgt_tid, link, boss["id"]),
         "first sync: the %d assigned users are created" % len(members), (p.returncode, p.stderr[-1500:]))
    reasons = {e["provisioningStatusInfo"]["errorInformation"].get("reason") for e in deferred}
    t.ok(len(deferred) == len(members) and codes == {"ReferenceNotYetProvisioned"} and
         reasons == {"the manager has no target user yet (retried later)"},
         "a manager without a target user: skipped lines with errorCode ReferenceNotYetProvisioned "
         "and a reason that does not repeat it", (len(deferred), codes, reasons))
    # provision on demand of such a user: its only open op is the manager
    # reference, which Microsoft's on-demand view calls an Update
    d = X.start_daemon(env)
    try:
        c = env.ctl("provision", "j", members[3]["id"])
    finally:
        X.stop_daemon(d)
    t.ok(c.returncode == 0 and "Action: Update (manager)" in c.stdout and "Action: Manager" not in c.stdout,
         "provision: a pending manager reference shows as 'Action: Update (manager)'", c.stdout + c.stderr)

    # ================= the restore's PATCH fails once
    victim = members[0]["id"]
    tu, p = delete_and_restore(sim, env, src_tid, tgt_tid, link, victim, "Restored once")
    t.ok(p.returncode == 0 and target_user(sim, tgt_tid, tu["id"]).get("deleted"),
         "deleted in the source: the target user is soft-deleted", (p.returncode, p.stderr[-800:]))
    fid = sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "method": "PATCH", "kind": "status",
                                              "status": 400, "count": 1, "route": "/users/%s$" % tu["id"]})["id"]
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    by = target_requests(sim, seq, tgt_tid)
    now = target_user(sim, tgt_tid, tu["id"])
    fails = [e for e in lines_of(env, pl0, victim) if e["provisioningStatusInfo"]["status"] == "failure"]
    t.ok(by.get("deleteditems.restore", 0) == 1 and by.get("fault", 0) == 1 and len(fails) == 1 and
         not now.get("deleted") and now.get("jobTitle") != "Restored once",
         "restored in the source: the restore POST succeeds, its PATCH fails (400) and is escrowed",
         (by, len(fails), now.get("deleted"), now.get("jobTitle"), p.stderr[-800:]))
    # directory-deleteditems-restore.md: no request body; json-batching.md
    # would want one (empty) in a $batch, so the restore is sent on its own
    rs = [r for r in sim.requests(seq)["value"] if r["route"] == "deleteditems.restore"]
    t.ok(len(rs) == 1 and rs[0]["batch_parent"] is None and rs[0]["status"] == 200,
         "the restore POST is a request of its own, not a $batch sub-request", rs)

    time.sleep(2.5)  # the escrow's back-off: 1 s x 2^1
    p, by, mine = cycle(sim, env, tgt_tid, victim)
    now = target_user(sim, tgt_tid, tu["id"])
    t.ok(by.get("deleteditems.restore", 0) == 0 and by.get("users.patch", 0) == 1,
         "the retry sends no second restore POST, only the PATCH", by)
    t.ok(p.returncode == 0 and "failed 0" in p.stderr and now.get("jobTitle") == "Restored once" and
         X.linked(sim, tgt_tid, link).get(victim, {}).get("id") == tu["id"] and
         [e["provisioningStatusInfo"]["status"] for e in mine] == ["success"] and
         not problems(sim, src_tid, tgt_tid, link, boss["id"]),
         "the retry converges: same target user, linked, no failure",
         (p.returncode, now.get("jobTitle"), [e["provisioningStatusInfo"] for e in mine], p.stderr[-800:]))

    # ================= restored in the target already (as after a crash
    # between our restore POST and its recording): the POST answers 404
    victim = members[1]["id"]
    tu, p = delete_and_restore(sim, env, src_tid, tgt_tid, link, victim, "Restored twice")
    sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (tgt_tid, tu["id"]))
    p, by, mine = cycle(sim, env, tgt_tid, victim)
    now = target_user(sim, tgt_tid, tu["id"])
    props = [(m["displayName"], m.get("newValue")) for e in mine for m in e["modifiedProperties"]]
    t.ok(p.returncode == 0 and "failed 0" in p.stderr and by.get("fault", 0) == 0 and
         by.get("deleteditems.restore", 0) == 1 and by.get("users.get", 0) == 1 and by.get("users.patch", 0) == 1,
         "restored already: the restore POST's 404 is followed by one read and one PATCH, no failure",
         (by, p.stderr[-800:]))
    t.ok(now.get("jobTitle") == "Restored twice" and X.linked(sim, tgt_tid, link).get(victim, {}).get("id") == tu["id"] and
         props == [("jobTitle", "Restored twice")] and not problems(sim, src_tid, tgt_tid, link, boss["id"]),
         "restored already: the same target user stays linked; only the change is written", (props, by))

    # ================= deleted for good in the target: the link is forgotten
    # and the user created again in the same cycle (test_target_gone.py)
    victim = members[2]["id"]
    tu, p = delete_and_restore(sim, env, src_tid, tgt_tid, link, victim, "Gone")
    sim.call("DELETE", "/_admin/tenants/%s/users/%s?hard=1" % (tgt_tid, tu["id"]))
    p, by, mine = cycle(sim, env, tgt_tid, victim)
    again = X.linked(sim, tgt_tid, link).get(victim, {})
    t.ok(by.get("deleteditems.restore", 0) == 1 and by.get("users.get", 0) == 1 and
         by.get("invitations.post", 0) == 1 and p.returncode == 0 and "failed 0" in p.stderr and
         [e["provisioningStatusInfo"]["status"] for e in mine] == ["warning", "success"] and
         mine[0]["provisioningStatusInfo"]["errorInformation"].get("errorCode") == "Request_ResourceNotFound" and
         "is gone; the link is forgotten and a create planned" in p.stderr and
         again.get("id") not in (None, tu["id"]) and again.get("jobTitle") == "Gone",
         "deleted for good: the restore's 404 and the read's 404 forget the link; a warning, then a create",
         (by, [e["provisioningStatusInfo"] for e in mine], p.stderr[-800:]))

    # ================= after `restart` (links kept, what was exported
    # forgotten): the restore's POST succeeds and the read finds every value
    # in place, nothing to PATCH; the restore is still a change, logged
    victim = members[3]["id"]
    tu = X.linked(sim, tgt_tid, link)[victim]
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src_tid, victim))
    p = env.once()
    d = X.start_daemon(env)
    try:
        c = env.ctl("restart", "j")
    finally:
        X.stop_daemon(d)
    sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (src_tid, victim))
    p, by, mine = cycle(sim, env, tgt_tid, victim)
    now = target_user(sim, tgt_tid, tu["id"])
    t.ok(c.returncode == 0 and p.returncode == 0 and by.get("deleteditems.restore", 0) == 1 and
         not now.get("deleted") and [(e["action"], e["provisioningStatusInfo"]["status"]) for e in mine] ==
         [("Update", "success")] and "updated 1" in p.stderr,
         "after restart, a restore that needs no PATCH is logged (Update, success) and counted",
         (c.returncode, by, [(e["action"], e["provisioningStatusInfo"]) for e in mine], p.stderr[-800:]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
