"""Cases for examples/uvwatch: real files in a temporary directory, real commands (sh, sleep).

Every wait is for a status line on uvwatch's stderr ("uvwatch: run N started",
"... exited with status S", "... ended by signal S"), bounded by STEP seconds;
the commands append to a log file whose lines are then counted.
"""

import os
import re
import select
import signal
import subprocess
import tempfile
import time

from harness import *  # noqa: F401,F403

STEP = 60  # seconds: the bound of every wait (2 shared cores)


class Watch:
    """A running uvwatch whose stderr is read line by line."""

    def __init__(self, args):
        self.p = subprocess.Popen([binary("uvwatch"), *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.seen = []
        self.buf = b""

    def wait_for(self, pattern, timeout=STEP):
        """Returns the first not yet consumed line matching `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for i, line in enumerate(self.seen):
                if rx.search(line):
                    del self.seen[: i + 1]
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([self.p.stderr.fileno()], [], [], left)
            if not ready:
                break
            chunk = os.read(self.p.stderr.fileno(), 4096)
            if not chunk:
                break
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            self.seen += [l.decode(errors="replace") for l in lines]
        raise CheckFailed(f"uvwatch: no line matching {pattern!r} within {timeout} s; unread: {self.seen!r}")

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=STEP)
        except subprocess.TimeoutExpired:
            raise CheckFailed("uvwatch did not exit after a signal")

    def kill(self):
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.wait(timeout=10)


def lines_of(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def case_uvwatch_runs_at_start_and_after_a_change():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        src, log = os.path.join(d, "src.txt"), os.path.join(d, "log")
        append(src, "v1\n")
        w = Watch(["-d", "50", src, "--", "sh", "-c", f"cat '{src}' >> '{log}'"])
        try:
            w.wait_for(r"^uvwatch: run 1 exited with status 0$")
            check(lines_of(log) == ["v1"], f"first run: {lines_of(log)!r}")
            append(src, "v2\n")
            w.wait_for(r"^uvwatch: run 2 exited with status 0$")
            check(lines_of(log) == ["v1", "v1", "v2"], f"second run saw the change: {lines_of(log)!r}")
            check(w.stop() == 0, "SIGTERM: exit status 0")
        finally:
            w.kill()


def case_uvwatch_a_burst_of_writes_makes_one_run():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        src, log = os.path.join(d, "src.txt"), os.path.join(d, "log")
        append(src, "x")
        w = Watch(["-d", "500", src, "--", "sh", "-c", f"echo run >> '{log}'"])
        try:
            w.wait_for(r"^uvwatch: run 1 exited")
            for i in range(10):
                append(src, str(i))
            w.wait_for(r"^uvwatch: run 2 exited")
            append(src, "again")
            w.wait_for(r"^uvwatch: run 3 exited")
            # Ten writes inside the quiet time made one run, not ten.
            check(len(lines_of(log)) == 3, f"runs: {lines_of(log)!r}")
            check(w.stop() == 0, "exit status 0")
        finally:
            w.kill()


def case_uvwatch_ends_a_run_still_going():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        src, log = os.path.join(d, "src.txt"), os.path.join(d, "log")
        append(src, "x")
        # The run's child (sleep) is in the run's process group: it ends too.
        w = Watch(["-d", "50", src, "--", "sh", "-c", f"echo start >> '{log}'; sleep 60; echo end >> '{log}'"])
        try:
            w.wait_for(r"^uvwatch: run 1 started$")
            deadline = time.monotonic() + STEP
            while lines_of(log) != ["start"] and time.monotonic() < deadline:
                time.sleep(0.05)
            check(lines_of(log) == ["start"], f"run 1 started: {lines_of(log)!r}")
            append(src, "y")
            w.wait_for(r"^uvwatch: ending run 1$")
            w.wait_for(r"^uvwatch: run 1 ended by signal 15$")
            w.wait_for(r"^uvwatch: run 2 started$")
            check(w.stop(signal.SIGINT) == 0, "SIGINT: exit status 0")
            w.wait_for(r"^uvwatch: run 2 ended by signal 15$")
            check("end" not in lines_of(log), f"no run finished its sleep: {lines_of(log)!r}")
        finally:
            w.kill()


def case_uvwatch_sees_a_file_replaced_by_rename():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        src, log = os.path.join(d, "src.txt"), os.path.join(d, "log")
        append(src, "old\n")
        w = Watch(["-d", "50", src, "--", "sh", "-c", f"cat '{src}' >> '{log}'"])
        try:
            w.wait_for(r"^uvwatch: run 1 exited")
            # What editors do: write a temporary, rename it over the file.
            tmp = os.path.join(d, ".src.txt.swp")
            append(tmp, "new\n")
            os.rename(tmp, src)
            w.wait_for(r"^uvwatch: run 2 exited")
            check(lines_of(log)[-1] == "new", f"the new contents: {lines_of(log)!r}")
            # And once more: the watch survived the replacement.
            append(src, "newer\n")
            w.wait_for(r"^uvwatch: run 3 exited")
            check(lines_of(log)[-1] == "newer", f"after the replacement: {lines_of(log)!r}")
            check(w.stop() == 0, "exit status 0")
        finally:
            w.kill()


def case_uvwatch_watches_a_directory():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        watched = os.path.join(d, "dir")
        os.mkdir(watched)
        log = os.path.join(d, "log")
        w = Watch(["-d", "50", watched, "--", "sh", "-c", f"ls '{watched}' | wc -l >> '{log}'"])
        try:
            w.wait_for(r"^uvwatch: run 1 exited")
            append(os.path.join(watched, "new"), "x")
            w.wait_for(r"^uvwatch: change: new$")
            w.wait_for(r"^uvwatch: run 2 exited")
            check([l.strip() for l in lines_of(log)] == ["0", "1"], f"runs: {lines_of(log)!r}")
            check(w.stop() == 0, "exit status 0")
        finally:
            w.kill()


def case_uvwatch_bad_arguments_exit_2():
    for args in ([], ["file"], ["file", "--"], ["--", "true"], ["-d"], ["-d", "x", "f", "--", "true"], ["-q", "f", "--", "true"]):
        status, out, err, _ = run([binary("uvwatch"), *args], timeout=STEP)
        err = err.decode(errors="replace")
        check(status == 2, f"{args!r}: exit status {status}, wanted 2")
        check("usage: uvwatch" in err, f"{args!r}: usage on stderr: {err!r}")


def case_uvwatch_missing_path_or_command_exit_1():
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        missing = os.path.join(d, "missing")
        status, out, err, _ = run([binary("uvwatch"), missing, "--", "true"], timeout=STEP)
        err = err.decode(errors="replace")
        check(status == 1, f"missing path: exit status {status}")
        check(missing in err and "no such file" in err.lower(), f"missing path: {err!r}")
        src = os.path.join(d, "src")
        append(src, "x")
        status, out, err, _ = run([binary("uvwatch"), src, "--", os.path.join(d, "no-such-command")], timeout=STEP)
        err = err.decode(errors="replace")
        check(status == 1, f"missing command: exit status {status}")
        check("no-such-command" in err, f"missing command: {err!r}")


def case_uvwatch_stderr_into_the_watched_directory():
    """uvwatch's own stderr is a file in the directory it watches: each status line is a change.
    It must still answer SIGTERM (a line written per event made an event per line, which libuv
    read before ever waiting again: uvwatch did nothing else, without end)."""
    with tempfile.TemporaryDirectory(prefix="uvwatch-") as d:
        log = os.path.join(d, "log")
        with open(log, "wb") as err:
            p = subprocess.Popen([binary("uvwatch"), d, "--", "true"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + STEP
            while "run 2 started" not in open(log, errors="replace").read():  # a change seen, told, rerun
                check(p.poll() is None, f"uvwatch exited with {p.returncode}")
                check(time.monotonic() < deadline, f"no second run within {STEP} s")
                time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            try:
                status = p.wait(timeout=STEP)
            except subprocess.TimeoutExpired:
                raise CheckFailed(f"still running {STEP} s after SIGTERM; log of {os.path.getsize(log)} bytes")
            check(status == 0, f"exit status {status} after SIGTERM")
            lines = open(log, errors="replace").read().splitlines()
            changes = sum(1 for l in lines if l.startswith("uvwatch: change: "))
            runs = sum(1 for l in lines if " started" in l)
            check(changes <= runs, f"{changes} change lines for {runs} runs: one per quiet time expected")
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)


CASES = [
    ("uvwatch_stderr_into_the_watched_directory", case_uvwatch_stderr_into_the_watched_directory),
    ("uvwatch_runs_at_start_and_after_a_change", case_uvwatch_runs_at_start_and_after_a_change),
    ("uvwatch_a_burst_of_writes_makes_one_run", case_uvwatch_a_burst_of_writes_makes_one_run),
    ("uvwatch_ends_a_run_still_going", case_uvwatch_ends_a_run_still_going),
    ("uvwatch_sees_a_file_replaced_by_rename", case_uvwatch_sees_a_file_replaced_by_rename),
    ("uvwatch_watches_a_directory", case_uvwatch_watches_a_directory),
    ("uvwatch_bad_arguments_exit_2", case_uvwatch_bad_arguments_exit_2),
    ("uvwatch_missing_path_or_command_exit_1", case_uvwatch_missing_path_or_command_exit_1),
]
