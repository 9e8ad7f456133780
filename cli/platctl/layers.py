"""`diagnose`'s layers below the service's own checks: DNS, TCP (per address) and TLS.

Each layer is timed and bounded by the timeout on its own: getaddrinfo has no timeout, so it
runs in a daemon thread the caller stops waiting for; every address is dialled at once, so a
host with a dead address costs one timeout, not one per address. The result is data (Layer);
rendering is render/diagnose.py's.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from platctl.checks.base import Outcome, ServiceCheck
from platctl.checks.errors import classify
from platctl.checks.tls import Endpoint, probe
from platctl.result import Reason, Status

NOT_REACHED = "not_reached"  # a layer below failed: this one was not tried


@dataclass(frozen=True)
class Layer:
    layer: str  # dns, tcp, tls, auth, operation
    status: str  # pass, warn, fail, skip or not_reached
    duration_ms: float
    message: str
    hint: str | None = None
    reason: str | None = None
    check: str | None = None  # the check id behind an auth/operation layer
    details: dict[str, Any] = field(default_factory=dict)


def from_outcome(layer: str, o: Outcome, seconds: float, **kw: Any) -> Layer:
    return Layer(layer, o.status.value, _ms(seconds), o.message, o.hint,
                 o.reason.value if o.reason else None, **kw)


def not_reached(layer: str, below: str, check: str | None = None) -> Layer:
    return Layer(layer, NOT_REACHED, 0.0, f"not reached: the {below} layer failed", check=check)


def resolve(ep: Endpoint, timeout: float, hint: str) -> tuple[Layer, list[tuple]]:
    """(the DNS layer, [(family, sockaddr)...] in the resolver's order, duplicates dropped)."""
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM)
        except Exception as exc:  # noqa: BLE001 - classified below
            box["exc"] = exc

    t0 = time.monotonic()
    worker = threading.Thread(target=lookup, name="diagnose-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    took = time.monotonic() - t0
    if worker.is_alive():
        return Layer("dns", "fail", _ms(took), f"DNS lookup of {ep.host} gave no answer within"
                     f" {timeout:.1f} s", hint, Reason.TIMEOUT.value), []
    if "exc" in box:
        exc = box["exc"]
        words = getattr(exc, "strerror", None) or str(exc)
        return Layer("dns", "fail", _ms(took), f"DNS lookup failed for {ep.host}: {words}",
                     hint, (classify(exc) or Reason.DNS).value), []
    addrs: list[tuple] = []
    for family, _, _, _, sockaddr in box["infos"]:
        if (family, sockaddr) not in addrs:
            addrs.append((family, sockaddr))
    shown = [a[1][0] for a in addrs]
    literal = _is_address(ep.host)
    msg = f"{ep.host} is an IP address (no lookup)" if literal else \
        f"{ep.host} → {', '.join(shown)}"
    return Layer("dns", "pass", _ms(took), msg, details={"addresses": shown}), addrs


def connect(ep: Endpoint, addrs: list[tuple], timeout: float,
            hint: str) -> tuple[Layer, str | None]:
    """(the TCP layer, the first address that accepted). Every address is dialled at once."""
    results: list[dict[str, Any]] = [{"address": a[1][0], "status": "timeout", "ms": None}
                                     for a in addrs]
    errors: list[BaseException | None] = [None] * len(addrs)

    def dial(i: int, family: int, sockaddr: tuple) -> None:
        t0 = time.monotonic()
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(sockaddr)
            results[i].update(status="connected", ms=_ms(time.monotonic() - t0))
        except OSError as exc:
            errors[i] = exc
            reason = classify(exc) or Reason.UNEXPECTED
            results[i].update(status=reason.value, ms=_ms(time.monotonic() - t0))

    t0 = time.monotonic()
    threads = [threading.Thread(target=dial, args=(i, *a), daemon=True, name="diagnose-tcp")
               for i, a in enumerate(addrs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, t0 + timeout + 0.2 - time.monotonic()))
    took = time.monotonic() - t0
    results = [dict(r) for r in results]  # a dial still running must not change the verdict
    each = "; ".join(f"{_hostport(r['address'], ep.port)} {r['status']}"
                     + (f" in {r['ms']:.1f} ms" if r["ms"] is not None else
                        f" (no answer within {timeout:.1f} s)") for r in results)
    details = {"port": ep.port, "addresses": results}
    ok = [r["address"] for r in results if r["status"] == "connected"]
    if not ok:
        first = results[0]["status"] if results else Reason.UNEXPECTED.value
        why = " (nothing listens there)" if first == "refused" else ""
        return Layer("tcp", "fail", _ms(took), f"no address accepted a connection: {each}{why}",
                     hint, first, details=details), None
    if results[0]["status"] != "connected":
        return Layer("tcp", "warn", _ms(took), f"{each} (clients that try only the first"
                     " address fail)", hint, details=details), ok[0]
    return Layer("tcp", "pass", _ms(took), each, details=details), ok[0]


def tls(check: ServiceCheck, ep: Endpoint, address: str | None, timeout: float) -> Layer:
    if not ep.tls:
        return Layer("tls", Status.SKIP.value, 0.0, f"plaintext endpoint ({ep.shown}): no TLS")
    from datetime import datetime, timezone

    check.deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    outcome, got = probe(check, ep, address)
    details = got.to_dict(datetime.now(timezone.utc)) if got else {}
    return from_outcome("tls", outcome, time.monotonic() - t0, details=details)


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
