#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A source attribute holding U+0000 (TAP, xtsyncd --once against graphsim).
# JSON may carry it as \u0000 (RFC 8259, section 7); jansson refuses it
# without JSON_ALLOW_NUL, and no C string can hold it, so one user's stray
# escape used to fail every users/delta page of its job, cycle after cycle.
# Graph's answers are now read with it replaced by U+FFFD
# (xts_json_loadb_graph): the user is synced with U+FFFD in its place, and
# the other users and later cycles are not held up.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 6

t = X.Tap()
tmp = X.tmpdir("nul-attr")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x0a110001, N, 47)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    src = X.users_list(sim.users(src_tid))
    odd = src[2]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, odd["id"]), {"department": "R&D\x00Ops"})

    p = env.once()
    tgt = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and len(tgt) == N, "an attribute holding U+0000: the initial cycle succeeds, "
         "all %d users created" % N, (p.returncode, len(tgt), p.stderr[-1500:]))
    t.ok(tgt.get(odd["id"], {}).get("department") == "R&D\ufffdOps",
         "that user's department arrives with U+FFFD in place of U+0000", tgt.get(odd["id"]))

    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, odd["id"]), {"jobTitle": "\x00"})
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src_tid, src[4]["id"]), {"jobTitle": "Pilot"})
    p = env.once()
    tgt = X.linked(sim, tgt_tid, link)
    t.ok(p.returncode == 0 and tgt[odd["id"]].get("jobTitle") == "\ufffd" and
         tgt[src[4]["id"]].get("jobTitle") == "Pilot",
         "an incremental cycle with U+0000 in a delta page succeeds and writes both changes",
         (p.returncode, tgt[odd["id"]].get("jobTitle"), p.stderr[-1500:]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
