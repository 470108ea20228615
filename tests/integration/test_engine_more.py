#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Engine integration test (TAP) against the live daemon (xtsyncd + xtsyncctl
# over its control socket) and graphsim: provision on demand (steps printed,
# exactly that user created, a second call writes nothing new, an
# out-of-scope user says why); `restart` then a cycle (initial, no duplicate
# invitation, changed attributes applied); quarantine on the escrow
# proportion with small configured numbers, exactly one mail to a real SMTP
# server (smtpsink.py), no second mail, `resume` and convergence.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"
C = "cccccccc-0000-4000-8000-0000000000c3"
CA = "11111111-1111-4111-8111-111111111111"
CB = "22222222-2222-4222-8222-222222222222"
CC = "33333333-3333-4333-8333-333333333333"
LB = X.app_ext(CB)
LC = X.app_ext(CC)
NEW = "aaaaaaaa-0000-4000-8000-00000000beef"


def invitations(sim, tid):
    return sim.call("GET", "/_admin/counters")["by_tenant"].get(tid, {}).get("invitations", 0)


t = X.Tap()
tmp = X.tmpdir("engine-more")
sim = X.Sim(tmp)
sink = None
d = None
ok = False
try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    env.add_tenant("tgt", B, CB)
    env.add_tenant("qtg", C, CC)
    sim.allow(A, B)
    sim.allow(A, C)
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 8, "seed": 11, "guest_fraction": 0.0,
                                                     "disabled_fraction": 0.0, "with_manager": False})
    src = X.users_list(sim.users(A))
    u0, u1, u5, u6 = src[0], src[1], src[5], src[6]
    grp = sim.call("POST", "/_admin/tenants/%s/groups" % A, {"displayName": "on demand"})["id"]
    sinkdir = os.path.join(tmp, "sink")
    sink, port = X.start_smtpsink(sinkdir)
    env.add_job("p2b", "src", "tgt", scope="assigned", assigned_users="%s,%s,%s" % (u0["id"], u1["id"], NEW),
                assigned_groups=grp,
                deletion_threshold=0)
    env.add_job("q2c", "src", "qtg", scope="all", deletion_threshold=0, notify="ops@contoso.example",
                quarantine_min_operations=4, quarantine_min_failures=4,
                quarantine_failure_ratio=0.4, escrow_retry_base="1s")
    env.write_config()
    X.append_smtp(env, "smtp://127.0.0.1:%d" % port)
    # every invitation into the quarantine job's target fails
    sim.call("POST", "/_admin/faults", {"tenant": C, "route": "/invitations", "method": "POST",
                                        "kind": "status", "status": 403})
    d = X.start_daemon(env)
    jp = X.wait_cycles(env, "p2b", 1)
    jq = X.wait_cycles(env, "q2c", 1)
    t.ok(jp is not None and jq is not None, "the daemon ran a first cycle of both jobs", (jp, jq))

    # ---- provision on demand
    t.ok(set(X.linked(sim, B, LB)) == {u0["id"], u1["id"]}, "first cycle: the two assigned users exist")
    inv0 = invitations(sim, B)
    sim.call("POST", "/_admin/tenants/%s/users" % A, {
        "id": NEW, "displayName": "Nova Provisioned", "givenName": "Nova", "surname": "Provisioned",
        "userPrincipalName": "nova@src.example", "mail": "nova@src.example", "mailNickname": "nova",
        "accountEnabled": True, "userType": "Member", "jobTitle": "Pilot", "department": "Flight"})
    c = env.ctl("provision", "p2b", NEW)
    out = c.stdout + c.stderr
    steps = [ln.split(".", 1)[1].split("(")[1].split(")")[0] for ln in c.stdout.splitlines()
             if ln[:1].isdigit() and ". " in ln and "(" in ln]
    t.ok(c.returncode == 0, "provision exits 0", out[-1500:])
    t.ok(steps == ["import", "scoping", "matching", "processing", "export"],
         "provision prints the steps import, scoping, matching, processing, export in order (%s)" % steps, out)
    t.ok("Perform action (processing): success" in c.stdout and "Action: Create" in c.stdout,
         "the processing step names the action Create", out)
    lk = X.linked(sim, B, LB)
    t.ok(set(lk) == {u0["id"], u1["id"], NEW} and invitations(sim, B) == inv0 + 1,
         "exactly that user was created (one invitation)", (sorted(lk), invitations(sim, B) - inv0))
    t.ok(lk.get(NEW, {}).get("jobTitle") == "Pilot" and lk.get(NEW, {}).get("userType") == "Member",
         "the provisioned user has its mapped attributes", lk.get(NEW))
    mine = [e for e in env.provlog() if e["sourceIdentity"]["id"] == NEW and e["action"] == "Create"]
    t.ok(mine and all(e["initiatedBy"] == {"displayName": "xtsyncctl provision", "initiatorType": "user"}
                      for e in mine),
         "its Create line says an operator initiated it (initiatedBy xtsyncctl provision, user)",
         [e.get("initiatedBy") for e in mine])
    c = env.ctl("provision", "p2b", NEW)
    t.ok(c.returncode == 0 and "Action: Create" not in c.stdout and "Action: Other" in c.stdout and
         "nothing was written" in c.stdout, "a second provision of the same user writes nothing", c.stdout)
    t.ok(invitations(sim, B) == inv0 + 1 and len(X.users_list(sim.users(B))) == 3,
         "no duplicate after the second provision")
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, NEW), {"jobTitle": "Captain"})
    c = env.ctl("provision", "p2b", NEW)
    t.ok(c.returncode == 0 and re.search(r"Action: Update \((jobTitle|[^)]*, jobTitle)[,)]", c.stdout) and
         X.linked(sim, B, LB)[NEW].get("jobTitle") == "Captain",
         "provision after a source change updates jobTitle (with the user's other values, FAQ)", c.stdout)
    # the manager: a user GET cannot $select it, it expands it (user-list-manager.md)
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (A, NEW), {"id": u0["id"]})
    seq = sim.last_seq()
    c = env.ctl("provision", "p2b", NEW)
    gets = [r for r in sim.requests(seq)["value"] if r["tenant"] == A and r["path"].endswith("/" + NEW)]
    lk = X.linked(sim, B, LB)
    t.ok(c.returncode == 0 and gets and all("$expand" in r["query"] for r in gets) and
         lk.get(NEW, {}).get("manager") == lk.get(u0["id"], {}).get("id"),
         "provision on demand reads the manager ($expand=manager) and sets it in the target",
         ([r["query"] for r in gets], lk.get(NEW, {}).get("manager"), c.stdout[-800:]))
    # an attribute and the manager changed together: two open ops, the update
    # (planned first) is the action, not the newer manager reference
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, NEW), {"jobTitle": "Navigator"})
    sim.call("PUT", "/_admin/tenants/%s/users/%s/manager" % (A, NEW), {"id": u1["id"]})
    c = env.ctl("provision", "p2b", NEW)
    lk = X.linked(sim, B, LB)
    t.ok(c.returncode == 0 and re.search(r"Action: Update \((jobTitle|[^)]*, jobTitle)[,)]", c.stdout) and
         lk.get(NEW, {}).get("jobTitle") == "Navigator" and
         lk.get(NEW, {}).get("manager") == lk.get(u1["id"], {}).get("id"),
         "provision: jobTitle and manager changed together show as the Update of jobTitle, and both are "
         "written", (lk.get(NEW), c.stdout[-800:]))
    c = env.ctl("provision", "p2b", u5["id"])
    t.ok(c.returncode == 0 and "Determine if user is in scope (scoping): skipped" in c.stdout and
         "not assigned to the job" in c.stdout and "Action: Skip" in c.stdout,
         "an unassigned user: the scoping step says why it is out of scope", c.stdout + c.stderr)
    t.ok(u5["id"] not in X.linked(sim, B, LB) and invitations(sim, B) == inv0 + 1,
         "the out-of-scope user was not created")
    # added to an assigned group after the last cycle: on demand sees the membership now
    sim.call("POST", "/_admin/tenants/%s/groups/%s/members" % (A, grp), {"id": u6["id"]})
    c = env.ctl("provision", "p2b", u6["id"])
    t.ok(c.returncode == 0 and "Determine if user is in scope (scoping): success" in c.stdout and
         "Action: Create" in c.stdout and u6["id"] in X.linked(sim, B, LB) and invitations(sim, B) == inv0 + 2,
         "a user just added to an assigned group is in scope for provision on demand and created",
         c.stdout + c.stderr)
    # removed from the group again: on demand disables it (deletion_threshold = 0: the guard is
    # off), and does not claim a threshold hold
    sim.call("DELETE", "/_admin/tenants/%s/groups/%s/members/%s" % (A, grp, u6["id"]))
    c = env.ctl("provision", "p2b", u6["id"])
    t.ok(c.returncode == 0 and "Action: Disable" in c.stdout and "held by the deletion threshold" not in c.stdout
         and "disabled 1" in c.stdout and X.linked(sim, B, LB)[u6["id"]].get("accountEnabled") is False,
         "a user removed from the group: provision on demand disables it (no false threshold hold)",
         c.stdout + c.stderr)

    # ---- restart, then a cycle
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, u0["id"]), {"jobTitle": "After Restart"})
    n = X.job_status(env, "p2b")["cycles"]
    c = env.ctl("restart", "p2b")
    t.ok(c.returncode == 0 and "initial cycle" in c.stdout, "restart answers", c.stdout + c.stderr)
    env.ctl("sync", "p2b")
    jp = X.wait_cycles(env, "p2b", n + 1)
    live = open(os.path.join(tmp, "live.log")).read()
    t.ok(jp is not None and jp.get("last_result") == "success", "the cycle after restart succeeds", jp)
    t.ok("job p2b: restarted" in live and
         re.search(r"job p2b: cycle \d+ \(initial\)", live.rsplit("job p2b: restarted", 1)[-1]) is not None,
         "the cycle after restart is an initial cycle", live[-1500:])
    lk = X.linked(sim, B, LB)
    t.ok(invitations(sim, B) == inv0 + 2 and len(X.users_list(sim.users(B))) == 4 and len(lk) == 4,
         "no duplicate target user after restart (invitations unchanged)", invitations(sim, B) - inv0)
    t.ok(lk[u0["id"]].get("jobTitle") == "After Restart", "a changed attribute is applied after restart",
         lk[u0["id"]].get("jobTitle"))

    # ---- quarantine on the escrow proportion
    jq = X.job_status(env, "q2c")
    t.ok(jq.get("state") == "quarantined" and
         jq.get("quarantine_reason") == "EncounteredEscrowProportionThreshold" and jq.get("next_retry"),
         "status: quarantined with reason code and next retry", jq)
    st = env.ctl("status")
    t.ok("EncounteredEscrowProportionThreshold" in st.stdout and "next retry 20" in st.stdout,
         "the status table shows the reason code and the next retry", st.stdout)
    mails = X.poll(lambda: X.sink_mails(sinkdir), timeout=60)
    m = mails[0] if mails else None
    body = m.get_content() if m is not None else ""
    t.ok(len(mails) == 1 and "q2c" in m["Subject"] and "EncounteredEscrowProportionThreshold" in m["Subject"],
         "one mail naming the job and the reason", [x["Subject"] for x in mails])
    t.ok("Failed operations: 8" in body and "xtsyncctl resume q2c" in body,
         "the mail gives the counts and the command that resolves it", body)
    # sync clears the quarantine, as Graph's synchronizationJob start does
    # ("If the job is in quarantine, the quarantine status is cleared"), and
    # runs the cycle, which retries every failed write at once: they still
    # fail (the fault is still there), so the job is quarantined again, a new
    # quarantine after the operator's clear, with a mail of its own
    n = jq["cycles"]
    sy = env.ctl("sync", "q2c")
    jq = X.wait_cycles(env, "q2c", n + 1)
    mails = X.poll(lambda: len(X.sink_mails(sinkdir)) >= 2 and X.sink_mails(sinkdir), timeout=30) or []
    t.ok("quarantine cleared; cycle started" in sy.stdout and jq is not None and jq.get("state") == "quarantined"
         and jq.get("quarantine_reason") == "EncounteredEscrowProportionThreshold",
         "sync clears the quarantine and runs a cycle that retries the failed writes; they still fail and "
         "quarantine it again (%s)" % sy.stdout.strip(), jq)
    t.ok(len(mails) == 2 and "EncounteredEscrowProportionThreshold" in mails[-1]["Subject"],
         "the new quarantine sends its mail", [x["Subject"] for x in mails])
    t.ok(len(X.users_list(sim.users(C))) == 0, "nothing exists in the quarantined job's target")
    sim.call("DELETE", "/_admin/faults")
    c = env.ctl("resume", "q2c")
    t.ok(c.returncode == 0, "resume answers", c.stdout + c.stderr)
    jq = X.job_status(env, "q2c")
    t.ok(jq.get("quarantine_reason") is None, "resume clears the quarantine", jq)
    src = X.users_list(sim.users(A))
    # the failed creates are escrowed with a back-off (escrow_retry_base = 1 s):
    # cycles until they are due and applied
    end = time.time() + 90
    while True:
        n = jq["cycles"]
        env.ctl("sync", "q2c")
        jq = X.wait_cycles(env, "q2c", n + 1) or X.job_status(env, "q2c")
        lk = X.linked(sim, C, LC)
        if set(lk) == {u["id"] for u in src} or time.time() > end:
            break
        time.sleep(1)
    t.ok(jq is not None and jq.get("last_result") == "success" and set(lk) == {u["id"] for u in src} and
         jq.get("state") == "idle", "after resume the job converges: %d of %d users" % (len(lk), len(src)), jq)
    ok = t.failed == 0
finally:
    X.stop_daemon(d)
    if sink is not None:
        sink.terminate()
        sink.wait(30)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
