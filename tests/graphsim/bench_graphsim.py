#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# bench_graphsim: measures graphsim itself — seeding N users (default 1,000,000), a full
# users/delta initial round over them, and requests/s for GET user and delta pages with
# several keep-alive clients. Prints one line per figure; it is not part of the test suite.
import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_graphsim import start_sim  # noqa: E402


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) // 1024
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1000000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--full-round", action="store_true", help="also page through every user with delta")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="graphsim-bench-")
    proc, port = start_sim(tmp, "--no-throttle")

    def call(conn, method, path, body=None, headers=None, form=None):
        h = dict(headers or {})
        data = None
        if form:
            data = form.encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        return r.status, raw

    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        tid, app = str(uuid.uuid4()), str(uuid.uuid4())
        call(c, "POST", "/_admin/tenants", {"id": tid, "domain": "bench.example", "size": "large",
                                            "apps": [{"client_id": app, "secret": "x"}]})
        t0 = time.time()
        s, raw = call(c, "POST", "/_admin/tenants/%s/seed" % tid, {"count": a.users, "seed": 1})
        seed_s = time.time() - t0
        first = json.loads(raw)["first_ids"]
        print("seed %d users: %.2f s (server-side %.2f s), graphsim peak RSS %d MiB"
              % (a.users, seed_s, json.loads(raw)["seconds"], rss_mib(proc.pid)))
        s, raw = call(c, "POST", "/%s/oauth2/v2.0/token" % tid,
                      form="grant_type=client_credentials&client_id=%s&client_secret=x"
                           "&scope=https%%3A%%2F%%2Fgraph.microsoft.com%%2F.default" % app)
        tok = json.loads(raw)["access_token"]
        auth = {"Authorization": "Bearer " + tok}
        if a.full_round:
            t0 = time.time()
            url, pages, n = "/v1.0/users/delta?$select=displayName,mail,department,accountEnabled", 0, 0
            while True:
                s, raw = call(c, "GET", url, headers=auth)
                b = json.loads(raw)
                pages += 1
                n += len(b["value"])
                nl = b.get("@odata.nextLink")
                if not nl:
                    break
                sp = urlsplit(nl)
                url = sp.path + "?" + sp.query
            dt = time.time() - t0
            print("delta initial round: %d users in %d pages, %.1f s (%.0f pages/s), peak RSS %d MiB"
                  % (n, pages, dt, pages / dt, rss_mib(proc.pid)))
        s, raw = call(c, "GET", "/v1.0/users/delta?$select=displayName,mail", headers=auth)
        delta_next = urlsplit(json.loads(raw)["@odata.nextLink"])
        delta_path = delta_next.path + "?" + delta_next.query

        def load(paths, label):
            counts = [0] * a.clients
            stop = time.time() + a.seconds

            def worker(i):
                cc = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                k = 0
                while time.time() < stop:
                    st, _ = call(cc, "GET", paths[k % len(paths)], headers=auth)
                    if st != 200:
                        raise SystemExit("unexpected status %d" % st)
                    k += 1
                counts[i] = k
                cc.close()
            ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.clients)]
            t0 = time.time()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            dt = time.time() - t0
            print("%s: %d requests in %.1f s with %d keep-alive clients = %.0f req/s"
                  % (label, sum(counts), dt, a.clients, sum(counts) / dt))
        load(["/v1.0/users/%s" % u for u in first], "GET /v1.0/users/{id}")
        load([delta_path], "GET users/delta page (100 users, $select=displayName,mail)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
