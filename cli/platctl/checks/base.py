"""What a service check module is made of.

A service module defines one `ServiceCheck` subclass whose `steps()` lists its checks in
order, one `Step` per stable check id (contract.py). A step makes one attempt and either
returns its pass message (a str), returns an `Outcome` (warn/skip/pass with details), or
raises `CheckFailed` with a failure class and a hint. A failed *gate* step ends the service's
run: the remaining steps are reported as skipped. Timing, deadlines, concurrency and plane
order belong to the runner, never to a check.
"""
from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from platctl.profiles.model import Profile
from platctl.result import Reason, Status


MAX_EARLY = 16  # requests one service asks early, at most (ServiceCheck.ask_early)


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str
    hint: str | None = None
    reason: Reason | None = None


def warn(message: str, hint: str | None = None) -> Outcome:
    return Outcome(Status.WARN, message, hint)


def skip(message: str) -> Outcome:
    return Outcome(Status.SKIP, message)


class CheckFailed(Exception):
    def __init__(self, reason: Reason, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.hint = reason, message, hint

    @property
    def outcome(self) -> Outcome:
        return Outcome(Status.FAIL, self.message, self.hint, self.reason)


@dataclass(frozen=True)
class Step:
    id: str
    run: Callable[[], "str | Outcome"]
    gate: bool = True  # a failure here makes the service's later steps meaningless
    # Starts together with the step before it instead of after it (a wave, see runner): only
    # for a step that needs nothing the earlier ones of its wave set up, and whose answer is
    # harmless to have asked for if one of them fails (it is then reported `not run`).
    parallel: bool = False


@dataclass(frozen=True)
class CheckContext:
    profile: Profile
    timeout: float = 5.0
    read_only: bool = False
    run_id: str = "local"  # unique per run: canary names never collide between runs
    runtime_command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cancel: threading.Event = field(default_factory=threading.Event)
    # Whether a check id will run (not removed by --only/--skip). A check that asks early
    # for a later step's answer (one round trip for several steps) asks only for selected
    # ones: `--skip redis.canary` must write nothing, even though ping could carry the write.
    selected: Callable[[str], bool] = lambda check_id: True

    @property
    def ca_file(self) -> str | None:
        """One CA setting for every TLS client: the profile's, else SSL_CERT_FILE."""
        if self.profile.tls.ca_file:
            return str(self.profile.tls.ca_file)
        return self.env.get("SSL_CERT_FILE") or None

    def ssl_context(self) -> ssl.SSLContext:
        ca = self.ca_file
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise CheckFailed(Reason.CONFIG, f"cannot load the CA bundle {ca}: {exc}",
                              "check tls.ca_file in the profile or SSL_CERT_FILE") from None


class ServiceCheck:
    """Base of a service's checks. Subclasses set `service` and `env` and define `steps()`."""

    service: ClassVar[str]
    # profile field → environment key of the built-in profiles, for hints
    env: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: CheckContext) -> None:
        self.ctx = ctx
        self._asked: dict[str, _Asked] = {}
        # Set by the runner (worker.due): when the current step's time is up. Start-up,
        # prepare() and quick earlier steps are inside it; clients take budget() as timeout.
        self.deadline = time.monotonic() + ctx.timeout

    def budget(self) -> float:
        """Seconds left for the current step: what a client's timeouts should be."""
        return max(0.05, self.deadline - time.monotonic())

    @cached_property
    def cfg(self) -> Any:
        return self.ctx.profile.section(self.service)

    def prepare(self) -> None:
        """Import client libraries and build clients before the first step, so that cost
        (hundreds of ms for some clients) is not reported as the first check's duration.
        May raise CheckFailed (reported against the first step)."""

    def steps(self) -> Sequence[Step]:  # pragma: no cover - abstract
        raise NotImplementedError

    def all_steps(self) -> Sequence[Step]:
        """What the runner runs: the service's steps with `SERVICE.tls` (the endpoint's
        certificate, checks/tls.py) before the first one that connects. One place for every
        service, so none can forget it and the TLS verdict always comes before a client's."""
        from platctl.checks.tls import with_tls_step

        return with_tls_step(self, tuple(self.steps()))

    def close(self) -> None:
        """Release clients and remove anything the run created. Always called."""

    def ask_early(self, names: Iterable[Hashable], fetch: Callable[[Any], Any]) -> None:
        """Send read-only requests of later steps now (`fetch(name)` for each of `names`),
        each in a thread of its own: their
        answers travel while this step waits for its own, so a service costs about one round
        trip instead of one per step (issue 8). The later step reads its answer with
        `answer()`, in contract order, so messages that build on an earlier step's findings
        stay as they were. Only requests that need nothing from an earlier answer, write
        nothing, and belong to selected checks (`ctx.selected`) may be asked early: if an
        earlier step fails, their answers are never read. Timeouts stay the runner's: a
        request asked early is bounded by the budget of the step that asked it, and a worker
        waiting in `answer()` past its step's deadline is abandoned like any other. At most
        MAX_EARLY requests are in the air at once (a profile listing 200 collections must not
        open 200 connections): the rest are asked by the step that reads them."""
        for name in names:
            if len(self._asked) >= MAX_EARLY:
                break
            if name not in self._asked:
                self._asked[name] = _Asked(lambda name=name: fetch(name),
                                           f"ask-{self.service}-{name}")

    def answer(self, name: Hashable, fetch: Callable[[Any], Any]) -> Any:
        """The answer of request `name`: the one asked early (the same one to every step
        that reads it), else `fetch(name)` now (its step ran without the step that asks
        early: --only, --skip). A CheckFailed or error is raised here, in the step that
        reads it."""
        asked = self._asked.get(name)
        if asked is None:
            asked = self._asked[name] = _Asked(lambda: fetch(name))
        return asked.result()

    def header_secret(self, field: str) -> str | None:
        """The secret in profile `field` as it can travel in an HTTP header: trimmed (a pasted
        newline is not part of it), or CONFIG naming its key when no header can carry it."""
        secret = getattr(self.cfg, field)
        value = secret.get_secret_value().strip() if secret is not None else ""
        if value and (not value.isascii() or not value.isprintable() or " " in value):
            raise CheckFailed(Reason.CONFIG, f"{self.env.get(field, field)} contains characters"
                              " that cannot be sent in an HTTP header", self.hint(field))
        return value or None

    def hint(self, *fields: str) -> str:
        """'check REDIS_URL (profile: redis.url)' for the given profile fields."""
        section = "execution" if self.service == "runtime" else self.service
        keys = [self.env[f] for f in fields if f in self.env]
        where = ", ".join(f"{section}.{f}" for f in fields)
        return f"check {' / '.join(keys)} (profile: {where})" if keys else f"check {where}"


class _Asked:
    """One request's outcome, from a thread started now (`thread_name`) or run at the first
    `result()` (no name)."""

    def __init__(self, fn: Callable[[], Any], thread_name: str | None = None) -> None:
        self._fn, self._done = fn, threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if thread_name:
            self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the step that reads it
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> Any:
        if self._thread is None and not self._done.is_set():
            self._run()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value
