"""Issue 5: `--wait DURATION`, through the installed console script against real servers.

- Redis started 3 s after `boot --wait 20s`: the runtime then runs, with boot's own PID.
- Transient classes are waited out (refused, Consul without a leader, HTTP 5xx); permanent
  ones (wrong password, TLS verification, a forbidden token) end the wait at once, exit 1.
- The deadline passes with a refused or a hung service: exit 124 within deadline + 1 s, not
  before the deadline, the last report printed whole.
- SIGINT/SIGTERM during the pause between attempts: 130/143 within a second, no exec.
- Progress: one plain line per attempt off a terminal, a live status line on one.
"""
from __future__ import annotations

import json
import queue
import random
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from platctl.commands import wait
from platctl.result import TRANSIENT, Reason
from tests.conftest import REDIS_PASSWORD
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator
from tests.support import (CLOSED, PLATCTL, RuntimeStandIn, Terminal, clean_env, free_port,
                           hung_server, write_profile)

TRACEBACK = "Traceback (most recent call last)"
RUNTIME = "platctl-wait-runtime"


class Runtime(RuntimeStandIn):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, RUNTIME)


def start_redis_later(tmp: Path, port: int, delay: float, started: list) -> threading.Timer:
    def start() -> None:
        started.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(tmp), "--requirepass", REDIS_PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    timer = threading.Timer(delay, start)
    timer.start()
    return timer


def first_json(text: str) -> dict:
    """The report in a stream that may hold other lines after it (boot's stderr)."""
    return json.JSONDecoder().raw_decode(text, text.index("{\n"))[0]


