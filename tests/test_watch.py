"""`validate --watch`: a real redis-server goes down and comes back while platctl watches;
status changes, flaps and the summary are asserted, in-process with a fake clock and through
the installed CLI ended by SIGINT/SIGTERM."""
from __future__ import annotations

import io as stdio
import json
import queue
import re
import signal
import subprocess
import threading
import time
from datetime import datetime

import pytest

from platctl import io
from platctl.commands.validate import Request
from platctl.commands.watch import watch
from tests.support import PLATCTL, Terminal, clean_env, free_port, platctl, write_profile


class Redis:
    """A redis-server on a fixed port that can be stopped and started again."""

    def __init__(self, tmp_path) -> None:
        self.port, self.dir, self.proc = free_port(), tmp_path, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.proc.poll() is None and subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                    text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path)
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


def request(profile, output="table") -> Request:
    return Request(str(profile), output, 2.0, ("redis",), (), False, False, False)


def test_down_and_back_with_a_fake_clock(tmp_path, redis):
    """Round 1 passes; the server is killed during the first sleep, so round 2 fails; it is
    started again during the second sleep, so round 3 passes; Ctrl-C during the third."""
    profile = write_profile(tmp_path, redis={"url": redis.url})
    out = stdio.StringIO()
    io.streams = io.Streams(out=out, err=stdio.StringIO(), env=clean_env())
    t = [1000.0]
    slept: list[float] = []
    actions = [redis.stop, redis.start]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        t[0] += seconds
        if not actions:
            raise KeyboardInterrupt
        actions.pop(0)()

    code = watch(request(profile), 5.0, clock=lambda: t[0], sleep=sleep,
                 now=lambda: datetime(2030, 1, 1, 12, 0, int(t[0]) % 60))
    text = out.getvalue()
    assert code == 0, text  # ended by Ctrl-C, the last round was ready
    assert slept == [5.0, 5.0, 5.0]  # rounds start `interval` apart on the injected clock
    rounds = re.findall(r"round (\d): (ready|NOT READY);", text)
    assert rounds == [("1", "ready"), ("2", "NOT READY"), ("3", "ready")]
    assert re.search(r"redis\.ping: pass → fail: .*refused", text), text
    assert "redis.ping: fail → pass: PONG" in text
    assert "redis.canary: pass → skip: not run: redis.ping failed" in text
    summary = text[text.index("watch summary"):]
    assert summary.splitlines()[0] == ("watch summary: profile test, 3 rounds every 5 s, ended"
                                       " by Ctrl-C; last round: ready")
    assert re.search(r"^redis\.ping +3 +1 +2 +pass +[\d.]+ ms$", summary, re.M), summary
    # skipped while the server was down: 2 rounds run, no failure, no flap
    assert re.search(r"^redis\.canary +2 +0 +0 +pass +[\d.]+ ms$", summary, re.M), summary


def read_lines(proc) -> "queue.Queue[str]":
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # end of output
    threading.Thread(target=pump, daemon=True).start()
    return lines


def rest_of(lines: queue.Queue) -> str:
    out = []
    while (line := lines.get(timeout=10)) is not None:
        out.append(line)
    return "".join(out)


def wait_for(lines: queue.Queue, pattern: str, seen: list[str], timeout: float = 20) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


@pytest.mark.parametrize("sig,code,ended", [(signal.SIGINT, 0, "Ctrl-C"),
                                            (signal.SIGTERM, 143, "SIGTERM")])
def test_cli_watch_sees_redis_go_down_and_come_back(tmp_path, redis, sig, code, ended):
    profile = write_profile(tmp_path, redis={"url": redis.url})
    proc = subprocess.Popen([PLATCTL, "validate", "-p", str(profile), "--only", "redis",
                             "--timeout", "1", "--watch", "0.3"], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines, seen = read_lines(proc), []
        wait_for(lines, r"round \d+: ready", seen)
        redis.stop()
        wait_for(lines, r"redis\.ping: pass → fail", seen)
        redis.start()
        wait_for(lines, r"redis\.ping: fail → pass", seen)
        wait_for(lines, r"round \d+: ready", seen)
        proc.send_signal(sig)
        t0 = time.monotonic()
        proc.wait(10)
        took = time.monotonic() - t0
        rest, err = rest_of(lines), proc.stderr.read()
    finally:
        proc.kill()
    assert proc.returncode == code, "".join(seen) + rest + err
    assert took < 2, took
    assert "Traceback" not in err
    summary = rest[rest.index("watch summary"):]
    assert f"ended by {ended}; last round: ready" in summary.splitlines()[0]
    row = re.search(r"^redis\.ping +(\d+) +(\d+) +(\d+) +pass ", summary, re.M)
    assert row, summary
    rounds, failures, flaps = map(int, row.groups())
    assert flaps == 2 and failures >= 1 and rounds >= failures + 2


def test_watch_on_a_terminal_is_a_live_dashboard(tmp_path, redis):
    profile = write_profile(tmp_path, redis={"url": redis.url})
    env = clean_env(COLUMNS="120", TERM="xterm", NO_COLOR="1")
    with Terminal() as term:
        proc = subprocess.Popen([PLATCTL, "validate", "-p", str(profile), "--only", "redis",
                                 "--watch", "0.2"], env=env, stdout=term.fd, stderr=term.fd,
                                stdin=subprocess.DEVNULL)
        term.release()
        try:
            deadline = time.monotonic() + 20
            # the header of a finished round 3 (while it runs, it says "running…")
            while "round 3 every 0.2 s · ready" not in term.text() \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        finally:
            proc.kill()
    screen = term.text()
    assert proc.returncode == 0, screen
    assert "platctl watch · profile test · round 3 every 0.2 s · ready" in screen
    assert "\x1b[" in screen  # redrawn in place: cursor movement, not appended lines
    assert re.search(r"✓ pass +redis\.ping +\d+ ms", screen), screen
    assert "watch summary: profile test" in screen


def test_json_watch_prints_one_report_per_line(tmp_path, redis):
    profile = write_profile(tmp_path, redis={"url": redis.url})
    out, err = stdio.StringIO(), stdio.StringIO()
    io.streams = io.Streams(out=out, err=err, env=clean_env())
    assert watch(request(profile, "json"), 0.01, max_rounds=2) == 0
    reports = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["ok"] for r in reports] == [True, True]
    assert "round 2: ready" in err.getvalue() and "watch summary" in err.getvalue()


def test_watch_refuses_junit_and_github():
    proc = platctl("validate", "--watch", "1", "-o", "junit")
    assert proc.returncode == 2 and "--watch shows a dashboard" in proc.stderr
