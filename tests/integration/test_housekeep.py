#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A long-running daemon's store does not grow for ever (TAP, xtsyncd --once
# against graphsim): at most hourly per job, a cycle deletes the job's done
# ops older than a day, its cycle rows but the last 1000, and mails sent more
# than 35 days ago (xts_store_housekeep; before, nothing ever deleted them:
# one op row per change, one cycle row per cycle, for ever). Rows made to
# look old are planted with SQL; the open op and the unsent mail stay.
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

t = X.Tap()
tmp = X.tmpdir("housekeep")
sim = X.Sim(tmp)
ok = False
try:
    env, s, d, link = X.source_target(sim, tmp, 0x40c5e001, 3, 5)
    env.add_job("j", "s", "d", scope="all", deletion_threshold=0)
    env.write_config()
    p = env.once()
    t.ok(p.returncode == 0, "a first cycle", p.stderr[-800:])

    db = sqlite3.connect(os.path.join(tmp, "xtsync.db"))
    old = int(time.time() * 1000) - 40 * 86400 * 1000
    (done0,) = db.execute("SELECT count(*) FROM op WHERE job = 'j' AND state = 2").fetchone()
    ins = ("INSERT INTO op(id, job, source_id, kind, payload, state, attempts, next_attempt, last_error, "
           "last_error_msg, cycle_id, created, updated) VALUES (?, 'j', ?, 1, NULL, ?, 1, 0, 0, NULL, 1, ?, ?)")
    db.execute(ins, (900001, "old-done", 2, old, old))
    db.execute(ins, (900002, "old-open", 3, old, old))
    # 1,100 earlier cycles (ids 3..1102), as a daemon running for weeks leaves
    db.executemany("INSERT INTO cycle(job, id, kind, started) VALUES ('j', ?, 1, ?)",
                   [(i, old) for i in range(3, 1103)])
    db.execute("UPDATE job SET cycle_counter = 1102 WHERE name = 'j'")
    db.execute("INSERT INTO outbox(job, event_key, recipients, subject, body, created, sent_at) "
               "VALUES ('j', 'old:1', 'a@x', 'S', 'B', ?, ?)", (old, old))
    db.execute("INSERT INTO outbox(job, event_key, recipients, subject, body, created) "
               "VALUES ('j', 'old:2', 'a@x', 'S', 'B', ?)", (old,))
    db.commit()
    p = env.once()
    q = lambda sql: db.execute(sql).fetchone()[0]  # noqa: E731
    t.ok(p.returncode == 0 and "store housekeeping" in p.stderr and
         q("SELECT count(*) FROM op WHERE id = 900001") == 0 and q("SELECT count(*) FROM op WHERE id = 900002") == 1,
         "a done op 40 days old is deleted; an open one of the same age stays",
         (p.returncode, p.stderr[-800:]))
    t.ok(q("SELECT count(*) FROM cycle WHERE job = 'j'") == 1000 and q("SELECT min(id) FROM cycle WHERE job = 'j'") == 104
         and q("SELECT max(id) FROM cycle WHERE job = 'j'") == 1103,
         "the job keeps its last 1000 cycle rows (ids 104..1103)",
         (q("SELECT count(*) FROM cycle WHERE job = 'j'"), q("SELECT min(id) FROM cycle WHERE job = 'j'")))
    t.ok(q("SELECT count(*) FROM outbox WHERE event_key = 'old:1'") == 0 and
         q("SELECT count(*) FROM outbox WHERE event_key = 'old:2'") == 1,
         "a mail sent 40 days ago is deleted; an unsent one stays")
    t.ok(q("SELECT count(*) FROM op WHERE job = 'j' AND state = 2") >= done0,
         "the cycle's own recent done ops are kept (a day)")
    db.close()
    ok = t.failed == 0
finally:
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
