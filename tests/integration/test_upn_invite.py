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
# is invited at it as before. A second cycle invites nobody again.
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
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
