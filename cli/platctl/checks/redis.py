"""Redis: the platform's hot state, WAL (streams) and events.

redis-py >= 8 retries connection errors ten times and older versions block forever, so the
client is built with explicit socket timeouts, no retries and one connection (protocols.md §6).

Every answer waited for costs the server's distance (tens of ms to a managed Redis in another
region), so round trips are counted: redis.ping is two (AUTH on connect, then PING, INFO and
ACL WHOAMI in one pipeline), every other step one (tests/test_redis_round_trips.py).
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence
from functools import cached_property
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip, warn
from platctl.checks.errors import TLS_HINT, classify, describe
from platctl.result import Reason, Status
from platctl.secrets import clip

CANARY_TTL_MS = 30_000  # a canary that outlives a killed run still expires on its own


class RedisCheck(ServiceCheck):
    service = "redis"
    env = {"url": "REDIS_URL"}
    _policy_reply: object = None  # CONFIG GET maxmemory-policy, as redis.ping received it

    @cached_property
    def url(self) -> str:
        return self.cfg.url.get_secret_value()

    @cached_property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"

    @cached_property
    def target(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}"

    @cached_property
    def client(self):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        kw = _no_client_setinfo()
        if self.tls:
            kw |= {"ssl_ca_certs": self.ctx.ca_file, "ssl_cert_reqs": "required"}
        return redis.Redis.from_url(
            # Built in the first step, whose deadline includes importing redis-py.
            self.url, socket_timeout=self.budget(), socket_connect_timeout=self.budget(),
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, protocol=2,
            single_connection_client=True, health_check_interval=0, **kw)

    def prepare(self) -> None:
        import redis  # noqa: F401

    def steps(self) -> Sequence[Step]:
        return (Step("redis.ping", self.ping),
                Step("redis.streams", self.streams, gate=False),
                Step("redis.eviction", self.eviction, gate=False),
                Step("redis.canary", self.canary, gate=False))

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()

    # -- steps ------------------------------------------------------------------------------
    def ping(self) -> str:
        # One round trip after the connection's AUTH: PING, INFO, the eviction policy for
        # redis.eviction (one round trip fewer there) and, when the URL names no user, ACL
        # WHOAMI travel in one write. An error to PING or INFO fails the step (the first one
        # wins: PING's NOAUTH before INFO's); CONFIG GET's and WHOAMI's never do.
        user = urlsplit(self.url).username
        commands = [("PING",), ("INFO", "server"), ("CONFIG GET", "maxmemory-policy")] \
            + ([] if user else [("ACL WHOAMI",)])
        with self._errors("PING"):
            replies = self._send(*commands)
            _raise_first(replies[:2])
        self._policy_reply = replies[2]
        version = replies[1].get("redis_version", "?")
        if not user:
            user = _whoami(replies[3])
        how = " over TLS" if self.tls else ""
        return f"PONG from Redis {version} at {self.target}{how}" + (f" as {user}" if user else "")

    def streams(self) -> str:
        key = f"platctl:canary:{self.ctx.run_id}:stream"
        if self.ctx.read_only:
            with self._errors("XLEN"):
                self.client.xlen(key)
            return "streams available (read-only: XLEN only)"
        _, _, entries, _ = self._pipelined(
            "XADD/XRANGE", ("XADD", key, "MAXLEN", "1", "*", "probe", "1"),
            ("PEXPIRE", key, CANARY_TTL_MS), ("XRANGE", key, "-", "+", "COUNT", "1"), ("DEL", key))
        if len(entries) != 1:
            raise CheckFailed(Reason.UNEXPECTED, f"XRANGE returned {len(entries)} entries after"
                              " one XADD", self.hint("url"))
        return "streams usable (XADD, XRANGE, DEL on a platctl: key)"

    def eviction(self) -> str | Outcome:
        try:
            with self._errors("CONFIG GET"):
                policy = self._config_get("maxmemory-policy")
        except _Blocked as blocked:
            # Managed Redis (Memorystore blocks CONFIG and ACL, protocols.md §6) hides the
            # setting from clients: unknown is not unhealthy, the console shows it.
            return Outcome(Status.PASS, f"eviction policy unknown (not readable: CONFIG GET is"
                           f" not allowed here, {blocked}), as on managed Redis (Memorystore);"
                           " make sure maxmemory-policy is noeviction in the provider's console")
        if policy is None:  # CONFIG answered, but knows no such parameter (a Redis-alike)
            return Outcome(Status.PASS, "eviction policy unknown: the server has no"
                           " maxmemory-policy parameter; make sure it never evicts keys")
        if policy == "noeviction":
            return "maxmemory-policy is noeviction"
        return warn(f"maxmemory-policy is {policy}: under memory pressure Redis may evict keys"
                    " and the WAL can lose entries",
                    "set maxmemory-policy noeviction on the Redis server")

    def canary(self) -> str | Outcome:
        if self.ctx.read_only:
            return skip("skipped: --read-only")
        key = f"platctl:canary:{self.ctx.run_id}"
        token = secrets.token_hex(8)
        _, got, _ = self._pipelined("SET/GET", ("SET", key, token, "PX", CANARY_TTL_MS, "NX"),
                                    ("GET", key), ("DEL", key))
        if got is None or got.decode(errors="replace") != token:
            raise CheckFailed(Reason.UNEXPECTED, "the canary read back a different value"
                              " (is something else writing platctl: keys?)", self.hint("url"))
        return f"canary written, read back and deleted ({key}, TTL {CANARY_TTL_MS // 1000} s)"

    # -- helpers ----------------------------------------------------------------------------
    def _config_get(self, name: str) -> str | None:
        """CONFIG GET of one parameter (the answer redis.ping fetched, when it ran);
        _Blocked when the command is renamed, unknown or denied to this user (NOPERM), which
        managed services do on purpose."""
        import redis

        reply, self._policy_reply = self._policy_reply, None
        try:
            if isinstance(reply, Exception):
                raise reply
            value = (reply if isinstance(reply, dict) else self.client.config_get(name)).get(name)
        except (redis.exceptions.NoPermissionError, redis.ResponseError) as exc:
            text = str(exc)
            if isinstance(exc, redis.exceptions.NoPermissionError) or "unknown command" in text \
                    or "unknown subcommand" in text:
                raise _Blocked(clip(text.split(",")[0], 80)) from None
            raise
        return value.decode() if isinstance(value, bytes) else value

    def _pipelined(self, what: str, *commands: tuple) -> list:
        """Send `commands` in one write on the check's connection, then read every reply.
        A canary's DEL travels with the write it undoes: the server runs them in order even
        when platctl stopped listening (SIGINT, a timeout, a crash), so a stalled server that
        executes the write late deletes it too. A separate DEL after a timeout could overtake
        the write (another connection) and leave it behind; an XADD whose PEXPIRE never came
        would stay forever. The TTL stays as the backstop for a batch cut in half."""
        with self._errors(what):
            replies = self._send(*commands)
            _raise_first(replies)
        return replies

    def _send(self, *commands: tuple) -> list:
        """Send `commands` in one write on the check's one connection and read every reply:
        one round trip. Each command's place in the list holds its reply or the RedisError
        that stands for it: its error answer (the connection stays in sync), or the failure
        that ended the reading (the connection broke or timed out, an answer redis-py raises
        as a connection error: NOAUTH, LOADING, or one that is not RESP), which stands for it
        and every command after it. The connection is then dropped, as its unread answers
        would be taken for the next command's; a later step connects again. redis-py's own
        Pipeline is not used: it borrows a second connection from the pool (one more connect
        and AUTH)."""
        import redis

        conn = self.client.connection  # connects (the client is single-connection)
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list = []
        try:
            for cmd in commands:
                try:  # "ACL WHOAMI" is also the name redis-py keys its reply callback by
                    replies.append(self.client.parse_response(conn, cmd[0]))
                except redis.ResponseError as exc:
                    replies.append(exc)
        except redis.RedisError as exc:
            conn.disconnect()
            replies += [exc] * (len(commands) - len(replies))
        except BaseException:
            conn.disconnect()
            raise
        return replies

    def _errors(self, what: str) -> "_RedisErrors":
        return _RedisErrors(self, what)


def _raise_first(replies: list) -> None:
    import redis

    for reply in replies:
        if isinstance(reply, redis.RedisError):
            raise reply


def _whoami(reply: object) -> str | None:
    """The user ACL WHOAMI named; None when it failed, as the step does not need the name:
    refused (NOPERM: managed Redis blocks ACL), unknown (Redis < 6), or the connection went
    after INFO's answer (the next step connects again)."""
    import redis

    if isinstance(reply, redis.RedisError):
        return None
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _no_client_setinfo() -> dict:
    """The client keywords that keep redis-py from sending CLIENT SETINFO LIB-NAME and
    LIB-VER on connect: two round trips platctl does not need (and two error answers from a
    Redis < 7.2, which has no SETINFO). redis-py with DriverInfo (the redis.driver_info
    module) takes driver_info=None there and warns about lib_name/lib_version; from 5.0
    (SETINFO's first release, pyproject requires it) lib_name=None, lib_version=None."""
    try:
        import redis.driver_info  # noqa: F401
    except ImportError:
        return {"lib_name": None, "lib_version": None}
    return {"driver_info": None}


