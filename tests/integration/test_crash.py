#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Crash convergence (TAP): SIGKILL xtsyncd --once at random instants (seeded)
# while creates, updates and deletes are in flight, restart it, and once a clean
# --once run settles check the invariants (target = mapped in-scope source, one
# target per source user, no deletion above the threshold). Power-loss flavour:
# freeze the daemon, copy xtsync.db/-wal/-shm, let it go on and kill it, then
# start from the copy (the store is now behind the target).
#   XTS_CRASH_SEED=N     reproduce a run (the seed is printed)
#   XTS_CRASH_POINTS=N   kill points (default 20; 200 for the long run)
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

SEED = int(os.environ.get("XTS_CRASH_SEED") or random.SystemRandom().randrange(1, 1 << 31))
POINTS = int(os.environ.get("XTS_CRASH_POINTS") or 20)
THRESHOLD = 6
N_USERS = 30
print("# seed %d, %d kill points (reproduce: XTS_CRASH_SEED=%d XTS_CRASH_POINTS=%d)" % (SEED, POINTS, SEED, POINTS))
rng = random.Random(SEED)

A = "aaaaaaaa-0000-4000-8000-0000000000c1"
CA = "11111111-1111-4111-8111-1111111111c1"
CB = "22222222-2222-4222-8222-2222222222c2"
DEPTS = ["Sales", "Legal", "R&D", "Finance", "Ops", "Support"]
TITLES = ["Engineer", "Analyst", "Manager", "Director", "Clerk"]

t = X.Tap()
tmp = X.tmpdir("crash")
sim = X.Sim(tmp)
ok = False
stats = {"killed": 0, "finished": 0, "powerloss": 0, "fresh": 0, "wiped": 0, "resync": 0, "mass": 0,
         "double": 0, "settle_runs": 0}
failures = []


class World:
    """The job s2t from tenant A to the current target (replaced by 'fresh' points)."""

    def __init__(self):
        self.gen = 0
        self.created = 0
        self.new_target()

    def new_target(self):
        self.gen += 1
        self.tgt = "bbbbbbbb-0000-4000-8000-%012x" % self.gen
        sim.tenant(self.tgt, "t%d.example" % self.gen, CB, "s3cret-value", [X.app_ext(CB)])
        sim.allow(A, self.tgt)
        self.state = os.path.join(tmp, "state%d" % self.gen)
        self.env = X.Env(sim, self.state)
        self.env.tenants = {"src": (A, CA), "tgt": (self.tgt, CB)}
        self.env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=THRESHOLD, deprovision="disable")
        self.env.write_config()

    def members(self, live=True):
        return [u for u in X.users_list(sim.users(A)) if u.get("userType") == "Member" and
                bool(u.get("deleted")) != live]

    def mutate(self, deletions=True):
        """A random batch of source changes; returns a short description."""
        did = []
        live = self.members()
        for _ in range(rng.randint(0, 4)):
            self.created += 1
            n = "crash%d" % self.created
            sim.call("POST", "/_admin/tenants/%s/users" % A, {
                "displayName": "Crash User %d" % self.created, "givenName": "Crash", "surname": str(self.created),
                "mailNickname": n, "mail": "%s@src.example" % n, "userPrincipalName": "%s@src.example" % n,
                "department": rng.choice(DEPTS), "jobTitle": rng.choice(TITLES), "userType": "Member",
                "accountEnabled": True, "businessPhones": [], "otherMails": []})
            did.append("create")
        # a source account disabled counts against the deletion threshold as a
        # deletion does: disables and deletions together stay within it here
        # (five disables and two deletions once held a point; mass deletions
        # are their own points)
        ndel = rng.randint(0, 2) if deletions else 0
        offs = 0
        for u in rng.sample(live, min(len(live), rng.randint(0, 5))):
            ch = {}
            for a in rng.sample(["displayName", "department", "jobTitle", "accountEnabled"], rng.randint(1, 2)):
                if a == "displayName":
                    ch[a] = "%s %d" % (u.get("displayName", "x").split(" #")[0], rng.randint(1, 999))
                elif a == "department":
                    ch[a] = rng.choice(DEPTS)
                elif a == "jobTitle":
                    ch[a] = rng.choice(TITLES)
                elif u.get("accountEnabled", True) is False or offs + ndel < THRESHOLD:
                    ch[a] = not u.get("accountEnabled", True)
                    offs += ch[a] is False
            if ch:
                sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, u["id"]), ch)
                did.append("update")
        for u in rng.sample(live, min(len(live), ndel)):
            sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, u["id"]))
            did.append("delete")
        gone = self.members(live=False)
        for u in rng.sample(gone, min(len(gone), rng.randint(0, 1))):
            sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (A, u["id"]))
            did.append("restore")
        return did


