"""A fault-injecting TCP proxy for the tests: real sockets on 127.0.0.1, one thread per
connection, placed between platctl and a real server or emulator.

    with FaultProxy(("127.0.0.1", upstream_port)) as proxy:
        proxy.mode = "reset"          # read when a connection is accepted
        ... point the client at 127.0.0.1:proxy.port ...

Modes (MODES):
  pass                relay both ways, untouched
  hang                accept, read and discard, never answer
  slow_ok             relay, but hold every answer chunk `slow_ok_delay` s (well inside the
                      client's timeout: the check must still pass); what arrives meanwhile
                      goes out with it, so an answer written in two pieces is held once
  slow_timeout        relay, but hold every answer chunk `slow_timeout_delay` s (beyond it)
  reset               relay the request, forward a few bytes of the answer, then RST
                      (SO_LINGER 0): the connection dies mid-answer
  garbage             answer every request with bytes no protocol here accepts (high bytes,
                      then CRLFs so line-based parsers see a complete, invalid line)
  http5xx             answer every HTTP request `503 Service Unavailable` with an HTML page,
                      as a load balancer without a healthy upstream does (HTTP services only)
  tls_expected        relay untouched: the *client* is configured for TLS and speaks it to the
                      plaintext upstream (the mode only names the situation)
  plaintext_expected  terminate TLS with `tls=(cert, key)` and relay plaintext upstream: a
                      TLS port, while the client is configured for plaintext

`stop()` closes every socket and joins every thread it started (bounded); `alive()` lists any
thread still running, so a test can prove nothing leaks.
"""
from __future__ import annotations

import random
import select
import socket
import ssl
import threading
import time
from pathlib import Path

MODES = ("pass", "hang", "slow_ok", "slow_timeout", "reset", "garbage", "http5xx",
         "tls_expected", "plaintext_expected")
