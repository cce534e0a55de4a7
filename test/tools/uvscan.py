"""Cases for examples/uvscan: python listening sockets on 127.0.0.1 as the targets.

Open ports are python listeners; closed ports are ports just bound and
released by python. A "timeout" port is a listener with listen(0) whose
accept queue is already full: Linux then drops every further SYN (it neither
answers nor resets), so a connect to it stays pending, as behind a firewall
that drops packets. The bound on connects in flight is checked from outside,
in /proc/net/tcp: the SYN_SENT sockets towards those ports while uvscan runs.
"""

import os
import signal
import socket
import subprocess
import time

from harness import *  # noqa: F401,F403

STEP = 60  # seconds: the bound of every wait


def uvscan(*args, timeout=STEP):
    rc, out, err, _ = run([binary("uvscan"), *args], timeout)
    return rc, out.decode(errors="replace"), err.decode(errors="replace").strip()


def one_line_error(err, who):
    lines = err.splitlines()
    check(len(lines) == 1 and lines[0].startswith("uvscan: "), f"{who}: expected one 'uvscan: ...' line, got {err!r}")
    return lines[0]


def listener(port=0):
    s = socket.socket()
    # Earlier tests leave thousands of loopback connections in TIME_WAIT, each
    # holding its port against a plain bind(); SO_REUSEADDR lets a listener have it.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def window(size, open_offsets):
    """Ports P..P+size-1, listeners on P+offset for each offset, the others closed.

    P comes from a bind to port 0; the neighbours are taken by binding them too
    (retrying elsewhere if one is in use), then the closed ones are released.
    Returns (first port, listeners)."""
    for _ in range(200):
        anchor = listener()
        first = anchor.getsockname()[1]
        if first + size > 65536:
            anchor.close()
            continue
        held = [anchor]
        try:
            for off in range(1, size):
                held.append(listener(first + off))
        except OSError:
            for s in held:
                s.close()
            continue
        keep = []
        for off, s in enumerate(held):
            if off in open_offsets:
                keep.append(s)
            else:
                s.close()
        return first, keep
    raise CheckFailed("found no free window of ports")


def closed_port():
    return free_port()  # bound, then released: nobody listens there


def full_backlog_listener():
    """A listener whose accept queue is full (listen(0), one connection queued and never
    accepted): Linux drops further SYNs. Returns (listener, filler)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    fillers = []
    for _ in range(5):
        c = socket.socket()
        c.settimeout(0.5)
        try:
            c.connect(("127.0.0.1", port))
        except (TimeoutError, socket.timeout):
            c.close()
            return s, fillers  # the SYN was dropped: the queue is full
        fillers.append(c)
    raise CheckFailed("the listen(0) backlog never filled up")


def expected_output(ports_states, host="127.0.0.1", show_all=True):
    lines = [f"{p} {st}" for p, st in sorted(ports_states.items()) if show_all or st == "open"]
    counts = {st: sum(1 for v in ports_states.values() if v == st) for st in ("open", "closed", "timeout")}
    lines.append(
        f"{host}: {len(ports_states)} ports, {counts['open']} open, {counts['closed']} closed, "
        f"{counts['timeout']} timeout, 0 error"
    )
    return "\n".join(lines) + "\n"


def syn_sent_to(ports):
    """The sockets (by inode) in this network namespace in SYN_SENT towards 127.0.0.1:port, port in `ports`."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            remote, st, inode = fields[2], fields[3], fields[9]
            addr, port = remote.split(":")
            if st == "02" and addr == "0100007F" and int(port, 16) in ports:
                found.add(inode)
    return found


# ---------------------------------------------------------------- the cases


def case_uvscan_open_and_closed_exact():
    first, keep = window(12, {0, 3, 4, 11})
    extra = closed_port()
    try:
        states = {first + off: ("open" if off in (0, 3, 4, 11) else "closed") for off in range(12)}
        states[extra] = "closed"
        spec = f"{first}-{first + 11},{extra}"
        for conc in ("1", "200"):
            rc, out, err = uvscan("127.0.0.1", spec, "--all", "--concurrency", conc)
            check(rc == 0, f"-c {conc}: exit status {rc}, stderr {err!r}")
            check(err == "", f"-c {conc}: stderr {err!r}")
            want = expected_output(states)
            check(out == want, f"-c {conc}: output\n{out}expected\n{want}")
        # Without --all: only the open ports, then the summary.
        rc, out, err = uvscan("127.0.0.1", spec, "-c", "5")
        want = expected_output(states, show_all=False)
        check(rc == 0 and out == want, f"default output\n{out}expected\n{want}")
    finally:
        for s in keep:
            s.close()


def case_uvscan_overlapping_ranges_count_once():
    first, keep = window(4, {1})
    try:
        spec = f"{first + 3},{first}-{first + 2},{first + 1}-{first + 3},{first + 1}"
        rc, out, err = uvscan("127.0.0.1", spec, "-a")
        states = {first + off: ("open" if off == 1 else "closed") for off in range(4)}
        want = expected_output(states)
        check(rc == 0 and out == want, f"output\n{out}expected\n{want}")
    finally:
        for s in keep:
            s.close()


def socket_inodes(pid):
    """The inodes of the sockets process `pid` has open (from /proc/PID/fd)."""
    found = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except FileNotFoundError:
        return found
    for name in names:
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            found.add(target[len("socket:["):-1])
    return found