def run_daemon(env):
    with open(os.path.join(env.tmp, "killed.log"), "a") as log:
        return subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--once",
                                 "--foreground"], stdout=subprocess.DEVNULL, stderr=log)


def kill_at_random(w, est, est_s, power=False):
    """Start xtsyncd --once and SIGKILL it at a random instant: after K of the
    emulator's requests or after a random delay. Power-loss points freeze it at
    that instant, copy the store, let it run a little longer, then kill it.
    Returns (killed, power_copy_dir or None, requests seen)."""
    by_requests = rng.random() < 0.6
    k = rng.randint(1, max(1, est * 4 // 5))
    delay = rng.uniform(0.0, est_s)
    linger = rng.uniform(0.0, 0.4)
    seq = sim.last_seq()
    p = run_daemon(w.env)
    t0 = time.monotonic()
    hit = False
    while p.poll() is None and time.monotonic() - t0 < 120:
        if by_requests:
            if len(sim.requests(seq)["value"]) >= k:
                hit = True
        elif time.monotonic() - t0 >= delay:
            hit = True
        if hit:
            break
        time.sleep(0.005)
    copy = None
    if hit and p.poll() is None:
        if power:
            # What a crash leaves: the files as they are at one instant. A copy taken
            # while the daemon writes could tear across a checkpoint, which no crash
            # does, so freeze it for the copy.
            p.send_signal(signal.SIGSTOP)
            copy = os.path.join(tmp, "power")
            shutil.rmtree(copy, ignore_errors=True)
            X.copy_store(w.state, copy)
            p.send_signal(signal.SIGCONT)
            time.sleep(linger)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    p.wait()
    killed = p.returncode == -signal.SIGKILL
    return killed, copy, len(sim.requests(seq)["value"]), time.monotonic() - t0


def restore_copy(w, copy):
    for sfx in ("", "-wal", "-shm"):
        f = os.path.join(w.state, "xtsync.db" + sfx)
        if os.path.exists(f):
            os.unlink(f)
        c = os.path.join(copy, "xtsync.db" + sfx)
        if os.path.exists(c):
            shutil.copyfile(c, f)


def settle(w, want):
    """--once until it returns want (at most 4 runs); the codes seen."""
    codes = []
    for _ in range(4):
        p = w.env.once(timeout=300)
        codes.append(p.returncode)
        stats["settle_runs"] += 1
        if p.returncode == want:
            break
    return codes


try:
    sim.call("POST", "/_admin/tenants", {"id": A, "domain": "src.example",
                                        "apps": [{"client_id": CA, "secret": "s3cret-value"}]})
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": N_USERS, "seed": SEED % 1000 + 1,
                                                     "guest_fraction": 0.1, "disabled_fraction": 0.1})
    w = World()
    # how many requests / seconds a cycle of each kind takes (learnt from the
    # runs that finished before their kill point)
    est = {"initial": 40, "incremental": 12}
    est_s = {"initial": 1.0, "incremental": 0.3}
    t_start = time.monotonic()
    point = -1
    # a point whose run finished before its kill instant is still checked, but
    # does not count: go on until POINTS runs were really killed
    while stats["killed"] < POINTS and point < 4 * POINTS:
        point += 1
        # flavours on a fixed schedule so that every run has each of them;
        # the instants, mutations and victims are random (seeded)
        sched = point % 10
        kind = "incremental"
        did = []
        if sched == 0:
            if point:
                w.new_target()
            kind = "initial"
            stats["fresh"] += 1
        elif sched == 4:
            for sfx in ("", "-wal", "-shm"):   # store lost: an initial cycle against a populated target
                if os.path.exists(os.path.join(w.state, "xtsync.db" + sfx)):
                    os.unlink(os.path.join(w.state, "xtsync.db" + sfx))
            kind = "initial"
            stats["wiped"] += 1
        elif sched == 7:
            sim.call("POST", "/_admin/tenants/%s/invalidate-delta" % A)   # 410: full resync
            stats["resync"] += 1
        mass = []
        if sched == 5:
            live = [u for u in w.members() if u.get("accountEnabled") is not False]
            mass = [u["id"] for u in rng.sample(live, min(len(live), THRESHOLD + 2))]
            for sid in mass:
                sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, sid))
            stats["mass"] += 1
            did = ["mass-delete %d" % len(mass)]
        else:
            # a source deletion while the store is lost is never seen (the initial
            # delta has no @removed): that is not a crash, so not here
            did = w.mutate(deletions=sched != 4)
        killed, copy, nreq, secs = kill_at_random(w, est[kind], est_s[kind], power=sched in (2, 4, 8))
        if not killed:
            est[kind], est_s[kind] = max(1, nreq), secs
            stats["finished"] += 1
        else:
            stats["killed"] += 1
        if killed and rng.random() < 0.2:
            # the restart is killed too
            k2 = kill_at_random(w, est[kind], est_s[kind])[0]
            stats["double"] += 1 if k2 else 0
        if copy is not None:
            restore_copy(w, copy)
            stats["powerloss"] += 1
        what = "point %d (%s%s%s): %s" % (point, kind, ", killed" if killed else ", finished first",
                                          ", power-loss copy" if copy else "", ",".join(did) or "no change")
        # integrity of what the crash left, checked on a copy: the daemon itself
        # must find the hot WAL and recover it
        integ = "ok"
        shutil.rmtree(os.path.join(tmp, "integ"), ignore_errors=True)
        if X.copy_store(w.state, os.path.join(tmp, "integ")):
            integ = X.store_integrity(os.path.join(tmp, "integ", "xtsync.db"))
        codes = settle(w, 3 if mass else 0)
        probs = [] if integ == "ok" else ["store integrity_check after the kill: %s" % integ]
        if mass:
            if codes[-1] != 3:
                probs.append("a mass deletion above the threshold was not held (exit codes %s)" % codes)
            probs += X.sync_problems(sim, A, w.tgt, X.app_ext(CB), held=set(mass))
            for sid in mass:
                sim.call("POST", "/_admin/tenants/%s/users/%s/restore" % (A, sid))
            codes += settle(w, 0)
            # the source undid them all: nothing is held, so one deletion goes through
            one = rng.choice([u for u in w.members() if u.get("accountEnabled") is not False])
            sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, one["id"]))
            codes += settle(w, 0)
            if codes[-1] != 0:
                probs.append("after the held deletions were undone, a single deletion is still held")
        if codes[-1] != 0:
            probs.append("did not settle: --once exit codes %s" % codes)
        probs += X.sync_problems(sim, A, w.tgt, X.app_ext(CB))
        if probs:
            failures.append((point, what, probs))
            print("# FAIL %s: exit codes %s" % (what, codes))
            for pr in probs[:10]:
                print("#   " + pr)
            # carry on from a clean slate so one failure does not cascade
            w.new_target()
            w.env.once(timeout=300)
        elif os.environ.get("XTS_CRASH_VERBOSE"):
            print("# %s: settled %s" % (what, codes))
        sys.stdout.flush()
    elapsed = time.monotonic() - t_start
    print("# %d runs, %d killed, in %.1f s: %s" % (point + 1, stats["killed"], elapsed, stats))
    t.ok(stats["killed"] >= POINTS,
         "%d runs of xtsyncd were SIGKILLed at random instants (%d attempts)" % (stats["killed"], point + 1), stats)
    t.ok(not failures, "invariants hold after every one of %d runs (seed %d)" % (point + 1, SEED),
         "\n".join("%s: %s" % (w_, "; ".join(p_[:3])) for _, w_, p_ in failures))
    pl = [f for f in failures if "power-loss" in f[1]]
    t.ok(stats["powerloss"] > 0 and not pl,
         "power-loss copies (%d): started from the copy, invariants hold" % stats["powerloss"])
    t.ok(stats["mass"] == 0 or not [f for f in failures if "mass-delete" in f[1]],
         "mass deletions above the threshold (%d points) stay held through kills" % stats["mass"])
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
