#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# [daemon] metrics_file against graphsim (TAP): xtsyncd --once writes a
# Prometheus textfile that parses (HELP/TYPE before each family's samples,
# every other line `name{labels} value`), whose created count is the
# provisioning log's successful Creates, and no temporary file stays beside
# it; the next run replaces it; --dry-run leaves it alone; a missing directory
# is a warning, not a failed cycle; it is written at start, before any cycle
# ends; the daemon rewrites it after a cycle, a reload that changes
# metrics_file writes the new path at once and removes the old file (only
# that file), pause/resume rewrite it, and a reload that empties
# metrics_file removes the file it was writing.
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

N = 7
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\\n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)$" % (NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) \S.*$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (gauge|counter)$" % NAME)


def parse(path):
    """(samples {(name, labels-text): value}, problems) of a textfile."""
    samples, probs, typed = {}, [], set()
    with open(path) as f:
        text = f.read()
    if text and not text.endswith("\n"):
        probs.append("no final newline")
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            m = HELP.match(line) or TYPE.match(line)
            if not m:
                probs.append("%d: bad comment %r" % (n, line))
            elif line.startswith("# TYPE"):
                if m.group(1) in typed:
                    probs.append("%d: second TYPE for %s" % (n, m.group(1)))
                typed.add(m.group(1))
            continue
        m = SAMPLE.match(line)
        if not m:
            probs.append("%d: not `name{labels} value`: %r" % (n, line))
            continue
        if m.group(1) not in typed:
            probs.append("%d: %s has no TYPE before it" % (n, m.group(1)))
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, probs


def metric(samples, name, **labels):
    key = "{" + ",".join('%s="%s"' % kv for kv in [("job", "j")] + list(labels.items())) + "}"
    return samples.get((name, key))


def strays(d):
    """Files beside the metrics file that are not it (temporary files)."""
    return sorted(f for f in os.listdir(d) if f != "xtsync.prom")


