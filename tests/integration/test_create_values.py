#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A create's values are mapped when it is sent, not when it is planned (TAP).
# The plan stores a create op without the user's target values; its dispatch
# applies the job's schema to the stored source row (lib/engine_plan.c,
# eng_create_values). Against graphsim:
# - a mapping that fails to evaluate for some users fails their creates
#   alone, as failures with ExpressionEvaluationFailed (README, "A skipped
#   line says why"), before anything is sent for them: no matching query, no
#   invitation; the other users are created with the mapped values;
# - the failed create is escrowed; once the source user is fixed, its retry
#   writes the source's latest values;
# - a create planned by an earlier version, whose op carries its values
#   ("attrs"), is written with those values, not mapped again.
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 8
BAD_DEPT = "Broken"
EXPR = 'IIF([department]="%s", Mid("abc", 0, 1), Join(" / ", [jobTitle], [department]))' % BAD_DEPT

t = X.Tap()
tmp = X.tmpdir("create-values")
sim = X.Sim(tmp)
ok = False
d = None


def target_requests(seq, tid):
    return [r for r in sim.requests(seq)["value"] if r["tenant"] == tid]


def mentions(reqs, u):
    """Requests whose path, query or body names source user u (its id or mail)."""
    keys = [u["id"], u["mail"]]
    return [r for r in reqs if any(k in json.dumps([r.get("path"), r.get("query"), r.get("body")]) for k in keys)]


