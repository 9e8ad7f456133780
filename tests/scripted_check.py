"""A scripted stand-in for one service's check module, to test the runner's scheduling of
waves (Step.parallel) without a network: each step sleeps, fails or hangs as `SCRIPT` says.
Tests point the explicit module map at it (monkeypatch.setitem(platctl.checks.MODULES, ...))."""
from __future__ import annotations

import threading
import time

from platctl.checks.base import CheckFailed, ServiceCheck, Step
from platctl.result import Reason

# step id -> ("pass" | "fail" | "hang", seconds before answering); set by the test
SCRIPT: dict[str, tuple[str, float]] = {}
RAN: list[str] = []  # step ids in the order they started
CLOSED: list[float] = []  # when close() ended (time.monotonic())
_forever = threading.Event()


class ScriptedConsul(ServiceCheck):
    """consul's ids: leader, then token, agent and services in one wave with it."""

    service = "consul"

    def steps(self):
        return (Step("consul.leader", lambda: self._play("consul.leader")),
                Step("consul.token", lambda: self._play("consul.token"), parallel=True),
                Step("consul.agent", lambda: self._play("consul.agent"), gate=False,
                     parallel=True),
                Step("consul.services", lambda: self._play("consul.services"), gate=False,
                     parallel=True))

    def close(self) -> None:  # like a canary's cleanup: SCRIPT["close"] seconds of it
        time.sleep(SCRIPT.get("close", ("pass", 0.0))[1])
        CLOSED.append(time.monotonic())

    def _play(self, cid: str) -> str:
        RAN.append(cid)
        what, seconds = SCRIPT.get(cid, ("pass", 0.0))
        if what == "hang":
            _forever.wait()
        time.sleep(seconds)
        if what == "fail":
            raise CheckFailed(Reason.UNAVAILABLE, f"{cid} failed as scripted")
        return f"{cid} answered after {seconds} s"


CHECK = ScriptedConsul
