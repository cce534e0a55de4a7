"""uvhttpd: driven by curl, wrk, socat and raw sockets over 127.0.0.1."""

import os
import random
import re
import select
import shutil
import signal
import socket
import email.utils
import http.client
import ssl
import struct
import tempfile
import threading
import time

from harness import *  # noqa: F401,F403

HELLO = b"Hello, world!\n"


def need(name):
    check(shutil.which(name) is not None, f"'{name}' is not installed")


def curl(*args, timeout=30):
    """Runs curl -s; returns (exit status, stdout bytes, stderr bytes)."""
    need("curl")
    rc, out, err, _ = run(["curl", "-s", "--max-time", "20", *args], timeout)
    return rc, out, err


def curl_status(url, *args):
    rc, out, err = curl("-o", os.devnull, "-w", "%{http_code}", *args, url)
    check(rc == 0, f"curl {url}: exit {rc}, {err!r}")
    return int(out)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())


class Conn:
    """A raw client connection that parses the responses it gets (Content-Length bodies)."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()  # appends in place: a 64 MiB body is not copied per chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()
        return False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise CheckFailed(f"no answer within the timeout; have {self.buf[:200]!r}")
        check(chunk, f"connection closed; have {self.buf[:200]!r}")
        self.buf += chunk

    def response(self, head_only=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        self.buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"^HTTP/1\.1 (\d{3}) ", lines[0])
        check(m is not None, f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = bytes(self.buf[:length]), self.buf[length:]
        return Response(int(m.group(1)), headers, body)

    def closed_after_alert(self):
        """True if the server closes the connection, perhaps after a TLS alert (any bytes)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return True

    def closed(self):
        """True if the server closes the connection (EOF, or a reset) with nothing more sent."""
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        check(chunk == b"", f"unexpected bytes {chunk[:100]!r}")
        return True


def get(path, host=True, version="1.1", extra=""):
    h = "Host: t\r\n" if host else ""
    return f"GET {path} HTTP/{version}\r\n{h}{extra}\r\n".encode()


class Site:
    """A temporary --dir with a small file, an index.html, a 5 MiB file and a secret outside it."""

    def __enter__(self):
        self.top = tempfile.mkdtemp(prefix="uvhttpd-")
        self.root = os.path.join(self.top, "www")
        os.makedirs(os.path.join(self.root, "sub"))
        self.files = {
            "index.html": b"<h1>index</h1>\n",
            "a.txt": b"some text\n",
            "sub/big.bin": random.Random(7).randbytes(5 * 1024 * 1024 + 123),
            "sub/empty.json": b"",
        }
        for name, data in self.files.items():
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(data)
        with open(os.path.join(self.top, "secret"), "wb") as f:
            f.write(b"outside the root\n")
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.top, ignore_errors=True)
        return False


# ---------------------------------------------------------------- the cases


def case_hello_get_head():
    with Server("uvhttpd") as srv:
        url = f"http://127.0.0.1:{srv.port()}/hello"
        rc, out, err = curl("-i", url)
        check(rc == 0, f"curl: {rc} {err!r}")
        head, _, body = out.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200 OK\r\n"), f"head {head!r}")
        check(body == HELLO, f"body {body!r}")
        check(b"\r\nContent-Length: 14\r\n" in head + b"\r\n", f"head {head!r}")
        check(b"\r\nContent-Type: text/plain" in head, f"head {head!r}")
        check(b"\r\nDate: " in head, f"no Date in {head!r}")
        rc, out, err = curl("-I", url)  # HEAD: the same header, no body
        check(rc == 0 and out.startswith(b"HTTP/1.1 200 OK\r\n"), f"HEAD: {rc} {out!r}")
        check(b"Content-Length: 14\r\n" in out and out.endswith(b"\r\n\r\n"), f"HEAD: {out!r}")


def case_static_files_and_types():
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        base = f"http://127.0.0.1:{srv.port()}"
        for name, data in site.files.items():
            rc, out, err = curl(f"{base}/{name}")
            check(rc == 0, f"{name}: curl {rc} {err!r}")
            expect_same(data, out, name)
        rc, out, _ = curl(f"{base}/")
        check(out == site.files["index.html"], f"/ gave {out[:80]!r}")
        check(curl_status(f"{base}/sub/") == 403, "a directory without index.html: not 403 (as nginx)")
        for path, ctype in [("a.txt", "text/plain"), ("index.html", "text/html"),
                            ("sub/big.bin", "application/octet-stream"), ("sub/empty.json", "application/json")]:
            rc, out, err = curl("-I", f"{base}/{path}")
            check(rc == 0, f"HEAD {path}: {rc}")
            size = len(site.files[path])
            check(f"Content-Length: {size}\r\n".encode() in out, f"HEAD {path}: {out!r}")
            check(f"Content-Type: {ctype}".encode() in out, f"HEAD {path}: {out!r}")
        # Query strings and %-escapes name the same file.
        rc, out, _ = curl(f"{base}/%61.txt?x=1")
        check(out == site.files["a.txt"], f"/%61.txt gave {out!r}")


def case_not_found():
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        base = f"http://127.0.0.1:{srv.port()}"
        for path in ("/nope", "/sub/nope.txt", "/a.txt/x"):
            check(curl_status(base + path) == 404, f"{path}: not 404")
    with Server("uvhttpd") as srv:  # no --dir: only /hello
        check(curl_status(f"http://127.0.0.1:{srv.port()}/index.html") == 404, "no --dir: not 404")


def case_path_traversal_403():
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        base = f"http://127.0.0.1:{port}"
        for path in ("/../secret", "/sub/../../secret", "/%2e%2e/secret", "/%2E%2E/secret", "/.%2e/secret",
                     "/sub/%2e%2e/%2e%2e/secret", "//etc/passwd", "/..%2fsecret", "/..%5csecret",
                     "/sub/../..", "/a.txt%00.html"):
            rc, out, err = curl("--path-as-is", "-o", os.devnull, "-w", "%{http_code}", base + path)
            check(rc == 0 and out == b"403", f"{path}: curl {rc}, status {out!r}")
        # What curl would normalise away, sent raw; the answer never carries the secret.
        with Conn(port) as c:
            for target in ("/../secret", "/sub/../../secret", "/%2e%2e/%2e%2e/etc/passwd"):
                c.send(get(target))
                r = c.response()
                check(r.status == 403 and b"outside" not in r.body, f"{target}: {r.status} {r.body!r}")


