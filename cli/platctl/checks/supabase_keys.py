"""What a Supabase API key is, read locally: legacy JWT (role in its payload) or opaque sb_ key.

Hosted projects now issue `sb_secret_...` (role service_role) and `sb_publishable_...` (role
anon) keys next to, and soon instead of, the legacy JWTs (protocols.md §4). An opaque key travels
in `apikey` only: the platform's gateway mints the role JWT from it, and the same key as
`Authorization: Bearer` would reach PostgREST as a malformed JWT. The JWT payload is decoded
without verification (the project's JWT secret is not ours to have); nothing here ever returns
the key or its signature.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

OPAQUE = {"sb_secret_": "service_role", "sb_publishable_": "anon"}


@dataclass(frozen=True)
class KeyInfo:
    kind: str  # "jwt", "sb_secret_" or "sb_publishable_"
    role: str | None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def exp(self) -> float | None:
        exp = self.claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    def describe(self) -> str:
        """Role, issuer, project ref and expiry: never the key or its signature."""
        if self.kind != "jwt":
            return f"{self.kind} key (role {self.role})"
        bits = [f"role {self.role}"] + [f"{c} {str(self.claims[c])[:40]}" for c in ("iss", "ref")
                                        if isinstance(self.claims.get(c), str)]
        bits.append(f"expires {day(self.exp)}" if self.exp else "no expiry")
        return "legacy JWT, " + ", ".join(bits)

    def what(self) -> str:
        if self.kind == "sb_publishable_":
            return "a publishable key (sb_publishable_, role anon)"
        if self.kind == "sb_secret_":
            return "a secret key (sb_secret_, role service_role)"
        if self.role == "authenticated":
            return "a user's session token (role authenticated), not a project API key"
        return {"anon": "the anon key (legacy JWT, role anon)",
                "service_role": "the service_role key (legacy JWT)"}.get(
                    self.role or "", f"a JWT with role {self.role}")


def inspect_key(key: str) -> KeyInfo | None:
    """What a key claims to be, or None when it is neither a JWT nor an sb_ key."""
    for prefix, role in OPAQUE.items():
        if key.startswith(prefix) and len(key) > len(prefix):
            return KeyInfo(prefix, role)
    parts = key.split(".")
    if len(parts) != 3:
        return None
    try:
        header, payload = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
                           for p in parts[:2])
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError all are
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    role = payload.get("role")
    return KeyInfo("jwt", role if isinstance(role, str) else None, payload)


def jwt_why(message: str, opaque: bool) -> str:
    """Why PostgREST or Storage refused a key's JWT, as a message suffix ('' when unknown)."""
    low = message.lower()
    if "signature" in low or "cryptographic" in low:
        return ("; the project's JWT secret is not the one that signed the key (secret rotated,"
                " or a key of another project)")
    if "expired" in low or '"exp"' in low:
        return "; the key has expired"
    if "3 parts" in low or "must be provided" in low or "empty jwt" in low:
        if opaque:
            return ("; the gateway does not translate opaque sb_ keys into JWTs (it forwards the"
                    " key, or nothing): use the legacy JWT key with this gateway")
        return "; no JWT arrived: a proxy in front may strip the Authorization header"
    return ""


def day(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or 0, timezone.utc).strftime("%Y-%m-%d")
