#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Fail-Nth allocation over a whole cycle (TAP): failnth_driver runs one
# xtsyncd --once cycle in-process with the Nth allocation failing (jansson,
# SQLite, libcurl and ours all go through lib/mem.c), checks the store with
# PRAGMA integrity_check, then runs a normal cycle in the same process. Here:
# no crash, no leak (LeakSanitizer in the ASan build), a sound store, and the
# normal cycle converges (target = mapped source, one target per source user).
# Two scenarios, each N from a fresh world: an initial cycle (empty store and
# target) and an incremental one (a create, an update, a delete in flight).
# A fault inside libcurl 7.88 after one of its own allocations failed is a
# known libcurl bug (failnth_driver.c): listed, not counted as a failure.
# An allocation failing inside jansson's parser ends the process on purpose
# (lib/mem.c: jansson 2.14 would corrupt memory): then the store must be
# sound and a normal cycle from it must converge.
#   default              N = 1..120 (initial; the start-up) or 1..8 (incremental) plus an
#                        evenly spaced sample (offset from the seed)
#   XTS_FAILNTH_FULL=1   every N = 1, 2, 3, ... until a cycle completes
#   XTS_FAILNTH_FROM=N   with FULL: start the sweep at N (resume a long run)
#   XTS_FAILNTH_POINTS=K sample size per scenario (default 40)
#   XTS_FAILNTH_SEED=S   another sample (default 1; "random" picks one and prints it)
#   XTS_FAILNTH_ONLY=initial|incremental  one scenario
#   XTS_FAILNTH_HANG_S=S a driver run longer than S seconds is a hang (default 60)
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

DRIVER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(X.BUILD, "tests/integration/failnth_driver")
FULL = bool(os.environ.get("XTS_FAILNTH_FULL"))
POINTS = int(os.environ.get("XTS_FAILNTH_POINTS") or 40)
# CI samples the same N every run (seed 1); XTS_FAILNTH_SEED=random explores
SEED = os.environ.get("XTS_FAILNTH_SEED") or "1"
SEED = random.SystemRandom().randrange(1, 1 << 31) if SEED == "random" else int(SEED)
ONLY = os.environ.get("XTS_FAILNTH_ONLY", "")
HANG_S = int(os.environ.get("XTS_FAILNTH_HANG_S") or 60)   # a driver silent this long hangs
CS = "11111111-1111-4111-8111-1111111111f1"
CT = "22222222-2222-4222-8222-2222222222f2"
print("# seed %d (XTS_FAILNTH_SEED=%d), %s" % (SEED, SEED, "full sweep" if FULL else "%d sampled N" % POINTS))
rng = random.Random(SEED)

t = X.Tap()
tmp = X.tmpdir("failnth")
sim = X.Sim(tmp)
ok = False
serial = [0]
LIBCURL_FAULTS = []
JSON_EXITS = []


def world(incremental):
    """A fresh source (3 members, with managers) and target, a config in its own
    dir; for incremental, an initial cycle done and then a create, an update and a
    delete in the source. Returns (env, source id, target id)."""
    serial[0] += 1
    n = serial[0]
    src = "aaaaaaaa-0000-4000-8000-%012x" % n
    tgt = "bbbbbbbb-0000-4000-8000-%012x" % n
    env = X.Env(sim, os.path.join(tmp, "w%d" % n))
    sim.tenant(src, "s%d.example" % n, CS, "s3cret-value", [X.app_ext(CS)])
    sim.tenant(tgt, "t%d.example" % n, CT, "s3cret-value", [X.app_ext(CT)])
    sim.allow(src, tgt)
    sim.call("POST", "/_admin/tenants/%s/seed" % src, {"count": 3, "seed": 11, "guest_fraction": 0.0,
                                                       "disabled_fraction": 0.0})
    env.tenants = {"src": (src, CS), "tgt": (tgt, CT)}
    env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=0, deprovision="disable")
    env.write_config()
    if incremental:
        p = env.once()
        if p.returncode != 0:
            raise RuntimeError("incremental world: the initial cycle failed: %s" % p.stderr[-1500:])
        us = X.users_list(sim.users(src))
        sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (src, us[0]["id"]),
                 {"department": "Failure Injection", "displayName": "Nth Allocation"})
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src, us[1]["id"]))
        sim.call("POST", "/_admin/tenants/%s/users" % src, {
            "displayName": "Fresh User", "givenName": "Fresh", "surname": "User", "mailNickname": "fresh",
            "mail": "fresh@s%d.example" % n, "userPrincipalName": "fresh@s%d.example" % n,
            "department": "QA", "jobTitle": "Tester", "userType": "Member", "accountEnabled": True,
            "businessPhones": [], "otherMails": []})
    return env, src, tgt


