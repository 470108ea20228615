#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Engine integration test (TAP), xtsyncd --once against graphsim: source
# soft and hard deletes under deprovision = disable, delete and none; a
# custom schema file (scoping filter, changed mapping; editing it makes the
# next run an initial cycle); two sources into one target; a failed source
# read and an empty full read never become deletions; 410 Gone from the
# users delta in the middle of an incremental round restarts with a full
# read and converges without deleting anyone.
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

TEN = {}


def tenant(env, name, k, ext_for=()):
    tid, cid = X.guid(0xa0 + k, 0xdead0000 + k), X.guid(0xc0 + k, 0xc11e0000 + k)
    env.add_tenant(name, tid, cid, ext_for)
    TEN[name] = (tid, cid)
    return tid


def users(sim, name):
    return X.users_list(sim.users(TEN[name][0]))


def linked(sim, name):
    return X.linked(sim, TEN[name][0], X.app_ext(TEN[name][1]))


def seed(sim, name, n, s):
    sim.call("POST", "/_admin/tenants/%s/seed" % TEN[name][0], {"count": n, "seed": s, "guest_fraction": 0.0,
                                                               "disabled_fraction": 0.0, "with_manager": False})
    return users(sim, name)


def writes(reqs, tid=None):
    return [r for r in reqs if r["method"] != "GET" and r["route"] not in ("token", "batch") and
            (tid is None or r["tenant"] == tid)]


def job_lines(pl, job, since=0):
    return [e for e in pl[since:] if e.get("jobId") == job]


