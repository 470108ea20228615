#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Many sources to one target (TAP, xtsyncd --once against graphsim), with a
# user of each source sharing one mail address. Microsoft's cross-tenant
# schema matches only on alternativeSecurityIds, which is specific to the
# source (entra-docs multi-tenant-organizations/cross-tenant-
# synchronization-configure.md: "The matching attribute cannot be
# changed"), so one source's configuration never adopts a user another
# source provisioned. xtsync's fallback match by mail must not either: a
# target user carrying another source user's link is not adopted, and each
# source user gets a target user of its own (invited at its own UPN). When
# one source deletes its user, only that target user goes.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("many-to-one")
sim = X.Sim(tmp)
ok = False
try:
    env = X.Env(sim, tmp)
    A = (X.guid(0xa1, 0x7101), X.guid(0xc1, 0x7101))
    B = (X.guid(0xa2, 0x7101), X.guid(0xc2, 0x7101))
    T = (X.guid(0xa3, 0x7101), X.guid(0xc3, 0x7101))
    env.add_tenant("a", *A)
    env.add_tenant("b", *B)
    env.add_tenant("t", *T)
    sim.allow(A[0], T[0])
    sim.allow(B[0], T[0])
    link = X.app_ext(T[1])
    ua = sim.call("POST", "/_admin/tenants/%s/users" % A[0], {
        "displayName": "Pat of A", "userPrincipalName": "pat@a.example", "mail": "pat@shared.example",
        "mailNickname": "pat", "department": "A", "accountEnabled": True})
    ub = sim.call("POST", "/_admin/tenants/%s/users" % B[0], {
        "displayName": "Pat of B", "userPrincipalName": "pat@b.example", "mail": "pat@shared.example",
        "mailNickname": "pat", "department": "B", "accountEnabled": True})
    # a namesake whose own address (mail == UPN) is the mail of A's next user:
    # inviting it would return A's user, so its create fails, and says why
    ua2 = sim.call("POST", "/_admin/tenants/%s/users" % A[0], {
        "displayName": "Sam of A", "userPrincipalName": "sam@a.example", "mail": "sam@b.example",
        "mailNickname": "sam", "department": "A", "accountEnabled": True})
    ub2 = sim.call("POST", "/_admin/tenants/%s/users" % B[0], {
        "displayName": "Sam of B", "userPrincipalName": "sam@b.example", "mail": "sam@b.example",
        "mailNickname": "sam", "department": "B", "accountEnabled": True})
    env.add_job("a2t", "a", "t", scope="all", deletion_threshold=0)
    env.add_job("b2t", "b", "t", scope="all", deprovision="delete", deletion_threshold=0)
    env.write_config()

    pa = env.once("--job", "a2t")
    pb = env.once("--job", "b2t")
    tgt = X.linked(sim, T[0], link)
    lk_a, lk_b = "%s:%s" % (A[0], ua["id"]), "%s:%s" % (B[0], ub["id"])
    by_link = {u.get(link): u for u in X.users_list(sim.users(T[0])) if not u.get("deleted")}
    lk_a2 = "%s:%s" % (A[0], ua2["id"])
    t.ok(pa.returncode == 0 and len(by_link) == 3 and lk_a2 in by_link and
         by_link[lk_a2].get("displayName") == "Sam of A" and
         "linked to another source user; not invited" in pb.stderr and
         "%s:%s" % (B[0], ub2["id"]) not in by_link,
         "a user whose invitation address is another source's user's mail is not invited: that user "
         "stays A's, the create fails with the reason", (sorted(by_link), pb.stderr[-1500:]))
    t.ok(pb.returncode != 0 and lk_a in by_link and lk_b in by_link and by_link[lk_a]["id"] != by_link[lk_b]["id"],
         "two sources, one mail: two target users, each linked to its own source user",
         (pa.returncode, pb.returncode, sorted(by_link), pb.stderr[-1500:]))
    t.ok(by_link.get(lk_a, {}).get("department") == "A" and by_link.get(lk_a, {}).get("displayName") == "Pat of A" and
         "is linked to another source user; not adopted" in pb.stderr,
         "b2t does not adopt or overwrite a2t's user (it says why)", (by_link.get(lk_a), pb.stderr[-800:]))

    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (B[0], ub["id"]))
    pb = env.once("--job", "b2t")
    pa = env.once("--job", "a2t")
    live = {u.get(link): u for u in X.users_list(sim.users(T[0])) if not u.get("deleted")}
    t.ok(pa.returncode == 0 and lk_b not in live and
         live.get(lk_a, {}).get("id") == by_link[lk_a]["id"] and live[lk_a].get("accountEnabled") is True,
         "B's user deleted in its source: only B's target user is deleted; A's stays, enabled",
         (pb.returncode, pa.returncode, sorted(live)))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
