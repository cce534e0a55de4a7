#!/usr/bin/env python3
"""Runs the example programs and drives the servers with real clients.

    python3 test/examples_test.py BUILD_DIR [NAME_PART]

Each example binary comes from BUILD_DIR/examples/; the cases of the network
tools (uvcat, uvproxy, uvscan, uvhttpd) live in test/tools/, one module each,
and use the same harness (test/harness.py). The servers are driven by
netcat-openbsd (`nc`) and `socat` over 127.0.0.1 only. Every subprocess has a
timeout and every server is killed in a finally block. One line per case
(`ok NAME` or `FAIL NAME: reason`), then `N passed, M failed`; the exit status
is 1 if anything failed.
"""

import glob
import importlib.util
import os
import queue
import random
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from harness import *  # noqa: F401,F403  (check, run, Server, ...)

# ---------------------------------------------------------------- the cases


def case_event_loop_output():
    rc, out, err, secs = run([binary("event_loop")], 10)
    check(rc == 0, f"exit status {rc}, stderr {err!r}")
    expected = ["Timer event: waiting for 0.2 seconds", "Timer event: done", "Message event: Hello, World!"]
    lines = out.decode().splitlines()
    check(lines == expected, f"output {lines!r}, expected {expected!r}")
    check(secs >= 0.19, f"took {secs:.3f} s, the timer event waits 0.2 s")


def case_two_timers_concurrent():
    rc, out, err, secs = run([binary("two_timers")], 10)
    check(rc == 0, f"exit status {rc}, stderr {err!r}")
    expected = ["Task 1: Waiting for 2 seconds", "Task 2: Waiting for 1 second", "Task 2: Done", "Task 1: Done"]
    lines = out.decode().splitlines()
    check(lines == expected, f"output {lines!r}, expected {expected!r}")
    check(1.9 <= secs < 2.9, f"took {secs:.2f} s; concurrent waits of 2 s and 1 s take about 2 s")


def case_demo_exits_0():
    rc, out, err, secs = run([binary("demo")], 15)
    text = out.decode(errors="replace")
    check(rc == 0, f"exit status {rc}; output {text!r}; stderr {err!r}")
    check("demo ok" in text, f"no 'demo ok' in {text!r}")
    check(secs < 5, f"took {secs:.2f} s")


def case_echo_first_line():
    with Server("echo_server", "--port", "0") as srv:
        srv.port()
        check(srv.alive(), "server exited after printing its port")


def case_echo_explicit_host_and_port():
    port = free_port()
    with Server("echo_server", "--host", "127.0.0.1", "--port", str(port)) as srv:
        got = srv.port()
        check(got == port, f"asked for port {port}, it says {got}")
        need_tool("socat")
        expect_same(b"ping\n", socat_echo(port, b"ping\n"), "socat")


def case_echo_nc():
    need_tool("nc")
    with Server("echo_server") as srv:
        port = srv.port()
        msg = b"hello, uvkit\nsecond line\n"
        # -N: shut down the sending side at EOF on stdin, so the server finishes too.
        rc, out, err, _ = run(["nc", "-N", "127.0.0.1", str(port)], 10, input=msg)
        check(rc == 0, f"nc exited {rc}: {err!r}")
        expect_same(msg, out, "nc")


def case_echo_socat_1mib_random():
    need_tool("socat")
    with Server("echo_server") as srv:
        port = srv.port()
        payload = random.randbytes(1024 * 1024)
        expect_same(payload, socat_echo(port, payload), "socat 1 MiB")


def case_echo_socat_16mib_backpressure():
    # More than the server lets pile up per client: exercises pausing and
    # resuming reads while socat is still sending.
    need_tool("socat")
    with Server("echo_server") as srv:
        port = srv.port()
        payload = random.randbytes(16 * 1024 * 1024)
        expect_same(payload, socat_echo(port, payload, timeout=60), "socat 16 MiB")


