"""Issue 4, item 6: SIGINT and SIGTERM, through the installed console script.

- In every plane (data: a hung Redis; control: a hung Consul, after a passing data plane or
  with the data plane left out by --only; execution: a runtime check made slow), SIGINT ends
  the run with 130 and SIGTERM with 143 within one second, and `boot` never starts the runtime
  (the runtime writes a marker file if it ever runs).
- A second SIGINT while the first one's cleanup runs ends the run at once.
- A SIGTERM while the report is being written: when the reader keeps reading, the document is
  written whole and then the run ends 143 (-o json is never cut in half); when the reader is
  stuck, the run still ends 143 within one second. Never a traceback.

Canaries cleaned up on SIGINT/SIGTERM mid-canary: test_leftovers.py::
test_interrupt_while_the_canary_writes_are_in_flight (both signals).

The execution plane's checks are local (PATH lookup, a port bind): nothing on this machine
can make them slow for real (it would take a PATH entry on a hung network filesystem), so a
sitecustomize makes shutil.which stall for the runtime's name, as such a mount would.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import _start_redis
from tests.support import PLATCTL, clean_env, write_profile
from tests.test_leftovers import HoldingRelay, _close, redis_batch

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
MESSAGES = {signal.SIGINT: "platctl: interrupted (SIGINT)",
            signal.SIGTERM: "platctl: terminated (SIGTERM)"}
TRACEBACK = "Traceback (most recent call last)"
RUNTIME = "platctl-test-runtime"  # a name, not a path: boot and runtime.command look it up on PATH
SLOW_WHICH = """\
import shutil, time
_which = shutil.which
def which(cmd, *args, **kw):
    if cmd == {name!r}:  # a PATH entry on a hung network filesystem
        open({entered!r}, "w").close()
        time.sleep(60)
    return _which(cmd, *args, **kw)
shutil.which = which
"""


@contextmanager
def stall():
    """A TCP server that accepts and never answers; `accepted` is set at the first connection,
    when the check is waiting inside its step."""
    srv = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    conns: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conns.append(srv.accept()[0])
            except OSError:
                return
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield srv.getsockname()[1], accepted
    finally:
        for s in (srv, *conns):
            _close(s)  # shutdown first: it wakes the accept() above


class Env:
    """A runtime that leaves a marker when it runs, on PATH under RUNTIME."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.marker = tmp, tmp / "runtime-ran"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        script = bin_dir / RUNTIME
        script.write_text(f"#!/bin/sh\ntouch {self.marker}\n")
        script.chmod(0o755)
        self.vars = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def slow_which(self) -> Path:
        """shutil.which stalls for the runtime; returns the file it creates when it does."""
        entered = self.tmp / "which-entered"
        site = self.tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SLOW_WHICH.format(name=RUNTIME,
                                                                 entered=str(entered)))
        self.vars["PYTHONPATH"] = str(site)
        return entered

    def profile(self, **sections) -> Path:
        return write_profile(self.tmp, duckdb={"path": str(self.tmp / "duck" / "p.duckdb")},
                             execution={"command": RUNTIME}, **sections)


def wait_for(cond, timeout: float = 30.0,  # noqa: ANN001
             what: str = "platctl never reached the point to interrupt") -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, what
        time.sleep(0.01)


def interrupt(p: subprocess.Popen, sig: int, ready) -> tuple[float, str, str]:  # noqa: ANN001
    """Wait until `ready()`, send `sig`, return (seconds from signal to exit, out, err)."""
    try:
        wait_for(ready)
        t0 = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
        return time.monotonic() - t0, out, err
    finally:
        p.kill()
        p.wait(10)


PLANES = {
    # plane: (--only ..., which server stalls)
    "data": (("redis", "runtime"), "redis"),
    "control-after-data": (("duckdb", "consul", "runtime"), "consul"),
    "control-alone": (("consul", "runtime"), "consul"),
    "execution": (("duckdb", "runtime"), "which"),
}


# boot in every plane; validate (the same runner, no exec) in the first and the last
CASES = [(plane, sig, cmd) for plane in PLANES for sig in (signal.SIGINT, signal.SIGTERM)
         for cmd in ("boot", "validate") if cmd == "boot" or plane in ("data", "execution")]


