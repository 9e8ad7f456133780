"""The certificate behind a service's TLS endpoint: one bounded inspection and its verdict.

`SERVICE.tls` runs first for every network service (ServiceCheck.all_steps) and `diagnose`
shows the same inspection as its TLS layer. The handshake verifies with the one CA setting
(CheckContext.ssl_context); when verification fails, a second handshake without verification
reads the certificate anyway, so the verdict can name what is wrong with it (its subject,
issuer, SANs and dates) instead of OpenSSL's one line. Client libraries only say "certificate
verify failed", which is the complaint operators have of every readiness tool (users.md #6).
"""
from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step
from platctl.checks.errors import TLS_HINT, classify, describe, mixup
from platctl.result import Reason, Status

WARN_WITHIN = timedelta(days=14)  # expiring sooner than this warns
GCS_DEFAULT = "https://storage.googleapis.com"
# OpenSSL verify codes (x509_vfy.h) that the verdict words differently from "untrusted"
NOT_YET_VALID, EXPIRED, HOSTNAME_MISMATCH, IP_MISMATCH = 9, 10, 62, 64


@dataclass(frozen=True)
class Endpoint:
    """Where a service's clients connect, as its profile says."""
    scheme: str
    host: str
    port: int
    field: str  # the profile field it comes from, for hints
    tls: bool
    plain: str  # the plaintext scheme to suggest when the port answers plaintext

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def shown(self) -> str:  # never the userinfo: built from host and port only
        return f"{self.scheme}://{self.target}"


def endpoint(profile: Any, service: str) -> Endpoint | None:
    """The endpoint of a network service, or None (duckdb, runtime, an unparseable URL: the
    service's own checks report that)."""
    cfg = profile.section(service)
    if service == "gcs":
        emulator = (cfg.emulator_host or "").strip()
        raw = emulator or getattr(cfg, "endpoint", None) or GCS_DEFAULT
        # the field to fix: the emulator's, else `endpoint` where the model has one
        field = "endpoint" if not emulator and "endpoint" in type(cfg).model_fields \
            else "emulator_host"
        raw = raw.get_secret_value() if hasattr(raw, "get_secret_value") else str(raw)
        raw = raw if "://" in raw else "http://" + raw  # gcs.py reads host:port the same way
    elif service in ("redis", "arango", "supabase", "meilisearch", "consul", "telemetry"):
        field = "endpoint" if service == "telemetry" else "url"
        raw = getattr(cfg, field).get_secret_value()
    else:
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.scheme not in ("http", "https", "redis", "rediss"):
        return None
    tls = parts.scheme in ("https", "rediss")
    if port is None:  # what the clients dial (telemetry: gRPC's default is 443, see its module)
        grpc = service == "telemetry" and cfg.protocol == "grpc"
        port = 6379 if service == "redis" else 443 if tls or grpc else 80
    return Endpoint(parts.scheme, parts.hostname, port, field, tls,
                    "redis://" if service == "redis" else "http://")


@dataclass(frozen=True)
class Certificate:
    subject: str
    issuer: str
    sans: tuple[str, ...]
    not_before: datetime
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True)
class Inspection:
    """What one TLS handshake showed. `verify_error` is OpenSSL's verify message."""
    protocol: str | None
    cipher: str | None
    cert: Certificate | None
    verified: bool
    verify_code: int | None = None
    verify_error: str | None = None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        out = asdict(self)
        if self.cert:
            out["cert"] = {**asdict(self.cert), "sans": list(self.cert.sans),
                           "not_before": self.cert.not_before.isoformat(),
                           "not_after": self.cert.not_after.isoformat(),
                           "days_left": round(self.cert.days_left(now), 1)}
        return out


def parse_certificate(der: bytes) -> Certificate:
    from cryptography import x509  # imported here so `platctl --help` stays fast

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(str(n.value) for n in san  # in the certificate's order
                     if isinstance(n, (x509.DNSName, x509.IPAddress)))
    except x509.ExtensionNotFound:
        sans = ()
    return Certificate(cert.subject.rfc4514_string() or "(empty subject)",
                       cert.issuer.rfc4514_string() or "(empty issuer)", tuple(sans),
                       cert.not_valid_before_utc, cert.not_valid_after_utc)


class HandshakeError(Exception):
    """A transport failure during inspection, with the phase it happened in."""

    def __init__(self, exc: BaseException, phase: str) -> None:
        super().__init__(str(exc))
        self.exc, self.phase = exc, phase


def inspect(address: str, port: int, server_hostname: str, context: ssl.SSLContext,
            budget: Callable[[], float]) -> Inspection:
    """Handshake with `address` verifying as `server_hostname`; on a verification failure,
    once more without verification to read the certificate. Raises HandshakeError."""
    try:
        sock = _handshake(address, port, server_hostname, context, budget)
    except ssl.SSLCertVerificationError as exc:
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
        sock = _handshake(address, port, server_hostname, unverified, budget)
        return _read(sock, False, exc.verify_code, exc.verify_message)
    return _read(sock, True, None, None)


def _handshake(address: str, port: int, server_hostname: str, context: ssl.SSLContext,
               budget: Callable[[], float]) -> ssl.SSLSocket:
    try:
        raw = socket.create_connection((address, port), timeout=budget())
    except OSError as exc:
        raise HandshakeError(exc, "connect") from None
    try:
        raw.settimeout(budget())
        return context.wrap_socket(raw, server_hostname=server_hostname)
    except ssl.SSLCertVerificationError:
        raw.close()
        raise
    except OSError as exc:
        raw.close()
        raise HandshakeError(exc, "handshake") from None


