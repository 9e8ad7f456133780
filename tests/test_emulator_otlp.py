"""Proves the OpenTelemetry Collector emulator against the official OTLP/HTTP exporter
(opentelemetry-exporter-otlp-proto-http 1.45.2), raw HTTP (httpx), raw sockets and an h2 client.

Each failure class a check must classify is produced once: signal without pipeline (404), wrong
method/content type (405/415), undecodable body (400 + google.rpc.Status), health not ready (503),
a gRPC port given to an HTTP setting (grpc mode) and the reverse (h2c preface on the HTTP port).
"""
from __future__ import annotations

import gzip
import json
import socket
import time

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.emulators.otlp import GRPC_SETTINGS, H2_PREFACE, JSON, PB, OtlpEmulator

TRACE_SVC = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ENV = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
       "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_COMPRESSION",
       "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
       "NO_PROXY", "no_proxy")


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with OtlpEmulator() as e:
        yield e


def finished_spans(n: int = 1):
    """Real SDK spans (ReadableSpan) to hand to the exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("platctl.test")
    for i in range(n):
        with tracer.start_as_current_span(f"probe-{i}"):
            pass
    return memory.get_finished_spans()


def export(emu: OtlpEmulator, timeout: float = 2, **kw) -> SpanExportResult:
    exporter = OTLPSpanExporter(endpoint=emu.url + "/v1/traces", timeout=timeout, **kw)
    try:
        return exporter.export(finished_spans())
    finally:
        exporter.shutdown()


def post(emu: OtlpEmulator, path: str = "/v1/traces", body: bytes = b"", ctype: str | None = PB,
         **headers: str) -> httpx.Response:
    if ctype:
        headers["content-type"] = ctype
    return httpx.post(emu.url + path, content=body, headers=headers, timeout=2, trust_env=False)


# -- the official exporter ---------------------------------------------------------------------
def test_official_exporter_delivers_a_span(emu):
    assert export(emu) is SpanExportResult.SUCCESS
    assert emu.spans_received == 1
    assert emu.received[-1].encoding == "protobuf"
    req = emu.requests[-1]
    assert (req.method, req.path, req.header("content-type")) == ("POST", "/v1/traces", PB)


def test_official_exporter_gzip_is_decompressed(emu):
    assert export(emu, compression=Compression.Gzip) is SpanExportResult.SUCCESS
    assert emu.requests[-1].header("content-encoding") == "gzip"
    assert emu.spans_received == 1


def test_traces_without_pipeline_is_404_and_export_fails(emu):
    emu.signals.discard("traces")
    assert export(emu) is SpanExportResult.FAILURE  # 404 is not retryable: one attempt
    assert len(emu.requests) == 1 and emu.spans_received == 0
    r = post(emu)
    assert (r.status_code, r.text, r.headers["content-type"]) == (404, "404 page not found\n",
                                                                  "text/plain; charset=utf-8")
    assert post(emu, "/v1/metrics").status_code == 200  # other signals still served


# -- raw HTTP answers (otlphttp.go) ----------------------------------------------------------
def test_non_post_is_405_text(emu):
    r = httpx.get(emu.url + "/v1/traces", timeout=2, trust_env=False)
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        405, "405 method not allowed, supported: [POST]", "text/plain")


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/grpc"])
def test_missing_or_other_content_type_is_415_text(emu, ctype):
    r = post(emu, body=b"{}", ctype=ctype)
    assert (r.status_code, r.headers["content-type"]) == (415, "text/plain")
    assert r.text == "415 unsupported media type, supported: [application/json, application/x-protobuf]"


def test_empty_protobuf_post_is_200_with_zero_length_body(emu):
    r = post(emu)
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", PB)
    assert emu.received[-1].items == 0


def test_json_empty_object_is_partial_success(emu):
    r = post(emu, body=b"{}", ctype="application/json; charset=utf-8")  # params are ignored
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, '{"partialSuccess":{}}', JSON)


def test_json_spans_are_counted(emu):
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "a"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "name": "b"}]}]}]}
    assert post(emu, body=json.dumps(doc).encode(), ctype=JSON).status_code == 200
    assert emu.spans_received == 2


def test_undecodable_bodies_are_400_status_invalid_argument(emu):
    r = post(emu, body=b"", ctype=JSON)  # empty JSON body does not decode
    assert (r.status_code, r.headers["content-type"]) == (400, JSON)
    assert r.json()["code"] == 3 and r.json()["message"]
    r = post(emu, body=b"\xff\xff\xff\xff", ctype=PB)  # errors come back in the request's encoding
    assert (r.status_code, r.headers["content-type"]) == (400, PB)
    status = Status.FromString(r.content)
    assert status.code == 3 and status.message


def test_gzip_content_encoding(emu):
    body = ExportTraceServiceRequest().SerializeToString()
    assert post(emu, body=gzip.compress(body), **{"content-encoding": "gzip"}).status_code == 200
    r = post(emu, body=b"not gzip", ctype=JSON, **{"content-encoding": "gzip"})
    assert (r.status_code, r.json()) == (400, {"code": 3, "message": "gzip: invalid header"})
    r = post(emu, body=b"x", ctype=JSON, **{"content-encoding": "br"})
    assert (r.status_code, r.json()["message"]) == (400, "unsupported Content-Encoding: br")


# -- health_check extension ------------------------------------------------------------------
def test_health_ready_and_not_ready(emu):
    emu.mode = "health"
    r = httpx.get(emu.url + "/", timeout=2, trust_env=False)
    body = r.json()
    assert (r.status_code, r.headers["content-type"], body["status"]) == (200, JSON, "Server available")
    assert body["upSince"].endswith("Z") and body["uptime"].endswith("s")
    assert list(body) == ["status", "upSince", "uptime"]
    emu.ready = False
    r = httpx.get(emu.url + "/", timeout=2, trust_env=False)
    assert (r.status_code, r.headers["content-type"]) == (503, JSON)
    assert r.text == '{"status":"Server not available","upSince":"0001-01-01T00:00:00Z","uptime":""}'


# -- gRPC confusion ----------------------------------------------------------------------------
def test_grpc_port_given_to_http_exporter(emu):
    """HTTP/1.1 POST to an OTLP/gRPC port: grpc-go's SETTINGS frame, then the connection drops."""
    emu.mode = "grpc"
    with socket.create_connection(("127.0.0.1", emu.port), timeout=2) as s:
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                  b"Content-Length: 0\r\n\r\n")
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass  # the unread request makes the server's close an RST
    assert got == GRPC_SETTINGS == b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x05\x00\x00@\x00"
    assert emu.bogus_greetings == [b"POST /v1/traces HTTP/1.1"]  # grpc-go reads exactly 24 bytes
    with pytest.raises(httpx.TransportError):  # what an HTTP client makes of it
        post(emu)
    start = time.monotonic()
    assert export(emu, timeout=0.5) is SpanExportResult.FAILURE
    assert time.monotonic() - start < 2 and emu.spans_received == 0


