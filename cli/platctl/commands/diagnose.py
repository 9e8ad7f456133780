"""`platctl diagnose SERVICE|all`: one service (or each), layer by layer, each timed.

DNS, TCP and TLS come from platctl.layers for the service's endpoint (every service at once);
authentication and operations are the service's own checks, run by the runner exactly as
`validate` runs them, and shown as layers: the check that authenticates is the auth layer, the
others are operations. A layer whose foundation failed is not tried ("not reached"), so the
first failing layer is the one to fix, and the output says how.
"""
from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from platctl import contract, io
from platctl.exitcodes import ExitCode
from platctl.layers import NOT_REACHED, Layer, not_reached

SCHEMA_ID = "platctl.diagnose/v1"
# The check that proves the credentials, per service (the rest are operations). redis.ping
# connects with the URL's password (AUTH) before PING; supabase.keys reads the keys' roles.
AUTH_CHECKS = frozenset({"redis.ping", "arango.auth", "supabase.keys", "gcs.credentials",
                         "meilisearch.auth", "consul.token"})
FORMATS = ("table", "json")


@dataclass(frozen=True)
class Diagnosis:
    service: str
    endpoint: str | None  # scheme://host:port, never credentials; None: no network endpoint
    layers: tuple[Layer, ...]

    @property
    def first_failure(self) -> Layer | None:
        return next((lay for lay in self.layers if lay.status == "fail"), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None


def diagnose(service: str, profile_ref: str | None, output: str, timeout: float,
             read_only: bool = False) -> ExitCode:
    from platctl.commands.validate import UsageError, load_profile, runtime_command

    err = io.streams.err
    if output not in FORMATS:
        err.write(f"platctl: diagnose prints {' or '.join(FORMATS)}, not {output}"
                  " (-o table|json)\n")
        return ExitCode.USAGE
    if service != "all" and service not in contract.BY_NAME:
        err.write(f"platctl: unknown service {service!r}; services:"
                  f" {', '.join(contract.BY_NAME)}, or all\n")
        return ExitCode.USAGE
    services = tuple(contract.BY_NAME) if service == "all" else (service,)
    try:
        profile = load_profile(profile_ref)
        argv = runtime_command(profile, ())
    except UsageError as exc:
        err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    started = time.monotonic()
    found = run(profile, services, timeout, io.streams.env, argv, read_only)
    from platctl.render.diagnose import render_json, render_table

    out = io.streams.out
    with io.streams.whole(out) as whole:
        if output == "json":
            whole.write(render_json(found, profile.name, time.monotonic() - started) + "\n")
        else:
            whole.write(render_table(found, profile.name, color=io.streams.color(out),
                                     width=io.streams.width(out)))
        whole.flush()
    if any(lay.reason == "internal" for d in found for lay in d.layers):
        return ExitCode.INTERNAL
    return ExitCode.OK if all(d.ok for d in found) else ExitCode.FAILED


def run(profile: Any, services: tuple[str, ...], timeout: float, env: Mapping[str, str],
        argv: tuple[str, ...] | None, read_only: bool = False) -> list[Diagnosis]:
    from platctl import runner
    from platctl.checks import MODULES
    from platctl.checks.base import CheckContext
    from platctl.checks.tls import endpoint
    from platctl.secrets import scrub

    ctx = CheckContext(profile=profile, timeout=timeout, env=env, runtime_command=argv,
                       read_only=read_only)
    endpoints = {s: endpoint(profile, s) for s in services}
    network: dict[str, list[Layer]] = {s: [] for s in services}

    def below(svc: str) -> None:
        check = importlib.import_module(MODULES[svc]).CHECK(ctx)
        network[svc] = _network(check, endpoints[svc], timeout)

    threads = [threading.Thread(target=below, args=(s,), name=f"diagnose-{s}", daemon=True)
               for s in services if endpoints[s] is not None]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # each layer is bounded by the timeout on its own
    reached = tuple(s for s in services if not any(lay.status == "fail" for lay in network[s]))
    checks: dict[str, list[Any]] = {s: [] for s in services}
    if reached:  # the runner's own verdicts (and deadlines) for auth and operations
        opts = runner.Options(timeout=timeout, only=reached, keep_going=True,
                              skip=tuple(f"{s}.tls" for s in reached if endpoints[s]),
                              runtime_command=argv, read_only=read_only)
        for c in runner.run(profile, opts, env).report.checks:
            checks[c.service].append(c)
    secrets = io.streams.secrets | profile.secret_values()
    out = []
    for svc in services:
        layers = network[svc] + _check_layers(svc, checks[svc], network[svc])
        layers = [replace(lay, message=scrub(lay.message, secrets),
                          hint=scrub(lay.hint, secrets) if lay.hint else None) for lay in layers]
        ep = endpoints[svc]
        out.append(Diagnosis(svc, ep.shown if ep else None, tuple(layers)))
    return out


def _network(check: Any, ep: Any, timeout: float) -> list[Layer]:
    from platctl import layers

    hint = check.hint(ep.field)
    dns, addrs = layers.resolve(ep, timeout, hint)
    if dns.status == "fail":
        return [dns, not_reached("tcp", "dns"), not_reached("tls", "dns")]
    tcp, address = layers.connect(ep, addrs, timeout, hint)
    if tcp.status == "fail":
        return [dns, tcp, not_reached("tls", "tcp")]
    return [dns, tcp, layers.tls(check, ep, address, timeout)]


def _check_layers(svc: str, results: list[Any], network: list[Layer]) -> list[Layer]:
    broken = next((lay.layer for lay in network if lay.status == "fail"), None)
    ids = [c for c in contract.BY_NAME[svc].check_ids if c != f"{svc}.tls"]
    if broken:
        return [not_reached(_kind(c), broken, c) for c in ids]
    out = []
    for c in results:
        if c.id == f"{svc}.tls":
            continue
        status = c.status.value
        if status == "skip" and c.message.startswith("not run:"):
            status = NOT_REACHED  # a gate before it failed
        out.append(Layer(_kind(c.id), status, c.duration_ms, c.message, c.hint,
                         c.reason.value if c.reason else None, check=c.id))
    return out


def _kind(check_id: str) -> str:
    return "auth" if check_id in AUTH_CHECKS else "operation"