@pytest.mark.parametrize("plane,sig,command", CASES,
                         ids=[f"{p}-{s.name}-{c}" for p, s, c in CASES])
def test_a_signal_in_any_plane_ends_the_run_within_a_second(tmp_path, plane, sig, command):
    env = Env(tmp_path)
    only, stalled = PLANES[plane]
    with stall() as (port, accepted):
        if stalled == "which":
            entered = env.slow_which()
            ready = entered.exists
        else:
            ready = accepted.is_set
        url = {"redis": {"url": f"redis://127.0.0.1:{port}/0"},
               "consul": {"url": f"http://127.0.0.1:{port}"}}.get(stalled)
        profile = env.profile(**({stalled: url} if url else {}))
        p = subprocess.Popen([PLATCTL, command, "-p", str(profile), "--timeout", "30",
                              *(f"--only={s}" for s in only)], env=env.vars,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        elapsed, out, err = interrupt(p, sig, ready)
    assert p.returncode == CODES[sig], out + err
    assert elapsed < 1.0, f"signal -> exit took {elapsed:.3f} s"
    assert MESSAGES[sig] in err and TRACEBACK not in out + err
    assert not env.marker.exists(), "boot started the runtime after a signal"
    print(f"\n{plane} {sig.name} {command}: exit {p.returncode} after {elapsed * 1000:.0f} ms")


def test_boot_hands_the_runtime_its_signals_unblocked(tmp_path):
    """Before exec, boot blocks SIGINT/SIGTERM for an instant (so that one arriving then ends
    platctl instead of being lost in the exec); the runtime must get them unblocked, and
    not ignored: the runtime reports its own signal masks."""
    env = Env(tmp_path)
    script = tmp_path / "bin" / RUNTIME
    script.write_text(f"#!/bin/sh\ngrep -E '^Sig(Blk|Ign)' /proc/self/status > {env.marker}\n")
    proc = subprocess.run([PLATCTL, "boot", "-p", str(env.profile()), "--only", "duckdb",
                           "--only", "runtime"], env=env.vars, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    masks = dict(line.split(":") for line in env.marker.read_text().splitlines())
    for name, value in masks.items():
        bits = int(value.strip(), 16)
        for sig in (signal.SIGINT, signal.SIGTERM):
            assert not bits >> (sig - 1) & 1, f"{sig.name} is in the runtime's {name}"


# -- a second SIGINT during the first one's cleanup ---------------------------------------------
PASSWORD = "signals-redis-pw"


@pytest.fixture(scope="module")
def signals_redis(tmp_path_factory):
    server = _start_redis(tmp_path_factory.mktemp("redis-signals"), "--requirepass", PASSWORD)
    yield server
    server.proc.terminate()
    server.proc.wait(10)


def wait_delivered(pid: int, sig: int, timeout: float = 2.0) -> None:
    """Until `sig` is no longer pending for process `pid` (/proc/PID/status SigPnd, ShdPnd)."""
    bit = 1 << (sig - 1)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(f"/proc/{pid}/status") as f:
            masks = {k: int(v, 16) for k, _, v in (ln.partition(":\t") for ln in f)
                     if k in ("SigPnd", "ShdPnd")}
        if not any(m & bit for m in masks.values()):
            return
        time.sleep(0.005)
    raise AssertionError(f"signal {sig} still pending after {timeout} s")


def test_a_second_sigint_during_cleanup_ends_the_run_at_once(tmp_path, signals_redis):
    """The first SIGINT comes while the Redis canary write is stalled at the server: the
    runner waits up to CLEANUP_WAIT (0.5 s) for it. The second, 0.1 s later, ends the run at
    once: 130, no traceback. The canary is gone anyway (its DEL was in the same write)."""
    import redis

    env = Env(tmp_path)
    with HoldingRelay(signals_redis.port, redis_batch(b"SET")) as relay:
        profile = env.profile(redis={"url": f"redis://:{PASSWORD}@127.0.0.1:{relay.port}/0"})
        p = subprocess.Popen([PLATCTL, "validate", "-p", str(profile), "--only", "redis",
                              "--timeout", "30"], env=env.vars, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            assert relay.seen.wait(30)
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            # Two SIGINTs still pending together are one signal to the kernel: send the
            # second only once the first has been delivered (on a loaded CPU that can lag).
            wait_delivered(p.pid, signal.SIGINT)
            time.sleep(0.1)
            t0 = time.monotonic() - 0.1
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            p.kill()
            p.wait(10)
        relay.release.set()
        assert relay.settled.wait(5)
    assert p.returncode == 130 and TRACEBACK not in out + err
    assert elapsed < 0.4, f"the second SIGINT did not cut the cleanup wait ({elapsed:.3f} s)"
    keys = list(redis.Redis(port=signals_redis.port, password=PASSWORD).scan_iter("platctl:*"))
    assert keys == []
    print(f"\nsecond SIGINT: exit 130 after {elapsed * 1000:.0f} ms from the first")


# -- SIGTERM while the report is being written ----------------------------------------------
PIPE_SIZE = 4096  # one page: the smallest pipe Linux makes
F_SETPIPE_SZ = 1031  # linux/fcntl.h


def small_pipe(filler: int) -> tuple[int, int]:
    """A one-page pipe already holding `filler` bytes."""
    r, w = os.pipe()
    assert fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_SIZE) == PIPE_SIZE
    os.write(w, b"#" * filler)
    return r, w


def pending(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def blocked_writing_a_pipe(pid: int) -> bool:
    """The process's main thread sleeps in the kernel's pipe write (Linux)."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("reader", ["reading", "stuck"])
@pytest.mark.parametrize("command", ["validate", "boot"])
def test_sigterm_while_the_report_is_written(tmp_path, command, reader):
    """validate writes its report to stdout, boot to stderr (the runtime owns stdout), into a
    one-page pipe whose reader has not read yet; SIGTERM comes while platctl is blocked
    writing it. validate: a failing --keep-going run, whose report (about 10 KB) is cut after
    its first page. boot: a passing run (its report would be followed by the exec), blocked
    before its first byte by a pipe already full, so that nothing, not even the "terminated"
    line, can get out while the reader is stuck."""
    env = Env(tmp_path)
    if command == "validate":
        args, filler = ["--keep-going"], 0  # every other service refuses: a long report
        ready = lambda: pending(r) == PIPE_SIZE and blocked_writing_a_pipe(p.pid)  # noqa: E731
    else:
        args, filler = ["--only", "duckdb", "--only", "runtime"], PIPE_SIZE
        ready = lambda: blocked_writing_a_pipe(p.pid)  # noqa: E731
    r, w = small_pipe(filler)
    streams = {"stdout": w, "stderr": subprocess.PIPE} if command == "validate" else \
        {"stdout": subprocess.PIPE, "stderr": w}
    p = subprocess.Popen([PLATCTL, command, "-p", str(env.profile()), "-o", "json", *args],
                         env=env.vars, **streams)
    os.close(w)
    try:
        wait_for(ready)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        if reader == "reading":
            written = read_all(r)
            p.wait(10)
        else:
            wait_for(lambda: p.poll() is not None, 5, "platctl still runs 5 s after SIGTERM")
        elapsed = time.monotonic() - t0
        if reader == "stuck":
            written = read_all(r)
        other = (p.stderr if command == "validate" else p.stdout).read().decode()
    finally:
        p.kill()
        p.wait(10)
        os.close(r)
    text = written.lstrip("#")
    assert p.returncode == 143, text + other
    assert elapsed < 1.0, f"signal -> exit took {elapsed:.3f} s"
    assert TRACEBACK not in text + other
    assert not env.marker.exists(), "boot started the runtime after a signal"
    if reader == "reading":  # the whole document, then (boot: on the same stream) the message
        doc, end = json.JSONDecoder().raw_decode(text)
        assert doc["schema"] == "platctl.report/v1" and doc["ok"] is (command == "boot")
        rest = text[end:] + (other if command == "validate" else "")
        assert rest.strip() == MESSAGES[signal.SIGTERM], rest
    else:  # whatever got out is the start of the document, cut where the reader stopped
        assert text == "" or text.startswith("{") and not text.rstrip().endswith("}")
    print(f"\n{command} {reader}: exit 143 after {elapsed * 1000:.0f} ms, {len(text)} bytes out")