t = X.Tap()
tmp = X.tmpdir("metrics")
sim = X.Sim(tmp)
ok = False
d = None
try:
    env, src_tid, tgt_tid, link = X.source_target(sim, tmp, 0x3e7f0001, N, 41)
    env.add_job("j", "s", "d", scope="all", deprovision="disable")
    mdir = os.path.join(tmp, "textfile")
    os.mkdir(mdir)
    mpath = os.path.join(mdir, "xtsync.prom")
    env.write_config(extra_daemon={"metrics_file": mpath})

    p = env.once()
    creates = sum(1 for e in env.provlog() if e.get("action") == "Create" and
                  e["provisioningStatusInfo"]["status"] == "success")
    t.ok(p.returncode == 0 and os.path.exists(mpath), "--once with metrics_file: the file exists after the run",
         (p.returncode, p.stderr[-1500:]))
    s, probs = parse(mpath)
    t.ok(not probs and s, "it parses as Prometheus text (HELP/TYPE, then `name{labels} value`)", probs)
    t.ok(creates == N and metric(s, "xtsync_last_cycle_users", action="created") == creates,
         "xtsync_last_cycle_users{action=\"created\"} is the provisioning log's %d successful Creates" % N,
         (creates, metric(s, "xtsync_last_cycle_users", action="created")))
    t.ok(metric(s, "xtsync_users_in_scope") == N and metric(s, "xtsync_cycles_total") == 1 and
         metric(s, "xtsync_failed_cycles_total") == 0 and metric(s, "xtsync_last_cycle_success") == 1 and
         metric(s, "xtsync_job_state", state="idle") == 1 and
         metric(s, "xtsync_job_state", state="running") == 0 and
         (metric(s, "xtsync_last_cycle_end_timestamp_seconds") or 0) >=
         (metric(s, "xtsync_last_cycle_start_timestamp_seconds") or 1e12) > 1.6e9,
         "in scope, cycles, success, state and cycle times describe the finished cycle", sorted(s.items()))
    t.ok(strays(mdir) == [] and oct(os.stat(mpath).st_mode & 0o777) == "0o644",
         "no temporary file is left beside it; mode 0644", (strays(mdir), oct(os.stat(mpath).st_mode)))

    # an unchanged source: the next run replaces the file with its own counts
    p = env.once()
    s, probs = parse(mpath)
    t.ok(p.returncode == 0 and not probs and metric(s, "xtsync_last_cycle_users", action="created") == 0 and
         metric(s, "xtsync_users_in_scope") == N and strays(mdir) == [],
         "the next run replaces it: created 0, in scope %d" % N, (p.returncode, probs, sorted(s.items())))

    # a dry run must not overwrite what a running daemon reports
    before = open(mpath).read()
    mtime = os.stat(mpath).st_mtime_ns
    p = env.once("--dry-run")
    t.ok(p.returncode == 0 and open(mpath).read() == before and os.stat(mpath).st_mtime_ns == mtime,
         "--dry-run leaves the metrics file alone", (p.returncode, p.stderr[-800:]))

    # the directory is missing: a warning, the cycle itself succeeds
    gone = os.path.join(tmp, "nodir", "xtsync.prom")
    env.write_config(extra_daemon={"metrics_file": gone})
    p = env.once()
    t.ok(p.returncode == 0 and "metrics file %s not written" % gone in p.stderr and
         not os.path.exists(os.path.dirname(gone)),
         "a missing directory: warning `metrics file ... not written`, exit 0", (p.returncode, p.stderr[-800:]))

    # written at start, before any cycle ends: a disabled job never runs one
    env.jobs[0][3]["enabled"] = "false"
    first = os.path.join(mdir, "start.prom")
    env.write_config(extra_daemon={"metrics_file": first})
    p = env.once()
    s, probs = parse(first) if os.path.exists(first) else ({}, ["missing"])
    t.ok(p.returncode == 0 and not probs and metric(s, "xtsync_job_enabled") == 0 and
         metric(s, "xtsync_cycles_total") == 0 and metric(s, "xtsync_job_state", state="idle") == 1,
         "written at start, before a cycle ends (a disabled job: enabled 0, cycles 0)",
         (p.returncode, probs, sorted(s.items()), p.stderr[-800:]))
    os.unlink(first)
    del env.jobs[0][3]["enabled"]

    # the daemon writes it after each cycle, and a reload that moves
    # metrics_file writes the new path without waiting for a cycle
    env.write_config(extra_daemon={"metrics_file": mpath})
    os.unlink(mpath)
    d = X.start_daemon(env)
    js = X.wait_cycles(env, "j", 1)
    s, probs = parse(mpath) if os.path.exists(mpath) else ({}, ["missing"])
    t.ok(js is not None and not probs and metric(s, "xtsync_cycles_total") == 1 and
         (metric(s, "xtsync_next_cycle_timestamp_seconds") or 0) >
         (metric(s, "xtsync_last_cycle_end_timestamp_seconds") or 1e12),
         "the daemon writes it after a cycle, with the next cycle's time", (js, probs, sorted(s.items())))
    moved = os.path.join(mdir, "moved.prom")
    other = os.path.join(mdir, "other.prom")   # another exporter's file beside ours
    with open(other, "w") as f:
        f.write("# TYPE other_metric gauge\nother_metric 1\n")
    live = os.path.join(env.tmp, "live.log")
    env.write_config(extra_daemon={"metrics_file": moved})
    c = env.ctl("reload")
    s, probs = parse(moved) if os.path.exists(moved) else ({}, ["missing"])
    t.ok(c.returncode == 0 and not probs and metric(s, "xtsync_cycles_total") == 1 and
         metric(s, "xtsync_job_state", state="idle") == 1,
         "a reload that changes metrics_file writes the new path at once", (c.returncode, c.stdout, c.stderr, probs))
    said = "metrics file %s removed: metrics_file is now %s" % (mpath, moved)
    logged = X.poll(lambda: open(live).read().count(said), timeout=10, step=0.1)
    t.ok(not os.path.exists(mpath) and logged == 1 and os.path.exists(other) and
         sorted(os.listdir(mdir)) == ["moved.prom", "other.prom"],
         "... and removes the old file (no stale values for the collector), said once; other files stay",
         (os.path.exists(mpath), logged, sorted(os.listdir(mdir)), open(live).read()[-1200:]))
    c = env.ctl("pause", "j")
    s, probs = parse(moved)
    paused = metric(s, "xtsync_job_state", state="paused") == 1 and metric(s, "xtsync_job_state", state="idle") == 0
    c2 = env.ctl("resume", "j")
    s, probs2 = parse(moved)
    t.ok(c.returncode == 0 and c2.returncode == 0 and not probs and not probs2 and paused and
         metric(s, "xtsync_job_state", state="idle") == 1 and metric(s, "xtsync_job_state", state="paused") == 0,
         "pause and resume rewrite it (state paused, then idle)", (c.stderr, c2.stderr, sorted(s.items())))
    # a reload that leaves metrics_file alone keeps the file; one that
    # empties it removes the file the daemon was writing
    c = env.ctl("reload")
    t.ok(c.returncode == 0 and os.path.exists(moved) and "removed" not in open(live).read().split(said, 1)[-1],
         "a reload with the same metrics_file keeps the file", (c.returncode, c.stderr, os.listdir(mdir)))
    env.write_config(extra_daemon={"metrics_file": ""})
    c = env.ctl("reload")
    said = "metrics file %s removed: metrics_file is now empty" % moved
    logged = X.poll(lambda: open(live).read().count(said), timeout=10, step=0.1)
    t.ok(c.returncode == 0 and not os.path.exists(moved) and logged == 1 and os.listdir(mdir) == ["other.prom"],
         "a reload that empties metrics_file removes the file, said once; other files stay",
         (c.returncode, c.stderr, logged, os.listdir(mdir), open(live).read()[-1200:]))
    env.ctl("pause", "j")
    env.ctl("resume", "j")
    t.ok(os.listdir(mdir) == ["other.prom"], "with metrics_file empty nothing is written again", os.listdir(mdir))
    rc = X.stop_daemon(d)
    d = None
    t.ok(rc == 0, "the daemon stops cleanly", rc)
    ok = t.failed == 0
finally:
    if d is not None:
        X.stop_daemon(d)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
