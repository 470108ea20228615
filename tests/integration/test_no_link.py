#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A target whose Graph has no directory extension for the link and will not
# register one (TAP), against graphsim: the target tenant's app has no
# extension_{appId}_xtsyncSourceLink, so filtering on it is 400 "Could not
# find a property named ..." (as Graph), and POST
# applications(appId=...)/extensionProperties (application-post-
# extensionproperty.md) is answered 404 by a status fault, as Graph does when
# the application object lives in another tenant. The job runs without the
# attribute instead of not at all: one warning, every user created once, no
# write names the attribute; after a lost store the users are matched by
# their invited e-mail, not invited again; a change is one PATCH.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 8
WARN = "running without it"
ATTRS = ("displayName", "department", "jobTitle", "accountEnabled")


def problems(sim, src_tid, tgt_tid):
    """Each source member has exactly one target user, found by the mail it
    was invited with, whose mapped attributes equal the source's."""
    src = X.users_list(sim.users(src_tid))
    by_mail = {}
    for u in X.users_list(sim.users(tgt_tid)):
        by_mail.setdefault((u.get("mail") or "").lower(), []).append(u)
    probs = []
    for s in src:
        ts = by_mail.get((s.get("mail") or "").lower(), [])
        if len(ts) != 1:
            probs.append("%s: %d target users" % (s.get("mail"), len(ts)))
            continue
        diff = {a: (s.get(a), ts[0].get(a)) for a in ATTRS if s.get(a) != ts[0].get(a)}
        if diff:
            probs.append("%s: target differs %s" % (s.get("mail"), diff))
    if len(X.users_list(sim.users(tgt_tid))) != len(src):
        probs.append("%d target users for %d source users" % (len(X.users_list(sim.users(tgt_tid))), len(src)))
    return probs


t = X.Tap()
tmp = X.tmpdir("no-link")
sim = X.Sim(tmp)
ok = False
try:
    tag = 0x7e3a0006
    env = X.Env(sim, tmp)
    src_tid, src_cid = X.guid(0xb1, tag), X.guid(0xc1, tag)
    tgt_tid, tgt_cid = X.guid(0xb2, tag), X.guid(0xc2, tag)
    env.add_tenant("s", src_tid, src_cid)
    sim.tenant(tgt_tid, "d.example", tgt_cid, "s3cret-value", ())  # no extension registered
    env.tenants["d"] = (tgt_tid, tgt_cid)
    sim.allow(src_tid, tgt_tid)
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, {"count": N, "seed": 43, "guest_fraction": 0.0,
                                                           "disabled_fraction": 0.0})
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    link = X.app_ext(tgt_cid)
    sim.call("POST", "/_admin/faults", {"tenant": tgt_tid, "route": "/extensionProperties$", "method": "POST",
                                        "kind": "status", "status": 404})

    seq = sim.last_seq()
    p = env.once()
    writes = [(r["route"], r.get("body")) for r in X.target_writes(sim, seq, tgt_tid)]
    inv = sum(1 for r, _ in writes if r == "invitations.post")
    named = [w for w in writes if link in str(w[1])]
    t.ok(p.returncode == 0 and p.stderr.count(WARN) == 1,
         "the cycle runs without the link attribute, with one warning (exit %d)" % p.returncode, p.stderr[-2000:])
    t.ok(inv == N and not problems(sim, src_tid, tgt_tid),
         "every user created once (%d invitations)" % inv, problems(sim, src_tid, tgt_tid))
    t.ok(not named and not any(link in str(u) for u in X.users_list(sim.users(tgt_tid))),
         "no write names the link attribute", named[:3])

    # ---- the store is lost: users are found by the mail they were invited
    # with, not invited again
    for sfx in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(tmp, "xtsync.db" + sfx)):
            os.unlink(os.path.join(tmp, "xtsync.db" + sfx))
    seq = sim.last_seq()
    p = env.once()
    writes = [(r["route"], r.get("body")) for r in X.target_writes(sim, seq, tgt_tid)]
    t.ok(p.returncode == 0 and not [w for w in writes if w[0] == "invitations.post"] and
         not problems(sim, src_tid, tgt_tid),
         "after a lost store: matched by e-mail, no invitation, no duplicate %s" % [w[0] for w in writes],
         p.stderr[-2000:] + str(problems(sim, src_tid, tgt_tid)))

    # ---- a change is one PATCH, without the attribute
    u = X.users_list(sim.users(src_tid))[2]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]), {"department": "Harbour"})
    seq = sim.last_seq()
    p = env.once()
    writes = [(r["route"], r.get("body")) for r in X.target_writes(sim, seq, tgt_tid)]
    t.ok(p.returncode == 0 and [w[0] for w in writes] == ["users.patch"] and link not in str(writes) and
         not problems(sim, src_tid, tgt_tid),
         "a changed department is one PATCH without the link attribute %s" % writes, p.stderr[-2000:])
    ok = t.failed == 0
finally:
    sim.call("DELETE", "/_admin/faults")
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
