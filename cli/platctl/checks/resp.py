"""A minimal synchronous RESP2 client for a probe: one connection, batches, no retries.

redis-py is not used for the Redis check: importing it costs 0.15-0.3 s of CPU (it loads
redis.asyncio and, when installed, the OpenTelemetry SDK) under the GIL the other checks of
the plane share, and on connect it makes round trips of its own. A probe needs little: connect
within a budget, send a batch of commands in ONE write, read exactly one reply per command.

An error reply is a value (`RespError`), not an exception: the connection stays in step and
the caller decides what it means. A broken, timed-out or non-RESP stream raises (OSError,
TimeoutError, ssl.SSLError, ProtocolError); the connection is then useless and is closed.
Every socket operation is bounded by `budget()`, the seconds left for the caller's step.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Callable

MAX_LINE = 64 * 1024  # a RESP header or simple reply is short; more is not a Redis talking
MAX_BULK = 4 * 1024 * 1024  # a probe's largest answer (INFO server) is a few KB
MAX_ITEMS = 1 << 16
MAX_DEPTH = 8  # replies nested deeper (XRANGE is 3) mean a confused peer, not Redis


class RespError(str):
    """An error reply, without its '-': 'WRONGPASS invalid username-password pair ...'."""

    @property
    def code(self) -> str:
        return self.split(" ", 1)[0]

    @property
    def detail(self) -> str:  # the text after the code, as redis-py quoted it
        return self.partition(" ")[2] or str(self)


class ProtocolError(Exception):
    """The peer's bytes are not RESP: no Redis (an HTTP server, a confused proxy)."""


def encode(*commands: tuple) -> bytes:
    """Commands as RESP arrays of bulk strings, concatenated: one write for all of them."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(data), data)
    return bytes(out)


class Connection:
    """One TCP (or TLS) connection to a Redis. `stage` says where a failure happened:
    "connect", "handshake" (TLS) or "ready" (a command's write or reply)."""

    def __init__(self, host: str, port: int, budget: Callable[[], float],
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.budget, self.ssl_context = host, port, budget, ssl_context
        self.stage = "connect"
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def open(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.budget())
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                # server_hostname: SNI, and the certificate is checked against the URL's host
                self.stage = "handshake"
                sock.settimeout(self.budget())
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock, self.stage = sock, "ready"

    def send(self, *commands: tuple) -> None:
        """Every command in one write; then read() once per command, in order."""
        assert self._sock is not None, "open() first"
        self._sock.settimeout(self.budget())
        self._sock.sendall(encode(*commands))

    def read(self) -> object:
        """One reply: str (simple string), RespError, int, bytes (bulk), list (array) or
        None (nil)."""
        return self._reply(0)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- parsing ------------------------------------------------------------------------------
    def _reply(self, depth: int) -> object:
        if not self._buf:
            self._fill()
        if self._buf[:1] not in (b"+", b"-", b":", b"$", b"*"):  # say so now, not at a CRLF
            raise ProtocolError(f"not a RESP reply: {bytes(self._buf[:40])!r}")
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(errors="replace")
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        n = self._int(line)
        if kind == b":":
            return n
        if n == -1:
            return None
        if kind == b"$":
            if not 0 <= n <= MAX_BULK:
                raise ProtocolError(f"bulk length {n} out of range")
            while len(self._buf) < n + 2:
                self._fill()
            if self._buf[n:n + 2] != b"\r\n":
                raise ProtocolError("bulk string not ended by CRLF")
            data = bytes(self._buf[:n])
            del self._buf[:n + 2]
            return data
        if not 0 <= n <= MAX_ITEMS or depth >= MAX_DEPTH:
            raise ProtocolError(f"array of {n} at depth {depth} out of range")
        return [self._reply(depth + 1) for _ in range(n)]

    def _int(self, line: bytes) -> int:
        try:
            return int(line[1:])
        except ValueError:
            raise ProtocolError(f"not a RESP number: {line[:40]!r}") from None

    def _line(self) -> bytes:
        start = 0
        while (end := self._buf.find(b"\r\n", start)) < 0:
            if len(self._buf) > MAX_LINE:
                raise ProtocolError("a RESP line longer than 64 KiB")
            start = max(0, len(self._buf) - 1)
            self._fill()
        line = bytes(self._buf[:end])
        del self._buf[:end + 2]
        return line

    def _fill(self) -> None:
        if self._sock is None:
            raise ConnectionError("Connection closed")
        self._sock.settimeout(self.budget())
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("Connection closed by server")
        self._buf += chunk
