"""What a Redis failure means: an error reply by its prefix (protocols.md §6), or a socket,
TLS or protocol failure of the connection (checks/resp.py), each with its hint. Kept apart
from checks/redis.py (what is sent and read), as gcs_errors.py is from gcs.py."""
from __future__ import annotations

from typing import TYPE_CHECKING

from platctl.checks.base import CheckFailed
from platctl.checks.errors import TLS_HINT, classify, describe
from platctl.checks.resp import ProtocolError, RespError
from platctl.result import Reason
from platctl.secrets import clip

if TYPE_CHECKING:
    from platctl.checks.redis import RedisCheck


def refusal(check: RedisCheck, what: str, err: RespError) -> CheckFailed:
    """An error reply, by its prefix (protocols.md §6)."""
    hint, code, text = check.hint("url"), err.code, clip(err, 200)
    if code == "NOAUTH":
        return CheckFailed(Reason.AUTH, "Redis requires a password (NOAUTH) and REDIS_URL has"
                           " none", hint)
    if "without any password configured" in err or "no password is set" in err:
        return CheckFailed(Reason.AUTH, "REDIS_URL has a password but the server has none"
                           " configured for that user", hint)
    if code == "WRONGPASS" or (what == "AUTH" and "invalid password" in err):  # < 6: ERR
        return CheckFailed(Reason.AUTH, "wrong username or password (WRONGPASS: invalid"
                           " username-password pair or user is disabled)", hint)
    if code == "NOPERM":
        return CheckFailed(Reason.FORBIDDEN, f"the Redis user may not run {what} (NOPERM:"
                           f" {clip(err.detail, 200)})",
                           "grant the command to the user in REDIS_URL (ACL SETUSER ... +@stream"
                           " +@read +@write), or use another user")
    if code == "LOADING":
        return CheckFailed(Reason.UNAVAILABLE, "Redis is still loading its dataset (LOADING);"
                           " not ready yet", hint)
    if code == "READONLY":
        return CheckFailed(Reason.FORBIDDEN, "the server is a read-only replica (READONLY):"
                           " the platform needs the primary", hint)
    if code == "OOM":
        return CheckFailed(Reason.SERVER, f"Redis is out of memory: {text}", hint)
    if "unknown command" in err:
        return CheckFailed(Reason.UNEXPECTED, f"the server does not know {what}: {text}", hint)
    if "DB index is out of range" in err:  # SELECT, for /N in the URL
        return CheckFailed(Reason.MISSING, f"database {check.db} does not exist on the server"
                           " (DB index is out of range: see its `databases` setting)", hint)
    return CheckFailed(Reason.SERVER, f"Redis answered {what} with an error: {text}", hint)


def transport(check: RedisCheck, exc: BaseException) -> CheckFailed:
    """A socket, TLS or protocol failure (errors.classify), with the TLS/plaintext mix-up
    named: a plaintext client on a TLS port is dropped (reset); a TLS client on a plaintext
    Redis waits for the rest of the "command" its ClientHello started (timeout)."""
    hint = check.hint("url")
    reason = None if isinstance(exc, ProtocolError) else classify(exc)
    if reason is None or reason is Reason.UNEXPECTED:
        return CheckFailed(Reason.UNEXPECTED, f"{check.target} did not answer like Redis"
                           f" ({type(exc).__name__}: {clip(exc, 120)})", hint)
    msg = describe(reason, check.target, check.ctx.timeout, exc)
    if reason is Reason.RESET and not check.tls:
        msg += "; if the server requires TLS, use rediss://"
    stage = check._conn.stage if check._conn is not None else None
    if reason is Reason.TIMEOUT and check.tls and stage == "handshake":
        msg += " during the TLS handshake (is the port plaintext? then use redis://)"
    return CheckFailed(reason, msg, f"{TLS_HINT}; {hint}" if reason is Reason.TLS else hint)
