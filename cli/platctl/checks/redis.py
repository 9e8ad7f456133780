"""Redis: the platform's hot state, WAL (streams) and events.

Spoken with checks/resp.py, a small RESP2 client (bounded by the step's budget, no retries,
one connection), not redis-py: importing redis-py cost 0.15-0.3 s of CPU under the GIL the
plane's other checks share, and it makes round trips of its own on connect.

Every answer waited for costs the server's distance (tens of ms to a managed Redis in another
region), so the whole service is ONE round trip: redis.ping sends, in one write, AUTH and
SELECT (as the URL asks), PING, INFO server, ACL WHOAMI (no user in the URL), then the
commands of the later steps that are selected (streams, eviction's CONFIG GET, canary, in
step order). Each later step reads its own replies, in order, from that connection. A step
whose commands ping did not carry (`--only redis.canary`) sends its own batch, AUTH included
on a fresh connection (tests/test_redis_round_trips.py).

A failed AUTH fails redis.ping and the later steps are not run; the server still runs the
rest of the write: as NOAUTH errors, or, on a server without a password (AUTH's "called
without any password configured"), for real, every write with the DEL that undoes it.
"""
from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from urllib.parse import unquote, urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip, warn
from platctl.checks.redis_errors import refusal, transport
from platctl.checks.resp import Connection, ProtocolError, RespError
from platctl.result import Reason, Status
from platctl.secrets import clip

CANARY_TTL_MS = 30_000  # a canary that outlives a killed run still expires on its own
LATER = ("redis.streams", "redis.eviction", "redis.canary")  # what ping's write may carry