class _Blocked(Exception):
    """A command the server refuses to run for anyone like us (renamed, unknown, NOPERM)."""


class _RedisErrors:
    """Context manager turning redis-py exceptions into classified CheckFailed."""

    def __init__(self, check: RedisCheck, what: str) -> None:
        self.check, self.what = check, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        if exc is None or isinstance(exc, (CheckFailed, _Blocked)) \
                or not isinstance(exc, Exception):
            return False
        raise _classify(self.check, self.what, exc) from None


def _classify(check: RedisCheck, what: str, exc: Exception) -> CheckFailed:
    import redis.exceptions as rx

    hint = check.hint("url")
    text = str(exc)
    if isinstance(exc, rx.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text:
        if "required" in text.lower() and "password" not in text.lower():
            return CheckFailed(Reason.AUTH, "Redis requires a password (NOAUTH) and REDIS_URL"
                               " has none", hint)
        if "without any password configured" in text:
            return CheckFailed(Reason.AUTH, "REDIS_URL has a password but the server has none"
                               " configured for that user", hint)
        return CheckFailed(Reason.AUTH, "wrong username or password (WRONGPASS: invalid"
                           " username-password pair or user is disabled)", hint)
    if isinstance(exc, rx.NoPermissionError):
        return CheckFailed(Reason.FORBIDDEN, f"the Redis user may not run {what} (NOPERM: {exc})",
                           "grant the command to the user in REDIS_URL (ACL SETUSER ... +@stream"
                           " +@read +@write), or use another user")
    if isinstance(exc, rx.BusyLoadingError):
        return CheckFailed(Reason.UNAVAILABLE, "Redis is still loading its dataset (LOADING);"
                           " not ready yet", hint)
    if isinstance(exc, rx.ReadOnlyError):
        return CheckFailed(Reason.FORBIDDEN, "the server is a read-only replica (READONLY):"
                           " the platform needs the primary", hint)
    if isinstance(exc, rx.ResponseError):
        if text.startswith("OOM"):
            return CheckFailed(Reason.SERVER, f"Redis is out of memory: {exc}", hint)
        if "unknown command" in text:
            return CheckFailed(Reason.UNEXPECTED, f"the server does not know {what}: {exc}", hint)
        if "DB index is out of range" in text:  # the SELECT sent on connect for /N in the URL
            db = urlsplit(check.url).path.strip("/") or "0"
            return CheckFailed(Reason.MISSING, f"database {db} does not exist on the server"
                               " (DB index is out of range: see its `databases` setting)", hint)
        return CheckFailed(Reason.SERVER, f"Redis answered {what} with an error: {exc}", hint)
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, OSError)):
        reason = classify(exc)
        if reason is None:
            closed = "Connection closed" in text or "closed by server" in text
            reason = Reason.RESET if closed else Reason.UNEXPECTED
        if reason is Reason.UNEXPECTED:
            return CheckFailed(reason, f"{check.target} did not answer like Redis ({exc})", hint)
        msg = describe(reason, check.target, check.ctx.timeout, exc)
        if reason is Reason.RESET and not check.tls:
            msg += "; if the server requires TLS, use rediss://"
        if reason is Reason.TIMEOUT and check.tls and "connecting" in text:
            # A plaintext Redis swallows the TLS ClientHello and waits: it looks like a hang.
            msg += " during the TLS handshake (is the port plaintext? then use redis://)"
        return CheckFailed(reason, msg, f"{TLS_HINT}; {hint}" if reason is Reason.TLS else hint)
    if isinstance(exc, rx.RedisError):  # InvalidResponse and friends: not a Redis peer
        return CheckFailed(Reason.UNEXPECTED, f"{check.target} did not answer like Redis"
                           f" ({type(exc).__name__}: {exc})", hint)
    raise exc


CHECK = RedisCheck
