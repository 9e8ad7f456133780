"""Telemetry (OTLP) checks through the real runner against the collector emulator over real
HTTP/1.1 and h2c: one test per failure class (status, reason, message words, hint key), the
gRPC/HTTP port mix-ups in both directions, and the CLI's exit codes and JSON."""
from __future__ import annotations

import json
import time

import pytest

from tests.emulators.otlp import OtlpEmulator
from tests.support import assert_fail, by_id, hung_server, platctl, run_report, write_profile

IDS = ("telemetry.endpoint", "telemetry.connect", "telemetry.export")
ENDPOINT, PROTOCOL = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"


@pytest.fixture
def emu():
    with OtlpEmulator() as e:
        yield e


@pytest.fixture
def grpc_emu():
    with OtlpEmulator(mode="grpc") as e:
        yield e


def otlp(tmp_path, endpoint, protocol="http/protobuf"):
    profile = write_profile(tmp_path, telemetry={"endpoint": endpoint, "protocol": protocol})
    report = run_report(profile, only=("telemetry",), timeout=2)
    return report, by_id(report)


def statuses(r):
    return [r[i].status.value for i in IDS]


# -- green paths ---------------------------------------------------------------------------------
def test_green_http_protobuf(tmp_path, emu):
    report, r = otlp(tmp_path, emu.url)
    assert statuses(r) == ["pass"] * 3 and report.ok
    assert f"http/protobuf to {emu.url}/v1/traces (port {emu.port} from the URL)" \
        == r["telemetry.endpoint"].message
    assert "collector accepted an empty OTLP/HTTP export" in r["telemetry.export"].message
    req = emu.requests[-1]  # an empty export: nothing stored, nothing retried
    assert (req.method, req.path, req.header("content-type"), req.body) == \
        ("POST", "/v1/traces", "application/x-protobuf", b"")
    assert len(emu.requests) == 1 and emu.spans_received == 0


def test_green_http_json(tmp_path, emu):
    report, r = otlp(tmp_path, emu.url + "/", "http/json")
    assert statuses(r) == ["pass"] * 3 and report.ok
    assert "(http/json)" in r["telemetry.export"].message
    assert (emu.requests[-1].header("content-type"), emu.requests[-1].body) == \
        ("application/json", b"{}")


def test_green_grpc(tmp_path, grpc_emu):
    report, r = otlp(tmp_path, grpc_emu.url, "grpc")
    assert statuses(r) == ["pass"] * 3 and report.ok
    assert "plaintext h2c" in r["telemetry.endpoint"].message
    assert "accepted an empty OTLP/gRPC export" in r["telemetry.export"].message
    req = grpc_emu.requests[-1]
    assert req.path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    assert req.body == b"\x00\x00\x00\x00\x00" and grpc_emu.received[-1].encoding == "grpc"


def test_base_path_gets_v1_traces_appended(tmp_path, emu):
    # The emulator serves /v1/traces only: /otlp/v1/traces is a 404 that names the full path.
    _, r = otlp(tmp_path, emu.url + "/otlp")
    assert r["telemetry.endpoint"].status.value == "pass"
    assert "/otlp/v1/traces" in r["telemetry.endpoint"].message
    assert_fail(r["telemetry.export"], "missing", "/otlp/v1/traces", "base URL")


def test_full_traces_url_is_used_as_is_with_a_warning(tmp_path, emu):
    report, r = otlp(tmp_path, emu.url + "/v1/traces")
    assert statuses(r) == ["warn", "pass", "pass"] and report.ok
    assert "SDKs append /v1/traces" in r["telemetry.endpoint"].message
    assert emu.requests[-1].path == "/v1/traces"


# -- collector-level failures --------------------------------------------------------------------
def test_traces_pipeline_disabled(tmp_path, emu):
    emu.signals.discard("traces")
    report, r = otlp(tmp_path, emu.url)
    assert statuses(r)[:2] == ["pass", "pass"] and not report.ok
    assert_fail(r["telemetry.export"], "missing", "no traces pipeline at /v1/traces",
                "no traces receiver", hint=ENDPOINT)


def test_traces_pipeline_disabled_grpc(tmp_path, grpc_emu):
    grpc_emu.signals.discard("traces")
    _, r = otlp(tmp_path, grpc_emu.url, "grpc")
    assert_fail(r["telemetry.export"], "missing", "no traces pipeline", "grpc-status 12",
                hint=ENDPOINT)


def test_html_proxy_page(tmp_path, emu):
    emu.fault = "html"  # 200 text/html: the official exporter would call it delivered
    _, r = otlp(tmp_path, emu.url)
    assert_fail(r["telemetry.export"], "unexpected", "HTML page", "proxy", hint=ENDPOINT)


def test_http500(tmp_path, emu):
    emu.fault = "http500"
    _, r = otlp(tmp_path, emu.url)
    assert_fail(r["telemetry.export"], "server", "HTTP 500", hint=ENDPOINT)
    assert len(emu.requests) == 1  # one attempt, no retry


def test_health_check_port_is_not_otlp(tmp_path, emu):
    emu.mode = "health"
    _, r = otlp(tmp_path, emu.url)
    assert_fail(r["telemetry.export"], "unexpected", "health", hint=ENDPOINT)


def test_reset(tmp_path, emu):
    emu.fault = "reset"
    _, r = otlp(tmp_path, emu.url)
    assert_fail(r["telemetry.export"], "reset", "reset", hint=ENDPOINT)