def h2_call(port: int, path: str, body: bytes, ctype: str = "application/grpc"):
    """Prior-knowledge h2c unary call; returns (first server bytes, headers, data, trailers)."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"),
                            (":path", path), ("content-type", ctype), ("te", "trailers")])
    conn.send_data(sid, body, end_stream=True)
    headers, data, trailers, first = {}, b"", {}, b""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(conn.data_to_send())
        while True:
            chunk = s.recv(65536)
            assert chunk, "server closed before the stream ended"
            first = first or chunk
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived):
                    headers = dict(ev.headers)
                elif isinstance(ev, h2.events.DataReceived):
                    data += ev.data
                elif isinstance(ev, h2.events.TrailersReceived):
                    trailers = dict(ev.headers)
                elif isinstance(ev, h2.events.StreamEnded):
                    return first, headers, data, trailers
            s.sendall(conn.data_to_send())


def test_grpc_mode_answers_h2c_export(emu):
    emu.mode = "grpc"
    first, headers, data, trailers = h2_call(emu.port, TRACE_SVC, b"\x00\x00\x00\x00\x00")
    assert first.startswith(GRPC_SETTINGS)
    assert headers == {":status": "200", "content-type": "application/grpc"}
    assert data == b"\x00\x00\x00\x00\x00"  # empty ExportTraceServiceResponse
    assert trailers == {"grpc-status": "0", "grpc-message": ""}
    msg = ExportTraceServiceRequest()
    msg.resource_spans.add().scope_spans.add().spans.add(name="x", trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    raw = msg.SerializeToString()
    h2_call(emu.port, TRACE_SVC, b"\x00" + len(raw).to_bytes(4, "big") + raw)
    assert emu.spans_received == 1 and emu.received[-1].encoding == "grpc"


def test_grpc_mode_unknown_service_and_bad_content_type(emu):
    emu.mode = "grpc"
    emu.signals.discard("logs")
    _, headers, _, _ = h2_call(emu.port, "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                               b"\x00\x00\x00\x00\x00")  # trailers-only response
    assert (headers["grpc-status"], headers["grpc-message"]) == (
        "12", "unknown service opentelemetry.proto.collector.logs.v1.LogsService")
    _, headers, _, _ = h2_call(emu.port, TRACE_SVC, b"", ctype="application/x-protobuf")
    assert (headers[":status"], headers["grpc-status"]) == ("415", "3")


def test_grpc_mode_via_httpx_http2_prior_knowledge(emu):
    emu.mode = "grpc"
    with httpx.Client(http1=False, http2=True, timeout=2, trust_env=False) as c:
        r = c.post(emu.url + TRACE_SVC, content=b"\x00\x00\x00\x00\x00",
                   headers={"content-type": "application/grpc", "te": "trailers"})
    assert (r.http_version, r.status_code, r.headers["content-type"]) == ("HTTP/2", 200, "application/grpc")
    assert r.content == b"\x00\x00\x00\x00\x00"  # (httpx does not expose the grpc-status trailer)


def test_http_port_given_to_grpc_client(emu):
    """h2c preface on the OTLP/HTTP port: Go's HTTP/1.1 server answers a bare 400 and closes."""
    with socket.create_connection(("127.0.0.1", emu.port), timeout=2) as s:
        s.sendall(H2_PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # preface + empty SETTINGS
        got = b""
        while chunk := s.recv(4096):
            got += chunk
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n")
    assert got.endswith(b"Content-Length: 0\r\n\r\n")
    with httpx.Client(http1=False, http2=True, timeout=2, trust_env=False) as c, \
            pytest.raises(httpx.RemoteProtocolError):
        c.post(emu.url + TRACE_SVC, content=b"\x00\x00\x00\x00\x00",
               headers={"content-type": "application/grpc"})


# -- base faults -----------------------------------------------------------------------------
def test_fault_hang_times_out(emu):
    emu.fault = "hang"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.url + "/v1/traces", headers={"content-type": PB}, timeout=0.3, trust_env=False)


def test_fault_html_200_fools_the_exporter(emu):
    emu.fault = "html"
    assert export(emu) is SpanExportResult.SUCCESS  # any 2xx counts: a check must look at the body
    r = post(emu)
    assert (r.status_code, r.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert emu.spans_received == 0


def test_fault_http500_fails_without_retry(emu):
    emu.fault = "http500"
    assert export(emu) is SpanExportResult.FAILURE
    assert len(emu.requests) == 1  # 500 is not in the retryable set (429/502/503/504)


def test_fault_slow(emu):
    emu.fault, emu.slow_seconds = "slow", 0.3
    start = time.monotonic()
    assert post(emu).status_code == 200
    assert time.monotonic() - start >= 0.3
    emu.mode = "grpc"  # a slow gRPC port: SETTINGS arrive late
    with socket.create_connection(("127.0.0.1", emu.port), timeout=2) as s:
        s.settimeout(0.1)
        with pytest.raises(socket.timeout):
            s.recv(100)
        s.settimeout(2)
        assert s.recv(100) == GRPC_SETTINGS


@pytest.mark.parametrize("fault", ["reset", "garbage"])
def test_fault_reset_and_garbage_are_protocol_errors(emu, fault):
    emu.fault = fault
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        post(emu)
