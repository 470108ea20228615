#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A job with notify but no [smtp] (TAP, xtsyncd against graphsim). The
# contract: "[smtp] ; optional; without it no mail is sent". The config
# loads (a notice, not a problem), a held deletion still exits 3, and no mail
# is queued: adding [smtp] later must not mail the stale news of the days
# without it. A '#' comment after the value is a comment ("Comments start with
# ; or #").
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("nosmtp")
sim = X.Sim(tmp)
sink = None
ok = False
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x6a7e0001, 12, 5)
    env.add_job("g", "s", "d", scope="all", deletion_threshold=3, deprovision="disable",
                notify="ops@contoso.example  # the on-call list")
    env.write_config()
    p = X.subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncd"), "-c", env.conf, "--check-config"],
                         capture_output=True, text=True)
    t.ok(p.returncode == 0 and "no [smtp] section: no mail will be sent" in p.stderr,
         "--check-config: notify without [smtp] is a notice, exit 0", (p.returncode, p.stdout, p.stderr))
    p = env.once()
    t.ok(p.returncode == 0, "initial cycle exits 0", p.stderr[-1500:])
    for u in X.users_list(sim.users(src_tid))[:5]:
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (src_tid, u["id"]))
    p = env.once()
    t.ok(p.returncode == 3, "5 deletions over a threshold of 3: held, exit 3", (p.returncode, p.stderr[-1500:]))
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    rows = db.execute("SELECT job, event_key, sent_at FROM outbox").fetchall()
    db.close()
    t.ok(rows == [], "no mail queued without [smtp]", rows)

    sink, port = X.start_smtpsink(os.path.join(tmp, "sink"))
    X.append_smtp(env, "smtp://127.0.0.1:%d" % port)
    p = env.once()
    time.sleep(1)
    mails = X.sink_mails(os.path.join(tmp, "sink"))
    t.ok(p.returncode == 3 and mails == [],
         "[smtp] added later: the old hold is not mailed (still held, exit 3)",
         (p.returncode, [m["Subject"] for m in mails]))
    ok = t.failed == 0
finally:
    if sink is not None:
        sink.kill()
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
