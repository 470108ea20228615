#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Security checks (TAP) with the real binaries and graphsim over HTTPS:
# (a) a full scenario — certificate credentials for the source, a secret from
#     $CREDENTIALS_DIRECTORY (LoadCredential=) for the target, SMTP with a
#     password — then every output (stderr of every run, the live daemon's
#     log, provisioning log, xtsyncctl status/logs, the SQLite files, the mail
#     sent) is searched for the client secret, every access token the emulator
#     issued, the private key's PEM body and the SMTP password: none may appear;
# (b) secret files readable by others (world) are refused, for each secret key (0640 is fine),
#     and so is a passphrase-protected client key;
# (c) a server whose certificate comes from an untrusted CA is refused before
#     any request; http:// to a non-loopback host is refused at config time;
# (d) the control socket refuses a user who is neither root nor in
#     control_group and admits a member (a group made with groupadd, removed after);
# (e) xtsyncd aborted with RLIMIT_CORE unlimited writes no core dump (it holds
#     the secrets in memory), where a control process on the same machine does.
# The SMTP sink requires AUTH with the configured password.
import base64
import glob
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import xtsenv as X  # noqa: E402

A = "aaaaaaaa-0000-4000-8000-0000000000a1"
B = "bbbbbbbb-0000-4000-8000-0000000000b2"
CA = "11111111-1111-4111-8111-111111111111"
CB = "22222222-2222-4222-8222-222222222222"
LINK = X.app_ext(CB)
XTSYNCD = os.path.join(X.BUILD, "daemon/xtsyncd")

t = X.Tap()
tmp = X.tmpdir("security")
os.chmod(tmp, 0o755)   # (d) runs xtsyncctl as another user: it must reach the socket
pki = os.path.join(tmp, "pki")
os.makedirs(os.path.join(tmp, "sim"))
sim = X.TlsSim(os.path.join(tmp, "sim"), pki)
ok = False
procs = []
group = None


