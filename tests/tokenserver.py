"""The Google side of a service-account login, for the GCS credential-flow tests.

`TokenServer` is an OAuth token endpoint (the key JSON's `token_uri` points here) that does
what oauth2.googleapis.com does with a JWT-bearer grant: it verifies the RS256 signature of
the assertion with the public key registered for the issuer, checks audience, scope and the
iat/exp window against its own clock, and issues an access token. Its refusals use Google's
words: a key that does not match ("Invalid JWT Signature."), a revoked key ("Token has been
expired or revoked."), a clock outside the tolerance ("Invalid JWT: Token must be a short-lived
token (60 minutes) and in a reasonable timeframe...").

`GcsFront` is the JSON API in front of the real gcp-storage-emulator: HTTPS (a TLS terminator),
and it lets a request through only with a bearer token the TokenServer issued (401 authError
"Invalid Credentials" otherwise, as GCS words it), so a passing check proves the issued token
was used. The emulator itself authenticates nothing.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt

from tests.emulators.base import Emulator, Reply, Request, json_reply

GOOGLE_AUD = "https://oauth2.googleapis.com/token"  # google-auth's fixed audience
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
STORAGE_SCOPES = ("https://www.googleapis.com/auth/devstorage.",
                  "https://www.googleapis.com/auth/cloud-platform")
LEEWAY = 300  # seconds of clock difference the endpoint tolerates
BAD_SIGNATURE = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
REVOKED = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
CLOCK = {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived"
         " token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in"
         " the JWT claim."}


def rsa_key() -> tuple[str, str]:
    """(private PKCS8 PEM, public PEM) of a new RSA key, as a service-account key is made."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def service_account_json(email: str, private_pem: str, token_uri: str,
                         project: str = "acme-prod") -> str:
    return json.dumps({
        "type": "service_account", "project_id": project,
        "private_key_id": secrets.token_hex(20), "private_key": private_pem,
        "client_email": email, "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri})


class TokenServer(Emulator):
    """Switches: ``accounts[email] = public PEM`` (register a key), ``revoked.add(email)``,
    ``clock_offset`` (seconds this server's clock is ahead of the real one)."""

    name = "oauth2"

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        super().__init__(tls)
        self.accounts: dict[str, str] = {}
        self.revoked: set[str] = set()
        self.clock_offset = 0.0
        self.issued: dict[str, str] = {}  # access token -> email
        self.claims: list[dict[str, Any]] = []  # every verified assertion's claims
        self.forced: Reply | None = None  # answer every token request with this instead

    def now(self) -> float:
        return time.time() + self.clock_offset

    def start(self) -> "TokenServer":
        super().start()
        server = self  # the Date header follows this server's (possibly wrong) clock

        def date_time_string(handler: Any, timestamp: float | None = None) -> str:
            return email.utils.formatdate(server.now(), usegmt=True)

        self._server.RequestHandlerClass.date_time_string = date_time_string  # type: ignore
        return self

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def route(self, req: Request) -> Reply:
        if (req.method, req.path) != ("POST", "/token"):
            return json_reply(404, {"error": "not_found"})
        if self.forced is not None:
            return self.forced
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("grant_type") != GRANT or "assertion" not in form:
            return json_reply(400, {"error": "unsupported_grant_type",
                                    "error_description": "Invalid grant_type: "})
        assertion = form["assertion"]
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
        except (jwt.PyJWTError, KeyError):
            return json_reply(400, {"error": "invalid_grant",
                                    "error_description": "Invalid JWT: malformed"})
        public = self.accounts.get(issuer)
        if public is None:
            return json_reply(400, {"error": "invalid_grant",
                                    "error_description": "Invalid grant: account not found"})
        try:  # dates are checked below, against this server's clock
            claims = jwt.decode(assertion, public, algorithms=["RS256"], audience=GOOGLE_AUD,
                                options={"verify_exp": False, "verify_iat": False,
                                         "verify_nbf": False})
        except jwt.InvalidSignatureError:
            return json_reply(400, BAD_SIGNATURE)
        except jwt.InvalidAudienceError:
            return json_reply(400, {"error": "invalid_grant", "error_description":
                                    "Invalid JWT: Failed audience check."})
        if issuer in self.revoked:
            return json_reply(400, REVOKED)
        iat, exp, now = claims.get("iat", 0), claims.get("exp", 0), self.now()
        if exp - iat > 3600 or iat > now + LEEWAY or exp < now - LEEWAY:
            return json_reply(400, CLOCK)
        if not any(s.startswith(STORAGE_SCOPES) for s in str(claims.get("scope", "")).split()):
            return json_reply(400, {"error": "invalid_scope", "error_description":
                                    "Invalid OAuth scope or ID token audience provided."})
        self.claims.append(claims)
        token = "ya29." + secrets.token_urlsafe(48)
        self.issued[token] = issuer
        return json_reply(200, {"access_token": token, "expires_in": 3599,
                                "token_type": "Bearer"})


class GcsFront(Emulator):
    """HTTPS in front of the gcp-storage-emulator at `upstream` (host, port), admitting only
    bearer tokens `tokens` issued. ``authorized`` counts the requests it relayed."""

    name = "gcs-front"

    def __init__(self, upstream: tuple[str, int], tokens: TokenServer,
                 tls: tuple[str | Path, str | Path] | None = None) -> None:
        super().__init__(tls)  # type: ignore[arg-type]
        self.upstream, self.tokens = upstream, tokens
        self.authorized = 0

    def route(self, req: Request) -> Reply:
        scheme, _, token = (req.header("authorization") or "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens.issued:
            message = "Invalid Credentials"
            return json_reply(401, {"error": {"code": 401, "message": message, "errors": [
                {"domain": "global", "reason": "authError", "message": message,
                 "locationType": "header", "location": "Authorization"}]}},
                **{"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})
        self.authorized += 1
        path = req.path + ("?" + urlencode(req.query, doseq=True) if req.query else "")
        headers = {k: v for k, v in req.headers.items()
                   if k not in ("host", "authorization", "connection")}
        conn = http.client.HTTPConnection(*self.upstream, timeout=10)
        try:
            conn.request(req.method, path, body=req.body or None, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, resp.read(), resp.getheader("content-type"))
        finally:
            conn.close()
