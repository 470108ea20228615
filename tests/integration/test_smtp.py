#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Integration test of notification mail against a REAL SMTP server
# (smtpsink.py, aiosmtpd): a mail sent with xts_notify_send arrives with the
# right headers and body; with the server down the event stays in the
# store's outbox, is retried after its back-off and delivered exactly once
# when the server is back; EHLO names a full domain or an address literal; a
# UTF-8 body goes quoted-printable and a long To: is folded; one refused
# recipient does not stop the others; a mail refused for good is given up
# after 5 attempts; STARTTLS to a private CA needs [smtp] ca_file. TAP
# output. argv[1] = the store_tool binary.
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
    print('1..28', flush=True)
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
        with open(os.path.join(sinkdir, '0001.env')) as f:
            ehlo = [ln.split(' ', 1)[1] for ln in f.read().split('\n') if ln.startswith('ehlo ')]
        # RFC 5321 4.1.4: EHLO gives "the primary host name" (a full domain
        # name) or "an address literal", not a bare host name
        check('EHLO names a full domain or an address literal (%s)' % ehlo,
              ehlo and ('.' in ehlo[0] or ehlo[0].startswith('[')))

        # a body that is not ASCII goes quoted-printable (8bit would need
        # BODY=8BITMIME, RFC 6152) and arrives intact; a long recipient list
        # is folded (RFC 5322: lines of at most 998) and accepted
        many = ', '.join('operator-number-%02d@operations.contoso.example' % i for i in range(25))
        text = 'Zürich — the job is quarantined.\nNächster Versuch: 12:00\n'
        rc, out, err = run('send', url, 'xtsync@contoso.example', many, 's', text)
        check('a mail to 25 recipients with a UTF-8 body is accepted (%s)' % out, rc == 0 and out == 'sent')
        ok = wait_mails(sinkdir, 3)
        if ok:
            with open(os.path.join(sinkdir, '0003.eml'), 'rb') as f:
                raw = f.read()
            m3 = email.message_from_bytes(raw, policy=email.policy.default)
            ok = (m3['Content-Transfer-Encoding'] == 'quoted-printable' and
                  m3.get_content().replace('\r\n', '\n') == text and
                  max(len(ln) for ln in raw.split(b'\r\n')) <= 78 and
                  m3['To'].addresses[24].addr_spec == 'operator-number-24@operations.contoso.example')
        check('it arrives quoted-printable, decoded intact, To: folded (no line over 78), 25 addresses', ok)
        stop_sink(sink)
        sink = None

        # one refused recipient: the others still get the mail (RFC 5321:
        # each RCPT is answered on its own), and the refusal is named
        os.environ['SMTPSINK_REJECT'] = 'gone@contoso.example'
        sinkdir2 = os.path.join(tmp, 'sink2')
        sink, port2 = start_sink(sinkdir2)
        url2 = 'smtp://127.0.0.1:%d' % port2
        rc, out, err = run('send', url2, 'xtsync@contoso.example',
                           'ops@contoso.example, gone@contoso.example, sec@contoso.example', 's', 'b')
        check('one refused recipient: sent to the others, the refusal named (%s)' % out,
              rc == 0 and out == 'sent, but the server refused <gone@contoso.example>')
        env2 = []
        if wait_mails(sinkdir2, 1):
            with open(os.path.join(sinkdir2, '0001.env')) as f:
                env2 = f.read().split('\n')
        check('the envelope holds the two accepted recipients',
              'to ops@contoso.example' in env2 and 'to sec@contoso.example' in env2 and
              'to gone@contoso.example' not in env2)
        # every recipient refused for good: retried with back-off, then
        # given up after XTS_NOTIFY_MAX_REFUSALS (5) refusals, not forever
        state2 = os.path.join(tmp, 'state2')
        os.makedirs(state2)
        run('queue', state2, 'j2', 1, 'gone@contoso.example')
        base = int(time.time() * 1000) + 1000
        outs = []
        for k in range(5):
            outs.append(run('flush', state2, url2, 'xtsync@contoso.example', base + k * 7200000)[1])
        rc, out, _ = run('outbox', state2)
        rc6, out6, _ = run('flush', state2, url2, 'xtsync@contoso.example', base + 30 * 3600000)
        check('a mail refused 5 times (550) is given up: never due again (%s; %s)' % (outs, out),
              outs == ['sent 0 failed 1'] * 5 and out.endswith(' attempts 5 next 253402300799999') and
              out6 == 'sent 0 failed 0')
        rc, out, err = run('send', url2, 'xtsync@contoso.example', 'gone@contoso.example', 's', 'b')
        check('the server\'s own reply is in the error (%s)' % out,
              rc == 1 and out.startswith('error XTS_ESERVER') and 'User unknown' in out)
        stop_sink(sink)
        sink = None
        # four failures of another kind (the server down), then one refusal:
        # not given up (only refusals in a row count)
        state5 = os.path.join(tmp, 'state5')
        os.makedirs(state5)
        run('queue', state5, 'j5', 1, 'gone@contoso.example')
        b5 = int(time.time() * 1000) + 1000
        outs = [run('flush', state5, url2, 'xtsync@contoso.example', b5 + k * 7200000)[1] for k in range(4)]
        sink, _ = start_sink(sinkdir2, port2)
        out5 = run('flush', state5, url2, 'xtsync@contoso.example', b5 + 4 * 7200000)[1]
        ob5 = run('outbox', state5)[1]
        check('4 failures with the server down, then one refusal: not given up (%s; %s; %s)' % (outs, out5, ob5),
              outs == ['sent 0 failed 1'] * 4 and out5 == 'sent 0 failed 1' and ob5.startswith('mail 1 attempts 5 ') and
              not ob5.endswith(' 253402300799999'))
        stop_sink(sink)
        sink = None
        del os.environ['SMTPSINK_REJECT']

        # a recipient refused for now (450, greylisting) while the others
        # take the mail: it gets the mail later, on its own
        os.environ['SMTPSINK_DEFER'] = 'grey@contoso.example'
        sinkdir4 = os.path.join(tmp, 'sink4')
        sink, port4 = start_sink(sinkdir4)
        url4 = 'smtp://127.0.0.1:%d' % port4
        state4 = os.path.join(tmp, 'state4')
        os.makedirs(state4)
        run('queue', state4, 'j4', 1, 'ops@contoso.example, grey@contoso.example')
        t4 = int(time.time() * 1000) + 1000
        rc, out1, _ = run('flush', state4, url4, 'xtsync@contoso.example', t4)
        rc, ob, _ = run('outbox', state4)
        stop_sink(sink)
        del os.environ['SMTPSINK_DEFER']
        sink, _ = start_sink(sinkdir4, port4)
        rc, out2, _ = run('flush', state4, url4, 'xtsync@contoso.example', t4 + 1000)
        envs = []
        if wait_mails(sinkdir4, 2):
            for f in sorted(x for x in os.listdir(sinkdir4) if x.endswith('.env')):
                with open(os.path.join(sinkdir4, f)) as fh:
                    envs.append(sorted(ln for ln in fh.read().split('\n') if ln.startswith('to ')))
        check('a recipient refused for now (450) gets the mail later, alone (%s; %s; %s; %s)' % (out1, ob, out2, envs),
              out1 == 'sent 1 failed 0' and ob.startswith('mail 2 attempts 0') and out2 == 'sent 1 failed 0' and
              envs == [['to ops@contoso.example'], ['to grey@contoso.example']])
        stop_sink(sink)
        sink = None

        # STARTTLS offered with a certificate from a private CA: refused
        # without [smtp] ca_file, accepted with it (added to the system store)
        pki = os.path.join(tmp, 'pki')
        subprocess.run(['/usr/bin/python3', os.path.join(HERE, '..', 'graphsim', 'mkcert.py'), 'other-ca',
                        '--dir', pki], check=True, capture_output=True)
        os.environ['SMTPSINK_TLS'] = '%s:%s' % (os.path.join(pki, 'server.crt'), os.path.join(pki, 'server.key'))
        sinkdir3 = os.path.join(tmp, 'sink3')
        sink, port3 = start_sink(sinkdir3)
        del os.environ['SMTPSINK_TLS']
        url3 = 'smtp://127.0.0.1:%d' % port3
        rc, out, err = run('send', url3, 'xtsync@contoso.example', 'ops@contoso.example', 's', 'b')
        check('STARTTLS with an unknown CA is refused (%s)' % out, rc == 1 and out.startswith('error XTS_ETLS'))
        os.environ['XTS_SMTP_CA'] = os.path.join(pki, 'other-ca.crt')
        rc, out, err = run('send', url3, 'xtsync@contoso.example', 'ops@contoso.example', 's', 'b')
        del os.environ['XTS_SMTP_CA']
        check('with that CA as [smtp] ca_file the mail goes over STARTTLS (%s)' % out,
              rc == 0 and out == 'sent' and wait_mails(sinkdir3, 1))
    finally:
        if sink:
            stop_sink(sink)
        subprocess.run(['rm', '-rf', tmp])
    sys.exit(0 if all(r[0] for r in results) else 1)


if __name__ == '__main__':
    main()
