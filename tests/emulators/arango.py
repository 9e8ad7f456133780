"""ArangoDB 3.12 HTTP emulator (single server, authentication on).

Answers as /work/shared/reference/protocols.md section 1 documents, with the request pipeline of
arangod's ``CommTask::prepareExecution``: maintenance check (step 2) -> database lookup (step 3,
401 errno 11 to callers without access, 404 errno 1228 otherwise) -> ``canAccessPath`` (step 4,
401 errno 11) -> handler. Every 401 carries two ``Www-Authenticate`` headers unless the request
sends ``X-Omit-Www-Authenticate`` (``HttpCommTask::sendResponse``).

Failure switches (all plain attributes, reset by ``reset()``):
  wrong credentials   use a wrong password, or change ``emu.users[name]``
  missing database    any name not in ``emu.databases`` (superuser -> 404/1228, others -> 401/11)
  permission          ``emu.grants[(user, db)] = "ro" | "none"``
  missing collection  ``emu.databases[db].discard(name)``
  read-only server    ``emu.read_only = True`` (availability 200 mode "readonly", as the source does);
                      add ``emu.readonly_availability_503 = True`` for the documented 503 variant
  unavailable         ``emu.unavailable = True`` (availability 503) / ``emu.maintenance = True``
                      (every path but version answers 503, as during startup/maintenance)
  transport faults    ``emu.fault = "hang" | "html" | "http500" | "slow" | "reset" | "garbage"``
"""
from __future__ import annotations

import base64
import copy
import secrets
import time
import zlib
from itertools import count
from urllib.parse import unquote

import jwt

from .base import Emulator, Reply, Request, json_reply

LEVELS = ("none", "ro", "rw")
TRUE = ("true", "1", "yes", "on")


def error(status: int, errnum: int, message: str) -> Reply:
    # arangod RestBaseHandler::generateError / CommTask::sendErrorResponse
    return json_reply(status, {"error": True, "errorNum": errnum, "errorMessage": message, "code": status})


def ok(body: dict, status: int = 200) -> Reply:
    # generateOk merges error:false and code into the payload
    return json_reply(status, {"error": False, "code": status, **body})


def _id(name: str) -> str:
    return str(zlib.crc32(name.encode()) % 10**6)  # stable numeric id, as a string like arangod's


NOT_AUTHORIZED = (401, 11, "not authorized to execute this request")


