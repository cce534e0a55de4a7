#!/usr/bin/env python3
"""The tools beside the tools users trust, measured in one run on 127.0.0.1 (issue 18).

    python3 bench/tools_compare.py BUILD_DIR [--rounds N] [--seconds S] [--only PART,...]
                                   [--strace] [--write]

BUILD_DIR holds an optimised build of the examples (`./dev bench tools` makes build-tools/).
Parts (all by default):

  semantics  the same requests to nginx and uvhttpd over the same files: the status and the
             fields that matter, side by side (the README's table)
  http       uvhttpd vs nginx: a 1 KiB file (wrk -c50), the same pipelined 10 deep (wrk with a
             pipelining script), a 20 MiB file (wrk -c4); requests/s, requests per CPU-second
             of the server, MiB per CPU-second
  https      the same servers over TLS with one self-signed certificate (openssl req): a 1 KiB
             file over kept connections, the same with a new connection per request (a full
             handshake each), a 20 MiB file (uvhttpd built with TLS)
  echo       co_echo_server vs python3 asyncio vs node: 8 connections stream 256 MiB through
             the echo and back; MiB/s and MiB per CPU-second of the server (--strace adds one
             traced run each: system calls per MiB, with `strace -f -c`)
  scan       uvscan vs nmap -sT over ports 1-65535 of 127.0.0.1 (three ports listening):
             wall seconds and CPU seconds of the scanner; the open ports must agree
  udp        uvcat -l -u vs nc -l -u as receivers of a paced 20 MiB/s stream of 1 KiB
             datagrams (40 MiB): the share lost

Every server is started here with a generated configuration on a free port of 127.0.0.1 and
stopped after its round; rounds alternate between the contestants (A B A B ...) so that load
from others on the machine spreads over all of them. Figures are medians with min..max over
the rounds. CPU seconds are the server's utime + stime from /proc/PID/stat (all its threads),
read after start-up and at the end of the round; a client's (scanners) from wait4's rusage.
--write puts the tables into bench/RESULTS.md and README.md (between their tools_compare
markers). Requires: nginx, wrk, nmap, nc (netcat-openbsd), node, python3 (`./dev deps` with the
bench packages); strace for --strace.
"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import http_compare  # noqa: E402  (start(), wrk())

TICK = os.sysconf("SC_CLK_TCK")
MiB = 1024 * 1024


# ---------------------------------------------------------------- processes


def cpu_seconds(pid):
    """utime + stime of a process, all threads, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit(f"{what} is not listening on {port} after {timeout} s")


class Peer:
    """A server started here: `listening on` on its first line (ours, and the generated scripts),
    or a fixed port it is told (nginx). Stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args, port=None, **popen):
        self.args = args
        if port is None:
            self.proc, self.port = http_compare.start(args)
        else:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         **popen)
            self.port = port
            wait_listening(port, self.proc, args[0])
        self.cpu0 = cpu_seconds(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.proc.pid) - self.cpu0

    def stop(self):
        if self.proc.poll() is None:
            # Under strace the server is strace's child: it gets the signal (strace itself would
            # detach and leave it running), and strace ends with it, writing its counts.
            target = self.proc.pid
            if os.path.basename(self.args[0]) == "strace":
                try:
                    with open(f"/proc/{target}/task/{target}/children") as f:
                        target = int(f.read().split()[0])
                except (OSError, IndexError, ValueError):
                    pass
            os.kill(target, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def nginx_config(top, root, port, tls=None):
    """A one-process nginx in the foreground with everything under `top`: nginx's defaults, and
    sendfile on as Debian's nginx.conf has it, but not its tcp_nopush (TCP_CORK), which holds
    nginx's answers to pipelined requests back: measured here, 11k requests/s with it and 19k
    without, for 10-deep pipelining of a 1 KiB file)."""
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(top, d), exist_ok=True)
    conf = os.path.join(top, "nginx.conf")
    t = os.path.join(top, "tmp")
    # With `tls` (certificate, key): HTTPS, TLS 1.2-1.3, no session resumption (as uvhttpd).
    listen_tls = " ssl" if tls else ""
    server_tls = (f" ssl_certificate {tls[0]}; ssl_certificate_key {tls[1]}; ssl_protocols TLSv1.2 TLSv1.3;"
                  " ssl_session_cache off; ssl_session_tickets off;") if tls else ""
    with open(conf, "w") as f:
        f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {top}/nginx.pid;
error_log {top}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {t}/body; proxy_temp_path {t}/proxy; fastcgi_temp_path {t}/fcgi;
    uwsgi_temp_path {t}/uwsgi; scgi_temp_path {t}/scgi;
    types {{ text/html html; text/plain txt; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    server {{ listen 127.0.0.1:{port}{listen_tls}; root {root};{server_tls} }}
}}
""")
    return ["nginx", "-p", top, "-c", conf]


