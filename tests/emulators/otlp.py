"""OpenTelemetry Collector emulator: the otlpreceiver's OTLP/HTTP server, the health_check
extension, and an OTLP/gRPC port as grpc-go serves it (reference: protocols.md section 7).

``emu.mode`` (switchable at run time) picks what the port is:
- "http"   (default 4318) receiver/otlpreceiver otlphttp.go + confighttp's decompressor;
- "health" (default 13133) contrib extension/healthcheckextension: every path answers the state;
- "grpc"   (default 4317) grpc-go internal/transport/http2_server.go behind the OTLP services.
Base faults (``emu.fault``) take precedence over every mode and answer as HTTP/1.1, except
"slow" in grpc mode, which delays grpc-go's SETTINGS frame by ``slow_seconds``.
"""
from __future__ import annotations

import gzip
import json
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .base import Emulator, Reply, Request

PB, JSON = "application/x-protobuf", "application/json"  # encoder.go pbContentType/jsonContentType
# signal -> (HTTP path, request message, gRPC service name registered by startGRPCServer)
SIGNALS = {
    "traces": ("/v1/traces", ExportTraceServiceRequest, "opentelemetry.proto.collector.trace.v1.TraceService"),
    "metrics": ("/v1/metrics", ExportMetricsServiceRequest,
                "opentelemetry.proto.collector.metrics.v1.MetricsService"),
    "logs": ("/v1/logs", ExportLogsServiceRequest, "opentelemetry.proto.collector.logs.v1.LogsService"),
}
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# grpc-go newHTTP2Server writes its SETTINGS before reading anything: with default options only
# SETTINGS_MAX_FRAME_SIZE(0x5)=16384 (http2MaxFrameLen). 9-byte frame header + one 6-byte setting.
GRPC_SETTINGS = bytes.fromhex("000006" "04" "00" "00000000" "0005" "00004000")
GRPC_HANDSHAKE_TIMEOUT = 120.0  # grpc-go server connectionTimeout default: deadline on the preface


@dataclass
class Received:
    """One accepted export: ``items`` = spans, metric data points or log records decoded."""
    signal: str
    encoding: str  # "protobuf" | "json" | "grpc"
    items: int


def rpc_status(code: int, message: str, content_type: str) -> bytes:
    """google.rpc.Status as the receiver's encoders write it (errors are in the request's encoding)."""
    if content_type == JSON:  # gogo jsonpb: camelCase, no spaces, empty fields omitted
        return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    msg = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(msg)) + msg  # field 1 code, field 2 message


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _count(signal: str, msg) -> int:
    if signal == "traces":
        return sum(len(ss.spans) for rs in msg.resource_spans for ss in rs.scope_spans)
    if signal == "logs":
        return sum(len(sl.log_records) for rl in msg.resource_logs for sl in rl.scope_logs)
    return sum(len(getattr(m, m.WhichOneof("data")).data_points) for rm in msg.resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics if m.WhichOneof("data"))


def _go_time(ts: float) -> str:  # Go time.Time JSON (RFC 3339 nano, trailing zeros trimmed)
    dt = datetime.fromtimestamp(ts, timezone.utc)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def _go_duration(seconds: float) -> str:  # Go time.Duration.String()
    ns = int(seconds * 1e9)

    def trim(num: str) -> str:
        return num.rstrip("0").rstrip(".")

    if ns < 1000:
        return f"{ns}ns" if ns else "0s"
    if ns < 10**6:
        return trim(f"{ns // 1000}.{ns % 1000:03d}") + "µs"
    if ns < 10**9:
        return trim(f"{ns // 10**6}.{ns % 10**6:06d}") + "ms"
    h, rem = divmod(ns, 3600 * 10**9)
    m, rem = divmod(rem, 60 * 10**9)
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + trim(
        f"{rem // 10**9}.{rem % 10**9:09d}") + "s"