class RedisCheck(ServiceCheck):
    service = "redis"
    env = {"url": "REDIS_URL"}
    _conn: Connection | None = None
    # (step id, number of replies) of the later steps whose commands ping's write carried,
    # in the order sent: each step reads its own after the ones before it
    _carried: tuple = ()
    _lost: frozenset = frozenset()  # carried steps whose replies died with the connection
    _broken: BaseException | None = None  # what ended it: stands for those replies

    @cached_property
    def parts(self):  # noqa: ANN201
        return urlsplit(self.cfg.url.get_secret_value())

    @cached_property
    def tls(self) -> bool:
        return self.parts.scheme == "rediss"

    @cached_property
    def target(self) -> str:
        host = self.parts.hostname
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @cached_property
    def port(self) -> int:
        return self.parts.port or 6379

    @cached_property
    def user(self) -> str | None:
        return unquote(self.parts.username) if self.parts.username else None

    @cached_property
    def db(self) -> int:
        path = unquote(self.parts.path).strip("/")
        try:
            return int(path or 0)
        except ValueError:
            raise CheckFailed(Reason.CONFIG, f"REDIS_URL's path must be a database number"
                              f" (/0), not /{clip(path, 40)}", self.hint("url")) from None

    @cached_property
    def canary_key(self) -> str:
        return f"platctl:canary:{self.ctx.run_id}"

    @cached_property
    def canary_token(self) -> str:
        return secrets.token_hex(8)

    def steps(self) -> Sequence[Step]:
        return (Step("redis.ping", self.ping),
                Step("redis.streams", self.streams, gate=False),
                Step("redis.eviction", self.eviction, gate=False),
                Step("redis.canary", self.canary, gate=False))

    def close(self) -> None:
        # Nothing to delete: every write travelled with its DEL (see _commands).
        self._drop(None)

    # -- steps ------------------------------------------------------------------------------
    def ping(self) -> str:
        own = [("PING",), ("INFO", "server")] + ([] if self.user else [("ACL", "WHOAMI")])
        later = [(cid, self._commands(cid)) for cid in LATER if self.ctx.selected(cid)]
        later = [(cid, cmds) for cid, cmds in later if cmds]
        with self._errors("PING"):
            hello = self._hello()  # first: a URL naming no database number fails here
            conn = self._open()
            conn.send(*hello, *own, *(c for _, cmds in later for c in cmds))
            self._carried = tuple((cid, len(cmds)) for cid, cmds in later)
            try:
                self._read_hello(hello)
                # An error to PING or INFO fails the step, PING's first (NOAUTH before
                # INFO's): read one at a time so a failure does not wait for the rest.
                # WHOAMI's never does.
                replies = []
                for cmd in own:
                    replies.append(conn.read())
                    if cmd[0] != "ACL":
                        _raise_first(self, "PING", replies[-1:])
            except CheckFailed as failed:
                self._drop(failed)  # unread replies: the connection is out of step
                raise
        version = _info_field(replies[1], "redis_version") or "?"
        user = self.user or _whoami(replies[2])
        how = " over TLS" if self.tls else ""
        return f"PONG from Redis {version} at {self.target}{how}" + (f" as {user}" if user else "")

    def streams(self) -> str:
        with self._errors("XLEN" if self.ctx.read_only else "XADD/XRANGE"):
            replies = self._replies("redis.streams")
        if self.ctx.read_only:
            _raise_first(self, "XLEN", replies)
            return "streams available (read-only: XLEN only)"
        _raise_first(self, "XADD/XRANGE", replies)
        entries = replies[2]
        if not isinstance(entries, list) or len(entries) != 1:
            n = len(entries) if isinstance(entries, list) else "no"
            raise CheckFailed(Reason.UNEXPECTED, f"XRANGE returned {n} entries after one XADD",
                              self.hint("url"))
        return "streams usable (XADD, XRANGE, DEL on a platctl: key)"

    def eviction(self) -> str | Outcome:
        with self._errors("CONFIG GET"):
            (reply,) = self._replies("redis.eviction")
        if isinstance(reply, RespError):
            if reply.code == "NOPERM" or "unknown command" in reply \
                    or "unknown subcommand" in reply:
                # Managed Redis (Memorystore blocks CONFIG and ACL, protocols.md §6) hides the
                # setting from clients: unknown is not unhealthy, the console shows it.
                blocked = clip(reply.detail.split(",")[0], 80)
                return Outcome(Status.PASS, f"eviction policy unknown (not readable: CONFIG GET"
                               f" is not allowed here, {blocked}), as on managed Redis"
                               " (Memorystore); make sure maxmemory-policy is noeviction in the"
                               " provider's console")
            raise refusal(self, "CONFIG GET", reply)
        policy = _config_value(reply, "maxmemory-policy")
        if policy is None:  # CONFIG answered, but knows no such parameter (a Redis-alike)
            return Outcome(Status.PASS, "eviction policy unknown: the server has no"
                           " maxmemory-policy parameter; make sure it never evicts keys")
        if policy == "noeviction":
            return "maxmemory-policy is noeviction"
        return warn(f"maxmemory-policy is {clip(policy, 40)}: under memory pressure Redis may"
                    " evict keys and the WAL can lose entries",
                    "set maxmemory-policy noeviction on the Redis server")

    def canary(self) -> str | Outcome:
        if self.ctx.read_only:
            return skip("skipped: --read-only")
        with self._errors("SET/GET"):
            replies = self._replies("redis.canary")
        _raise_first(self, "SET/GET", replies)
        if replies[1] != self.canary_token.encode():
            raise CheckFailed(Reason.UNEXPECTED, "the canary read back a different value"
                              " (is something else writing platctl: keys?)", self.hint("url"))
        return (f"canary written, read back and deleted ({self.canary_key},"
                f" TTL {CANARY_TTL_MS // 1000} s)")

    # -- what each step sends ---------------------------------------------------------------
    def _commands(self, step_id: str) -> tuple:
        """A later step's commands. A write travels with the DEL that undoes it, in the same
        write: the server runs them in order even when platctl stopped listening (SIGINT, a
        timeout, a crash), so a stalled server that executes the write late deletes it too; a
        separate DEL could overtake it (another connection) and leave it behind. The TTL stays
        as the backstop for a batch cut in half. --read-only: XLEN, CONFIG GET, no write."""
        key, ro = self.canary_key, self.ctx.read_only
        stream = f"{key}:stream"
        if step_id == "redis.streams":
            return (("XLEN", stream),) if ro else (
                ("XADD", stream, "MAXLEN", "1", "*", "probe", "1"),
                ("PEXPIRE", stream, CANARY_TTL_MS), ("XRANGE", stream, "-", "+", "COUNT", "1"),
                ("DEL", stream))
        if step_id == "redis.eviction":
            return (("CONFIG", "GET", "maxmemory-policy"),)
        return () if ro else (("SET", key, self.canary_token, "PX", CANARY_TTL_MS, "NX"),
                              ("GET", key), ("DEL", key))

    def _hello(self) -> list[tuple]:
        """What a fresh connection sends first, as redis-py did: AUTH when the URL has
        credentials, SELECT when it names a database other than 0 (a connection's default)."""
        password = unquote(self.parts.password) if self.parts.password else None
        hello: list[tuple] = []
        if self.user:
            hello.append(("AUTH", self.user, password or ""))
        elif password:
            hello.append(("AUTH", password))
        if self.db:
            hello.append(("SELECT", self.db))
        return hello

    # -- the connection ---------------------------------------------------------------------
    def _open(self) -> Connection:
        ssl_context = self.ctx.ssl_context() if self.tls else None
        self._conn = Connection(self.parts.hostname, self.port, self.budget, ssl_context)
        self._conn.open()
        return self._conn

    def _read_hello(self, hello: list[tuple]) -> None:
        for cmd in hello:
            reply = self._conn.read()
            if isinstance(reply, RespError):
                raise refusal(self, cmd[0], reply)

    def _replies(self, step_id: str) -> list:
        """The replies to a step's commands: ping's write carried them (read them after the
        earlier steps' ones), or they go now in one write: on a fresh connection, after
        AUTH/SELECT."""
        if step_id in self._lost:
            raise self._broken
        while self._carried:
            (cid, n), self._carried = self._carried[0], self._carried[1:]
            replies = [self._conn.read() for _ in range(n)]
            if cid == step_id:
                return replies
        commands = self._commands(step_id)
        hello = [] if self._conn is not None else self._hello()
        conn = self._conn or self._open()
        conn.send(*hello, *commands)
        try:
            self._read_hello(hello)
        except CheckFailed as failed:
            self._drop(failed)
            raise
        return [conn.read() for _ in commands]

    def _drop(self, why: BaseException | None) -> None:
        """Close the connection; the carried replies not read yet are lost with it."""
        self._lost |= {cid for cid, _ in self._carried}
        self._carried, self._broken = (), why
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """A broken, timed-out or non-RESP stream: the connection is dropped, the failure
        classified (and stands for the replies of later steps it carried)."""
        try:
            yield
        except (OSError, ProtocolError) as exc:
            failed = transport(self, exc)  # before the drop: it reads the connection's stage
            self._drop(exc)
            raise failed from None


def _raise_first(check: RedisCheck, what: str, replies: list) -> None:
    for reply in replies:
        if isinstance(reply, RespError):
            raise refusal(check, what, reply)


def _info_field(reply: object, name: str) -> str | None:
    if not isinstance(reply, bytes):
        return None
    for line in reply.decode(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return clip(value.strip(), 40)
    return None


def _config_value(reply: object, name: str) -> str | None:
    """CONFIG GET's RESP2 answer is a flat [name, value, ...] list; [] for no such name."""
    if isinstance(reply, list):
        pairs = dict(zip(reply[::2], reply[1::2]))
        value = pairs.get(name.encode())
        if isinstance(value, bytes):
            return value.decode(errors="replace")
    return None


def _whoami(reply: object) -> str | None:
    """The user ACL WHOAMI named; None when it was refused (NOPERM: managed Redis blocks
    ACL) or unknown (Redis < 6), as the step does not need the name."""
    if isinstance(reply, bytes):
        return clip(reply.decode(errors="replace"), 60)
    return None


CHECK = RedisCheck
