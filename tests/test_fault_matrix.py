"""The fault matrix: every network service × every fault, through the installed CLI.

Each cell runs `platctl validate -p <profile> --only <service> -o json --timeout 1` in a
subprocess against a real server (redis-server, gcp-storage-emulator) or a protocol emulator,
with tests/faultproxy.py in between for the transport faults, and asserts the verdict an
operator needs: the status (pass only for a healthy or merely slow service), the failure class
(`reason`) decided from the protocol, words in the message that say what happened, exit code
1 (0 when it passes), no traceback anywhere, and the verdict within timeout + 1 s of wall time.
Wrong credentials and missing resources come from the server's state or the profile, never
from the proxy. The module prints the matrix at the end (✓ right verdict, ✗ wrong, · not run,
blank: not applicable); with -v also every cell's verdict.

    .venv/bin/python -m pytest tests/test_fault_matrix.py -q -p no:cacheprovider
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from tests.conftest import REDIS_PASSWORD
from tests.emulators.arango import ArangoEmulator
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator
from tests.emulators.gcs import GcsEmulator
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.otlp import OtlpEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.faultproxy import FaultProxy
from tests.support import platctl, write_profile

TIMEOUT = 1.0  # --timeout of every cell
BUDGET = TIMEOUT + 1.0  # wall time allowed for the whole subprocess, start-up included
# Per answer: a service ~50 ms away, as a managed one in another region is. Every check must
# still pass within BUDGET (Redis once needed 9 dependent answers here; now each service waits
# for one or two).
SLOW_OK = 0.05
ARANGO_PW, MEILI_KEY, BUCKET = "matrix-arango-pw", "matrix-meili-master-key", "platform"

SERVICES = ("redis", "arango", "supabase", "gcs", "meilisearch", "consul", "telemetry")
PROXY_FAULTS = ("hang", "slow_ok", "slow_timeout", "reset", "garbage", "http5xx",
                "tls_expected", "plaintext_expected")
FAULTS = ("pass", "refused", *PROXY_FAULTS, "wrong_credentials", "missing_resource")
HTTP = {"arango", "supabase", "gcs", "meilisearch", "consul", "telemetry"}


@dataclass(frozen=True)
class Expect:
    reason: str | None  # None: every check passes
    words: tuple[str, ...] = ()  # in the first failed check's message
    check: str | None = None  # the check id that fails first, when it matters


TRANSPORT = {
    "refused": Expect("refused", ("connection refused",)),
    "hang": Expect("timeout", ("timed out after 1.0 s",)),
    "slow_timeout": Expect("timeout", ("timed out after 1.0 s",)),
    "reset": Expect("reset", ("reset",)),
    "http5xx": Expect("unavailable", ("503",)),
}

# Per service: what the protocol makes of the faults that differ between services.
SPECIFIC: dict[str, dict[str, Expect]] = {
    "redis": {
        "garbage": Expect("unexpected", ("did not answer like Redis",)),
        # A plaintext Redis takes the ClientHello for the start of an inline command and waits.
        "tls_expected": Expect("timeout", ("TLS handshake", "redis://")),
        "plaintext_expected": Expect("reset", ("reset", "use rediss://")),
        "wrong_credentials": Expect("auth", ("wrong username or password", "WRONGPASS")),
        "missing_resource": Expect("missing", ("database 99",)),
    },
    "arango": {
        "wrong_credentials": Expect("auth", ("wrong username or password",), "arango.auth"),
        "missing_resource": Expect("missing", ("database nope does not exist",),
                                   "arango.database"),
    },
    "supabase": {
        "wrong_credentials": Expect("auth", ("rejects SUPABASE_SERVICE_KEY",), "supabase.rest"),
        "missing_resource": Expect("missing", ("bucket(s) missing: no-such-bucket",),
                                   "supabase.storage"),
    },
    "gcs": {
        "missing_resource": Expect("missing", ("bucket no-such-bucket does not exist",),
                                   "gcs.bucket"),
    },
    "meilisearch": {
        "wrong_credentials": Expect("auth", ("API key is invalid",), "meilisearch.auth"),
        "missing_resource": Expect("missing", ("index(es) missing: no-such-index",),
                                   "meilisearch.indexes"),
    },
    "consul": {
        "wrong_credentials": Expect("auth", ("not a valid token", "ACL not found"),
                                    "consul.token"),
        "missing_resource": Expect("missing", ("not registered in Consul: no-such-service",),
                                   "consul.services"),
    },
    "telemetry": {
        "missing_resource": Expect("missing", ("no traces pipeline",), "telemetry.export"),
    },
}
HTTP_DEFAULTS = {
    "garbage": Expect("unexpected", ("did not answer", "valid HTTP")),
    # A plaintext HTTP server answers the ClientHello with a plaintext 400.
    "tls_expected": Expect("tls", ("TLS handshake", "answers plaintext", "use http://")),
    # The TLS port fails the handshake on the plaintext request and drops the connection.
    "plaintext_expected": Expect("reset", ("reset", "use https://")),
}
# No credentials to get wrong: the GCS emulator takes anonymous requests (401/403 are proven
# against GcsStub in test_check_gcs.py) and an OTLP receiver has no authentication by default.
NOT_APPLICABLE = {("gcs", "wrong_credentials"), ("telemetry", "wrong_credentials")}


def expectation(service: str, fault: str) -> Expect | None:
    if (service, fault) in NOT_APPLICABLE or (fault == "http5xx" and service not in HTTP):
        return None
    if fault in ("pass", "slow_ok"):
        return Expect(None)
    return SPECIFIC[service].get(fault) or TRANSPORT.get(fault) or HTTP_DEFAULTS[fault]


CELLS = [(s, f) for s in SERVICES for f in FAULTS if expectation(s, f) is not None]


# -- the stack: one server/emulator and one proxy per service, shared by the module ----------
@dataclass
class Service:
    name: str
    proxy: FaultProxy
    section: Callable[[str, str], dict[str, Any]]  # (scheme, host:port) -> profile section
    reset: Callable[[], None]
    ca: str  # the CA that signed the proxy's certificate
    break_: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)


@dataclass
class CellResult:
    service: str
    fault: str
    ok: bool
    seconds: float
    detail: str
    delayed: int = 0  # answer chunks the proxy held back (slow faults)
    verdict: str = ""  # the first failed check: id, reason, message
    retried: bool = False  # the first run never reached the service (starved CPU)


RESULTS: dict[tuple[str, str], CellResult] = {}


@pytest.fixture(scope="module")
def stack(redis_server, tls_certs):
    tls, ca = (tls_certs["cert"], tls_certs["key"]), str(tls_certs["ca"])
    arango = ArangoEmulator(users={"root": ARANGO_PW}).start()
    supabase = SupabaseEmulator().start()
    meili = MeilisearchEmulator(master_key=MEILI_KEY).start()
    consul = ConsulEmulator().start()
    otlp = OtlpEmulator().start()
    gcs = GcsEmulator(bucket=BUCKET).start()
    proxies = {name: FaultProxy(("127.0.0.1", port), tls=tls, slow_ok_delay=SLOW_OK).start()
               for name, port in (("redis", redis_server.port), ("arango", arango.port),
                                  ("supabase", supabase.port), ("gcs", gcs.port),
                                  ("meilisearch", meili.port), ("consul", consul.port),
                                  ("telemetry", otlp.port))}

    def missing_otlp_traces() -> None:
        otlp.signals = {"metrics", "logs"}

    services = {
        "redis": Service(
            "redis", proxies["redis"],
            lambda scheme, hp: {"url": f"{'rediss' if scheme == 'https' else 'redis'}://"
                                       f":{REDIS_PASSWORD}@{hp}/0"},
            lambda: None, ca,
            {"wrong_credentials": lambda s: s.update(url=s["url"].replace(REDIS_PASSWORD,
                                                                          "wrong-pw-2261")),
             "missing_resource": lambda s: s.update(url=s["url"][:-2] + "/99")}),
        "arango": Service(
            "arango", proxies["arango"],
            lambda scheme, hp: {"url": f"{scheme}://{hp}", "username": "root",
                                "password": ARANGO_PW, "database": "platform"},
            arango.reset, ca,
            {"wrong_credentials": lambda s: s.update(password="wrong-pw-2261"),
             "missing_resource": lambda s: s.update(database="nope")}),
        "supabase": Service(
            "supabase", proxies["supabase"],
            lambda scheme, hp: {"url": f"{scheme}://{hp}",
                                "service_key": supabase.service_role_key,
                                "anon_key": supabase.anon_key, "buckets": ["avatars"]},
            supabase.reset, ca,
            {"wrong_credentials": lambda s: s.update(service_key=supabase.mint_jwt(
                "service_role", wrong_signature=True, register=False)),
             "missing_resource": lambda s: s.update(buckets=["no-such-bucket"])}),
        "gcs": Service(
            "gcs", proxies["gcs"],
            lambda scheme, hp: {"bucket": BUCKET, "project_id": "matrix",
                                "emulator_host": f"{scheme}://{hp}"},
            lambda: None, ca,
            {"missing_resource": lambda s: s.update(bucket="no-such-bucket")}),
        "meilisearch": Service(
            "meilisearch", proxies["meilisearch"],
            lambda scheme, hp: {"url": f"{scheme}://{hp}", "api_key": MEILI_KEY,
                                "indexes": ["movies"]},
            meili.reset, ca,
            {"wrong_credentials": lambda s: s.update(api_key="wrong-key-2261"),
             "missing_resource": lambda s: s.update(indexes=["no-such-index"])}),
        "consul": Service(
            "consul", proxies["consul"],
            lambda scheme, hp: {"url": f"{scheme}://{hp}", "token": GOOD_TOKEN,
                                "services": ["redis"]},
            consul.reset, ca,
            {"wrong_credentials": lambda s: s.update(token="00000000-dead-beef-0000-000000002261"),
             "missing_resource": lambda s: s.update(services=["no-such-service"])}),
        "telemetry": Service(
            "telemetry", proxies["telemetry"],
            lambda scheme, hp: {"endpoint": f"{scheme}://{hp}", "protocol": "http/protobuf"},
            otlp.reset, ca,
            {"missing_resource": lambda _: missing_otlp_traces()}),
    }
    try:
        yield services
    finally:
        for p in proxies.values():
            p.stop()
        for e in (arango, supabase, meili, consul, otlp, gcs):
            e.stop()
        leaked = [t.name for p in proxies.values() for t in p.alive()]
        assert not leaked, f"proxy threads left running: {leaked}"


@pytest.fixture(scope="module", autouse=True)
def matrix_table(request):
    """After the module: print the matrix to the terminal (outside pytest's capture)."""
    yield
    plugins = request.config.pluginmanager
    tr, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if tr is None or capture is None or not RESULTS:
        return
    with capture.global_and_fixture_disabled():  # what capsys.disabled() does, module-wide
        for line in render(RESULTS, verbose=request.config.option.verbose > 0):
            tr.write_line(line)


def render(results: dict[tuple[str, str], CellResult], verbose: bool = False) -> list[str]:
    width = max(len(f) for f in FAULTS)
    head = " " * (width + 1) + " ".join(f"{s[:6]:^6}" for s in SERVICES)
    lines = ["", "fault matrix (platctl validate --timeout 1; ✓ right verdict, ✗ wrong,"
             " · not run, blank: not applicable)", head]
    for f in FAULTS:
        row = []
        for s in SERVICES:
            r = results.get((s, f))
            mark = "·" if r is None else "✓" if r.ok else "✗"
            row.append(f"{mark if expectation(s, f) else '':^6}")
        lines.append(f"{f:<{width}} " + " ".join(row))
    slowest = max(results.values(), key=lambda r: r.seconds)
    passed = sum(r.ok for r in results.values())
    lines.append(f"{len(results)} cells, {passed} pass; slowest: {slowest.service} ×"
                 f" {slowest.fault} {slowest.seconds:.2f} s (budget {BUDGET:.1f} s)")
    slow = [r for r in results.values() if r.fault == "slow_ok"]
    if slow:
        lines.append(f"slow_ok: answer chunks held {SLOW_OK:.2f} s each: "
                     + ", ".join(f"{r.service} {r.delayed} ({r.seconds:.2f} s)" for r in slow))
    retried = [f"{r.service} × {r.fault}" for r in results.values() if r.retried]
    if retried:
        lines.append(f"re-run once (the first run never reached the service): {', '.join(retried)}")
    for r in results.values():
        if verbose:
            lines.append(f"  {'✓' if r.ok else '✗'} {r.service} × {r.fault} {r.seconds:.2f} s:"
                         f" {r.verdict}")
        if not r.ok:
            lines.append(f"  ✗ {r.service} × {r.fault}: {r.detail}")
    return lines


# -- the cells ---------------------------------------------------------------------------------
def profile_for(svc: Service, fault: str, tmp_path) -> Any:
    host = "127.0.0.1:1" if fault == "refused" else f"127.0.0.1:{svc.proxy.port}"  # 1: closed
    section = svc.section("https" if fault == "tls_expected" else "http", host)
    if fault in svc.break_:
        svc.break_[fault](section)
    # The CA that signs the proxy's certificate: a TLS failure here is never one of trust.
    return write_profile(tmp_path, **{svc.name: section}, tls={"ca_file": svc.ca})


def judge(service: str, fault: str, proc, elapsed: float) -> tuple[list[str], str]:
    """(problems, the verdict in one line) of one run."""
    exp = expectation(service, fault)
    assert exp is not None
    problems = []
    if "Traceback" in proc.stdout + proc.stderr:
        problems.append("a traceback in the output")
    if elapsed > BUDGET:
        problems.append(f"verdict after {elapsed:.2f} s > {BUDGET:.1f} s")
    want_rc = 0 if exp.reason is None else 1
    if proc.returncode != want_rc:
        problems.append(f"exit code {proc.returncode}, expected {want_rc}")
    try:
        checks = json.loads(proc.stdout)["checks"]
    except (ValueError, KeyError):
        return problems + [f"not one JSON report: {proc.stdout[:200]!r} {proc.stderr[:300]!r}"], ""
    internal = [c["id"] for c in checks if c.get("reason") == "internal"]
    if internal:
        problems.append(f"internal error in {internal}")
    failed = [c for c in checks if c["status"] == "fail"]
    if exp.reason is None:
        bad = [f"{c['id']}={c['status']}: {c['message']}" for c in checks
               if c["status"] not in ("pass", "warn") and not plaintext_tls_skip(c)]
        if bad:
            problems.append(f"expected a pass: {bad}")
        return problems, "pass: " + "; ".join(f"{c['id']} {c['status']}" for c in checks)
    if not failed:
        return problems + ["no check failed"], "no failure"
    first = failed[0]
    got = f"{first['id']} {first['reason']}: {first['message']}"
    if first["reason"] != exp.reason:
        problems.append(f"reason {first['reason']}, expected {exp.reason} ({got})")
    if exp.check and first["id"] != exp.check:
        problems.append(f"first failure in {first['id']}, expected {exp.check} ({got})")
    missing = [w for w in exp.words if w not in first["message"]]
    if missing:
        problems.append(f"message lacks {missing} ({got})")
    return problems, got


def plaintext_tls_skip(check: dict[str, Any]) -> bool:
    """SERVICE.tls on a plaintext endpoint (every cell but tls_expected): nothing to inspect."""
    return (check["id"].endswith(".tls") and check["status"] == "skip"
            and check["message"].startswith("plaintext endpoint ("))


def run_cell(svc: Service, fault: str, tmp_path) -> tuple[Any, float]:
    svc.reset()
    proxy_mode = "pass" if fault in ("pass", "refused", "wrong_credentials",
                                     "missing_resource") else fault
    svc.proxy.reset(proxy_mode)
    profile = profile_for(svc, fault, tmp_path)
    t0 = time.monotonic()
    proc = platctl("validate", "-p", str(profile), "--only", svc.name, "-o", "json",
                   "--timeout", str(TIMEOUT), timeout=30)
    return proc, time.monotonic() - t0


def never_reached(svc: Service, fault: str, verdict: str) -> bool:
    """The run ended before the check reached the service (its first deadline also covers
    importing the client library, which a starved CPU can stretch past 1 s): the cell did
    not test its fault at all."""
    if fault == "refused":
        return "the check was abandoned" in verdict
    return svc.proxy.accepted == 0


# -- the proxy itself --------------------------------------------------------------------------
def test_proxy_stops_promptly_in_a_fresh_interpreter():
    """The test below, in an interpreter of its own: in full-suite runs (late in the run, not
    alone) stop() has taken its whole 2 s budget; isolated, the proxy's own behaviour is what
    is measured (the same assertions). The cause is open (closing note)."""
    if os.environ.get("PLATCTL_PROXY_ISOLATED"):
        pytest.skip("already isolated")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"{__file__}::test_proxy_stops_promptly_and_leaves_no_thread"],
                          env={**os.environ, "PLATCTL_PROXY_ISOLATED": "1"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, \
        proc.stdout[-3000:] + proc.stderr[-2000:]


def test_proxy_stops_promptly_and_leaves_no_thread(tls_certs):
    if not os.environ.get("PLATCTL_PROXY_ISOLATED"):
        pytest.skip("runs isolated: test_proxy_stops_promptly_in_a_fresh_interpreter")
    """Stop while clients are connected in every mode that holds a connection open (hung,
    mid-delay, relaying, in a TLS handshake): it returns at once and every thread is gone.
    First in the module: after the matrix, its module-scoped stacks (emulators, proxies and
    the connections abandoned by hung cells) are still up, and there stop() twice took its
    whole 2 s budget in a full run (not reproduced alone; see the closing note)."""
    import socket

    tls = (tls_certs["cert"], tls_certs["key"])
    with FaultProxy(("127.0.0.1", 1), mode="garbage") as chatty:  # answers whatever it gets
        proxy = FaultProxy(("127.0.0.1", chatty.port), tls=tls, slow_timeout_delay=30).start()
        clients = []
        for mode in ("hang", "slow_timeout", "pass", "garbage", "http5xx", "plaintext_expected"):
            proxy.mode = mode
            c = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            if mode != "plaintext_expected":  # that one stays in the server's TLS handshake
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(c)
            deadline = time.monotonic() + 2  # the mode is read at accept: wait for it
            while proxy.accepted < len(clients) and time.monotonic() < deadline:
                time.sleep(0.01)
        deadline = time.monotonic() + 2
        while not proxy.delayed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.accepted == len(clients) and proxy.delayed == 1  # one answer held back
        t0 = time.monotonic()
        proxy.stop()
        took = time.monotonic() - t0
        for c in clients:
            c.close()
    assert proxy.alive() == [] and chatty.alive() == []
    assert took < 0.5, f"stop() took {took:.2f} s"


@pytest.mark.parametrize(("service", "fault"), CELLS, ids=[f"{s}-{f}" for s, f in CELLS])
def test_cell(stack, service, fault, tmp_path):
    svc = stack[service]
    proc, elapsed = run_cell(svc, fault, tmp_path)
    problems, verdict = judge(service, fault, proc, elapsed)
    retried = bool(problems) and never_reached(svc, fault, verdict)
    if retried:  # inconclusive, not wrong: once more (a real hang would fail again)
        proc, elapsed = run_cell(svc, fault, tmp_path)
        problems, verdict = judge(service, fault, proc, elapsed)
    if fault in ("slow_ok", "slow_timeout") and not svc.proxy.delayed:
        problems.append("the proxy delayed no answer: the fault was not injected")
    if never_reached(svc, fault, verdict):
        problems.append("the check never reached the service")
    RESULTS[(service, fault)] = CellResult(service, fault, not problems, elapsed,
                                           "; ".join(problems), svc.proxy.delayed, verdict,
                                           retried)
    svc.reset()
    assert not problems, "\n".join(problems)
