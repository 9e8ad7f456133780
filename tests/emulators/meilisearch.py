"""Meilisearch v1.x HTTP emulator (default port 7700), per protocols.md section 3.

Answers follow the server source: auth in ``crates/meilisearch/src/extractors/authentication/
{mod,error}.rs``, error codes/statuses in ``crates/meilisearch-types/src/error.rs``, keys in
``crates/meilisearch-auth/src/store.rs``. Only the read routes a pre-boot check touches exist:
``/health``, ``/version``, ``/indexes``, ``/indexes/{uid}``, ``/keys``, ``/keys/{key_or_uid}``,
and ``POST /multi-search`` (how a check tells a search-only key from an invalid one).
Failure switches: class docstring; base faults: ``emu.fault`` (see base.py).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import uuid
from typing import Any
from urllib.parse import unquote

from .base import Emulator, Reply, Request

LINK = "https://docs.meilisearch.com/errors#"
# code -> (HTTP status, error type, fixed message or None when the message is built per call).
ERRORS: dict[str, tuple[int, str, str | None]] = {
    "missing_authorization_header": (401, "auth", "The Authorization header is missing. It must "
                                     "use the bearer authorization method."),
    "missing_master_key": (401, "auth", "Meilisearch is running without a master key. To access "
                           "this API endpoint, you must have set a master key at launch."),
    "invalid_api_key": (403, "auth", "The provided API key is invalid."),
    "index_not_found": (404, "invalid_request", None),
    "api_key_not_found": (404, "invalid_request", None),
    # The only 503 code Meilisearch has (error.rs: TooManySearchRequests, System,
    # SERVICE_UNAVAILABLE); the number is the search-queue capacity, 1000 by default.
    "too_many_search_requests": (503, "system", "Too many search requests running at the same "
                                 "time: 1000. Retry after 10s."),
}


def compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()  # serde_json writes no spaces


def rfc3339_ns() -> str:
    """How the `time` crate prints OffsetDateTime: nanoseconds, trailing zeros trimmed."""
    ns = time.time_ns()
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0") or "1"  # keep it fractional, always
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{frac}Z"


class MeilisearchEmulator(Emulator):
    """Failure classes, each produced exactly like this:

    - missing header     -> send no ``Authorization`` or a non-``Bearer`` scheme (401)
    - wrong key          -> ``Bearer <anything not a key>``, ``Bearer`` alone, or
                            ``meilisearch.Client(url, None)`` which sends ``Bearer None`` (403)
    - key lacks action   -> ``emu.search_key`` on ``/version``, ``/keys`` or ``/indexes/x`` (403);
                            it may still ``POST /multi-search`` (200)
    - key not on index   -> ``emu.add_key(actions=["*"], indexes=["movies"])`` then
                            ``GET /indexes/books`` (403, "cannot acces the index")
    - missing index      -> any uid not in ``emu.indexes`` (404 index_not_found)
    - no master key      -> ``MeilisearchEmulator(master_key=None)``: /keys* 401, rest open
    - unavailable        -> ``emu.unavailable = True``: every route 503 + ``Retry-After: 10``
    """

    name = "meilisearch"

    def __init__(self, master_key: str | None = "masterKey-0123456789abcdef",
                 indexes: dict[str, str | None] | None = None, version: str = "1.12.0") -> None:
        super().__init__()
        self.master_key = master_key
        self.version = version
        self.indexes: dict[str, str | None] = {"movies": "id"} if indexes is None else indexes
        self._index_times: dict[str, str] = {}
        self.unavailable = False
        # key string -> {"uid","name","description","actions","indexes","expiresAt",...}
        self.api_keys: dict[str, dict[str, Any]] = {}
        self.admin_key: str | None = None
        self.search_key: str | None = None
        if master_key is not None:  # default keys exist only on an instance with a master key
            self.admin_key = self.add_key(
                "Default Admin API Key", ["*"], description="Use it for anything that is not a "
                "search operation. Caution! Do not expose it on a public frontend")
            self.search_key = self.add_key("Default Search API Key", ["search"],
                                           description="Use it to search from the frontend")

    def add_key(self, name: str | None = None, actions: list[str] | None = None,
                indexes: list[str] | None = None, description: str | None = None,
                expires_at: str | None = None) -> str:
        """Create an API key; its value is HMAC-SHA256(master key, uid) in hex, as in store.rs."""
        uid = str(uuid.uuid4())
        secret = (self.master_key or "").encode()
        key = hmac.new(secret, uid.encode(), hashlib.sha256).hexdigest()
        now = rfc3339_ns()
        self.api_keys[key] = {"name": name, "description": description, "uid": uid,
                              "actions": actions or ["*"], "indexes": indexes or ["*"],
                              "expiresAt": expires_at, "createdAt": now, "updatedAt": now}
        return key

    def reset(self) -> None:
        super().reset()
        self.unavailable = False

    def start(self) -> "MeilisearchEmulator":
        super().start()
        # After a client gives up (hang/slow faults) the late write fails with BrokenPipe, and
        # socketserver prints that traceback from the server thread, outside pytest's capture;
        # on 3.11 its caret rendering can race the main thread's ast.parse ("AST constructor
        # recursion depth mismatch"). Drop only those disconnects; real bugs still print.
        server = self._server
        loud = server.handle_error  # type: ignore[union-attr]

        def quiet(request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                loud(request, client_address)

        server.handle_error = quiet  # type: ignore[method-assign,union-attr]
        return self

    # -- answers --------------------------------------------------------------------------------
    @staticmethod
    def error(code: str, message: str | None = None) -> Reply:
        status, etype, default = ERRORS[code]
        body = {"message": message or default, "code": code, "type": etype, "link": LINK + code}
        # ResponseError::error_response adds Retry-After: 10 to every 503 (error.rs).
        headers = {"Retry-After": "10"} if status == 503 else {}
        return Reply(status, compact(body), "application/json", headers)

    @staticmethod
    def ok(obj: Any) -> Reply:
        return Reply(200, compact(obj), "application/json")

    def authorize(self, req: Request, action: str, index: str | None = None) -> Reply | None:
        """None when allowed, else the error Reply; mirrors GuardedData::from_request."""
        header = req.header("authorization")
        keys_route = action.startswith("keys.")
        if header is None:  # auth_token(): empty token
            if self.master_key is None:
                return self.error("missing_master_key") if keys_route else None
            return self.error("missing_authorization_header")
        # splitn(2, ' ') then a case-sensitive match on "Bearer"; checked before the master key,
        # so a non-Bearer scheme is refused even on an instance without one.
        scheme, sep, token = header.strip(" \t").partition(" ")
        if scheme != "Bearer":
            return self.error("missing_authorization_header")
        if not sep:  # "Bearer" with no token at all: AuthenticationError::InvalidToken
            return self.error("invalid_api_key")
        if self.master_key is None:  # every route but /keys* is open; keys need a master key
            return self.error("missing_master_key") if keys_route else None
        if hmac.compare_digest(token.encode(), self.master_key.encode()):
            return None
        key = self.api_keys.get(token)
        if key is None:  # unknown key, empty token, "None" from the Python client
            return self.error("invalid_api_key")
        # The index restriction is checked before the action, with a public message (typo kept).
        if index is not None and not self._index_allowed(key, index):
            allowed = ", ".join(json.dumps(p) for p in key["indexes"])  # Rust {:?} of Vec<String>
            return self.error("invalid_api_key", f"The API key cannot acces the index `{index}`, "
                                                 f"authorized indexes are [{allowed}].")
        group = action.split(".")[0]
        granted = {"*", action, f"{group}.*"} & set(key["actions"])
        # An expired key is just an invalid one (is_key_authorized checks the expiration).
        expired = key.get("expiresAt") is not None and key["expiresAt"][:19] < rfc3339_ns()[:19]
        return None if granted and not expired else self.error("invalid_api_key")

    @staticmethod
    def _index_allowed(key: dict[str, Any], index: str) -> bool:
        # IndexUidPattern: "*" or a trailing-star prefix pattern, else an exact uid.
        return any(p == index or (p.endswith("*") and index.startswith(p[:-1]))
                   for p in key["indexes"])

    def index_view(self, uid: str) -> dict[str, Any]:
        stamp = self._index_times.setdefault(uid, rfc3339_ns())
        return {"uid": uid, "createdAt": stamp, "updatedAt": stamp,
                "primaryKey": self.indexes[uid]}

    def key_view(self, key: str) -> dict[str, Any]:
        k = self.api_keys[key]
        return {"name": k.get("name"), "description": k.get("description"), "key": key,
                "uid": k["uid"], "actions": k["actions"], "indexes": k["indexes"],
                "expiresAt": k.get("expiresAt"), "createdAt": k.get("createdAt", rfc3339_ns()),
                "updatedAt": k.get("updatedAt", k.get("createdAt", rfc3339_ns()))}

    @staticmethod
    def page(req: Request, items: list[Any]) -> dict[str, Any]:
        offset = int(req.query.get("offset", ["0"])[0] or 0)
        limit = int(req.query.get("limit", ["20"])[0] or 20)
        return {"results": items[offset:offset + limit], "offset": offset, "limit": limit,
                "total": len(items)}

    def multi_search(self, req: Request) -> Reply:
        """POST /multi-search (routes/multi_search.rs): GuardedData<ActionPolicy<SEARCH>> with
        no index in the path, then each query's index is checked; no hits are emulated."""
        denied = self.authorize(req, "search")
        if denied:
            return denied
        key = self.api_keys.get((req.header("authorization") or "").partition(" ")[2])
        results = []
        for query in (req.json() or {}).get("queries", []):
            uid = query.get("indexUid")
            if key is not None and not self._index_allowed(key, uid):
                return self.authorize(req, "search", uid) or self.error("invalid_api_key")
            if uid not in self.indexes:
                return self.error("index_not_found", f"Index `{uid}` not found.")
            results.append({"indexUid": uid, "hits": [], "query": query.get("q", ""),
                            "processingTimeMs": 0, "limit": 20, "offset": 0,
                            "estimatedTotalHits": 0})
        return self.ok({"results": results})

    def route(self, req: Request) -> Reply:
        if self.unavailable:  # switch: every route, /health included, answers the 503
            return self.error("too_many_search_requests")
        parts = [unquote(p) for p in req.path.strip("/").split("/")] if req.path != "/" else []
        if req.path == "/multi-search" and req.method == "POST":
            return self.multi_search(req)
        if req.method != "GET":  # only the read routes are emulated; actix answers 405 bare
            return Reply(405, b"", None)
        if not parts or len(parts) > 2:  # no route matched: actix's bare 404
            return Reply(404, b"", None)
        head, arg = parts[0], (parts[1] if len(parts) == 2 else None)
        if head == "health" and arg is None:  # public: no GuardedData on this route
            return self.ok({"status": "available"})
        if head == "version" and arg is None:
            return self.authorize(req, "version") or self.ok(
                {"commitSha": "0f1d7c3b6a9e2d4f8c5b1a7e3d9f2c6b4a8e1d5f",
                 "commitDate": "2024-12-23T10:04:21.000000000Z", "pkgVersion": self.version})
        if head == "indexes":
            denied = self.authorize(req, "indexes.get", arg)
            if denied:
                return denied
            if arg is None:  # the list is filtered to the key's indexes, never refused
                key = self.api_keys.get((req.header("authorization") or "").partition(" ")[2])
                uids = [u for u in sorted(self.indexes) if key is None
                        or self._index_allowed(key, u)]
                return self.ok(self.page(req, [self.index_view(u) for u in uids]))
            if arg not in self.indexes:
                return self.error("index_not_found", f"Index `{arg}` not found.")
            return self.ok(self.index_view(arg))
        if head == "keys":
            denied = self.authorize(req, "keys.get")
            if denied:
                return denied
            if arg is None:  # newest first (store.rs sorts by Reverse(created_at))
                return self.ok(self.page(req, [self.key_view(k) for k in reversed(self.api_keys)]))
            for key, k in self.api_keys.items():
                if arg in (key, k["uid"]):
                    return self.ok(self.key_view(key))
            return self.error("api_key_not_found", f"API key `{arg}` not found.")
        return Reply(404, b"", None)
