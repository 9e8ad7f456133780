"""One service's worker: what runs in its thread, for the runner (runner.py owns the plane
order, the deadlines' enforcement and the report; this is the other half of its concurrency).

The worker imports the service's check module in its turn (Turns: one service at a time),
runs the steps wave by wave (waves: a step marked `parallel` starts with the one before it),
announces each wave's deadline on the runner's event queue, and calls close() once every
verdict is in ("closing": the plane may go on while it cleans up).
"""
from __future__ import annotations

import importlib
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from platctl import contract
from platctl.checks import MODULES
from platctl.checks.base import CheckContext, CheckFailed, Outcome
from platctl.result import Reason, Status

if TYPE_CHECKING:
    from platctl.runner import _Selection as Selection


def due(anchor: float, now: float, timeout: float, cap: float | None = None) -> float:
    """A step's deadline: `timeout` after the service's clock `anchor`, and never less than
    half of `timeout` after the step starts (a slow start cannot time a check out before it
    has really tried).

    The clock starts when the plane starts (for the first plane: when platctl was
    launched) and restarts after every step that really waited on the service (took more
    than a tenth of the timeout). So interpreter start-up, client imports and quick steps
    (parsing keys, an instant TCP connect) are inside the next step's deadline, and a hung
    service costs --timeout from launch; while a slow but healthy service still gets the
    whole --timeout for each of its checks. `cap` (Options.stop_at) overrides all of that."""
    at = max(anchor + timeout, now + timeout / 2)
    return at if cap is None else min(at, cap)


def work(spec: contract.ServiceSpec, ctx: CheckContext, sel: "Selection",
          events: queue.Queue, origin: float, cap: float | None, turns: "Turns") -> None:
    def put(kind: str, cid: str | None = None, payload: object = None) -> None:
        events.put((kind, spec.name, cid, payload, time.monotonic()))

    check = None
    stalled = False  # a step timed out: the server may not answer cleanup either
    anchor = origin  # the service's clock (see due)
    # Until the first wave starts, the worker imports the client library and builds clients
    # (prepare): if that outlives the deadline, blame the first check that uses the client
    # (not a TLS check that may not even connect), and say the service was not contacted.
    first = next((c for c in spec.check_ids if not c.endswith(".tls")), spec.check_ids[0])
    put("prepare", first, due(anchor, time.monotonic(), ctx.timeout, cap))
    try:
        with turns.turn(spec.name, due(anchor, time.monotonic(), ctx.timeout, cap)):
            module = importlib.import_module(MODULES[spec.name])
            check = module.CHECK(ctx)
            check.deadline = due(anchor, time.monotonic(), ctx.timeout, cap)
            steps = check.all_steps()
            try:
                check.prepare()
            except CheckFailed as failed:  # e.g. an unreadable CA bundle for a client
                put("done", steps[0].id, failed.outcome)
                return
        put("start", None, (check.deadline, ()))  # prepared: nothing in flight until a wave
        for wave in waves(steps):
            if ctx.cancel.is_set():
                break
            todo = []
            for step in wave:
                why = sel.why_not(step.id)
                if why:
                    put("done", step.id, Outcome(Status.SKIP, why))
                else:
                    todo.append(step)
            if not todo:
                continue
            now = time.monotonic()
            check.deadline = due(anchor, now, ctx.timeout, cap)
            put("start", None, (check.deadline, tuple((s.id, s.gate) for s in todo)))
            outcomes = run_wave(todo, put)
            stalled = stalled or any(o.reason is Reason.TIMEOUT for o in outcomes)
            if time.monotonic() - now > ctx.timeout / 10:  # it waited: restart the clock
                anchor = time.monotonic()
            if any(o.status is Status.FAIL and s.gate for s, o in zip(todo, outcomes)):
                break
    except Exception as exc:  # noqa: BLE001 - a broken module must not break the run
        first = next(iter(spec.check_ids))
        put("done", first, internal(exc))
    finally:
        put("closing")  # every verdict is in: the plane may go on (runner._run_plane)
        if check is not None:
            if not stalled:  # cleanup's own budget, as the main loop allows (see "closing")
                check.deadline = due(time.monotonic(), time.monotonic(), ctx.timeout, cap)
            # else: a server that just timed out gets what is left of the step's budget, not
            # a second timeout: the verdict is in, cleanup is best effort (orphans expire)
            try:
                check.close()
            except Exception:  # noqa: BLE001 - cleanup is best effort, never a verdict
                pass


class Turns:
    """Client libraries are imported one service at a time, in contract order (the local
    DuckDB last in its plane). Imports are CPU under one GIL: run side by side, every
    service would get its library only when all of them are loaded (~0.9 s when the checks
    still imported google-cloud-storage and redis-py); one by one, the first services already
    wait on the network while the next ones import, and a plane costs the imports *or* the
    round trips more than their sum. A turn not come by the worker's deadline is taken anyway
    (the runner's clock then reports the starved import as before)."""

    def __init__(self, order: list[str]) -> None:
        self._order, self._done = order, set()
        self._cond = threading.Condition()

    @contextmanager
    def turn(self, name: str, until: float) -> Iterator[None]:
        before = self._order[:self._order.index(name)]
        with self._cond:
            self._cond.wait_for(lambda: self._done.issuperset(before),
                                timeout=max(0.0, until - time.monotonic()))
        try:
            yield
        finally:
            with self._cond:
                self._done.add(name)
                self._cond.notify_all()


def waves(steps) -> list[list]:  # noqa: ANN001
    """Consecutive steps marked `parallel` join the wave of the step before them."""
    waves: list[list] = []
    for step in steps:
        if step.parallel and waves:
            waves[-1].append(step)
        else:
            waves.append([step])
    return waves


def run_wave(todo, put) -> list[Outcome]:  # noqa: ANN001
    """Run a wave's steps at once (the first in this thread), each reporting when done; a
    plane then costs about one round trip per wave, not one per check (DESIGN: "checks
    inside one plane run concurrently"). A step that hangs keeps this worker waiting, and the
    main loop abandons the worker at the deadline, as for a single step."""
    outcomes: list[Outcome | None] = [None] * len(todo)

    def one(i: int) -> None:
        outcomes[i] = attempt(todo[i].run)
        put("done", todo[i].id, outcomes[i])

    helpers = [threading.Thread(target=one, args=(i,), name=f"check-{todo[i].id}", daemon=True)
               for i in range(1, len(todo))]
    for t in helpers:
        t.start()
    one(0)
    for t in helpers:
        t.join()
    return outcomes  # type: ignore[return-value]


def attempt(fn) -> Outcome:
    try:
        got = fn()
    except CheckFailed as failed:
        return failed.outcome
    except Exception as exc:  # noqa: BLE001
        return internal(exc)
    return got if isinstance(got, Outcome) else Outcome(Status.PASS, str(got))


def internal(exc: BaseException) -> Outcome:
    return Outcome(Status.FAIL, f"internal error in platctl (a bug, please report it):"
                   f" {type(exc).__name__}: {exc}", None, Reason.INTERNAL)
