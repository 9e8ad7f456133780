"""Shared machinery for the HTTP test emulators.

An emulator serves real HTTP on a free 127.0.0.1 port from a background thread. Subclasses
implement ``route(request) -> Reply`` with the service's documented answers; the faults every
service can suffer (hang, HTML page, 5xx, slow answer, reset, garbage) live here, switched by
``emulator.fault``. Emulators are test fixtures: they never appear under ``cli/``.
"""
from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Faults common to every emulator. A subclass may add service-specific switches of its own
# (as attributes), but these names mean the same thing everywhere.
FAULTS = ("none", "hang", "html", "http500", "slow", "reset", "garbage")


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(status: int, obj: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(obj).encode(), "application/json; charset=utf-8", dict(headers))


def text_reply(status: int, text: str, **headers: str) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8", dict(headers))


def iso_now() -> str:
    """RFC 3339 with fractional seconds, as the real services stamp their resources."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


HTML_PAGE = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
             b"<body><h1>Bad Gateway</h1><p>nginx</p></body></html>")


class Emulator:
    """Base class: start()/stop() or use as a context manager; ``url`` is the base URL.

    HTTPS: ``use_tls(certfile, keyfile)`` before start() (or ``tls=`` for a subclass that
    forwards it). Each connection's handshake runs in its handler thread, so a client that
    never completes one (or a verification failure) cannot stall the accept loop."""

    name = "emulator"

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:
            self.use_tls(*tls)
        self.fault = "none"
        self.slow_seconds = 0.0  # delay for fault "slow"
        self.requests: list[Request] = []  # every request seen, for assertions
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to be implemented by subclasses ------------------------------------------------------
    def route(self, req: Request) -> Reply:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._server is not None, "emulator not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def use_tls(self, certfile: str | Path, keyfile: str | Path) -> "Emulator":
        """Serve HTTPS with this certificate (chain) and key; call before start()."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(certfile), str(keyfile))
        self.tls_context = ctx
        return self

    def start(self) -> "Emulator":
        handler = _make_handler(self)
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.tls_context = self.tls_context
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.name,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hung handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a healthy emulator (used between tests sharing one instance)."""
        self.fault = "none"
        self.slow_seconds = 0.0
        self.requests.clear()


class _QuietServer(ThreadingHTTPServer):
    tls_context: ssl.SSLContext | None = None
    # http.server listens with a backlog of 5: a check that asks several requests at once
    # (ask_early), beside other runs on a loaded machine, overflows it, and the kernel's SYN
    # cookies then reset a request sent in two segments (headers, then a POST's body), as
    # the GCS emulator showed (tests/emulators/gcs.py). Real servers listen with 511 or more.
    request_queue_size = 128

    def get_request(self):  # noqa: ANN201
        conn, addr = super().get_request()
        # Headers and body go out in two writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds ~40 ms to every request.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:  # handshake later, in the handler's thread
            conn = self.tls_context.wrap_socket(conn, server_side=True,
                                                do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        # Clients that give up (timeouts, resets: the faults we inject) are normal here;
        # their BrokenPipe tracebacks would only litter the test output.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, OSError)):
            super().handle_error(request, client_address)


def _make_handler(emu: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = emu.name

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def handle(self) -> None:
            if isinstance(self.request, ssl.SSLSocket):
                try:
                    self.request.settimeout(10)
                    self.request.do_handshake()
                    self.request.settimeout(None)
                except OSError:  # untrusted by the client, plaintext client, gone: no request
                    return
            if emu.fault == "hang":  # accept the connection, never answer
                emu._stopping.wait()
                return
            if emu.fault == "garbage":
                self.request.sendall(b"\x00\x13\x37 not http at all \xff\xfe\r\n\r\n")
                return
            super().handle()

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            req = Request(self.command, split.path, parse_qs(split.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, body)
            emu.requests.append(req)
            if emu.fault == "slow":
                emu._stopping.wait(emu.slow_seconds)
            if emu.fault == "reset":
                # Send a partial answer, then slam the connection (RST, not FIN).
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"par")
                self.wfile.flush()
                self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.request.close()
                self.close_connection = True
                return
            if emu.fault == "html":
                reply = Reply(200, HTML_PAGE, "text/html; charset=utf-8")
            elif emu.fault == "http500":
                reply = Reply(500, HTML_PAGE, "text/html; charset=utf-8")
            else:
                reply = emu.route(req)
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("Content-Type", reply.content_type)
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler


def wait_port(port: int, timeout: float = 5.0) -> None:
    """Block until something listens on 127.0.0.1:port (for subprocess emulators)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