t = X.Tap()
tmp = X.tmpdir("engine-more2")
sim = X.Sim(tmp)
ok = False
try:
    env = X.Env(sim, tmp)
    tenant(env, "s", 1)
    for i, n in enumerate(("ddis", "ddel", "dnone", "tsch", "t21", "t410"), 2):
        tenant(env, n, i)
    tenant(env, "x1", 9)
    tenant(env, "x2", 10)
    tenant(env, "s410", 11)
    tenant(env, "empty", 12)
    for s, tg in (("s", "ddis"), ("s", "ddel"), ("s", "dnone"), ("s", "tsch"), ("x1", "t21"), ("x2", "t21"),
                  ("s410", "t410"), ("empty", "tsch")):
        sim.allow(TEN[s][0], TEN[tg][0])
    src = seed(sim, "s", 12, 5)
    depts = sorted({u["department"] for u in src})
    want_dept = max(depts, key=lambda d: sum(1 for u in src if u["department"] == d))
    schema = json.load(open(os.path.join(X.SRC, "schema/cross-tenant-schema.json")))
    om = schema["synchronizationRules"][0]["objectMappings"][0]
    om["scope"] = {"groups": [{"name": "one department", "clauses": [{
        "operatorName": "EQUALS", "sourceOperandName": "department", "targetOperand": {"values": [want_dept]}}]}]}
    for am in om["attributeMappings"]:
        if am["targetAttributeName"] == "jobTitle":
            am["source"] = {"expression": 'Join(" / ", [jobTitle], [department])', "name": "Join",
                            "parameters": [], "type": "Function"}
    schema_path = os.path.join(tmp, "schema.json")
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    env.add_job("dis", "s", "ddis", scope="all", deprovision="disable", deletion_threshold=0)
    env.add_job("del", "s", "ddel", scope="all", deprovision="delete", deletion_threshold=0)
    env.add_job("none", "s", "dnone", scope="all", deprovision="none", deletion_threshold=0)
    env.add_job("sch", "s", "tsch", scope="all", schema=schema_path, deletion_threshold=0)
    env.add_job("x1", "x1", "t21", scope="all", deletion_threshold=0)
    env.add_job("x2", "x2", "t21", scope="all", deletion_threshold=0)
    env.add_job("g410", "s410", "t410", scope="all", deletion_threshold=0)
    env.write_config()

    # ================= custom schema (before any deletion in s)
    p = env.once("--job", "sch")
    lk = linked(sim, "tsch")
    inscope = {u["id"] for u in src if u["department"] == want_dept}
    t.ok(p.returncode == 0 and set(lk) == inscope and 0 < len(inscope) < len(src),
         "custom schema: only the %d users of %s are synced (of %d)" % (len(inscope), want_dept, len(src)),
         (p.returncode, len(lk), p.stderr[-1500:]))
    u = next(x for x in src if x["id"] in inscope)
    t.ok(lk[u["id"]].get("jobTitle") == "%s / %s" % (u["jobTitle"], u["department"]),
         "the custom jobTitle mapping is applied", lk[u["id"]].get("jobTitle"))
    for am in om["attributeMappings"]:
        if am["targetAttributeName"] == "jobTitle":
            am["source"]["expression"] = 'Join(" | ", [department], [jobTitle])'
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    p = env.once("--job", "sch")
    lk = linked(sim, "tsch")
    t.ok(p.returncode == 0 and "schema changed; this cycle is a full resync" in p.stderr and
         "(initial)" in p.stderr, "editing the schema file makes the next run an initial cycle", p.stderr[-1500:])
    t.ok(set(lk) == inscope and all(lk[i].get("jobTitle") == "%s | %s" % (
        next(x for x in src if x["id"] == i)["department"], next(x for x in src if x["id"] == i)["jobTitle"])
        for i in inscope), "the changed mapping reached every in-scope user, no one else was created",
        sorted(v.get("jobTitle") for v in lk.values()))

    # ================= empty full read after a full sync: no deletions
    # The schema is edited, so the run is an initial cycle, and the source
    # answers it with nobody (a glitch: graphsim's empty_value fault).
    pl0 = len(env.provlog())
    om["attributeMappings"][0]["flowBehavior"] = "FlowAlways"  # any change: a new fingerprint
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    fid = sim.call("POST", "/_admin/faults", {"tenant": TEN["s"][0], "route": "/users/delta",
                                              "kind": "empty_value"})["id"]
    seq = sim.last_seq()
    p = env.once("--job", "sch")
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    reqs = sim.requests(seq)["value"]
    t.ok(p.returncode != 0 and "returned no user" in p.stderr and "not sweeping (no deletions)" in p.stderr,
         "an empty full read: the cycle fails with a clear log line (rc %d)" % p.returncode, p.stderr[-1500:])
    t.ok(not writes(reqs, TEN["tsch"][0]) and not [e for e in job_lines(env.provlog(), "sch", pl0)
                                                    if e["action"] in ("Disable", "Delete", "StagedDelete")],
         "the empty read disabled and deleted no one", [(r["method"], r["path"]) for r in writes(reqs)][:5])
    # The job's source pointed at an (empty) tenant by mistake: the job starts
    # over for it (the old tenants' links are forgotten); nothing is removed
    # from the target.
    pl0 = len(env.provlog())
    env.jobs = [(n, ("empty" if n == "sch" else s), tg, kw) for n, s, tg, kw in env.jobs]
    env.write_config()
    seq = sim.last_seq()
    p = env.once("--job", "sch")
    reqs = sim.requests(seq)["value"]
    t.ok("the source or target tenant changed" in p.stderr and not writes(reqs, TEN["tsch"][0]) and
         not [e for e in job_lines(env.provlog(), "sch", pl0) if e["action"] in ("Disable", "Delete", "StagedDelete")],
         "the source switched to an empty tenant: the job starts over, nobody in the target is disabled or deleted",
         p.stderr[-1500:])
    env.jobs = [(n, ("s" if n == "sch" else s), tg, kw) for n, s, tg, kw in env.jobs]
    env.write_config()

    # ================= deprovision modes: soft and hard delete in the source
    p = env.once("--job", "dis")
    p2 = env.once("--job", "del")
    p3 = env.once("--job", "none")
    t.ok(p.returncode == p2.returncode == p3.returncode == 0 and
         len(linked(sim, "ddis")) == len(linked(sim, "ddel")) == len(linked(sim, "dnone")) == len(src),
         "three jobs (disable, delete, none) synced all %d users" % len(src),
         (p.returncode, p2.returncode, p3.returncode, p.stderr[-800:]))

    # ---- failed read (incremental) never becomes deletions
    soft, hard = src[0]["id"], src[1]["id"]
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (TEN["s"][0], soft))
    sim.call("DELETE", "/_admin/tenants/%s/users/%s?hard=1" % (TEN["s"][0], hard))
    fid = sim.call("POST", "/_admin/faults", {"tenant": TEN["s"][0], "route": "/users/delta", "kind": "status",
                                              "status": 400})["id"]
    pl0 = len(env.provlog())
    seq = sim.last_seq()
    p = env.once("--job", "dis")
    reqs = sim.requests(seq)["value"]
    t.ok(p.returncode == 1 and "reading source users failed" in p.stderr and "no sweep" in p.stderr,
         "a failing source read: the cycle fails with a clear log line", p.stderr[-1500:])
    t.ok(not writes(reqs, TEN["ddis"][0]) and not job_lines(env.provlog(), "dis", pl0),
         "a failing source read disabled no one", [(r["method"], r["path"]) for r in writes(reqs)][:5])
    sim.call("DELETE", "/_admin/faults/%s" % fid)

    rc = [env.once("--job", j).returncode for j in ("dis", "del", "none")]
    t.ok(rc == [0, 0, 0], "the deletion cycles exit 0 (%s)" % rc)
    ld, ll, ln = linked(sim, "ddis"), linked(sim, "ddel"), linked(sim, "dnone")
    t.ok(all(ld[i].get("accountEnabled") is False and not ld[i].get("deleted") for i in (soft, hard)) and
         all(ld[u["id"]].get("accountEnabled") is not False for u in src[2:]),
         "deprovision=disable: soft and hard deleted source users are disabled, not deleted; others untouched")
    t.ok(all(ll[i].get("deleted") is True for i in (soft, hard)) and
         not any(ll[u["id"]].get("deleted") for u in src[2:]),
         "deprovision=delete: both are soft-deleted in the target; others untouched")
    t.ok(all(ln[i].get("accountEnabled") is not False and not ln[i].get("deleted") for i in (soft, hard)),
         "deprovision=none: the target users are kept as they are")
    pl = env.provlog()
    acts = {j: sorted(e["action"] for e in pl if e.get("jobId") == j and
                      e.get("sourceIdentity", {}).get("id") in (soft, hard) and e["action"] != "Create")
            for j in ("dis", "del", "none")}
    t.ok(acts["dis"] == ["Disable", "Disable"] and acts["del"] == ["Delete", "Delete"] and
         all(a == "Skip" for a in acts["none"]) and len(acts["none"]) == 2,
         "provisioning log: Disable / Delete / Skip per mode", acts)
    codes = [e["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode") for e in pl
             if e.get("jobId") == "none" and e["action"] == "Skip"]
    t.ok(codes and all(c == "SkipOutOfScopeDeletions" for c in codes),
         "deprovision=none: Skip lines carry errorInformation.errorCode", codes)
    why = [e["provisioningStatusInfo"].get("errorInformation", {}).get("reason") for e in pl
           if e.get("jobId") == "none" and e["action"] == "Skip"]
    t.ok(why == ["deleted in the source tenant; deprovision = none keeps the target user"] * 2,
         "deprovision=none: the reason says the users were deleted in the source (not that they left scope)", why)
    # a soft-deleted source user restored within 30 days: the target is restored, not recreated
    before = len(users(sim, "ddel"))
    sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (TEN["s"][0], soft))
    p = env.once("--job", "del")
    ll2 = linked(sim, "ddel")
    t.ok(p.returncode == 0 and not ll2[soft].get("deleted") and ll2[soft]["id"] == ll[soft]["id"] and
         len(users(sim, "ddel")) == before, "restored in the source: the same target user is restored",
         (p.returncode, ll2[soft].get("deleted"), p.stderr[-800:]))

    # ================= 2 -> 1: two sources into one target
    a1 = seed(sim, "x1", 6, 3)
    a2 = seed(sim, "x2", 6, 3)  # same seed: same names and employee ids in both sources
    p = env.once("--job", "x1")
    p2 = env.once("--job", "x2")
    tl = X.app_ext(TEN["t21"][1])
    tu = [u for u in users(sim, "t21") if u.get(tl)]
    by = {}
    for u in tu:
        by.setdefault(u[tl].split(":")[0], set()).add(u[tl].split(":")[1])
    t.ok(p.returncode == 0 and p2.returncode == 0 and len(tu) == 12 and
         by.get(TEN["x1"][0]) == {u["id"] for u in a1} and by.get(TEN["x2"][0]) == {u["id"] for u in a2},
         "two sources into one target: 12 users, each linked to its own source", (len(tu), p2.stderr[-800:]))
    mails = [u.get("mail") for u in tu]
    emp = sorted(u.get("employeeId") for u in tu)
    t.ok(len(set(mails)) == 12 and emp == sorted(u["employeeId"] for u in a1 + a2) and len(set(emp)) == 6,
         "no clash: users with the same employeeId from both sources stay two users", emp)
    seq = sim.last_seq()
    p = env.once("--job", "x1")
    p2 = env.once("--job", "x2")
    t.ok(p.returncode == p2.returncode == 0 and not writes(sim.requests(seq)["value"]),
         "a second run of both jobs writes nothing (no ping-pong over the shared target)")

    # ================= 410 Gone in the middle of an incremental round
    s4 = seed(sim, "s410", 10, 8)
    p = env.once("--job", "g410")
    t.ok(p.returncode == 0 and len(linked(sim, "t410")) == 10, "410 job: initial sync", p.stderr[-800:])
    for i, u in enumerate(s4[:8]):
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (TEN["s410"][0], u["id"]), {"jobTitle": "T410-%d" % i})
    sim.call("POST", "/_admin/settings", {"page_size": 3})
    # Every users/delta request of this source waits 3 s before it is served:
    # once the round's first page is back, the delta is invalidated while the
    # request for the second page is still waiting, so that page gets 410.
    sim.call("POST", "/_admin/faults", {"tenant": TEN["s410"][0], "route": "/users/delta", "kind": "stall_before",
                                        "seconds": 3})
    pl0 = len(env.provlog())
    seq = sim.last_seq()
    proc = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground",
                             "--job", "g410"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_page():
        return [r for r in sim.requests(seq)["value"] if r["route"] == "users.delta" and r["status"] == 200]
    got = X.poll(first_page, timeout=120, step=0.02)
    sim.call("POST", "/_admin/tenants/%s/invalidate-delta" % TEN["s410"][0])
    sim.call("DELETE", "/_admin/faults")
    out, err = proc.communicate(timeout=240)
    with open(os.path.join(tmp, "daemon.log"), "a") as f:
        f.write("=== g410 410 -> %d\n%s\n" % (proc.returncode, err))
    reqs = sim.requests(seq)["value"]
    st = [r["status"] for r in reqs if r["route"] == "users.delta"]
    t.ok(got and 410 in st and st.index(410) > 0 and st[0] == 200 and st[st.index(410) + 1:].count(200) >= 4,
         "the delta round got 410 on its second page, then a full read of 4 pages followed %s" % st)
    t.ok(proc.returncode == 0 and "no longer valid" in err and "full resync" in err,
         "the engine restarts with a full read and the cycle succeeds", err[-1500:])
    lk = linked(sim, "t410")
    t.ok(all(lk[u["id"]].get("jobTitle") == "T410-%d" % i for i, u in enumerate(s4[:8])),
         "every change of the interrupted round reached the target")
    t.ok(len(lk) == 10 and all(v.get("accountEnabled") is not False and not v.get("deleted") for v in lk.values())
         and not [e for e in job_lines(env.provlog(), "g410", pl0) if e["action"] in ("Disable", "Delete",
                                                                                      "StagedDelete", "Create")],
         "no unchanged user was disabled, deleted or recreated")
    seq = sim.last_seq()
    p = env.once("--job", "g410")
    t.ok(p.returncode == 0 and not writes(sim.requests(seq)["value"]) and "(incremental)" in p.stderr,
         "the next run is incremental and writes nothing (converged)", p.stderr[-800:])

    # ================= more than 50 assigned groups (groups/delta takes 50 ids a walk)
    tenant(env, "sg", 13)
    tenant(env, "tg", 14)
    sim.allow(TEN["sg"][0], TEN["tg"][0])
    su = seed(sim, "sg", 6, 4)
    gids = [sim.call("POST", "/_admin/tenants/%s/groups" % TEN["sg"][0], {"displayName": "g%02d" % i})["id"]
            for i in range(52)]
    for g, u in ((gids[0], su[0]), (gids[51], su[1]), (gids[50], su[2])):
        sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (TEN["sg"][0], g), {"id": u["id"]})
    def glist(ids):  # long lists continue on indented lines
        return ",\n    ".join(",".join(ids[i:i + 4]) for i in range(0, len(ids), 4))
    env.add_job("g52", "sg", "tg", scope="assigned", assigned_groups=glist(gids), deletion_threshold=0)
    env.write_config()
    seq = sim.last_seq()
    p = env.once("--job", "g52")
    lk = linked(sim, "tg")
    walks = [r for r in sim.requests(seq)["value"] if r["route"] == "groups.delta"]
    t.ok(len(walks) >= 2, "the 52 groups are read in two groups/delta walks (%d requests)" % len(walks))
    t.ok(p.returncode == 0 and set(lk) == {su[0]["id"], su[1]["id"], su[2]["id"]},
         "52 assigned groups: members of the 1st, 51st and 52nd group are synced (%d users)" % len(lk),
         p.stderr[-1500:])
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (TEN["sg"][0], gids[51]), {"id": su[3]["id"]})
    p = env.once("--job", "g52")
    lk = linked(sim, "tg")
    t.ok(p.returncode == 0 and su[3]["id"] in lk and len(lk) == 4,
         "a member added to the 52nd group is synced by the next incremental cycle", p.stderr[-1500:])
    env.jobs = [(n, s_, tg, dict(kw, assigned_groups=glist(gids[:50] + gids[51:])) if n == "g52" else kw)
                for n, s_, tg, kw in env.jobs]
    env.write_config()
    p = env.once("--job", "g52")
    lk = linked(sim, "tg")
    t.ok(p.returncode == 0 and "assigned groups changed" in p.stderr and
         lk[su[2]["id"]].get("accountEnabled") is False and
         all(lk[u["id"]].get("accountEnabled") is not False for u in (su[0], su[1], su[3])),
         "a group removed from assigned_groups: its member leaves scope (disabled), the others stay",
         p.stderr[-1500:])

    # ================= an unregistered custom link attribute: the error says exactly what to do
    tenant(env, "tnl", 15)
    sim.allow(TEN["s"][0], TEN["tnl"][0])
    other = "0123abcd-4567-4890-8abc-def012345678"
    env.add_job("nl", "s", "tnl", scope="all", link_attribute="extension_%s_customLink" % other.replace("-", ""))
    env.write_config()
    seq = sim.last_seq()
    p = env.once("--job", "nl")
    fix = "POST /v1.0/applications(appId='%s')/extensionProperties" % other
    t.ok(p.returncode == 3 and fix in p.stderr and '"name": "customLink"' in p.stderr and
         not writes(sim.requests(seq)["value"], TEN["tnl"][0]),
         "an unregistered link attribute: quarantined before any write; the log names the app and the "
         "extension name to register", p.stderr[-1500:])
    c = env.ctl("test-connection", "nl")
    t.ok(c.returncode == 1 and fix in c.stdout + c.stderr, "test-connection gives the same fix",
         (c.stdout + c.stderr)[-1500:])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
