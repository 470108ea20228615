#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Fault matrix, network side (TAP): the real xtsyncd --once against graphsim
# with injected faults — 429 + Retry-After (nothing sent to that tenant before
# it elapses, from the emulator's request log), 500/503/504, connection reset,
# a stall mid-body (short XTSYNC_REQUEST_TIMEOUT_MS), truncated and malformed
# JSON, an oversized body, a nextLink to a foreign host, 410 Gone while paging,
# token expiry mid-request, a busy token service (400 temporarily_unavailable:
# retried, not quarantined), a token service down while the current token is
# still valid (live daemon: the token stays in use) and revoked credentials (live daemon: quarantined
# at once, `xtsyncctl status` says so). After each: a clear log line, and the
# target converges (every change arrives, no duplicate, nothing lost).
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"
CA = "11111111-1111-4111-8111-111111111111"
CB = "22222222-2222-4222-8222-222222222222"
LINK = X.app_ext(CB)
DELTA = "/v1.0/users/delta"

# A stalled server must time out in seconds (the default is 120 s).
os.environ["XTSYNC_REQUEST_TIMEOUT_MS"] = "2000"

t = X.Tap()
tmp = X.tmpdir("faults")
sim = X.Sim(tmp)
ok = False
step = [0]


def change_source(n_new=2, n_patch=2, n_delete=0):
    """Create, change and delete some source users so the next cycle has work."""
    step[0] += 1
    k = step[0]
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": n_new, "seed": 100 + k, "prefix": "f%d" % k,
                                                     "guest_fraction": 0.0, "disabled_fraction": 0.0,
                                                     "with_manager": False})
    live = [u for u in X.users_list(sim.users(A)) if not u.get("deleted")]
    for u in live[k % 5: k % 5 + n_patch]:
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, u["id"]), {"jobTitle": "title %d" % k})
    for u in live[-n_delete:] if n_delete else []:
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, u["id"]))


def fault(**kw):
    kw.setdefault("tenant", "*")
    return sim.call("POST", "/_admin/faults", kw)["id"]


def clear():
    sim.call("DELETE", "/_admin/faults")


def converged(what):
    good, bad = X.check_converged(sim, A, B, LINK)
    t.ok(good, "%s: target converged (one user per source member, attributes, no duplicate)" % what, bad)


def scenario(name, faults, expect_rc, log_rx, n_delete=0, n_new=2):
    """One fault: change the source, inject, run a cycle, check the log line,
    then (if the faulted cycle could not finish) one clean cycle, and the invariants."""
    change_source(n_new=n_new, n_delete=n_delete)
    for f in faults:
        fault(**f)
    seq = sim.last_seq()
    p = env.once()
    hits = sum(f.get("hits", 0) for f in sim.call("GET", "/_admin/faults")["value"])
    clear()
    reqs = sim.requests(seq)["value"]
    t.ok(hits > 0 and p.returncode == expect_rc,
         "%s: the fault was hit (%d) and --once exits %d (got %d)" % (name, hits, expect_rc, p.returncode),
         p.stderr[-2500:])
    t.ok(re.search(log_rx, p.stderr) is not None, "%s: a clear log line (/%s/)" % (name, log_rx),
         "\n".join(line for line in p.stderr.splitlines() if "debug" not in line)[-2500:])
    if expect_rc != 0:
        p2 = env.once()
        t.ok(p2.returncode == 0, "%s: the next cycle (fault gone) succeeds" % name, p2.stderr[-2000:])
    converged(name)
    return p, reqs


