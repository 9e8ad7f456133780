"""OpenTelemetry: the collector that takes the platform's OTLP traces and metrics.

Endpoint semantics (OTel exporter spec, protocols.md §7), resolved once in `endpoint`:
- `telemetry.endpoint` is OTEL_EXPORTER_OTLP_ENDPOINT, a *base* URL. For http/protobuf and
  http/json the traces path is the base path + `/v1/traces` (`http://c:4318/otlp` →
  `/otlp/v1/traces`). A path that already ends in `/v1/traces` is probed as is, with a warning:
  SDKs reading the variable would append `/v1/traces` again.
- For grpc the URL path is ignored (exporters dial host:port); http:// means plaintext h2c.
- The port is the URL's; without one, what the exporters really dial: 80/443 for OTLP/HTTP
  (the URL defaults), 443 for gRPC (gRPC's default). The OTLP defaults 4318/4317 apply only to
  an unset variable, so a port-less http:// endpoint earns a warning.

The export is one empty request (no spans, nothing stored) made without the OTel SDK, whose
exporter retries with backoff and counts any 2xx, even a proxy's HTML page, as delivered.
gRPC goes over httpx's HTTP/2 (no grpcio): trailers are not exposed, so grpc-status is read
from a trailers-only answer, else 200 + application/grpc + a response message is success.
"""
from __future__ import annotations

import socket
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, warn
from platctl.checks.errors import TLS_HINT, classify, describe
from platctl.checks.http import HttpProbe
from platctl.result import Reason
from platctl.secrets import clip

HTTP_PORT, GRPC_PORT, HEALTH_PORT = 4318, 4317, 13133
TRACES = "/v1/traces"
SIGNAL_PATHS = (TRACES, "/v1/metrics", "/v1/logs")
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"  # gRPC frame: not compressed, length 0 = empty request
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # alone: extra unread bytes make servers reset
H1_GREETING = b"GET / HTTP/1.0\r\n\r\n"  # < 24 bytes: grpc-go keeps waiting, never resets
PB, JSON = "application/x-protobuf", "application/json"
GRPC_REASONS = {16: Reason.AUTH, 7: Reason.FORBIDDEN, 14: Reason.UNAVAILABLE,
                8: Reason.UNAVAILABLE, 3: Reason.UNEXPECTED, 4: Reason.TIMEOUT}


