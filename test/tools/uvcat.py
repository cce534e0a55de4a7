"""Cases for examples/uvcat: netcat-openbsd (`nc`), socat and python sockets as the other end.

Big transfers are 8 MiB of random bytes each way, compared byte for byte. The
peer programs read and write files (so nothing can block on a pipe nobody
drains); uvcat's stdin and stdout are pipes, except in the case that checks
regular files (uvcat's thread-pool path). UDP cases move 64 KiB each way: UDP
has no flow control, so a bigger burst may legitimately be dropped by a
receiver's socket buffer, which would test the kernel, not uvcat.
"""

import hashlib
import os
import re
import select
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

from harness import *  # noqa: F401,F403

MIB8 = 8 * 1024 * 1024
STEP = 60  # seconds: the bound of every wait on a transfer (2 shared cores)
UVCAT_LISTENING = re.compile(r"^listening on 127\.0\.0\.1:(\d+)$")
SOCAT_LISTENING = re.compile(r"listening on (?:UDP )?AF=2 127\.0\.0\.1:(\d+)")


def uvcat_args(*args):
    return [binary("uvcat"), *args]


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE):
    return subprocess.Popen(args, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True)


def wait_line(stream, pattern, timeout, who):
    """Reads lines from a pipe until one matches; returns the match (bounded by `timeout`)."""
    deadline = time.monotonic() + timeout
    seen = b""
    fd = stream.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
        for line in seen.decode(errors="replace").splitlines():
            m = pattern.search(line)
            if m:
                return m
    raise CheckFailed(f"{who}: no line matching {pattern.pattern!r} within {timeout} s; got {seen!r}")


def finish(p, timeout, who):
    """Waits for a process; returns (status, stderr text)."""
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(p)
        p.wait(timeout=5)
        raise CheckFailed(f"{who} did not finish within {timeout} s")
    err = p.stderr.read().decode(errors="replace").strip() if p.stderr else ""
    return p.returncode, err


def one_line_error(err, who):
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("uvcat: "), f"{who}: expected one 'uvcat: ...' line, got {err!r}")
    return lines[0]