try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    env.add_tenant("tgt", B, CB)
    sim.allow(A, B)
    # small pages so that every round is paged; tokens for a minute
    sim.call("POST", "/_admin/settings", {"page_size": 5, "token_lifetime_s": 60})
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 16, "seed": 5, "guest_fraction": 0.0,
                                                     "disabled_fraction": 0.0})
    env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=0)
    env.write_config()
    p = env.once()
    t.ok(p.returncode == 0, "initial cycle without faults", p.stderr[-2000:])
    converged("initial")

    # ---- 429 with Retry-After on the source's delta: nothing to that tenant before it elapses
    p, reqs = scenario("429 on users/delta", [dict(route=DELTA, kind="status", status=429, retry_after=3, count=1)],
                       0, r"HTTP 429; retry 1 \(Retry-After 3000 ms")
    r429 = [r for r in reqs if r["status"] == 429]
    early = [r for r in reqs if r429 and r["seq"] > r429[0]["seq"] and r["tenant"] == A and r["route"] != "token"
             and r["time"] < r429[0]["time"] + 3 - 0.05]
    t.ok(len(r429) == 1 and not early and any(r["seq"] > r429[0]["seq"] and r["tenant"] == A for r in reqs),
         "429: no request to the source tenant before Retry-After (3 s) elapsed (emulator log)",
         [(r["seq"], round(r["time"] - r429[0]["time"], 3), r["path"][:50]) for r in early][:5])

    # ---- 429 on a $batch sub-request (an invitation) to the target
    p, reqs = scenario("429 on an invitation", [dict(route="/invitations", kind="status", status=429,
                                                     retry_after=3, count=1)], 0,
                       r"POST /invitations in \$batch -> HTTP 429 \(XTS_ETHROTTLED\); retry 1 in 3000 ms")
    r429 = [r for r in reqs if r["status"] == 429]
    # envelopes already in flight when the 429 was answered (up to 4) arrive within
    # milliseconds; anything later than 0.3 s and before the 3 s elapsed is a violation
    early = [r for r in reqs if r429 and r["seq"] > r429[0]["seq"] and r["tenant"] == B and r["route"] != "token"
             and r429[0]["time"] + 0.3 < r["time"] < r429[0]["time"] + 3 - 0.05]
    t.ok(len(r429) == 1 and not early,
         "429 on a sub-request: nothing sent to the target tenant before Retry-After elapsed",
         [(r["seq"], round(r["time"] - r429[0]["time"], 3), r["route"]) for r in early][:5])

    # ---- server errors
    for st in (500, 503, 504):
        scenario("%d on users/delta" % st, [dict(route=DELTA, kind="status", status=st, count=2)], 0,
                 r"HTTP %d; retry 2" % st)
    scenario("503 on \\$batch writes", [dict(route=r"/v1\.0/\$batch", kind="status", status=503, count=1)], 0,
             r"HTTP 503; retry 1")

    # ---- transport faults (more resets than curl's pool of idle connections absorbs)
    scenario("connection reset", [dict(route=DELTA, kind="reset", count=6)], 0,
             r"users/delta.*(transport error|Recv failure|reset)")
    scenario("stall mid-body on users/delta", [dict(route=DELTA, kind="stall_body", seconds=5, count=1)], 0,
             r"users/delta.*(timed out|Timeout|XTS_ETIMEDOUT)")
    scenario("stall mid-body on \\$batch (writes applied, answer lost)",
             [dict(route=r"/v1\.0/\$batch", kind="stall_body", seconds=5, count=1)], 0,
             r"\$batch.*(timed out|Timeout|XTS_ETIMEDOUT)")
    scenario("truncated users/delta", [dict(route=DELTA, kind="truncate", count=1)], 0,
             r"users/delta.*transport error \(transfer closed")
    scenario("truncated \\$batch answer", [dict(route=r"/v1\.0/\$batch", kind="truncate", count=1)], 0,
             r"\$batch.*transport error")

    # ---- bad bodies: the cycle fails cleanly, keeps its delta link, the next one converges
    scenario("malformed JSON", [dict(route=DELTA, kind="malformed", count=1)], 1,
             r"reading source users failed \(parse error InvalidJson\); no sweep, the delta link is kept")
    scenario("oversized body", [dict(route=DELTA, kind="oversize", count=1)], 1,
             r"reading source users failed \(response or request too large XTS_ETOOBIG\)")
    p, reqs = scenario("nextLink to a foreign host", [dict(route=DELTA, kind="foreign_next", count=1)], 1,
                       r"refusing an @odata\.(next|delta)Link that is not on http://127\.0\.0\.1:\d+ "
                       r"\(http://evil\.example/")
    t.ok("evil.example" not in "".join(r["path"] for r in reqs), "the foreign link was never requested")

    # ---- links and annotations another faithful emulator may write: the
    # links' host spelled localhost, server-relative links, and every
    # optional annotation present as null ("@removed": null on present
    # users: not a deletion; a null nextLink: no more pages)
    scenario("links naming the endpoint localhost", [dict(route=DELTA, kind="alias_next", count=2)], 0,
             r"cycle \d+ success")
    scenario("server-relative links", [dict(route=DELTA, kind="relative_next", count=2)], 0,
             r"cycle \d+ success")
    p, reqs = scenario("null annotations", [dict(route=DELTA, kind="null_annotations", count=3)], 0,
                       r"cycle \d+ success", n_new=3)
    t.ok(re.search(r"(disabled|deleted) [1-9]", p.stderr) is None,
         "null annotations: no user taken for removed", p.stderr[-1500:])

    # ---- 410 Gone in the middle of paging an incremental round
    change_source(n_new=12, n_patch=3, n_delete=1)   # > 2 pages of changes
    fault(route=DELTA, kind="stall_before", seconds=3, skip=1, count=1)   # the second page waits
    seq = sim.last_seq()
    d = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once", "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = X.poll(lambda: [r for r in sim.requests(seq)["value"] if r["route"] == "users.delta" and
                            r["status"] == 200], timeout=60, step=0.05)
    sim.call("POST", "/_admin/tenants/%s/invalidate-delta" % A)
    err = d.communicate(timeout=120)[1]
    clear()
    reqs = sim.requests(seq)["value"]
    g410 = [r for r in reqs if r["status"] == 410]
    t.ok(first and g410 and g410[0]["seq"] > first[0]["seq"] and d.returncode == 0,
         "410 after the first page of an incremental round: the cycle resyncs and exits 0 (rc %d, %d x 410)" %
         (d.returncode, len(g410)), err[-2500:])
    t.ok(re.search(r"users delta token no longer valid \(resyncRequired\); full resync", err) is not None,
         "410: a log line says the round restarts as a full resync",
         "\n".join(line for line in err.splitlines() if "debug" not in line)[-2000:])
    converged("410 while paging")

    # ---- token expiry mid-request: the token dies while the request is stalled -> 401 -> new token
    # (lifetime 2 s, refreshed by the client at 80 %; the server holds the second page
    # 3 s before checking the token, and the client waits up to 6 s for it)
    sim.call("POST", "/_admin/settings", {"token_lifetime_s": 2})
    os.environ["XTSYNC_REQUEST_TIMEOUT_MS"] = "6000"
    p, reqs = scenario("token expiry mid-cycle", [dict(route=DELTA, kind="stall_before", seconds=3, skip=1,
                                                       count=1)], 0,
                       r"HTTP 401 InvalidAuthenticationToken: Lifetime validation failed.*getting a new token",
                       n_new=8)
    r401 = [r for r in reqs if r["status"] == 401]
    tok_after = [r for r in reqs if r401 and r["route"] == "token" and r["seq"] > r401[0]["seq"] and
                 r["tenant"] == A and r["status"] == 200]
    after = [r for r in reqs if tok_after and r["seq"] > tok_after[0]["seq"] and r["route"] == "users.delta"]
    t.ok(r401 and tok_after and after and after[0]["status"] == 200, "token expiry: the 401 (expired token) was followed by a new token and success",
         [(r["seq"], r["route"], r["status"]) for r in reqs][:12])
    sim.call("POST", "/_admin/settings", {"token_lifetime_s": 60})
    os.environ["XTSYNC_REQUEST_TIMEOUT_MS"] = "2000"

    # ---- the token service is busy: "temporarily_unavailable" (AADSTS90006) is
    # retried, not taken for refused credentials (entra-docs
    # identity-platform/reference-error-codes.md: react to `error`;
    # temporarily_unavailable: "Retry the request."). Not quarantined.
    p, reqs = scenario("400 temporarily_unavailable on the token route",
                       [dict(route="oauth2", kind="status", status=400, count=1)], 0,
                       r"AADSTS90006")
    t.ok("quarantin" not in p.stderr, "temporarily_unavailable: the job is not quarantined",
         "\n".join(line for line in p.stderr.splitlines() if "quarantin" in line)[-1500:])

    # ---- the token service fails while the current token is still valid: the
    # early refresh fails, the token in hand stays in use until shortly before
    # it expires (as MSAL and the Azure SDKs do), cycles go on succeeding
    sim.call("POST", "/_admin/settings", {"token_lifetime_s": 20})
    seq = sim.last_seq()
    env.jobs[0][3]["interval"] = "1s"
    env.write_config()
    d = X.start_daemon(env)
    try:
        tok = X.poll(lambda: [r for r in sim.requests(seq)["value"] if r["route"] == "token" and
                              r["tenant"] == A and r["status"] == 200], timeout=60, step=0.2)
        t0 = tok[0]["time"]
        time.sleep(max(0.0, t0 + 12 - time.time()))
        fault(route="oauth2", kind="status", status=503, retry_after="none", count=1000)
        bad = X.poll(lambda: [r for r in sim.requests(seq)["value"] if r["route"] == "token" and
                              r["status"] == 503], timeout=30, step=0.2)
        time.sleep(max(0.0, t0 + 17.5 - time.time()))
        reqs = sim.requests(seq)["value"]
        used = [r for r in reqs if bad and r["route"] == "users.delta" and r["status"] == 200 and
                r["seq"] > bad[0]["seq"]]
        t.ok(bad and bad[0]["time"] > t0 + 14 and used,
             "token service down before the token expires: after the failed early refresh (at %.1f s of 20 s) "
             "the current token stays in use (%d delta requests answered 200)" %
             ((bad[0]["time"] - t0) if bad else -1, len(used)),
             [(round(r["time"] - t0, 1), r["route"], r["status"]) for r in reqs][-20:])
        clear()
        seq4 = sim.last_seq()
        X.poll(lambda: [r for r in sim.requests(seq4)["value"] if r["route"] == "users.delta" and
                        r["status"] == 200], timeout=60, step=0.2)
    finally:
        clear()
        rc = X.stop_daemon(d)
    with open(os.path.join(tmp, "live.log")) as f:
        live = f.read()
    t.ok(rc == 0 and re.search(r"token refresh for tenant \S+ app \S+ failed: .*stays in use", live),
         "a warning says the refresh failed and the current token stays in use",
         "\n".join(line for line in live.splitlines() if "auth" in line)[-1500:])
    del env.jobs[0][3]["interval"]
    env.write_config()
    sim.call("POST", "/_admin/settings", {"token_lifetime_s": 60})

    # ---- credentials revoked while the daemon runs: quarantined at once, status says so
    sim.call("POST", "/_admin/settings", {"token_lifetime_s": 3})
    d = X.start_daemon(env)
    try:
        X.poll(lambda: "success" in env.ctl("status").stdout, timeout=60)
        sim.call("POST", "/_admin/tenants/%s/apps" % A, {"client_id": CA, "secret": "rotated-elsewhere"})
        change_source()
        seq = sim.last_seq()

        def quarantined():
            st = env.ctl("status")
            if "quarantined" in st.stdout:
                return st
            env.ctl("sync", "s2t")
            return None
        st = X.poll(quarantined, timeout=60, step=1.0)
        t.ok(st is not None and re.search(r"authentication failed \(credentials\) \(quarantined: AADSTS7000215\)",
                                          st.stdout),
             "revoked secret: `xtsyncctl status` shows the job quarantined with Microsoft's code AADSTS7000215",
             st.stdout if st else env.ctl("status").stdout)
        reqs = sim.requests(seq)["value"]
        toks = [r for r in reqs if r["route"] == "token" and r["tenant"] == A and r["status"] == 401]
        t.ok(len(toks) == 1, "quarantined at the first refusal: one rejected token request, not retried (%d)" %
             len(toks), [(r["route"], r["status"]) for r in reqs][-10:])
        # sync on a quarantined job clears the quarantine and retries now, as
        # Graph's synchronizationJob start does ("If the job is in quarantine,
        # the quarantine status is cleared"): the connection test again, the
        # source's token refused once more, quarantined again; no write
        seq2 = sim.last_seq()
        sy = env.ctl("sync", "s2t")
        X.poll(lambda: [r for r in sim.requests(seq2)["value"] if r["route"] == "token"], timeout=30)
        X.poll(lambda: " running " not in env.ctl("status").stdout, timeout=30)
        st2 = env.ctl("status")
        sent = [(r["route"], r["tenant"], r["status"]) for r in sim.requests(seq2)["value"]]
        src_sent = [x for x in sent if x[1] == A]
        writes = [x for x in sim.requests(seq2)["value"] if x["method"] != "GET" and x["route"] != "token"]
        t.ok(sy.returncode == 0 and "quarantine cleared; cycle started" in sy.stdout and
             src_sent == [("token", A, 401)] and not writes and "quarantined" in st2.stdout and
             "7000215" in st2.stdout,
             "sync on the quarantined job clears the quarantine and retries now: the source's token refused "
             "once, quarantined again, nothing written (%s)" % sy.stdout.strip(), sent[:8] + [st2.stdout])
        # no retry runs by itself in between: the quarantine's back-off holds
        seq3 = sim.last_seq()
        time.sleep(2.0)
        t.ok(not sim.requests(seq3)["value"], "after it, nothing is sent until the next retry time",
             sim.requests(seq3)["value"][:5])
    finally:
        rc = X.stop_daemon(d)
    with open(os.path.join(tmp, "live.log")) as f:
        live = f.read()
    t.ok(rc == 0 and re.search(r"quarantin.*7000215|7000215.*quarantin", live) is not None,
         "the daemon logged the quarantine with the AADSTS code and stopped cleanly (rc %s)" % rc,
         "\n".join(line for line in live.splitlines() if "debug" not in line)[-2000:])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
