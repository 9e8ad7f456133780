"""Supabase emulator: Kong gateway + PostgREST + GoTrue + Storage, per protocols.md section 4.

Sources: the gateway is supabase/supabase ``docker/volumes/api/kong.yml`` with Kong's
``kong/plugins/key-auth/handler.lua`` (messages) and the ``$LUA_AUTH_EXPR`` of the Kong
entrypoint (opaque ``sb_`` key -> role JWT); PostgREST errors from ``src/PostgREST/Error.hs``;
GoTrue from ``internal/api/settings.go`` and the health handler; Storage from
``src/http/plugins/jwt.ts``, ``src/internal/errors/storage-error.ts`` and
``src/http/routes/{bucket,health}``. Only the read routes a pre-boot check touches exist:
``/rest/v1/`` (root + ``/rest/v1/<table>``), ``/auth/v1/{health,settings}``,
``/storage/v1/{health,bucket,bucket/<id>}``.

Failure classes (exact recipes in the class docstring) plus the base faults
(``emu.fault = "hang" | "html" | "http500" | "slow" | "reset" | "garbage"``).
"""
from __future__ import annotations

import json
import re
import secrets
import socket
import time
from typing import Any

import jwt  # PyJWT

from .base import Emulator, Reply, Request, iso_now, json_reply

TEN_YEARS = 10 * 365 * 24 * 3600
ROLES = ("anon", "service_role")
OPAQUE_PREFIX = {"anon": "sb_publishable_", "service_role": "sb_secret_"}
KONG_OPEN_AUTH = ("/auth/v1/verify", "/auth/v1/callback", "/auth/v1/authorize",
                  "/auth/v1/.well-known/jwks.json")  # kong.yml: auth-v1-open* routes, no key-auth
HOSTED_HINTS = {  # hosted platform wording (protocols.md; nuxt-modules/supabase #195)
    "No API key found in request": "No `apikey` request header or url param was found.",
    "Invalid API key": "Double check your Supabase `anon` or `service_role` API key.",
}
SCHEMA_REFUSAL = {"message": "Access to schema is forbidden",  # changelog 2026-02-17 (42949)
                  "hint": "Accessing the schema via the Data API is only allowed using a secret API key."}
# JWT failure kind -> (PostgREST code, message). Error.hs: decode errors PGRST301, claims PGRST303.
PGRST_JWT = {"empty": ("PGRST301", "Empty JWT is sent in Authorization header"),
             "malformed": ("PGRST301", "JWT cryptographic operation failed"),
             "alg": ("PGRST301", "Wrong or unsupported encoding algorithm"),
             "signature": ("PGRST301", "JWT cryptographic operation failed"),
             "expired": ("PGRST303", "JWT expired"), "nbf": ("PGRST303", "JWT not yet valid"),
             "iat": ("PGRST303", "JWT issued at future")}
# Storage forwards the JWT library's own message. "jsonwebtoken" = older Storage (and the wording
# protocols.md documents, e.g. "invalid signature"); "jose" = current src/internal/auth/jwt.ts.
STORAGE_JWT = {
    "jsonwebtoken": {"empty": "jwt must be provided", "parts": "jwt malformed",
                     "malformed": "jwt malformed", "alg": "invalid algorithm",
                     "signature": "invalid signature", "expired": "jwt expired",
                     "nbf": "jwt not active"},
    "jose": {"empty": "Invalid Compact JWS", "parts": "Invalid Compact JWS",
             "malformed": "Invalid Compact JWS",
             "alg": '"alg" (Algorithm) Header Parameter value not allowed',
             "signature": "signature verification failed",
             "expired": '"exp" claim timestamp check failed',
             "nbf": '"nbf" claim timestamp check failed'},
}
BEARER = re.compile(r"^Bearer\s+", re.I)


