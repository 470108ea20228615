#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sum TAP results over meson test logs: every 'ok'/'not ok' line of every
test program counts once; a program that failed without printing a failing
TAP line (a crash, a timeout) counts as one failure. TAP skips ('ok ... # SKIP') are
counted apart. Prints 'PASSED FAILED SKIPPED' for tests/run."""
import json
import re
import sys

OK = re.compile(r"^ok\b")
SKIP = re.compile(r"^ok\b.*#\s*skip", re.IGNORECASE)
NOT_OK = re.compile(r"^not ok\b")


def tally(path):
    passed = failed = skipped = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            out = rec.get("stdout") or ""
            p = f_ = s_ = 0
            for l in out.splitlines():
                if NOT_OK.match(l):
                    f_ += 1
                elif SKIP.match(l):
                    s_ += 1
                elif OK.match(l):
                    p += 1
            result = rec.get("result", "")
            if result not in ("OK", "EXPECTEDFAIL", "SKIP") and f_ == 0:
                f_ += 1
            if p == 0 and f_ == 0 and s_ == 0 and result == "OK":
                p = 1
            passed += p
            failed += f_
            skipped += s_
    return passed, failed, skipped


if __name__ == "__main__":
    tp = tf = ts = 0
    for path in sys.argv[1:]:
        p, f, s = tally(path)
        tp += p
        tf += f
        ts += s
    print(tp, tf, ts)
