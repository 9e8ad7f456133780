"""ArangoDB: the platform's durable state and graph.

Raw HTTP through HttpProbe, not python-arango: its urllib3 retries and host fallback turn a
read timeout into ConnectionAbortedError after several tries and a 503 into RetryError after
about 6 s (protocols.md §1), so no attempt of its own can be bounded by --timeout.

Auth vs database: to a non-superuser, ArangoDB answers 401 errno 11 alike for a wrong password,
a missing database and a database without a grant. So credentials are proven first on
`/_db/_system/_api/user/{user}/database/{db}`: `_system` always exists and a user may read their
own grants whatever their database levels are, so a 401 there can only mean bad credentials.
After that, a 401 from `/_db/{db}/...` means "missing or not granted" and is reported so.
Errors are matched on (HTTP status, errorNum), never on message texts.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

from platctl.checks.base import CheckFailed, ServiceCheck, Step
from platctl.checks.http import HttpProbe
from platctl.result import Reason

ERR_FORBIDDEN = 11  # also what a 401 "not authorized" carries
ERR_UNAVAILABLE = 503
ERR_COLLECTION_NOT_FOUND = 1203
ERR_DUPLICATE_NAME = 1207
ERR_DATABASE_NOT_FOUND = 1228
AVAILABILITY = "/_admin/server/availability"  # answered without credentials


def q(name: str) -> str:
    return quote(name, safe="")


class ArangoCheck(ServiceCheck):
    service = "arango"
    env = {"url": "ARANGO_URL", "username": "ARANGO_USERNAME", "password": "ARANGO_PASSWORD",
           "database": "ARANGO_DATABASE"}

    authenticated = False  # set by arango.auth: later 401s cannot mean a bad password then

    @cached_property
    def probe(self) -> HttpProbe:
        # X-Omit-Www-Authenticate: a 401 is an answer for us, not a prompt
        return HttpProbe(self.ctx, self.cfg.url.get_secret_value(), self.hint("url"),
                         headers={"X-Omit-Www-Authenticate": "true"}, budget=self.budget)

    @cached_property
    def basic_auth(self) -> Any:
        import httpx

        pw = self.cfg.password.get_secret_value() if self.cfg.password is not None else ""
        return httpx.BasicAuth(self.cfg.username, pw)

    @property
    def user(self) -> str:
        return self.cfg.username

    @property
    def db(self) -> str:
        return self.cfg.database

    def prepare(self) -> None:
        self.probe  # builds the HTTP client (TLS context) outside the first step's timing

    def steps(self) -> Sequence[Step]:
        # One after the other, each reading what arango.available asked early (one round trip
        # in all), so arango.database knows whether arango.auth proved the credentials.
        return (Step("arango.available", self.available),
                Step("arango.auth", self.auth),
                Step("arango.database", self.database),
                Step("arango.permission", self.permission, gate=False),
                Step("arango.collections", self.collections, gate=False))

    def close(self) -> None:
        if "probe" in self.__dict__:
            self.probe.close()

    # -- steps ------------------------------------------------------------------------------
    def available(self) -> str:
        self.ask_early(self._later(), self._fetch)
        status, body = self._call("GET", AVAILABILITY, "availability", auth=False)
        mode = body.get("mode")
        if status == 200 and mode == "default":
            return f"ArangoDB at {self.probe.target} is available (mode default)"
        if status == 200 and mode == "readonly":
            raise CheckFailed(Reason.UNAVAILABLE, "server is in read-only mode; the data plane"
                              " needs writes", "take the ArangoDB server out of read-only mode"
                              " (PUT /_admin/server/mode {\"mode\":\"default\"})")
        if status == 200:
            raise CheckFailed(Reason.UNEXPECTED, f"{self.probe.target} answered availability"
                              f" without a known mode ({mode!r}): is ARANGO_URL an ArangoDB"
                              " server?", self.hint("url"))
        raise self._unexpected(status, body, "availability")

    def auth(self) -> str:
        self._grant()  # raises AUTH on a 401
        self.authenticated = True
        return f"credentials accepted for user {self.user}; {self._version()}"

    def database(self) -> str:
        status, body = self._get(*self._database())
        err = body.get("errorNum")
        if status == 200:
            return f"database {self.db} exists and user {self.user} can access it"
        if status == 404 and err == ERR_DATABASE_NOT_FOUND:
            raise CheckFailed(Reason.MISSING, f"database {self.db} does not exist",
                              self.hint("database"))
        if status == 401 and err == ERR_FORBIDDEN:
            creds = "" if self.authenticated else "; or the credentials are wrong"
            # A managed deployment (ArangoDB Oasis) hands the platform a non-superuser: this
            # is the answer it gets for a typo in the name and for a forgotten grant alike.
            raise CheckFailed(Reason.MISSING, f"database {self.db} does not exist or user"
                              f" {self.user} has no access to it (missing or not granted:"
                              f" ArangoDB answers 401 for both to non-superusers){creds}",
                              f"{self.hint('database')}, or grant {self.user} rw on {self.db}"
                              " (as an admin, e.g. the deployment's root user on Oasis)")
        raise self._unexpected(status, body, f"database {self.db}")

    def permission(self) -> str:
        level = self._grant()
        if level == "rw":
            return f"user {self.user} has rw on {self.db}"
        what = "read-only access to" if level == "ro" else "no access to"
        raise CheckFailed(Reason.FORBIDDEN, f"user {self.user} has {what} {self.db} (grant"
                          f" {level}); the platform writes", self._grant_hint())

    def collections(self) -> str:
        present, missing = [], []
        for name in self.cfg.collections:
            status, body = self._get(*self._collection(name))
            if status == 200:
                present.append(name)
            elif status == 404 and body.get("errorNum") == ERR_COLLECTION_NOT_FOUND:
                missing.append(name)
            else:
                raise self._unexpected(status, body, f"collection {name}")
        if not missing:
            return (f"collections present in {self.db}: {', '.join(present)}" if present
                    else "no collections configured (arango.collections is empty)")
        listed = f"missing in database {self.db}: {', '.join(missing)}"
        if not self.cfg.create_missing:
            raise CheckFailed(Reason.MISSING, f"collections {listed}", "create them, or set"
                              " arango.create_missing: true in the profile to let platctl"
                              " create them")
        if self.ctx.read_only:
            raise CheckFailed(Reason.MISSING, f"collections {listed}; not created because of"
                              " --read-only (arango.create_missing is on)",
                              "run without --read-only to create them, or create them yourself")
        for name in missing:
            self._create(name)
        have = f"present: {', '.join(present)}; " if present else ""
        return f"collections in {self.db}: {have}created: {', '.join(missing)}"

    # -- helpers ----------------------------------------------------------------------------
    def _later(self) -> list[tuple[str, str]]:
        """The GETs (path, what) of the selected later steps, asked with availability."""
        wanted = {"arango.auth": [self._grant_path(), self._version_path(self.db)],
                  "arango.database": [self._database()],
                  "arango.permission": [self._grant_path()],
                  "arango.collections": [self._collection(n) for n in self.cfg.collections]}
        return list(dict.fromkeys(r for cid, requests in wanted.items()
                                  if self.ctx.selected(cid) for r in requests))

    def _get(self, path: str, what: str) -> tuple[int, dict]:
        """`_call` of a GET: the answer arango.available asked early, or asked now."""
        return self.answer((path, what), self._fetch)

    def _fetch(self, request: tuple[str, str]) -> tuple[int, dict]:
        return self._call("GET", *request)

    def _database(self) -> tuple[str, str]:
        return f"/_db/{q(self.db)}/_api/database/current", f"database {self.db}"

    def _collection(self, name: str) -> tuple[str, str]:
        return f"/_db/{q(self.db)}/_api/collection/{q(name)}", f"collection {name}"

    def _grant_path(self) -> tuple[str, str]:
        return (f"/_db/_system/_api/user/{q(self.user)}/database/{q(self.db)}",
                f"grants of {self.user}")

    def _version_path(self, db: str) -> tuple[str, str]:
        return f"/_db/{q(db)}/_api/version", "version"

    def _call(self, method: str, path: str, what: str, auth: bool = True,
              **kw: Any) -> tuple[int, dict]:
        """(status, JSON object) of one request; transport, 5xx and non-JSON are failures."""
        resp = self.probe.request(method, path, auth=self.basic_auth if auth else None, **kw)
        where = f"ArangoDB at {self.probe.target} ({what})"
        if resp.status_code == 503:  # from ArangoDB or the proxy before it: not ready either way
            if _object(resp.content).get("errorNum") == ERR_UNAVAILABLE:
                # the docs (not the source) also give read-only mode a 503 on availability
                ro = ", read-only" if path == AVAILABILITY else ""
                raise CheckFailed(Reason.UNAVAILABLE, f"{where} answered HTTP 503 (service"
                                  f" unavailable: starting, in maintenance{ro}, or overloaded)",
                                  "wait for ArangoDB to finish starting or maintenance (--wait"
                                  " retries), or look at its load and log")
            raise CheckFailed(Reason.UNAVAILABLE, f"{where} answered HTTP 503, not from"
                              " ArangoDB: the proxy in front of it has no healthy upstream?",
                              self.hint("url"))
        if resp.status_code >= 500:
            raise self.probe.server_error(resp, where)
        body = self.probe.json(resp, where)
        if not isinstance(body, dict):
            raise CheckFailed(Reason.UNEXPECTED, f"{where} answered HTTP {resp.status_code}"
                              " with JSON that is not ArangoDB's", self.hint("url"))
        return resp.status_code, body

    def _unexpected(self, status: int, body: dict, what: str) -> CheckFailed:
        err = body.get("errorNum")
        if status in (401, 403) and err == ERR_FORBIDDEN:  # authenticated, yet refused
            return CheckFailed(Reason.FORBIDDEN, f"user {self.user} is not allowed to read"
                               f" {what} (HTTP {status}, errorNum {err})", self._grant_hint())
        detail = f"errorNum {err}: {body.get('errorMessage')}" if err is not None else "no errorNum"
        return CheckFailed(Reason.UNEXPECTED, f"ArangoDB at {self.probe.target} answered {what}"
                           f" with HTTP {status} ({detail})", self.hint("url"))

    def _grant(self) -> str:
        """The user's effective level on the database; proves the credentials on the way."""
        status, body = self._get(*self._grant_path())
        if status == 200 and body.get("result") in ("rw", "ro", "none"):
            return body["result"]
        if status == 401 and body.get("errorNum") == ERR_FORBIDDEN:
            unset = "" if self.cfg.password is not None else " (no password is configured)"
            raise CheckFailed(Reason.AUTH, f"wrong username or password for user {self.user}"
                              f"{unset}", f"{self.hint('username', 'password')};"
                              " ARANGO_ROOT_PASSWORD is used when ARANGO_PASSWORD is unset")
        raise self._unexpected(status, body, f"grants of {self.user}")

    def _version(self) -> str:
        """'ArangoDB 3.12.4 community', asked of the database, then of _system (either may
        be closed to this user; arango.database explains why)."""
        for db in dict.fromkeys((self.db, "_system")):
            status, body = self._get(*self._version_path(db))
            if status == 200 and body.get("version"):
                return f"ArangoDB {body['version']} {body.get('license', '')}".rstrip()
        return f"server version not readable (no access to {self.db} or _system)"

    def _create(self, name: str) -> None:
        status, body = self._call("POST", f"/_db/{q(self.db)}/_api/collection",
                                  f"creating collection {name}", json={"name": name})
        err = body.get("errorNum")
        if status in (200, 201, 202) or (status == 409 and err == ERR_DUPLICATE_NAME):
            return  # a 409 means someone created it meanwhile: present all the same
        if status in (401, 403) and err == ERR_FORBIDDEN:
            raise CheckFailed(Reason.FORBIDDEN, f"collection {name} is missing and user"
                              f" {self.user} may not create it in {self.db}", self._grant_hint())
        raise self._unexpected(status, body, f"creating collection {name}")

    def _grant_hint(self) -> str:
        return (f"grant {self.user} rw on {self.db} (as an admin: PUT /_api/user/{self.user}"
                f"/database/{self.db} {{\"grant\":\"rw\"}}), or {self.hint('username')}")


def _object(content: bytes) -> dict:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


CHECK = ArangoCheck
