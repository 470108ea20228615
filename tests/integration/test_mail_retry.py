#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Notification mail from the running daemon when no cycle runs (TAP; the real
# xtsyncd against graphsim and a real SMTP server, smtpsink.py):
# (a) a quarantine mail whose first attempt failed (the SMTP server was down)
#     goes out at its retry time although the quarantined job runs no cycle,
#     and a mail queued before a restart goes out after it: the outbox is
#     flushed at start and again when its next mail is due, not only at the
#     end of a cycle;
# (b) SIGTERM while the SMTP server stalls in DATA: the daemon does not wait
#     for the server (the contract: "exit 0 within a few seconds"); the mail
#     stays queued, sent after the next start.
import os
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("mail-retry")
sim = X.Sim(tmp)
sink = None
ok = False


def outbox():
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    rows = db.execute("SELECT id, event_key, sent_at, attempts, next_attempt FROM outbox ORDER BY id").fetchall()
    db.close()
    return rows


class StallServer:
    """Answers EHLO, MAIL and RCPT, then never answers DATA."""

    def __init__(self):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(8)
        self.port = self.s.getsockname()[1]
        self.data = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(c,), daemon=True).start()

    def talk(self, c):
        try:
            f = c.makefile("rb")
            c.sendall(b"220 slow.example ESMTP\r\n")
            for line in f:
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    c.sendall(b"250-slow.example\r\n250 SIZE 1000000\r\n")
                elif cmd in (b"MAIL", b"RCPT"):
                    c.sendall(b"250 ok\r\n")
                elif cmd == b"DATA":
                    self.data.set()   # and never answer
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
        except OSError:
            pass


try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x6a7e0201, 4, 3)
    env.add_job("q", "s", "d", scope="all", interval="2s", notify="ops@contoso.example")
    bad = os.path.join(tmp, "bad-secret")
    with open(bad, "w") as f:
        f.write("not-the-secret\n")
    os.chmod(bad, 0o600)
    port = X.free_port()
    env.write_config(secret=bad)
    X.append_smtp(env, "smtp://127.0.0.1:%d" % port)

    # (a) quarantined with the SMTP server down: the mail waits in the outbox
    p = env.once()
    rows = outbox()
    t.ok(p.returncode == 3 and len(rows) == 1 and rows[0][1].startswith("quarantine:") and rows[0][2] == 0 and
         rows[0][3] == 1, "wrong secret, SMTP down: quarantined (exit 3), the mail queued, one failed attempt",
         (p.returncode, rows, p.stderr[-1200:]))
    # its retry comes in 4 s (the back-off says 60 s; the test does not wait that long)
    due = int(time.time() * 1000) + 4000
    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    db.execute("UPDATE outbox SET next_attempt = ?", (due,))
    db.commit()
    db.close()
    sinkdir = os.path.join(tmp, "sink")
    sink, _ = X.start_smtpsink(sinkdir, port)
    d = X.start_daemon(env)
    try:
        got = X.poll(lambda: X.sink_mails(sinkdir), timeout=30, step=0.2)
        at = time.time() * 1000
        st = env.ctl("status")
    finally:
        rc = X.stop_daemon(d)
    t.ok(got and got[0]["Subject"].startswith("[xtsync] job q quarantined") and at >= due - 50,
         "the daemon sends it at its retry time, with the job quarantined and no cycle run (%.1f s after due)" %
         ((at - due) / 1000.0), (got and got[0]["Subject"], st.stdout))
    t.ok("quarantined" in st.stdout and rc == 0, "the job stayed quarantined meanwhile; the daemon stopped cleanly",
         (rc, st.stdout))
    rows = outbox()
    t.ok(len(rows) == 1 and rows[0][2] > 0, "the outbox records it sent", rows)

    # a mail queued while no daemon runs (here: by hand, as a crash between
    # queuing and sending would leave it) goes out when the daemon starts
    r = X.subprocess.run([os.path.join(X.BUILD, "tests/integration/store_tool"), "queue", tmp, "q", "7",
                          "ops@contoso.example"], capture_output=True, text=True)
    d = X.start_daemon(env)
    try:
        got = X.poll(lambda: len(X.sink_mails(sinkdir)) >= 2, timeout=20, step=0.2)
    finally:
        X.stop_daemon(d)
    mails = X.sink_mails(sinkdir)
    t.ok(r.returncode == 0 and got and mails[1]["Subject"] == "[xtsync] job q: 612 deletions held",
         "a mail queued before the start goes out at the start", (r.stdout, r.stderr, [m["Subject"] for m in mails]))
    sink.kill()
    sink = None

    # (b) SIGTERM while the SMTP server stalls in DATA
    stall = StallServer()
    env.write_config(secret=bad)
    X.append_smtp(env, "smtp://127.0.0.1:%d" % stall.port)
    r = X.subprocess.run([os.path.join(X.BUILD, "tests/integration/store_tool"), "queue", tmp, "q", "8",
                          "ops@contoso.example"], capture_output=True, text=True)
    d = X.start_daemon(env)
    stalled = stall.data.wait(20)
    t0 = time.time()
    rc = X.stop_daemon(d)
    took = time.time() - t0
    rows = outbox()
    t.ok(stalled and rc == 0 and took < 4.0,
         "SIGTERM while the SMTP server stalls in DATA: exit 0 after %.1f s (the transfer is aborted)" % took,
         (stalled, rc, took))
    t.ok([x[2] for x in rows if x[1] == "deletions-held:8"] == [0], "that mail stays queued (sent after a restart)",
         rows)
    ok = t.failed == 0
finally:
    if sink is not None:
        sink.kill()
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
