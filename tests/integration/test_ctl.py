#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# xtsyncctl integration test (TAP) against a running xtsyncd and graphsim:
# -c CONFIG finds the daemon's control_socket and the provisioning log even
# while the config has unrelated problems (the "edit, then reload" case),
# test-connection lists such problems, the status table has a DISABLED
# column, an unknown job is a usage error (exit 2) for every job command,
# allow-deletions with nothing held says so, pause and resume repeated
# exit 0 (for scripts), logs before the provisioning log exists prints
# nothing (and --follow waits for it), eval names an unreadable @FILE
# with errno's reason, and a UTF-8 byte-order mark is skipped (check-schema,
# eval @FILE).
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

JOB = "a2b"
DEFAULT_SOCKET = "/run/xtsync/control.sock"

t = X.Tap()
tmp = X.tmpdir("ctl")
sim = X.Sim(tmp)
daemon = None
ok = False


def ctl(*args, conf=None):
    """xtsyncctl -c conf (the env's config by default)."""
    cmd = [os.path.join(X.BUILD, "daemon/xtsyncctl"), "-c", conf or env.conf] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def out_of(c):
    return "rc=%d\nstdout: %s\nstderr: %s" % (c.returncode, c.stdout[-1500:], c.stderr[-1500:])


def write_conf(name, text):
    p = os.path.join(tmp, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def good_text():
    with open(env.conf) as f:
        return f.read()


def job_line(text, key):
    """1-based line of `key = ...` in the job section of text."""
    for i, line in enumerate(text.split("\n"), 1):
        if line.startswith(key + " ="):
            return i
    return 0


try:
    env, A, B, _ = X.source_target(sim, tmp, 0xc71c0001, 5, 7, names=("src", "tgt"))
    env.add_job(JOB, "src", "tgt", scope="all", deprovision="disable")
    env.write_config()
    good = good_text()
    daemon = X.start_daemon(env)
    first = X.wait_cycles(env, JOB, 1)
    t.ok(first is not None, "the daemon ran a first cycle", open(os.path.join(tmp, "live.log")).read()[-2000:])

    # ---- 3. the status table has a DISABLED column after DELETED
    src_users = X.users_list(sim.users(A))
    sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, src_users[0]["id"]))
    c = ctl("sync", JOB)
    t.ok(c.returncode == 0 and X.wait_cycles(env, JOB, 2) is not None, "sync JOB runs a second cycle", out_of(c))
    c = ctl("status")
    lines = c.stdout.split("\n")
    hdr = next((ln for ln in lines if ln.startswith("JOB ")), "")
    row = next((ln for ln in lines if ln.startswith(JOB + " ")), "")
    t.ok(c.returncode == 0 and re.search(r"\bIN SCOPE +CREATED +UPDATED +DELETED +DISABLED +FAILED +LAST RESULT$",
                                         hdr) is not None,
         "the status table has a DISABLED column between DELETED and FAILED", out_of(c))
    j = X.job_status(env, JOB) or {}
    counts = j.get("counts") or {}
    # Each count column is right-aligned under its 8-wide header: read the cell there.
    cells = {}
    for name in ("IN SCOPE", "CREATED", "UPDATED", "DELETED", "DISABLED", "FAILED"):
        m = re.search(r"\b" + name + r"\b", hdr)
        if m:
            cells[name] = row[m.end() - 8:m.end()].strip()
    t.ok(counts.get("disabled", 0) >= 1 and cells.get("DISABLED") == str(counts.get("disabled")) and
         cells.get("DELETED") == str(counts.get("deleted")) and cells.get("FAILED") == str(counts.get("failed")) and
         cells.get("IN SCOPE") == str(counts.get("in_scope")),
         "the DISABLED cell shows counts.disabled (a source user was deleted: disabled %s)" % counts.get("disabled"),
         "%s\ncells=%s counts=%s" % (out_of(c), cells, counts))

    # ---- 1. -c CONFIG with unrelated problems still reaches the daemon's socket
    bad_interval = good.replace("interval = 1h", "interval = 5q")
    open_secret = os.path.join(tmp, "open_secret")
    with open(open_secret, "w") as f:
        f.write("s3cret-value\n")
    os.chmod(open_secret, 0o644)
    broken = {
        "interval = 5q": bad_interval,
        "an unknown key": good.replace("[daemon]\n", "[daemon]\nfrobnicate = 1\n"),
        "a mode-644 secret file": good.replace(env.secret, open_secret),
    }
    for what, text in broken.items():
        conf = write_conf("broken.conf", text)
        c = ctl("status", "--json", conf=conf)
        t.ok(c.returncode == 0 and DEFAULT_SOCKET not in c.stderr and '"%s"' % JOB in c.stdout,
             "status -c CONF with %s reaches the daemon at CONF's control_socket" % what, out_of(c))
    # The operator's "edit the config, then reload": the daemon refuses, listing each problem.
    with open(env.conf, "w") as f:
        f.write(bad_interval)
    c = ctl("reload")
    err = c.stderr
    t.ok(c.returncode == 1 and "configuration has errors, not reloading" in err and
         "%s:%d: interval" % (env.conf, job_line(bad_interval, "interval")) in err and DEFAULT_SOCKET not in err,
         "reload -c CONF with `interval = 5q` gets the daemon's refusal and FILE:LINE problem", out_of(c))
    with open(env.conf, "w") as f:
        f.write(good.replace(env.secret, open_secret))
    c = ctl("reload")
    t.ok(c.returncode == 1 and "configuration has errors, not reloading" in c.stderr and
         "readable by others" in c.stderr,
         "reload -c CONF with a mode-644 secret gets the daemon's refusal naming the secret", out_of(c))
    # A config that cannot be read at all: say so, then try the default socket.
    c = ctl("status", conf=os.path.join(tmp, "nosuch.conf"))
    t.ok(c.returncode == 1 and "nosuch.conf: cannot open: No such file or directory" in c.stderr and
         "using the default socket " + DEFAULT_SOCKET in c.stderr,
         "an unreadable -c CONF is named before falling back to the default socket", out_of(c))

    # ---- 2. logs reads provisioning_log from a config with unrelated problems
    for what, text in broken.items():
        conf = write_conf("broken.conf", text)
        c = ctl("logs", "--json", "--job", JOB, conf=conf)
        entries = [json.loads(ln) for ln in c.stdout.splitlines() if ln.startswith("{")]
        t.ok(c.returncode == 0 and any(e.get("action") == "Create" for e in entries),
             "logs -c CONF with %s reads the provisioning log" % what, out_of(c))
    c = ctl("logs", conf=os.path.join(tmp, "nosuch.conf"))
    t.ok(c.returncode == 2 and "nosuch.conf: cannot open: No such file or directory" in c.stderr,
         "logs with an unreadable config exits 2 and says why", out_of(c))
    conf = write_conf("broken.conf", bad_interval)
    c = ctl("test-connection", JOB, conf=conf)
    t.ok(c.returncode == 2 and "%s:%d: interval" % (conf, job_line(bad_interval, "interval")) in c.stderr,
         "test-connection with a broken config exits 2 listing the problem", out_of(c))
    # a problem outside the job and its two tenants: the test runs, with a note
    conf = write_conf("broken.conf", good.replace("[daemon]\n", "[daemon]\nfrobnicate = 1\n"))
    c = ctl("test-connection", JOB, conf=conf)
    t.ok(c.returncode == 0 and ("OK: job %s" % JOB) in c.stdout and
         "has 1 problem(s) outside job %s and its tenants" % JOB in c.stderr and "frobnicate" not in c.stderr,
         "test-connection with a problem only in [daemon] tests the job, with a note", out_of(c))
    conf = write_conf("broken.conf", good.replace(env.secret, open_secret))
    c = ctl("test-connection", JOB, conf=conf)
    t.ok(c.returncode == 2 and "readable by others" in c.stderr and "cannot use" in c.stderr,
         "test-connection with a problem in one of the job's tenants exits 2 naming it", out_of(c))
    # a systemd credential name outside systemd ($CREDENTIALS_DIRECTORY not
    # set): known only when the secret is read, still the config's mistake
    cred_text = good.replace(env.secret, "src-secret", 1)
    conf = write_conf("cred.conf", cred_text)
    c = subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncctl"), "-c", conf, "test-connection", JOB],
                       capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"})
    t.ok(c.returncode == 2 and "%s:%d: tenant src: client_secret_file: cannot read the credential" %
         (conf, job_line(cred_text, "client_secret_file")) in c.stderr and
         "$CREDENTIALS_DIRECTORY is not set" in c.stderr and "test-connection: not found" not in c.stderr,
         "test-connection with a credential name and no $CREDENTIALS_DIRECTORY: exit 2, FILE:LINE", out_of(c))
    with open(env.conf, "w") as f:
        f.write(good)

    # ---- COMMAND --help prints the usage and exits 0, for every command
    for args in (["status"], ["sync"], ["provision", JOB], ["test-connection"], ["eval"], ["check-schema"]):
        c = ctl(*(args + ["--help"]))
        t.ok(c.returncode == 0 and c.stdout.startswith("usage: xtsyncctl") and "test-connection JOB" in c.stdout,
             "%s --help prints the usage, exit 0" % " ".join(args), out_of(c))

    # ---- 4. an unknown job is a usage error for every job command
    for args in (["sync"], ["pause"], ["resume"], ["preview"], ["allow-deletions"], ["restart"],
                 ["provision", "nosuch", "someone@src.example"], ["test-connection"]):
        if len(args) == 1:
            args = args + ["nosuch"]
        c = ctl(*args)
        t.ok(c.returncode == 2 and "xtsyncctl: no job named 'nosuch'" in c.stderr,
             "%s nosuch exits 2 with \"no job named 'nosuch'\"" % args[0], out_of(c))

    # ---- 5. allow-deletions with nothing held
    c = ctl("allow-deletions", JOB)
    t.ok(c.returncode == 1 and "job %s has no deletions held" % JOB in c.stderr and
         "invalid argument" not in c.stderr,
         "allow-deletions with nothing held says so (exit 1)", out_of(c))

    # ---- 6. pause and resume are idempotent: a script may repeat them
    c1 = ctl("pause", JOB)
    c2 = ctl("pause", JOB)
    st = (X.job_status(env, JOB) or {}).get("state")
    t.ok(c1.returncode == 0 and c2.returncode == 0 and "already paused" in c2.stdout and not c2.stderr and
         st == "paused",
         "pause of a paused job exits 0 and says it was already paused (state %s)" % st,
         out_of(c1) + "\n" + out_of(c2))
    c1 = ctl("resume", JOB)
    c2 = ctl("resume", JOB)
    st = (X.job_status(env, JOB) or {}).get("state")
    t.ok(c1.returncode == 0 and c2.returncode == 0 and "not paused" in c2.stdout and not c2.stderr and
         st != "paused",
         "resume of a job that is not paused exits 0 and says so (state %s)" % st,
         out_of(c1) + "\n" + out_of(c2))
    c = ctl("resume", JOB, "--json")
    t.ok(c.returncode == 0 and json.loads(c.stdout or "{}").get("ok") is True,
         "resume --json of a job that is not paused replies ok", out_of(c))

    # ---- 7. logs before the provisioning log exists (a fresh install)
    fresh = os.path.join(tmp, "fresh")
    os.mkdir(fresh)
    flog = os.path.join(fresh, "provisioning.log")
    conf = write_conf("fresh.conf", good.replace(os.path.join(tmp, "provisioning.log"), flog))
    c = ctl("logs", conf=conf)
    t.ok(c.returncode == 0 and c.stdout == "" and c.stderr == "",
         "logs with no provisioning log yet prints nothing and exits 0", out_of(c))
    c = ctl("logs", "--json", "--job", JOB, conf=conf)
    t.ok(c.returncode == 0 and c.stdout == "" and c.stderr == "",
         "logs --json --job with no provisioning log yet prints nothing and exits 0", out_of(c))
    c = ctl("logs", conf=write_conf("nodir.conf", good.replace(os.path.join(tmp, "provisioning.log"),
                                                                os.path.join(tmp, "nodir", "p.log"))))
    t.ok(c.returncode == 1 and "No such file or directory" in c.stderr,
         "logs with the log's directory missing (not a fresh install) still says so (exit 1)", out_of(c))
    fout = os.path.join(tmp, "follow.out")
    with open(fout, "w") as fo:
        f = subprocess.Popen([os.path.join(X.BUILD, "daemon/xtsyncctl"), "-c", conf, "logs", "--follow",
                              "--json"], stdout=fo, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.6)
        alive = f.poll() is None
        line = json.dumps({"activityDateTime": "2026-01-02T03:04:05Z", "jobId": JOB, "action": "Create",
                           "provisioningStatusInfo": {"status": "success"},
                           "sourceIdentity": {"id": "late-user"}})
        with open(flog, "w") as fl:
            fl.write(line + "\n")
        got = X.poll(lambda: "late-user" in open(fout).read(), timeout=10, step=0.1)
        with open(flog, "a") as fl:
            fl.write(line.replace("late-user", "later-user") + "\n")
        got2 = X.poll(lambda: "later-user" in open(fout).read(), timeout=10, step=0.1)
    finally:
        f.terminate()
        rc = f.wait(10)
    t.ok(alive and got and got2 and rc == 0,
         "logs --follow waits for the log to appear, then follows it (exit %s on SIGTERM)" % rc,
         open(fout).read()[-1500:])

    # ---- 8. eval with an unreadable @FILE
    c = subprocess.run([os.path.join(X.BUILD, "daemon/xtsyncctl"), "eval", "--attributes", "@nosuch.json",
                        "[mail]"], capture_output=True, text=True, timeout=60, cwd=tmp)
    t.ok(c.returncode == 2 and c.stderr.strip() == "xtsyncctl: cannot read nosuch.json: No such file or directory",
         "eval --attributes @nosuch.json names the file and errno's reason (exit 2)", out_of(c))

    # ---- 9. files with a byte-order mark: Windows PowerShell 5.1 writes a
    # UTF-8 one when it saves UTF-8 (RFC 8259 8.1: a parser may ignore it)
    with open(os.path.join(X.SRC, "schema/cross-tenant-schema.json"), "rb") as f:
        schema = f.read()
    with open(os.path.join(tmp, "bom.json"), "wb") as f:
        f.write(b"\xef\xbb\xbf" + schema)
    with open(os.path.join(tmp, "utf16.json"), "wb") as f:
        f.write(schema.decode("utf-8").encode("utf-16"))
    with open(os.path.join(tmp, "attrs.json"), "wb") as f:
        f.write(b"\xef\xbb\xbf" + '{"mail": "åsa@contoso.example"}'.encode())
    ctl_bin = os.path.join(X.BUILD, "daemon/xtsyncctl")
    c1 = subprocess.run([ctl_bin, "check-schema", os.path.join(tmp, "bom.json")], capture_output=True,
                        text=True, timeout=60)
    c2 = subprocess.run([ctl_bin, "check-schema", os.path.join(tmp, "utf16.json")], capture_output=True,
                        text=True, timeout=60)
    c3 = subprocess.run([ctl_bin, "eval", "--attributes", "@attrs.json", "[mail]"], capture_output=True,
                        text=True, timeout=60, cwd=tmp)
    c4 = subprocess.run([ctl_bin, "check-schema", "/dev/stdin"], input=b"\xef\xbb\xbf" + schema,
                        capture_output=True, timeout=60)
    c5 = subprocess.run([ctl_bin, "check-schema", "/dev/stdin"], input=schema, capture_output=True, timeout=60)
    t.ok(c1.returncode == 0 and "ok (" in c1.stdout + c1.stderr and c4.returncode == 0 and c5.returncode == 0,
         "check-schema reads a schema saved with a UTF-8 byte-order mark, also from a pipe (with or without)",
         (out_of(c1), c4.returncode, c4.stderr[-300:], c5.returncode, c5.stderr[-300:]))
    t.ok(c2.returncode == 2 and "UTF-16; save it as UTF-8" in c2.stdout + c2.stderr,
         "check-schema names a UTF-16 file (exit 2)", out_of(c2))
    t.ok(c3.returncode == 0 and c3.stdout.strip() == '"åsa@contoso.example"',
         "eval --attributes @FILE reads a file with a UTF-8 byte-order mark", out_of(c3))
    ok = t.failed == 0
finally:
    X.stop_daemon(daemon)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
