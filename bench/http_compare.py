#!/usr/bin/env python3
"""Requests per second for GET /hello: uvhttpd (1 and 2 threads, both balance modes) beside node.

    python3 bench/http_compare.py BUILD_DIR [SECONDS] [CONNECTIONS] [ROUNDS]
    (defaults: 5 s, 50 connections, 3 rounds)

Each server runs alone on 127.0.0.1 and is loaded by `wrk -t1 -cCONNECTIONS -dSECONDS` (keep-alive,
one request in flight per connection). Rounds alternate between the servers so that load from
others on the machine spreads over all of them; the table gives the median requests/s and, for
uvhttpd, how the requests and the connections were spread over the worker loops (its --stats). uvhttpd runs with
--max-requests 1000000000, like node, which does not limit requests per connection.
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def start(args):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    m = re.match(r"^listening on 127\.0\.0\.1:(\d+)$", line.strip())
    if not m:
        p.kill()
        sys.exit(f"{args[0]}: first line {line!r}")
    return p, int(m.group(1))


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    if p.returncode != 0 or err.strip():
        sys.exit(f"{p.args[0]}: exit {p.returncode}, stderr {err!r}")
    return [(int(r), int(c)) for r, c in re.findall(r"^worker \d+: (\d+) requests, (\d+) connections", out, re.M)]


def wrk(port, seconds, connections):
    r = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/hello"],
                       capture_output=True, text=True, timeout=seconds + 30)
    if "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
        sys.exit(f"wrk reported errors:\n{r.stdout}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    build = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    connections = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    for tool in ("wrk", "node"):
        if not shutil.which(tool):
            sys.exit(f"'{tool}' is not installed")
    uvhttpd = [os.path.join(build, "examples", "uvhttpd"), "--max-requests", "1000000000", "--stats"]
    servers = {
        "uvhttpd --threads 1": uvhttpd,
        "uvhttpd --threads 2 --balance pass": uvhttpd + ["--threads", "2", "--balance", "pass"],
        "uvhttpd --threads 2 --balance shared": uvhttpd + ["--threads", "2", "--balance", "shared"],
        "node http (1 process)": ["node", os.path.join(HERE, "hello_node.js")],
    }
    rates = {name: [] for name in servers}
    spread = {name: [] for name in servers}
    for _ in range(rounds):
        for name, args in servers.items():
            p, port = start(args)
            try:
                rates[name].append(wrk(port, seconds, connections))
            finally:
                counts = stop(p)
            if len(counts) > 1:
                requests = "/".join(f"{100 * r / sum(r for r, _ in counts):.0f}%" for r, _ in counts)
                conns = "/".join(str(c) for _, c in counts)
                spread[name].append(f"{requests} ({conns})")
    print(f"wrk -t1 -c{connections} -d{seconds}s http://127.0.0.1:PORT/hello, median of {rounds} rounds\n")
    print("| server | requests/s | min..max | requests per worker (connections) |")
    print("|---|---:|---:|---|")
    for name in servers:
        r = rates[name]
        print(f"| {name} | {statistics.median(r):,.0f} | {min(r):,.0f}..{max(r):,.0f} | {', '.join(spread[name])} |")


if __name__ == "__main__":
    main()
