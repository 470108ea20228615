#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Credentials revoked while the daemon holds a token that still works for a
# moment (TAP, xtsyncd against graphsim). Graph then answers a request 401
# (the token expired in flight, or was revoked), the client asks for a new
# token, and the token service refuses the credentials (AADSTS7000215). That
# is the same verdict as a refused token at the start of the connection test:
# the job is quarantined at once, with Microsoft's code, in that cycle. Before,
# the refusal reached the connection test through a Graph request and counted
# as a Graph error: the cycle failed without a quarantine and the next cycle
# asked the token service again.
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("reauth")
sim = X.Sim(tmp)
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x7e9c0001, 4, 5, with_manager=False)
    src_cid = env.tenants["s"][1]
    env.add_job("j", "s", "d", scope="all")
    env.write_config()
    d = X.start_daemon(env)
    try:
        X.poll(lambda: "success" in env.ctl("status").stdout, timeout=60)
        time.sleep(1.5)  # a token younger than 1 s is not fetched again for a 401
        # the secret is rotated elsewhere, and the next request with the
        # token in hand is answered 401
        sim.call("POST", "/_admin/tenants/%s/apps" % src_tid, {"client_id": src_cid, "secret": "rotated-elsewhere"})
        sim.call("POST", "/_admin/faults", {"tenant": src_tid, "route": "crossTenantAccessPolicy", "kind": "status",
                                            "status": 401, "count": 1})
        seq = sim.last_seq()
        env.ctl("sync", "j")
        st = X.poll(lambda: (lambda s: s if "quarantined" in s.stdout else None)(env.ctl("status")), timeout=30)
        X.poll(lambda: " running " not in env.ctl("status").stdout, timeout=30)
        reqs = sim.requests(seq)["value"]
    finally:
        rc = X.stop_daemon(d)
    with open(os.path.join(tmp, "live.log")) as f:
        live = f.read()
    refused = [r for r in reqs if r["route"] == "token" and r["tenant"] == src_tid and r["status"] == 401]
    cycles = [ln for ln in live.splitlines() if re.search(r"job j: cycle \d+ failed: ", ln)]
    t.ok(st is not None and "AADSTS7000215" in st.stdout and len(refused) == 1 and len(cycles) == 1,
         "a 401, then the new token refused: quarantined in that cycle (%d token refusal(s), %d failed cycle(s))" %
         (len(refused), len(cycles)), (st.stdout if st else env.ctl("status").stdout, cycles))
    t.ok(rc == 0 and "quarantined (AADSTS7000215)" in live, "the log says so; the daemon stops cleanly",
         "\n".join(ln for ln in live.splitlines() if "debug" not in ln)[-1500:])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
