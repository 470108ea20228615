#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A real SMTP server for tests (Debian's python3-aiosmtpd): listens on a
# loopback port and stores each received message as DIR/NNNN.eml with the
# envelope in DIR/NNNN.env. No relaying, no TLS, no authentication.
# usage: smtpsink.py DIR [PORT]   (PORT 0 = pick one; prints "port N" when ready)
import os
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.lock = threading.Lock()
        # continue the numbering of a previous run into the same directory
        self.count = len([f for f in os.listdir(outdir) if f.endswith('.eml')])

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            base = os.path.join(self.outdir, '%04d' % self.count)
        with open(base + '.env.tmp', 'w') as f:
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
    ctl = Controller(Sink(outdir), hostname='127.0.0.1', port=port)
    ctl.start()
    print('port %d' % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    stop.wait(600)  # bounded: a forgotten sink ends by itself
    ctl.stop()


if __name__ == '__main__':
    main()
