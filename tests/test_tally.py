#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Tests of tests/tally.py, which every CI verdict depends on: passes,
failures, skips, a crash without a failing TAP line, a program with no TAP."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tally  # noqa: E402

CASES = [
    ("passes and a failure", [("OK", "1..2\nok 1 - a\nnot ok 2 - b\n")], (1, 1, 0)),
    ("a skip is not a pass", [("OK", "1..2\nok 1 - a\nok 2 # SKIP no tool\n")], (1, 0, 1)),
    ("an all-skipped program is no pass", [("OK", "1..1\nok 1 # skip\n")], (0, 0, 1)),
    ("a crash after passing lines is a failure", [("FAIL", "1..3\nok 1\n")], (1, 1, 0)),
    ("a timeout with no output is a failure", [("TIMEOUT", "")], (0, 1, 0)),
    ("a passing program without TAP counts once", [("OK", "")], (1, 0, 0)),
    ("comments that look like results do not count", [("OK", "# not ok - grp\nok 1\n")], (1, 0, 0)),
]

print("1..%d" % len(CASES))
bad = 0
for i, (name, recs, want) in enumerate(CASES, 1):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        for result, out in recs:
            f.write(json.dumps({"result": result, "stdout": out}) + "\n")
    got = tally.tally(f.name)
    os.unlink(f.name)
    if got == want:
        print("ok %d - %s" % (i, name))
    else:
        bad += 1
        print("not ok %d - %s: got %r, want %r" % (i, name, got, want))
sys.exit(1 if bad else 0)
