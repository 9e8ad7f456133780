"""The runner: plane order, per-plane concurrency, per-check deadlines, fail-fast, selection.

It alone owns time. Each service's steps run in a daemon thread (worker.py); the main thread
watches a queue of step events and declares a step timed out when it exceeds the deadline,
whatever the client library does: a stuck thread is abandoned, never waited for. Checks make one
attempt each; waiting and retrying (--wait) is layered on top of `run`, not inside it.
"""
from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from platctl import contract, waivers
from platctl.checks.base import CheckContext, Outcome
from platctl.profiles.model import Profile
from platctl.result import CheckResult, PlaneResult, Reason, Report, Status, plane_status
from platctl.secrets import remember, scrub
from platctl.worker import Turns, due, work

GRACE = 0.15  # lets a client's own (more specific) timeout error win the race with ours
CLEANUP_WAIT = 0.5  # how long cancelled workers get to delete their canaries


class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class Options:
    timeout: float = 5.0
    only: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    fail_fast: bool = False
    keep_going: bool = False
    read_only: bool = False
    runtime_command: tuple[str, ...] | None = None
    # When the operator launched platctl (monotonic). The first plane's clock starts there,
    # so start-up time is inside the first checks' deadlines: a hung service costs at most
    # --timeout from launch, not --timeout plus interpreter start-up. None: now.
    started_at: float | None = None
    today: date | None = None  # the date waivers are judged on (None: today); tests pin it
    # No check may run past this monotonic time, whatever its own deadline: --wait's
    # deadline, so exit 124 comes on time even after a chain of slow-but-passing checks.
    stop_at: float | None = None


@dataclass
class RunOutcome:
    report: Report
    stuck_workers: int = 0  # threads abandoned mid-call; the CLI exits without joining them


@dataclass
class _Selection:
    only: tuple[str, ...]
    skip: tuple[str, ...]

    def __post_init__(self) -> None:
        known = set(contract.BY_NAME) | set(contract.CHECK_IDS)
        for token in (*self.only, *self.skip):
            if token not in known:
                raise SelectionError(f"unknown service or check {token!r}; services:"
                                     f" {', '.join(contract.BY_NAME)}")

    def in_report(self, svc: str) -> bool:
        return not self.only or any(t == svc or t.startswith(svc + ".") for t in self.only)

    def why_not(self, check_id: str) -> str | None:
        svc = check_id.split(".")[0]
        if self.only and svc not in self.only and check_id not in self.only:
            return "not selected (--only)"
        for token in self.skip:
            if token in (svc, check_id):
                return f"skipped by --skip {token}"
        return None


@dataclass
class _Live:
    """The main thread's view of one service's worker."""
    spec: contract.ServiceSpec
    thread: threading.Thread | None = None
    # The steps in flight (one, or a wave of steps that run together): id -> when it started
    running: dict[str, float] = field(default_factory=dict)
    gates: dict[str, bool] = field(default_factory=dict)  # id -> its failure stops the service
    due: float = 0.0  # when the steps in flight (or prepare) must have answered
    preparing: bool = False  # in prepare(): the service has not been contacted yet
    finished: bool = False
    results: dict[str, CheckResult] = field(default_factory=dict)


