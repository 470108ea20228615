#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Hostile or broken data from the tenants (TAP, against graphsim). Graph's
# answers are untrusted: a target tenant writes its own error messages, a
# source tenant its users' names and addresses.
# (a) A target answers each invitation 401 with an error code holding CR/LF,
#     a journald "<0>" prefix (emerg) and ANSI escapes: the daemon's log keeps
#     it on one line without control characters, the job is quarantined and
#     the quarantine mail is still sent (its subject used to be refused for
#     ever), and `xtsyncctl status` prints no escape.
# (b) A source whose users/delta page links back to itself (nextLink = the
#     page's own URL): the read ends with an error instead of running for
#     ever, and --once exits 1.
# (c) A source address with ESC and U+009B (an 8-bit CSI): the --dry-run plan
#     lines and `xtsyncctl logs` print neither. A source entry whose id is not
#     an object id (a line break, "<0>") is ignored, the warning on one line.
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

HOSTILE = "Denied\r\n<0>xtsync: emerg: FORGED by target \x1b[31mRED\x1b[0m\r\nBcc: attacker@evil.example"

t = X.Tap()
tmp = X.tmpdir("hostile")
sim = X.Sim(tmp)
mails = os.path.join(tmp, "mail")
sink, sport = X.start_smtpsink(mails)
d = None
ok = False
try:
    # ---- (a) a hostile error code from the target
    os.mkdir(os.path.join(tmp, "a"))
    env, s, tg, link = X.source_target(sim, os.path.join(tmp, "a"), 0x4057e001, 2, 5, names=("sa", "ta"))
    env.add_job("j", "sa", "ta", scope="all", deletion_threshold=0, notify="ops@contoso.example",
                quarantine_min_operations=1, quarantine_min_failures=1)
    env.write_config()
    X.append_smtp(env, "smtp://127.0.0.1:%d" % sport)
    fid = sim.call("POST", "/_admin/faults", {"tenant": tg, "route": "invitations", "kind": "status",
                                              "status": 401, "code": HOSTILE})["id"]
    d = X.start_daemon(env)
    X.wait_cycles(env, "j", 1, timeout=60)
    got = X.poll(lambda: os.path.isdir(mails) and [f for f in os.listdir(mails) if f.endswith(".eml")], timeout=30)
    st = env.ctl("status")
    X.stop_daemon(d)
    d = None
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    with open(os.path.join(env.tmp, "live.log"), errors="replace") as f:
        log = f.read()
    forged = [ln for ln in log.splitlines() if "FORGED" in ln]
    t.ok(forged and all("Denied" in ln and "Bcc" in ln for ln in forged) and
         not any(ln.startswith("<0>") for ln in log.splitlines()) and "\x1b" not in log,
         "a Graph error code with CR/LF, '<0>' and escapes stays on its log line, without control characters",
         forged[:3])
    subj = ""
    if got:
        with open(os.path.join(mails, sorted(got)[0]), errors="replace") as f:
            subj = next((ln for ln in f.read().splitlines() if ln.startswith("Subject:")), "")
    t.ok(got and "quarantined" in subj and "FORGED" in subj and "\x1b" not in subj,
         "the quarantine mail is sent, its subject without the reason's line breaks", (got, subj))
    t.ok(st.returncode == 0 and "quarantined" in st.stdout and "\x1b" not in st.stdout and
         "\r" not in st.stdout and len([ln for ln in st.stdout.splitlines() if "FORGED" in ln]) == 1,
         "xtsyncctl status prints the reason on the job's line, without escapes", repr(st.stdout[-800:]))
    # a reason stored raw (by a version that did not clean it): xtsyncctl
    # cleans what it prints all the same
    db = sqlite3.connect(os.path.join(env.tmp, "xtsync.db"))
    db.execute("UPDATE job SET state_reason = ? WHERE name = 'j'", ("Old\r\n<0>reason \x1b[31mRED",))
    db.commit()
    db.close()
    d = X.start_daemon(env)
    st = env.ctl("status")
    X.stop_daemon(d)
    d = None
    t.ok(st.returncode == 0 and "Old" in st.stdout and "\x1b" not in st.stdout and "\r" not in st.stdout and
         not any(ln.startswith("<0>") for ln in st.stdout.splitlines()),
         "a reason stored with control characters is printed without them", repr(st.stdout[-800:]))

    # ---- (b) a users/delta page that links back to itself
    os.mkdir(os.path.join(tmp, "b"))
    env, s, tg, link = X.source_target(sim, os.path.join(tmp, "b"), 0x4057e002, 3, 5, names=("sb", "tb"))
    env.add_job("j", "sb", "tb", scope="all", deletion_threshold=0)
    env.write_config()
    fid = sim.call("POST", "/_admin/faults", {"tenant": s, "route": "users/delta", "kind": "loop_next",
                                              "count": 1})["id"]
    try:
        p = env.once(timeout=60)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, "still running after 60 s"
    sim.call("DELETE", "/_admin/faults/%s" % fid)
    t.ok(rc == 1 and "repeats a page already read" in err,
         "a nextLink back to a page already read ends the read with an error (exit 1)", (rc, err[-1000:]))
    p = env.once()
    t.ok(p.returncode == 0 and not X.sync_problems(sim, s, tg, link), "the next cycle, with a sane source, converges",
         p.stderr[-800:])

    # ---- (c) escapes in a source address: plan lines and `logs`
    os.mkdir(os.path.join(tmp, "c"))
    env, s, tg, link = X.source_target(sim, os.path.join(tmp, "c"), 0x4057e003, 2, 5, names=("sc", "tc"))
    env.add_job("j", "sc", "tc", scope="all", deletion_threshold=0)
    env.write_config()
    u = X.users_list(sim.users(s))[0]
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (s, u["id"]),
             {"mail": "mallory\x1b[5m\u009b2J@sc.example", "userPrincipalName": "mallory\u202e\x07\u009b2J@sc.example",
              "displayName": "Mallory \u202eevil\x1b]0;owned\x07"})
    p = env.once("--dry-run")
    plan = [ln for ln in p.stdout.splitlines() if u["id"] in ln]
    t.ok(p.returncode == 0 and plan and not any(c in p.stdout for c in ("\x1b", "\u009b")),
         "--dry-run plan lines carry no ESC or U+009B from the source", [repr(ln) for ln in plan])
    # a source entry whose id is not an object id (a line break, "<0>",
    # escapes): ignored with a warning that stays on one line
    evil = "0bad0000-0000-4000-8000-00000000000e\n<0>xtsync: emerg: FORGED LINE \x1b[31mRED"
    sim.call("POST", "/_admin/tenants/%s/users" % s, {
        "id": evil, "displayName": "Evil Id", "userPrincipalName": "evil.id@sc.example", "mail": "evil.id@sc.example",
        "mailNickname": "evilid", "accountEnabled": True, "userType": "Member"})
    p = env.once()
    lines = p.stderr.splitlines()
    t.ok(p.returncode == 0 and any("is not an object id is ignored" in ln for ln in lines) and
         not any(ln.startswith("<0>") for ln in lines) and "\x1b" not in p.stderr and
         not [u for u in X.users_list(sim.users(tg)) if u.get("mail") == "evil.id@sc.example"],
         "a source id with a line break and escapes is ignored, the warning on one line, nothing created",
         [ln for ln in lines if "FORGED" in ln or "object id" in ln])
    lg = env.ctl("logs")
    t.ok(lg.returncode == 0 and "mallory" in lg.stdout and
         not any(c in lg.stdout for c in ("\x1b", "\u009b", "\u202e", "\x07")),
         "xtsyncctl logs prints no ESC, U+009B, bidi override or BEL from the source",
         [repr(ln) for ln in lg.stdout.splitlines() if "mallory" in ln])
    ok = t.failed == 0
finally:
    if d is not None:
        X.stop_daemon(d)
    sink.kill()
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
