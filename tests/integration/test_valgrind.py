#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Valgrind memcheck scenario (TAP): the real xtsyncd under memcheck against the
# emulator: an initial --once, an incremental --once with a create, an update
# and a delete, a --dry-run, and the live daemon (control commands, a cycle,
# SIGTERM). Zero errors and zero definite/indirect leaks each. Valgrind sees
# use-after-free inside uninstrumented libuv, which ASan cannot; the two do not
# mix, so under ASan (argv[1] is meson's b_sanitize) this prints a TAP skip.
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

SANITIZE = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("XTS_SANITIZE", "none")
if SANITIZE not in ("", "none"):
    # a skipped TAP line (not "1..0"), so that tests/tally.py counts it apart
    print("ok 1 - valgrind memcheck scenario # SKIP valgrind does not run ASan-instrumented binaries "
          "(b_sanitize=%s)" % SANITIZE)
    print("1..1")
    sys.exit(0)
VG = "/usr/bin/valgrind"
if not os.access(VG, os.X_OK):
    print("ok 1 - valgrind memcheck scenario # SKIP valgrind is not installed (tests/deps.sh installs it)")
    print("1..1")
    sys.exit(0)
SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "valgrind.supp")

A = "aaaaaaaa-0000-4000-8000-0000000000d1"
B = "bbbbbbbb-0000-4000-8000-0000000000d2"
CA = "11111111-1111-4111-8111-1111111111d1"
CB = "22222222-2222-4222-8222-2222222222d2"
LINK = X.app_ext(CB)

t = X.Tap()
tmp = X.tmpdir("valgrind")
sim = X.Sim(tmp)
ok = False
runs = [0]


def vg_cmd(env, *args):
    runs[0] += 1
    log = os.path.join(env.tmp, "vg%d.log" % runs[0])
    return log, [VG, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                 "--show-leak-kinds=definite,indirect", "--num-callers=30", "--suppressions=" + SUPP,
                 "--log-file=" + log, os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf,
                 "--foreground"] + list(args)


def vg_summary(log):
    """(errors, definitely lost bytes, indirectly lost bytes, the report's tail)."""
    text = open(log).read()
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    dl = re.search(r"definitely lost: ([\d,]+) bytes", text)
    il = re.search(r"indirectly lost: ([\d,]+) bytes", text)
    num = lambda x: int(x.group(1).replace(",", "")) if x else 0  # noqa: E731
    return (int(m.group(1)) if m else -1), num(dl), num(il), text[-4000:]


def check(what, p_code, want, log):
    errs, dl, il, tail = vg_summary(log)
    t.ok(p_code == want, "%s: exit %d under valgrind (want %d)" % (what, p_code, want), tail)
    t.ok(errs == 0 and dl == 0 and il == 0,
         "%s: memcheck: %d errors, %d bytes definitely and %d indirectly lost" % (what, errs, dl, il), tail)


def once(env, what, *args, want=0):
    log, cmd = vg_cmd(env, "--once", *args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    check(what, p.returncode, want, log)
    return p


try:
    env = X.Env(sim, tmp)
    env.add_tenant("src", A, CA)
    env.add_tenant("tgt", B, CB)
    sim.allow(A, B)
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 8, "seed": 4, "guest_fraction": 0.15,
                                                     "disabled_fraction": 0.1})
    env.add_job("s2t", "src", "tgt", scope="all", deletion_threshold=0, deprovision="disable")
    env.write_config()

    once(env, "--once --dry-run", "--dry-run")
    once(env, "initial --once")
    probs = X.sync_problems(sim, A, B, LINK)
    t.ok(not probs and X.users_list(sim.users(B)), "initial cycle under valgrind converged", "\n".join(probs))

    src = [u for u in X.users_list(sim.users(A)) if u.get("userType") == "Member"]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, src[0]["id"]), {"department": "Memcheck"})
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, src[1]["id"]))
    sim.call("POST", "/_admin/tenants/%s/users" % A, {
        "displayName": "Val Grind", "givenName": "Val", "surname": "Grind", "mailNickname": "val",
        "mail": "val@src.example", "userPrincipalName": "val@src.example", "department": "QA",
        "jobTitle": "Tester", "userType": "Member", "accountEnabled": True, "businessPhones": [],
        "otherMails": []})
    once(env, "incremental --once (create, update, delete)")
    probs = X.sync_problems(sim, A, B, LINK)
    t.ok(not probs, "incremental cycle under valgrind converged", "\n".join(probs))

    # the live daemon: control commands, a cycle on demand, SIGTERM
    log, cmd = vg_cmd(env)
    d = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sock = os.path.join(tmp, "control.sock")
    st = None
    for _ in range(600):
        if os.path.exists(sock):
            st = env.ctl("status")
            if st.returncode == 0:
                break
        if d.poll() is not None:
            break
        time.sleep(0.2)
    t.ok(st is not None and st.returncode == 0 and "s2t" in st.stdout, "live daemon under valgrind answers status",
         (st.stdout + st.stderr) if st else "no socket")
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, src[2]["id"]), {"jobTitle": "Live Tester"})
    for _ in range(600):   # the start-up cycle may still be running
        sy = env.ctl("sync", "s2t")
        if sy.returncode == 0 or "already running" not in sy.stderr + sy.stdout:
            break
        time.sleep(0.2)
    done = False
    for _ in range(600):
        tg = [u for u in X.users_list(sim.users(B)) if u.get(LINK, "").endswith(src[2]["id"])]
        if tg and tg[0].get("jobTitle") == "Live Tester":
            done = True
            break
        time.sleep(0.2)
    t.ok(sy.returncode == 0 and done, "live daemon: sync on demand wrote the change", sy.stdout + sy.stderr)
    env.ctl("preview", "s2t")
    d.send_signal(signal.SIGTERM)
    try:
        d.wait(300)
    except subprocess.TimeoutExpired:
        d.kill()
        d.wait()
    check("live daemon (status, sync, preview, SIGTERM)", d.returncode, 0, log)
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