try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0011, N, 47)
    src = X.users_list(sim.users(src_tid))
    bad = src[1:3]
    for u in bad:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]), {"department": BAD_DEPT})
    schema = json.load(open(os.path.join(X.SRC, "schema/cross-tenant-schema.json")))
    om = schema["synchronizationRules"][0]["objectMappings"][0]
    for am in om["attributeMappings"]:
        if am["targetAttributeName"] == "jobTitle":
            am["source"] = {"expression": EXPR, "name": "IIF", "parameters": [], "type": "Function"}
    schema_path = os.path.join(tmp, "schema.json")
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    env.add_job("j", "s", "d", scope="all", schema=schema_path, deletion_threshold=0, escrow_retry_base="1s")
    env.write_config()

    # ---- first cycle: two creates fail to map
    seq = sim.last_seq()
    p = env.once()
    reqs = target_requests(seq, tgt_tid)
    lk = X.linked(sim, tgt_tid, link)
    src = {u["id"]: u for u in X.users_list(sim.users(src_tid))}
    good = [u for u in src.values() if u["id"] not in {b["id"] for b in bad}]
    t.ok(p.returncode == 1 and "ExpressionEvaluationFailed" in p.stderr and "failed 2" in p.stderr,
         "the cycle reports two failed creates (exit 1)", (p.returncode, p.stderr[-1500:]))
    t.ok(set(lk) == {u["id"] for u in good},
         "the %d other users are created" % len(good), sorted(lk))
    t.ok(all(lk[u["id"]].get("jobTitle") == "%s / %s" % (u["jobTitle"], u["department"]) for u in good),
         "their jobTitle is the schema's expression, mapped when the create was sent",
         [(lk[u["id"]].get("jobTitle"), u["jobTitle"]) for u in good if u["id"] in lk])
    t.ok(sum(1 for r in reqs if r["route"] == "invitations.post") == len(good) and
         not any(mentions(reqs, u) for u in bad),
         "nothing at all is sent for the two users whose mapping fails (no query, no invitation)",
         [(r["method"], r["path"], r.get("query")) for u in bad for r in mentions(reqs, u)])
    pl = env.provlog()
    for u in bad:
        mine = [e for e in pl if e["sourceIdentity"]["id"] == u["id"]]
        st = [(e["action"], e["provisioningStatusInfo"]["status"],
               e["provisioningStatusInfo"].get("errorInformation", {}).get("errorCode"),
               e["provisioningStatusInfo"].get("errorInformation", {}).get("reason")) for e in mine]
        t.ok(len(st) == 1 and st[0][:3] == ("Create", "failure", "ExpressionEvaluationFailed") and
             "Mid: start must be 1 or more" in (st[0][3] or ""),
             "%s: one provisioning-log line, a Create failure with ExpressionEvaluationFailed and the "
             "expression's error" % u["displayName"], st)

    # ---- the source fixes one user; the escrowed create retries with its latest values
    fixed, still = bad
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, fixed["id"]), {"department": "Fixed"})
    time.sleep(2.5)  # the escrow's back-off: 1 s x 2^1
    seq = sim.last_seq()
    p = env.once()
    lk = X.linked(sim, tgt_tid, link)
    got = lk.get(fixed["id"], {})
    t.ok(got.get("department") == "Fixed" and got.get("jobTitle") == "%s / Fixed" % fixed["jobTitle"],
         "the fixed user is created with the source's latest values",
         (got.get("department"), got.get("jobTitle"), p.stderr[-1200:]))
    t.ok(still["id"] not in lk and p.returncode == 1 and
         not any(mentions(target_requests(seq, tgt_tid), still)),
         "the user still failing is retried, fails again and is still not sent", (p.returncode, sorted(lk)))
    t.ok(len(X.users_list(sim.users(tgt_tid))) == len(good) + 1,
         "no duplicate: %d target users" % (len(good) + 1), len(X.users_list(sim.users(tgt_tid))))

    # ---- provision on demand maps it now, fails the same way, says so, and sends nothing
    d = X.start_daemon(env)
    X.wait_cycles(env, "j", 1, timeout=60)
    seq = sim.last_seq()
    c = env.ctl("provision", "j", still["id"])
    t.ok(c.returncode == 1 and "ExpressionEvaluationFailed" in c.stdout + c.stderr and
         not any(mentions(target_requests(seq, tgt_tid), still)),
         "provision of the failing user exits 1 naming ExpressionEvaluationFailed, and sends nothing",
         (c.returncode, c.stdout[-1500:], c.stderr[-500:]))
    X.stop_daemon(d)
    d = None

    # ---- its source row cannot be read (here: attributes that do not parse; a failed
    # allocation did the same): the create fails and is tried again, never cancelled
    # as if the row were gone (the fail-Nth sweep found that at N = 6188 of the
    # incremental scenario: the next cycle never created the user)
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    good_attrs = db.execute("SELECT attrs FROM source_user WHERE job = 'j' AND source_id = ?",
                            (still["id"],)).fetchone()[0]
    db.execute("UPDATE source_user SET attrs = '{\"broken' WHERE job = 'j' AND source_id = ?", (still["id"],))
    db.execute("UPDATE op SET next_attempt = 0 WHERE job = 'j' AND source_id = ? AND state = 3", (still["id"],))
    db.commit()
    db.close()
    seq = sim.last_seq()
    p = env.once()
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    open_ops = db.execute("SELECT state FROM op WHERE job = 'j' AND source_id = ? AND kind = 0 AND state <> 2",
                          (still["id"],)).fetchall()
    db.execute("UPDATE source_user SET attrs = ? WHERE job = 'j' AND source_id = ?", (good_attrs, still["id"]))
    db.commit()
    db.close()
    t.ok(p.returncode == 1 and open_ops == [(3,)] and not any(mentions(target_requests(seq, tgt_tid), still)),
         "a create whose source row cannot be read fails and stays open for a retry (not cancelled), "
         "nothing sent", (p.returncode, open_ops, p.stderr[-800:]))

    # ---- an op written by an earlier version carries its values: they are written as they are
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    rows = db.execute("SELECT id, payload FROM op WHERE job = 'j' AND source_id = ? AND kind = 0 "
                      "AND state IN (0, 3)", (still["id"],)).fetchall()
    legacy = {"attrs": {"displayName": "Legacy Name", "jobTitle": "Legacy Title", "accountEnabled": True}}
    if len(rows) == 1:
        pay = json.loads(rows[0][1])
        pay.update(legacy)
        db.execute("UPDATE op SET payload = ?, state = 0, next_attempt = 0 WHERE id = ?",
                   (json.dumps(pay), rows[0][0]))
        db.commit()
    db.close()
    t.ok(len(rows) == 1 and "attrs" not in json.loads(rows[0][1]),
         "the failing user's create op is open, and carries no values", rows)
    p = env.once()
    got = X.linked(sim, tgt_tid, link).get(still["id"], {})
    t.ok(p.returncode == 0 and got.get("jobTitle") == "Legacy Title" and got.get("displayName") == "Legacy Name",
         "a create op that carries its values (an earlier version's) is written with them, not mapped again",
         (p.returncode, got.get("displayName"), got.get("jobTitle"), p.stderr[-1200:]))
    ok = t.failed == 0
finally:
    if d is not None:
        X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