def run(profile: Profile, opts: Options, env: Mapping[str, str]) -> RunOutcome:
    sel = _Selection(opts.only, opts.skip)
    _fewer_malloc_arenas()
    ctx = CheckContext(profile=profile, timeout=opts.timeout, read_only=opts.read_only,
                       run_id=uuid.uuid4().hex[:12], runtime_command=opts.runtime_command,
                       env=env, selected=lambda cid: sel.why_not(cid) is None)
    secrets = profile.secret_values()
    remember(secrets)  # checks clip() server texts with them
    meta = _Meta(secrets,
                 {s.name: profile.section(s.name).required for s in contract.SERVICES},
                 tuple(profile.waivers), opts.today or date.today())
    started = opts.started_at or time.monotonic()
    results: list[CheckResult] = []
    planes: list[PlaneResult] = []
    blocked_by: str | None = None
    workers: list[threading.Thread] = []  # every worker started; some may be abandoned
    closing: list[tuple[threading.Thread, float]] = []  # workers in close(), and until when
    try:
        for plane in contract.PLANES:
            specs = [s for s in contract.services_in(plane) if sel.in_report(s.name)]
            if not specs:
                continue
            t0 = time.monotonic()
            origin = started if not planes else t0  # the first plane's clock: launch
            if blocked_by:
                why = f"not run: the {blocked_by} plane failed"
                plane_results = [_result(s, cid, Outcome(Status.SKIP, why), 0.0, meta)
                                 for s in specs for cid in s.check_ids]
            else:
                plane_results = _run_plane(specs, ctx, sel, opts, meta, workers, origin,
                                           closing)
            results += plane_results
            planes.append(PlaneResult(name=plane, status=plane_status(plane_results),
                                      duration_ms=_ms(time.monotonic() - t0)))
            failed = any(r.status is Status.FAIL and r.required for r in plane_results)
            if failed and not opts.keep_going and not blocked_by:
                blocked_by = plane
            if failed and opts.fail_fast:
                blocked_by = blocked_by or plane
        ended = time.monotonic()  # the verdict; the report's duration stops here
        for thread, until in closing:  # cleanups that overlapped later planes, each bounded
            thread.join(max(0.0, until - time.monotonic()))
    except BaseException:  # SIGINT/SIGTERM: stop new steps, let canaries be deleted
        ctx.cancel.set()
        _join_quietly(workers, CLEANUP_WAIT)
        raise
    report = Report(profile=profile.name, ok=not any(r.status is Status.FAIL and r.required
                                                     for r in results),
                    duration_ms=_ms(ended - started), planes=tuple(planes),
                    checks=tuple(results))
    ctx.cancel.set()
    # Workers cut short by --fail-fast get a moment to delete their canaries; threads
    # abandoned on a deadline are not waited for.
    _join_quietly(workers, CLEANUP_WAIT if opts.fail_fast else 0.0)
    return RunOutcome(report, sum(t.is_alive() for t in workers))


def _run_plane(specs: list[contract.ServiceSpec], ctx: CheckContext, sel: _Selection,
               opts: Options, meta: "_Meta", workers: list[threading.Thread], origin: float,
               closing: list[tuple[threading.Thread, float]]) -> list[CheckResult]:
    """Run one plane's services concurrently; the worker announces each step's deadline
    (see `worker.due`) and this loop enforces it. Durations in the report are the steps' own."""
    events: queue.Queue = queue.Queue()
    live = {s.name: _Live(s) for s in specs}
    turns = Turns([s.name for s in specs])
    for lv in live.values():
        lv.due = due(origin, time.monotonic(), opts.timeout, opts.stop_at)  # before prepare()
        lv.thread = threading.Thread(target=work, args=(lv.spec, ctx, sel, events, origin,
                                                         opts.stop_at, turns),
                                     name=f"check-{lv.spec.name}", daemon=True)
        lv.thread.start()
        workers.append(lv.thread)
    stop_reason: str | None = None
    while not all(lv.finished for lv in live.values()):
        active = [lv for lv in live.values() if not lv.finished]
        deadline = min(lv.due for lv in active) + GRACE
        try:
            kind, svc, cid, payload, at = events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for lv in active:
                if now >= lv.due + GRACE:
                    _expire(lv, opts.timeout, meta)
            continue
        lv = live[svc]
        if lv.finished:
            continue  # a late event from an abandoned worker
        if kind == "prepare":  # importing the client library, building clients
            lv.due, lv.running, lv.preparing = payload, {cid: at}, True
        elif kind == "start":  # payload: (deadline, ((id, gate), ...)) of one wave of steps
            lv.preparing = False
            lv.due, wave = payload
            lv.running = {step_id: at for step_id, _ in wave}
            lv.gates.update(wave)
        elif kind == "done":
            started_at = lv.running.pop(cid, at)
            lv.results[cid] = _result(lv.spec, cid, payload, at - started_at, meta)
            if not lv.running:  # the wave is over: until the next one starts, or "closing"
                lv.due = due(at, at, opts.timeout, opts.stop_at)
            if opts.fail_fast and lv.results[cid].status is Status.FAIL and stop_reason is None:
                stop_reason = f"not run: --fail-fast stopped after {cid} failed"
                ctx.cancel.set()
                for other in live.values():
                    if other is not lv and not other.finished:
                        other.finished = True
        elif kind == "closing":
            # Every verdict of the service is in; its close() (deleting a canary, sweeping
            # orphans: round trips that decide nothing) overlaps the next plane, and run()
            # waits for it before returning, so nothing is left behind when the runtime starts.
            lv.finished = True
            closing.append((lv.thread, due(at, at, opts.timeout, opts.stop_at)))
    out: list[CheckResult] = []
    for lv in live.values():
        out += _in_order(lv, stop_reason, meta)
    return out


