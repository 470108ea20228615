# SPDX-License-Identifier: MIT
# Helpers for the engine's integration tests: start graphsim on a free port,
# create tenants with apps and partner policies, write an xtsync config into a
# temp dir, run xtsyncd --once, read the emulator's users and request log, and
# print TAP. Tests only; it never touches anything outside its temp dir.
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SRC = os.environ.get("XTS_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD = os.environ.get("XTS_BUILD_ROOT", os.path.join(SRC, "build"))
PY = "/usr/bin/python3"


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, what, detail=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, what))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, what))
            if detail is not None:
                for line in str(detail).splitlines()[:40]:
                    print("# " + line)
        sys.stdout.flush()
        return cond

    def done(self):
        print("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)


class Sim:
    """A graphsim process on a free port."""

    def __init__(self, tmp, extra=()):
        self.tmp = tmp
        pf = os.path.join(tmp, "port")
        self.log = open(os.path.join(tmp, "graphsim.log"), "w")
        self.p = subprocess.Popen([PY, os.path.join(SRC, "tests/graphsim/graphsim.py"), "--port", "0",
                                   "--port-file", pf, "--quiet"] + list(extra),
                                  stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.port = int(open(pf).read().strip())
        self.url = "http://127.0.0.1:%d" % self.port

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s -> %d %s" % (method, path, e.code, e.read()[:300]))
        return json.loads(raw) if raw else {}

    def tenant(self, tid, domain, client_id, secret, ext=()):
        return self.call("POST", "/_admin/tenants", {"id": tid, "domain": domain,
                                                     "apps": [{"client_id": client_id, "secret": secret}],
                                                     "extension_properties": list(ext)})

    def allow(self, source, target):
        """Policies for source -> target cross-tenant sync."""
        self.call("PUT", "/_admin/tenants/%s/partners/%s" % (target, source),
                  {"inboundAllowed": True, "isSyncAllowed": True})
        self.call("PUT", "/_admin/tenants/%s/partners/%s" % (source, target), {"outboundAllowed": True})

    def set_user(self, tid, uid, attrs):
        """Change a user's attributes as an admin would (a source change)."""
        return self.call("PATCH", "/_admin/tenants/%s/users/%s" % (tid, uid), attrs)

    def users(self, tid):
        return self.call("GET", "/_admin/tenants/%s/users" % tid)

    def requests(self, since=0):
        return self.call("GET", "/_admin/requests?since=%d" % since)

    def last_seq(self):
        return self.requests(0).get("last", 0)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
        self.log.close()


def users_list(resp):
    return resp.get("value", resp) if isinstance(resp, dict) else resp


def guid(n, tenant=0):
    return "%08x-0000-4000-8000-%012x" % (tenant, n)


def app_ext(client_id):
    return "extension_%s_xtsyncSourceLink" % client_id.replace("-", "")


class Env:
    """Temp dir + config for xtsyncd against one graphsim."""

    def __init__(self, sim, tmp):
        self.sim = sim
        self.tmp = tmp
        os.makedirs(tmp, exist_ok=True)
        self.tenants = {}
        self.jobs = []
        self.secret = os.path.join(tmp, "secret")
        with open(self.secret, "w") as f:
            f.write("s3cret-value\n")
        os.chmod(self.secret, 0o600)

    def add_tenant(self, name, tid, client_id, ext_for=()):
        ext = [app_ext(client_id)] + [app_ext(c) for c in ext_for]
        self.sim.tenant(tid, name + ".example", client_id, "s3cret-value", ext)
        self.tenants[name] = (tid, client_id)

    def add_job(self, name, source, target, **kw):
        self.jobs.append((name, source, target, kw))

    def write_config(self, secret=None, extra_daemon=None):
        """extra_daemon: more [daemon] keys, {key: value} (e.g. metrics_file)."""
        lines = ["[daemon]", "state_dir = %s" % self.tmp,
                 "provisioning_log = %s/provisioning.log" % self.tmp,
                 "control_socket = %s/control.sock" % self.tmp, "log_level = debug"]
        for k, v in (extra_daemon or {}).items():
            lines.append("%s = %s" % (k, v))
        lines.append("")
        for name, (tid, cid) in self.tenants.items():
            lines += ['[tenant "%s"]' % name, "tenant_id = %s" % tid, "client_id = %s" % cid,
                      "client_secret_file = %s" % (secret or self.secret),
                      "authority = %s" % self.sim.url, "graph_endpoint = %s" % self.sim.url, ""]
        for name, s, t, kw in self.jobs:
            lines += ['[job "%s"]' % name, "source = %s" % s, "target = %s" % t]
            kw = dict(kw)
            kw.setdefault("interval", "1h")
            for k, v in kw.items():
                lines.append("%s = %s" % (k, v))
            lines.append("")
        self.conf = os.path.join(self.tmp, "xtsync.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))
        return self.conf

    def once(self, *args, timeout=240):
        cmd = [os.path.join(BUILD, "daemon/xtsyncd"), "-c", self.conf, "--once", "--foreground"] + list(args)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        with open(os.path.join(self.tmp, "daemon.log"), "a") as f:
            f.write("=== %s -> %d\n%s\n%s\n" % (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def ctl(self, *args, timeout=120):
        cmd = [os.path.join(BUILD, "daemon/xtsyncctl"), "-c", self.conf] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def provlog(self):
        out = []
        try:
            with open(os.path.join(self.tmp, "provisioning.log")) as f:
                for line in f:
                    out.append(json.loads(line))
        except FileNotFoundError:
            pass
        return out


def source_target(sim, tmp, tag, count, seed, names=("s", "d"), **seed_kw):
    """An Env with a source tenant (names[0], `count` users seeded with `seed`;
    no guests or disabled users unless seed_kw says so) and a target tenant
    (names[1]) that allows sync from it. tag (an int) makes the tenant and app
    ids unique to the test. Returns (env, source tid, target tid, the target
    app's link attribute)."""
    env = Env(sim, tmp)
    src_tid, src_cid = guid(0xb1, tag), guid(0xc1, tag)
    tgt_tid, tgt_cid = guid(0xb2, tag), guid(0xc2, tag)
    env.add_tenant(names[0], src_tid, src_cid)
    env.add_tenant(names[1], tgt_tid, tgt_cid)
    sim.allow(src_tid, tgt_tid)
    body = {"count": count, "seed": seed, "guest_fraction": 0.0, "disabled_fraction": 0.0}
    body.update(seed_kw)
    sim.call("POST", "/_admin/tenants/%s/seed" % src_tid, body)
    return env, src_tid, tgt_tid, app_ext(tgt_cid)


def tmpdir(name):
    d = tempfile.mkdtemp(prefix="xts-%s-" % name)
    return d


def cleanup(d, ok):
    if ok and not os.environ.get("XTS_KEEP"):
        shutil.rmtree(d, ignore_errors=True)
    else:
        print("# kept %s" % d)


# ---- fault-matrix and security helpers (tests/integration/test_faults*.py, test_security*.py)

def check_converged(sim, src_tid, tgt_tid, link):
    """sync_problems (defined below) as (ok, problems)."""
    probs = sync_problems(sim, src_tid, tgt_tid, link)
    return not probs, probs


def start_daemon(env, logname="live.log", extra_env=None):
    """The long-running xtsyncd on env's config; returns the Popen once the
    control socket exists (or raises). Stop it with stop_daemon."""
    sock = os.path.join(env.tmp, "control.sock")
    e = dict(os.environ)
    e.update(extra_env or {})
    p = subprocess.Popen([os.path.join(BUILD, "daemon/xtsyncd"), "-c", env.conf, "--foreground"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(env.tmp, logname), "a"), env=e)
    for _ in range(300):
        if os.path.exists(sock) or p.poll() is not None:
            break
        time.sleep(0.05)
    if not os.path.exists(sock):
        p.kill()
        p.wait()
        raise RuntimeError("xtsyncd did not create %s" % sock)
    return p


def stop_daemon(p, timeout=30):
    """SIGTERM and wait; returns the exit status (kills it after timeout)."""
    if p is None:
        return None
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return p.returncode


def poll(fn, timeout=60.0, step=0.2):
    """Call fn until it returns a true value or timeout seconds pass; returns its last value."""
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(step)


def job_status(env, job):
    """The job's object from `xtsyncctl status --json`, or None."""
    c = env.ctl("status", "--json")
    if c.returncode != 0:
        return None
    try:
        for j in json.loads(c.stdout).get("jobs", []):
            if j.get("name") == job:
                return j
    except ValueError:
        pass
    return None


def wait_cycles(env, job, n, timeout=120):
    """Poll status until the job has finished at least n cycles; its status (or None)."""
    end = time.time() + timeout
    while time.time() < end:
        j = job_status(env, job)
        if j is not None and j.get("cycles", 0) >= n and j.get("last_cycle_end") is not None \
                and j.get("state") != "running":
            return j
        time.sleep(0.2)
    return None


def start_smtpsink(outdir, port=0, auth=None):
    """tests/integration/smtpsink.py on a loopback port: (Popen, port).
    auth=(user, password_file): the server requires SMTP AUTH."""
    p = subprocess.Popen([PY, os.path.join(SRC, "tests/integration/smtpsink.py"), outdir, str(port)] +
                         (list(auth) if auth else []), stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "port":
        p.kill()
        raise RuntimeError("smtpsink did not start")
    return p, int(line[1])


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TlsSim(Sim):
    """graphsim over HTTPS with the test CA in pki_dir (created if absent);
    self.cafile is the CA a daemon must be given as ca_file."""

    def __init__(self, tmp, pki_dir, extra=()):
        import ssl
        Sim.__init__(self, tmp, ["--tls", "--pki-dir", pki_dir] + list(extra))
        self.url = "https://127.0.0.1:%d" % self.port
        self.cafile = os.path.join(pki_dir, "ca.crt")
        self.ctx = ssl.create_default_context(cafile=self.cafile)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.ctx) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise RuntimeError("%s %s -> %d %s" % (method, path, e.code, e.read()[:300]))
        return json.loads(raw) if raw else {}


def sink_mails(outdir):
    """Parsed messages received by an smtpsink, in order."""
    import email
    import email.policy
    out = []
    if not os.path.isdir(outdir):
        return out
    for f in sorted(x for x in os.listdir(outdir) if x.endswith(".eml")):
        with open(os.path.join(outdir, f), "rb") as fh:
            out.append(email.message_from_bytes(fh.read(), policy=email.policy.default))
    return out


def append_smtp(env, url, sender="xtsync@contoso.example"):
    """Add an [smtp] section to env's written config."""
    with open(env.conf, "a") as f:
        f.write("\n[smtp]\nurl = %s\nfrom = %s\n" % (url, sender))


# ---- crash / fail-Nth helpers (test_crash.py, test_failnth.py) ---------------------------------

SYNC_ATTRS = ("displayName", "department", "jobTitle", "accountEnabled")


def sync_problems(sim, src_tid, tgt_tid, link, attrs=SYNC_ATTRS, held=()):
    """The sync invariants for a scope=all, deprovision=disable job, as a list of
    problems (empty = all hold): every in-scope source member (not deleted, not a
    guest) has exactly one live target user carrying link "src:id" whose mapped
    attributes equal the source's; a source user out of scope has at most one
    target, disabled, unless its id is in held (deletions held by the threshold:
    that target must still be enabled); link values and invited mails are unique;
    no target user links to a source user that does not exist."""
    src = {u["id"]: u for u in users_list(sim.users(src_tid))}
    tgt = users_list(sim.users(tgt_tid))
    probs = []
    by_link, by_mail = {}, {}
    for u in tgt:
        lv = u.get(link)
        if not lv:
            probs.append("target user %s has no link attribute" % u["id"])
            continue
        by_link.setdefault(lv, []).append(u)
        if u.get("creationType") == "Invitation" and u.get("mail"):
            by_mail.setdefault(u["mail"].lower(), []).append(u)
    for lv, us in by_link.items():
        if len(us) > 1:
            probs.append("%d target users carry link %s" % (len(us), lv))
        sid = lv.split(":", 1)[-1]
        if lv.split(":", 1)[0] != src_tid or sid not in src:
            probs.append("target user %s links to unknown source %s" % (us[0]["id"], lv))
    for m, us in by_mail.items():
        if len(us) > 1:
            probs.append("%d target users invited with mail %s" % (len(us), m))
    for sid, s in src.items():
        ts = by_link.get("%s:%s" % (src_tid, sid), [])
        in_scope = not s.get("deleted") and s.get("userType") == "Member" and \
            s.get("creationType") != "Invitation"
        if in_scope:
            live = [t for t in ts if not t.get("deleted")]
            if len(live) != 1:
                probs.append("source %s (%s) has %d live target users" % (sid, s.get("displayName"), len(live)))
                continue
            diff = {a: (s.get(a), live[0].get(a)) for a in attrs if s.get(a) != live[0].get(a)}
            if diff:
                probs.append("source %s: target differs %s" % (sid, diff))
        elif sid in held:
            if any(t.get("deleted") or t.get("accountEnabled") is False for t in ts):
                probs.append("source %s: deletion held by the threshold but its target was disabled" % sid)
        else:
            if any(not t.get("deleted") and t.get("accountEnabled") is not False for t in ts):
                probs.append("source %s is out of scope but its target is still enabled" % sid)
    return probs


def linked(sim, tid, link):
    """tid's users that carry the link attribute, by the source user id in it
    ("<source tenant>:<source id>")."""
    return {u[link].split(":", 1)[1]: u for u in users_list(sim.users(tid)) if u.get(link)}


def target_writes(sim, seq, tid):
    """tid's write requests after seq, graphsim's request records (not GET; not
    token requests or $batch envelopes, whose sub-requests are counted)."""
    return [r for r in sim.requests(seq)["value"]
            if r["tenant"] == tid and r["method"] != "GET" and r["route"] not in ("token", "batch", "fault")]


def manager_problems(sim, src_tid, tgt_tid, link, kept=()):
    """Each target user (found by link) must have as manager the target user
    of its source user's manager, none when the source has none; but the
    source ids in kept, whose source has no manager, may keep the target's
    ("the manager attribute isn't updated in the target tenant" when the
    source's is removed: cross-tenant-synchronization-overview.md, FAQ)."""
    src = {u["id"]: u for u in users_list(sim.users(src_tid))}
    tgt = {u[link].split(":", 1)[-1]: u for u in users_list(sim.users(tgt_tid)) if u.get(link)}
    probs = []
    for sid, s in src.items():
        want = tgt.get(s.get("manager"), {}).get("id") if s.get("manager") else None
        have = tgt.get(sid, {}).get("manager")
        if want is None and sid in kept:
            continue
        if want != have:
            probs.append("%s: target manager %s, want %s" % (s.get("displayName"), have, want))
    return probs


def store_integrity(db):
    """PRAGMA integrity_check of an SQLite file, 'ok' when sound. Opening it
    recovers a hot WAL, as the daemon would: use it on a copy if that matters."""
    import sqlite3
    try:
        c = sqlite3.connect(db, timeout=30)
        try:
            return ";".join(r[0] for r in c.execute("PRAGMA integrity_check"))
        finally:
            c.close()
    except sqlite3.Error as e:
        return "error: %s" % e


def job_row(state_dir, job):
    """The store's row of job (a dict of its columns), read directly, or None."""
    db = sqlite3.connect(os.path.join(state_dir, "xtsync.db"))
    db.row_factory = sqlite3.Row
    try:
        r = db.execute("SELECT * FROM job WHERE name = ?", (job,)).fetchone()
        return dict(r) if r is not None else None
    finally:
        db.close()


def lock_store(state_dir):
    """Another process's write transaction on the daemon's store (SQLite WAL
    allows one writer): the daemon's own writes wait out its busy timeout
    (5 s) and fail. Returns the connection; rollback() and close() free it."""
    db = sqlite3.connect(os.path.join(state_dir, "xtsync.db"), timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db


def copy_store(state_dir, dest):
    """Copy xtsync.db, -wal and -shm (those that exist) from state_dir to dest."""
    os.makedirs(dest, exist_ok=True)
    n = 0
    for sfx in ("", "-wal", "-shm"):
        p = os.path.join(state_dir, "xtsync.db" + sfx)
        if os.path.exists(p):
            shutil.copyfile(p, os.path.join(dest, "xtsync.db" + sfx))
            n += 1
    return n