# A transfer libcurl lost after one of its own allocations failed is failed by
# lib/http.c's stall watchdog 5 s past the request timeout: a short timeout
# keeps that well inside HANG_S (a transfer still stuck then is a real hang).
DRIVER_ENV = dict(os.environ)
DRIVER_ENV.setdefault("XTSYNC_REQUEST_TIMEOUT_MS", "8000")


def keep(env, src, tgt):
    """For the post-mortem of a failing N: the emulator's log of this world's requests."""
    log = [e for e in sim.call("GET", "/_admin/requests")["value"] if e.get("tenant") in (src, tgt)]
    with open(os.path.join(env.tmp, "requests.json"), "w") as f:
        json.dump(log, f, indent=1)


def drive(env, n, sticky):
    try:
        p = subprocess.run([DRIVER, env.conf, env.tmp, str(n), "1" if sticky else "0"], capture_output=True,
                           text=True, timeout=HANG_S, env=DRIVER_ENV)
    except subprocess.TimeoutExpired as e:
        p = subprocess.CompletedProcess(e.cmd, -1, "", "timed out after %d s (a hang)" % HANG_S)
    with open(os.path.join(env.tmp, "driver.log"), "w") as f:
        f.write(p.stdout + "\n" + p.stderr)
    fields = p.stdout.split()
    r = {fields[i]: fields[i + 1] for i in range(0, len(fields) - 1, 2)} if fields[:1] == ["n"] else {}
    return p, r


def one(incremental, n, sticky=False):
    """Run N in a fresh world; returns (problems, reached)."""
    env, src, tgt = world(incremental)
    p, r = drive(env, n, sticky)
    probs = []
    if p.returncode == 86 and "libcurl-fault" in p.stdout:
        # libcurl 7.88's own out-of-memory path corrupted its socket hash and
        # faulted inside libcurl (see failnth_driver.c): third-party, counted apart
        LIBCURL_FAULTS.append(n)
        print("# N=%d: fault inside libcurl after one of its allocations failed (known libcurl bug)" % n)
        return probs, True
    if p.returncode == 1 and "out of memory inside the JSON parser" in p.stderr and not r:
        # lib/mem.c ends the process when an allocation fails while jansson
        # parses (jansson 2.14 would corrupt memory): what a restart finds
        # must be sound, and a normal cycle from it must converge
        # (the restart's cycle, then, with escrowed retries made due as the
        # driver does after a failing cycle, one more)
        JSON_EXITS.append(n)
        p2, r2 = drive(env, 0, False)
        p3, r3 = drive(env, 0, False)
        if p2.returncode != 0 or not r2 or r2.get("integrity") not in ("ok", "absent"):
            probs.append("after the JSON-parser OOM exit, the restart failed (exit %d, integrity %s): %s" %
                         (p2.returncode, r2.get("integrity"), (p2.stdout + p2.stderr)[-1500:]))
        elif p3.returncode != 0 or r3.get("first") != "0":
            probs.append("after the JSON-parser OOM exit, the next normal cycle failed (exit %d): %s" %
                         (p3.returncode, (p3.stdout + p3.stderr)[-1500:]))
        else:
            probs += X.sync_problems(sim, src, tgt, X.app_ext(CT))
        if probs:
            probs.append("kept in %s" % env.tmp)
        else:
            X.cleanup(env.tmp, True)
        return probs, True
    if p.returncode != 0 or not r:
        probs.append("driver exit %d (crash or leak): %s" % (p.returncode, p.stderr[-1500:]))
        return probs, True
    if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        probs.append("sanitizer report: %s" % p.stderr[-1500:])
    if r["first"] not in ("0", "1"):
        probs.append("the failing cycle exited %s (expected 0 or 1)" % r["first"])
    if r["integrity"] not in ("ok", "absent"):
        probs.append("store integrity_check after the failing cycle: %s" % r["integrity"])
    if r["second"] != "0":
        probs.append("the next normal cycle exited %s" % r["second"])
    probs += X.sync_problems(sim, src, tgt, X.app_ext(CT))
    if probs:
        keep(env, src, tgt)
        probs.append("kept in %s (with the emulator's requests.json)" % env.tmp)
    else:
        X.cleanup(env.tmp, True)
    return probs, r["reached"] == "1"


