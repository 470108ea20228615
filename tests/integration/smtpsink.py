#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A real SMTP server for tests (Debian's python3-aiosmtpd): listens on a
# loopback port and stores each received message as DIR/NNNN.eml with the
# envelope in DIR/NNNN.env. No relaying, no TLS.
# usage: smtpsink.py DIR [PORT [USER PASSWORD_FILE]]
# Environment: SMTPSINK_REJECT="a@x,b@y" refuses those recipients (550 5.1.1),
# SMTPSINK_DEFER="c@z" for now (450 4.2.0, greylisting);
# SMTPSINK_TLS="CERT:KEY" offers STARTTLS with that certificate. Each .env
# also records the client's EHLO name ("ehlo NAME").
#   PORT 0 = pick one; prints "port N" when ready. With USER and PASSWORD_FILE
#   the server requires AUTH (PLAIN or LOGIN; allowed without TLS since it only
#   listens on loopback): MAIL before a successful AUTH is refused (530), a
#   wrong password gets 535, and each .env records "auth USER".
import os
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        # continue the numbering of a previous run into the same directory
        self.count = len([f for f in os.listdir(outdir) if f.endswith('.eml')])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reject = [a for a in os.environ.get('SMTPSINK_REJECT', '').split(',') if a]
        if address in reject:
            return '550 5.1.1 <%s>: Recipient address rejected: User unknown' % address
        defer = [a for a in os.environ.get('SMTPSINK_DEFER', '').split(',') if a]
        if address in defer:
            return '450 4.2.0 <%s>: Recipient address rejected: Greylisted, try again later' % address
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(self.outdir, '%04d' % self.count)
        with open(base + '.env.tmp', 'w') as f:
            if session.auth_data is not None:
                f.write('auth %s\n' % session.auth_data.login.decode('utf-8', 'replace'))
            f.write('ehlo %s\n' % session.host_name)
            f.write('from %s\n' % envelope.mail_from)
            for r in envelope.rcpt_tos:
                f.write('to %s\n' % r)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode('utf-8')
        with open(base + '.eml.tmp', 'wb') as f:
            f.write(data)
        os.rename(base + '.env.tmp', base + '.env')
        os.rename(base + '.eml.tmp', base + '.eml')
        return '250 OK'


class Authenticator:
    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()
        self.failures = 0

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword) and auth_data.login == self.user and
                auth_data.password == self.password):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    outdir = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    if port == 0:
        port = free_port()
    os.makedirs(outdir, exist_ok=True)
    kw = {}
    if len(sys.argv) > 4:
        with open(sys.argv[4]) as f:
            password = f.read().rstrip('\n')
        kw = dict(authenticator=Authenticator(sys.argv[3], password), auth_required=True,
                  auth_require_tls=False)
    if os.environ.get('SMTPSINK_TLS'):
        import ssl
        cert, key = os.environ['SMTPSINK_TLS'].split(':')
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        kw['tls_context'] = ctx
    ctl = Controller(Sink(outdir), hostname='127.0.0.1', port=port, **kw)
    ctl.start()
    print('port %d' % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait(600)  # bounded: a forgotten sink ends by itself
    ctl.stop()


if __name__ == '__main__':
    main()