class Files:
    """Temporary files with random contents, and files for outputs."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="uvcat-test-")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.dir.cleanup()
        return False

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def random(self, name, size):
        data = os.urandom(size)
        with open(self.path(name), "wb") as f:
            f.write(data)
        return data

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()


def run_uvcat(args, data, timeout=STEP):
    """uvcat with `data` on a stdin pipe and stdout on a pipe; returns (status, stdout, stderr)."""
    rc, out, err, _ = run(uvcat_args(*args), timeout, input=data)
    return rc, out, err.decode(errors="replace").strip()


def start_uvcat_listener(*args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE):
    """Starts `uvcat -l ...`; returns (process, port) once it says where it listens."""
    p = spawn(uvcat_args("-l", *args), stdin=stdin, stdout=stdout)
    try:
        port = int(wait_line(p.stderr, UVCAT_LISTENING, STARTUP_TIMEOUT, "uvcat -l").group(1))
    except BaseException:
        kill_group(p)
        raise
    return p, port


# ---------------------------------------------------------------- TCP, uvcat as the client


def case_uvcat_to_nc_listener_8mib():
    need_tool("nc")
    with Files() as f:
        port = free_port()
        nc = spawn(["nc", "-lv", "127.0.0.1", str(port)], stdout=open(f.path("got"), "wb"))
        try:
            wait_line(nc.stderr, re.compile(r"^Listening on"), STARTUP_TIMEOUT, "nc -l")
            sent = os.urandom(MIB8)
            rc, out, err = run_uvcat(["127.0.0.1", str(port)], sent)
            check(rc == 0, f"uvcat exited {rc}: {err!r}")
            check(err == "", f"uvcat wrote on stderr: {err!r}")
            finish(nc, STEP, "nc -l")
            expect_same(sent, f.read("got"), "uvcat -> nc -l")
        finally:
            kill_group(nc)


def case_uvcat_to_socat_listener_8mib_both_ways():
    need_tool("socat")
    with Files() as f:
        theirs = f.random("theirs", MIB8)
        socat = spawn(
            ["socat", "-d", "-d", "-t", str(STEP), "TCP-LISTEN:0,bind=127.0.0.1", "-"],
            stdin=open(f.path("theirs"), "rb"),
            stdout=open(f.path("got"), "wb"),
        )
        try:
            port = wait_line(socat.stderr, SOCAT_LISTENING, STARTUP_TIMEOUT, "socat").group(1)
            ours = os.urandom(MIB8)
            rc, out, err = run_uvcat(["127.0.0.1", port], ours)
            check(rc == 0, f"uvcat exited {rc}: {err!r}")
            socat.stderr.close()
            socat.stderr = None
            rc, _ = finish(socat, STEP, "socat")
            check(rc == 0, f"socat exited {rc}")
            expect_same(ours, f.read("got"), "uvcat -> socat")
            expect_same(theirs, out, "socat -> uvcat")
        finally:
            kill_group(socat)


def case_uvcat_waits_for_its_stdin_after_peer_eof():
    """The peer's end of stream ends one direction only: uvcat still sends stdin, then exits."""
    need_tool("nc")
    with Files() as f:
        theirs = f.random("theirs", MIB8)
        port = free_port()
        # -N: nc shuts its sending side down at the end of its stdin.
        nc = spawn(["nc", "-N", "-lv", "127.0.0.1", str(port)], stdin=open(f.path("theirs"), "rb"),
                   stdout=open(f.path("got"), "wb"))
        uv = None
        try:
            wait_line(nc.stderr, re.compile(r"^Listening on"), STARTUP_TIMEOUT, "nc -l")
            uv = spawn(uvcat_args("127.0.0.1", str(port)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            got = read_exact(uv.stdout.fileno(), len(theirs), time.monotonic() + STEP)
            expect_same(theirs, got, "nc -l -> uvcat")
            check(uv.poll() is None, f"uvcat exited ({uv.returncode}) before the end of its stdin")
            uv.stdin.write(b"late words\n")
            uv.stdin.close()  # now uvcat half-closes; nc -l sees the end and leaves
            rc, err = finish(uv, STEP, "uvcat")
            check(rc == 0, f"uvcat exited {rc}: {err!r}")
            check(uv.stdout.read() == b"", "uvcat wrote more than nc sent")
            finish(nc, STEP, "nc -l")
            check(f.read("got") == b"late words\n", f"nc got {f.read('got')!r}")
        finally:
            for p in (nc, uv):
                if p:
                    kill_group(p)


def case_uvcat_files_on_stdin_and_stdout():
    """Regular files have no libuv stream: uvcat reads and writes them on the thread pool."""
    need_tool("socat")
    with Files() as f:
        theirs = f.random("theirs", MIB8)
        ours = f.random("ours", MIB8)
        socat = spawn(["socat", "-d", "-d", "-t", str(STEP), "TCP-LISTEN:0,bind=127.0.0.1", "-"],
                      stdin=open(f.path("theirs"), "rb"), stdout=open(f.path("socat-got"), "wb"))
        try:
            port = wait_line(socat.stderr, SOCAT_LISTENING, STARTUP_TIMEOUT, "socat").group(1)
            with open(f.path("ours"), "rb") as stdin, open(f.path("uvcat-got"), "wb") as stdout:
                uv = spawn(uvcat_args("127.0.0.1", port), stdin=stdin, stdout=stdout)
            rc, err = finish(uv, STEP, "uvcat")
            check(rc == 0, f"uvcat exited {rc}: {err!r}")
            socat.stderr.close()
            socat.stderr = None
            finish(socat, STEP, "socat")
            expect_same(ours, f.read("socat-got"), "uvcat (file) -> socat")
            expect_same(theirs, f.read("uvcat-got"), "socat -> uvcat (file)")
        finally:
            kill_group(socat)


# ---------------------------------------------------------------- TCP, uvcat -l


def case_nc_to_uvcat_listener_8mib_both_ways():
    need_tool("nc")
    with Files() as f:
        ours = f.random("ours", MIB8)
        uv, port = start_uvcat_listener(stdin=open(f.path("ours"), "rb"), stdout=open(f.path("got"), "wb"))
        try:
            f.random("theirs", MIB8)
            nc = spawn(["nc", "-N", "127.0.0.1", str(port)], stdin=open(f.path("theirs"), "rb"),
                       stdout=open(f.path("nc-got"), "wb"))
            try:
                rc, err = finish(nc, STEP, "nc")
                check(rc == 0, f"nc exited {rc}: {err!r}")
            finally:
                kill_group(nc)
            rc, err = finish(uv, STEP, "uvcat -l")
            check(rc == 0, f"uvcat -l exited {rc}: {err!r}")
            expect_same(f.read("theirs"), f.read("got"), "nc -> uvcat -l")
            expect_same(ours, f.read("nc-got"), "uvcat -l -> nc")
        finally:
            kill_group(uv)


def case_socat_to_uvcat_listener_8mib_both_ways_pipes():
    need_tool("socat")
    with Files() as f:
        theirs = f.random("theirs", MIB8)
        uv, port = start_uvcat_listener("-p", "0", "127.0.0.1", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ours = os.urandom(MIB8)
            socat = spawn(["socat", "-t", str(STEP), "-", f"TCP:127.0.0.1:{port}"],
                          stdin=open(f.path("theirs"), "rb"), stdout=open(f.path("socat-got"), "wb"))
            try:
                out, _ = uv.communicate(ours, timeout=STEP)  # feeds stdin, drains stdout
                check(uv.returncode == 0, f"uvcat -l exited {uv.returncode}")
                finish(socat, STEP, "socat")
            finally:
                kill_group(socat)
            expect_same(theirs, out, "socat -> uvcat -l")
            expect_same(ours, f.read("socat-got"), "uvcat -l -> socat")
        finally:
            kill_group(uv)


def case_uvcat_listener_serves_one_then_refuses():
    need_tool("socat")
    uv, port = start_uvcat_listener()
    try:
        check(socat_echo(port, b"first\n") == b"", "uvcat -l sent something, its stdin is empty")
        rc, err = finish(uv, STEP, "uvcat -l")
        check(rc == 0, f"uvcat -l exited {rc}: {err!r}")
        check(uv.stdout.read() == b"first\n", "uvcat -l did not print what the client sent")
        with socket.socket() as s:
            check(s.connect_ex(("127.0.0.1", port)) != 0, "a second client could connect")
    finally:
        kill_group(uv)


def case_uvcat_listen_keep_serves_one_after_another():
    need_tool("socat")
    uv, port = start_uvcat_listener("-k")
    try:
        for i in range(3):
            check(socat_echo(port, f"client {i}\n".encode()) == b"", "uvcat -lk sent bytes, its stdin is empty")
            line = read_exact(uv.stdout.fileno(), len(f"client {i}\n"), time.monotonic() + STEP)
            check(line == f"client {i}\n".encode(), f"got {line!r} from client {i}")
        check(uv.poll() is None, "uvcat -lk exited after its clients")
        uv.send_signal(signal.SIGTERM)
        rc, err = finish(uv, STEP, "uvcat -lk")
        check(rc == 0 and err == "", f"after SIGTERM: status {rc}, stderr {err!r}")
    finally:
        kill_group(uv)


# ---------------------------------------------------------------- UDP

UDP_SIZE = 64 * 1024


def case_uvcat_udp_client_socat_server_both_ways():
    need_tool("socat")
    with Files() as f:
        socat = spawn(["socat", "-d", "-d", "-b", "32768", "UDP-LISTEN:0,bind=127.0.0.1", "-"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE)
        uv = None
        try:
            port = wait_line(socat.stderr, SOCAT_LISTENING, STARTUP_TIMEOUT, "socat").group(1)
            ours = os.urandom(UDP_SIZE)
            uv = spawn(uvcat_args("-u", "127.0.0.1", port), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            uv.stdin.write(ours)
            uv.stdin.flush()
            got = read_exact(socat.stdout.fileno(), UDP_SIZE, time.monotonic() + STEP)
            expect_same(ours, got, "uvcat -u -> socat")
            theirs = os.urandom(UDP_SIZE)
            for i in range(0, UDP_SIZE, 4096):  # socat sends one datagram per read of its stdin (-b: at most 32 KiB)
                socat.stdin.write(theirs[i:i + 4096])
                socat.stdin.flush()
            got = read_exact(uv.stdout.fileno(), UDP_SIZE, time.monotonic() + STEP)
            expect_same(theirs, got, "socat -> uvcat -u")
            uv.send_signal(signal.SIGINT)
            rc, err = finish(uv, STEP, "uvcat -u")
            check(rc == 0 and err == "", f"after SIGINT: status {rc}, stderr {err!r}")
        finally:
            for p in (socat, uv):
                if p:
                    kill_group(p)


def case_socat_udp_client_to_uvcat_listener_both_ways():
    need_tool("socat")
    uv, port = start_uvcat_listener("-u", "-w", "2", stdin=subprocess.PIPE)
    socat = None
    try:
        socat = spawn(["socat", "-b", "32768", "-", f"UDP:127.0.0.1:{port}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        theirs = os.urandom(UDP_SIZE)
        for i in range(0, UDP_SIZE, 4096):
            socat.stdin.write(theirs[i:i + 4096])
            socat.stdin.flush()
        got = read_exact(uv.stdout.fileno(), UDP_SIZE, time.monotonic() + STEP)
        expect_same(theirs, got, "socat -> uvcat -u -l")
        ours = os.urandom(UDP_SIZE)
        uv.stdin.write(ours)  # the first sender is uvcat's peer
        uv.stdin.flush()
        got = read_exact(socat.stdout.fileno(), UDP_SIZE, time.monotonic() + STEP)
        expect_same(ours, got, "uvcat -u -l -> socat")
        # -w 2: two quiet seconds end a UDP session, with status 0.
        rc, err = finish(uv, STEP, "uvcat -u -l -w 2")
        check(rc == 0, f"uvcat -u -l -w 2 exited {rc}: {err!r}")
    finally:
        for p in (socat, uv):
            if p:
                kill_group(p)


def case_uvcat_udp_to_closed_port_exit_1():
    """A datagram to a closed port comes back as ICMP 'port unreachable': connection refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    uv = spawn(uvcat_args("-u", "127.0.0.1", str(port)), stdin=subprocess.PIPE)
    try:
        uv.stdin.write(b"anyone?\n")
        uv.stdin.flush()
        rc, err = finish(uv, STEP, "uvcat -u")
        check(rc == 1, f"exit status {rc}, expected 1; stderr {err!r}")
        line = one_line_error(err, "uvcat -u")
        check("connection refused" in line, f"message {line!r}")
    finally:
        kill_group(uv)


# ---------------------------------------------------------------- failures, timeouts, signals


def case_uvcat_peer_closes_early_exit_1():
    """The peer reads a little and closes: sending the rest fails, uvcat says why and exits 1."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def rude():
            listener.settimeout(STEP)
            conn, _ = listener.accept()
            conn.recv(1000)
            conn.close()  # unread bytes: the kernel answers with a reset

        t = threading.Thread(target=rude, daemon=True)
        t.start()
        rc, out, err = run_uvcat(["127.0.0.1", str(port)], os.urandom(MIB8))
        t.join(timeout=5)
        check(rc == 1, f"exit status {rc}, expected 1; stderr {err!r}")
        line = one_line_error(err, "uvcat")
        check("reset" in line or "broken pipe" in line, f"message {line!r}")


def case_uvcat_peer_sends_and_closes():
    """A peer that answers and closes at once: uvcat prints the answer and exits 0 (its stdin is empty)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def greet():
            listener.settimeout(STEP)
            conn, _ = listener.accept()
            conn.sendall(b"hello and bye\n")
            conn.close()

        t = threading.Thread(target=greet, daemon=True)
        t.start()
        rc, out, err, _ = run(uvcat_args("127.0.0.1", str(port)), STEP)  # stdin: /dev/null
        t.join(timeout=5)
        check(rc == 0, f"exit status {rc}; stderr {err!r}")
        check(out == b"hello and bye\n", f"output {out!r}")


def case_uvcat_connect_refused_exit_1():
    port = free_port()  # nobody listens there any more
    rc, out, err = run_uvcat(["127.0.0.1", str(port)], b"")
    check(rc == 1, f"exit status {rc}, expected 1")
    line = one_line_error(err, "uvcat")
    check("connection refused" in line and str(port) in line, f"message {line!r}")


def case_uvcat_unknown_host_exit_1():
    rc, out, err = run_uvcat(["no-such-host.invalid", "80"], b"")
    check(rc == 1, f"exit status {rc}, expected 1")
    line = one_line_error(err, "uvcat")
    check("resolve" in line and "no-such-host.invalid" in line, f"message {line!r}")


def case_uvcat_idle_timeout_w():
    """-w 1 and a peer that never says anything, while uvcat's stdin stays open: exit 1."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        uv = spawn(uvcat_args("-w", "1", "127.0.0.1", str(port)), stdin=subprocess.PIPE)
        try:
            listener.settimeout(STEP)
            conn, _ = listener.accept()  # and keep it open, silent
            with conn:
                rc, err = finish(uv, STEP, "uvcat -w 1")
            check(rc == 1, f"exit status {rc}, expected 1; stderr {err!r}")
            line = one_line_error(err, "uvcat")
            check("no data" in line, f"message {line!r}")
        finally:
            kill_group(uv)


def full_backlog_listener():
    """A listener with listen(0) whose accept queue is full: Linux drops further SYNs,
    so a connect to it neither succeeds nor is refused. Returns (listener, fillers, port)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    # The first filler is queued; the queue is full once the kernel says so for a probe.
    deadline = time.monotonic() + 10
    while True:
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
        except (TimeoutError, socket.timeout):
            probe.close()
            break
        except OSError:
            pass
        fillers.append(probe)
        check(time.monotonic() < deadline, "could not fill the listener's backlog")
    return listener, fillers, port


def case_uvcat_connect_timeout_w():
    listener, fillers, port = full_backlog_listener()
    try:
        rc, out, err = run_uvcat(["-w", "1", "127.0.0.1", str(port)], b"")
        check(rc == 1, f"exit status {rc}, expected 1; stderr {err!r}")
        line = one_line_error(err, "uvcat")
        check("cannot connect" in line and "timed out" in line, f"message {line!r}")
    finally:
        for s in fillers + [listener]:
            s.close()


def case_uvcat_sigterm_while_connected_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            uv = spawn(uvcat_args("127.0.0.1", str(port)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                listener.settimeout(STEP)
                conn, _ = listener.accept()
                with conn:
                    uv.stdin.write(b"ping\n")
                    uv.stdin.flush()
                    conn.settimeout(STEP)
                    check(conn.recv(100) == b"ping\n", "the peer did not get the first line")
                    conn.sendall(b"pong\n")
                    check(read_exact(uv.stdout.fileno(), 5, time.monotonic() + STEP) == b"pong\n", "no pong")
                    uv.send_signal(sig)
                    rc, err = finish(uv, STEP, f"uvcat after {sig.name}")
                    check(rc == 0, f"status {rc} after {sig.name}, expected 0; stderr {err!r}")
                    check(err == "", f"stderr after {sig.name}: {err!r}")
                    conn.settimeout(STEP)
                    check(conn.recv(100) == b"", "the connection is still open after uvcat exited")
            finally:
                kill_group(uv)


def case_uvcat_sigint_while_listening_exit_0():
    uv, port = start_uvcat_listener()
    try:
        uv.send_signal(signal.SIGINT)
        rc, err = finish(uv, STEP, "uvcat -l")
        check(rc == 0, f"status {rc}, expected 0; stderr {err!r}")
    finally:
        kill_group(uv)


def case_uvcat_bad_arguments_exit_2():
    bad = [
        [],
        ["127.0.0.1"],
        ["127.0.0.1", "0"],
        ["127.0.0.1", "65536"],
        ["127.0.0.1", "http"],
        ["127.0.0.1", "80", "extra"],
        ["-x", "127.0.0.1", "80"],
        ["--bogus", "127.0.0.1", "80"],
        ["-w", "0", "127.0.0.1", "80"],
        ["-w", "soon", "127.0.0.1", "80"],
        ["127.0.0.1", "80", "-w"],
        ["-k", "127.0.0.1", "80"],
        ["-p", "80", "127.0.0.1", "80"],
        ["-l", "-p", "70000"],
        ["-l", "127.0.0.1", "80"],
        ["-l", "-k", "-u"],
        ["", "80"],
    ]
    for args in bad:
        rc, out, err = run_uvcat(args, b"", timeout=10)
        check(rc == 2, f"uvcat {args}: exit status {rc}, expected 2")
        line = one_line_error(err, f"uvcat {args}")
        check("--help" in line, f"uvcat {args}: message {line!r} does not point to --help")
        check(out == b"", f"uvcat {args} wrote on stdout")
    rc, out, err = run_uvcat(["--help"], b"", timeout=10)
    check(rc == 0 and b"usage: uvcat" in out and err == "", f"--help: status {rc}, stderr {err!r}")


def case_uvcat_udp_listener_holds_a_2mib_burst():
    """uvcat -l -u asks for a 4 MiB kernel receive buffer: a burst of 2048 datagrams of 1 KiB
    sent while nobody reads uvcat's stdout (so uvcat receives nothing after the first 64 KiB)
    all arrive; with the default buffer (about 208 KiB) most would be dropped."""
    try:
        with open("/proc/sys/net/core/rmem_max") as f:
            rmem_max = int(f.read())
    except OSError:
        return  # not Linux: the kernel's limit is unknown
    if rmem_max < 4 * 1024 * 1024:
        return  # the kernel caps the buffer below what the burst needs
    uv, port = start_uvcat_listener("-u", "127.0.0.1")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        burst = [bytes([i % 251]) * 1024 for i in range(2048)]
        for d in burst:  # as fast as the kernel takes them; stdout is not read yet
            s.sendto(d, ("127.0.0.1", port))
        want = b"".join(burst)
        got = read_exact(uv.stdout.fileno(), len(want), time.monotonic() + STEP)
        expect_same(want, got, "a 2 MiB UDP burst through uvcat -l -u")
    finally:
        s.close()
        kill_group(uv)


CASES = [
    ("uvcat_udp_listener_holds_a_2mib_burst", case_uvcat_udp_listener_holds_a_2mib_burst),
    ("uvcat_to_nc_listener_8mib", case_uvcat_to_nc_listener_8mib),
    ("uvcat_to_socat_listener_8mib_both_ways", case_uvcat_to_socat_listener_8mib_both_ways),
    ("uvcat_waits_for_its_stdin_after_peer_eof", case_uvcat_waits_for_its_stdin_after_peer_eof),
    ("uvcat_files_on_stdin_and_stdout", case_uvcat_files_on_stdin_and_stdout),
    ("uvcat_nc_to_listener_8mib_both_ways", case_nc_to_uvcat_listener_8mib_both_ways),
    ("uvcat_socat_to_listener_8mib_both_ways_pipes", case_socat_to_uvcat_listener_8mib_both_ways_pipes),
    ("uvcat_listener_serves_one_then_refuses", case_uvcat_listener_serves_one_then_refuses),
    ("uvcat_listen_keep_serves_one_after_another", case_uvcat_listen_keep_serves_one_after_another),
    ("uvcat_udp_client_socat_server_both_ways", case_uvcat_udp_client_socat_server_both_ways),
    ("uvcat_udp_socat_client_to_listener_both_ways", case_socat_udp_client_to_uvcat_listener_both_ways),
    ("uvcat_udp_to_closed_port_exit_1", case_uvcat_udp_to_closed_port_exit_1),
    ("uvcat_peer_closes_early_exit_1", case_uvcat_peer_closes_early_exit_1),
    ("uvcat_peer_sends_and_closes", case_uvcat_peer_sends_and_closes),
    ("uvcat_connect_refused_exit_1", case_uvcat_connect_refused_exit_1),
    ("uvcat_unknown_host_exit_1", case_uvcat_unknown_host_exit_1),
    ("uvcat_idle_timeout_w", case_uvcat_idle_timeout_w),
    ("uvcat_connect_timeout_w", case_uvcat_connect_timeout_w),
    ("uvcat_sigterm_while_connected_exit_0", case_uvcat_sigterm_while_connected_exit_0),
    ("uvcat_sigint_while_listening_exit_0", case_uvcat_sigint_while_listening_exit_0),
    ("uvcat_bad_arguments_exit_2", case_uvcat_bad_arguments_exit_2),
]


# ---------------------------------------------------------------- closed standard streams


def uvcat_closed(redirections, *args):
    """uvcat ARGS under `sh -c 'exec uvcat ARGS REDIRECTIONS'` (e.g. '<&- >&-'): the streams closed."""
    return ["sh", "-c", f'exec "$0" "$@" {redirections}', binary("uvcat"), *args]


def case_uvcat_closed_stdin_sends_nothing():
    """stdin closed (<&-): nothing to send, a half-close at once; the peer's answer still arrives."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        got = []

        def serve():
            listener.settimeout(STEP)
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(STEP)
                data = b""
                while True:  # until uvcat's half-close
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                got.append(data)
                conn.sendall(b"answer after your EOF\n")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        rc, out, err, _ = run(uvcat_closed("<&-", "127.0.0.1", str(port)), STEP)
        t.join(timeout=STEP)
        check(rc == 0, f"exit status {rc}; stderr {err!r}")
        check(got == [b""], f"the peer received {got!r}, expected nothing and then EOF")
        check(out == b"answer after your EOF\n", f"output {out!r}")
        check(err == b"", f"stderr {err!r}")


def case_uvcat_closed_stdout_exit_1():
    """stdout closed (>&-), alone or with stdin: exit 1 with one line, and the peer gets no bytes."""
    for redirections in (">&-", "<&- >&-"):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            rc, out, err, _ = run(uvcat_closed(redirections, "127.0.0.1", str(port)), STEP, input=b"data\n")
            check(rc == 1, f"{redirections}: exit status {rc}; stderr {err!r}")
            line = one_line_error(err.decode(errors="replace").strip(), redirections)
            check("stdout" in line, f"{redirections}: {line!r} does not name stdout")
            # Nothing was sent anywhere (not to the peer, not into a descriptor that took fd 1).
            listener.settimeout(0.0)
            try:
                conn, _ = listener.accept()
                conn.close()
                raise CheckFailed(f"{redirections}: uvcat connected although it cannot write stdout")
            except BlockingIOError:
                pass


def case_uvcat_listener_closed_stdin_and_stdout_refused():
    """uvcat -l with both streams closed does not listen: exit 1 with one line."""
    rc, out, err, _ = run(uvcat_closed("<&- >&-", "-l"), STEP)
    check(rc == 1, f"exit status {rc}; stderr {err!r}")
    one_line_error(err.decode(errors="replace").strip(), "uvcat -l <&- >&-")


CASES += [
    ("uvcat_closed_stdin_sends_nothing", case_uvcat_closed_stdin_sends_nothing),
    ("uvcat_closed_stdout_exit_1", case_uvcat_closed_stdout_exit_1),
    ("uvcat_listener_closed_stdin_and_stdout_refused", case_uvcat_listener_closed_stdin_and_stdout_refused),
]


# ---------------------------------------------------------------- TLS (--tls), openssl s_server / s_client as the peer

TLS_DATA = 16 * 1024  # per direction: small enough for every pipe on the way, whoever reads late
OPENSSL_ACCEPT = re.compile(r"^ACCEPT")


class Certs(Files):
    """Files with the test certificates of make_certs() (harness) in them."""

    def __init__(self):
        super().__init__()
        make_certs(self.dir.name)


def tls_text(size):
    """Random digits in lines: nothing openssl's s_server could take for one of its commands."""
    return b"".join(str(int.from_bytes(os.urandom(24), "big")).zfill(60).encode() + b"\n" for _ in range(size // 61))


def uvcat_has_tls():
    """False if this uvcat was built without TLS; then --tls must be a bad argument (exit 2)."""
    rc, out, err = run_uvcat(["-l", "--tls"], b"", timeout=10)
    check(rc == 2, f"uvcat -l --tls (no --cert): exit status {rc}, expected 2")
    return "without TLS" not in one_line_error(err, "uvcat -l --tls")


def start_s_server(f, cert):
    """openssl s_server on a free port with `cert` (.pem and .key), for one connection;
    its stdin and stdout are pipes (its stdout has its own lines around the data).
    Returns (process, port) once it says ACCEPT."""
    port = free_port()
    p = spawn(["openssl", "s_server", "-naccept", "1", "-accept", f"127.0.0.1:{port}",
               "-cert", f.path(cert + ".pem"), "-key", f.path(cert + ".key")],
              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        wait_line(p.stdout, OPENSSL_ACCEPT, STARTUP_TIMEOUT, "openssl s_server")
    except BaseException:
        kill_group(p)
        raise
    return p, port


def read_until_contains(fd, wanted, deadline, who):
    """Reads a pipe until `wanted` appeared in it (openssl adds its own lines around the data)."""
    seen = b""
    while wanted not in seen:
        left = deadline - time.monotonic()
        check(left > 0, f"{who}: {len(wanted)} bytes not seen within the time; got {len(seen)} bytes")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            check(chunk, f"{who}: end of output before the {len(wanted)} bytes; got {seen[-200:]!r}")
            seen += chunk
    return seen


def uvcat_tls_client_session(f, cert, *uvcat_opts):
    """s_server with `cert`, uvcat --tls as its client: bytes both ways, then uvcat's stdin
    ends (close_notify) and uvcat must exit 0."""
    srv, port = start_s_server(f, cert)
    uv = None
    try:
        theirs, ours = tls_text(TLS_DATA), tls_text(TLS_DATA)
        uv = spawn(uvcat_args("--tls", *uvcat_opts, "127.0.0.1", str(port)), stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE)
        deadline = time.monotonic() + STEP
        srv.stdin.write(theirs)
        srv.stdin.flush()
        got = read_exact(uv.stdout.fileno(), len(theirs), deadline)
        expect_same(theirs, got, "s_server -> uvcat --tls")
        uv.stdin.write(ours)
        uv.stdin.close()  # uvcat sends close_notify after ours; s_server answers with its own
        read_until_contains(srv.stdout.fileno(), ours, deadline, "uvcat --tls -> s_server")
        rc, err = finish(uv, STEP, "uvcat --tls")
        check(rc == 0, f"uvcat --tls exited {rc}: {err!r}")
        check(uv.stdout.read() == b"", "uvcat --tls wrote more than s_server sent")
    finally:
        for p in (srv, uv):
            if p:
                kill_group(p)


def case_uvcat_tls_client_s_server_both_ways():
    if not uvcat_has_tls():
        return
    need_tool("openssl")
    with Certs() as f:
        uvcat_tls_client_session(f, "server", "--cafile", f.path("ca.pem"))


def case_uvcat_tls_client_insecure_accepts_unknown_ca():
    if not uvcat_has_tls():
        return
    need_tool("openssl")
    with Certs() as f:
        uvcat_tls_client_session(f, "self", "--insecure")


def case_uvcat_tls_client_refuses_bad_certificates_exit_1():
    """An unknown CA, a certificate for another name: one line, exit 1, no data."""
    if not uvcat_has_tls():
        return
    need_tool("openssl")
    with Certs() as f:
        for cert, reason in (("self", "verification failed"), ("wrong", "does not match the host name")):
            srv, port = start_s_server(f, cert)
            try:
                srv.stdin.write(b"not for you\n")
                srv.stdin.flush()
                rc, out, err = run_uvcat(["--tls", "--cafile", f.path("ca.pem"), "127.0.0.1", str(port)],
                                         b"secret\n")
                check(rc == 1, f"uvcat --tls against {cert}.pem: exit status {rc}, expected 1 ({err!r})")
                line = one_line_error(err, f"uvcat --tls against {cert}.pem")
                check("TLS handshake" in line and reason in line, f"{cert}.pem: message {line!r}")
                check(out == b"", f"{cert}.pem: uvcat wrote {out!r} on stdout")
            finally:
                kill_group(srv)
        # Without --cafile the system's store does not know our CA either.
        srv, port = start_s_server(f, "server")
        try:
            rc, out, err = run_uvcat(["--tls", "127.0.0.1", str(port)], b"secret\n")
            check(rc == 1, f"uvcat --tls without --cafile: exit status {rc}, expected 1 ({err!r})")
            one_line_error(err, "uvcat --tls without --cafile")
        finally:
            kill_group(srv)


def case_uvcat_tls_listener_s_client_both_ways():
    if not uvcat_has_tls():
        return
    need_tool("openssl")
    with Certs() as f:
        ours, theirs = tls_text(TLS_DATA), tls_text(TLS_DATA)
        uv, port = start_uvcat_listener("--tls", "--cert", f.path("server.pem"), "--key", f.path("server.key"),
                                        stdin=subprocess.PIPE)
        cl = None
        try:
            # -quiet: no session details, and the end of its stdin is ignored (it reads on).
            cl = spawn(["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile", f.path("ca.pem"),
                        "-servername", "localhost", "-connect", f"127.0.0.1:{port}"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            deadline = time.monotonic() + STEP
            cl.stdin.write(theirs)
            cl.stdin.flush()
            got = read_exact(uv.stdout.fileno(), len(theirs), deadline)
            expect_same(theirs, got, "s_client -> uvcat -l --tls")
            uv.stdin.write(ours)
            uv.stdin.close()  # close_notify after ours: s_client leaves, answering with its own
            read_until_contains(cl.stdout.fileno(), ours, deadline, "uvcat -l --tls -> s_client")
            rc, err = finish(uv, STEP, "uvcat -l --tls")
            check(rc == 0, f"uvcat -l --tls exited {rc}: {err!r}")
            check(uv.stdout.read() == b"", "uvcat -l --tls wrote more than s_client sent")
        finally:
            for p in (uv, cl):
                if p:
                    kill_group(p)


def case_uvcat_tls_bad_arguments_exit_2():
    bad = [
        ["--insecure", "127.0.0.1", "443"],
        ["--cafile", "x.pem", "127.0.0.1", "443"],
        ["--tls", "-u", "127.0.0.1", "443"],
        ["--tls", "--cert", "c.pem", "--key", "k.pem", "127.0.0.1", "443"],
        ["--tls", "--insecure", "--cafile", "x.pem", "127.0.0.1", "443"],
        ["--tls", "--cafile"],
        ["--tls=yes", "127.0.0.1", "443"],
        ["-l", "--tls", "--cert", "c.pem"],
        ["-l", "--tls", "--insecure", "--cert", "c.pem", "--key", "k.pem"],
    ]
    for args in bad:
        rc, out, err = run_uvcat(args, b"", timeout=10)
        check(rc == 2, f"uvcat {args}: exit status {rc}, expected 2")
        one_line_error(err, f"uvcat {args}")
    if uvcat_has_tls():  # a missing certificate file is not a bad argument but a failure
        rc, out, err = run_uvcat(["-l", "--tls", "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"], b"",
                                 timeout=10)
        check(rc == 1, f"missing --cert file: exit status {rc}, expected 1")
        check("/nonexistent.pem" in one_line_error(err, "missing --cert file"), f"message {err!r}")


CASES += [
    ("uvcat_tls_client_s_server_both_ways", case_uvcat_tls_client_s_server_both_ways),
    ("uvcat_tls_client_insecure_accepts_unknown_ca", case_uvcat_tls_client_insecure_accepts_unknown_ca),
    ("uvcat_tls_client_refuses_bad_certificates_exit_1", case_uvcat_tls_client_refuses_bad_certificates_exit_1),
    ("uvcat_tls_listener_s_client_both_ways", case_uvcat_tls_listener_s_client_both_ways),
    ("uvcat_tls_bad_arguments_exit_2", case_uvcat_tls_bad_arguments_exit_2),
]


# ---------------------------------------------------------------- TLS with Python's ssl module, and 64 MiB each way


def need_uvcat_tls():
    if not uvcat_has_tls():
        raise Skipped("uvcat was built without TLS (--tls is refused)")


def case_uvcat_tls_client_python_ssl_server():
    """A Python ssl server (the test certificate) as the peer of `uvcat --tls --cafile ca.pem`:
    what uvcat reads on stdin arrives there, its reply (naming what it got) arrives on uvcat's
    stdout; uvcat's end of stdin is a close_notify the server sees, and uvcat exits 0 after the
    server's own."""
    need_uvcat_tls()
    with Certs() as f:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(f.path("server.pem"), f.path("server.key"))
        ours = tls_text(TLS_DATA)
        reply = b"got %d bytes, sha256 %s\n" % (len(ours), hashlib.sha256(ours).hexdigest().encode())
        result = {}
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.settimeout(STEP)
            port = listener.getsockname()[1]

            def serve():
                try:
                    raw, _ = listener.accept()
                    raw.settimeout(STEP)
                    with ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False) as s:
                        result["version"] = s.version()
                        got = bytearray()
                        while len(got) < len(ours):
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            got += chunk
                        result["got"] = bytes(got)
                        s.sendall(reply)
                        result["end"] = s.recv(65536)  # b"": uvcat's close_notify, nothing more
                        s.unwrap()  # our close_notify back
                except Exception as e:
                    result["error"] = f"{type(e).__name__}: {e}"

            server = threading.Thread(target=serve, daemon=True)
            server.start()
            uv = spawn(uvcat_args("--tls", "--cafile", f.path("ca.pem"), "127.0.0.1", str(port)),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                uv.stdin.write(ours)
                uv.stdin.flush()
                deadline = time.monotonic() + STEP
                got = read_exact(uv.stdout.fileno(), len(reply), deadline)
                check(got == reply, f"uvcat printed {got!r}, expected {reply!r} ({result.get('error')})")
                uv.stdin.close()  # now uvcat sends close_notify
                rc, err = finish(uv, STEP, "uvcat --tls")
                check(rc == 0, f"uvcat --tls exited {rc}: {err!r}")
                check(uv.stdout.read() == b"", "uvcat wrote more than the server sent")
                server.join(timeout=STEP)
                check(not server.is_alive(), "the Python server did not finish")
                check("error" not in result, f"Python server: {result.get('error')}")
                expect_same(ours, result["got"], "uvcat --tls -> Python ssl server")
                check(result["end"] == b"", f"after the data the server read {result['end'][:80]!r}")
                check(result["version"] in ("TLSv1.2", "TLSv1.3"), f"protocol {result['version']}")
            finally:
                kill_group(uv)


MIB64 = 64 * 1024 * 1024


def write_pattern(path, tag, size):
    """`size` bytes of 8-byte big-endian words (tag << 56) | index: a lost, repeated or reordered
    stretch shows which word came instead. Written in 1 MiB pieces; returns the sha256."""
    h = hashlib.sha256()
    words = 1 << 17  # per piece
    with open(path, "wb") as out:
        for first in range(0, size // 8, words):
            piece = struct.pack(f">{words}Q", *range((tag << 56) | first, (tag << 56) | (first + words)))
            h.update(piece)
            out.write(piece)
    return h.hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while piece := f.read(1 << 20):
            h.update(piece)
    return h.hexdigest()


def explain_difference(sent, got, who):
    """Where two pattern files part: the first differing 8-byte word and what it holds."""
    with open(sent, "rb") as a, open(got, "rb") as b:
        offset = 0
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            if x != y:
                i = next((k for k in range(0, min(len(x), len(y)), 8) if x[k:k + 8] != y[k:k + 8]),
                         min(len(x), len(y)))
                word = y[i:i + 8]
                what = (f"word {struct.unpack('>Q', word)[0] & ((1 << 56) - 1)} of direction "
                        f"{word[0]}" if len(word) == 8 else "the end of the data")
                return (f"{who}: sent {os.path.getsize(sent)} bytes, got {os.path.getsize(got)}; first "
                        f"difference at byte {offset + i} (word {(offset + i) // 8}), which holds {what}")
            if not x:
                return f"{who}: the files are the same"
            offset += len(x)


def case_uvcat_tls_64mib_both_ways_uvcat_to_uvcat():
    """`uvcat -l --tls --cert --key` and `uvcat --tls --cafile` move 64 MiB each way at the same
    time, from files and into files; sha256 of what was sent and what arrived, both directions."""
    need_uvcat_tls()
    with Certs() as f:
        sums = {name: write_pattern(f.path(name), tag, MIB64) for name, tag in (("to-client", 1), ("to-server", 2))}
        with open(f.path("to-client"), "rb") as stdin, open(f.path("server-got"), "wb") as stdout:
            srv, port = start_uvcat_listener("--tls", "--cert", f.path("server.pem"), "--key", f.path("server.key"),
                                             stdin=stdin, stdout=stdout)
        cl = None
        try:
            with open(f.path("to-server"), "rb") as stdin, open(f.path("client-got"), "wb") as stdout:
                cl = spawn(uvcat_args("--tls", "--cafile", f.path("ca.pem"), "127.0.0.1", str(port)),
                           stdin=stdin, stdout=stdout)
            rc, err = finish(cl, 4 * STEP, "uvcat --tls")
            check(rc == 0, f"uvcat --tls exited {rc}: {err!r}")
            rc, err = finish(srv, STEP, "uvcat -l --tls")
            check(rc == 0, f"uvcat -l --tls exited {rc}: {err!r}")
            for sent, got, who in (("to-server", "server-got", "uvcat --tls -> uvcat -l --tls"),
                                   ("to-client", "client-got", "uvcat -l --tls -> uvcat --tls")):
                if file_sha256(f.path(got)) != sums[sent]:
                    raise CheckFailed(explain_difference(f.path(sent), f.path(got), who))
        finally:
            for p in (srv, cl):
                if p:
                    kill_group(p)


CASES += [
    ("uvcat_tls_client_python_ssl_server", case_uvcat_tls_client_python_ssl_server),
    ("uvcat_tls_64mib_both_ways_uvcat_to_uvcat", case_uvcat_tls_64mib_both_ways_uvcat_to_uvcat),
]