def test_garbage(tmp_path, emu):
    emu.fault = "garbage"
    _, r = otlp(tmp_path, emu.url)
    assert_fail(r["telemetry.export"], "unexpected", "did not answer with valid HTTP",
                hint=ENDPOINT)
    assert "gRPC" not in r["telemetry.export"].message


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_hung_collector_verdict_within_timeout(tmp_path, protocol):
    with hung_server() as port:
        t0 = time.monotonic()
        _, r = otlp(tmp_path, f"http://127.0.0.1:{port}", protocol)
        elapsed = time.monotonic() - t0
    print(f"hung collector ({protocol}): verdict with --timeout 2 in {elapsed:.2f} s")
    assert r["telemetry.connect"].status.value == "pass"  # it accepts, then never answers
    assert_fail(r["telemetry.export"], "timeout", "timed out after 2.0 s", hint=ENDPOINT)
    assert elapsed <= 2.5


# -- transport failures --------------------------------------------------------------------------
def test_refused(tmp_path):
    report, r = otlp(tmp_path, "http://127.0.0.1:1")
    assert_fail(r["telemetry.connect"], "refused", "connection refused", "127.0.0.1:1",
                hint=ENDPOINT)
    assert statuses(r) == ["pass", "fail", "skip"] and not report.ok


def test_dns(tmp_path):
    _, r = otlp(tmp_path, "http://no-such-collector.invalid:4318")
    assert_fail(r["telemetry.connect"], "dns", "DNS lookup failed", hint=ENDPOINT)


def test_tls_against_plaintext_collector(tmp_path, emu):
    _, r = otlp(tmp_path, emu.url.replace("http://", "https://"))
    assert_fail(r["telemetry.tls"], "tls", "TLS handshake", hint=ENDPOINT)
    assert "tls.ca_file" in r["telemetry.tls"].hint


# -- port/protocol mix-ups -----------------------------------------------------------------------
def test_grpc_port_given_to_http_protobuf(tmp_path, grpc_emu):
    report, r = otlp(tmp_path, grpc_emu.url)
    assert statuses(r)[:2] == ["pass", "pass"] and not report.ok
    assert_fail(r["telemetry.export"], "unexpected", "speaks gRPC (HTTP/2), not OTLP/HTTP",
                "use 4318", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc", hint=PROTOCOL)


def test_http_port_given_to_grpc(tmp_path, emu):
    report, r = otlp(tmp_path, emu.url, "grpc")
    assert not report.ok
    assert_fail(r["telemetry.export"], "unexpected", "speaks OTLP/HTTP, not gRPC", "use 4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", hint=PROTOCOL)


def test_port_4317_with_http_protocol_warns_up_front(tmp_path):
    _, r = otlp(tmp_path, "http://127.0.0.1:4317")  # nothing listens: only the warning matters
    ep = r["telemetry.endpoint"]
    assert ep.status.value == "warn"
    assert "4317 is the OTLP/gRPC port; OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf" in ep.message
    assert "use 4318 or set the protocol to grpc" in ep.message
    assert ENDPOINT in ep.hint and PROTOCOL in ep.hint


def test_port_4318_with_grpc_warns_and_portless_http_names_the_port(tmp_path):
    _, r = otlp(tmp_path, "http://127.0.0.1:4318", "grpc")
    assert "4318 is the OTLP/HTTP port; OTEL_EXPORTER_OTLP_PROTOCOL is grpc" in \
        r["telemetry.endpoint"].message
    _, r = otlp(tmp_path, "http://127.0.0.1", "grpc")
    ep = r["telemetry.endpoint"]
    assert ep.status.value == "warn" and "port 443: gRPC's default" in ep.message
    assert "not the OTLP default 4317" in ep.message


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_exit_codes_and_json(tmp_path, emu):
    green = write_profile(tmp_path, "green", telemetry={"endpoint": emu.url})
    res = platctl("validate", "-p", str(green), "--only", "telemetry", "-o", "json",
                  "--timeout", "2")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["schema"] == "platctl.report/v1" and doc["ok"] is True
    checks = {c["id"]: c for c in doc["checks"] if c["service"] == "telemetry"}
    assert [checks[i]["status"] for i in IDS] == ["pass"] * 3
    assert all(c["plane"] == "control" for c in checks.values())

    emu.signals.discard("traces")
    res = platctl("validate", "-p", str(green), "--only", "telemetry", "-o", "json",
                  "--timeout", "2")
    assert res.returncode == 1, res.stderr
    doc = json.loads(res.stdout)
    export = next(c for c in doc["checks"] if c["id"] == "telemetry.export")
    assert (doc["ok"], export["status"], export["reason"]) == (False, "fail", "missing")
    assert "no traces pipeline" in export["message"] and ENDPOINT in export["hint"]


class _AuthOtlp(OtlpEmulator):
    """A managed collector's gateway: OTLP only with the right API-key header."""

    def route(self, req):
        from tests.emulators.base import text_reply
        if req.header("x-api-key") != "otlp-key-1":
            return text_reply(401, "unauthorized")
        return super().route(req)


@pytest.mark.parametrize("headers,status", [("x-api-key=otlp-key-1", "pass"),
                                            ("x-api-key=wrong", "fail"), (None, "fail")])
def test_exporter_headers_are_sent_and_never_shown(tmp_path, headers, status):
    with _AuthOtlp() as emu:
        section = {"endpoint": emu.url}
        if headers:
            section["headers"] = headers
        r = by_id(run_report(write_profile(tmp_path, telemetry=section), only=("telemetry",),
                             timeout=2))
    export = r["telemetry.export"]
    assert export.status.value == status
    if status == "fail":
        assert export.reason.value == "auth" and "OTEL_EXPORTER_OTLP_HEADERS" in export.hint
    assert "otlp-key-1" not in export.message + (export.hint or "")