def case_uvscan_timeout_and_bounded_concurrency():
    """Six ports that drop SYNs. With a timeout too long to matter, the connects are held
    pending: uvscan's own SYN_SENT sockets are counted while held and are exactly
    --concurrency (6 with -c 200), again and again. Then, with --timeout 400, each port
    is 'timeout'."""
    targets = [full_backlog_listener() for _ in range(6)]
    try:
        ports = {s.getsockname()[1] for s, _ in targets}
        spec = ",".join(str(p) for p in ports)
        for conc, most in (("1", 1), ("2", 2), ("200", 6)):
            p = subprocess.Popen([binary("uvscan"), "127.0.0.1", spec, "-a", "-c", conc, "-t", "600000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            try:
                # Held: nothing completes, so the count can only grow to its bound and stay.
                deadline = time.monotonic() + STEP
                held = set()
                while len(held) < most:
                    check(p.poll() is None, f"-c {conc}: uvscan exited {p.returncode} while its connects are held")
                    check(time.monotonic() < deadline, f"-c {conc}: {len(held)} connects in flight, expected {most}")
                    time.sleep(0.01)
                    held = syn_sent_to(ports) & socket_inodes(p.pid)
                counts = set()
                for _ in range(20):  # each count is of held connects: it cannot change unless uvscan starts more
                    counts.add(len(syn_sent_to(ports) & socket_inodes(p.pid)))
                    time.sleep(0.01)
                check(counts == {most}, f"-c {conc}: counted {sorted(counts)} connects in flight, expected {most}")
                p.send_signal(signal.SIGTERM)
                out, err = p.communicate(timeout=STEP)
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            check(p.returncode == 0, f"-c {conc}: exit status {p.returncode} after SIGTERM, stderr {err!r}")
            check("interrupted" in out.decode(), f"-c {conc}: output {out.decode()!r}")
        rc, out, err = uvscan("127.0.0.1", spec, "-a", "-c", "2", "-t", "400")
        check(rc == 0, f"--timeout 400: exit status {rc}, stderr {err!r}")
        want = expected_output({port: "timeout" for port in ports})
        check(out == want, f"--timeout 400: output\n{out}expected\n{want}")
    finally:
        for s, fillers in targets:
            for c in fillers:
                c.close()
            s.close()


def case_uvscan_sigterm_mid_scan_exit_0():
    for sig in (signal.SIGTERM, signal.SIGINT):
        s, fillers = full_backlog_listener()
        try:
            port = s.getsockname()[1]
            p = subprocess.Popen([binary("uvscan"), "127.0.0.1", str(port), "-t", "600000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            try:
                deadline = time.monotonic() + STEP
                while not syn_sent_to({port}):  # its connect is pending
                    check(p.poll() is None, f"uvscan exited {p.returncode} before the signal")
                    check(time.monotonic() < deadline, "uvscan never started connecting")
                    time.sleep(0.01)
                p.send_signal(sig)
                out, err = p.communicate(timeout=STEP)
            finally:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            check(p.returncode == 0, f"{sig.name}: exit status {p.returncode}, stderr {err!r}")
            want = "127.0.0.1: 0 ports, 0 open, 0 closed, 0 timeout, 0 error (interrupted, 1 not scanned)\n"
            check(out.decode() == want, f"{sig.name}: output {out.decode()!r}, expected {want!r}")
        finally:
            for c in fillers:
                c.close()
            s.close()


def case_uvscan_unknown_host_exit_1():
    rc, out, err = uvscan("no-such-host.invalid", "80")
    check(rc == 1, f"exit status {rc}, expected 1")
    line = one_line_error(err, "uvscan")
    check("no-such-host.invalid" in line, f"message {line!r}")
    check(out == "", f"output {out!r}")


def case_uvscan_bad_arguments_exit_2():
    bad = [
        [],
        ["127.0.0.1"],
        ["127.0.0.1", ""],
        ["127.0.0.1", "0"],
        ["127.0.0.1", "65536"],
        ["127.0.0.1", "10-5"],
        ["127.0.0.1", "1-"],
        ["127.0.0.1", "-5"],
        ["127.0.0.1", "1-2-3"],
        ["127.0.0.1", "80,,81"],
        ["127.0.0.1", "80,"],
        ["127.0.0.1", "http"],
        ["127.0.0.1", " 80"],
        ["127.0.0.1", "80", "extra"],
        ["127.0.0.1", "80", "--concurrency", "0"],
        ["127.0.0.1", "80", "--concurrency", "10001"],
        ["127.0.0.1", "80", "-c"],
        ["127.0.0.1", "80", "--timeout", "0"],
        ["127.0.0.1", "80", "-t", "1s"],
        ["127.0.0.1", "80", "--bogus"],
        ["", "80"],
    ]
    for args in bad:
        rc, out, err = uvscan(*args, timeout=10)
        check(rc == 2, f"uvscan {args}: exit status {rc}, expected 2")
        line = one_line_error(err, f"uvscan {args}")
        check("--help" in line, f"uvscan {args}: message {line!r} does not point to --help")
        check(out == "", f"uvscan {args} wrote on stdout")
    rc, out, err = uvscan("--help", timeout=10)
    check(rc == 0 and "usage: uvscan" in out and err == "", f"--help: status {rc}, stderr {err!r}")


CASES = [
    ("uvscan_open_and_closed_exact", case_uvscan_open_and_closed_exact),
    ("uvscan_overlapping_ranges_count_once", case_uvscan_overlapping_ranges_count_once),
    ("uvscan_timeout_and_bounded_concurrency", case_uvscan_timeout_and_bounded_concurrency),
    ("uvscan_sigterm_mid_scan_exit_0", case_uvscan_sigterm_mid_scan_exit_0),
    ("uvscan_unknown_host_exit_1", case_uvscan_unknown_host_exit_1),
    ("uvscan_bad_arguments_exit_2", case_uvscan_bad_arguments_exit_2),
]
