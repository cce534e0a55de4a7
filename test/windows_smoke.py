#!/usr/bin/env python3
"""Windows smoke checks for the tools, run by ./dev test's windows stage.

    python3 test/windows_smoke.py BUILD_DIR      (BUILD_DIR: the mingw-w64 cross build)

uvhttpd.exe and uvproxy.exe, cross-built for Windows, are started under wine (WINEPREFIX and
WINEDEBUG come from the caller), each serves one real HTTP request from a Linux client over
127.0.0.1 (port 0, the real port read from the "listening on H:P" line), and is stopped. Ends
with "N passed, M failed".
"""
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.request

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build-windows"
results = []


def check(ok, what):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + what, flush=True)


class Tool:
    """A .exe under wine; its first stdout line says where it listens."""

    def __init__(self, name, *args):
        exe = os.path.join(BUILD, "examples", name + ".exe")
        self.name = name
        self.proc = subprocess.Popen(["wine", exe, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        line = [None]

        def first_line():
            line[0] = self.proc.stdout.readline()

        t = threading.Thread(target=first_line, daemon=True)
        t.start()
        t.join(120)  # wine's first start in a fresh prefix is slow
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line[0] or "")
        if m:
            self.port = int(m.group(1))

    def stop(self):
        """Ends the process; True if it was still running until then (it did not die early)."""
        alive = self.proc.poll() is None
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        return alive


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, r.read()


def uvhttpd():
    srv = Tool("uvhttpd")
    try:
        check(srv.port is not None, "uvhttpd.exe: says where it listens")
        if srv.port is None:
            return
        status, body = get(f"http://127.0.0.1:{srv.port}/hello")
        check(status == 200 and len(body) > 0, f"uvhttpd.exe: GET /hello from Linux: {status}, {body[:40]!r}")
    except Exception as e:  # a failed request is a failed check, not a crash
        check(False, f"uvhttpd.exe: GET /hello: {e}")
    finally:
        check(srv.stop(), "uvhttpd.exe: ran until stopped")


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"from linux through uvproxy.exe\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def uvproxy():
    target = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    proxy = Tool("uvproxy", "127.0.0.1:0", f"127.0.0.1:{target.server_address[1]}")
    try:
        check(proxy.port is not None, "uvproxy.exe: says where it listens")
        if proxy.port is None:
            return
        status, body = get(f"http://127.0.0.1:{proxy.port}/")
        check(status == 200 and body == b"from linux through uvproxy.exe\n",
              f"uvproxy.exe: a Linux client reaches a Linux server through it: {status}, {body!r}")
    except Exception as e:
        check(False, f"uvproxy.exe: request through the proxy: {e}")
    finally:
        check(proxy.stop(), "uvproxy.exe: ran until stopped")
        target.shutdown()


uvhttpd()
uvproxy()
print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
sys.exit(0 if all(results) else 1)