def start_nginx(top, root, tls=None):
    port = free_port()
    return Peer(nginx_config(top, root, port, tls), port=port)


def start_uvhttpd(build, root, tls=None):
    cert = ["--cert", tls[0], "--key", tls[1]] if tls else []
    return Peer([os.path.join(build, "examples", "uvhttpd"), "--dir", root, "--max-requests", "1000000000", *cert])


def make_cert(top):
    """A self-signed P-256 certificate for 127.0.0.1 (the same for both servers): (cert, key)."""
    cert, key = os.path.join(top, "server.pem"), os.path.join(top, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def summary(values, fmt="{:,.0f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}..{fmt.format(max(values))})"


def med(values):
    return statistics.median(values)


# ---------------------------------------------------------------- a site


def make_site(top):
    root = os.path.join(top, "www")
    for d in ("sub", "noindex", "docs"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    rnd = random.Random(18)
    files = {"1k.bin": rnd.randbytes(1024), "f.txt": rnd.randbytes(1000), "docs/index.html": b"<p>docs</p>\n",
             "index.html": b"<h1>index</h1>\n", "noindex/x.txt": b"x\n", "20m.bin": rnd.randbytes(20 * MiB)}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    return root


# ---------------------------------------------------------------- semantics


def exchange(port, raw, body=None):
    """Sends `raw`; returns the response heads received (a 100 Continue first, if any). With
    `body`, it is sent after a 100 Continue (or after 2 s without one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(2)
    s.sendall(raw)
    data = b""
    heads = []
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            while b"\r\n\r\n" in data and (not heads or heads[-1].startswith("HTTP/1.1 100")):
                head, data = data.split(b"\r\n\r\n", 1)  # a body's own blank lines are never read as heads
                heads.append(head.decode("latin-1"))
                if heads[-1].startswith("HTTP/1.1 100") and body is not None:
                    s.sendall(body)
                    body = None
            if heads and not heads[-1].startswith("HTTP/1.1 100"):
                break
    except socket.timeout:
        if body is not None and not heads:  # no 100 Continue: the client sends the body anyway
            s.sendall(body)
            return ["(nothing within 2 s)"] + exchange_rest(s)
    s.close()
    return heads


def exchange_rest(s):
    try:
        data = s.recv(65536)
    except socket.timeout:
        data = b""
    s.close()
    return [data.split(b"\r\n\r\n")[0].decode("latin-1")] if data else []


def describe(heads):
    out = []
    for head in heads:
        lines = head.split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d+)", lines[0])
        if not m:
            out.append(lines[0])
            continue
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        text = m.group(1)
        extra = []
        if "content-range" in fields:
            extra.append(f"Content-Range: {fields['content-range']}")
        if "location" in fields:
            extra.append("Location: " + re.sub(r":\d+/", ":PORT/", fields["location"]))
        if fields.get("content-type", "").startswith("multipart/"):
            extra.append("multipart/byteranges")
        if m.group(1) == "200" and "etag" in fields and "last-modified" in fields:
            extra.append("ETag, Last-Modified" + (", Accept-Ranges" if "accept-ranges" in fields else ""))
        if extra:
            text += " (" + "; ".join(extra) + ")"
        out.append(text)
    return " then ".join(out)


def semantics_rows(root):
    st = os.stat(os.path.join(root, "f.txt"))
    import email.utils
    modified = email.utils.formatdate(int(st.st_mtime), usegmt=True)
    later = email.utils.formatdate(int(st.st_mtime) + 86400, usegmt=True)
    etag = f'"{int(st.st_mtime):x}-{st.st_size:x}"'

    def req(target, fields="", method="GET"):
        return f"{method} {target} HTTP/1.1\r\nHost: t\r\n{fields}\r\n".encode()

    return [
        ("GET /f.txt", req("/f.txt"), None),
        ("If-None-Match: (its ETag)", req("/f.txt", f"If-None-Match: {etag}\r\n"), None),
        ("If-None-Match: W/(its ETag)", req("/f.txt", f"If-None-Match: W/{etag}\r\n"), None),
        ("If-Modified-Since: (its Last-Modified)", req("/f.txt", f"If-Modified-Since: {modified}\r\n"), None),
        ("If-Modified-Since: (a day later)", req("/f.txt", f"If-Modified-Since: {later}\r\n"), None),
        ("Range: bytes=0-99", req("/f.txt", "Range: bytes=0-99\r\n"), None),
        ("Range: bytes=-100 (suffix)", req("/f.txt", "Range: bytes=-100\r\n"), None),
        ("Range: bytes=900- (open)", req("/f.txt", "Range: bytes=900-\r\n"), None),
        ("Range: bytes=900-5000 (past the end)", req("/f.txt", "Range: bytes=900-5000\r\n"), None),
        ("Range: bytes=2000- (beyond the end)", req("/f.txt", "Range: bytes=2000-\r\n"), None),
        ("Range: bytes=5-2", req("/f.txt", "Range: bytes=5-2\r\n"), None),
        ("Range: bytes=0-1,5-6 (two ranges)", req("/f.txt", "Range: bytes=0-1,5-6\r\n"), None),
        ("Range: items=0-1", req("/f.txt", "Range: items=0-1\r\n"), None),
        ("Range + If-Range: (its ETag)", req("/f.txt", f"Range: bytes=0-9\r\nIf-Range: {etag}\r\n"), None),
        ("Range + If-Range: \"other\"", req("/f.txt", "Range: bytes=0-9\r\nIf-Range: \"other\"\r\n"), None),
        ("HEAD /f.txt with Range: bytes=0-9", req("/f.txt", "Range: bytes=0-9\r\n", "HEAD"), None),
        ("GET /docs (a directory)", req("/docs"), None),
        ("GET /docs?q=1", req("/docs?q=1"), None),
        ("GET /docs/", req("/docs/"), None),
        ("GET /noindex/ (no index.html)", req("/noindex/"), None),
        ("GET /f.txt/", req("/f.txt/"), None),
        ("GET /sub/../f.txt", req("/sub/../f.txt"), None),
        ("GET /sub/%2e%2e/f.txt", req("/sub/%2e%2e/f.txt"), None),
        ("GET /sub/..", req("/sub/.."), None),
        ("GET /../f.txt (leaves the root)", req("/../f.txt"), None),
        ("GET //f.txt", req("//f.txt"), None),
        ("GET /nope", req("/nope"), None),
        ("GET with a body and Expect: 100-continue",
         req("/f.txt", "Content-Length: 5\r\nExpect: 100-continue\r\n"), b"hello"),
        ("POST /f.txt with Expect: 100-continue",
         req("/f.txt", "Content-Length: 5\r\nExpect: 100-continue\r\n", "POST"), b"hello"),
        ("DELETE /f.txt", req("/f.txt", method="DELETE"), None),
    ]


def part_semantics(build, top, root, args):
    ng = start_nginx(os.path.join(top, "nginx-sem"), root)
    uv = start_uvhttpd(build, root)
    rows = []
    try:
        for name, raw, body in semantics_rows(root):
            a = describe(exchange(ng.port, raw, body))
            b = describe(exchange(uv.port, raw, body))
            rows.append((name, a, b))
    finally:
        ng.stop()
        uv.stop()
    out = ["| request | nginx 1.22 | uvhttpd |", "|---|---|---|"]
    for name, a, b in rows:
        mark = "" if a == b else " \u2260"
        out.append(f"| `{name}` | {a} | {b}{mark} |")
    return "\n".join(out)


# ---------------------------------------------------------------- http load

PIPELINE_LUA = """
init = function(args)
   local r = {}
   for i = 1, 10 do r[i] = wrk.format(nil, "/1k.bin") end
   req = table.concat(r)
end
request = function() return req end
"""


def wrk_run(port, path, seconds, connections, script=None, scheme="http", headers=()):
    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    if script:
        args += ["-s", script]
    for h in headers:
        args += ["-H", h]
    args.append(f"{scheme}://127.0.0.1:{port}{path}")
    r = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    if "Non-2xx" in r.stdout or "Socket errors" in r.stdout or r.returncode != 0:
        sys.exit(f"wrk reported errors:\n{r.stdout}{r.stderr}")
    n = int(re.search(r"(\d+) requests in", r.stdout).group(1))
    m = re.search(r"requests in ([\d.]+)(m?s|m)\b", r.stdout)
    took = float(m.group(1)) * {"s": 1, "ms": 0.001, "m": 60}[m.group(2)]
    read = re.search(r"([\d.]+)([KMGT]?B) read", r.stdout)
    size = float(read.group(1)) * {"B": 1, "KB": 1024, "MB": MiB, "GB": 1024 * MiB, "TB": MiB * MiB}[read.group(2)]
    return n, took, size


def wrk_loads(build, top, root, args, loads, tls=None):
    """Each load (key, path, connections, wrk script, headers, label) against nginx and uvhttpd,
    alternating, args.rounds times: {(server, key): {"rps", "per_cpu", "mib_cpu": [...]}} and
    the table rows."""
    res = {(s, load[0]): {"rps": [], "per_cpu": [], "mib_cpu": []} for s in ("nginx", "uvhttpd") for load in loads}
    for _ in range(args.rounds):
        for key, path, conns, script, headers, _label in loads:
            for server in ("nginx", "uvhttpd"):  # A B, then the next load
                p = start_nginx(os.path.join(top, "nginx-https" if tls else "nginx-http"), root, tls) \
                    if server == "nginx" else start_uvhttpd(build, root, tls)
                try:
                    n, took, size = wrk_run(p.port, path, args.seconds, conns, script,
                                            "https" if tls else "http", headers)
                    cpu = p.cpu()
                finally:
                    p.stop()
                r = res[(server, key)]
                r["rps"].append(n / took)
                r["per_cpu"].append(n / cpu)
                r["mib_cpu"].append(size / MiB / cpu)
    rows = ["| load | server | requests/s | requests per CPU-second | MiB per CPU-second |", "|---|---|---:|---:|---:|"]
    for key, path, conns, _script, _headers, label in loads:
        for server in ("nginx", "uvhttpd"):
            r = res[(server, key)]
            rows.append(f"| {path}, -c{conns}{label} | {server} | {summary(r['rps'])} | {summary(r['per_cpu'])} | "
                        f"{summary(r['mib_cpu'])} |")
    return res, rows


def nginx_ratios(res, wanted):
    """`| what | uvhttpd/nginx |` for each (load, measure, what)."""
    return [f"| {what} | {med(res[('uvhttpd', load)][key]) / med(res[('nginx', load)][key]):.2f}x nginx |"
            for load, key, what in wanted]


def part_http(build, top, root, args):
    script = os.path.join(top, "pipeline.lua")
    with open(script, "w") as f:
        f.write(PIPELINE_LUA)
    loads = [("1k", "/1k.bin", 50, None, (), ""), ("1k pipelined", "/1k.bin", 50, script, (), ", 10 pipelined"),
             ("20m", "/20m.bin", 4, None, (), "")]
    res, rows = wrk_loads(build, top, root, args, loads)
    out = [f"wrk -t1 -d{args.seconds}s, {args.rounds} rounds (median (min..max)); CPU: the server's.", ""] + rows
    return "\n".join(out), nginx_ratios(res, (("1k", "per_cpu", "1 KiB file, requests per CPU-second"),
                                              ("1k pipelined", "rps", "1 KiB file pipelined (10 deep), requests/s"),
                                              ("20m", "mib_cpu", "20 MiB file, MiB per CPU-second")))


def part_https(build, top, root, args):
    """uvhttpd --cert/--key beside nginx with `ssl` on the same certificate: a 1 KiB file over kept
    connections, the same with a new connection (a full handshake) per request, a 20 MiB file."""
    loads = [("1k", "/1k.bin", 50, None, (), ""),
             ("1k new conn", "/1k.bin", 50, None, ("Connection: close",), ", a new connection per request"),
             ("20m", "/20m.bin", 4, None, (), "")]
    res, rows = wrk_loads(build, top, root, args, loads, make_cert(top))
    out = [f"HTTPS (TLS 1.3, P-256 certificate, no session resumption on either), wrk -t1 -d{args.seconds}s, "
           f"{args.rounds} rounds (median (min..max)); CPU: the server's.", ""] + rows
    return "\n".join(out), nginx_ratios(
        res, (("1k", "rps", "HTTPS 1 KiB file, requests/s"),
              ("1k", "per_cpu", "HTTPS 1 KiB file, requests per CPU-second"),
              ("1k new conn", "per_cpu", "HTTPS handshakes (a connection per request) per CPU-second"),
              ("20m", "mib_cpu", "HTTPS 20 MiB file, MiB per CPU-second")))


# ---------------------------------------------------------------- echo

ASYNCIO_ECHO = """
import asyncio, sys
class Echo(asyncio.Protocol):
    def connection_made(self, t): self.t = t
    def data_received(self, d): self.t.write(d)
async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Echo, "127.0.0.1", 0)
    print("listening on 127.0.0.1:%d" % srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

NODE_ECHO = """
const net = require('net');
const s = net.createServer(c => c.pipe(c));
s.listen(0, '127.0.0.1', () => console.log('listening on 127.0.0.1:' + s.address().port));
process.on('SIGTERM', () => process.exit(0));
"""


def echo_client(port, conns, total):
    """`conns` connections each send total/conns bytes and read them back, all at once (one
    thread per direction); returns the seconds it took."""
    each = total // conns
    block = random.Random(1).randbytes(256 * 1024)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(conns)]
    errors = []

    def send(s):
        try:
            left = each
            while left > 0:
                n = min(left, len(block))
                s.sendall(block[:n])
                left -= n
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append(e)

    def recv(s):
        try:
            got = 0
            while got < each:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            if got != each:
                errors.append(f"got {got} of {each}")
        except OSError as e:
            errors.append(e)

    start = time.monotonic()
    threads = [threading.Thread(target=f, args=(s,)) for s in socks for f in (send, recv)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    took = time.monotonic() - start
    for s in socks:
        s.close()
    if errors:
        sys.exit(f"echo client: {errors[:3]}")
    return took


def echo_servers(build, top):
    a = os.path.join(top, "echo_asyncio.py")
    n = os.path.join(top, "echo_node.js")
    with open(a, "w") as f:
        f.write(ASYNCIO_ECHO)
    with open(n, "w") as f:
        f.write(NODE_ECHO)
    return {"co_echo_server": [os.path.join(build, "examples", "co_echo_server")],
            "python3 asyncio": [sys.executable, a], "node": ["node", n]}


def strace_calls(args, total, conns):
    """Runs the server under strace -f -c for one echo of `total` bytes; returns (calls, epoll_ctl, errors)."""
    out = tempfile.mktemp(prefix="strace-", suffix=".txt")
    p = Peer(["strace", "-f", "-c", "-U", "calls,errors,name", "-o", out] + args)
    try:
        echo_client(p.port, conns, total)
    finally:
        p.stop()
    with open(out) as f:
        text = f.read()
    os.unlink(out)
    counts = {}
    for line in text.splitlines():  # "calls [errors] name"
        f = line.split()
        if len(f) >= 2 and f[0].isdigit():
            counts[f[-1]] = (int(f[0]), int(f[1]) if len(f) == 3 else 0)
    calls, errors = counts.get("total", (0, 0))
    ep, ep_err = counts.get("epoll_ctl", (0, 0))
    return calls, ep, ep_err, errors, text


def part_echo(build, top, args):
    servers = echo_servers(build, top)
    total, conns = 256 * MiB, 8
    res = {name: {"mibs": [], "mib_cpu": []} for name in servers}
    for _ in range(args.rounds):
        for name, cmd in servers.items():
            p = Peer(cmd)
            try:
                took = echo_client(p.port, conns, total)
                cpu = p.cpu()
            finally:
                p.stop()
            res[name]["mibs"].append(total / MiB / took)
            res[name]["mib_cpu"].append(total / MiB / cpu)
    out = [f"{conns} connections, {total // MiB} MiB through the echo and back, {args.rounds} rounds.", "",
           "| server | MiB/s | MiB per CPU-second |" + (" syscalls per MiB (epoll_ctl, of which failed) |"
                                                          if args.strace else ""),
           "|---|---:|---:|" + ("---:|" if args.strace else "")]
    traced = {}
    if args.strace and shutil.which("strace"):
        for name, cmd in servers.items():
            calls, ep, ep_err, _, _ = strace_calls(cmd, 64 * MiB, conns)
            traced[name] = f"{calls / 64:,.0f} ({ep / 64:,.1f}, {ep_err / 64:,.1f})"
    for name in servers:
        r = res[name]
        line = f"| {name} | {summary(r['mibs'])} | {summary(r['mib_cpu'])} |"
        if args.strace:
            line += f" {traced.get(name, 'n/a')} |"
        out.append(line)
    ratio = med(res["co_echo_server"]["mibs"]) / med(res["python3 asyncio"]["mibs"])
    ratios = [f"| co_echo_server bulk stream, 8 connections, MiB/s | {ratio:.2f}x asyncio |"]
    return "\n".join(out), ratios


# ---------------------------------------------------------------- scan


def run_client(cmd, timeout):
    """Runs a client to completion; returns (stdout, wall seconds, CPU seconds)."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out_chunks = []
    t = threading.Thread(target=lambda: out_chunks.append(p.stdout.read()))
    t.start()
    killer = threading.Timer(timeout, p.kill)  # bounded: a scan that hangs is killed
    killer.start()
    _, status, ru = os.wait4(p.pid, 0)  # reaped here, with its rusage
    killer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    t.join(timeout=10)
    took = time.monotonic() - start
    cpu = ru.ru_utime + ru.ru_stime
    return (out_chunks[0] if out_chunks else b"").decode(errors="replace"), took, cpu


def part_scan(build, top, args):
    listeners = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(128)
        listeners.append(s)
    want = sorted(s.getsockname()[1] for s in listeners)
    tools = {"uvscan": [os.path.join(build, "examples", "uvscan"), "127.0.0.1", "1-65535"],
             "nmap -sT": ["nmap", "-sT", "-n", "-Pn", "-p1-65535", "--open", "-oG", "-", "127.0.0.1"]}
    res = {name: {"wall": [], "cpu": []} for name in tools}
    try:
        for _ in range(args.rounds):
            for name, cmd in tools.items():
                out, took, cpu = run_client(cmd, 300)
                if name == "uvscan":
                    found = sorted(int(m) for m in re.findall(r"^(\d+) open$", out, re.M))
                else:
                    found = sorted(int(m) for m in re.findall(r"(\d+)/open/tcp", out))
                if not set(want) <= set(found):
                    sys.exit(f"{name} found {found}, expected at least {want}")
                res[name]["wall"].append(took)
                res[name]["cpu"].append(cpu)
    finally:
        for s in listeners:
            s.close()
    out = [f"Ports 1-65535 of 127.0.0.1 (3 listening, all found by both), {args.rounds} rounds.", "",
           "| scanner | wall seconds | CPU seconds |", "|---|---:|---:|"]
    for name in tools:
        out.append(f"| {name} | {summary(res[name]['wall'], '{:.2f}')} | {summary(res[name]['cpu'], '{:.2f}')} |")
    ratio = med(res["uvscan"]["wall"]) / med(res["nmap -sT"]["wall"])
    cratio = med(res["uvscan"]["cpu"]) / med(res["nmap -sT"]["cpu"])
    ratios = [f"| uvscan 1-65535, time (CPU) | {ratio:.2f}x ({cratio:.2f}x) nmap -sT |"]
    return "\n".join(out), ratios


# ---------------------------------------------------------------- udp


def udp_round(cmd, port, rate, total, size):
    """Starts a receiver, sends `total` bytes in datagrams of `size` at `rate` bytes/s, waits until
    the receiver's output stops growing; returns the share lost."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    got = [0]

    def count():
        while True:
            chunk = p.stdout.read1(1 << 20)
            if not chunk:
                return
            got[0] += len(chunk)

    t = threading.Thread(target=count)
    t.start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"u" * size
    # The receiver binds at its start: a first datagram until one arrives (bounded), not counted.
    for _ in range(200):
        s.sendto(payload, ("127.0.0.1", port))
        time.sleep(0.02)
        if got[0] > 0:
            break
    else:
        p.kill()
        sys.exit(f"{cmd[0]}: no datagram arrived")
    time.sleep(0.2)
    base = got[0]
    sent = 0
    start = time.monotonic()
    while sent < total:
        due = (time.monotonic() - start) * rate  # bytes that should be out by now
        while sent < due and sent < total:
            s.sendto(payload, ("127.0.0.1", port))
            sent += size
        time.sleep(0.0005)
    last, stable = -1, 0
    for _ in range(100):  # until nothing more arrives for 0.3 s (at most 10 s)
        time.sleep(0.1)
        if got[0] == last:
            stable += 1
            if stable >= 3:
                break
        else:
            last, stable = got[0], 0
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)
    t.join(timeout=10)
    s.close()
    return 1 - (got[0] - base) / sent


def part_udp(build, top, args):
    rate, total, size = 20 * MiB, 40 * MiB, 1024
    res = {"uvcat -l -u": [], "nc -l -u": []}
    for _ in range(args.rounds):
        for name in res:
            port = free_port()
            if name.startswith("uvcat"):
                cmd = [os.path.join(build, "examples", "uvcat"), "-l", "-u", "-p", str(port), "127.0.0.1"]
            else:
                cmd = ["nc", "-l", "-u", "127.0.0.1", str(port)]
            res[name].append(100 * udp_round(cmd, port, rate, total, size))
    out = [f"{total // MiB} MiB in {size}-byte datagrams at {rate // MiB} MiB/s, receiver's stdout to a pipe, "
           f"{args.rounds} rounds.", "", "| receiver | lost % |", "|---|---:|"]
    for name, v in res.items():
        out.append(f"| {name} | {summary(v, '{:.1f}')} |")
    ratios = [f"| uvcat as UDP receiver, paced 20 MiB/s, lost | {med(res['uvcat -l -u']):.1f}% vs nc "
              f"{med(res['nc -l -u']):.1f}% |"]
    return "\n".join(out), ratios


# ---------------------------------------------------------------- main


def replace_between(path, begin, end, text):
    with open(path) as f:
        content = f.read()
    if begin in content and end in content:
        head, rest = content.split(begin, 1)
        _, tail = rest.split(end, 1)
        content = head + begin + "\n" + text + "\n" + end + tail
    else:
        content = content.rstrip("\n") + "\n\n" + begin + "\n" + text + "\n" + end + "\n"
    with open(path, "w") as f:
        f.write(content)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--only", default="semantics,http,https,echo,scan,udp")
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.rounds <= 20 or not 1 <= args.seconds <= 60:
        sys.exit("--rounds 1..20, --seconds 1..60")
    parts = args.only.split(",")
    need = {"semantics": ["nginx"], "http": ["nginx", "wrk"], "https": ["nginx", "wrk", "openssl"], "echo": ["node"],
            "scan": ["nmap"], "udp": ["nc"]}
    for part in parts:
        if part not in need:
            sys.exit(f"unknown part '{part}'")
        for tool in need[part]:
            if not shutil.which(tool):
                sys.exit(f"'{tool}' is not installed (./dev deps installs the bench packages with ./dev bench)")
    top = tempfile.mkdtemp(prefix="uvkit-tools-")
    sections, ratios = [], []
    try:
        root = make_site(top)
        if "semantics" in parts:
            sections.append(("uvhttpd beside nginx: the same requests", part_semantics(args.build, top, root, args)))
        for part, title, fn in (("http", "uvhttpd beside nginx: cost", lambda: part_http(args.build, top, root, args)),
                                ("https", "uvhttpd beside nginx: HTTPS", lambda: part_https(args.build, top, root, args)),
                                ("echo", "co_echo_server beside asyncio and node", lambda: part_echo(args.build, top, args)),
                                ("scan", "uvscan beside nmap", lambda: part_scan(args.build, top, args)),
                                ("udp", "uvcat beside nc as a UDP receiver", lambda: part_udp(args.build, top, args))):
            if part in parts:
                table, r = fn()
                sections.append((title, table))
                ratios += r
                print(f"### {title}\n\n{table}\n", flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    text = []
    if ratios:
        text += ["| what | measured |", "|---|---|"] + ratios + [""]
    for title, table in sections:
        text += [f"### {title}", "", table, ""]
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    header = (f"`python3 bench/tools_compare.py BUILD --rounds {args.rounds} --seconds {args.seconds}"
              f"{' --only ' + args.only if args.only != ap.get_default('only') else ''}"
              f"{' --strace' if args.strace else ''}` on {cpu}, nproc {os.cpu_count()}, "
              f"{time.strftime('%Y-%m-%d', time.gmtime())}; everything on 127.0.0.1.")
    body = header + "\n\n" + "\n".join(text).rstrip("\n")
    print(body)
    if args.write:
        repo = os.path.dirname(HERE)
        replace_between(os.path.join(HERE, "RESULTS.md"), "<!-- tools_compare:begin -->",
                        "<!-- tools_compare:end -->", "## The tools beside their peers\n\n" + body)
        replace_between(os.path.join(repo, "README.md"), "<!-- tools_compare:begin -->",
                        "<!-- tools_compare:end -->", body.replace("\n### ", "\n#### "))  # one level down there


if __name__ == "__main__":
    main()