def count(incremental):
    env, _, _ = world(incremental)
    p, r = drive(env, 0, False)
    if p.returncode != 0 or r.get("first") != "0":
        raise RuntimeError("a normal cycle under the driver failed: %s" % (p.stdout + p.stderr)[-2000:])
    return int(r["allocs"])


try:
    for scen in ("initial", "incremental"):
        if ONLY and ONLY != scen:
            continue
        inc = scen == "incremental"
        total = count(inc)
        if FULL:
            ns = None
        else:
            step = max(1, total // POINTS)
            off = rng.randrange(step)
            # every N of the start-up (config, store, runner, jobs: ~100
            # allocations) once, in the initial scenario: a failure there
            # once leaked the whole runner (N=79 in session 20's full sweep)
            first = 121 if not inc else 9
            ns = sorted(set(list(range(1, first)) +
                            [min(total - 1, first + off + i * step) for i in range(POINTS)]))
        t0 = time.monotonic()
        fails, tried, n, done = [], 0, int(os.environ.get("XTS_FAILNTH_FROM") or 1) - 1, False
        while True:
            if ns is None:
                n += 1
            elif not ns:
                break
            else:
                n = ns.pop(0)
            probs, reached = one(inc, n)
            tried += 1
            if probs:
                fails.append((n, probs))
                print("# %s N=%d: %s" % (scen, n, "; ".join(probs)[:1500].replace("\n", " / ")))
            if not reached:
                done = True
                break
            if FULL and n % 500 == 0:
                print("# %s: N=%d after %.0f s, %d failures" % (scen, n, time.monotonic() - t0, len(fails)))
                sys.stdout.flush()
        el = time.monotonic() - t0
        print("# %s cycle: %d allocations; %d values of N tried in %.1f s%s" %
              (scen, total, tried, el, ", up to N=%d where the cycle completed" % n if done else ""))
        t.ok(tried > 0 and not fails, "%s cycle: failing allocation N (%d values, of %d allocations): no crash, "
             "leak or corrupt store, and the next cycle converges" % (scen, tried, total),
             "\n".join("N=%d: %s" % (k, "; ".join(v)[:600]) for k, v in fails[:8]))
        if FULL:
            t.ok(done, "%s cycle: the sweep reached an N past the end of the cycle" % scen)
        # true out-of-memory from N on (every later allocation fails too)
        if not FULL:
            sfails = []
            for n in sorted(rng.sample(range(1, total), 4)):
                probs, _ = one(inc, n, sticky=True)
                if probs:
                    sfails.append((n, probs))
            t.ok(not sfails, "%s cycle: every allocation failing from N on until memory comes back "
                 "3 s later (4 values): no crash, leak or hang, then the next cycle converges" % scen,
                 "\n".join("N=%d: %s" % (k, "; ".join(v)[:600]) for k, v in sfails))
    if JSON_EXITS:
        print("# %d values of N failed an allocation inside jansson's parser: clean exit, then a sound store "
              "and a converging cycle: %s" % (len(JSON_EXITS), JSON_EXITS[:50]))
    if LIBCURL_FAULTS:
        print("# %d values of N faulted inside libcurl (third-party, not counted as failures): %s" %
              (len(LIBCURL_FAULTS), LIBCURL_FAULTS[:50]))
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