class TelemetryCheck(ServiceCheck):
    service = "telemetry"
    env = {"endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT", "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
           "headers": "OTEL_EXPORTER_OTLP_HEADERS"}

    @cached_property
    def parts(self) -> Any:
        return urlsplit(self.cfg.endpoint.get_secret_value())

    @cached_property
    def grpc(self) -> bool:
        return self.cfg.protocol == "grpc"

    @cached_property
    def tls(self) -> bool:
        return self.parts.scheme == "https"

    @cached_property
    def port(self) -> int:
        return self.parts.port or (443 if self.tls or self.grpc else 80)

    @cached_property
    def target(self) -> str:
        host = self.parts.hostname
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @cached_property
    def path(self) -> str:
        if self.grpc:
            return EXPORT
        base = self.parts.path.rstrip("/")
        return base if base.endswith(TRACES) else base + TRACES

    @cached_property
    def mixup(self) -> str | None:
        """The classic port/protocol confusion, judged from the port alone."""
        if self.port == GRPC_PORT and not self.grpc:
            return (f"{GRPC_PORT} is the OTLP/gRPC port; OTEL_EXPORTER_OTLP_PROTOCOL is"
                    f" {self.cfg.protocol} — use {HTTP_PORT} or set the protocol to grpc")
        if self.port == HTTP_PORT and self.grpc:
            return (f"{HTTP_PORT} is the OTLP/HTTP port; OTEL_EXPORTER_OTLP_PROTOCOL is grpc"
                    f" — use {GRPC_PORT} or set the protocol to http/protobuf")
        return None

    @cached_property
    def probe(self) -> HttpProbe:
        userinfo = self.parts.netloc.rpartition("@")[0]  # HttpProbe moves it into a header
        base = f"{self.parts.scheme}://{userinfo + '@' if userinfo else ''}{self.target}"
        return HttpProbe(self.ctx, base, self.hint("endpoint"), headers=self.headers,
                         budget=self.budget)

    @cached_property
    def headers(self) -> dict[str, str]:
        """OTEL_EXPORTER_OTLP_HEADERS as the exporters read it: comma-separated key=value,
        values URL-encoded. Values are credentials: they are sent, never shown."""
        if self.cfg.headers is None:
            return {}
        out: dict[str, str] = {}
        for item in self.cfg.headers.get_secret_value().split(","):
            key, sep, value = item.partition("=")
            if not item.strip():
                continue
            if not sep or not key.strip():
                raise CheckFailed(Reason.CONFIG, "OTEL_EXPORTER_OTLP_HEADERS is not a list of"
                                  " key=value pairs", self.hint("headers"))
            out[key.strip().lower()] = unquote(value.strip())
        return out

    @cached_property
    def grpc_client(self) -> Any:
        import httpx

        verify: Any = self.ctx.ssl_context() if self.tls else False
        return httpx.Client(http1=False, http2=True, timeout=httpx.Timeout(self.ctx.timeout),
                            verify=verify, follow_redirects=False, trust_env=False)

    def prepare(self) -> None:
        self.probe  # builds the HTTP client (TLS context) outside the first step's timing

    def steps(self) -> Sequence[Step]:
        return (Step("telemetry.endpoint", self.endpoint),
                Step("telemetry.connect", self.connect),
                Step("telemetry.export", self.export, gate=False))

    def close(self) -> None:
        for name in ("probe", "grpc_client"):
            if name in self.__dict__:
                self.__dict__[name].close()

    # -- steps ------------------------------------------------------------------------------
    def endpoint(self) -> str | Outcome:
        p, warnings = self.parts, [self.mixup] if self.mixup else []
        if p.port is not None:
            port = f"port {self.port} from the URL"
        else:
            why = "gRPC's default" if self.grpc else f"the {p.scheme}:// default"
            port = f"port {self.port}: {why}, the URL has none"
            if not self.tls:
                otlp = GRPC_PORT if self.grpc else HTTP_PORT
                warnings.append(f"exporters dial port {self.port}, not the OTLP default {otlp}:"
                                f" add :{otlp} unless a proxy listens on {self.port}")
        if self.port == HEALTH_PORT:
            warnings.append(f"{HEALTH_PORT} is the collector's health_check port, not OTLP: use"
                            f" {HTTP_PORT} (OTLP/HTTP) or {GRPC_PORT} (OTLP/gRPC)")
        base = p.path.rstrip("/")
        if self.grpc:
            where = f"{p.scheme}://{self.target} over {'TLS' if self.tls else 'plaintext h2c'}"
            if base:
                port += f"; the path {base} is ignored for gRPC"
        else:
            where = f"{p.scheme}://{self.target}{self.path}"
            signal = next((s for s in SIGNAL_PATHS if base.endswith(s)), None)
            if signal:
                warnings.append(f"the path ends in {signal}, but OTEL_EXPORTER_OTLP_ENDPOINT is a"
                                " base URL: SDKs append /v1/traces and /v1/metrics to it; give"
                                " the base URL (a full URL belongs in"
                                " OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)")
        summary = f"{self.cfg.protocol} to {where} ({port})"
        if warnings:
            return warn(f"{summary}: {'; '.join(warnings)}", self.hint("endpoint", "protocol"))
        return summary

    def connect(self) -> str:
        try:
            sock = socket.create_connection((self.parts.hostname, self.port),
                                            timeout=self.budget())
        except OSError as exc:
            raise self._transport(exc) from None
        with sock:
            if not self.tls:
                return f"TCP connect to {self.target} ok"
            try:
                with self._wrap(sock) as tls:
                    version = tls.version()
            except OSError as exc:  # ssl.SSLError and socket.timeout are OSErrors
                raise self._transport(exc, handshake=True) from None
        return f"TCP connect to {self.target} ok, TLS handshake ok ({version}, certificate" \
               " verified)"

    def export(self) -> str | Outcome:
        return self._export_grpc() if self.grpc else self._export_http()

    # -- OTLP/HTTP --------------------------------------------------------------------------
    def _export_http(self) -> str | Outcome:
        ctype = JSON if self.cfg.protocol == "http/json" else PB
        try:
            resp = self.probe.request("POST", self.path, content=b"{}" if ctype == JSON else b"",
                                      headers={"Content-Type": ctype})
        except CheckFailed as failed:
            raise self._dropped(failed) from None
        if not 200 <= resp.status_code < 300:
            raise self._http_failure(resp)
        what = f"POST {self.path} answered HTTP {resp.status_code}"
        got = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if "html" in got or resp.content.lstrip()[:1] == b"<":
            raise CheckFailed(Reason.UNEXPECTED, f"{what} with an HTML page, not an OTLP answer:"
                              " a proxy or web server answers there (OTel exporters count this as"
                              " delivered and drop the telemetry)", self.hint("endpoint"))
        if got == JSON:
            body = self.probe.json(resp, f"POST {self.path}")
            if isinstance(body, dict) and "upSince" in body:
                raise CheckFailed(Reason.UNEXPECTED, f"{what} with the health_check extension's"
                                  " status, not OTLP: this is the collector's health port; use"
                                  f" {HTTP_PORT}", self.hint("endpoint"))
        if got != ctype:
            return warn(f"{self.target} took an empty export at {self.path} but answered"
                        f" {got or 'no content type'}, not {ctype}: is this an OTLP receiver?",
                        self.hint("endpoint"))
        return (f"collector accepted an empty OTLP/HTTP export ({self.cfg.protocol}) at"
                f" {self.target}{self.path}")

    def _http_failure(self, resp: Any) -> CheckFailed:
        s, what, hint = resp.status_code, f"POST {self.path}", self.hint("endpoint")
        if s == 404:
            base = " (the endpoint is a base URL: /v1/traces is appended)" \
                if self.path != TRACES else ""
            return CheckFailed(Reason.MISSING, f"no traces pipeline at {self.path}{base} on"
                               f" {self.target} (wrong path, or the collector has no traces"
                               " receiver)", "enable a traces pipeline with the otlp receiver in"
                               f" the collector config, or {hint}")
        if s in (405, 415):
            return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {s} ({_snippet(resp)}):"
                               f" wrong path or protocol for OTLP/HTTP ({self.cfg.protocol})",
                               self.hint("endpoint", "protocol"))
        if s in (401, 403):
            sent = "rejected the exporter headers" if self.headers else \
                "wants exporter credentials and none are configured"
            return CheckFailed(Reason.AUTH if s == 401 else Reason.FORBIDDEN,
                               f"{what} answered HTTP {s}: the collector (or a gateway in front)"
                               f" {sent}", self.hint("headers"))
        if s in (429, 503):
            after = resp.headers.get("retry-after")
            return CheckFailed(Reason.UNAVAILABLE, f"the collector at {self.target} is overloaded"
                               f" or not ready (HTTP {s})" + (f"; retry after {after} s" if after
                                                             else ""), hint)
        if s >= 500:
            return self.probe.server_error(resp, what)
        if 300 <= s < 400:
            return CheckFailed(Reason.UNEXPECTED, f"{what} answered a redirect (HTTP {s} to"
                               f" {resp.headers.get('location', '?')}): exporters do not follow"
                               " it; put the final URL in the endpoint", hint)
        return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {s} to an empty export"
                           f" ({_snippet(resp)}): is this an OTLP/HTTP receiver?", hint)

    # -- OTLP/gRPC --------------------------------------------------------------------------
    def _export_grpc(self) -> str | Outcome:
        try:
            import h2  # noqa: F401 - httpx's HTTP/2 support
        except ImportError:
            raise CheckFailed(Reason.CONFIG, "this platctl has no HTTP/2 support, needed to probe"
                              " OTLP/gRPC", "install httpx[http2] next to platctl") from None
        client = self.grpc_client  # outside the try: a bad CA bundle is a CONFIG failure
        try:
            resp = client.post(f"{self.parts.scheme}://{self.target}{EXPORT}",
                               timeout=self.budget(),
                               content=EMPTY_MESSAGE,
                               headers={**self.headers, "content-type": "application/grpc",
                                        "te": "trailers"})
        except Exception as exc:  # noqa: BLE001 - every transport error is classified
            raise self._dropped(self._transport(exc)) from None
        ctype, status = resp.headers.get("content-type", ""), resp.headers.get("grpc-status")
        if not ctype.startswith("application/grpc"):
            kind = "an HTML page" if "html" in ctype else (ctype or "no content type")
            raise CheckFailed(Reason.UNEXPECTED, f"{self.target} answered HTTP/2"
                              f" {resp.status_code} with {kind}, not gRPC: a proxy or another"
                              " service listens there", self.hint("endpoint"))
        if status not in (None, "0"):
            raise self._grpc_failure(status, unquote(resp.headers.get("grpc-message", "")))
        if resp.status_code == 200 and (status == "0" or _grpc_frame(resp.content)):
            return (f"collector accepted an empty OTLP/gRPC export at {self.target}"
                    " (TraceService/Export)")
        return warn(f"TraceService/Export at {self.target} answered HTTP {resp.status_code}"
                    " without a response message; its grpc-status trailer is not visible to"
                    " platctl", self.hint("endpoint"))

    def _grpc_failure(self, status: str, message: str) -> CheckFailed:
        code = int(status) if status.isdigit() else -1
        said = f"grpc-status {status}" + (f": {message}" if message else "")
        if code == 12:
            return CheckFailed(Reason.MISSING, f"no traces pipeline on {self.target}: the gRPC"
                               f" server does not implement TraceService/Export ({said})",
                               "enable a traces pipeline with the otlp receiver in the collector"
                               f" config, or {self.hint('endpoint')}")
        reason = GRPC_REASONS.get(code, Reason.SERVER if code >= 0 else Reason.UNEXPECTED)
        return CheckFailed(reason, f"TraceService/Export at {self.target} failed ({said})",
                           self.hint("endpoint"))

    # -- helpers ----------------------------------------------------------------------------
    def _wrap(self, sock: socket.socket) -> Any:
        ctx = self.ctx.ssl_context()
        ctx.set_alpn_protocols(["h2"] if self.grpc else ["http/1.1"])  # as the exporters offer
        return ctx.wrap_socket(sock, server_hostname=self.parts.hostname)

    def _transport(self, exc: BaseException, handshake: bool = False) -> CheckFailed:
        reason = classify(exc) or Reason.UNEXPECTED
        if reason is Reason.UNEXPECTED:
            msg = f"{self.target} did not answer with valid HTTP/2 ({type(exc).__name__})"
        else:
            msg = describe(reason, self.target, self.ctx.timeout, exc)
        if reason is Reason.TIMEOUT and handshake:
            msg += " during the TLS handshake (is the port plaintext? then use http://)"
        if reason is Reason.TLS and "WRONG_VERSION_NUMBER" in msg:
            msg += " (the port answers plaintext: use http://)"
        if reason is Reason.TLS and self.mixup:
            msg += f"; {self.mixup}"
        hint = self.hint("endpoint")
        return CheckFailed(reason, msg, f"{TLS_HINT}; {hint}" if reason is Reason.TLS else hint)

    def _dropped(self, failed: CheckFailed) -> CheckFailed:
        """A dropped or garbled answer to the export: name the protocol mix-up when the port
        reveals one, else keep the transport verdict (plus the port's suspicion)."""
        if failed.reason not in (Reason.RESET, Reason.UNEXPECTED):
            return failed
        self._sniff()
        if self.mixup:
            return CheckFailed(failed.reason, f"{failed.message}; {self.mixup}",
                               self.hint("endpoint", "protocol"))
        return failed

    def _sniff(self) -> None:
        """Look at what the port speaks (one more connect, bounded by what is left of the
        step's time) and raise the mix-up it reveals."""
        budget = min(1.0, self.budget() - 0.1)
        if budget <= 0.05:
            return
        first = b""
        try:
            with socket.create_connection((self.parts.hostname, self.port), timeout=budget) as raw:
                sock = self._wrap(raw) if self.tls else raw
                sock.sendall(H2_PREFACE if self.grpc else H1_GREETING)
                while len(first) < 12 and (chunk := sock.recv(64)):  # 'HTTP/1.1 400'
                    first += chunk
        except OSError:  # a reset or timeout here proves nothing either way
            pass
        mix = self.hint("endpoint", "protocol")
        if b"HTTPS server" in first:
            raise CheckFailed(Reason.UNEXPECTED, f"{self.target} speaks TLS: use https://", mix)
        if not self.grpc and _h2_settings(first):
            raise CheckFailed(Reason.UNEXPECTED, f"{self.target}: this port speaks gRPC (HTTP/2),"
                              f" not OTLP/HTTP: use {HTTP_PORT} or set"
                              " OTEL_EXPORTER_OTLP_PROTOCOL=grpc", mix)
        if self.grpc and first.startswith(b"HTTP/1."):
            line = first.split(b"\r\n")[0].decode("latin-1")
            what = "OTLP/HTTP" if " 400" in line else f"HTTP/1.1 ({line})"
            raise CheckFailed(Reason.UNEXPECTED, f"{self.target}: this port speaks {what}, not"
                              f" gRPC: use {GRPC_PORT} or set"
                              " OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", mix)


def _h2_settings(data: bytes) -> bool:
    """An HTTP/2 SETTINGS frame header: what grpc-go writes the moment it accepts."""
    return (len(data) >= 9 and data[3] == 0x04 and data[4] in (0, 1)
            and data[5:9] == b"\x00\x00\x00\x00" and int.from_bytes(data[:3], "big") % 6 == 0)


def _grpc_frame(body: bytes) -> bool:
    """One length-prefixed gRPC message (flag byte, 4-byte length): a unary response."""
    return len(body) >= 5 and body[0] in (0, 1) \
        and int.from_bytes(body[1:5], "big") == len(body) - 5


def _snippet(resp: Any, limit: int = 100) -> str:
    text = resp.text.strip()
    if text.startswith("<"):
        return "an HTML page"
    return clip(text, limit) if text else "empty body"


CHECK = TelemetryCheck