def timed(args: list[str], env: dict[str, str], timeout: float = 60):
    t0 = time.monotonic()
    proc = subprocess.run([PLATCTL, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    return proc, time.monotonic() - t0


# -- the pure parts: backoff and the transient/permanent split ---------------------------------
def test_backoff_is_jittered_exponential_and_capped():
    rng = random.Random(5)
    for attempt in range(1, 40):
        draws = [wait.backoff(attempt, rng) for _ in range(300)]
        ceiling = min(wait.CAP, wait.BASE * 2 ** (attempt - 1))
        assert all(wait.FLOOR <= d <= max(wait.FLOOR, ceiling) for d in draws)
        if ceiling > 4 * wait.FLOOR:
            assert len({round(d, 3) for d in draws}) > 100  # jittered, not a fixed interval
            assert max(draws) > 0.8 * ceiling  # and it does grow to the cap
    assert wait.CAP <= 5  # a service that came up is noticed within seconds


def test_only_the_documented_classes_are_waited_out():
    waited = {r.value for r in TRANSIENT}
    assert waited == {"refused", "timeout", "dns", "reset", "server", "unavailable"}
    permanent = {r.value for r in Reason} - waited
    assert {"auth", "forbidden", "tls", "missing", "config", "internal"} <= permanent


# -- must-show: Redis comes up 3 s after boot --wait 20s ----------------------------------------
def test_boot_waits_for_redis_and_becomes_the_runtime(tmp_path):
    rt = Runtime(tmp_path)
    port = free_port()
    profile = rt.profile(redis={"url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"})
    started: list[subprocess.Popen] = []
    t0 = time.monotonic()
    p = subprocess.Popen([PLATCTL, "boot", "-p", str(profile), "--wait", "20s",
                          "--only", "redis", "--only", "runtime"], env=rt.vars,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = start_redis_later(tmp_path, port, 3.0, started)
    try:
        out, err = p.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
        p.kill()
        for s in started:
            s.kill()
            s.wait(10)
    assert p.returncode == 0, out + err
    assert out.strip() == f"runtime pid {p.pid}", "the runtime must be boot's own process"
    assert started, "redis was never started"
    # refused, or timed out when a loaded machine stretches start-up past --timeout
    assert re.search(r"platctl: attempt 1: redis\.\w+ (refused|timeout) \(transient\); retrying in"
                     r" \d+\.\d s, \d+\.\d s left", err), err
    assert re.search(r"platctl: ready after \d+ attempts", err), err
    assert 3.0 <= elapsed < 3.0 + wait.CAP + 5.0, elapsed  # noticed within one capped pause
    assert REDIS_PASSWORD not in out + err and TRACEBACK not in err
    attempts = len(re.findall("retrying in", err))
    print(f"\nredis up at 3 s: runtime pid {p.pid} after {elapsed:.2f} s, {attempts + 1} attempts")


# -- transient classes other than refused are waited out ----------------------------------------
@pytest.mark.parametrize("condition", ["no_leader", "http500"])
def test_consul_without_leader_or_5xx_is_waited_out(tmp_path, condition):
    with ConsulEmulator() as emu:
        if condition == "no_leader":
            emu.leader = ""
        else:
            emu.fault = "http500"
        profile = write_profile(tmp_path, consul={"url": emu.url, "token": GOOD_TOKEN})

        def recover() -> None:
            emu.leader, emu.fault = "10.0.0.10:8300", "none"
        timer = threading.Timer(2.0, recover)
        timer.start()
        try:
            proc, elapsed = timed(["validate", "-p", str(profile), "--only", "consul",
                                   "--wait", "30s", "-o", "json"], clean_env())
        finally:
            timer.cancel()
    reason = "unavailable" if condition == "no_leader" else "server"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"consul.leader {reason} (transient)" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True  # the report of the passing attempt
    assert 2.0 <= elapsed < 2.0 + wait.CAP + 5.0


# -- must-show: permanent failures end the wait at once -----------------------------------------
def test_wrong_password_ends_a_60s_wait_in_under_2s(tmp_path, redis_server):
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url(password="wrong-password-4242")})
    for command in ("validate", "boot"):
        proc, elapsed = timed([command, "-p", str(profile), "--wait", "60s", "--only", "redis",
                               "--only", "runtime", "-o", "json"], rt.vars)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        report = first_json(proc.stderr if command == "boot" else proc.stdout)
        # Under 2 s, both from platctl's launch to the verdict (the report's duration: the
        # first plane's clock starts at launch) and on the wall clock (the bound;
        # ~0.7 s on a quiet machine, interpreter start-up included).
        assert report["duration_ms"] < 2000, f"{command}: gave up after {report['duration_ms']} ms"
        assert elapsed < 2.0, f"{command}: exit 1 after {elapsed:.2f} s (wall)"
        assert "retrying" not in proc.stderr  # not a single retry
        assert re.search(r"not waiting any longer: redis\.ping failed \(.*password.*\);"
                         r" auth is not transient", proc.stderr), proc.stderr
        assert "wrong-password-4242" not in proc.stdout + proc.stderr
        print(f"\n{command} wrong password --wait 60s: exit 1, {report['duration_ms']:.0f} ms"
              f" from launch, {elapsed:.2f} s wall")
    assert not rt.ran


@pytest.mark.parametrize("case", ["tls_verification", "forbidden_token"])
def test_other_permanent_classes_end_the_wait(tmp_path, case, redis_tls, tls_certs):
    if case == "tls_verification":  # a CA that did not sign the server's certificate
        profile = write_profile(tmp_path, tls={"ca_file": str(tls_certs["other_ca"])},
                                redis={"url": redis_tls.url()})
        only, reason = "redis", "tls"
        proc, elapsed = timed(["validate", "-p", str(profile), "--wait", "60s", "--only", only],
                              clean_env())
    else:
        with ConsulEmulator() as emu:
            profile = write_profile(tmp_path, consul={
                "url": emu.url, "token": "0badc0de-dead-beef-0000-123456789abc"})
            only, reason = "consul", "auth"
            proc, elapsed = timed(["validate", "-p", str(profile), "--wait", "60s",
                                   "--only", only], clean_env())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert elapsed < 5.0 and "retrying" not in proc.stderr  # one attempt, then the verdict
    assert f"{reason} is not transient" in proc.stderr, proc.stderr


# -- must-show: the deadline passes -------------------------------------------------------------
@pytest.mark.parametrize("command", ["validate", "boot"])
@pytest.mark.parametrize("peer", ["refused", "hung"])
def test_deadline_passes_exit_124_within_a_second_of_it(tmp_path, peer, command):
    rt = Runtime(tmp_path)
    with hung_server() as port:
        addr = CLOSED if peer == "refused" else f"127.0.0.1:{port}"
        profile = rt.profile(redis={"url": f"redis://{addr}/0"})
        proc, elapsed = timed([command, "-p", str(profile), "--wait", "3s", "--timeout", "1",
                               "--only", "redis", "--only", "runtime", "-o", "json"], rt.vars)
    assert proc.returncode == 124, proc.stdout + proc.stderr
    assert 3.0 <= elapsed < 4.0, f"exit 124 after {elapsed:.2f} s (deadline 3 s)"
    report = first_json(proc.stderr if command == "boot" else proc.stdout)  # boot: stderr
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    # A refused port can be reported as timed out when a loaded machine stretches start-up
    # past --timeout 1 (the first plane's clock starts at launch): both are transient.
    reason = "(refused|timeout)" if peer == "refused" else "timeout"
    assert report["ok"] is False and len(failed) == 1 and failed[0]["service"] == "redis"
    assert re.fullmatch(reason, failed[0]["reason"]), failed
    assert {c["id"] for c in report["checks"]} >= {"redis.ping", "runtime.command"}
    assert re.search(rf"--wait deadline \(3 s\) passed after \d+ attempts?; still failing:"
                     rf" redis\.\w+ {reason}", proc.stderr), proc.stderr
    assert not rt.ran and TRACEBACK not in proc.stderr
    print(f"\n{command} {peer} --wait 3s --timeout 1: exit 124 after {elapsed:.2f} s")


def test_a_timeout_longer_than_the_wait_is_clipped(tmp_path):
    """--timeout 30 against a hung Redis with --wait 2s: 124 by 3 s, not after 30."""
    with hung_server() as port:
        profile = write_profile(tmp_path, redis={"url": f"redis://127.0.0.1:{port}/0"})
        proc, elapsed = timed(["validate", "-p", str(profile), "--wait", "2s", "--timeout", "30",
                               "--only", "redis"], clean_env())
    assert proc.returncode == 124 and 2.0 <= elapsed < 3.0, (elapsed, proc.stderr)


# -- must-show: signals during the pause between attempts ---------------------------------------
def lines(stream) -> queue.Queue:  # noqa: ANN001
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_waiting_ends_the_run_and_never_execs(tmp_path, sig):
    """The signal is sent as soon as platctl announces a pause of at least a second, so it
    lands in that pause (the refused attempt before it took milliseconds)."""
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": f"redis://{CLOSED}/0"})
    p = subprocess.Popen([PLATCTL, "boot", "-p", str(profile), "--wait", "60s",
                          "--only", "redis", "--only", "runtime"], env=rt.vars,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        q, seen = lines(p.stderr), []
        while True:
            line = q.get(timeout=60)
            assert line is not None, "".join(seen)
            seen.append(line)
            m = re.search(r"retrying in (\d+\.\d) s", line)
            if m and float(m.group(1)) >= 1.0:
                break
        t0 = time.monotonic()
        p.send_signal(sig)
        p.wait(10)
        elapsed = time.monotonic() - t0
        rest = []
        while (line := q.get(timeout=10)) is not None:
            rest.append(line)
    finally:
        p.kill()
        p.wait(10)
    code, word = (143, "terminated (SIGTERM)") if sig == signal.SIGTERM else \
        (130, "interrupted (SIGINT)")
    assert p.returncode == code, "".join(seen + rest)
    assert elapsed < 1.0, f"signal -> exit took {elapsed:.3f} s"
    assert f"platctl: {word}" in "".join(rest) and TRACEBACK not in "".join(seen + rest)
    assert not rt.ran, "boot started the runtime after a signal"
    print(f"\n{sig.name} in the pause: exit {code} after {elapsed * 1000:.0f} ms")


# -- progress on a terminal ---------------------------------------------------------------------
def test_on_a_terminal_progress_is_one_live_status_line(tmp_path):
    profile = write_profile(tmp_path, redis={"url": f"redis://{CLOSED}/0"})
    with Terminal() as term:
        p = subprocess.Popen([PLATCTL, "validate", "-p", str(profile), "--wait", "2s",
                              "--only", "redis", "-o", "json"], env=clean_env(COLUMNS="120"),
                             stdout=subprocess.PIPE, stderr=term.fd, text=True)
        term.release()
        try:
            out = p.stdout.read()
            p.wait(10)
        finally:
            p.kill()
            p.wait(10)
    shown = term.text()
    assert p.returncode == 124, shown
    assert "waiting for services" in shown and "retrying in" in shown
    assert "platctl: attempt" not in shown  # no line per attempt on a terminal
    assert "\r" in shown or "\x1b[" in shown  # rewritten in place
    assert json.loads(out)["ok"] is False  # the report is untouched by the status line