def case_malformed_400_with_socat():
    need("socat")
    with Server("uvhttpd") as srv:
        port = srv.port()
        for raw in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", b"GET /hello HTTP/1.1\r\n\r\n"):
            out = socat_echo(port, raw)  # the server answers and closes: socat ends
            check(out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), f"{raw!r}: got {out[:80]!r}")
            check(b"Connection: close\r\n" in out, f"{raw!r}: no Connection: close in {out!r}")
        out = socat_echo(port, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 505 "), f"HTTP/2.0: got {out[:80]!r}")


def case_pipelining_in_order():
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        with Conn(port) as c:
            c.send(get("/hello") + get("/a.txt") + get("/nope") + b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                   + get("/index.html"))
            got = [c.response() for _ in range(3)]
            head = c.response(head_only=True)
            last = c.response()
            check([r.status for r in got] == [200, 200, 404], f"statuses {[r.status for r in got]}")
            check(got[0].body == HELLO and got[1].body == site.files["a.txt"], "bodies out of order")
            check(head.status == 200 and head.header("content-length") == str(len(site.files["a.txt"])),
                  f"HEAD {head.status} {head.headers}")
            check(last.body == site.files["index.html"], f"last {last.body!r}")
            check(c.buf == b"", f"extra bytes {c.buf!r}")


def case_keep_alive_reuse_and_close():
    with Server("uvhttpd") as srv:
        port = srv.port()
        with Conn(port) as c:
            for _ in range(3):  # one connection, three exchanges
                c.send(get("/hello"))
                r = c.response()
                check(r.status == 200 and r.body == HELLO, f"{r.status} {r.body!r}")
                check(r.header("connection") is None, f"Connection: {r.header('connection')}")
            c.send(get("/hello", extra="Connection: close\r\n"))
            r = c.response()
            check(r.header("connection") == "close", f"Connection: {r.header('connection')}")
            check(c.closed(), "still open after Connection: close")
        # curl reuses the connection for a second URL.
        url = f"http://127.0.0.1:{port}/hello"
        rc, out, err = curl("-w", "[%{num_connects}]", url, url)
        check(rc == 0 and out == HELLO + b"[1]" + HELLO + b"[0]", f"curl: {rc} {out!r}")


def case_http10():
    with Server("uvhttpd") as srv:
        port = srv.port()
        with Conn(port) as c:  # HTTP/1.0 closes unless asked
            c.send(get("/hello", host=False, version="1.0"))
            r = c.response()
            check(r.status == 200 and r.body == HELLO, f"{r.status} {r.body!r}")
            check(r.header("connection") == "close", f"Connection: {r.header('connection')}")
            check(c.closed(), "HTTP/1.0 without keep-alive: still open")
        with Conn(port) as c:
            for _ in range(2):
                c.send(get("/hello", host=False, version="1.0", extra="Connection: keep-alive\r\n"))
                r = c.response()
                check(r.status == 200 and r.header("connection") == "keep-alive", f"{r.status} {r.headers}")
        rc, out, err = curl("-0", f"http://127.0.0.1:{port}/hello")
        check(rc == 0 and out == HELLO, f"curl -0: {rc} {out!r}")


def case_method_405():
    with Server("uvhttpd") as srv:
        port = srv.port()
        url = f"http://127.0.0.1:{port}/hello"
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            rc, out, err = curl("-i", "-X", method, "--data-binary", "x", url)
            check(rc == 0 and out.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n"), f"{method}: {out[:80]!r}")
            check(b"\r\nAllow: GET, HEAD\r\n" in out, f"{method}: no Allow in {out!r}")
        with Conn(port) as c:  # the connection stays usable after a 405
            c.send(b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + get("/hello"))
            check(c.response().status == 405, "not 405")
            check(c.response().body == HELLO, "the next request after a 405")


def case_headers_too_large_431():
    with Server("uvhttpd") as srv:
        port = srv.port()
        url = f"http://127.0.0.1:{port}/hello"
        check(curl_status(url, "-H", "X-Big: " + "a" * 7000) == 200, "7000 bytes of header refused")
        check(curl_status(url, "-H", "X-Big: " + "a" * 9000) == 431, "9000 bytes of header not 431")
        many = []
        for i in range(120):
            many += ["-H", f"X-{i}: v"]
        check(curl_status(url, *many) == 431, "120 fields not 431")
        with Conn(port) as c:  # endless header without its end: refused at the limit
            c.send(b"GET /hello HTTP/1.1\r\nHost: t\r\nX: " + b"b" * 20000)
            r = c.response()
            check(r.status == 431 and r.header("connection") == "close", f"{r.status} {r.headers}")


def case_body_too_large_413():
    with Server("uvhttpd") as srv:
        port = srv.port()
        with Conn(port) as c:  # answered before the body is sent
            c.send(b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n")
            r = c.response()
            check(r.status == 413 and r.header("connection") == "close", f"{r.status} {r.headers}")
            check(c.closed(), "still open after 413")
        with Conn(port) as c:  # 1 MiB is still within the limit
            c.send(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n" + b"z" * 1048576)
            check(c.response().status == 405, "1 MiB body")


def case_idle_timeout_and_max_requests():
    with Server("uvhttpd", "--idle", "1", "--max-requests", "2") as srv:
        port = srv.port()
        with Conn(port, timeout=20) as c:  # silent client: closed after about 1 s
            check(c.closed(), "an idle connection was not closed")
        with Conn(port, timeout=20) as c:  # half a request, then silence: closed too
            c.send(b"GET /hel")
            check(c.closed(), "a connection idle in mid-request was not closed")
        with Conn(port) as c:
            c.send(get("/hello") * 3)
            a, b = c.response(), c.response()
            check(a.header("connection") is None and b.header("connection") == "close",
                  f"{a.headers} / {b.headers}")
            check(c.closed(), "the third request was answered")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def case_large_file_streams_with_backpressure():
    if not os.path.exists("/proc/self/status"):
        return  # RSS is read from /proc (Linux)
    with Site() as site:
        size = 64 * 1024 * 1024
        with open(os.path.join(site.root, "huge.bin"), "wb") as f:
            f.truncate(size)  # sparse: zeros, no disk used
        with Server("uvhttpd", "--dir", site.root) as srv:
            port = srv.port()
            with Conn(port) as c:  # warm up: one small file
                c.send(get("/a.txt"))
                c.response()
            before = rss_kib(srv.proc.pid)
            with Conn(port, timeout=30) as c:
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                c.send(get("/huge.bin"))
                # The client reads nothing: the server must stop reading the file
                # once the socket's buffers are full, not queue 64 MiB.
                time.sleep(1.0)
                during = rss_kib(srv.proc.pid)
                check(during - before < 8 * 1024, f"RSS grew by {during - before} KiB while the client read nothing")
                r = c.response()
                check(r.status == 200 and len(r.body) == size and r.body.count(0) == size, "bad body")


def stats_lines(srv):
    lines = []
    while True:
        try:
            line = srv.lines.get(timeout=5)
        except Exception:
            break
        if line is None:
            break
        lines.append(line)
    return lines


def case_threads_2_both_modes():
    for mode in ("pass", "shared"):
        srv = Server("uvhttpd", "--threads", "2", "--balance", mode, "--stats")
        with srv:
            port = srv.port()
            for _ in range(6):  # a new connection each
                with Conn(port) as c:
                    c.send(get("/hello", extra="Connection: close\r\n"))
                    check(c.response().body == HELLO, f"{mode}: bad answer")
            rc = srv.stop()
            check(rc == 0, f"{mode}: exit status {rc} after SIGTERM")
            lines = stats_lines(srv)
            counts = [re.match(r"^worker (\d): (\d+) requests, (\d+) connections$", l) for l in lines]
            check(len(lines) == 2 and all(counts), f"{mode}: stats {lines!r}")
            total = sum(int(m.group(2)) for m in counts)
            check(total == 6, f"{mode}: {total} requests counted, 6 made")
            if mode == "pass":  # round-robin: three each
                check([int(m.group(3)) for m in counts] == [3, 3], f"pass: {lines!r}")


def wrk_check(port, who):
    need("wrk")
    rc, out, err, _ = run(["wrk", "-t1", "-c10", "-d2s", f"http://127.0.0.1:{port}/hello"], 30)
    text = out.decode(errors="replace")
    check(rc == 0, f"{who}: wrk exit {rc}: {err!r}")
    m = re.search(r"(\d+) requests in", text)
    check(m and int(m.group(1)) > 0, f"{who}: no requests in {text!r}")
    check("Non-2xx" not in text and "Socket errors" not in text, f"{who}: errors in {text!r}")


def case_wrk_load_no_errors():
    with Server("uvhttpd") as srv:
        wrk_check(srv.port(), "1 thread")
        check(srv.alive(), "server died under load")
    with Server("uvhttpd", "--threads", "2") as srv:
        wrk_check(srv.port(), "2 threads")


def case_bad_arguments_exit_2():
    for args in (["--port", "x"], ["--port", "70000"], ["--port"], ["--threads", "0"], ["--threads", "x"],
                 ["--dir", "/nonexistent/dir"], ["--balance", "random"], ["--idle", "0"], ["--bogus"],
                 ["--host", "not-an-address"], ["--max-requests", "0"], ["--header-timeout", "0"],
                 ["--header-timeout", "x"], ["--body-timeout", "0"], ["--max-conns", "0"], ["--max-conns"]):
        rc, out, err, _ = run([binary("uvhttpd"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")
    rc, out, err, _ = run([binary("uvhttpd"), "--help"], 10)
    check(rc == 0 and b"usage" in out, f"--help: {rc} {out!r}")


def case_port_in_use_exit_1():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        for extra in ([], ["--threads", "2"]):
            rc, out, err, _ = run([binary("uvhttpd"), "--port", str(port), *extra], 10)
            check(rc == 1, f"{extra}: exit status {rc}, expected 1")
            check(b"address already in use" in err.lower(), f"{extra}: stderr {err!r}")
            check(out == b"", f"{extra}: printed {out!r}")


def case_sigterm_sigint_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        for extra in ([], ["--threads", "2"]):
            srv = Server("uvhttpd", *extra)
            with srv:
                port = srv.port()
                with Conn(port) as c:  # an open keep-alive connection does not hold the exit up
                    c.send(get("/hello"))
                    c.response()
                    srv.proc.send_signal(sig)
                    try:
                        rc = srv.proc.wait(timeout=10)
                    except Exception:
                        raise CheckFailed(f"{sig.name} {extra}: still running after 10 s")
                    check(rc == 0, f"{sig.name} {extra}: exit status {rc}")


def case_symlinks_resolved_inside_dir():
    """Links are followed only as far as --dir: anything whose real path is outside is 403."""
    with Site() as site:
        links = {
            "etc": "/etc",                         # absolute, to a directory outside
            "secret.txt": "../secret",             # relative, to a file outside
            "up": "..",                            # the parent directory
            "inside.txt": "a.txt",                 # stays inside: served
            "subl": "sub",                         # a directory inside: served
            "dangling.txt": "nowhere.txt",
            "loop.txt": "loop.txt",
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(site.root, name))
        os.symlink("../..", os.path.join(site.root, "sub", "out"))  # a link below the first level, leaving
        os.symlink("../a.txt", os.path.join(site.root, "sub", "in.txt"))  # and one staying inside
        os.makedirs(os.path.join(site.root, "idx"))
        os.symlink("../../secret", os.path.join(site.root, "idx", "index.html"))  # an index that leaves
        via = os.path.join(site.top, "via")  # --dir itself given through a link
        os.symlink(site.root, via)
        with Server("uvhttpd", "--dir", via) as srv:
            port = srv.port()
            with Conn(port) as c:
                for target, status in (("/etc/passwd", 403), ("/etc/", 403), ("/secret.txt", 403),
                                       ("/up/secret", 403), ("/idx/", 403), ("/inside.txt", 200),
                                       ("/subl/empty.json", 200), ("/dangling.txt", 404), ("/loop.txt", 404),
                                       ("/a.txt", 200), ("/sub/out/secret", 403), ("/sub/out/www/a.txt", 200),
                                       ("/sub/in.txt", 200), ("/sub/out/", 403), ("/sub/out", 403)):
                    c.send(get(target))
                    r = c.response()
                    check(r.status == status, f"{target}: {r.status}, expected {status}")
                    check(b"outside" not in r.body and b"root:" not in r.body, f"{target}: {r.body[:80]!r}")
                c.send(get("/inside.txt"))
                r = c.response()
                check(r.body == site.files["a.txt"] and r.header("content-type").startswith("text/plain"),
                      f"/inside.txt: {r.headers} {r.body!r}")


def wait_all_closed(socks, feed, rounds, who):
    """Calls feed(sock) on every open socket once a round (0.2 s apart) until the server
    has closed all of them (EOF or reset); at most `rounds` rounds."""
    open_ = list(socks)
    for _ in range(rounds):
        for s in list(open_):
            try:
                feed(s)
            except (BrokenPipeError, ConnectionResetError):
                open_.remove(s)
        ready, _, _ = select.select(open_, [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            check(data == b"", f"{who}: the server answered {data[:80]!r}")
            open_.remove(s)
        if not open_:
            return
    raise CheckFailed(f"{who}: {len(open_)} of {len(socks)} connections still open after {rounds} rounds")


def case_slow_headers_cut_by_header_timeout():
    """200 clients sending their head one byte at a time: each read would re-arm --idle 30,
    but the head must be complete within --header-timeout 1 of its first byte."""
    head = get("/hello")
    with Server("uvhttpd", "--idle", "30", "--header-timeout", "1") as srv:
        port = srv.port()
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(200)]
        try:
            sent = {s: 0 for s in socks}

            def trickle(s):
                s.send(head[sent[s] % 8:sent[s] % 8 + 1])  # cycles through "GET /hel": never a whole head
                sent[s] += 1

            wait_all_closed(socks, trickle, 150, "slow heads")
        finally:
            for s in socks:
                s.close()
        with Conn(port) as c:  # a client in time is still served
            c.send(get("/hello"))
            check(c.response().body == HELLO, "the server stopped serving")


def case_slow_body_cut_by_body_timeout():
    """A body that trickles in (each byte re-arming --idle 30) is cut by --body-timeout 1."""
    with Server("uvhttpd", "--idle", "30", "--body-timeout", "1") as srv:
        port = srv.port()
        socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
        try:
            for s in socks:
                s.sendall(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nzz")
            wait_all_closed(socks, lambda s: s.send(b"z"), 150, "slow bodies")
        finally:
            for s in socks:
                s.close()


def case_request_body_dropped_and_next_request_served():
    """A GET with a body: the body is read and dropped, the answer follows it, and the
    pipelined request after it (in the same write, or split across the body) is answered."""
    with Server("uvhttpd") as srv:
        port = srv.port()
        body = b"b" * 100000
        req = b"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body)
        with Conn(port) as c:
            c.send(req + body + get("/hello"))
            for _ in range(2):
                r = c.response()
                check(r.status == 200 and r.body == HELLO, f"{r.status} {r.body[:80]!r}")
        with Conn(port) as c:
            c.send(req + body[:10])
            c.send(body[10:50000])
            c.send(body[50000:] + get("/hello")[:10])
            c.send(get("/hello")[10:])
            for _ in range(2):
                r = c.response()
                check(r.status == 200 and r.body == HELLO, f"split: {r.status} {r.body[:80]!r}")


def case_max_conns_refused_with_503():
    """Beyond --max-conns 3 a connection gets 503 and is closed; once one leaves, a new one is served."""
    with Server("uvhttpd", "--max-conns", "3") as srv:
        port = srv.port()
        held = [Conn(port) for _ in range(3)]
        try:
            for c in held:  # each answered: all three are being served
                c.send(get("/hello"))
                check(c.response().status == 200, "a connection within the limit was not served")
            with Conn(port) as extra:
                r = extra.response()
                check(r.status == 503 and r.header("connection") == "close", f"{r.status} {r.headers}")
                check(extra.closed(), "the refused connection stayed open")
            held[0].sock.close()
            # The slot is free once the server saw the close: a new one is served, in bounded tries.
            for _ in range(200):
                try:
                    with Conn(port) as c:
                        c.send(get("/hello"))
                        r = c.response()
                        if r.status == 200:
                            break
                        check(r.status == 503, f"status {r.status}")
                except (ConnectionResetError, BrokenPipeError):
                    pass  # refused before the request was read: the reset may overtake the 503
                time.sleep(0.01)
            else:
                raise CheckFailed("no connection served after one of the three left")
        finally:
            for c in held:
                c.sock.close()


def read_bytes(pid):
    """Bytes the process has read from any descriptor (rchar in /proc/PID/io): sockets included."""
    with open(f"/proc/{pid}/io") as f:
        return int(re.search(r"^rchar:\s+(\d+)", f.read(), re.M).group(1))


def case_rss_bounded_for_200_unfinished_bodies():
    """200 connections each sending 256 KiB of a 1 MiB body and then stalling: the server
    read all 50 MiB (counted in /proc/PID/io) yet its RSS grew by less than 20 MiB."""
    if not os.path.exists("/proc/self/io"):
        return  # Linux only
    # Deadlines far away: on a loaded machine the 50 MiB may take a while, and no
    # connection may be cut before it is counted.
    with Server("uvhttpd", "--idle", "600", "--body-timeout", "600") as srv:
        port = srv.port()
        with Conn(port) as c:  # warm up
            c.send(get("/hello"))
            c.response()
        before = rss_kib(srv.proc.pid)
        start = read_bytes(srv.proc.pid)
        part = 256 * 1024
        head = b"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n"
        socks = []
        try:
            for _ in range(200):
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                socks.append(s)
                s.sendall(head + b"x" * part)  # returns once the kernel took it; the server reads on
            want = 200 * (len(head) + part)
            for _ in range(3000):  # until the server has read all of it (bounded: 30 s)
                if read_bytes(srv.proc.pid) - start >= want:
                    break
                time.sleep(0.01)
            else:
                raise CheckFailed(f"the server read {read_bytes(srv.proc.pid) - start} of {want} bytes")
            grown = rss_kib(srv.proc.pid) - before
            check(grown < 20 * 1024, f"RSS grew by {grown} KiB for 200 unfinished bodies")
            check(srv.alive(), "server died")
        finally:
            for s in socks:
                s.close()


# ---------------------------------------------------------------- beside nginx


def hc_get(port, path, headers=None, method="GET", conn=None):
    """One request with python's http.client; returns (status, headers dict (lower-case names), body)."""
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if conn is None:
        c.close()
    return r.status, hdrs, body


def validators_of(path):
    st = os.stat(path)
    mtime = int(st.st_mtime)
    return f'"{mtime:x}-{st.st_size:x}"', email.utils.formatdate(mtime, usegmt=True), mtime


def case_last_modified_etag_and_304():
    """Last-Modified and ETag (nginx's form: "mtime-size" in hex) on every file; If-None-Match and
    If-Modified-Since give 304 without a body on a connection that stays usable; curl -z too."""
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        etag, modified, mtime = validators_of(os.path.join(site.root, "a.txt"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        status, h, body = hc_get(port, "/a.txt", conn=c)
        check(status == 200 and body == site.files["a.txt"], f"{status} {body!r}")
        check(h.get("etag") == etag and h.get("last-modified") == modified, f"validators {h}")
        check(h.get("accept-ranges") == "bytes", f"no Accept-Ranges in {h}")
        later = email.utils.formatdate(mtime + 3600, usegmt=True)
        earlier = email.utils.formatdate(mtime - 3600, usegmt=True)
        for headers, want in (({"If-None-Match": etag}, 304), ({"If-None-Match": "W/" + etag}, 304),
                              ({"If-None-Match": f'"x", {etag}'}, 304), ({"If-None-Match": "*"}, 304),
                              ({"If-None-Match": '"other"'}, 200),
                              ({"If-None-Match": '"other"', "If-Modified-Since": modified}, 200),  # INM decides
                              ({"If-Modified-Since": modified}, 304), ({"If-Modified-Since": later}, 304),
                              ({"If-Modified-Since": earlier}, 200), ({"If-Modified-Since": "yesterday"}, 200),
                              # the two obsolete date forms a server must read too
                              ({"If-Modified-Since": time.strftime("%A, %d-%b-%y %H:%M:%S GMT",
                                                                   time.gmtime(mtime))}, 304),
                              ({"If-Modified-Since": time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(mtime))}, 304)):
            status, h, body = hc_get(port, "/a.txt", headers, conn=c)  # one connection: 304s keep it in step
            check(status == want, f"{headers}: {status}, expected {want}")
            if want == 304:
                check(body == b"" and h.get("etag") == etag and "content-length" not in h, f"{headers}: {h} {body!r}")
            else:
                check(body == site.files["a.txt"], f"{headers}: body {body!r}")
        status, h, body = hc_get(port, "/a.txt", {"If-None-Match": etag}, method="HEAD", conn=c)
        check(status == 304, f"HEAD with If-None-Match: {status}")
        c.close()
        # curl -z DATE sends If-Modified-Since: a fresh copy is not fetched again.
        base = f"http://127.0.0.1:{port}"
        check(curl_status(f"{base}/a.txt", "-z", modified) == 304, "curl -z with the file's date: not 304")
        check(curl_status(f"{base}/a.txt", "-z", earlier) == 200, "curl -z with an older date: not 200")
        # A file that changes gets a new ETag.
        path = os.path.join(site.root, "a.txt")
        with open(path, "ab") as f:
            f.write(b"more\n")
        os.utime(path, (mtime + 10, mtime + 10))
        status, h, body = hc_get(port, "/a.txt", {"If-None-Match": etag})
        check(status == 200 and h.get("etag") != etag and body.endswith(b"more\n"), f"changed file: {status} {h}")


def case_ranges_206_416_and_curl_resume():
    """Range: one range -> 206 with Content-Range (closed, open and suffix ranges, cut at the end),
    unsatisfiable -> 416 with "bytes */size", several ranges -> 200 with the whole file (documented),
    If-Range; curl -r and curl -C - (resume) get the right bytes."""
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        big = site.files["sub/big.bin"]
        n = len(big)
        small = site.files["a.txt"]
        etag, modified, _ = validators_of(os.path.join(site.root, "sub/big.bin"))
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path, data, spec, first, last in (
                ("/a.txt", small, "bytes=0-3", 0, 3), ("/a.txt", small, "bytes=-4", len(small) - 4, len(small) - 1),
                ("/a.txt", small, "bytes=2-", 2, len(small) - 1), ("/a.txt", small, "bytes=-1000", 0, len(small) - 1),
                ("/a.txt", small, "bytes=5-9999", 5, len(small) - 1),
                ("/sub/big.bin", big, "bytes=0-99", 0, 99), ("/sub/big.bin", big, "bytes=-100", n - 100, n - 1),
                ("/sub/big.bin", big, "bytes=100000-3000000", 100000, 3000000),  # across several file reads
                ("/sub/big.bin", big, "bytes=4000000-", 4000000, n - 1),
                ("/sub/big.bin", big, f"bytes={n - 1}-{n - 1}", n - 1, n - 1)):
            status, h, body = hc_get(port, path, {"Range": spec}, conn=c)
            check(status == 206, f"{path} {spec}: {status}")
            check(h.get("content-range") == f"bytes {first}-{last}/{len(data)}", f"{spec}: {h.get('content-range')}")
            check(body == data[first:last + 1] and h.get("content-length") == str(last - first + 1),
                  f"{path} {spec}: {len(body)} bytes, not the range")
        for spec in (f"bytes={n}-", "bytes=-0", "bytes=5-2", "bytes=abc", f"bytes={n + 10}-{n + 20}"):
            status, h, body = hc_get(port, "/sub/big.bin", {"Range": spec}, conn=c)
            check(status == 416 and h.get("content-range") == f"bytes */{n}", f"{spec}: {status} {h}")
        status, h, body = hc_get(port, "/sub/empty.json", {"Range": "bytes=0-"}, conn=c)
        check(status == 416 and h.get("content-range") == "bytes */0", f"empty file: {status} {h}")
        for spec in ("bytes=0-1,5-6", "items=0-1"):  # several ranges, another unit: the whole file
            status, h, body = hc_get(port, "/a.txt", {"Range": spec}, conn=c)
            check(status == 200 and body == small and "content-range" not in h, f"{spec}: {status} {h}")
        status, h, body = hc_get(port, "/sub/big.bin", {"Range": "bytes=10-19", "If-Range": etag}, conn=c)
        check(status == 206 and body == big[10:20], f"If-Range matching: {status}")
        status, h, body = hc_get(port, "/sub/big.bin", {"Range": "bytes=10-19", "If-Range": modified}, conn=c)
        check(status == 206 and body == big[10:20], f"If-Range with the date: {status}")
        status, h, body = hc_get(port, "/sub/big.bin", {"Range": "bytes=10-19", "If-Range": '"old"'}, conn=c)
        check(status == 200 and body == big, f"If-Range not matching: {status}, {len(body)} bytes")
        for spec in ("bytes=2-3", "bytes=0-1", "bytes=-2"):  # what the open read is not what is sent
            status, h, body = hc_get(port, "/a.txt", {"Range": spec, "If-Range": '"old"'}, conn=c)
            check(status == 200 and body == small, f"{spec}, If-Range not matching: {status} {body!r}")
        status, h, body = hc_get(port, "/sub/big.bin", {"Range": "bytes=-300000"}, conn=c)  # beyond one read
        check(status == 206 and body == big[n - 300000:], f"suffix across reads: {status} {len(body)}")
        status, h, body = hc_get(port, "/a.txt", {"Range": "bytes=0-3"}, method="HEAD", conn=c)
        check(status == 200 and h.get("content-length") == str(len(small)), f"HEAD with Range: {status} {h}")
        c.close()
        base = f"http://127.0.0.1:{port}"
        rc, out, err = curl("-r", "1000-1999", f"{base}/sub/big.bin")
        check(rc == 0 and out == big[1000:2000], f"curl -r: {rc}, {len(out)} bytes")
        part = os.path.join(site.top, "part.bin")
        with open(part, "wb") as f:
            f.write(big[:1234567])  # an interrupted download
        rc, out, err = curl("-C", "-", "-o", part, f"{base}/sub/big.bin")
        check(rc == 0, f"curl -C -: exit {rc} {err!r}")
        with open(part, "rb") as f:
            expect_same(big, f.read(), "curl -C - resumed file")
        rc, out, err = curl("-C", "-", "-o", part, "-w", "%{http_code}", f"{base}/sub/big.bin")
        check(rc == 0 and out == b"416", f"curl -C - on a complete file: {rc} {out!r}")  # nothing left: 416


def case_directories_redirect_forbid_and_trailing_slash():
    """GET /dir -> 301 to /dir/ (query kept, names %-encoded), /dir/ without index.html -> 403,
    /file/ -> 404, /sub/../x normalised and served while it stays inside --dir."""
    with Site() as site:
        os.makedirs(os.path.join(site.root, "docs"))
        with open(os.path.join(site.root, "docs", "index.html"), "wb") as f:
            f.write(b"<p>docs</p>\n")
        os.makedirs(os.path.join(site.root, "a b"))
        with Server("uvhttpd", "--dir", site.root) as srv:
            port = srv.port()
            for path, location in (("/docs", "/docs/"), ("/docs?x=1&y", "/docs/?x=1&y"), ("/sub", "/sub/"),
                                   ("/a%20b", "/a%20b/"), ("/sub/../docs", "/docs/")):
                status, h, body = hc_get(port, path)
                check(status == 301 and h.get("location") == location, f"{path}: {status} {h.get('location')}")
            base = f"http://127.0.0.1:{port}"
            rc, out, err = curl("-L", f"{base}/docs")  # curl follows it to the index
            check(rc == 0 and out == b"<p>docs</p>\n", f"curl -L /docs: {rc} {out!r}")
            for path, status in (("/sub/", 403), ("/a%20b/", 403), ("/a.txt/", 404), ("/index.html/", 404),
                                 ("/sub/empty.json/", 404), ("/hello/", 404)):
                got, _, _ = hc_get(port, path)
                check(got == status, f"{path}: {got}, expected {status}")
            for path, data in (("/sub/../a.txt", site.files["a.txt"]), ("/sub/./../sub/empty.json", b""),
                               ("/./a.txt", site.files["a.txt"]), ("/sub/%2e%2e/a.txt", site.files["a.txt"]),
                               ("/sub/..", site.files["index.html"]), ("/docs/.", b"<p>docs</p>\n")):
                rc, out, err = curl("--path-as-is", "-w", "[%{http_code}]", base + path)
                check(rc == 0 and out == data + b"[200]", f"{path}: {rc} {out[-60:]!r}")
            with Conn(port) as c:  # and still refused when it leaves, in any spelling
                for target in ("/sub/../../secret", "/../secret", "/sub/%2e%2e/%2E%2E/secret", "/docs/./../../secret"):
                    c.send(get(target))
                    r = c.response()
                    check(r.status == 403 and b"outside" not in r.body, f"{target}: {r.status}")


def case_expect_100_continue():
    """A request with "Expect: 100-continue" and a body gets 100 Continue before it sends the body,
    then its answer; one that is refused anyway (405) gets the answer at once and the connection ends."""
    with Server("uvhttpd") as srv:
        port = srv.port()
        with Conn(port) as c:
            c.send(b"GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            while b"\r\n\r\n" not in c.buf:
                c._fill()
            check(bytes(c.buf) == b"HTTP/1.1 100 Continue\r\n\r\n", f"interim: {bytes(c.buf)!r}")
            c.buf.clear()
            c.send(b"hello" + get("/hello"))
            for _ in range(2):
                r = c.response()
                check(r.status == 200 and r.body == HELLO, f"after 100: {r.status} {r.body!r}")
        with Conn(port) as c:
            c.send(b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            r = c.response()
            check(r.status == 405 and r.header("connection") == "close", f"POST with Expect: {r.status} {r.headers}")
            check(c.closed(), "still open after refusing a body it did not want")
        # curl sends Expect: 100-continue for a body when asked and waits for the 100.
        rc, out, err = curl("-X", "GET", "-H", "Expect: 100-continue", "--data-binary", "x" * 2000,
                            "-w", "[%{http_code}]", f"http://127.0.0.1:{port}/hello")
        check(rc == 0 and out == HELLO + b"[200]", f"curl with Expect: {rc} {out!r}")


def case_pipelined_burst_answered_in_order():
    """200 pipelined requests in one write (files, 304s, 404s, ranges mixed) are answered in order."""
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        etag, _, _ = validators_of(os.path.join(site.root, "a.txt"))
        reqs, want = [], []
        for i in range(200):
            kind = i % 4
            if kind == 0:
                reqs.append(get("/a.txt")), want.append((200, site.files["a.txt"]))
            elif kind == 1:
                reqs.append(get("/a.txt", extra=f"If-None-Match: {etag}\r\n")), want.append((304, b""))
            elif kind == 2:
                reqs.append(get(f"/nope{i}")), want.append((404, None))
            else:
                reqs.append(get("/sub/big.bin", extra=f"Range: bytes={i}-{i + 9}\r\n"))
                want.append((206, site.files["sub/big.bin"][i:i + 10]))
        with Conn(port, timeout=30) as c:
            c.send(b"".join(reqs))
            for i, (status, body) in enumerate(want):
                r = c.response()
                check(r.status == status, f"answer {i}: {r.status}, expected {status}")
                check(body is None or r.body == body, f"answer {i}: body {r.body[:40]!r}")
            check(c.buf == b"", f"extra bytes {c.buf[:80]!r}")


def case_cached_small_files_follow_every_change():
    """Small files are served from memory after the first request, validated by a stat each time:
    a file replaced by another of the same size and time (a new inode), rewritten in place with
    its time put back (a new ctime), removed, or turned into a directory is seen at once; ranges
    and If-Range are cut from the cached bytes; a directory's index likewise."""
    with Site() as site, Server("uvhttpd", "--dir", site.root) as srv:
        port = srv.port()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        path = os.path.join(site.root, "a.txt")
        st = os.stat(path)
        for _ in range(3):  # the first fills the cache, the others come from it
            status, h, body = hc_get(port, "/a.txt", conn=c)
            check(status == 200 and body == site.files["a.txt"], f"{status} {body!r}")
        etag = h.get("etag")
        status, h, body = hc_get(port, "/a.txt", {"Range": "bytes=2-5"}, conn=c)
        check(status == 206 and body == site.files["a.txt"][2:6], f"range from the cache: {status} {body!r}")
        status, h, body = hc_get(port, "/a.txt", {"Range": "bytes=-3", "If-Range": etag}, conn=c)
        check(status == 206 and body == site.files["a.txt"][-3:], f"suffix range: {status} {body!r}")
        status, h, body = hc_get(port, "/a.txt", {"Range": "bytes=2-5", "If-Range": '"other"'}, conn=c)
        check(status == 200 and body == site.files["a.txt"], f"If-Range that fails: {status} {body!r}")
        # Another file of the same size and times, renamed over it: a new inode.
        other = os.path.join(site.root, "a.new")
        with open(other, "wb") as f:
            f.write(b"SOME TEXT\n")
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(other, path)
        status, h, body = hc_get(port, "/a.txt", conn=c)
        check(status == 200 and body == b"SOME TEXT\n", f"replaced file: {status} {body!r}")
        check(h.get("etag") == etag, f"same size and time, same ETag: {h.get('etag')} {etag}")
        # Rewritten in place, same size, its time put back: only the ctime tells.
        with open(path, "r+b") as f:
            f.write(b"some TEXT\n")
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        status, h, body = hc_get(port, "/a.txt", conn=c)
        check(status == 200 and body == b"some TEXT\n", f"rewritten in place: {status} {body!r}")
        os.remove(path)
        status, h, body = hc_get(port, "/a.txt", conn=c)
        check(status == 404, f"removed file: {status} {body!r}")
        os.mkdir(path)
        status, h, body = hc_get(port, "/a.txt", conn=c)
        check(status == 301, f"a directory now: {status}")
        status, h, body = hc_get(port, "/", conn=c)
        check(status == 200 and body == site.files["index.html"], f"index: {status} {body!r}")
        with open(os.path.join(site.root, "index.html"), "ab") as f:
            f.write(b"<p>more</p>\n")
        status, h, body = hc_get(port, "/", conn=c)
        check(status == 200 and body == site.files["index.html"] + b"<p>more</p>\n", f"index changed: {body!r}")
        c.close()


def case_https_with_curl():
    """--cert/--key: HTTPS with ALPN http/1.1, keep-alive, a 5 MiB file; on 1 and 2 threads."""
    with tempfile.TemporaryDirectory(prefix="uvhttpd-tls-") as certs:
        rc, _, err, _ = run([binary("uvhttpd"), "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], 10)
        if rc == 2 and b"without TLS" in err:
            return  # built without TLS: --cert is refused as a bad argument, as it should be
        check(rc == 1 and b"/nonexistent.pem" in err, f"a missing --cert file: exit {rc}, {err!r}")
        make_certs(certs)
        ca = os.path.join(certs, "ca.pem")
        tls = ["--cert", os.path.join(certs, "server.pem"), "--key", os.path.join(certs, "server.key")]
        for threads in ("1", "2"):
            with Site() as site, Server("uvhttpd", "--dir", site.root, "--threads", threads, *tls) as srv:
                port = srv.port()
                base = f"https://127.0.0.1:{port}"
                rc, out, err = curl("-v", "--cacert", ca, "-w", "[%{num_connects}]", base + "/hello", base + "/a.txt")
                check(rc == 0, f"curl {base}/hello: exit {rc}, {err!r}")
                check(out == HELLO + b"[1]" + site.files["a.txt"] + b"[0]", f"two URLs, one connection: {out!r}")
                check(re.search(rb"ALPN.*server accepted.*http/1\.1", err), f"no ALPN http/1.1 in {err[-2000:]!r}")
                rc, out, err = curl("--cacert", ca, base + "/sub/big.bin")
                check(rc == 0, f"curl big.bin: exit {rc}, {err!r}")
                check(out == site.files["sub/big.bin"], f"big.bin: {len(out)} bytes differ")
                rc, out, err = curl("-I", "--cacert", ca, base + "/sub/big.bin")
                length = f"Content-Length: {len(site.files['sub/big.bin'])}\r\n".encode()
                check(rc == 0 and length in out and out.endswith(b"\r\n\r\n"), f"HEAD over TLS: {rc} {out!r}")
                # An unknown CA (curl's own store), and plain HTTP to the HTTPS port: refused,
                # and the server goes on.
                rc, _, _ = curl(base + "/hello")
                check(rc == 60, f"curl without --cacert: exit {rc}, expected 60 (certificate problem)")
                rc, out, _ = curl(f"http://127.0.0.1:{port}/hello")
                check(rc != 0 or not out.startswith(b"HTTP/1.1 200"), f"plain HTTP was answered: {out!r}")
                check(curl_status(base + "/hello", "--cacert", ca) == 200, "not 200 after the bad clients")


def case_https_silent_and_garbage_clients_closed():
    """A TLS client that never finishes its handshake is closed at --header-timeout; one that
    sends garbage is closed at once; the server still answers."""
    with tempfile.TemporaryDirectory(prefix="uvhttpd-tls-") as certs:
        rc, _, err, _ = run([binary("uvhttpd"), "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], 10)
        if rc == 2 and b"without TLS" in err:
            return
        make_certs(certs)
        tls = ["--cert", os.path.join(certs, "server.pem"), "--key", os.path.join(certs, "server.key")]
        with Server("uvhttpd", "--header-timeout", "1", *tls) as srv:
            port = srv.port()
            with Conn(port, timeout=20) as silent, Conn(port, timeout=20) as garbage:
                garbage.send(b"\x16\x03\x01\x00\x05hello, not a ClientHello\r\n\r\n")
                check(garbage.closed_after_alert(), "a garbage handshake was not closed")
                check(silent.closed(), "a silent TLS client was not closed after the header timeout")
            check(curl_status(f"https://127.0.0.1:{port}/hello", "--cacert", os.path.join(certs, "ca.pem")) == 200,
                  "not 200 after the bad clients")


# ---------------------------------------------------------------- HTTPS with Python's ssl module as the client


def https_setup(certs):
    """make_certs() in `certs`; returns (ca.pem, the --cert/--key arguments). Skips the case if
    this uvhttpd was built without TLS (then --cert is refused as a bad argument, exit 2)."""
    rc, _, err, _ = run([binary("uvhttpd"), "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], 10)
    if rc == 2 and b"without TLS" in err:
        raise Skipped("uvhttpd was built without TLS (--cert is refused)")
    make_certs(certs)
    return os.path.join(certs, "ca.pem"), ["--cert", os.path.join(certs, "server.pem"),
                                           "--key", os.path.join(certs, "server.key")]


def client_context(ca):
    """A client context as a careful client builds it: the test CA only, the certificate and the
    host name (127.0.0.1, an IP SAN) verified, ALPN http/1.1 offered."""
    ctx = ssl.create_default_context(cafile=ca)
    check(ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED, "the default context does not verify")
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsConn(Conn):
    """Conn over TLS (the handshake is done by the constructor, bounded by `timeout`). A TCP close
    without close_notify is an error here (ssl.SSLEOFError), not an end of stream."""

    def __init__(self, port, ctx, timeout=10):
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1", suppress_ragged_eofs=False)
        except BaseException:
            raw.close()
            raise
        self.buf = bytearray()

    def closed_cleanly(self):
        """True if the server ends the stream with close_notify and nothing more."""
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        check(chunk == b"", f"unexpected bytes {chunk[:100]!r}")
        return True


def case_https_python_ssl_client_two_requests_alpn():
    """Python's ssl module as the client: the certificate and 127.0.0.1 verified against the test
    CA, ALPN selects http/1.1, two requests on one connection (keep-alive) and a third with
    "Connection: close", which ends with close_notify."""
    with tempfile.TemporaryDirectory(prefix="uvhttpd-tls-") as certs:
        ca, tls = https_setup(certs)
        with Site() as site, Server("uvhttpd", "--dir", site.root, *tls) as srv:
            port = srv.port()
            with TlsConn(port, client_context(ca)) as c:
                check(c.sock.selected_alpn_protocol() == "http/1.1",
                      f"ALPN selected {c.sock.selected_alpn_protocol()!r}, expected 'http/1.1'")
                check(c.sock.version() in ("TLSv1.2", "TLSv1.3"), f"protocol {c.sock.version()}")
                peer = c.sock.getpeercert()
                check(("IP Address", "127.0.0.1") in peer.get("subjectAltName", ()), f"peer certificate {peer}")
                c.send(get("/hello"))
                r = c.response()
                check(r.status == 200 and r.body == HELLO, f"first: {r.status} {r.body!r}")
                check(r.header("connection") is None, f"first: Connection: {r.header('connection')}")
                c.send(get("/a.txt"))
                r = c.response()
                check(r.status == 200 and r.body == site.files["a.txt"], f"second: {r.status} {r.body!r}")
                check((r.header("content-type") or "").startswith("text/plain"), f"second: {r.headers}")
                c.send(get("/sub/big.bin", extra="Connection: close\r\n"))
                r = c.response()
                check(r.status == 200 and r.header("connection") == "close", f"third: {r.status} {r.headers}")
                expect_same(site.files["sub/big.bin"], r.body, "third: big.bin over TLS")
                check(c.buf == b"", f"extra bytes {bytes(c.buf[:80])!r}")
                check(c.closed_cleanly(), "no close_notify after Connection: close")


def case_https_200_concurrent_tls_connections():
    """200 TLS connections open and handshaken at the same time (a barrier holds every thread
    after its handshake until all 200 are there), then each does one GET of its own range of
    big.bin and checks the body; afterwards curl is still answered."""
    n = 200
    with tempfile.TemporaryDirectory(prefix="uvhttpd-tls-") as certs:
        ca, tls = https_setup(certs)
        ctx = client_context(ca)
        # Generous idle and header limits: the first connections must not time out while the
        # last ones handshake on a loaded machine.
        with Site() as site, Server("uvhttpd", "--dir", site.root, "--idle", "120", "--header-timeout", "120",
                                    *tls) as srv:
            port = srv.port()
            big = site.files["sub/big.bin"]
            barrier = threading.Barrier(n, timeout=90)
            errors = [None] * n
            done = [False] * n

            def client(i):
                try:
                    with TlsConn(port, ctx, timeout=90) as c:
                        check(c.sock.selected_alpn_protocol() == "http/1.1", f"ALPN {c.sock.selected_alpn_protocol()!r}")
                        barrier.wait()  # all n are connected and handshaken here
                        first = i * 20011
                        c.send(get("/sub/big.bin", extra=f"Range: bytes={first}-{first + 9999}\r\n"))
                        r = c.response()
                        check(r.status == 206, f"status {r.status}")
                        check(r.body == big[first:first + 10000], f"body of {len(r.body)} bytes differs")
                    done[i] = True
                except threading.BrokenBarrierError:
                    errors[i] = "the barrier broke (another client failed or the 90 s passed)"
                except Exception as e:
                    errors[i] = f"{type(e).__name__}: {e}"
                    barrier.abort()

            threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=180)
            check(not any(t.is_alive() for t in threads), "clients still running after 180 s")
            if not all(done):
                firsts = [f"client {i}: {e}" for i, e in enumerate(errors) if e and "barrier broke" not in e]
                others = [f"client {i}: {e}" for i, e in enumerate(errors) if e]
                raise CheckFailed(f"{done.count(False)} of {n} failed: " + "; ".join((firsts or others)[:3]))
            check(curl_status(f"https://127.0.0.1:{port}/hello", "--cacert", ca) == 200,
                  "curl not answered after the 200 connections")


def case_https_max_conns_503_over_tls():
    """--max-conns under TLS: an extra connection gets its handshake and a 503 over TLS (with
    "Connection: close", then close_notify), whether or not it sent its request first; curl reads
    the 503. At most 64 refusals run at a time: with 64 extra connections stuck before their
    ClientHello, one more is closed at once without a byte. Once a served connection leaves, a
    new one is served."""
    with tempfile.TemporaryDirectory(prefix="uvhttpd-tls-") as certs:
        ca, tls = https_setup(certs)
        ctx = client_context(ca)
        with Server("uvhttpd", "--max-conns", "2", "--idle", "120", "--header-timeout", "120", *tls) as srv:
            port = srv.port()
            held, stuck = [], []
            try:
                for _ in range(2):  # each answered: both are being served
                    held.append(TlsConn(port, ctx))
                    held[-1].send(get("/hello"))
                    check(held[-1].response().status == 200, "a connection within the limit was not served")
                for send_first in (False, True):
                    with TlsConn(port, ctx) as extra:
                        check(extra.sock.selected_alpn_protocol() == "http/1.1", "the refused one: no ALPN")
                        if send_first:
                            extra.send(get("/hello"))
                        r = extra.response()
                        check(r.status == 503 and r.header("connection") == "close",
                              f"extra (request sent: {send_first}): {r.status} {r.headers}")
                        check(r.body == b"503 Service Unavailable\n", f"503 body {r.body!r}")
                        check(extra.closed_cleanly(), f"extra (request sent: {send_first}): no close_notify")
                rc, out, err = curl("--cacert", ca, "-o", os.devnull, "-w", "%{http_code}",
                                    f"https://127.0.0.1:{port}/hello")
                check(rc == 0 and out == b"503", f"curl beyond --max-conns: exit {rc}, {out!r}, {err[-300:]!r}")
                # 64 extra connections that never send their ClientHello take every refusal slot.
                for _ in range(64):
                    stuck.append(Conn(port, timeout=20))
                with Conn(port, timeout=20) as one_more:
                    check(one_more.closed(), "the 65th refusal was not closed at once")
                try:
                    with TlsConn(port, ctx, timeout=20):
                        raise CheckFailed("a TLS handshake beyond 64 refusals succeeded")
                except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                    pass  # closed at once: the handshake is cut off
                for c in stuck:
                    c.sock.close()
                stuck.clear()
                held.pop(0).sock.close()
                # The slots are free once the server saw the closes: served again, in bounded tries.
                for _ in range(200):
                    try:
                        with TlsConn(port, ctx) as c:
                            c.send(get("/hello"))
                            r = c.response()
                            if r.status == 200:
                                break
                            check(r.status == 503, f"status {r.status}")
                    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
                        pass  # still cut off: the server has not seen every close yet
                    time.sleep(0.01)
                else:
                    raise CheckFailed("no connection served after one of the two left")
                held[0].send(get("/hello"))  # the one still held is untouched
                check(held[0].response().body == HELLO, "the held connection no longer answers")
            finally:
                for c in held + stuck:
                    c.sock.close()


# ---------------------------------------------------------------- out of file descriptors


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def case_out_of_fds_shared_recovers_and_stops():
    """--threads 2 --balance shared with few descriptors: once they run out, the workers pause
    accepting (one log line a pause, no flood); after the clients leave the server answers
    again and SIGTERM stops it. (Retrying accept at once used to spin for good: libuv's
    spare descriptor is lost to the other worker, the loop never polls again.)"""
    if not hasattr(__import__("resource"), "prlimit") or not os.path.isdir("/proc/self/fd"):
        raise Skipped("needs resource.prlimit and /proc (Linux)")
    import resource

    with Site() as site:
        srv = Server("uvhttpd", "--threads", "2", "--balance", "shared", "--dir", site.root,
                     "--idle", "2", "--max-conns", "1000")
        clients = []
        try:
            port = srv.port()
            # Limited after the start (uvhttpd raises its soft limit to the hard one at
            # startup): room for a dozen connections, each with its file open.
            limit = fd_count(srv.proc.pid) + 24
            resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
            # Far more connections than descriptors, each asking for the 5 MiB file and
            # reading none of it: the server holds the socket and the file, the rest wait
            # in the backlog while both workers fail to accept.
            for _ in range(300):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(get("/sub/big.bin"))
                clients.append(s)
            for _ in range(500):  # bounded: the server ran out of descriptors
                if fd_count(srv.proc.pid) >= limit:
                    break
                time.sleep(0.01)
            else:
                raise CheckFailed(f"{fd_count(srv.proc.pid)} descriptors open, never reached {limit}")
            for s in clients:  # half of them with a reset, as rude clients do
                if random.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            clients = []
            # The closes free descriptors only if the workers' loops poll again: a request is
            # answered within bounded tries. (Until then a try may be reset at once: libuv
            # accepts and closes what waits when it cannot keep it.)
            for _ in range(100):
                try:
                    with Conn(port, timeout=2) as c:
                        c.send(get("/hello", extra="Connection: close\r\n"))
                        if c.response().body == HELLO:
                            break
                except (OSError, CheckFailed):
                    time.sleep(0.05)  # not accepted in time (backlog), or reset
            else:
                raise CheckFailed(f"no answer after the clients left; {fd_count(srv.proc.pid)} fds open")
            srv.proc.send_signal(signal.SIGTERM)
            try:
                rc = srv.proc.wait(timeout=10)
            except Exception:
                raise CheckFailed("still running 10 s after SIGTERM")
            check(rc == 0, f"exit status {rc} after SIGTERM; stderr ends {srv.stderr()[-300:]!r}")
        finally:
            for s in clients:
                s.close()
            srv.stop()
        err = srv.stderr()
        lines = [l for l in err.splitlines() if "too many open files" in l]
        check(len(lines) < 300, f"{len(lines)} 'too many open files' lines on stderr (a flood)")
        # Not an empty stderr otherwise: while descriptors are out, UBSan's vptr check cannot
        # probe memory (it needs a pipe) and reports "invalid vptr" where there is none.
        check("AddressSanitizer" not in err, f"stderr: {err[-2000:]!r}")


CASES = [
    ("uvhttpd_hello_get_head", case_hello_get_head),
    ("uvhttpd_static_files_and_types", case_static_files_and_types),
    ("uvhttpd_not_found", case_not_found),
    ("uvhttpd_path_traversal_403", case_path_traversal_403),
    ("uvhttpd_malformed_400_with_socat", case_malformed_400_with_socat),
    ("uvhttpd_pipelining_in_order", case_pipelining_in_order),
    ("uvhttpd_large_file_streams_with_backpressure", case_large_file_streams_with_backpressure),
    ("uvhttpd_keep_alive_reuse_and_close", case_keep_alive_reuse_and_close),
    ("uvhttpd_http10", case_http10),
    ("uvhttpd_method_405", case_method_405),
    ("uvhttpd_headers_too_large_431", case_headers_too_large_431),
    ("uvhttpd_body_too_large_413", case_body_too_large_413),
    ("uvhttpd_idle_timeout_and_max_requests", case_idle_timeout_and_max_requests),
    ("uvhttpd_threads_2_both_modes", case_threads_2_both_modes),
    ("uvhttpd_wrk_load_no_errors", case_wrk_load_no_errors),
    ("uvhttpd_bad_arguments_exit_2", case_bad_arguments_exit_2),
    ("uvhttpd_port_in_use_exit_1", case_port_in_use_exit_1),
    ("uvhttpd_sigterm_sigint_exit_0", case_sigterm_sigint_exit_0),
    ("uvhttpd_symlinks_resolved_inside_dir", case_symlinks_resolved_inside_dir),
    ("uvhttpd_slow_headers_cut_by_header_timeout", case_slow_headers_cut_by_header_timeout),
    ("uvhttpd_slow_body_cut_by_body_timeout", case_slow_body_cut_by_body_timeout),
    ("uvhttpd_request_body_dropped_and_next_request_served", case_request_body_dropped_and_next_request_served),
    ("uvhttpd_max_conns_refused_with_503", case_max_conns_refused_with_503),
    ("uvhttpd_rss_bounded_for_200_unfinished_bodies", case_rss_bounded_for_200_unfinished_bodies),
    ("uvhttpd_last_modified_etag_and_304", case_last_modified_etag_and_304),
    ("uvhttpd_ranges_206_416_and_curl_resume", case_ranges_206_416_and_curl_resume),
    ("uvhttpd_directories_redirect_forbid_and_trailing_slash", case_directories_redirect_forbid_and_trailing_slash),
    ("uvhttpd_expect_100_continue", case_expect_100_continue),
    ("uvhttpd_pipelined_burst_answered_in_order", case_pipelined_burst_answered_in_order),
    ("uvhttpd_cached_small_files_follow_every_change", case_cached_small_files_follow_every_change),
    ("uvhttpd_https_with_curl", case_https_with_curl),
    ("uvhttpd_https_silent_and_garbage_clients_closed", case_https_silent_and_garbage_clients_closed),
    ("uvhttpd_https_python_ssl_client_two_requests_alpn", case_https_python_ssl_client_two_requests_alpn),
    ("uvhttpd_https_200_concurrent_tls_connections", case_https_200_concurrent_tls_connections),
    ("uvhttpd_https_max_conns_503_over_tls", case_https_max_conns_503_over_tls),
    ("uvhttpd_out_of_fds_shared_recovers_and_stops", case_out_of_fds_shared_recovers_and_stops),
]
