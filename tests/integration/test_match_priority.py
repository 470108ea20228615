#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Matching by a schema's matchingPriority attribute against graphsim (TAP).
# A job whose schema matches on officeLocation (matchingPriority 2) finds a
# target user an administrator created before (no link attribute, another
# mail), an existing B2B user (#EXT#), and links it instead of inviting a
# duplicate ("I have existing B2B collaboration users. What will happen to
# them? Cross-tenant synchronization matches the user"). A target tenant's
# internal user is never matched ("can't match an internal user in the source
# tenant with an internal user in the target tenant",
# entra: cross-tenant-synchronization-overview.md): that create fails and the
# internal user is left alone. officeLocation `eq` is
# an advanced query in Graph (concepts/aad-advanced-queries.md, the table in
# includes/filter-directory-objects.md): without "ConsistencyLevel: eventual"
# and $count=true Graph answers 400 Request_UnsupportedQuery, so that query
# carries both, as a request of its own; the link-attribute and e-mail
# queries, which keep a crash from duplicating a user, stay plain (an
# advanced query reads an eventually consistent index) and go as $batch
# sub-requests with the writes.
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 6

t = X.Tap()
tmp = X.tmpdir("match-priority")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e3a0002, N, 31)
    src = X.users_list(sim.users(src_tid))
    x = src[2]
    office = "Room 4711 (matched)"
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, x["id"]), {"officeLocation": office})
    pre = sim.call("POST", "/_admin/tenants/%s/users" % tgt_tid, {
        "displayName": "Pre-existing", "userPrincipalName": "pre_fabrikam.example#EXT#@d.example",
        "mail": "pre@fabrikam.example",
        "mailNickname": "pre", "accountEnabled": True, "userType": "Member", "officeLocation": office})
    schema = json.load(open(os.path.join(X.SRC, "schema/cross-tenant-schema.json")))
    om = schema["synchronizationRules"][0]["objectMappings"][0]
    for am in om["attributeMappings"]:
        if am["targetAttributeName"] == "officeLocation":
            am["matchingPriority"] = 2
    schema_path = os.path.join(tmp, "schema.json")
    with open(schema_path, "w") as f:
        json.dump(schema, f)
    env.add_job("j", "s", "d", scope="all", schema=schema_path, deletion_threshold=0)
    env.write_config()

    seq = sim.last_seq()
    p = env.once()
    reqs = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid]
    lists = [r for r in reqs if r["route"] == "users.list"]
    adv = [r for r in lists if "$count" in r["query"]]
    with_office = sum(1 for u in X.users_list(sim.users(src_tid)) if u.get("officeLocation"))
    print("# users.list: %d, with $count: %d, statuses %s" % (len(lists), len(adv),
                                                             sorted({r["status"] for r in lists})))
    t.ok(p.returncode == 0 and "failed 0" in p.stderr, "the cycle succeeds", (p.returncode, p.stderr[-1500:]))
    tgt = X.linked(sim, tgt_tid, link)
    t.ok(tgt.get(x["id"], {}).get("id") == pre["id"],
         "the administrator's target user is matched by officeLocation and linked",
         (pre["id"], tgt.get(x["id"])))
    t.ok(len(X.users_list(sim.users(tgt_tid))) == N and
         sum(1 for r in reqs if r["route"] == "invitations.post") == N - 1 and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the other %d users are invited, no duplicate" % (N - 1), X.sync_problems(sim, src_tid, tgt_tid, link))
    t.ok(lists and all(r["status"] == 200 for r in lists),
         "every matching query is answered 200 (none refused as an unsupported query)",
         [(r["status"], r["query"]) for r in lists if r["status"] != 200])
    t.ok(len(adv) == with_office and with_office > 0,
         "one advanced query ($count=true) per user with an officeLocation (%d)" % with_office, len(adv))
    t.ok(len(lists) - len(adv) >= N, "the link-attribute and e-mail queries are plain (%d)" % (len(lists) - len(adv)),
         len(lists))
    # one plain query of its own: the connection test's probe of the link
    # attribute, before the cycle; every matching query after it is batched
    plain = [r for r in lists if "$count" not in r["query"]]
    alone = [r for r in plain if r["batch_parent"] is None]
    batched = [r for r in plain if r["batch_parent"] is not None]
    t.ok(len(alone) == 1 and len(batched) >= N and alone[0]["seq"] < min(r["seq"] for r in batched) and
         all(r["batch_parent"] is None for r in adv),
         "plain matching queries go as $batch sub-requests; advanced ones (their ConsistencyLevel "
         "header) as requests of their own",
         [(r["batch_parent"], r["query"]) for r in lists])
    mine = [e for e in env.provlog() if e["sourceIdentity"]["id"] == x["id"]]
    t.ok(any("matchingPriority" in json.dumps(e) for e in mine),
         "its provisioning-log line says it was matched by a matchingPriority attribute",
         [e.get("provisioningSteps") for e in mine])

    # a target tenant's own user with the officeLocation of a new source user
    internal = sim.call("POST", "/_admin/tenants/%s/users" % tgt_tid, {
        "displayName": "Internal Ines", "userPrincipalName": "ines@d.example", "mail": "ines@d.example",
        "mailNickname": "ines", "accountEnabled": True, "userType": "Member", "officeLocation": "Room 12"})
    y = sim.call("POST", "/_admin/tenants/%s/users" % src_tid, {
        "displayName": "Ines Source", "userPrincipalName": "ines@s.example", "mail": "ines@s.example",
        "mailNickname": "ines", "accountEnabled": True, "userType": "Member", "officeLocation": "Room 12"})
    seq = sim.last_seq()
    p = env.once()
    reqs = [r for r in sim.requests(seq)["value"] if r["tenant"] == tgt_tid]
    after = next(u for u in X.users_list(sim.users(tgt_tid)) if u["id"] == internal["id"])
    t.ok(p.returncode == 1 and "the matching target user is internal to the target tenant" in p.stderr,
         "a source user matching an internal target user: the create fails, saying why",
         (p.returncode, p.stderr[-1500:]))
    t.ok(not after.get(link) and after["displayName"] == "Internal Ines" and
         not any(r["method"] in ("PATCH", "DELETE", "PUT") and internal["id"] in r["path"] for r in reqs) and
         not any(r["route"] == "invitations.post" for r in reqs) and y["id"] not in X.linked(sim, tgt_tid, link),
         "the internal user is not linked or written, and no duplicate is invited",
         (after, [(r["method"], r["path"]) for r in reqs]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
