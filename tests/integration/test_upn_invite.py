#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The target user's UPN follows the source user's UPN, not its mail (TAP,
# xtsyncd --once against graphsim). Microsoft's troubleshooting note on
# cross-tenant synchronization (entra-docs multi-tenant-organizations/
# cross-tenant-synchronization-configure.md, "UserPrincipalName does not
# update ..."): with Mail user.mail@domain.com and UPN
# user.upn@otherdomain.com, "the UPN prefix of the target guest user would be
# updated to match the UPN of the source user (... user.upn_otherdomain.com#EXT#
# @contoso.onmicrosoft.com)". A B2B user's UPN prefix comes from the address
# it was invited at (invitation-post.md), so xtsync invites at the source UPN
# and writes the mail with the mapped attributes; a user whose mail is its UPN
# is invited at it as before. A second cycle invites nobody again. A guest
# invited by hand at the source UPN is matched there, not taken over.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 4

t = X.Tap()
tmp = X.tmpdir("upn-invite")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x0b0e0001, N, 53)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    odd = src[1]
    local, _, dom = odd["userPrincipalName"].partition("@")
    alias = "alias.%s@%s" % (local, dom)
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, odd["id"]), {"mail": alias})

    seq = sim.last_seq()
    p = env.once()
    tgt = X.linked(sim, tgt_tid, link)
    invs = [r for r in sim.requests(seq)["value"] if r["route"] == "invitations.post"]
    t.ok(p.returncode == 0 and len(tgt) == N and len(invs) == N, "all %d users invited once" % N,
         (p.returncode, len(tgt), len(invs), p.stderr[-1500:]))
    u = tgt.get(odd["id"], {})
    want = "%s_%s#EXT#@" % (local, dom)
    t.ok((u.get("userPrincipalName") or "").lower().startswith(want.lower()) and u.get("mail") == alias,
         "mail != UPN: the target UPN's prefix is the source UPN's (%s...), its mail the source mail" % want,
         (u.get("userPrincipalName"), u.get("mail")))
    rest = [x for x in src if x["id"] != odd["id"]]
    t.ok(all((tgt[x["id"]].get("userPrincipalName") or "").lower().startswith(
             x["userPrincipalName"].replace("@", "_").lower() + "#ext#@") for x in rest),
         "mail == UPN: the UPN prefix comes from it as before",
         [tgt[x["id"]].get("userPrincipalName") for x in rest])

    seq = sim.last_seq()
    p = env.once()
    invs = [r for r in sim.requests(seq)["value"] if r["route"] == "invitations.post"]
    t.ok(p.returncode == 0 and not invs and len(X.users_list(sim.users(tgt_tid))) == N and
         not X.sync_problems(sim, src_tid, tgt_tid, link),
         "the next cycle invites nobody; no duplicate", (p.returncode, len(invs)))

    # A guest invited by hand at the source UPN (its mail is that address),
    # while the source user's mail differs: the invitation would return that
    # guest, so it is matched by the invited address first, with the update
    # rules: it stays a Guest ("If the B2B user already exists in the target
    # tenant then Member (userType) will not changed to Member",
    # cross-tenant-synchronization-configure.md), logged as an Update.
    os.mkdir(os.path.join(tmp, "g"))
    env2, s2, t2, link2 = X.source_target(sim, os.path.join(tmp, "g"), 0x0b0e0002, 2, 54, names=("s2", "d2"))
    env2.add_job("g", "s2", "d2", scope="all", deletion_threshold=0)
    env2.write_config()
    u0 = X.users_list(sim.users(s2))[0]
    gl, _, gd = u0["userPrincipalName"].partition("@")
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (s2, u0["id"]), {"mail": "alias.%s@%s" % (gl, gd)})
    guest = sim.call("POST", "/_admin/tenants/%s/users" % t2, {
        "displayName": "Hand invited", "mail": u0["userPrincipalName"],
        "userPrincipalName": "%s_%s#EXT#@d2.example" % (gl, gd), "userType": "Guest",
        "creationType": "Invitation", "accountEnabled": True, "externalUserState": "Accepted"})
    seq = sim.last_seq()
    p = env2.once()
    invs = [r for r in sim.requests(seq)["value"] if r["route"] == "invitations.post" and r["tenant"] == t2]
    g = [u for u in X.users_list(sim.users(t2)) if u["id"] == guest["id"]]
    lines = [e for e in env2.provlog() if (e.get("sourceIdentity") or {}).get("id") == u0["id"]]
    t.ok(p.returncode == 0 and len(invs) == 1 and g and g[0].get("userType") == "Guest" and
         g[0].get("displayName") == u0["displayName"] and len(X.users_list(sim.users(t2))) == 2,
         "a guest invited by hand at the source UPN (mail differs) is matched, not invited: it stays a Guest, "
         "its values updated; the other user is invited", (p.returncode, len(invs), g, p.stderr[-1500:]))
    t.ok([e.get("action") for e in lines] == ["Update"],
         "the matched guest is logged as an Update, not a Create", [(e.get("action"), e.get("modifiedProperties"))
                                                                   for e in lines])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