def case_echo_20_socat_clients_at_once():
    need_tool("socat")
    with Server("echo_server") as srv:
        port = srv.port()
        payloads = [random.randbytes(random.randint(1, 256 * 1024)) for _ in range(20)]
        procs = []
        try:
            for _ in payloads:
                procs.append(
                    subprocess.Popen(
                        ["socat", "-t", "10", "-", f"TCP:127.0.0.1:{port}"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
            # communicate() one after another would serialise them; feed each from a thread.
            results = [None] * len(procs)

            def talk(i):
                try:
                    results[i] = procs[i].communicate(payloads[i], timeout=30)
                except subprocess.TimeoutExpired:
                    results[i] = None

            threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(procs))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=40)
            for i, r in enumerate(results):
                check(r is not None, f"client {i} timed out")
                check(procs[i].returncode == 0, f"client {i}: socat exited {procs[i].returncode}: {r[1]!r}")
                expect_same(payloads[i], r[0], f"client {i}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=5)


def case_echo_10_nc_clients_open_together():
    # All ten connections are open at the same time, and each gets its echo
    # while the others wait: the server serves them concurrently.
    need_tool("nc")
    with Server("echo_server") as srv:
        port = srv.port()
        procs = []
        try:
            for _ in range(10):
                procs.append(
                    subprocess.Popen(
                        ["nc", "127.0.0.1", str(port)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
            deadline = time.monotonic() + 20
            for round_ in range(3):
                for i, p in enumerate(procs):
                    p.stdin.write(f"client {i} round {round_}\n".encode())
                    p.stdin.flush()
                for i, p in enumerate(procs):
                    line = f"client {i} round {round_}\n".encode()
                    expect_same(line, read_exact(p.stdout.fileno(), len(line), deadline), f"nc client {i}")
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=5)
                for f in (p.stdin, p.stdout, p.stderr):
                    f.close()


def case_echo_survives_rude_clients():
    # Clients that vanish mid-echo (close with unread data, reset, half-close
    # and leave) must not take the server down.
    need_tool("socat")
    with Server("echo_server") as srv:
        port = srv.port()
        for mode in ("close", "reset", "half-close"):
            for _ in range(10):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    s.setblocking(False)
                    try:
                        s.send(b"x" * 4 * 1024 * 1024)
                    except (BlockingIOError, ConnectionResetError):
                        pass
                    if mode == "reset":
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    elif mode == "half-close":
                        s.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        check(srv.alive(), f"server died (status {srv.proc.returncode})")
        expect_same(b"still here\n", socat_echo(port, b"still here\n"), "socat after rude clients")


def case_echo_sigterm_stops_it():
    # SIGTERM and SIGINT: the server closes its connections (a connected
    # socat client sees EOF and exits) and exits 0.
    need_tool("socat")
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server("echo_server") as srv:
            port = srv.port()
            client = subprocess.Popen(
                ["socat", "-t", "1", "-", f"TCP:127.0.0.1:{port}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                client.stdin.write(b"ping\n")
                client.stdin.flush()
                got = client.stdout.read(5)
                expect_same(b"ping\n", got, "echo before the signal")
                expect_exit_0_after(srv, sig)
                try:
                    client.wait(timeout=10)  # its stdin stays open: only the server can end it
                except subprocess.TimeoutExpired:
                    raise CheckFailed(f"the client connection stayed open after {sig.name}")
            finally:
                if client.poll() is None:
                    client.kill()
                client.communicate(timeout=5)


def case_accept_loop_signals_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server("accept_loop") as srv:
            srv.port()
            expect_exit_0_after(srv, sig)


def case_echo_bad_arguments_exit_2():
    for args in (["--port", "x"], ["--port", "70000"], ["--port"], ["--bogus"], ["--host", "not-an-ip"], ["extra"]):
        rc, out, err, _ = run([binary("echo_server"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(out == b"", f"{args}: printed {out!r} on stdout")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")


def case_echo_port_in_use_exit_1():
    with Server("echo_server") as first:
        port = first.port()
        rc, out, err, _ = run([binary("echo_server"), "--port", str(port)], 10)
        check(rc == 1, f"exit status {rc}, expected 1")
        check(out == b"", f"printed {out!r} on stdout")
        lines = err.decode(errors="replace").strip().splitlines()
        check(len(lines) == 1 and lines[0], f"expected a one-line reason on stderr, got {lines!r}")


def case_accept_loop_two_connections():
    need_tool("nc")
    with Server("accept_loop", "--port", "0") as srv:
        port = srv.port()
        for _ in range(2):
            # -z: connect and close, sending nothing.
            rc, out, err, _ = run(["nc", "-z", "127.0.0.1", str(port)], 10)
            check(rc == 0, f"nc -z exited {rc}: {err!r}")
        for i in range(2):
            line = srv.next_line(10)
            check(ACCEPTED.match(line), f"line {i + 2} is {line!r}, expected 'Accepted connection from 127.0.0.1:PORT'")


def case_accept_loop_closes_connection():
    # The server closes what it accepts: socat, with its stdin still open,
    # sees the server's EOF and exits without output.
    need_tool("socat")
    with Server("accept_loop") as srv:
        port = srv.port()
        client = subprocess.Popen(
            ["socat", "-t", "1", "-", f"TCP:127.0.0.1:{port}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            line = srv.next_line(10)
            check(ACCEPTED.match(line), f"got {line!r}")
            try:
                client.wait(timeout=10)  # its stdin stays open: only the server can end it
            except subprocess.TimeoutExpired:
                raise CheckFailed("the connection stayed open")
            out = client.stdout.read()
            check(out == b"", f"server sent {out!r}")
        finally:
            if client.poll() is None:
                client.kill()
            client.communicate(timeout=5)


def case_accept_loop_bad_arguments_exit_2():
    for args in (["--port", "nope"], ["--port"], ["--bogus"]):
        rc, _, err, _ = run([binary("accept_loop"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(b"usage" in err, f"{args}: no usage on stderr")


CASES = [
    ("event_loop_output", case_event_loop_output),
    ("two_timers_concurrent", case_two_timers_concurrent),
    ("demo_exits_0", case_demo_exits_0),
    ("echo_first_line", case_echo_first_line),
    ("accept_loop_signals_exit_0", case_accept_loop_signals_exit_0),
    ("echo_explicit_host_and_port", case_echo_explicit_host_and_port),
    ("echo_nc", case_echo_nc),
    ("echo_socat_1mib_random", case_echo_socat_1mib_random),
    ("echo_socat_16mib_backpressure", case_echo_socat_16mib_backpressure),
    ("echo_20_socat_clients_at_once", case_echo_20_socat_clients_at_once),
    ("echo_10_nc_clients_open_together", case_echo_10_nc_clients_open_together),
    ("echo_survives_rude_clients", case_echo_survives_rude_clients),
    ("echo_sigterm_stops_it", case_echo_sigterm_stops_it),
    ("echo_bad_arguments_exit_2", case_echo_bad_arguments_exit_2),
    ("echo_port_in_use_exit_1", case_echo_port_in_use_exit_1),
    ("accept_loop_two_connections", case_accept_loop_two_connections),
    ("accept_loop_closes_connection", case_accept_loop_closes_connection),
    ("accept_loop_bad_arguments_exit_2", case_accept_loop_bad_arguments_exit_2),
]


def case_udp_echo_socat():
    need_tool("socat")
    with Server("udp_echo") as srv:
        port = srv.port()
        # socat sends its stdin as one datagram and prints what comes back
        # within -t seconds of stdin's end.
        rc, out, err, _ = run(["socat", "-t", "2", "-", f"UDP:127.0.0.1:{port}"], 20, input=b"hello, udp\n")
        check(rc == 0, f"socat exited {rc}: {err.decode(errors='replace').strip()}")
        check(out == b"hello, udp\n", f"got {out!r}")


def case_udp_echo_200_datagrams():
    with Server("udp_echo") as srv:
        port = srv.port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            rng = random.Random(7)
            for i in range(200):
                payload = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 100, 1400, 9000))))
                s.sendto(payload, ("127.0.0.1", port))
                try:
                    got, sender = s.recvfrom(65536)
                except socket.timeout:
                    raise CheckFailed(f"datagram {i} ({len(payload)} bytes): no echo within 5 s")
                check(sender == ("127.0.0.1", port), f"datagram {i}: echo from {sender}")
                expect_same(payload, got, f"datagram {i}")


def case_udp_echo_signals_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server("udp_echo") as srv:
            srv.port()
            expect_exit_0_after(srv, sig)


def case_udp_echo_bad_arguments_exit_2():
    for args in (["--port", "x"], ["--port", "70000"], ["--port"], ["--bogus"], ["--host", "not-an-ip"]):
        rc, out, err, _ = run([binary("udp_echo"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(out == b"", f"{args}: printed {out!r} on stdout")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")


CASES += [
    ("udp_echo_socat", case_udp_echo_socat),
    ("udp_echo_200_datagrams", case_udp_echo_200_datagrams),
    ("udp_echo_signals_exit_0", case_udp_echo_signals_exit_0),
    ("udp_echo_bad_arguments_exit_2", case_udp_echo_bad_arguments_exit_2),
]

def case_two_timers_co_concurrent():
    rc, out, err, secs = run([binary("two_timers_co")], 10)
    check(rc == 0, f"exit status {rc}, stderr {err!r}")
    expected = ["Task 1: Waiting for 2 seconds", "Task 2: Waiting for 1 second", "Task 2: Done", "Task 1: Done"]
    lines = out.decode().splitlines()
    check(lines == expected, f"output {lines!r}, expected {expected!r}")
    check(1.9 <= secs < 2.9, f"took {secs:.2f} s; concurrent waits of 2 s and 1 s take about 2 s")


def case_co_echo_nc_and_explicit_port():
    need_tool("nc")
    port = free_port()
    with Server("co_echo_server", "--host", "127.0.0.1", "--port", str(port)) as srv:
        got = srv.port()
        check(got == port, f"asked for port {port}, it says {got}")
        msg = b"hello, coroutines\nsecond line\n"
        rc, out, err, _ = run(["nc", "-N", "127.0.0.1", str(port)], 10, input=msg)
        check(rc == 0, f"nc exited {rc}: {err!r}")
        expect_same(msg, out, "nc")


def case_co_echo_socat_1mib_random():
    need_tool("socat")
    with Server("co_echo_server") as srv:
        port = srv.port()
        payload = random.randbytes(1024 * 1024)
        expect_same(payload, socat_echo(port, payload), "socat 1 MiB")


def case_co_echo_20_socat_clients_at_once():
    need_tool("socat")
    with Server("co_echo_server") as srv:
        port = srv.port()
        payloads = [random.randbytes(random.randint(1, 256 * 1024)) for _ in range(20)]
        results = [None] * len(payloads)

        def talk(i):
            try:
                results[i] = socat_echo(port, payloads[i], timeout=30)
            except CheckFailed as e:
                results[i] = e

        # One thread per client: all twenty are connected and sending at once.
        threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(payloads))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=40)
        for i, r in enumerate(results):
            check(r is not None, f"client {i} did not finish")
            if isinstance(r, CheckFailed):
                raise CheckFailed(f"client {i}: {r}")
            expect_same(payloads[i], r, f"client {i}")


def case_co_echo_sigint_with_clients_connected():
    # Connections stay open and idle; SIGINT must cancel them all and exit 0.
    need_tool("socat")
    with Server("co_echo_server") as srv:
        port = srv.port()
        socats, socks = [], []
        try:
            for _ in range(3):
                socats.append(
                    subprocess.Popen(
                        ["socat", "-", f"TCP:127.0.0.1:{port}"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
                )
            for i in range(5):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                s.sendall(f"sock {i}\n".encode())
                check(s.recv(100) == f"sock {i}\n".encode(), f"socket {i}: no echo")
            deadline = time.monotonic() + 10
            for i, p in enumerate(socats):
                p.stdin.write(b"socat\n")
                p.stdin.flush()
                expect_same(b"socat\n", read_exact(p.stdout.fileno(), 6, deadline), f"socat {i}")
            start = time.monotonic()
            srv.proc.send_signal(signal.SIGINT)
            try:
                rc = srv.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise CheckFailed("still running 5 s after SIGINT")
            check(rc == 0, f"exit status {rc} after SIGINT")
            check(time.monotonic() - start < 2, "took more than 2 s to stop")
            for i, s in enumerate(socks):
                try:
                    rest = s.recv(100)
                except ConnectionResetError:
                    rest = b""
                check(rest == b"", f"socket {i}: got {rest!r} instead of the end of the connection")
            for i, p in enumerate(socats):
                try:
                    p.wait(timeout=5)  # its stdin is still open: only the server's close ends it
                except subprocess.TimeoutExpired:
                    raise CheckFailed(f"socat {i}: the connection stayed open")
        finally:
            for s in socks:
                s.close()
            for p in socats:
                if p.poll() is None:
                    p.kill()
                p.communicate(timeout=5)


def case_co_echo_sigterm_exit_0():
    with Server("co_echo_server") as srv:
        srv.port()
        rc = srv.stop()
        check(rc == 0, f"exit status {rc} after SIGTERM")


def case_co_echo_bad_arguments_exit_2():
    for args in (["--port", "x"], ["--port", "70000"], ["--port"], ["--bogus"], ["--host", "not-an-ip"], ["extra"]):
        rc, out, err, _ = run([binary("co_echo_server"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(out == b"", f"{args}: printed {out!r} on stdout")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")


def case_co_echo_port_in_use_exit_1():
    with Server("co_echo_server") as first:
        port = first.port()
        rc, out, err, _ = run([binary("co_echo_server"), "--port", str(port)], 10)
        check(rc == 1, f"exit status {rc}, expected 1")
        check(out == b"", f"printed {out!r} on stdout")
        lines = err.decode(errors="replace").strip().splitlines()
        check(len(lines) == 1 and lines[0], f"expected a one-line reason on stderr, got {lines!r}")


class ChatClient:
    """A chat connection read line by line: a Python socket, or a socat process's pipes."""

    def __init__(self, port, use_socat=False):
        self.buf = b""
        self.proc = self.sock = None
        if use_socat:
            self.proc = subprocess.Popen(
                ["socat", "-", f"TCP:127.0.0.1:{port}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            self.fd = self.proc.stdout.fileno()
            self.name = None  # socat's port is not known here
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            self.fd = self.sock.fileno()
            self.name = "%s:%d" % self.sock.getsockname()

    def send(self, data):
        if self.proc:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        else:
            self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads what is there; returns False at the end of the connection."""
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        ready, _, _ = select.select([self.fd], [], [], left)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536) if self.proc else self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        self.buf += chunk
        return chunk != b""

    def line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            check(time.monotonic() < deadline, f"no line within {timeout} s (have {self.buf!r})")
            check(self._fill(deadline), f"connection ended; have {self.buf!r}")
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def quiet_for(self, seconds):
        """Checks that nothing arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill(deadline)
            check(self.buf == b"", f"unexpected {self.buf!r}")

    def ended(self, timeout):
        """True once the server closed the connection, within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._fill(deadline):
                return True
        return False

    def close(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.communicate(timeout=5)
        else:
            self.sock.close()


def chat_join(srv, port, use_socat=False):
    """Connects a client and waits until the server says it joined the room."""
    c = ChatClient(port, use_socat)
    try:
        line = srv.next_line(10)
        check(line.startswith("join 127.0.0.1:"), f"server said {line!r}, expected 'join 127.0.0.1:PORT'")
        if c.name is not None:
            check(line == f"join {c.name}", f"server said {line!r}, expected 'join {c.name}'")
    except BaseException:
        c.close()
        raise
    return c


def case_co_chat_line_reaches_the_others():
    need_tool("socat")
    with Server("co_chat", "--idle", "30") as srv:
        port = srv.port()
        clients = []
        try:
            a = chat_join(srv, port, use_socat=True)
            clients.append(a)
            b = chat_join(srv, port)
            clients.append(b)
            c = chat_join(srv, port)
            clients.append(c)
            a.send(b"hello from socat\n")
            for who in (b, c):
                line = who.line(10)
                check(re.fullmatch(r"127\.0\.0\.1:\d+: hello from socat", line), f"got {line!r}")
            b.send(b"hi from b\r\n")
            for who in (a, c):  # a's first line is b's: its own did not come back
                line = who.line(10)
                check(line == f"{b.name}: hi from b", f"got {line!r}, expected {b.name + ': hi from b'!r}")
            c.send(b"two\nlines\n")
            for who in (a, b):
                got = [who.line(10), who.line(10)]
                check(got == [f"{c.name}: two", f"{c.name}: lines"], f"got {got!r}")
            for who in (a, b, c):
                who.quiet_for(0.3)  # nobody hears itself, nothing is repeated
        finally:
            for cl in clients:
                cl.close()


def case_co_chat_idle_timeout():
    need_tool("nc")
    with Server("co_chat", "--idle", "1") as srv:
        port = srv.port()
        talker = chat_join(srv, port)
        # A real nc that never says anything (its stdin stays open).
        silent = subprocess.Popen(
            ["nc", "127.0.0.1", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            line = srv.next_line(10)
            check(line.startswith("join "), f"server said {line!r}")
            silent_name = line[len("join "):]
            start = time.monotonic()
            for i in range(6):  # 2.4 s of lines every 0.4 s: the talker never goes idle
                talker.send(f"still here {i}\n".encode())
                time.sleep(0.4)
            line = srv.next_line(5)
            check(line == f"leave {silent_name} (idle timeout)", f"server said {line!r}")
            try:
                out, _ = silent.communicate(timeout=5)  # it ends when the server closes
            except subprocess.TimeoutExpired:
                raise CheckFailed("the silent client's connection stayed open")
            lines = out.decode(errors="replace").splitlines()
            check(lines and lines[-1] == "bye: idle timeout", f"the silent client got {lines!r}")
            check(lines[:-1] == [f"{talker.name}: still here {i}" for i in range(len(lines) - 1)],
                  f"the silent client got {lines!r}")
            check(time.monotonic() - start < 4, "disconnected too late")
            talker.send(b"anyone?\n")
            talker.quiet_for(0.2)
            check(not talker.ended(0.1), "the talker was disconnected")
            check(srv.alive(), "server died")
        finally:
            talker.close()
            if silent.poll() is None:
                silent.kill()
            silent.communicate(timeout=5)


def case_co_chat_long_line_disconnects():
    with Server("co_chat") as srv:
        port = srv.port()
        other = chat_join(srv, port)
        rude = chat_join(srv, port)
        try:
            rude.send(b"y" * 10000 + b"\n")
            check(rude.line(10) == "bye: line too long", "no 'bye: line too long'")
            check(rude.ended(5), "the connection stayed open after the long line")
            line = srv.next_line(5)
            check(line == f"leave {rude.name} (line too long)", f"server said {line!r}")
            other.quiet_for(0.2)  # nothing of it reached the others
            # 4096 bytes is still fine, and the room goes on.
            third = chat_join(srv, port)
            try:
                third.send(b"z" * 4096 + b"\n")
                check(other.line(10) == f"{third.name}: " + "z" * 4096, "the 4096-byte line did not arrive")
            finally:
                third.close()
        finally:
            other.close()
            rude.close()


def case_co_chat_slow_reader_dropped():
    with Server("co_chat") as srv:
        port = srv.port()
        sender = chat_join(srv, port)
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
        slow.settimeout(5)
        try:
            slow.connect(("127.0.0.1", port))
            slow_name = "%s:%d" % slow.getsockname()
            line = srv.next_line(10)
            check(line == f"join {slow_name}", f"server said {line!r}")
            chunk = (b"x" * 1000 + b"\n") * 100
            deadline = time.monotonic() + 30
            dropped = None
            while dropped is None:
                check(time.monotonic() < deadline, "the slow reader was not dropped within 30 s")
                sender.send(chunk)
                try:
                    dropped = srv.lines.get(timeout=0.01)
                except queue.Empty:
                    pass
            check(dropped == f"leave {slow_name} (slow reader)", f"server said {dropped!r}")
            # The sender is fine.
            check(not sender.ended(0.2), "the sender was disconnected")
            check(srv.alive(), "server died")
        finally:
            slow.close()
            sender.close()


def case_co_chat_sigterm_sigint_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server("co_chat") as srv:
            port = srv.port()
            clients = [chat_join(srv, port) for _ in range(3)]
            try:
                clients[0].send(b"before shutdown\n")
                for c in clients[1:]:
                    c.line(10)
                srv.proc.send_signal(sig)
                try:
                    rc = srv.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    raise CheckFailed(f"still running 5 s after {sig.name}")
                check(rc == 0, f"exit status {rc} after {sig.name}")
                for i, c in enumerate(clients):
                    check(c.ended(5), f"client {i}: the connection stayed open")
            finally:
                for c in clients:
                    c.close()


def case_co_chat_bad_arguments_exit_2():
    for args in (["--port", "x"], ["--idle", "0"], ["--idle", "-1"], ["--idle"], ["--bogus"], ["--host", "nope"]):
        rc, out, err, _ = run([binary("co_chat"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(out == b"", f"{args}: printed {out!r} on stdout")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")


def case_co_chat_dump_on_sigusr1():
    """--dump-on SIGUSR1 prints uvkit::dump_tasks() to stderr: the accept loop, and a connected
    client's reader (under its idle deadline) and writer. SIGUSR1, then SIGTERM: libuv hands the
    signals to the loop in order, so the dump is complete when the server exits."""
    check(hasattr(signal, "SIGUSR1"), "no SIGUSR1 on this platform (the examples stage is POSIX)")
    with Server("co_chat", "--dump-on", "SIGUSR1") as srv:
        port = srv.port()
        c = chat_join(srv, port)
        try:
            srv.proc.send_signal(signal.SIGUSR1)
            srv.proc.send_signal(signal.SIGTERM)
            try:
                rc = srv.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise CheckFailed("still running 5 s after SIGUSR1 and SIGTERM")
            check(rc == 0, f"exit status {rc}")
            srv.readers[1].join(timeout=5)
            err = srv.stderr()
            srv.err = []  # read here: not a stray message
            expected = [
                "task dump:",
                "task (run): join 2 children",
                f"  task: accept tcp 127.0.0.1:{port}",
                "  task: join 2 children",
                "    task: with_timeout 60000 ms",
                f"      task: read until tcp {c.name}",
                "    task: channel recv",
                "end of task dump",
            ]
            got = err.splitlines()
            check(got == expected, f"stderr {got!r}, expected {expected!r}")
        finally:
            c.close()


def case_co_chat_dump_on_bad_signal_exit_2():
    for args in (["--dump-on"], ["--dump-on", "SIGKILL"], ["--dump-on", "10"]):
        rc, out, err, _ = run([binary("co_chat"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(b"usage" in err, f"{args}: no usage on stderr: {err!r}")


def case_co_chat_flood_keeps_prompt_readers():
    """One client sends 40,000 empty lines in one write (about 720 KB of "NAME: " messages for
    each other client, well over the 256 KiB outbox limit): the flooder is held back until the
    writers catch up, and the three clients that read promptly get every line, in order, and
    stay connected. Before the backpressure they were all dropped as slow readers."""
    n = 40000
    with Server("co_chat", "--idle", "30") as srv:
        port = srv.port()
        clients = []
        try:
            readers = [chat_join(srv, port) for _ in range(3)]
            clients += readers
            flood = chat_join(srv, port)
            clients.append(flood)
            flood.send(b"\n" * n + b"after the flood\n")
            expected = f"{flood.name}: \n".encode() * n + f"{flood.name}: after the flood\n".encode()
            # Read all three at once, as prompt readers do, until each has every byte or ended.
            deadline = time.monotonic() + 120  # a bound on a hang, not the criterion
            reading = list(readers)
            while reading and time.monotonic() < deadline:
                for r in list(reading):
                    if len(r.buf) >= len(expected) or not r._fill(time.monotonic() + 0.01):
                        reading.remove(r)
            for i, r in enumerate(readers):
                got = r.buf.count(b"\n")
                check(r.buf == expected, f"reader {i} got {got} of {n + 1} lines ({len(r.buf)} bytes)")
                r.buf = b""
            for r in clients:
                check(not r.ended(0.1), "a client was disconnected")
            try:
                line = srv.lines.get(timeout=0.2)
                raise CheckFailed(f"server said {line!r}")
            except queue.Empty:
                pass
            check(srv.alive(), "server died")
        finally:
            for c in clients:
                c.close()

def case_co_chat_stdout_not_read():
    """Nobody reads co_chat's stdout after its first line: once the pipe and 64 KiB behind it
    are full, log lines are dropped (and counted), and the server goes on serving. A blocking
    write of the log used to stop the whole server."""
    import fcntl
    p = subprocess.Popen([binary("co_chat"), "--idle", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            fcntl.fcntl(p.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)  # fewer visits fill it
        first = read_exact(p.stdout.fileno(), len("listening on 127.0.0.1:"), time.monotonic() + STARTUP_TIMEOUT)
        check(first == b"listening on 127.0.0.1:", f"first bytes {first!r}")
        port = int(p.stdout.readline())
        # Each visit logs a join and a leave, about 55 bytes: 4 KiB + 64 KiB take ~1,300.
        for _ in range(3000):
            with socket.create_connection(("127.0.0.1", port), timeout=10):
                pass
        # Still serving: a line from one client reaches another.
        a, b = ChatClient(port), ChatClient(port)
        try:
            deadline = time.monotonic() + 20
            while True:  # b may not have joined yet when a's first line goes out: repeat it
                a.send(b"still here\n")
                try:
                    line = b.line(0.5)
                    break
                except CheckFailed:
                    check(time.monotonic() < deadline, "no line between two clients with stdout full")
            check(line.endswith(": still here"), f"got {line!r}")
        finally:
            a.close()
            b.close()
        p.send_signal(signal.SIGTERM)
        out = b""
        deadline = time.monotonic() + 20
        while True:  # reading lets the queued lines out, then EOF at exit
            check(time.monotonic() < deadline, "no end of stdout after SIGTERM")
            ready, _, _ = select.select([p.stdout.fileno()], [], [], 1)
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        rc = p.wait(timeout=10)
        check(rc == 0, f"exit status {rc}")
        check(re.search(rb"\(\d+ log lines dropped: stdout was not read\)", out) is not None,
              f"no count of dropped lines in {len(out)} bytes of log")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
        p.stdout.close()
        p.stderr.close()


def case_co_legacy_operations_cancelled():
    rc, out, err, _ = run([binary("co_legacy")], 10)
    check(rc == 0, f"exit status {rc}, stderr {err!r}")
    expected = [
        "lookup: value-of-alpha",
        "timeout: timed out, library requests left 0",
        "when_any: 0 value-of-fast, library requests left 0",
        "cancel: cancelled, library requests left 0",
    ]
    lines = out.decode().splitlines()
    check(lines == expected, f"output {lines!r}, expected {expected!r}")


CASES += [
    ("two_timers_co_concurrent", case_two_timers_co_concurrent),
    ("co_legacy_operations_cancelled", case_co_legacy_operations_cancelled),
    ("co_echo_nc_and_explicit_port", case_co_echo_nc_and_explicit_port),
    ("co_echo_socat_1mib_random", case_co_echo_socat_1mib_random),
    ("co_echo_20_socat_clients_at_once", case_co_echo_20_socat_clients_at_once),
    ("co_echo_sigint_with_clients_connected", case_co_echo_sigint_with_clients_connected),
    ("co_echo_sigterm_exit_0", case_co_echo_sigterm_exit_0),
    ("co_echo_bad_arguments_exit_2", case_co_echo_bad_arguments_exit_2),
    ("co_echo_port_in_use_exit_1", case_co_echo_port_in_use_exit_1),
    ("co_chat_line_reaches_the_others", case_co_chat_line_reaches_the_others),
    ("co_chat_idle_timeout", case_co_chat_idle_timeout),
    ("co_chat_long_line_disconnects", case_co_chat_long_line_disconnects),
    ("co_chat_slow_reader_dropped", case_co_chat_slow_reader_dropped),
    ("co_chat_sigterm_sigint_exit_0", case_co_chat_sigterm_sigint_exit_0),
    ("co_chat_bad_arguments_exit_2", case_co_chat_bad_arguments_exit_2),
    ("co_chat_dump_on_sigusr1", case_co_chat_dump_on_sigusr1),
    ("co_chat_dump_on_bad_signal_exit_2", case_co_chat_dump_on_bad_signal_exit_2),
    ("co_chat_flood_keeps_prompt_readers", case_co_chat_flood_keeps_prompt_readers),
    ("co_chat_stdout_not_read", case_co_chat_stdout_not_read),
]


def case_resolve_localhost():
    rc, out, err, _ = run([binary("resolve"), "localhost"], 20)
    check(rc == 0, f"exit status {rc}, stderr {err!r}")
    lines = out.decode().splitlines()
    check(lines, "no address printed")
    check(all(l.startswith("127.") or l == "::1" for l in lines), f"not loopback: {lines!r}")
    check(err == b"", f"stderr: {err!r}")
    rc, out, err, _ = run([binary("resolve"), "127.0.0.1", "80"], 20)
    check(rc == 0 and out == b"127.0.0.1:80\n", f"numeric: exit {rc}, output {out!r}")


def case_resolve_unknown_host_exit_1():
    # "bad host!" is refused by the resolver without a query; .invalid never
    # resolves (RFC 6761) and must fail within the timeout even offline.
    for host in ("bad host!", "no-such-host.invalid"):
        rc, out, err, _ = run([binary("resolve"), host], 30)
        check(rc == 1, f"{host}: exit status {rc}, expected 1")
        check(out == b"", f"{host}: printed {out!r}")
        check(host.encode() in err, f"{host}: stderr {err!r}")
        if host == "bad host!":  # the other may also say "temporary failure" where no name server answers
            check(b"unknown node or service" in err, f"{host}: stderr {err!r}")


def case_resolve_bad_arguments_exit_2():
    for args in ([], ["-h"], ["a", "b", "c"], [""]):
        rc, _, err, _ = run([binary("resolve"), *args], 10)
        check(rc == 2, f"{args}: exit status {rc}, expected 2")
        check(b"usage" in err, f"{args}: no usage on stderr")


def case_resolve_port_out_of_range_exit_2():
    # The resolver would wrap 99999 to 34463: refused instead, naming the service.
    for service in ("65536", "99999", "123456789012345678901234567890"):
        rc, out, err, _ = run([binary("resolve"), "127.0.0.1", service], 10)
        check(rc == 2, f"{service}: exit status {rc}, expected 2")
        check(out == b"", f"{service}: printed {out!r}")
        check(service.encode() in err, f"{service}: stderr {err!r}")
    rc, out, _, _ = run([binary("resolve"), "127.0.0.1", "65535"], 20)
    check(rc == 0 and out == b"127.0.0.1:65535\n", f"65535: exit {rc}, output {out!r}")


def case_resolve_and_uvscan_stdout_full_exit_1():
    # Output that cannot be written is an error, not a silent exit 0.
    if not os.path.exists("/dev/full"):
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])  # nobody listens: "closed", quickly
        for args in ((binary("resolve"), "127.0.0.1"), (binary("uvscan"), "127.0.0.1", port, "-a")):
            with open("/dev/full", "w") as full:
                p = subprocess.run(list(args), stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                                   timeout=30)
            name = os.path.basename(args[0])
            check(p.returncode == 1, f"{name}: exit status {p.returncode} with stdout on /dev/full")
            check(b"stdout" in p.stderr, f"{name}: stderr {p.stderr!r}")


def listening_port(pid, deadline):
    """The TCP port process `pid` listens on, from /proc (its stdout may be closed)."""
    while True:
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass  # the process is still starting, or gone: the deadline ends the wait
        with open("/proc/net/tcp") as f:
            for row in f.read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    return int(cols[1].split(":")[1], 16)
        check(time.monotonic() < deadline, f"process {pid} is not listening")
        time.sleep(0.05)


def case_servers_with_closed_standard_streams():
    # Started with stdin, stdout, stderr or all three closed, a server works and
    # exits 0 on SIGTERM. (libuv aborts when it closes one of its own
    # descriptors that took number 0, 1 or 2: uvkit::loop fills a closed
    # standard descriptor with /dev/null first.)
    if not os.path.isdir("/proc/self/fd"):
        return
    need_tool("socat")
    for name in ("echo_server", "co_echo_server", "co_chat"):
        for redirections in ("<&-", ">&-", "2>&-", "<&- >&- 2>&-"):
            who = f"{name} {redirections}"
            p = subprocess.Popen(["sh", "-c", f'exec "$0" {redirections}', binary(name)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
            try:
                port = listening_port(p.pid, time.monotonic() + STARTUP_TIMEOUT)
                if name != "co_chat":
                    expect_same(b"ping\n", socat_echo(port, b"ping\n"), who)
                p.send_signal(signal.SIGTERM)
                try:
                    rc = p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    raise CheckFailed(f"{who}: still running 10 s after SIGTERM")
                err = p.stderr.read()
                check(rc == 0, f"{who}: exit status {rc}, stderr {err[-300:]!r}")
                check(b"Assertion" not in err, f"{who}: {err[-300:]!r}")
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
                p.stderr.close()


CASES += [
    ("resolve_localhost", case_resolve_localhost),
    ("resolve_unknown_host_exit_1", case_resolve_unknown_host_exit_1),
    ("resolve_bad_arguments_exit_2", case_resolve_bad_arguments_exit_2),
    ("resolve_port_out_of_range_exit_2", case_resolve_port_out_of_range_exit_2),
    ("resolve_and_uvscan_stdout_full_exit_1", case_resolve_and_uvscan_stdout_full_exit_1),
    ("servers_with_closed_standard_streams", case_servers_with_closed_standard_streams),
]

def main():
    if len(sys.argv) not in (2, 3):
        print(f"usage: {sys.argv[0]} BUILD_DIR [NAME_PART]", file=sys.stderr)
        return 2
    cases = list(CASES)
    # Each network tool has its own module of cases in test/tools/ (uvcat.py, ...).
    tools = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools")
    for path in sorted(glob.glob(os.path.join(tools, "*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases += module.CASES
    if len(sys.argv) == 3:  # only the cases whose name contains NAME_PART
        cases = [(name, fn) for name, fn in cases if sys.argv[2] in name]
    return run_cases(cases, sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