def _in_order(lv: _Live, stop_reason: str | None, meta: "_Meta") -> list[CheckResult]:
    """A service's results in contract order, read as if its steps had run one by one: after
    a failed gate the later checks are `not run`, also those a wave ran alongside it (their
    answers mean nothing once, say, the credentials are wrong)."""
    out: list[CheckResult] = []
    failed = lambda r: r.status is Status.FAIL or waivers.is_waived(r)  # noqa: E731
    first_failed = next((lv.results[c].id for c in lv.spec.check_ids
                         if c in lv.results and failed(lv.results[c])), None)
    gate_failed: str | None = None
    for cid in lv.spec.check_ids:
        got = lv.results.get(cid)
        if got is not None and gate_failed is None:
            out.append(got)
            if failed(got) and lv.gates.get(cid, True):
                gate_failed = cid
            continue
        blamed = gate_failed or first_failed
        why = stop_reason or (f"not run: {blamed} failed" if blamed else "not run")
        out.append(_result(lv.spec, cid, Outcome(Status.SKIP, why), 0.0, meta))
    return out


def _expire(lv: _Live, timeout: float, meta: "_Meta") -> None:
    if not lv.running and lv.results:
        # Every step it ran has its verdict: the worker is in close() (deleting a canary on
        # a slow server). Abandon the cleanup, never blame a step for it (and with every id
        # reported, there would be none left to blame: StopIteration crashed the run).
        lv.finished = True
        return
    # The first step still in flight, in contract order; the others of its wave are then
    # `not run` (_in_order), as after any failed gate.
    cid = next((c for c in lv.spec.check_ids if c in lv.running),
               None) or next(c for c in lv.spec.check_ids if c not in lv.results)
    if lv.preparing:  # a starved CPU, not the service: say so, or on-call chases the server
        what = (f"timed out after {timeout:.1f} s before contacting the service: loading its"
                " client library took the whole deadline (an overloaded machine?)")
        hint = "retry with a longer --timeout, or on a less loaded machine"
    else:
        what = f"timed out after {timeout:.1f} s (no answer; the check was abandoned)"
        hint = _hint_for_timeout(lv.spec)
    lv.results[cid] = _result(
        lv.spec, cid, Outcome(Status.FAIL, what, hint, Reason.TIMEOUT),
        time.monotonic() - lv.running.get(cid, lv.due - timeout), meta)
    lv.finished = True


def _hint_for_timeout(spec: contract.ServiceSpec) -> str:
    keys = [k for k in spec.env_keys if k not in ("SSL_CERT_FILE",)]
    return f"check that the service is up and reachable ({', '.join(keys[:3])})"


def _fewer_malloc_arenas() -> None:
    """glibc gives each new thread its own malloc arena (up to 8 per core), and a worker that
    imports a client library leaves pages in its arena: two arenas are enough for threads that
    mostly wait, and take about 4 MB off a full run's peak RSS (bench/memory.py)."""
    if _arenas_set:
        return
    _arenas_set.append(True)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX; not glibc: nothing to do
    except (OSError, AttributeError):
        pass


_arenas_set: list[bool] = []


@dataclass(frozen=True)
class _Meta:
    secrets: frozenset[str]  # for the last-line scrubber of messages built from exceptions
    required: dict[str, bool]  # service -> does its failure block (profile `required:`)
    waivers: tuple = ()  # the profile's waivers: a waived failure is reported as warn
    today: date = field(default_factory=date.today)


def _result(spec: contract.ServiceSpec, cid: str, o: Outcome, seconds: float,
            meta: "_Meta") -> CheckResult:
    o = waivers.apply(meta.waivers, cid, o, meta.today)
    return CheckResult(id=cid, service=spec.name, plane=spec.plane, status=o.status,
                       duration_ms=_ms(seconds), message=scrub(o.message, meta.secrets),
                       hint=scrub(o.hint, meta.secrets) if o.hint else None, reason=o.reason,
                       required=meta.required[spec.name])


def _join_quietly(threads: list[threading.Thread], budget: float) -> None:
    end = time.monotonic() + budget
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
