"""--wait: re-run the checks until they pass, fail in a way waiting cannot fix, or the
deadline passes.

The runner makes one attempt per check; waiting lives here and nowhere else (wait4x keeps its
checkers one-shot too). Unlike wait4x, not every error is waited out: only the classes in
result.TRANSIENT (refused, timed out, DNS not resolvable yet, 5xx, "up but not ready" such as
Redis LOADING, an ArangoDB 503 or read-only start, Consul without a leader). A wrong password,
a forbidden operation, a TLS verification failure or a missing bucket/index/database does not
get better by waiting: it ends the wait at once, so a typo costs seconds, not the deadline.

Every attempt re-runs every selected check, not only the failing ones: the final report is one
coherent run (a service that passed in attempt 1 may be gone by attempt 9), and boot execs
right after that run passed.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, TextIO

from platctl import contract, io
from platctl.exitcodes import ExitCode
from platctl.result import TRANSIENT, Reason, Report

BASE = 0.25  # s: the first retry comes within a quarter second (a service just coming up)
CAP = 2.0  # s: the longest pause (mean 1 s at the cap, like wait4x's fixed interval)
FLOOR = 0.1  # s: full jitter can draw ~0; never hammer a starting service back to back
MIN_TIMEOUT = 0.5  # s per plane: an attempt with less than this left is not worth starting


@dataclass
class Waited:
    outcome: object  # runner.RunOutcome of the last attempt
    attempts: int
    expired: bool = False  # the deadline passed with only transient failures left
    final_line: str | None = None  # why the wait ended, for stderr after the report

    @property
    def report(self) -> Report:
        return self.outcome.report

    def code(self, verdict: ExitCode) -> ExitCode:
        return ExitCode.WAIT_EXPIRED if self.expired else verdict


def permanent_failures(report: Report) -> list:
    """Required checks that failed for a reason waiting cannot fix (no reason: permanent)."""
    return [c for c in report.failed if c.reason not in TRANSIENT]


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter (AWS architecture blog), capped: waiting
    instances spread out instead of retrying in lockstep against a service starting up."""
    return max(FLOOR, rng.uniform(0.0, min(CAP, BASE * 2 ** (attempt - 1))))


def run(profile, argv: tuple[str, ...] | None, req) -> Waited:  # noqa: ANN001
    """One attempt without --wait; with it, attempts until pass, permanent failure or the
    deadline (counted from launch, like the first plane's clock)."""
    from platctl.commands.validate import run_checks

    if req.wait is None:
        return Waited(run_checks(profile, argv, req), 1)
    launched = io.streams.started_at or time.monotonic()
    deadline = launched + req.wait
    planes = _planes(req.only)
    rng = random.Random()
    started = launched  # attempt 1's clock starts at launch; later ones at the attempt
    attempt = 0
    with _progress(io.streams.err) as show:
        while True:
            attempt += 1
            left = deadline - time.monotonic()
            show.checking(attempt, left)
            # Clipped so that even a hung service in every plane is declared timed out
            # before the deadline: exit 124 comes within the deadline, not after it.
            timeout = max(0.1, min(req.timeout, left / planes))
            outcome = run_checks(profile, argv, req, started_at=started, timeout=timeout,
                                 stop_at=deadline)
            report = outcome.report
            elapsed = time.monotonic() - launched
            if not report.failed:
                line = (f"platctl: ready after {attempt} attempts ({elapsed:.1f} s)\n"
                        if attempt > 1 else None)
                return Waited(outcome, attempt, final_line=line)
            permanent = permanent_failures(report)
            if permanent:
                return Waited(outcome, attempt, final_line=_permanent_line(permanent))
            left = deadline - time.monotonic()
            if left < MIN_TIMEOUT * planes:  # no room for a meaningful attempt
                show.sleep(left)  # the deadline is the deadline: not earlier
                return Waited(outcome, attempt, expired=True,
                              final_line=_expired_line(req.wait, attempt, report))
            delay = max(FLOOR, min(backoff(attempt, rng), left - MIN_TIMEOUT * planes))
            show.retrying(attempt, report, delay, left)
            show.sleep(delay)  # SIGINT/SIGTERM raise here: no further attempt, no exec
            started = time.monotonic()


def _planes(only: tuple[str, ...]) -> int:
    """Planes that run one after the other in an attempt (each may cost a whole timeout)."""
    def selected(svc: str) -> bool:
        return not only or any(t == svc or t.startswith(svc + ".") for t in only)
    return max(1, sum(any(selected(s.name) for s in contract.services_in(p))
                      for p in contract.PLANES))


def describe(failed, limit: int = 3) -> str:
    """`redis.ping refused, consul.leader unavailable, +2 more`"""
    parts = [f"{c.id} {c.reason.value if c.reason else 'failed'}" for c in failed[:limit]]
    if len(failed) > limit:
        parts.append(f"+{len(failed) - limit} more")
    return ", ".join(parts)


def _permanent_line(permanent) -> str:
    first = permanent[0]
    why = "a bug in platctl" if first.reason is Reason.INTERNAL else \
        f"{first.reason.value if first.reason else 'failure'} is not transient"
    return (f"platctl: not waiting any longer: {first.id} failed ({first.message}); {why},"
            f" waiting cannot fix it\n")


def _expired_line(wait: float, attempts: int, report: Report) -> str:
    return (f"platctl: --wait deadline ({wait:g} s) passed after {attempts} attempt"
            f"{'s' if attempts > 1 else ''}; still failing: {describe(report.failed)}\n")


class _Lines:
    """Not a terminal (docker logs, kubectl logs, CI): one plain line per failed attempt."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def checking(self, attempt: int, left: float) -> None:
        pass

    def retrying(self, attempt: int, report: Report, delay: float, left: float) -> None:
        self.err.write(f"platctl: attempt {attempt}: {describe(report.failed)} (transient);"
                       f" retrying in {delay:.1f} s, {left:.1f} s left\n")
        self.err.flush()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class _Live(_Lines):
    """A terminal: one status line, rewritten in place, gone when the wait ends."""

    def __init__(self, err: TextIO, status) -> None:  # noqa: ANN001
        super().__init__(err)
        self.status = status
        self.note, self.deadline = "", 0.0

    def checking(self, attempt: int, left: float) -> None:
        self.status.update(f"waiting for services: attempt {attempt}, checking..."
                           f" ({max(0.0, left):.0f} s left)")

    def retrying(self, attempt: int, report: Report, delay: float, left: float) -> None:
        self.note = f"attempt {attempt}: {describe(report.failed)} (transient)"
        self.deadline = time.monotonic() + left

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + max(0.0, seconds)
        while (now := time.monotonic()) < end:
            self.status.update(f"waiting for services: {self.note}; retrying in"
                               f" {end - now:.1f} s, {self.deadline - now:.0f} s left")
            time.sleep(min(0.1, end - now))


@contextmanager
def _progress(err: TextIO) -> Iterator[_Lines]:
    if not getattr(err, "isatty", lambda: False)():
        yield _Lines(err)
        return
    from rich.console import Console

    color = io.streams.color(err)
    console = Console(file=err, width=io.streams.width(err), no_color=not color,
                      color_system="standard" if color else None, highlight=False,
                      markup=False, emoji=False)
    with console.status("waiting for services", spinner="dots") as status:
        yield _Live(err, status)
