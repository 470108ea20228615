#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Engine integration test (TAP): the real xtsyncd --once against graphsim with a
# real SQLite store: initial sync (all scope, then assigned via a group),
# incremental changes (attribute PATCH, disable, deletion), the deletion
# threshold (exit 3, StagedDelete), dry run with zero writes, and quarantine
# on bad credentials. Not covered here: kill -9 recovery and mesh topologies.
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"
CA = "11111111-1111-4111-8111-111111111111"
CB = "22222222-2222-4222-8222-222222222222"
LINK = X.app_ext(CB)

t = X.Tap()
tmp = X.tmpdir("engine")
sim = X.Sim(tmp)
ok = False
try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    env.add_tenant("tgt", B, CB)
    sim.allow(A, B)
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 30, "seed": 7, "guest_fraction": 0.1,
                                                     "disabled_fraction": 0.0})
    src = X.users_list(sim.users(A))
    members = [u for u in src if u.get("userType") == "Member"]
    guests = [u for u in src if u.get("userType") != "Member"]
    # One member reports to a guest: guests are never synced, so that manager
    # reference cannot be resolved — deferred, never counted as a failure.
    assert guests, "the seed must produce guests"
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (A, members[1]["id"]), {"id": guests[0]["id"]})
    members[1]["manager"] = guests[0]["id"]
    env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=3, deprovision="disable")
    env.write_config()

    # ---- dry run first: plan printed, zero writes, store untouched
    seq = sim.last_seq()
    p = env.once("--dry-run")
    reqs = sim.requests(seq)["value"]
    writes = [r for r in reqs if r["method"] not in ("GET",) and r["route"] not in ("token", "batch")]
    t.ok(p.returncode == 0, "dry run exits 0", p.stderr[-2000:])
    t.ok(len(writes) == 0, "dry run made zero writes to any tenant", writes[:5])
    t.ok(p.stdout.count("POST /invitations") == len(members),
         "dry run prints one invitation per internal member (%d)" % len(members), p.stdout[-1500:])
    t.ok(len(X.users_list(sim.users(B))) == 0, "dry run created no target user")

    # ---- initial sync
    p = env.once()
    t.ok(p.returncode == 0, "initial cycle exits 0", p.stderr[-3000:])
    tgt = X.users_list(sim.users(B))
    by_link = {}
    for u in tgt:
        by_link.setdefault(u.get(LINK), []).append(u)
    t.ok(len(tgt) == len(members), "one target user per internal member (%d, guests %d skipped)" %
         (len(members), len(guests)), [u.get("userPrincipalName") for u in tgt][:5])
    t.ok(all(len(by_link.get("%s:%s" % (A, m["id"]), [])) == 1 for m in members),
         "every member's target carries the link attribute tenant:object id")
    m0 = members[0]
    u0 = by_link.get("%s:%s" % (A, m0["id"]), [{}])[0]
    t.ok(u0.get("userType") == "Member" and u0.get("displayName") == m0.get("displayName") and
         u0.get("department") == m0.get("department") and u0.get("jobTitle") == m0.get("jobTitle"),
         "target is a Member with the mapped attributes", {k: (m0.get(k), u0.get(k)) for k in
                                                            ("userType", "displayName", "department")})
    t.ok(all(u.get("manager") for u in tgt if any(
        m["id"] == u[LINK].split(":")[1] and m.get("manager") and
        any(x["id"] == m["manager"] for x in members) for m in members)),
        "managers are set on the target from the linked manager")
    pl = env.provlog()
    t.ok("failed 0" in p.stderr and not any(e["provisioningStatusInfo"]["status"] == "failure" for e in pl),
         "a manager that is not synced (a guest) is not a failure", p.stderr[-1500:])
    t.ok(any(e["provisioningStatusInfo"]["status"] == "skipped" and
             e.get("sourceIdentity", {}).get("id") == members[1]["id"] for e in pl),
         "the unresolved manager reference is logged as skipped")
    t.ok(sum(1 for e in pl if e.get("action") == "Create" and
             e["provisioningStatusInfo"]["status"] == "success") == len(members),
         "provisioning log has one successful Create per member")

    # ---- second cycle without source change: no write
    seq = sim.last_seq()
    p = env.once()
    reqs = sim.requests(seq)["value"]
    t.ok(p.returncode == 0 and not [r for r in reqs if r["method"] != "GET" and r["route"] not in ("token", "batch")],
         "an unchanged source makes no write", [(r["method"], r["path"]) for r in reqs][:8])
    t.ok("in scope %d," % len(members) in p.stderr,
         "an incremental cycle reports every in-scope user (%d), not just the changed ones" % len(members),
         p.stderr[-800:])

    # ---- incremental: attribute change -> one PATCH; it carries the change and
    # re-asserts the user's other values (the FAQ: a user changed in the
    # source "is updated to match the user in the source tenant")
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, m0["id"]), {"jobTitle": "Chief Tester"})
    m1 = members[1]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, m1["id"]), {"accountEnabled": False})
    seq = sim.last_seq()
    p = env.once()
    reqs = sim.requests(seq)["value"]
    patches = [r for r in reqs if r["route"] == "users.patch"]
    t.ok(p.returncode == 0, "incremental cycle exits 0", p.stderr[-2000:])
    t.ok(len(patches) == 2, "two PATCHes for two changed users", [(r["method"], r["path"]) for r in reqs])
    tgt = {u.get(LINK): u for u in X.users_list(sim.users(B))}
    t.ok(tgt["%s:%s" % (A, m0["id"])].get("jobTitle") == "Chief Tester", "changed jobTitle reached the target")
    t.ok(tgt["%s:%s" % (A, m1["id"])].get("accountEnabled") is False,
         "disabled in the source -> accountEnabled false in the target")
    pl = env.provlog()
    upd = [e for e in pl if e.get("action") == "Update" and e["sourceIdentity"]["id"] == m0["id"]]
    mps = upd[-1].get("modifiedProperties", []) if upd else []
    t.ok([mp["displayName"] for mp in mps if mp.get("oldValue") != mp.get("newValue")] == ["jobTitle"] and
         "accountEnabled" in [mp["displayName"] for mp in mps],
         "the Update's modifiedProperties: jobTitle changed, the values re-asserted with it unchanged",
         upd[-1:] if upd else pl[-2:])

    # ---- a manager removed in the source stays in the target: "If the manager of a user is
    # removed in the source tenant and no new manager is assigned in the source tenant, the
    # manager attribute isn't updated in the target tenant" (entra-docs multi-tenant-organizations/
    # cross-tenant-synchronization-overview.md, FAQ)
    tgt = {u.get(LINK): u for u in X.users_list(sim.users(B))}
    mm = next((m for m in members[6:] if m.get("manager") and tgt.get("%s:%s" % (A, m["id"]), {}).get("manager")),
              None)
    t.ok(mm is not None, "a synced member with a synced manager exists for the removal check")
    if mm is not None:
        had = tgt["%s:%s" % (A, mm["id"])]["manager"]
        sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (A, mm["id"]), {"id": None})
        seq = sim.last_seq()
        p = env.once()
        reqs = sim.requests(seq)["value"]
        tgt = {u.get(LINK): u for u in X.users_list(sim.users(B))}
        t.ok(p.returncode == 0 and tgt["%s:%s" % (A, mm["id"])].get("manager") == had and
             not [r for r in reqs if r["route"].startswith("users.manager")],
             "a manager removed in the source: no manager request, the target keeps its manager (FAQ)",
             (p.returncode, [(r["method"], r["path"], r["status"]) for r in reqs if r["method"] != "GET"]))
        seq = sim.last_seq()
        p = env.once()
        reqs = sim.requests(seq)["value"]
        t.ok(p.returncode == 0 and not [r for r in reqs if r["method"] != "GET" and r["route"] not in ("token", "batch")],
             "the next cycle writes nothing more", [(r["method"], r["path"]) for r in reqs if r["method"] != "GET"])

    # ---- deletion threshold: 4 deletions > 3 are held
    gone = members[2:6]
    for m in gone:
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, m["id"]))
    p = env.once()
    t.ok(p.returncode == 3, "deletions over the threshold: --once exits 3 (got %d)" % p.returncode,
         p.stderr[-2000:])
    tgt = {u.get(LINK): u for u in X.users_list(sim.users(B))}
    t.ok(all(tgt["%s:%s" % (A, m["id"])].get("accountEnabled") is not False for m in gone),
         "nothing was disabled while held")
    pl = env.provlog()
    t.ok(sum(1 for e in pl if e.get("action") == "StagedDelete") == len(gone),
         "one StagedDelete provisioning line per held deletion")
    t.ok(all(e["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode") ==
             "DeletionThresholdExceeded" for e in pl if e.get("action") == "StagedDelete"),
         "StagedDelete lines carry errorInformation.errorCode DeletionThresholdExceeded")
    p = env.once()
    t.ok(p.returncode == 3, "still held on the next cycle")

    # ---- the live daemon: preview, allow-deletions, sync
    d = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "live.log"), "w"))
    for _ in range(100):
        if os.path.exists(os.path.join(tmp, "control.sock")):
            break
        time.sleep(0.1)
    time.sleep(1.5)  # its first cycle (held again) runs at start
    seq = sim.last_seq()
    pv = env.ctl("preview", "s2t")
    writes = [r for r in sim.requests(seq)["value"] if r["method"] != "GET" and r["route"] not in ("token", "batch")]
    t.ok(pv.returncode == 0 and not writes, "preview answers without writing", pv.stdout[-800:] + pv.stderr[-400:])
    st0 = env.ctl("status", "--json")
    al = env.ctl("allow-deletions", "s2t")
    st1 = env.ctl("status", "--json")
    t.ok(al.returncode == 0 and "4 held deletions released; cycle started to apply them" in al.stdout,
         "allow-deletions releases the 4 and starts a cycle that applies them", al.stdout + al.stderr)
    t.ok("deletions-held" in st0.stdout and "deletions-held" not in st1.stdout,
         "status says deletions-held before allow-deletions, not after it", (st0.stdout, st1.stdout))
    for _ in range(100):
        tgt = {u.get(LINK): u for u in X.users_list(sim.users(B))}
        if all(tgt["%s:%s" % (A, m["id"])].get("accountEnabled") is False for m in gone):
            break
        time.sleep(0.2)
    t.ok(all(tgt["%s:%s" % (A, m["id"])].get("accountEnabled") is False for m in gone),
         "the cycle allow-deletions started disables the deleted users (no sync needed)")
    d.send_signal(signal.SIGTERM)
    d.wait(30)
    # every written op's line names its source user as the source does: a
    # create, an update, a manager write, a disable of a user deleted there
    by_id = {u["id"]: u for u in src}
    done = [e for e in env.provlog() if e["provisioningStatusInfo"]["status"] == "success" and
            e["action"] in ("Create", "Update", "Disable")]
    wrong = [(e["action"], e["sourceIdentity"]) for e in done
             if e["sourceIdentity"].get("displayName") != by_id[e["sourceIdentity"]["id"]]["displayName"] or
             e["sourceIdentity"].get("userPrincipalName") !=
             by_id[e["sourceIdentity"]["id"]]["userPrincipalName"]]
    t.ok({e["action"] for e in done} == {"Create", "Update", "Disable"} and not wrong,
         "each success line (%d: Create, Update, Disable) names its user by the source's displayName and UPN"
         % len(done), wrong[:5])

    # ---- quarantine on bad credentials
    bad = os.path.join(tmp, "bad")
    with open(bad, "w") as f:
        f.write("wrong\n")
    os.chmod(bad, 0o600)
    env.write_config(secret=bad)
    p = env.once()
    t.ok(p.returncode == 3, "bad credentials: --once exits 3 (quarantined), got %d" % p.returncode,
         p.stderr[-1500:])
    t.ok("AADSTS7000215" in p.stderr or "7000215" in p.stderr, "the log names Microsoft's error code",
         p.stderr[-1500:])
    env.write_config()
    p = env.once()
    t.ok(p.returncode == 3 and "quarantined" in p.stderr,
         "a quarantined job does not run before its retry time", p.stderr[-800:])
    # the live daemon's status: a quarantined job's next cycle is its retry time
    d = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "live2.log"), "w"))
    try:
        st = None
        for _ in range(100):
            c = env.ctl("status", "--json")
            if c.returncode == 0:
                js = json.loads(c.stdout)
                js = js.get("jobs", js) if isinstance(js, dict) else js
                st = [j for j in js if j.get("name") == "s2t"][0]
                if st.get("state") == "quarantined" and st.get("last_cycle_end"):
                    break
            time.sleep(0.1)
        t.ok(st is not None and st.get("state") == "quarantined" and st.get("next_retry") and
             st.get("next_cycle") == st.get("next_retry"),
             "status: a quarantined job's next cycle is its retry time", st)
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(30)
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
