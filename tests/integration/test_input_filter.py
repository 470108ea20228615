#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A schema's inputFilterGroups (TAP, xtsyncd --once against graphsim).
# Graph's filter resource (microsoft-graph-docs-contrib api-reference/v1.0/
# resources/synchronization-filter.md), inputFilterGroups: "If an object
# doesn't satisfy this filter, then it will not be processed further.
# Important to understand is that if an object used to satisfy this filter
# at a given moment, and then the object or the filter was changed so that
# filter is no longer satisfied, such object will NOT get deprovisioned."
# So: users failing it are not created; a synced user that stops satisfying
# it is skipped, not disabled or deleted, and nothing is written to it; once
# it satisfies the filter again it is processed as before. (scope.groups,
# the portal's scoping filter, does deprovision: test_engine.py.)
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 6

t = X.Tap()
tmp = X.tmpdir("input-filter")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x1f170001, N, 29)
    src = X.users_list(sim.users(src_tid))
    sales, others = src[:3], src[3:]
    for u in src:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]),
                 {"department": "Sales" if u in sales else "Legal"})
    schema = json.load(open(os.path.join(X.SRC, "schema/cross-tenant-schema.json")))
    schema["synchronizationRules"][0]["objectMappings"][0]["scope"] = {"inputFilterGroups": [{
        "name": "sales only", "clauses": [{"operatorName": "EQUALS", "sourceOperandName": "department",
                                           "targetOperand": {"values": ["Sales"]}}]}]}
    schema_path = os.path.join(tmp, "schema.json")
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    env.add_job("j", "s", "d", scope="all", schema=schema_path, deprovision="delete", deletion_threshold=0)
    env.write_config()

    p = env.once()
    tgt = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and sorted(tgt) == sorted(u["id"] for u in sales),
         "only the %d users satisfying inputFilterGroups are created" % len(sales),
         (p.returncode, len(tgt), p.stderr[-1500:]))

    gone = sales[0]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, gone["id"]),
             {"department": "Legal", "jobTitle": "Moved"})
    seq = sim.last_seq()
    pl0 = len(env.provlog())
    p = env.once()
    now = X.linked(sim, tgt_tid, link)
    writes = X.target_writes(sim, seq, tgt_tid)
    lines = [e for e in env.provlog()[pl0:] if e["sourceIdentity"]["id"] == gone["id"]]
    t.ok(p.returncode == 0 and gone["id"] in now and now[gone["id"]].get("accountEnabled") is True and
         now[gone["id"]].get("jobTitle") != "Moved" and not writes,
         "a synced user that no longer satisfies it is not deprovisioned (deprovision = delete) and not "
         "written", (p.returncode, sorted(now), [w["path"] for w in writes]))
    t.ok([(e["action"], e["provisioningStatusInfo"]["status"]) for e in lines] == [("Skip", "skipped")] and
         lines[0]["targetIdentity"]["id"] == now[gone["id"]]["id"],
         "its log line is a Skip naming its target user", lines)

    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, gone["id"]), {"department": "Sales"})
    p = env.once()
    now = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and now[gone["id"]].get("jobTitle") == "Moved" and
         now[gone["id"]].get("department") == "Sales",
         "satisfying it again, the user is processed: the changes are written", now.get(gone["id"]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