class OtlpEmulator(Emulator):
    name = "otel-collector"

    def __init__(self, mode: str = "http", signals=("traces", "metrics", "logs"),
                 ready: bool = True) -> None:
        super().__init__()
        self.mode = mode  # "http" | "health" | "grpc"
        self.signals = set(signals)  # a signal without a pipeline is not registered: 404/unknown service
        self._ready, self._up_since = ready, time.time()
        self.received: list[Received] = []  # exports accepted (HTTP and gRPC)
        self.bogus_greetings: list[bytes] = []  # grpc mode: the 24 bytes read instead of the preface

    @property
    def ready(self) -> bool:  # health_check state; upSince restarts when it becomes Ready again
        return self._ready

    @ready.setter
    def ready(self, value: bool) -> None:
        if value and not self._ready:
            self._up_since = time.time()
        self._ready = value

    @property
    def spans_received(self) -> int:
        return sum(r.items for r in self.received if r.signal == "traces")

    def reset(self) -> None:
        super().reset()
        self.mode, self.signals, self.ready = "http", set(SIGNALS), True
        self.received.clear()
        self.bogus_greetings.clear()

    def start(self) -> "OtlpEmulator":
        super().start()  # then wrap the base handler: the port is not known to anyone yet
        emu, base = self, self._server.RequestHandlerClass

        class Handler(base):
            def handle(self) -> None:
                if emu.mode == "grpc" and emu.fault in ("none", "slow"):
                    emu._stopping.wait(emu.slow_seconds if emu.fault == "slow" else 0)
                    emu._serve_grpc(self.request)  # "slow": SETTINGS only after slow_seconds
                elif emu.fault == "none" and self.rfile.peek(len(H2_PREFACE)).startswith(b"PRI * HTTP/2.0"):
                    emu._refuse_h2(self)
                else:
                    super().handle()

        self._server.RequestHandlerClass = Handler
        return self

    # -- OTLP/HTTP and health_check (HTTP/1.1) --------------------------------------------------
    def route(self, req: Request) -> Reply:
        if self.mode == "health":  # handler.go: any method, any path under "/"
            if self.ready:
                body = {"status": "Server available", "upSince": _go_time(self._up_since),
                        "uptime": _go_duration(time.time() - self._up_since)}
                return Reply(200, json.dumps(body, separators=(",", ":")).encode(), JSON)
            return Reply(503, b'{"status":"Server not available","upSince":"0001-01-01T00:00:00Z",'
                              b'"uptime":""}', JSON)
        ctype = (req.header("content-type") or "").split(";")[0].strip().lower()  # mime.ParseMediaType
        body, encoding = req.body, req.header("content-encoding") or ""
        if encoding:  # confighttp decompressor wraps the whole mux, so it runs first
            try:
                body = _decompress(encoding, body)
            except ValueError as exc:  # otlp errorHandler: Status in the request's encoding, else 500
                if ctype in (PB, JSON):
                    return Reply(400, rpc_status(3, str(exc), ctype), ctype)
                return Reply(500, b'{"code": 13, "message": "failed to marshal error message"}', JSON)
        signal = next((s for s in self.signals if SIGNALS[s][0] == req.path), None)
        if signal is None:  # path not registered on the ServeMux: Go's http.NotFound
            return Reply(404, b"404 page not found\n", "text/plain; charset=utf-8",
                         {"X-Content-Type-Options": "nosniff"})
        if req.method != "POST":
            return Reply(405, b"405 method not allowed, supported: [POST]", "text/plain")
        if ctype not in (PB, JSON):
            return Reply(415, f"415 unsupported media type, supported: [{JSON}, {PB}]".encode(), "text/plain")
        msg = SIGNALS[signal][1]()
        try:
            if ctype == PB:
                msg.ParseFromString(body)
            else:
                json_format.Parse(body.decode(), msg, ignore_unknown_fields=True)
        except Exception as exc:  # writeError(..., 400): InvalidArgument; message text is not Go's
            return Reply(400, rpc_status(3, f"unmarshal {ctype} request: {exc}", ctype), ctype)
        self.received.append(Received(signal, "protobuf" if ctype == PB else "json", _count(signal, msg)))
        # Export short-circuits on zero items; either way the response is an empty ExportResponse:
        # zero bytes as protobuf, {"partialSuccess":{}} as JSON.
        return Reply(200, b"" if ctype == PB else b'{"partialSuccess":{}}', ctype)

    def _refuse_h2(self, handler) -> None:
        """An h2c (prior-knowledge) client on the HTTP port: Go's server hands "PRI * HTTP/2.0" to
        the handler with Close set, and ServeMux answers RequestURI "*" with a bare 400."""
        self.requests.append(Request("PRI", "*", {}, {}, b""))
        handler.wfile.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nDate: "
                            + formatdate(usegmt=True).encode() + b"\r\nContent-Length: 0\r\n\r\n")
        handler.wfile.flush()
        handler.request.shutdown(socket.SHUT_WR)  # closeWriteAndWait: FIN, 500 ms, then close
        self._stopping.wait(0.5)

    # -- OTLP/gRPC as grpc-go -----------------------------------------------------------------
    def _recv(self, sock: socket.socket, n: int, deadline: float) -> bytes:
        sock.settimeout(0.1)
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                return sock.recv(n)
            except socket.timeout:
                continue
            except OSError:
                return b""
        return b""

    def _serve_grpc(self, sock: socket.socket) -> None:
        sock.sendall(GRPC_SETTINGS)
        preface, deadline = b"", time.monotonic() + GRPC_HANDSHAKE_TIMEOUT
        while len(preface) < len(H2_PREFACE):  # io.ReadFull(conn, 24 bytes): no more is read
            chunk = self._recv(sock, len(H2_PREFACE) - len(preface), deadline)
            if not chunk:
                break
            preface += chunk
        if preface != H2_PREFACE:
            # "received bogus greeting from client": conn.Close() with no GOAWAY and no HTTP answer;
            # the unread rest of an HTTP/1.1 request makes the kernel send an RST.
            self.bogus_greetings.append(preface)
            sock.close()
            return
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
        conn.initiate_connection()
        conn.clear_outbound_data_buffer()  # our SETTINGS already went out, grpc-go's exact bytes
        streams: dict[int, list] = {}
        data = preface
        while data:
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                sock.sendall(conn.data_to_send())  # GOAWAY
                break
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    streams[ev.stream_id] = [dict(ev.headers), b""]
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id][1] += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    self._grpc_call(conn, ev.stream_id, *streams.pop(ev.stream_id))
            sock.sendall(conn.data_to_send())
            data = self._recv(sock, 65536, float("inf"))
        sock.close()

    def _grpc_call(self, conn, sid: int, headers: dict, body: bytes) -> None:
        path, ctype = headers.get(":path", ""), headers.get("content-type", "")
        self.requests.append(Request(headers.get(":method", ""), path, {}, headers, body))

        def trailers_only(http: int, code: int, msg: str) -> None:  # loopy earlyAbortStream / WriteStatus
            enc = "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in msg.encode())
            conn.send_headers(sid, [(":status", str(http)), ("content-type", "application/grpc"),
                                    ("grpc-status", str(code)), ("grpc-message", enc)], end_stream=True)

        if not (ctype == "application/grpc" or ctype.startswith(("application/grpc+", "application/grpc;"))):
            return trailers_only(415, 3, f"invalid gRPC request content-type {json.dumps(ctype)}")
        service, _, method = path.lstrip("/").rpartition("/")
        signal = next((s for s in self.signals if SIGNALS[s][2] == service), None)
        if signal is None:  # server.go handleStream: codes.Unimplemented
            return trailers_only(200, 12, f"unknown service {service}")
        if method != "Export":
            return trailers_only(200, 12, f"unknown method {method} for service {service}")
        try:  # one length-prefixed message: 1 byte compressed flag, 4 bytes big-endian length
            flag, length = struct.unpack(">BI", body[:5])
            payload = body[5:5 + length]
            if len(payload) != length:
                raise ValueError("unexpected EOF")
            if flag:
                if headers.get("grpc-encoding") != "gzip":
                    raise ValueError("compressed flag set with identity or empty encoding")
                payload = gzip.decompress(payload)
            msg = SIGNALS[signal][1]()
            msg.ParseFromString(payload)
        except Exception as exc:
            return trailers_only(200, 13, f"grpc: error unmarshalling request: {exc}")
        self.received.append(Received(signal, "grpc", _count(signal, msg)))
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        conn.send_data(sid, b"\x00\x00\x00\x00\x00")  # empty Export*ServiceResponse, uncompressed
        conn.send_headers(sid, [("grpc-status", "0"), ("grpc-message", "")], end_stream=True)


def _decompress(encoding: str, body: bytes) -> bytes:
    """confighttp decoders for the encodings this emulator can decode (the real collector also takes
    zstd, snappy, lz4; here they get the "unsupported" 400)."""
    if encoding == "gzip":
        if not body:
            raise ValueError("EOF")  # gzip.NewReader on an empty body
        if not body.startswith(b"\x1f\x8b"):
            raise ValueError("gzip: invalid header")
        try:
            return gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise ValueError("unexpected EOF") from None
    if encoding in ("zlib", "deflate"):
        try:
            return zlib.decompress(body)
        except zlib.error:
            raise ValueError("zlib: invalid header") from None
    raise ValueError(f"unsupported Content-Encoding: {encoding}")