class SupabaseEmulator(Emulator):
    """Keys: ``anon_key``/``service_role_key`` (legacy HS256 JWTs) and ``publishable_key``/
    ``secret_key`` (opaque), all registered with the gateway (``self.keys``: key -> role).

    Failure classes, each produced exactly like this:

    - no key             -> send no ``apikey`` header/query, or ``emu.drop_apikey = True`` (a proxy
                            that strips it): 401 "No API key found in request" (+hint if hosted)
    - invalid key        -> a key not in ``emu.keys``: another project's key
                            ``emu.mint_jwt(role, wrong_signature=True, register=False)`` (same claims
                            and secret would mint the very same token), or ``emu.revoke(key)``:
                            401 "Invalid authentication credentials" (self-hosted Kong) /
                            "Invalid API key" + hint (``hosted=True``)
    - expired key        -> ``emu.mint_jwt(role, expired=True)``: rest 401 PGRST303 "JWT expired";
                            storage 400 {"statusCode":"403","message":"jwt expired"}
    - wrong signature    -> ``emu.mint_jwt(role, wrong_signature=True)`` or ``emu.rotate_jwt_secret()``
                            (all legacy keys go stale): rest 401 PGRST301; storage 400/"403"
                            "invalid signature"
    - swapped roles      -> ``emu.swapped_keys()`` -> {"anon": service key, "service_role": anon key}
    - sb_ key as JWT     -> ``emu.translate_sb_keys = False`` (CLI gateway of supabase-py #1228):
                            rest 401 PGRST301 "Expected 3 parts in JWT; got 1"
    - anon refusal       -> ``hosted=True`` + an anon key on ``GET /rest/v1/``: status
                            ``emu.anon_refusal_status`` (401 by default; 403 also plausible)
    - missing bucket     -> any id not in ``emu.buckets`` (or hidden from anon by RLS, see
                            ``anon_sees_buckets``): 400 {"statusCode":"404","code":"NoSuchBucket",...}
    - schema cache down  -> ``emu.schema_cache_error = True``: every /rest/v1/ call 503 PGRST002
    - service down       -> ``emu.down.add("auth" | "rest" | "storage")``: Kong 502
    - storage DB down    -> ``emu.storage_healthy = False``: /storage/v1/health {"healthy": false}
    """

    name = "supabase"

    def __init__(self, jwt_secret: str | None = None, hosted: bool = False,
                 project_ref: str = "emulatorref0000000000", buckets: dict[str, dict] | None = None,
                 tables: dict[str, list[dict]] | None = None, gotrue_version: str = "v2.177.0",
                 postgrest_version: str = "12.2.12") -> None:
        super().__init__()
        self._initial = (jwt_secret or secrets.token_urlsafe(40), hosted,
                         {"avatars": {"public": False}, "public-assets": {"public": True}}
                         if buckets is None else buckets,
                         {"todos": [{"id": 1, "task": "boot"}]} if tables is None else tables)
        self.project_ref, self.gotrue_version, self.postgrest_version = (
            project_ref, gotrue_version, postgrest_version)
        self._init_state()
        # The four project keys, minted once so they survive reset() (clients may hold them).
        self.anon_key, self.service_role_key = self.mint_jwt("anon"), self.mint_jwt("service_role")
        self.publishable_key = self.mint_opaque("anon")
        self.secret_key = self.mint_opaque("service_role")
        self._project_keys = dict(self.keys)

    def _init_state(self) -> None:
        self.jwt_secret, self.hosted, buckets, tables = self._initial
        self.anon_refusal_status = 401
        self.translate_sb_keys = True  # Kong $LUA_AUTH_EXPR turns sb_ keys into role JWTs
        self.drop_apikey = False
        self.schema_cache_error = False
        self.down: set[str] = set()
        self.storage_healthy = True
        self.anon_sees_buckets = False  # storage.buckets RLS with no policies: anon sees nothing
        self.storage_jwt_lib = "jsonwebtoken"
        self.keys: dict[str, str] = dict(getattr(self, "_project_keys", {}))  # key -> role
        self.tables = {name: list(rows) for name, rows in tables.items()}
        self.buckets: dict[str, dict[str, Any]] = {}
        for bucket_id, spec in buckets.items():
            self.add_bucket(bucket_id, **spec)

    def reset(self) -> None:
        super().reset()
        self._init_state()

    def start(self) -> "SupabaseEmulator":
        """Base start() + TCP_NODELAY on accepted sockets: the base handler sends headers and body
        in two writes, which Nagle + the client's delayed ACK turn into ~40 ms per request."""
        super().start()
        accept = self._server.get_request

        def get_request() -> tuple[socket.socket, Any]:
            sock, addr = accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, addr

        self._server.get_request = get_request  # type: ignore[method-assign]
        return self

    # -- keys ---------------------------------------------------------------------------------
    def mint_jwt(self, role: str, *, expired: bool = False, wrong_signature: bool = False,
                 register: bool = True, **claims: Any) -> str:
        """Legacy HS256 API key; claims as the hosted platform / self-host generator issue them."""
        now = int(time.time())
        payload: dict[str, Any] = {"iss": "supabase", "role": role, "iat": now - 60,
                                   "exp": now - 3600 if expired else now + TEN_YEARS}
        if self.hosted:
            payload["ref"] = self.project_ref
        payload.update(claims)
        secret = secrets.token_urlsafe(40) if wrong_signature else self.jwt_secret
        token = jwt.encode(payload, secret, algorithm="HS256")
        if register:  # a Kong keyauth_credential of consumer `role` (kong.yml consumers)
            self.keys[token] = role
        return token

    def mint_opaque(self, role: str, *, register: bool = True) -> str:
        """``sb_publishable_...`` (anon) or ``sb_secret_...`` (service_role)."""
        key = f"{OPAQUE_PREFIX[role]}{secrets.token_urlsafe(16)[:22]}_{secrets.token_hex(4)[:7]}"
        if register:
            self.keys[key] = role
        return key

    def revoke(self, key: str) -> None:
        self.keys.pop(key, None)

    def rotate_jwt_secret(self) -> str:
        """New JWT secret; keys already registered stay at the gateway but fail signature checks."""
        self.jwt_secret = secrets.token_urlsafe(40)
        return self.jwt_secret

    def swapped_keys(self, opaque: bool = False) -> dict[str, str]:
        if opaque:
            return {"anon": self.secret_key, "service_role": self.publishable_key}
        return {"anon": self.service_role_key, "service_role": self.anon_key}

    def add_bucket(self, bucket_id: str, public: bool = False, **extra: Any) -> dict[str, Any]:
        stamp = iso_now()  # fractional seconds, like storage.buckets timestamps
        self.buckets[bucket_id] = {"id": bucket_id, "name": bucket_id, "owner": "", "public": public,
                                   "type": "STANDARD", "file_size_limit": None,
                                   "allowed_mime_types": None, "created_at": stamp,
                                   "updated_at": stamp, **extra}
        return self.buckets[bucket_id]

    def _internal_jwt(self, role: str) -> str:
        return jwt.encode({"iss": "supabase", "role": role, "iat": int(time.time()),
                           "exp": int(time.time()) + 3600}, self.jwt_secret, algorithm="HS256")

    def _verify(self, token: str) -> tuple[dict | None, str | None]:
        """-> (claims, failure kind or None); claims is None when the token itself is bad."""
        if not token:
            return None, "empty"
        if token.count(".") != 2:
            return None, f"parts:{token.count('.') + 1}"
        try:
            if jwt.get_unverified_header(token).get("alg") != "HS256":
                return None, "alg"
            claims = jwt.decode(token, self.jwt_secret, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_nbf": False,
                                         "verify_iat": False, "verify_aud": False})
        except jwt.InvalidSignatureError:
            return None, "signature"
        except jwt.PyJWTError:
            return None, "malformed"
        now = time.time()
        for claim, kind, bad in (("exp", "expired", lambda v: v <= now - 30),  # 30 s skew
                                 ("nbf", "nbf", lambda v: v > now + 30),
                                 ("iat", "iat", lambda v: v > now + 30)):
            if isinstance(claims.get(claim), (int, float)) and bad(claims[claim]):
                return claims, kind  # signature fine, a time claim is not
        return claims, None

    # -- gateway ------------------------------------------------------------------------------
    def _kong_error(self, status: int, message: str, **headers: str) -> Reply:
        body = {"message": message}
        if self.hosted and message in HOSTED_HINTS:
            body["hint"] = HOSTED_HINTS[message]
        return json_reply(status, body, **headers)

    def route(self, req: Request) -> Reply:
        service = next((s for s in ("rest", "auth", "storage") if req.path.startswith(f"/{s}/v1/")),
                       None)
        if service is None:  # CLI gateway has no catch-all route
            return self._kong_error(404, "no Route matched with those values")
        apikey = None if self.drop_apikey else (
            req.header("apikey") or (req.query.get("apikey") or [None])[0])
        role = self.keys.get(apikey or "")
        # key-auth guards /rest/v1/ and /auth/v1/ (minus the open auth routes); not /storage/v1/.
        if service != "storage" and not req.path.startswith(KONG_OPEN_AUTH):
            if not apikey:
                return self._kong_error(401, "No API key found in request",
                                        **{"WWW-Authenticate": 'Key realm="kong"'})
            if role is None:
                return self._kong_error(401, "Invalid API key" if self.hosted
                                        else "Invalid authentication credentials")
        if service in self.down:  # upstream refused/died: Kong's 502
            return self._kong_error(502, "An invalid response was received from the upstream server")
        # $LUA_AUTH_EXPR: keep a non-sb_ Authorization, else translate a known opaque apikey to
        # its role JWT, else forward the apikey itself. Without the transformer (CLI gateway of
        # supabase-py #1228) Authorization passes untouched.
        authorization = req.header("authorization")
        if self.translate_sb_keys and (authorization is None
                                       or authorization.startswith("Bearer sb_")):
            if apikey and apikey.startswith("sb_") and role:
                authorization = "Bearer " + self._internal_jwt(role)
            else:
                authorization = apikey
        sub = req.path[len(f"/{service}/v1"):]
        return getattr(self, f"_{service}")(req, sub, authorization, role)

    # -- PostgREST ----------------------------------------------------------------------------
    def _pgrst_error(self, status: int, code: str, message: str, hint: str | None = None,
                     **headers: str) -> Reply:
        return json_reply(status, {"code": code, "details": None, "hint": hint, "message": message},
                          **{"Proxy-Status": f"PostgREST; error={code}", **headers})

    def _rest(self, req: Request, sub: str, authorization: str | None, key_role: str | None) -> Reply:
        if sub == "/" and self.hosted and key_role == "anon":  # hosted gateway; anon keys only
            return json_reply(self.anon_refusal_status, SCHEMA_REFUSAL)
        if self.schema_cache_error:
            return self._pgrst_error(503, "PGRST002", "Could not query the database for the "
                                     "schema cache. Retrying.")
        if authorization is not None:
            claims, kind = self._verify(BEARER.sub("", authorization))
            if kind:
                code, message = (("PGRST301", f"Expected 3 parts in JWT; got {kind[6:]}")
                                 if kind.startswith("parts:") else PGRST_JWT[kind])
                return self._pgrst_error(401, code, message, **{"WWW-Authenticate": (
                    f'Bearer error="invalid_token", error_description="{message}"')})
        if sub == "/":
            return Reply(200, self._openapi(req).encode(), "application/openapi+json; charset=utf-8")
        table = sub.strip("/")
        if table not in self.tables:
            return self._pgrst_error(404, "PGRST205", f"Could not find the table 'public.{table}' "
                                     "in the schema cache")
        rows = self.tables[table]
        return json_reply(200, rows, **{"Content-Range": f"0-{len(rows) - 1}/*" if rows else "*/*"})

    def _openapi(self, req: Request) -> str:
        media = ["application/json", "application/vnd.pgrst.object+json;nulls=stripped",
                 "application/vnd.pgrst.object+json", "text/csv"]
        paths: dict[str, Any] = {"/": {"get": {"produces": ["application/openapi+json",
                                                            "application/json"],
                                               "responses": {"200": {"description": "OK"}},
                                               "summary": "OpenAPI description (this document)",
                                               "tags": ["Introspection"]}}}
        for name in self.tables:
            paths[f"/{name}"] = {"get": {"tags": [name], "responses": {"200": {"description": "OK"}}}}
        return json.dumps({
            "swagger": "2.0", "info": {"description": "", "title": "standard public schema",
                                       "version": self.postgrest_version},
            "host": req.header("host", "127.0.0.1"), "basePath": "/", "schemes": ["http"],
            "consumes": media, "produces": media, "paths": paths,
            "definitions": {n: {"type": "object", "properties": {}} for n in self.tables},
            "externalDocs": {"description": "PostgREST Documentation",
                             "url": "https://postgrest.org/en/v12/references/api.html"}})

    # -- GoTrue -------------------------------------------------------------------------------
    def _auth(self, req: Request, sub: str, authorization: str | None, key_role: str | None) -> Reply:
        version = {"X-Supabase-Api-Version": "2024-01-01"}
        if sub == "/health":
            return json_reply(200, {"version": self.gotrue_version, "name": "GoTrue", "description":
                                    "GoTrue is a user registration and authentication API"}, **version)
        if sub == "/settings":
            providers = ("anonymous_users apple azure bitbucket discord facebook figma fly github "
                         "gitlab google keycloak kakao linkedin linkedin_oidc notion spotify slack "
                         "slack_oidc workos twitch twitter email phone zoom").split()
            return json_reply(200, {"external": {p: p == "email" for p in providers},
                                    "disable_signup": False, "mailer_autoconfirm": False,
                                    "phone_autoconfirm": False, "sms_provider": "twilio",
                                    "saml_enabled": False}, **version)
        if sub == "/.well-known/jwks.json":
            return json_reply(200, {"keys": []}, **version)
        return json_reply(404, {"code": "not_found", "msg": "Not Found"}, **version)

    # -- Storage ------------------------------------------------------------------------------
    def _storage_error(self, status: int, code: str, error: str, message: str) -> Reply:
        # storage-error.ts render(); error-handler.ts: HTTP status is 400 unless 500.
        return json_reply(500 if status == 500 else 400, {"statusCode": str(status), "code": code,
                                                          "error": error, "message": message})

    def _storage(self, req: Request, sub: str, authorization: str | None,
                 key_role: str | None) -> Reply:
        path = sub.rstrip("/")
        if path not in ("/health", "/bucket") and not path.startswith("/bucket/"):
            return json_reply(404, {"message": f"Route {req.method}:{sub} not found",
                                    "error": "Not Found", "statusCode": 404})  # fastify default
        claims, kind = self._verify(BEARER.sub("", authorization or ""))  # plugins/jwt.ts
        if kind and kind != "iat":  # neither JWT library rejects a future iat
            messages = STORAGE_JWT[self.storage_jwt_lib]
            return self._storage_error(403, "AccessDenied", "Unauthorized",
                                       messages["parts" if kind.startswith("parts:") else kind])
        role = (claims or {}).get("role", "anon")
        if path == "/health":
            return json_reply(200, {"healthy": self.storage_healthy})
        visible = [b for b in self.buckets.values()
                   if role == "service_role" or self.anon_sees_buckets]
        if path == "/bucket":
            return json_reply(200, visible)
        found = next((b for b in visible if b["id"] == path[len("/bucket/"):]), None)
        if found is None:
            return self._storage_error(404, "NoSuchBucket", "Bucket not found", "Bucket not found")
        return json_reply(200, found)