def _read(sock: ssl.SSLSocket, verified: bool, code: int | None, why: str | None) -> Inspection:
    with sock:
        der = sock.getpeercert(binary_form=True)
        cipher = sock.cipher()
        version = sock.version()
    try:
        cert = parse_certificate(der) if der else None
    except ValueError:  # OpenSSL took it, cryptography cannot read it: judged as none sent
        cert = None
    return Inspection(version, cipher[0] if cipher else None, cert, verified, code, why)


def judge(got: Inspection, ep: Endpoint, hint: str, now: datetime | None = None) -> Outcome:
    """The verdict on an inspection: dates first (they are wrong whoever signed), then the
    host name, then trust; a verified certificate warns within WARN_WITHIN of its expiry."""
    now = now or datetime.now(timezone.utc)
    cert = got.cert
    if cert is None:
        return Outcome(Status.FAIL, f"{ep.target} sent no certificate platctl can read",
                       hint, Reason.TLS)
    who = f"{cert.subject} (issuer {cert.issuer})"
    renew = f"renew the server's certificate; {hint}"
    if now > cert.not_after or got.verify_code == EXPIRED:
        ago = -cert.days_left(now)
        return Outcome(Status.FAIL, f"certificate of {ep.target} expired on {_day(cert.not_after)}"
                       f" ({ago:.0f} days ago): {who}", renew, Reason.TLS)
    if now < cert.not_before or got.verify_code == NOT_YET_VALID:
        return Outcome(Status.FAIL, f"certificate of {ep.target} is not valid yet: valid from"
                       f" {_day(cert.not_before)} (server or platctl clock wrong?): {who}",
                       renew, Reason.TLS)
    if got.verify_code in (HOSTNAME_MISMATCH, IP_MISMATCH):
        seen = ", ".join(cert.sans) or "none (subject only)"
        return Outcome(Status.FAIL, f"certificate does not match {ep.host}: its SANs are {seen}"
                       f" (subject {cert.subject})", f"connect with a name the certificate"
                       f" lists, or reissue it for {ep.host}; {hint}", Reason.TLS)
    if not got.verified:
        return Outcome(Status.FAIL, f"TLS handshake with {ep.target} failed: certificate verify"
                       f" failed: {got.verify_error}: {who} is not signed by a trusted CA",
                       f"set tls.ca_file in the profile (or SSL_CERT_FILE) to the CA that"
                       f" signs it; {hint}", Reason.TLS)
    left = cert.days_left(now)
    if cert.not_after - now < WARN_WITHIN:
        return Outcome(Status.WARN, f"certificate of {ep.target} expires in {left:.0f} days"
                       f" (notAfter {_day(cert.not_after)}): {who}", renew)
    return Outcome(Status.PASS, f"certificate {cert.subject} issued by {cert.issuer}, valid"
                   f" {left:.0f} more days, {got.protocol}")


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def failure(err: HandshakeError, ep: Endpoint, timeout: float, hint: str) -> Outcome:
    """A transport failure during inspection, in the words the service checks use."""
    reason = classify(err.exc) or Reason.UNEXPECTED
    if reason is Reason.UNEXPECTED:
        return Outcome(Status.FAIL, f"{ep.target} did not complete a TLS handshake"
                       f" ({type(err.exc).__name__})", hint, reason)
    msg = describe(reason, ep.target, timeout, err.exc) + mixup(reason, True, err.exc,
                                                               ep.plain)
    if reason is Reason.TIMEOUT and err.phase == "handshake":
        # A plaintext server often swallows the ClientHello and waits: it looks like a hang.
        msg += f" during the TLS handshake (is the port plaintext? then use {ep.plain})"
    return Outcome(Status.FAIL, msg, f"{TLS_HINT}; {hint}" if reason is Reason.TLS else hint,
                   reason)


def probe(check: ServiceCheck, ep: Endpoint,
          address: str | None = None) -> tuple[Outcome, Inspection | None]:
    """Inspect `ep` (at `address` when the caller resolved it) and judge it."""
    hint = check.hint(ep.field)
    try:
        context = check.ctx.ssl_context()
        got = inspect(address or ep.host, ep.port, ep.host, context, check.budget)
    except CheckFailed as failed:  # an unreadable CA bundle
        return failed.outcome, None
    except HandshakeError as err:
        return failure(err, ep, check.ctx.timeout, hint), None
    return judge(got, ep, hint), got


# Steps that only read the profile (no connection), so they come before SERVICE.tls: a
# credentials file that does not parse is reported as such even when the network is down.
LOCAL_FIRST = {"gcs": "gcs.credentials", "telemetry": "telemetry.endpoint"}


def with_tls_step(check: ServiceCheck, steps: tuple[Step, ...]) -> tuple[Step, ...]:
    tls = tls_step(check)
    if tls is None:
        return steps
    at = next((i + 1 for i, s in enumerate(steps) if s.id == LOCAL_FIRST.get(check.service)), 0)
    return (*steps[:at], tls, *steps[at:])


def tls_step(check: ServiceCheck) -> Step | None:
    """`SERVICE.tls` for a network service; None for the others."""
    if check.service in ("duckdb", "runtime"):
        return None

    def run() -> Outcome:
        ep = endpoint(check.ctx.profile, check.service)
        if ep is None:
            return Outcome(Status.SKIP, "no endpoint URL to inspect (its checks say why)")
        if not ep.tls:
            return Outcome(Status.SKIP, f"plaintext endpoint ({ep.shown}): no TLS to check")
        return probe(check, ep)[0]
    return Step(f"{check.service}.tls", run)
