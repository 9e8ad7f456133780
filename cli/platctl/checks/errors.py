"""Classify transport failures (from any client library) into a failure class and words.

Libraries wrap the OS error differently (requests → urllib3 → OSError, httpx → httpcore;
checks/resp.py raises the socket's own), so we walk the whole cause chain and fall back to
the texts the OS and OpenSSL put into messages.
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

from platctl.result import Reason


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for nxt in (e.__cause__, e.__context__, getattr(e, "reason", None),
                    *[a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


_TEXTS = (
    (Reason.TLS, ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "WRONG_VERSION_NUMBER",
                  "wrong version number", "SSL:", "[SSL", "tlsv1 alert", "hostname mismatch",
                  "doesn't match", "record layer failure", "unexpected eof while reading")),
    (Reason.REFUSED, ("Connection refused", "Errno 111", "ECONNREFUSED")),
    (Reason.DNS, ("Name or service not known", "Temporary failure in name resolution",
                  "nodename nor servname", "getaddrinfo failed", "No address associated",
                  "Errno -2", "Errno -3", "Errno -5")),
    (Reason.RESET, ("Connection reset", "Errno 104", "Broken pipe", "Connection aborted",
                    "Server disconnected", "RemoteDisconnected", "Connection closed by server",
                    "peer closed connection", "IncompleteRead", "EOF occurred")),
    (Reason.TIMEOUT, ("timed out", "Timeout", "timeout")),
)


def classify(exc: BaseException) -> Reason | None:
    """The failure class of a transport error, or None when it is not one we know."""
    chain = list(_chain(exc))
    for e in chain:  # types first: they are exact
        if isinstance(e, (ssl.SSLError, ssl.CertificateError)):
            return Reason.TLS
        if isinstance(e, ConnectionRefusedError):
            return Reason.REFUSED
        if isinstance(e, socket.gaierror):
            return Reason.DNS
        if isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return Reason.RESET
        if isinstance(e, (TimeoutError, socket.timeout)):
            return Reason.TIMEOUT
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    for reason, needles in _TEXTS:
        if any(n in text for n in needles):
            return reason
    return None


def tls_detail(exc: BaseException) -> str:
    """The most specific TLS words in the chain (verify message, alert), for messages."""
    for e in _chain(exc):
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {e.verify_message or e}"
        if isinstance(e, ssl.SSLError):
            return e.reason or str(e)
    return str(exc)


_PLAINTEXT_ANSWER = ("WRONG_VERSION_NUMBER", "wrong version number", "PACKET_LENGTH_TOO_LONG",
                     "packet length too long")


def mixup(reason: Reason, tls: bool, exc: BaseException, plain: str = "http://",
          secure: str = "https://") -> str:
    """Words naming the TLS/plaintext mix-up a transport failure points at, or ''. A TLS client
    on a plaintext port reads the plaintext answer as a TLS record (wrong version number); a
    plaintext client on a TLS port fails the server's handshake and is dropped (reset)."""
    if reason is Reason.TLS and tls:
        text = " ".join(str(e) for e in _chain(exc))
        if any(n in text for n in _PLAINTEXT_ANSWER):
            return f" (the port answers plaintext: use {plain})"
    if reason is Reason.RESET and not tls:
        return f"; if the port speaks TLS, use {secure}"
    return ""


TLS_HINT = ("check the CA bundle (profile tls.ca_file, else SSL_CERT_FILE) signs the server's"
            " certificate, and that the server speaks TLS on that port")


def describe(reason: Reason, target: str, timeout: float, exc: BaseException) -> str:
    """Operator words for a transport failure against `target` (host:port or URL)."""
    match reason:
        case Reason.REFUSED:
            return f"connection refused by {target} (nothing listens there)"
        case Reason.TIMEOUT:
            return f"timed out after {timeout:.1f} s waiting for {target}"
        case Reason.DNS:
            return f"DNS lookup failed for {target}"
        case Reason.TLS:
            return f"TLS handshake with {target} failed: {tls_detail(exc)}"
        case Reason.RESET:
            return f"connection to {target} was reset mid-conversation"
    return f"{type(exc).__name__} talking to {target}: {exc}"
