"""What the example and tool tests share: running programs, servers, clients.

Every subprocess has a timeout, every server runs in its own process group and
is killed when its block ends, and everything talks to 127.0.0.1 only.
`run_cases` runs (name, function) pairs and prints one line per case
(`ok NAME`, `FAIL NAME: reason`, or `skip NAME: reason` for a case that cannot run
here), then `N passed, M failed`.
"""

import os
import queue
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

BUILD_DIR = ""  # set by run_cases
LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")
ACCEPTED = re.compile(r"^Accepted connection from 127\.0\.0\.1:(\d+)$")
STARTUP_TIMEOUT = 10.0  # generous: sanitizer builds start slowly


class CheckFailed(Exception):
    pass


class Skipped(Exception):
    """Raised by a case that cannot run here (a tool or a build feature missing): printed as
    `skip NAME: reason`, counted neither as passed nor as failed."""


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def binary(name):
    path = os.path.join(BUILD_DIR, "examples", name)
    check(os.access(path, os.X_OK), f"{path} is missing or not executable")
    return path


def need_tool(name):
    check(shutil.which(name) is not None, f"'{name}' is not installed (netcat-openbsd / socat)")


def make_certs(directory):
    """Test certificates, made with the openssl command in `directory`: a CA (ca.pem, ca.key),
    a server certificate it signed for localhost and 127.0.0.1 (server.pem, server.key), one it
    signed for another name (wrong.pem, wrong.key), and a self-signed one (self.pem, self.key)."""
    need_tool("openssl")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def p(name):
        return os.path.join(directory, name)

    def openssl(*args):
        rc, _, err, _ = run(["openssl", *args], 30)
        check(rc == 0, f"openssl {args[0]} failed: {err.decode(errors='replace')}")

    openssl("req", "-x509", *key, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "30",
            "-subj", "/CN=uvkit-test-ca")
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1"), ("wrong", "DNS:wrong.example")):
        openssl("req", "-new", *key, "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/CN=" + name)
        with open(p(name + ".ext"), "w") as f:
            f.write(f"subjectAltName={san}\n")
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                "-CAcreateserial", "-out", p(name + ".pem"), "-days", "30", "-extfile", p(name + ".ext"))
    openssl("req", "-x509", *key, "-keyout", p("self.key"), "-out", p("self.pem"), "-days", "30",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")


def run(args, timeout, input=None):
    """Runs a program to completion; returns (returncode, stdout, stderr, seconds)."""
    start = time.monotonic()
    with subprocess.Popen(
        args,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as p:
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # the program and anything it started
            p.communicate(timeout=5)
            raise CheckFailed(f"{' '.join(args)} did not finish within {timeout} s")
    return p.returncode, out, err, time.monotonic() - start


class Server:
    """A server example running in the background; its stdout lines go to a queue.

    Use it as a context manager: leaving the block stops the server (SIGTERM,
    then SIGKILL) and, if the block succeeded, requires an empty stderr (a
    sanitizer report or a stray error message fails the case).
    """

    def __init__(self, name, *args):
        self.proc = subprocess.Popen(
            [binary(name), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends anything it started too
        )
        self.lines = queue.Queue()
        self.err = []
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=lambda: self.err.append(self.proc.stderr.read()), daemon=True),
        ]
        for t in self.readers:
            t.start()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if exc_type is None:
            err = self.stderr()
            check(err == "", f"server wrote on stderr: {err!r}")
        return False

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)  # end of output

    def stderr(self):
        return b"".join(self.err).decode(errors="replace").strip()

    def next_line(self, timeout):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise CheckFailed(f"no output line within {timeout} s")
        if line is None:
            self.proc.wait(timeout=5)
            self.readers[1].join(timeout=5)
            raise CheckFailed(f"server exited (status {self.proc.returncode}); stderr: {self.stderr()!r}")
        return line

    def port(self):
        """Reads the first line, `listening on 127.0.0.1:PORT`, and returns PORT."""
        line = self.next_line(STARTUP_TIMEOUT)
        m = LISTENING.match(line)
        check(m is not None, f"first line is {line!r}, expected 'listening on 127.0.0.1:PORT'")
        port = int(m.group(1))
        check(0 < port < 65536, f"bad port in {line!r}")
        return port

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers holding the pipes open
        except ProcessLookupError:
            pass
        for t in self.readers:
            t.join(timeout=5)
        if not any(t.is_alive() for t in self.readers):
            self.proc.stdout.close()
            self.proc.stderr.close()
        return self.proc.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def socat_echo(port, payload, timeout=20):
    """Sends `payload` with socat, half-closes, returns what came back."""
    rc, out, err, _ = run(["socat", "-t", "10", "-", f"TCP:127.0.0.1:{port}"], timeout, input=payload)
    check(rc == 0, f"socat exited {rc}: {err.decode(errors='replace').strip()}")
    return out


def expect_same(sent, got, who):
    if got == sent:
        return
    first = next((i for i, (a, b) in enumerate(zip(sent, got)) if a != b), min(len(sent), len(got)))
    raise CheckFailed(f"{who}: sent {len(sent)} bytes, got {len(got)} back, first difference at byte {first}")


def read_exact(fd, n, deadline):
    """Reads exactly n bytes from a pipe fd, bounded by a monotonic deadline."""
    data = b""
    while len(data) < n:
        left = deadline - time.monotonic()
        check(left > 0, f"timed out after {len(data)} of {n} bytes")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, n - len(data))
            check(chunk, f"EOF after {len(data)} of {n} bytes")
            data += chunk
    return data



def expect_exit_0_after(srv, sig, timeout=10):
    """Sends `sig` to a running Server and requires that it exits with status 0 within `timeout` s."""
    srv.proc.send_signal(sig)
    try:
        rc = srv.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"still running {timeout} s after {sig.name}")
    check(rc == 0, f"exit status {rc} after {sig.name}")


def run_cases(cases, build_dir):
    """Runs every case; returns the process exit status (1 if any failed)."""
    global BUILD_DIR
    BUILD_DIR = build_dir
    passed = failed = 0
    for name, fn in cases:
        try:
            fn()
        except Skipped as e:
            print(f"skip {name}: {e}", flush=True)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:  # a bug in the test itself still counts as a failure
            failed += 1
            detail = traceback.format_exception_only(type(e), e)[-1].strip()
            print(f"FAIL {name}: {detail}", flush=True)
        else:
            passed += 1
            print(f"ok {name}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0
