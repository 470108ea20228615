#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Source users that are disabled (TAP, xtsyncd --once against graphsim).
# The built-in schema maps accountEnabled, so a disabled source user is
# created disabled in the target. Its link must say so: when it later leaves
# scope (here: deleted in the source, deprovision = disable) there is nothing
# to disable, so no PATCH and no Disable line; an enabled user leaving scope
# gets exactly one Disable whose accountEnabled goes from true to false.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 8


t = X.Tap()
tmp = X.tmpdir("disabled")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0xd15a0001, N, 47, disabled_fraction=0.5)
    env.add_job("j", "s", "d", scope="all", deprovision="disable", deletion_threshold=0)
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    off = [u for u in src if u.get("accountEnabled") is False]
    on = [u for u in src if u.get("accountEnabled") is not False]

    p = env.once()
    tgt = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and off and on and len(tgt) == N and
         all(tgt[u["id"]].get("accountEnabled") is False for u in off) and
         all(tgt[u["id"]].get("accountEnabled") is True for u in on),
         "%d disabled and %d enabled source users created as such" % (len(off), len(on)), p.stderr[-1500:])

    gone_off, gone_on = off[0], on[0]
    for u in (gone_off, gone_on):
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]))
    seq = sim.last_seq()
    before = len(env.provlog())
    p = env.once()
    writes = [r["path"] for r in X.target_writes(sim, seq, tgt_tid)]
    lines = env.provlog()[before:]
    dis = [e for e in lines if e.get("action") == "Disable"]
    props = [(m.get("displayName"), m.get("oldValue"), m.get("newValue"))
             for e in dis for m in e.get("modifiedProperties", [])]
    t.ok(p.returncode == 0 and len(dis) == 1 and dis[0]["sourceIdentity"]["id"] == gone_on["id"] and
         not any(tgt[gone_off["id"]]["id"] in w for w in writes),
         "deleted in the source: one Disable, for the enabled user; nothing written to the one created disabled "
         "(%d Disable lines, writes %s)" % (len(dis), writes), [e.get("sourceIdentity") for e in dis])
    t.ok(len(props) == 1 and props[0][0] == "accountEnabled" and props[0][1] != props[0][2],
         "the Disable's modifiedProperties: accountEnabled %r -> %r" % (props[0][1:] if props else ("?", "?")),
         props)
    now = X.linked(sim, tgt_tid, link)
    t.ok(now[gone_on["id"]].get("accountEnabled") is False and now[gone_off["id"]].get("accountEnabled") is False
         and sum(1 for u in now.values() if u.get("accountEnabled")) == len(on) - 1,
         "both are disabled in the target, the others unchanged")
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