class ArangoEmulator(Emulator):
    name = "ArangoDB"

    def __init__(self, users: dict[str, str] | None = None, superusers: set[str] | None = None,
                 databases: dict[str, set[str]] | None = None,
                 grants: dict[tuple[str, str], str] | None = None,
                 version: str = "3.12.4", license: str = "community") -> None:
        super().__init__()
        self._initial = (
            users if users is not None else {"root": "rootpw", "app": "apppw"},
            superusers if superusers is not None else {"root"},
            databases if databases is not None else {
                "_system": {"_graphs", "_users", "_analyzers"},
                "platform": {"_graphs", "_analyzers", "state_data"}},
            grants if grants is not None else {("app", "platform"): "rw"},
        )
        self.version, self.license = version, license
        self.jwt_secret = secrets.token_hex(16)  # HS256 secret, like --server.jwt-secret-keyfile
        self._ids = count(10001)
        self.reset()

    def reset(self) -> None:
        super().reset()
        users, supers, dbs, grants = copy.deepcopy(self._initial)
        self.users: dict[str, str] = users
        self.superusers: set[str] = supers  # get rw on every database, existing or not ("*": rw)
        self.databases: dict[str, set[str]] = dbs
        self.grants: dict[tuple[str, str], str] = grants  # (user, db or "*") -> level
        self.read_only = False
        self.readonly_availability_503 = False
        self.unavailable = False
        self.maintenance = False

    # -- tokens -------------------------------------------------------------------------------
    def user_jwt(self, user: str, ttl: float = 3600) -> str:
        now = int(time.time())  # python-arango requires iat and exp, and checks iss
        return jwt.encode({"preferred_username": user, "iss": "arangodb", "iat": now,
                           "exp": now + int(ttl)}, self.jwt_secret, algorithm="HS256")

    def superuser_jwt(self) -> str:
        """A token minted from the JWT secret: no user, ``server_id`` claim (docs 'superuser tokens')."""
        now = int(time.time())
        return jwt.encode({"iss": "arangodb", "server_id": "platctl-tests", "iat": now,
                           "exp": now + 3600}, self.jwt_secret, algorithm="HS256")

    # -- auth model ---------------------------------------------------------------------------
    def _authenticate(self, req: Request) -> tuple[bool, str]:
        """(authenticated, user); a superuser JWT authenticates with an empty user name."""
        value = req.header("authorization") or ""
        scheme, _, cred = value.partition(" ")
        cred = cred.strip()
        if scheme.lower() == "basic":  # scheme is case-insensitive (CommTask::checkAuthHeader)
            try:
                user, _, password = base64.b64decode(cred).decode().partition(":")
            except ValueError:
                return False, ""
            return (user in self.users and self.users[user] == password), user
        if scheme.lower() == "bearer":
            try:
                claims = jwt.decode(cred, self.jwt_secret, algorithms=["HS256"], issuer="arangodb")
            except jwt.PyJWTError:
                return False, ""
            user = claims.get("preferred_username", "")
            return (user == "" or user in self.users), user
        return False, ""

    def level(self, user: str, db: str, configured: bool = False) -> str:
        """Effective level; read-only mode caps rw to ro unless ``configured`` (UserManager)."""
        if user in self.superusers:
            lvl = "rw"
        else:
            lvl = self.grants.get((user, db)) or self.grants.get((user, "*")) or "none"
        return "ro" if (lvl == "rw" and self.read_only and not configured) else lvl

    # -- request pipeline ---------------------------------------------------------------------
    def route(self, req: Request) -> Reply:
        reply = self._pipeline(req)
        if reply.status == 401 and not req.header("x-omit-www-authenticate"):
            # Two header lines; the dict keys differ only in case so both are sent.
            reply.headers["Www-Authenticate"] = 'Basic, realm="ArangoDB"'
            reply.headers["WWW-Authenticate"] = 'Bearer, token_type="JWT", realm="ArangoDB"'
        return reply

    def _pipeline(self, req: Request) -> Reply:
        db, path = "_system", req.path
        if path.startswith("/_db/"):
            db, _, rest = path[5:].partition("/")
            db, path = unquote(db), "/" + rest
        authed, user = self._authenticate(req)
        internal = authed and user == ""  # superuser JWT: ExecContext::Type::Internal
        if self.maintenance and path not in ("/_api/version", "/_admin/version", "/_admin/status"):
            return error(503, 503, "service unavailable due to startup or maintenance mode")
        if db not in self.databases:  # step 3; "prevent guessing database names (issue #5030)"
            if internal or (authed and self.level(user, db) != "none"):
                return error(404, 1228, "database not found")
            return error(*NOT_AUTHORIZED)
        if not self._can_access(req, path, authed, user, db, internal):  # step 4
            return error(*NOT_AUTHORIZED)
        return self._dispatch(req, path, db, user, internal)

    def _can_access(self, req: Request, path: str, authed: bool, user: str, db: str,
                    internal: bool) -> bool:
        if authed and (internal or self.level(user, db) != "none"):
            return True
        if path in ("/", "/_admin/server/availability") or path.startswith("/_open/"):
            return True  # always callable without credentials
        if req.method == "POST" and user and path.startswith(f"/_api/user/{user}/"):
            return True
        return authed and path.startswith("/_api/user/")  # own grants readable even with "none"

    def _dispatch(self, req: Request, path: str, db: str, user: str, internal: bool) -> Reply:
        m, parts = req.method, [unquote(p) for p in path.strip("/").split("/")]
        writable = internal or self.level(user, db) == "rw"
        if m == "GET" and path == "/_admin/server/availability":
            if self.unavailable or (self.read_only and self.readonly_availability_503):
                return error(503, 503, "service unavailable")
            return ok({"mode": "readonly" if self.read_only else "default"})
        if m == "GET" and path in ("/_api/version", "/_admin/version"):
            body = {"server": "arango", "version": self.version, "license": self.license}
            admin = internal or self.level(user, "_system", configured=True) == "rw"
            if req.query.get("details", [""])[0].lower() in TRUE and admin:
                body["details"] = {"mode": "server", "role": "SINGLE", "server-version": self.version}
            return json_reply(200, body)  # generateResult: no error/code attributes here
        if m == "POST" and path == "/_open/auth":
            try:
                creds = req.json()
                name, password = creds.get("username"), creds["password"]
            except (ValueError, KeyError, TypeError, AttributeError):
                return error(400, 400, "invalid JSON")
            if name not in self.users or self.users[name] != password:
                return error(401, 401, "Wrong credentials")  # RestAuthHandler
            return json_reply(200, {"jwt": self.user_jwt(name)})
        if m == "GET" and path == "/_api/database/current":
            return ok({"result": {"id": _id(db), "name": db, "isSystem": db == "_system",
                                  "path": "none", "sharding": "", "replicationFactor": 1,
                                  "writeConcern": 1}})
        if parts[:2] == ["_api", "collection"]:
            return self._collection(req, parts[2:], db, writable)
        if m == "POST" and parts[:2] == ["_api", "document"] and len(parts) == 3:
            if parts[2] not in self.databases[db]:
                return error(404, 1203, "collection or view not found")
            if not writable:  # TransactionState::checkCollectionPermission: ro + write -> 1004
                return error(403, 1004, "collection is read-only")
            key = str(next(self._ids))
            return json_reply(202, {"_id": f"{parts[2]}/{key}", "_key": key, "_rev": "_h" + key})
        if m == "GET" and parts[:2] == ["_api", "user"] and len(parts) in (5, 6) \
                and parts[3] == "database":  # /_api/user/{user}/database/{db}[/{collection}]
            return self._permission(req, parts, user, internal)
        return error(404, 404, f"unknown path '{req.path}'")  # JS actions resultNotFound

    def _describe(self, name: str) -> dict:
        cid = _id(name)
        return {"id": cid, "name": name, "status": 3, "type": 2, "isSystem": name.startswith("_"),
                "globallyUniqueId": f"h{cid}/{cid}"}

    def _collection(self, req: Request, rest: list[str], db: str, writable: bool) -> Reply:
        cols = self.databases[db]
        if req.method == "GET" and not rest:  # python-arango scans body["result"]
            return ok({"result": [self._describe(c) for c in sorted(cols)]})
        if req.method == "GET" and len(rest) in (1, 2):
            if rest[0] not in cols:
                return error(404, 1203, "collection or view not found")
            extra = {"waitForSync": False, "writeConcern": 1} if rest[1:] == ["properties"] else {}
            return ok({**self._describe(rest[0]), **extra})
        if req.method == "POST" and not rest:
            if not writable:  # methods::Collections::create needs db RW -> TRI_ERROR_FORBIDDEN
                return error(403, 11, f"cannot create collection in {db}: forbidden")
            try:
                name = req.json()["name"]
            except (ValueError, KeyError, TypeError):
                return error(400, 1208, "illegal name")
            if name in cols:
                return error(409, 1207, "duplicate name")
            cols.add(name)
            return ok({**self._describe(name), "waitForSync": False})
        return error(405, 405, "method not supported")

    def _permission(self, req: Request, parts: list[str], user: str, internal: bool) -> Reply:
        target, tdb = parts[2], parts[4]
        # RestUsersHandler::canAccessUser: yourself, or an admin (configured rw on _system)
        if not (internal or target == user or self.level(user, "_system", configured=True) == "rw"):
            return error(403, 403, "forbidden")
        configured = req.query.get("configured", [""])[0].lower() in TRUE
        # no collection-level grants are modelled: a collection inherits its database's level
        lvl = self.level(target, tdb, configured) if target in self.users else "none"
        return ok({"result": lvl})
