#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Integration test of notification mail against a REAL SMTP server
# (smtpsink.py, aiosmtpd): a mail sent with xts_notify_send arrives with the
# right headers and body; with the server down the event stays in the
# store's outbox, is retried after its back-off and delivered exactly once
# when the server is back. TAP output. argv[1] = the store_tool binary.
import email
import email.policy
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
tool = sys.argv[1]
results = []


def check(what, cond):
    results.append((bool(cond), what))
    print('%s %d - %s' % ('ok' if cond else 'not ok', len(results), what), flush=True)


def run(*args):
    p = subprocess.run([tool] + [str(a) for a in args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def start_sink(outdir, port=0):
    p = subprocess.Popen(['/usr/bin/python3', os.path.join(HERE, 'smtpsink.py'), outdir, str(port)],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != 'port':
        p.kill()
        raise SystemExit('Bail out! smtpsink did not start')
    return p, int(line[1])


def stop_sink(p):
    p.terminate()
    p.wait(timeout=30)


def mails(outdir):
    return sorted(f for f in os.listdir(outdir) if f.endswith('.eml'))


def wait_mails(outdir, n, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if len(mails(outdir)) >= n:
            return True
        time.sleep(0.05)
    return False


def main():
    print('1..17', flush=True)
    tmp = tempfile.mkdtemp(prefix='xts-smtp-')
    sinkdir = os.path.join(tmp, 'sink')
    state = os.path.join(tmp, 'state')
    os.makedirs(state)
    sink, port = start_sink(sinkdir)
    url = 'smtp://127.0.0.1:%d' % port
    try:
        rc, out, err = run('send', url, 'xtsync@contoso.example',
                           'ops@contoso.example, second@fabrikam.example',
                           '[xtsync] test message', 'Hello operator.\nRun: xtsyncctl status\n')
        check('xts_notify_send returns success', rc == 0 and out == 'sent')
        check('the message arrived', wait_mails(sinkdir, 1))
        with open(os.path.join(sinkdir, '0001.eml'), 'rb') as f:
            msg = email.message_from_bytes(f.read(), policy=email.policy.default)
        with open(os.path.join(sinkdir, '0001.env')) as f:
            env = f.read().split('\n')
        check('From header', msg['From'] == 'xtsync@contoso.example')
        check('To header', msg['To'] == 'ops@contoso.example, second@fabrikam.example')
        check('Subject header', msg['Subject'] == '[xtsync] test message')
        check('Date and Message-ID headers', msg['Date'] is not None and
              (msg['Message-ID'] or '').endswith('@contoso.example>'))
        check('envelope has both recipients',
              'to ops@contoso.example' in env and 'to second@fabrikam.example' in env)
        body = msg.get_content()
        check('body arrived intact', 'Hello operator.' in body and 'xtsyncctl status' in body)

        # server down
        stop_sink(sink)
        sink = None
        rc, out, err = run('send', url, 'xtsync@contoso.example', 'ops@contoso.example', 's', 'b')
        check('send with the server down fails', rc == 1 and out.startswith('error XTS_EIO'))
        rc1, out1, _ = run('queue', state, 'contoso-to-fabrikam', 9, 'ops@contoso.example')
        rc2, out2, _ = run('queue', state, 'contoso-to-fabrikam', 9, 'ops@contoso.example')
        check('event queued once (second queue is a no-op)',
              rc1 == 0 and out1 == 'queued 1' and rc2 == 0 and out2 == 'queued 0')
        now = int(time.time() * 1000)
        rc, out, _ = run('flush', state, url, 'xtsync@contoso.example', now)
        check('flush with the server down records a failure', rc == 0 and out == 'sent 0 failed 1')
        rc, out, _ = run('outbox', state)
        check('the mail stays in the outbox with a back-off',
              rc == 0 and out.startswith('mail 1 attempts 1 next ') and
              int(out.split()[-1]) >= now + 60000)

        # server back
        sink, _ = start_sink(sinkdir, port)
        rc, out, _ = run('flush', state, url, 'xtsync@contoso.example', now + 1000)
        check('not retried before its back-off', rc == 0 and out == 'sent 0 failed 0')
        rc, out, _ = run('flush', state, url, 'xtsync@contoso.example', now + 61000)
        check('retried and delivered once the server is back', rc == 0 and out == 'sent 1 failed 0')
        ok = wait_mails(sinkdir, 2)
        body = ''
        if ok:
            with open(os.path.join(sinkdir, '0002.eml'), 'rb') as f:
                m2 = email.message_from_bytes(f.read(), policy=email.policy.default)
            body = m2.get_content()
            ok = m2['Subject'] == '[xtsync] job contoso-to-fabrikam: 612 deletions held'
        check('the deletions-held mail names the commands',
              ok and 'xtsyncctl allow-deletions contoso-to-fabrikam' in body and
              'xtsyncctl preview contoso-to-fabrikam' in body)
        run('queue', state, 'contoso-to-fabrikam', 9, 'ops@contoso.example')
        rc, out, _ = run('flush', state, url, 'xtsync@contoso.example', now + 7200000)
        check('a later flush sends nothing more', rc == 0 and out == 'sent 0 failed 0')
        time.sleep(0.5)
        check('exactly one mail for the event', len(mails(sinkdir)) == 2)
    finally:
        if sink:
            stop_sink(sink)
        subprocess.run(['rm', '-rf', tmp])
    sys.exit(0 if all(r[0] for r in results) else 1)


if __name__ == '__main__':
    main()