def wfile(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(path, mode)


def quiet(err):
    return "\n".join(line for line in err.splitlines() if "debug" not in line)[-2000:]


def check_config(conf, env=None):
    e = dict(os.environ)
    e.pop("CREDENTIALS_DIRECTORY", None)
    e.update(env or {})
    return subprocess.run([XTSYNCD, "-c", conf, "--check-config"], capture_output=True, text=True, env=e,
                          timeout=60)


try:
    client_secret = "cs-" + secrets.token_urlsafe(24)
    smtp_password = "smtp-" + secrets.token_urlsafe(18)
    # source: certificate credentials; target: a client secret
    subprocess.run([X.PY, os.path.join(X.SRC, "tests/graphsim/mkcert.py"), "app", "--cert",
                    os.path.join(tmp, "app.crt"), "--key", os.path.join(tmp, "app.key")], check=True)
    with open(os.path.join(tmp, "app.crt")) as f:
        cert_pem = f.read()
    with open(os.path.join(tmp, "app.key")) as f:
        key_pem = f.read()
    key_body = [ln for ln in key_pem.splitlines() if ln and not ln.startswith("-----")]
    sim.call("POST", "/_admin/tenants", {"id": A, "domain": "src.example",
                                         "apps": [{"client_id": CA, "certificates": [cert_pem]}],
                                         "extension_properties": [X.app_ext(CA)]})
    sim.call("POST", "/_admin/tenants", {"id": B, "domain": "tgt.example",
                                         "apps": [{"client_id": CB, "secret": client_secret}],
                                         "extension_properties": [LINK]})
    sim.allow(A, B)
    sim.call("POST", "/_admin/tenants/%s/seed" % A, {"count": 10, "seed": 4, "guest_fraction": 0.0,
                                                     "disabled_fraction": 0.0})
    creds = os.path.join(tmp, "creds")
    os.makedirs(creds)
    os.chmod(creds, 0o700)
    wfile(os.path.join(creds, "tgt-secret"), client_secret + "\n", 0o400)
    wfile(os.path.join(creds, "smtp-password"), smtp_password + "\n", 0o400)
    sinkdir = os.path.join(tmp, "sink")
    # the sink requires SMTP AUTH with this password: the mail arriving proves
    # xtsync sent it (and so that the search below covers AUTH PLAIN's base64)
    sink, smtp_port = X.start_smtpsink(sinkdir, auth=("xtsync", os.path.join(creds, "smtp-password")))
    procs.append(sink)
    conf = os.path.join(tmp, "xtsync.conf")

    def config(authority=None, src_key="app.key", cafile=None, group_line=""):
        u = authority or sim.url
        return "\n".join([
            "[daemon]", "state_dir = %s" % tmp, "provisioning_log = %s/provisioning.log" % tmp,
            "control_socket = %s/control.sock" % tmp, "log_level = debug", group_line, "",
            "[smtp]", "url = smtp://127.0.0.1:%d" % smtp_port, "from = xtsync@src.example",
            "username = xtsync", "password_file = smtp-password", "",
            '[tenant "src"]', "tenant_id = %s" % A, "client_id = %s" % CA,
            "client_certificate_file = %s/app.crt" % tmp, "client_key_file = %s/%s" % (tmp, src_key),
            "authority = %s" % u, "graph_endpoint = %s" % u, "ca_file = %s" % (cafile or sim.cafile), "",
            '[tenant "tgt"]', "tenant_id = %s" % B, "client_id = %s" % CB,
            "client_secret_file = tgt-secret",
            "authority = %s" % u, "graph_endpoint = %s" % u, "ca_file = %s" % (cafile or sim.cafile), "",
            '[job "s2t"]', "source = src", "target = tgt", "scope = all", "interval = 1h",
            "deletion_threshold = 1", "notify = ops@src.example", ""])

    wfile(conf, config(), 0o644)
    run_env = dict(os.environ, CREDENTIALS_DIRECTORY=creds)
    outputs = {}

    def once(tag):
        p = subprocess.run([XTSYNCD, "-c", conf, "--once", "--foreground"], capture_output=True, text=True,
                           env=run_env, timeout=240)
        outputs["once %s stdout" % tag] = p.stdout
        outputs["once %s stderr" % tag] = p.stderr
        return p

    # ---- (a) the full scenario
    p = once("initial")
    good, bad = X.check_converged(sim, A, B, LINK)
    t.ok(p.returncode == 0 and good, "certificate credentials + LoadCredential secret: the initial cycle syncs "
         "over HTTPS", bad + [quiet(p.stderr)])
    src = [u for u in X.users_list(sim.users(A))]
    for u in src[:2]:
        sim.call("DELETE", "/_admin/tenants/%s/users/%s" % (A, u["id"]))
    sim.call("PATCH", "/_admin/tenants/%s/users/%s" % (A, src[3]["id"]), {"jobTitle": "Security Officer"})
    p = once("held")
    t.ok(p.returncode == 3, "2 deletions over the threshold of 1: held (a notification mail is due)",
         quiet(p.stderr))
    mails = X.poll(lambda: glob.glob(os.path.join(sinkdir, "*.eml")), timeout=20)
    envs = [open(m[:-4] + ".env").read() for m in mails or []]
    t.ok(len(mails or []) == 1 and all(e.startswith("auth xtsync\n") for e in envs),
         "the held-deletions mail arrived at the SMTP server, which required AUTH as xtsync", envs)
    d = subprocess.Popen([XTSYNCD, "-c", conf, "--foreground"], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(tmp, "live.log"), "w"), env=run_env)
    procs.append(d)
    X.poll(lambda: os.path.exists(os.path.join(tmp, "control.sock")), timeout=30)
    ctl = [os.path.join(X.BUILD, "daemon/xtsyncctl"), "-c", conf]
    X.poll(lambda: "held" in subprocess.run(ctl + ["status"], capture_output=True, text=True).stdout,
           timeout=60)
    codes = {}
    for args in (["status"], ["status", "--json"], ["logs"], ["logs", "--json"], ["preview", "s2t"],
                 ["test-connection", "s2t"]):
        c = subprocess.run(ctl + args, capture_output=True, text=True, env=run_env, timeout=60)
        outputs["xtsyncctl " + " ".join(args)] = c.stdout + c.stderr
        codes[args[0]] = c.returncode
    t.ok("s2t" in outputs["xtsyncctl status"] and '"action"' in outputs["xtsyncctl logs --json"],
         "xtsyncctl status and logs answered", outputs["xtsyncctl status"][-500:])
    # The certificate is public (mkcert.py writes it 0644, as a CA would hand
    # it out): xtsyncctl reads it as the daemon does, only the key as a secret.
    t.ok(codes["test-connection"] == 0, "xtsyncctl test-connection passes with certificate credentials "
         "(a 0644 certificate, a 0600 key) as the daemon does", outputs["xtsyncctl test-connection s2t"][-800:])
    X.stop_daemon(d)
    with open(os.path.join(tmp, "live.log"), errors="replace") as f:
        outputs["live daemon log"] = f.read()
    for name in ("provisioning.log", "xtsync.db", "xtsync.db-wal", "xtsync.db-shm"):
        path = os.path.join(tmp, name)
        if os.path.exists(path):
            with open(path, "rb") as f:
                outputs[name] = f.read().decode("latin-1")
    for m in mails or []:
        with open(m, "rb") as f:
            outputs["mail " + os.path.basename(m)] = f.read().decode("latin-1")
    tokens = [x["access_token"] for x in sim.call("GET", "/_admin/tokens")["value"]]
    t.ok(len(tokens) >= 4, "the emulator issued access tokens to both tenants (%d)" % len(tokens))
    needles = {"client secret": [client_secret], "SMTP password": [smtp_password],
               "private key PEM body": [ln for ln in key_body if len(ln) >= 40],
               "access tokens": tokens + [tk.split(".")[2] for tk in tokens]}
    # base64 of the secrets too (an Authorization: Basic or AUTH PLAIN would carry that)
    needles["client secret"].append(base64.b64encode(client_secret.encode()).decode()[:24])
    needles["SMTP password"].append(base64.b64encode(smtp_password.encode()).decode()[:20])
    t.ok(len(outputs) >= 14 and all(needles.values()), "searched %d outputs: %s" %
         (len(outputs), ", ".join(sorted(outputs))))
    for what, ns in sorted(needles.items()):
        found = ["%s in %s" % (what, where) for where, text in outputs.items() for n in ns if n in text]
        t.ok(not found, "no %s in any output (%d strings searched for)" % (what, len(ns)), found[:5])

    # ---- (b) secret files readable by others (world) are refused; 0640 (a
    # group such as root:xtsync) is fine: "must not be world-readable"
    for key, path, mode in (("client_key_file", os.path.join(tmp, "app.key"), 0o644),
                            ("client_secret_file", os.path.join(creds, "tgt-secret"), 0o604),
                            ("password_file", os.path.join(creds, "smtp-password"), 0o644)):
        old = os.stat(path).st_mode & 0o777
        os.chmod(path, mode)
        c = check_config(conf, {"CREDENTIALS_DIRECTORY": creds})
        p = once("mode %s" % key)
        os.chmod(path, old)
        t.ok(c.returncode == 2 and re.search(r"%s: .* is readable by others \(mode %o\)" % (key, mode),
                                             c.stdout + c.stderr) and p.returncode == 2,
             "%s with mode %o: --check-config and the daemon refuse it (exit 2)" % (key, mode),
             (c.stdout + c.stderr)[-600:] + quiet(p.stderr))
    old = {p: os.stat(p).st_mode & 0o777 for p in (os.path.join(tmp, "app.key"), os.path.join(creds, "tgt-secret"))}
    for p in old:
        os.chmod(p, 0o640)
    c = check_config(conf, {"CREDENTIALS_DIRECTORY": creds})
    for p, m in old.items():
        os.chmod(p, m)
    t.ok(c.returncode == 0, "secret files of mode 640 (group-readable, not world) are accepted", c.stdout + c.stderr)
    c = check_config(conf, {"CREDENTIALS_DIRECTORY": creds})
    t.ok(c.returncode == 0, "modes restored: the config passes again", c.stdout + c.stderr)

    # a passphrase-protected key: a daemon cannot type the passphrase (OpenSSL
    # would ask on the terminal and wait, the event loop with it): refused at
    # --check-config and at start, at once
    subprocess.run(["openssl", "pkey", "-in", os.path.join(tmp, "app.key"), "-aes256", "-passout", "pass:x",
                    "-out", os.path.join(tmp, "enc.key")], check=True)
    os.chmod(os.path.join(tmp, "enc.key"), 0o600)
    wfile(conf, config(src_key="enc.key"), 0o644)
    c = check_config(conf, {"CREDENTIALS_DIRECTORY": creds})
    p = once("encrypted key")
    wfile(conf, config(), 0o644)
    t.ok(c.returncode == 2 and re.search(r"xtsync\.conf:\d+: client_key_file: \S+enc\.key is encrypted with a "
                                         r"passphrase", c.stdout + c.stderr) and p.returncode == 2,
         "an encrypted client key: --check-config names it at FILE:LINE and the daemon refuses to start (exit %d)" %
         p.returncode, (c.stdout + c.stderr)[-600:] + quiet(p.stderr))
    c = check_config(conf)
    p = subprocess.run([XTSYNCD, "-c", conf, "--once", "--foreground"], capture_output=True, text=True,
                       env={k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}, timeout=60)
    t.ok(p.returncode == 2 and "is a systemd credential name but $CREDENTIALS_DIRECTORY is not set" in p.stderr
         and "start-up failed" in p.stderr,
         "a credential name without $CREDENTIALS_DIRECTORY: the daemon refuses to start (exit %d)" % p.returncode,
         quiet(p.stderr))

    # ---- (c) TLS: an untrusted CA, and http:// to a non-loopback host
    other = os.path.join(tmp, "other-pki")
    os.makedirs(other)
    subprocess.run([X.PY, os.path.join(X.SRC, "tests/graphsim/mkcert.py"), "other-ca", "--dir", other], check=True)
    os.makedirs(os.path.join(tmp, "sim2"))
    bad_sim = X.TlsSim(os.path.join(tmp, "sim2"), other)   # keeps the other CA's server.crt/key
    procs.append(bad_sim.p)
    bad_sim.ctx.load_verify_locations(os.path.join(other, "other-ca.crt"))
    wfile(conf, config(authority=bad_sim.url), 0o644)
    seq = bad_sim.last_seq()
    p = once("untrusted")
    t.ok(p.returncode in (1, 3) and re.search(r"TLS error \(SSL certificate problem", p.stderr) and
         not bad_sim.requests(seq)["value"],
         "a server certificate from an untrusted CA: refused, no request reached it (exit %d)" % p.returncode,
         quiet(p.stderr))
    for host in ("http://graph.example", "http://10.1.2.3:8080", "http://127.0.0.1.example.com"):
        wfile(conf, config(authority=host), 0o644)
        c = check_config(conf, {"CREDENTIALS_DIRECTORY": creds})
        t.ok(c.returncode == 2 and "authority" in c.stdout + c.stderr,
             "http:// to a non-loopback host (%s) is refused at config time" % host, c.stdout + c.stderr)
    wfile(conf, config(), 0o644)

    # ---- (e) no core dump: a crash must not write the secrets in memory to disk
    # (core_pattern is often a plain file name in the process's cwd; a control
    # process shows whether this machine writes cores at all)
    def unlimited_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    ctrl_dir, core_dir = os.path.join(tmp, "dump-ctrl"), os.path.join(tmp, "dump-xtsyncd")
    os.makedirs(ctrl_dir)
    os.makedirs(core_dir)
    subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=ctrl_dir, preexec_fn=unlimited_core,
                   capture_output=True)
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if not glob.glob(os.path.join(ctrl_dir, "core*")):
        t.n += 1
        print("ok %d # SKIP no core file from a control process here (core_pattern %r)" % (t.n, pattern))
    else:
        d = subprocess.Popen([XTSYNCD, "-c", conf, "--foreground"], stdout=subprocess.DEVNULL, cwd=core_dir,
                             stderr=open(os.path.join(tmp, "live-core.log"), "w"), env=run_env,
                             preexec_fn=unlimited_core)
        procs.append(d)
        X.poll(lambda: os.path.exists(os.path.join(tmp, "control.sock")), timeout=30)
        time.sleep(0.5)
        d.send_signal(signal.SIGABRT)
        d.wait(30)
        cores = glob.glob(os.path.join(core_dir, "core*")) + glob.glob(os.path.join(tmp, "core*"))
        t.ok(d.returncode == -signal.SIGABRT and not cores,
             "xtsyncd killed by SIGABRT with RLIMIT_CORE unlimited writes no core dump (the control "
             "process did; core_pattern %r)" % pattern, "exit %s, cores %s" % (d.returncode, cores))
        if os.path.exists(os.path.join(tmp, "control.sock")):
            os.unlink(os.path.join(tmp, "control.sock"))

    # ---- (d) the control socket: not root and not in control_group -> refused; a member -> allowed
    if os.geteuid() != 0 or shutil.which("groupadd") is None or shutil.which("setpriv") is None:
        for _ in range(3):
            t.n += 1
            print("ok %d # SKIP control-socket peer checks need root, groupadd and setpriv" % t.n)
    else:
        group = "xtsft%d" % os.getpid()
        subprocess.run(["groupadd", group], check=True)
        gid = int(subprocess.run(["getent", "group", group], capture_output=True, text=True).stdout.split(":")[2])
        wfile(conf, config(group_line="control_group = %s" % group), 0o644)
        d = subprocess.Popen([XTSYNCD, "-c", conf, "--foreground"], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "live2.log"), "w"), env=run_env)
        procs.append(d)
        X.poll(lambda: os.path.exists(os.path.join(tmp, "control.sock")), timeout=30)
        sock = os.path.join(tmp, "control.sock")
        base = [os.path.join(X.BUILD, "daemon/xtsyncctl"), "-s", sock, "status"]
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + base,
                             capture_output=True, text=True, timeout=30)
        t.ok(out.returncode == 1 and "ermission denied" in out.stdout + out.stderr and "s2t" not in out.stdout,
             "user nobody, not in control_group: refused", out.stdout + out.stderr)
        out2 = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--groups=%d" % gid] + base,
                              capture_output=True, text=True, timeout=30)
        t.ok(out2.returncode == 0 and "s2t" in out2.stdout,
             "user nobody with control_group %s as a supplementary group: allowed" % group,
             out2.stdout + out2.stderr)
        out3 = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--groups=%d" % (gid + 1000)] + base,
                              capture_output=True, text=True, timeout=30)
        t.ok(out3.returncode == 1 and "ermission denied" in out3.stdout + out3.stderr and "s2t" not in out3.stdout,
             "user nobody in some other group: refused", out3.stdout + out3.stderr)
        X.stop_daemon(d)
    ok = t.failed == 0
finally:
    for p in procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    if group is not None:
        subprocess.run(["groupdel", group], capture_output=True)
    sim.stop()
    X.cleanup(tmp, ok)
t.done()
