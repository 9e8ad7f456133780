"""`platctl validate --watch SECONDS`: re-run the checks every SECONDS (start to start) and
show, per check, the last status and latency, status changes and flaps (pass↔fail).

On a terminal: a live dashboard (Rich). Otherwise one plain line per round plus one per
status change (for logs); `-o json` prints each round's report as one JSON line instead.

How it ends: Ctrl-C is the normal way out of a watch, as it is for `ping`: it prints the
summary (per check: rounds, failures, flaps, last status) and exits with the verdict of the
last complete round, 0 ready or 1 not ready (130 when no round completed). SIGTERM (a
supervisor stopping it) prints the same summary and exits 143.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from platctl import io
from platctl.exitcodes import ExitCode
from platctl.result import Report, Status

_OK = {Status.PASS: "ok", Status.WARN: "ok", Status.FAIL: "fail"}  # skip: no verdict


@dataclass
class Track:
    """One check across rounds."""
    id: str
    status: Status | None = None
    message: str = ""
    reason: str | None = None
    latency_ms: float | None = None
    rounds: int = 0  # rounds in which it ran (not skipped)
    failures: int = 0
    flaps: int = 0  # health changes, ok (pass/warn) ↔ fail
    changes: int = 0  # any status change
    since: datetime | None = None  # when the status last changed
    health: str | None = None


@dataclass(frozen=True)
class Change:
    id: str
    before: Status
    after: Status
    message: str


@dataclass
class WatchState:
    interval: float
    profile: str = ""
    rounds: int = 0
    ok: bool | None = None  # the last complete round's verdict
    round_ms: float = 0.0
    tracks: dict[str, Track] = field(default_factory=dict)

    def record(self, report: Report, now: datetime) -> list[Change]:
        self.rounds += 1
        self.profile, self.ok, self.round_ms = report.profile, report.ok, report.duration_ms
        changes = []
        for c in report.checks:
            t = self.tracks.setdefault(c.id, Track(c.id))
            if t.status is not None and t.status is not c.status:
                t.changes += 1
                t.since = now
                changes.append(Change(c.id, t.status, c.status, c.message))
            elif t.status is None:
                t.since = now
            t.status, t.message = c.status, c.message
            t.reason = c.reason.value if c.reason else None
            health = _OK.get(c.status)
            if health is None:
                continue
            t.rounds += 1
            t.latency_ms = c.duration_ms
            t.failures += health == "fail"
            if t.health is not None and health != t.health:
                t.flaps += 1
            t.health = health
        return changes


def watch(req, interval: float, *, clock=time.monotonic, sleep=time.sleep, now=datetime.now,
          max_rounds: int | None = None) -> ExitCode:
    """`req` is a commands.validate.Request; clock/sleep/now/max_rounds are for tests."""
    from platctl.commands.validate import UsageError, execute
    from platctl.profiles.loader import ProfileError
    from platctl.render import watch as render

    if req.output not in ("table", "json"):
        io.streams.err.write("platctl: --watch shows a dashboard (-o table) or one JSON report"
                             " per round (-o json), not junit or github\n")
        return ExitCode.USAGE
    state = WatchState(interval)
    view = render.View(state, io.streams.out, io.streams.err, req.output == "json",
                       io.streams.env)
    ended = "end"
    try:
        with view:
            while max_rounds is None or state.rounds < max_rounds:
                started = clock()
                if state.rounds:  # the launch-time anchor is for the first round only
                    io.streams.started_at = None
                view.running()
                outcome, _ = execute(req)
                changes = state.record(outcome.report, now())
                view.round(outcome.report, changes, now())
                sleep(max(0.0, interval - (clock() - started)))
    except (UsageError, ProfileError) as exc:
        if not state.rounds:
            if isinstance(exc, ProfileError):
                raise
            io.streams.err.write(f"platctl: {exc}\n")
            return ExitCode.USAGE
        view.summary("a profile error")
        raise
    except KeyboardInterrupt:
        ended = "Ctrl-C"
    except BaseException as exc:
        if type(exc).__name__ != "Terminated":  # __main__'s SIGTERM (not imported: it may
            raise  # run as the __main__ module, a different class object)
        ended = "SIGTERM"
    view.summary(ended)
    if ended == "SIGTERM":
        return ExitCode.SIGTERM
    if state.ok is None:
        return ExitCode.SIGINT
    return ExitCode.OK if state.ok else ExitCode.FAILED
