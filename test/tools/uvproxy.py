"""uvproxy: a TCP port forwarder (examples/uvproxy.cpp).

Targets: `python3 -m http.server` (for curl), the echo_server example, and
plain sockets in this process when a case needs to control the far side
(a target that does not read, that waits for EOF before answering).
"""

import hashlib
import os
import random
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from harness import *  # noqa: F401,F403

MIB = 1024 * 1024


# ---------------------------------------------------------------- helpers


def proxy(target_port, *options):
    """uvproxy listening on 127.0.0.1:0, forwarding to 127.0.0.1:target_port."""
    return Server("uvproxy", *options, "127.0.0.1:0", f"127.0.0.1:{target_port}")


def stop_expecting_stderr(srv):
    """Stops a proxy that is expected to have logged; returns its stderr lines."""
    srv.stop()
    for t in srv.readers:
        t.join(timeout=5)
    return [line for line in srv.stderr().splitlines() if line]


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_all(sock, timeout):
    """Reads until EOF; a reset counts as the end too. Returns (data, how it ended)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, "eof"
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    except socket.timeout:
        return data, "timeout"


def echo_round_trip(sock, payload):
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        check(chunk, f"EOF after {len(got)} of {len(payload)} echoed bytes")
        got += chunk
    expect_same(payload, got, "echo through the proxy")


def wait_for_port(port, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise CheckFailed(f"nothing listens on port {port} after {seconds} s")


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise CheckFailed(f"no {field} in /proc/{pid}/status")


def bad_args_exit_2(args):
    rc, out, err, _ = run([binary("uvproxy"), *args], 10)
    text = err.decode(errors="replace")
    check(rc == 2, f"{args}: exit status {rc}, expected 2; stderr {text!r}")
    check(len(text.strip().splitlines()) == 1, f"{args}: expected one line on stderr, got {text!r}")
    check(out == b"", f"{args}: wrote on stdout: {out!r}")


# ---------------------------------------------------------------- the cases


def case_curl_through_proxy_to_http_server():
    need_tool("curl")
    with tempfile.TemporaryDirectory() as root:
        body = random.randbytes(3 * MIB + 12345)
        with open(os.path.join(root, "blob.bin"), "wb") as f:
            f.write(body)
        port = free_port()
        http = subprocess.Popen(
            ["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", root, str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_port(port)
            with proxy(port) as srv:
                pport = srv.port()
                for _ in range(3):  # a few requests: each is a new proxied connection
                    rc, out, err, _ = run(["curl", "-sS", "--fail", f"http://127.0.0.1:{pport}/blob.bin"], 30)
                    check(rc == 0, f"curl exited {rc}: {err.decode(errors='replace').strip()}")
                    expect_same(body, out, "curl through the proxy")
                check(srv.alive(), "the proxy exited")
        finally:
            os.killpg(http.pid, signal.SIGKILL)
            http.wait(timeout=5)


def case_200_socat_clients_at_once():
    # Every client gets a first echo, then waits until all 200 have theirs:
    # 200 proxied connections are open at the same time. Then each sends a
    # second part, half-closes and reads the rest up to EOF.
    need_tool("socat")
    n = 200
    with Server("echo_server") as echo, proxy(echo.port()) as srv:
        pport = srv.port()
        firsts = [random.randbytes(random.randint(1, 4096)) for _ in range(n)]
        seconds = [random.randbytes(random.randint(0, 32 * 1024)) for _ in range(n)]
        barrier = threading.Barrier(n, timeout=60)
        errors = [None] * n
        procs = [None] * n

        def client(i):
            try:
                p = procs[i] = subprocess.Popen(
                    ["socat", "-t", "10", "-", f"TCP:127.0.0.1:{pport}"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + 60
                p.stdin.write(firsts[i])
                p.stdin.flush()
                got = read_exact(p.stdout.fileno(), len(firsts[i]), deadline)
                expect_same(firsts[i], got, f"client {i}, first part")
                barrier.wait()
                p.stdin.write(seconds[i])
                p.stdin.close()  # socat half-closes: the proxy passes the FIN on
                rest = b""
                fd = p.stdout.fileno()
                while True:
                    left = deadline - time.monotonic()
                    check(left > 0, f"client {i}: no EOF within 60 s ({len(rest)} bytes of the second part)")
                    ready, _, _ = select.select([fd], [], [], left)
                    if ready:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            break
                        rest += chunk
                expect_same(seconds[i], rest, f"client {i}, second part")
                rc = p.wait(timeout=20)
                check(rc == 0, f"client {i}: socat exited {rc}")
            except CheckFailed as e:
                errors[i] = str(e)
                barrier.abort()
            except Exception as e:  # noqa: BLE001
                errors[i] = f"client {i}: {e!r}"
                barrier.abort()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=90)
        finally:
            for p in procs:
                if p is not None and p.poll() is None:
                    p.kill()
                if p is not None:
                    p.wait(timeout=5)
        check(not any(t.is_alive() for t in threads), "a client thread is still running")
        failed = sorted((e for e in errors if e), key=lambda e: "BrokenBarrier" in e)  # the cause first
        check(not failed, f"{len(failed)} of {n} clients failed, e.g. {failed[0] if failed else ''}")


def case_half_close_keeps_other_direction():
    # The target answers only after the client's EOF reached it: the client's
    # FIN must arrive as a FIN (not a close) and the way back must stay open.
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        lsock.settimeout(10)
        with proxy(lsock.getsockname()[1]) as srv:
            pport = srv.port()
            request = random.randbytes(200 * 1024)
            with connect(pport) as c:
                conn, _ = lsock.accept()
                with conn:
                    c.sendall(request)
                    c.shutdown(socket.SHUT_WR)
                    got, how = recv_all(conn, 10)
                    check(how == "eof", f"target: {how} after {len(got)} bytes, expected EOF")
                    expect_same(request, got, "client to target")
                    reply = b"reply after your EOF: " + hashlib.sha256(got).hexdigest().encode()
                    conn.sendall(reply)
                    conn.shutdown(socket.SHUT_WR)
                    back, how = recv_all(c, 10)
                    check(how == "eof", f"client: {how} after {len(back)} bytes, expected EOF")
                    expect_same(reply, back, "target to client")
                    # Both directions ended: the proxy closes the target connection.
                    rest, how = recv_all(conn, 10)
                    check(how in ("eof", "reset") and rest == b"", f"target side: {how}, {rest!r}")


def slow_reader(direction):
    """64 MiB through the proxy to a reader that first stops, then reads slowly.

    Phase 1: the reader reads nothing; the sender sends until it stalls
    (backpressure reached it), and the proxy's RSS must not have grown much.
    Phase 2: the reader drains everything, slowly; every byte must arrive in
    order. The proxy's peak RSS (VmHWM) must stay below a bound derived
    from the high-water mark plus a generous base: without backpressure the
    proxy would buffer most of the 64 MiB.
    """
    high, low = 256 * 1024, 64 * 1024
    total = 64 * MIB
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        # Small kernel buffers on our side, so that most of the 64 MiB would
        # have to sit in the proxy if it kept reading.
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        lsock.settimeout(10)
        # Under AddressSanitizer freed memory waits in a quarantine, which
        # would count as growth: no quarantine for this proxy (ignored by
        # normal builds).
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=0"
        try:
            srv = proxy(lsock.getsockname()[1], "--high-water", str(high), "--low-water", str(low))
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        with srv:
            pport = srv.port()
            pid = srv.proc.pid
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
            c.settimeout(10)
            c.connect(("127.0.0.1", pport))
            conn, _ = lsock.accept()
            with c, conn:
                sender, reader = (c, conn) if direction == "upstream" else (conn, c)
                time.sleep(0.2)
                base = rss_kib(pid)
                # VmHWM lags behind; sample VmRSS as well and keep the larger peak.
                sampled = [base]
                sampling = threading.Event()

                def sample():
                    while not sampling.wait(0.02):
                        sampled.append(rss_kib(pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()

                # 64 different MiB (each starts with its number), without
                # generating 64 MiB of random bytes.
                block = random.randbytes(MIB)
                buf = bytearray(block * (total // MIB))
                for i in range(total // MIB):
                    buf[i * MIB : i * MIB + 8] = i.to_bytes(8, "little")
                sent_hash = hashlib.sha256(buf).hexdigest()
                data = memoryview(buf)

                # Phase 1: nobody reads; send until no progress for 1 s.
                sender.setblocking(False)
                sent, last_progress = 0, time.monotonic()
                deadline = time.monotonic() + 30
                while sent < total and time.monotonic() - last_progress < 1.0:
                    check(time.monotonic() < deadline, "phase 1 did not end within 30 s")
                    try:
                        n = sender.send(data[sent : sent + 65536])
                        sent += n
                        last_progress = time.monotonic()
                    except BlockingIOError:
                        time.sleep(0.01)
                stalled_at = sent
                rss_stalled = rss_kib(pid)

                # Phase 2: the reader drains slowly while the rest is sent.
                sender.setblocking(True)
                sender.settimeout(60)
                send_error = []

                def send_rest():
                    try:
                        sender.sendall(data[stalled_at:])
                        sender.shutdown(socket.SHUT_WR)
                    except OSError as e:
                        send_error.append(repr(e))

                t = threading.Thread(target=send_rest, daemon=True)
                t.start()
                h = hashlib.sha256()
                received = 0
                reader.settimeout(30)
                deadline = time.monotonic() + 120
                while True:
                    check(time.monotonic() < deadline, f"phase 2: only {received} of {total} bytes in 120 s")
                    chunk = reader.recv(32 * 1024)
                    if not chunk:
                        break
                    h.update(chunk)
                    received += len(chunk)
                    if received % (512 * 1024) < len(chunk):
                        time.sleep(0.002)  # slow: a short pause every 512 KiB
                t.join(timeout=60)
                check(not send_error, f"sender failed: {send_error}")
                sampling.set()
                sampler.join(timeout=5)
                peak = max(rss_kib(pid, "VmHWM"), max(sampled), rss_kib(pid))

    growth_stalled = rss_stalled - base
    growth_peak = peak - base
    # Per direction at most high + one 64 KiB read are queued in the proxy;
    # allow both directions, plus 8 MiB for the allocator and libuv.
    bound = 8 * 1024 + 2 * (high + 64 * 1024) // 1024
    print(
        f"    uvproxy {direction} slow reader: base RSS {base} KiB, sender stalled after "
        f"{stalled_at // 1024} KiB with RSS {rss_stalled} KiB (+{growth_stalled}), "
        f"peak {peak} KiB (+{growth_peak}); bound +{bound} KiB",
        flush=True,
    )
    check(received == total, f"reader got {received} of {total} bytes")
    check(h.hexdigest() == sent_hash, "the bytes arrived changed or out of order")
    check(growth_stalled < bound, f"RSS grew by {growth_stalled} KiB while stalled (bound {bound} KiB)")
    check(growth_peak < bound, f"peak RSS grew by {growth_peak} KiB (bound {bound} KiB)")
    check(stalled_at < total, f"the sender never stalled: all {total} bytes were taken with nobody reading")


def case_slow_reader_upstream_bounded_memory():
    slow_reader("upstream")


def case_slow_reader_downstream_bounded_memory():
    slow_reader("downstream")


def case_resetting_clients_do_not_hurt_others():
    # Clients that reset mid-transfer (with unread echoes queued for them):
    # the proxy closes both sides quietly and goes on.
    with Server("echo_server") as echo, proxy(echo.port()) as srv:
        pport = srv.port()
        for i in range(20):
            with connect(pport) as s:
                s.sendall(random.randbytes(random.randint(1, 512 * 1024)))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with connect(pport) as s:
            echo_round_trip(s, b"still serving\n")
        check(srv.alive(), "the proxy exited")


def case_idle_timeout_closes_idle_connection():
    with Server("echo_server") as echo, proxy(echo.port(), "--idle-timeout", "2") as srv:
        pport = srv.port()
        with connect(pport) as idle, connect(pport) as busy:
            echo_round_trip(idle, b"hello\n")
            echo_round_trip(busy, b"hello\n")
            # `busy` talks every 0.2 s for 3 s, longer than the timeout: it
            # stays open; `idle` says nothing and is closed.
            for i in range(15):
                time.sleep(0.2)
                echo_round_trip(busy, f"tick {i}\n".encode())
            got, how = recv_all(idle, 15)
            check(how in ("eof", "reset") and got == b"", f"idle connection: {how}, got {got!r}")
            echo_round_trip(busy, b"still open\n")
        check(srv.alive(), "the proxy exited")


def case_connection_limit():
    with Server("echo_server") as echo:
        srv = proxy(echo.port(), "--max-conns", "3")
        try:
            pport = srv.port()
            held = [connect(pport) for _ in range(3)]
            for i, s in enumerate(held):
                echo_round_trip(s, f"client {i}\n".encode())
            # The fourth is accepted and closed at once.
            with connect(pport) as extra:
                try:
                    extra.sendall(b"over the limit\n")
                except OSError:
                    pass
                got, how = recv_all(extra, 10)
                check(how in ("eof", "reset") and got == b"", f"4th connection: {how}, got {got!r}")
            for i, s in enumerate(held):
                echo_round_trip(s, f"client {i} again\n".encode())
            # One leaves: a new one gets through (once the proxy closed it).
            held.pop().close()
            deadline = time.monotonic() + 10
            while True:
                check(time.monotonic() < deadline, "no new connection got through after one closed")
                with connect(pport) as s:
                    try:
                        echo_round_trip(s, b"after one left\n")
                        break
                    except (CheckFailed, OSError):
                        time.sleep(0.1)
            for s in held:
                s.close()
            check(srv.alive(), "the proxy exited")
        finally:
            lines = stop_expecting_stderr(srv)
        check(lines and all("connections open" in line for line in lines), f"stderr: {lines!r}")


def case_target_refused_closes_client_and_goes_on():
    need_tool("socat")
    target_port = free_port()  # nothing listens there yet
    srv = proxy(target_port)
    try:
        pport = srv.port()
        with connect(pport) as c:
            got, how = recv_all(c, 10)
            check(how in ("eof", "reset") and got == b"", f"client: {how}, got {got!r}")
        check(srv.alive(), "the proxy exited after a refused connect")
        # The target comes up: the same proxy now forwards.
        with Server("echo_server", "--port", str(target_port)) as echo:
            echo.port()
            expect_same(b"now it works\n", socat_echo(pport, b"now it works\n"), "socat")
    finally:
        lines = stop_expecting_stderr(srv)
    check(len(lines) == 1, f"expected one line on stderr, got {lines!r}")
    check("connect to" in lines[0] and "refused" in lines[0], f"stderr: {lines[0]!r}")


def case_sigterm_and_sigint_exit_0_closing_connections():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server("echo_server") as echo, proxy(echo.port()) as srv:
            pport = srv.port()
            with connect(pport) as a, connect(pport) as b:
                echo_round_trip(a, b"a\n")
                echo_round_trip(b, b"b\n")
                expect_exit_0_after(srv, sig)
                for s in (a, b):
                    got, how = recv_all(s, 10)
                    check(how in ("eof", "reset") and got == b"", f"client after {sig.name}: {how}, {got!r}")


def case_bad_arguments_exit_2():
    bad_args_exit_2([])
    bad_args_exit_2(["127.0.0.1:0"])
    bad_args_exit_2(["127.0.0.1:0", "127.0.0.1:80", "extra:1"])
    bad_args_exit_2(["localhost:0", "127.0.0.1:80"])  # LISTEN is numeric
    bad_args_exit_2(["127.0.0.1:99999", "127.0.0.1:80"])
    bad_args_exit_2(["127.0.0.1:0", "127.0.0.1"])
    bad_args_exit_2(["127.0.0.1:0", "127.0.0.1:0"])
    bad_args_exit_2(["--frobnicate", "127.0.0.1:0", "127.0.0.1:80"])
    bad_args_exit_2(["--max-conns", "many", "127.0.0.1:0", "127.0.0.1:80"])
    bad_args_exit_2(["--idle-timeout", "-1", "127.0.0.1:0", "127.0.0.1:80"])
    bad_args_exit_2(["--high-water", "64K", "--low-water", "1M", "127.0.0.1:0", "127.0.0.1:80"])
    bad_args_exit_2(["127.0.0.1:0", "127.0.0.1:80", "--high-water"])
    rc, out, err, _ = run([binary("uvproxy"), "--help"], 10)
    check(rc == 0 and b"LISTEN TARGET" in out, f"--help: status {rc}, stdout {out!r}")


def case_listen_port_in_use_exit_1():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        rc, out, err, _ = run([binary("uvproxy"), f"127.0.0.1:{port}", "127.0.0.1:80"], 10)
    text = err.decode(errors="replace")
    check(rc == 1, f"exit status {rc}, expected 1; stderr {text!r}")
    check(len(text.strip().splitlines()) == 1 and "in use" in text, f"stderr {text!r}")
    check(b"listening" not in out, f"stdout {out!r}")


CASES = [
    ("uvproxy_curl_through_proxy_to_http_server", case_curl_through_proxy_to_http_server),
    ("uvproxy_200_socat_clients_at_once", case_200_socat_clients_at_once),
    ("uvproxy_half_close_keeps_other_direction", case_half_close_keeps_other_direction),
    ("uvproxy_slow_reader_upstream_bounded_memory", case_slow_reader_upstream_bounded_memory),
    ("uvproxy_slow_reader_downstream_bounded_memory", case_slow_reader_downstream_bounded_memory),
    ("uvproxy_resetting_clients_do_not_hurt_others", case_resetting_clients_do_not_hurt_others),
    ("uvproxy_idle_timeout_closes_idle_connection", case_idle_timeout_closes_idle_connection),
    ("uvproxy_connection_limit", case_connection_limit),
    ("uvproxy_target_refused_closes_client_and_goes_on", case_target_refused_closes_client_and_goes_on),
    ("uvproxy_sigterm_and_sigint_exit_0_closing_connections", case_sigterm_and_sigint_exit_0_closing_connections),
    ("uvproxy_bad_arguments_exit_2", case_bad_arguments_exit_2),
    ("uvproxy_listen_port_in_use_exit_1", case_listen_port_in_use_exit_1),
]