TICK = 0.05  # every loop wakes this often to notice stop()
RESET_BYTES = 3  # answer bytes forwarded before the RST: a started, never finished answer
# Deterministic "random" bytes: >= 0x80 is no RESP type byte, no HTTP status line, no TLS
# record type; the CRLFs complete the line (and the header block) so parsers decide at once.
GARBAGE = bytes(random.Random(4242).randrange(0x80, 0x100) for _ in range(48)) + b"\r\n\r\n"
HTML_503 = (b"<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>"
            b"<h1>503 Service Unavailable</h1><p>No server is available to handle this request."
            b"</p></body></html>")


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], mode: str = "pass",
                 tls: tuple[str | Path, str | Path] | None = None,
                 slow_ok_delay: float = 0.1, slow_timeout_delay: float = 3.0) -> None:
        self.upstream = upstream
        self.mode = mode
        self.tls = tls
        self.slow_ok_delay, self.slow_timeout_delay = slow_ok_delay, slow_timeout_delay
        self.accepted = 0  # connections accepted since the last reset()
        self.delayed = 0  # answer chunks held back since the last reset()
        self._stop = threading.Event()  # the whole proxy
        self._cut = threading.Event()  # the connections of the current mode (see reset())
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._ssl: ssl.SSLContext | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._listener is not None, "proxy not started"
        return self._listener.getsockname()[1]

    def start(self) -> "FaultProxy":
        if self.tls:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(TICK)
        self._spawn(self._accept, "faultproxy-accept")
        return self

    def stop(self, budget: float = 2.0) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()  # no new connections; the accept loop ends within TICK
        self._cut.set()
        self._close_all()
        end = time.monotonic() + budget
        for t in list(self._threads):
            t.join(max(0.0, end - time.monotonic()))

    def reset(self, mode: str = "pass") -> None:
        """Drop every open connection and switch mode (between tests sharing one proxy)."""
        assert mode in MODES, mode
        self._cut.set()  # wakes connection threads in a delay: their sockets are going away
        self._cut = threading.Event()
        self._close_all()
        self.mode, self.accepted, self.delayed = mode, 0, 0
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def alive(self) -> list[threading.Thread]:
        return [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------
    def _spawn(self, target, name: str, *args) -> None:  # noqa: ANN001
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads.append(t)
        t.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.add(sock)
        return sock

    def _close_all(self) -> None:
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            _close(s)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return  # listener closed
            if self._stop.is_set():
                conn.close()
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.accepted += 1
            self._spawn(self._serve, "faultproxy-conn", self._track(conn), self.mode, self._cut)

    def _serve(self, client: socket.socket, mode: str, cut: threading.Event) -> None:
        upstream = None
        try:
            if mode == "hang":
                return self._drain(client, cut, answer=None)
            if mode == "garbage":
                return self._drain(client, cut, answer=lambda _: GARBAGE)
            if mode == "http5xx":
                return self._drain(client, cut, answer=_Http503().feed)
            if mode == "plaintext_expected":
                tls = self._handshake(client)
                if tls is None:
                    return
                client = tls
            upstream = self._track(socket.create_connection(self.upstream, timeout=5))
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._relay(client, upstream, mode, cut)
        except (OSError, ValueError):
            pass  # a peer went away, or reset() closed the sockets: this connection is over
        finally:
            _close(client)
            if upstream is not None:
                _close(upstream)

    def _handshake(self, raw: socket.socket) -> ssl.SSLSocket | None:
        """Server-side TLS, as any TLS port does it: a client speaking plaintext fails the
        handshake and the connection is closed (with its request unread: the kernel sends RST)."""
        assert self._ssl is not None, "plaintext_expected needs tls=(cert, key)"
        # The SSLSocket takes over the raw socket's descriptor: track it before the handshake,
        # so stop() can interrupt a client that never sends its hello.
        tls = self._track(self._ssl.wrap_socket(raw, server_side=True,
                                                do_handshake_on_connect=False))
        if self._stop.is_set():  # stop() closed `raw` (already detached) before the track
            _close(tls)
            return None
        tls.settimeout(5)
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            tls.close()  # no shutdown(): the unread plaintext request makes it an RST
            return None
        return tls

    def _drain(self, client: socket.socket, cut: threading.Event, answer) -> None:  # noqa: ANN001
        """Read whatever the client sends; answer each chunk with answer(data), or never."""
        while not cut.is_set():
            r, _, _ = select.select([client], [], [], TICK)
            if not r:
                continue
            data = client.recv(65536)
            if not data:
                return
            reply = answer(data) if answer else b""
            if reply:
                client.sendall(reply)

    def _relay(self, client: socket.socket, upstream: socket.socket, mode: str,
               cut: threading.Event) -> None:
        delay = {"slow_ok": self.slow_ok_delay, "slow_timeout": self.slow_timeout_delay}.get(mode)
        while not cut.is_set():
            ready = [s for s in (client, upstream) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select([client, upstream], [], [], TICK)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client:
                    upstream.sendall(data)
                    continue
                if mode == "reset":
                    client.sendall(data[:min(RESET_BYTES, len(data) - 1) or 1])
                    cut.wait(TICK)  # let the partial answer arrive before the RST
                    _rst(client)
                    return
                if delay:
                    self.delayed += 1
                    if cut.wait(delay):
                        return
                    data += _more(upstream)  # the rest of this answer came meanwhile: one delay
                client.sendall(data)


class _Http503:
    """Frames HTTP/1.1 requests (headers + Content-Length body) and answers each with a 503
    HTML page, keeping the connection open as a load balancer would."""

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = b""
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip() or 0)
            if len(rest) < length:
                break  # the body is still on its way
            self.buf = rest[length:]
            out += (b"HTTP/1.1 503 Service Unavailable\r\nServer: faultproxy\r\n"
                    b"Content-Type: text/html\r\nContent-Length: " + str(len(HTML_503)).encode()
                    + b"\r\n\r\n" + HTML_503)
        return out


def _more(sock: socket.socket) -> bytes:
    """Whatever is already readable on `sock`, without waiting."""
    out = b""
    while select.select([sock], [], [], 0)[0]:
        data = sock.recv(65536)
        if not data:
            break  # EOF: the relay loop sees it on its next read
        out += data
    return out


def _rst(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # no shutdown() first: that would send a FIN before the RST
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it in another call
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
