"""Secret types. Redaction comes from the type: these values cannot be printed by accident.

Passwords, keys and tokens use pydantic's ``SecretStr``. URLs that may carry a password
(``redis://user:pw@host``) use ``SecretURL``: its str/repr/format show the URL with the
password replaced, and only ``get_secret_value()`` gives the real one.
"""
from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

MASK = "***"
FRAGMENT = 8  # this many characters of a secret in a row count as the secret leaking


class WholeOnly(str):
    """A composite secret that embeds public text (a service-account JSON holds the account's
    email): masked only whole. secret_parts() lists its secret pieces separately."""


def basic_auth(user: str, password: str) -> str:
    """The credentials as an HTTP Basic Authorization header carries them: a server or proxy
    that echoes the request shows them in this form."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _userinfo(url: str) -> tuple[str, str | None, str] | None:
    """(user, password, rest after '@') of a URL with credentials, else None. The userinfo ends
    at the LAST '@': a password pasted without percent-encoding may hold '/', '?', '#' or '@',
    which urlsplit would take for the path, query or fragment (and print them unmasked)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo, _, after = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not colon and any(c in user for c in "/?#"):
        return None  # no user:password; an '@' in the path or query (?email=a@b)
    return user, (password if colon else None), after


def redact_url(url: str) -> str:
    """The URL with any password (and query token) masked; never raises."""
    cred = _userinfo(url)
    if cred is not None:  # user:*** — or *** alone: a userinfo without ':' is often a token
        user, password, after = cred
        shown = f"{user}:{MASK}" if password is not None else MASK
        url = f"{url.partition('://')[0]}://{shown}@{after}"
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    query = re.sub(r"(?i)((?:token|key|password|apikey|secret)=)[^&]*", rf"\1{MASK}", parts.query)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def secret_parts(value: str) -> set[str]:
    """A secret and the pieces of it an error text may quote on their own: the decoded form of
    a percent-encoded one, each value of a 'k=v,k2=v2' header list, the signature of a JWT, and
    the key material of a service-account JSON (each PEM line, as a repr splits them). Pieces
    shorter than 8 characters are left out: masking every "acme" would garble messages."""
    whole, parts = value, {unquote(value)}
    if "=" in value and "{" not in value:  # k=v,k2=v2
        parts |= {unquote(item.partition("=")[2].strip()) for item in value.split(",")}
    if value.count(".") == 2 and value.startswith("eyJ"):
        parts.add(value.rpartition(".")[2])
    if value.lstrip().startswith("{"):
        try:
            info = json.loads(value)
        except ValueError:
            info = None
        if isinstance(info, dict):
            whole, parts = WholeOnly(value), set()
            for key in ("private_key", "private_key_id", "client_secret", "refresh_token"):
                if isinstance(info.get(key), str):
                    parts.add(info[key])
                    parts |= {ln.strip() for ln in info[key].splitlines() if "-----" not in ln}
    return {whole} | {p for p in parts if len(p) >= FRAGMENT}


class SecretURL:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    @property
    def redacted(self) -> str:
        return redact_url(self._value)

    @property
    def password(self) -> str | None:
        cred = _userinfo(self._value)
        return cred[1] if cred else None

    @property
    def secrets(self) -> set[str]:
        """What redaction masks: the password, or a userinfo without ':' (a token)."""
        cred = _userinfo(self._value)
        if cred is None:
            return set()
        user, password, _ = cred
        if password is None:
            return secret_parts(user) if user else set()
        if not password:
            return set()
        return secret_parts(password) | {basic_auth(unquote(user), unquote(password))}

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"SecretURL({self.redacted!r})"

    def __format__(self, spec: str) -> str:
        return format(self.redacted, spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretURL) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        def build(v: Any) -> "SecretURL":
            return v if isinstance(v, SecretURL) else cls(v)
        return core_schema.no_info_after_validator_function(
            build, core_schema.union_schema([core_schema.is_instance_schema(cls),
                                             core_schema.str_schema()]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.redacted, when_used="always"))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: GetJsonSchemaHandler):
        return {"type": "string", "format": "uri",
                "description": "URL; a password inside it is treated as a secret"}


_KNOWN: set[str] = set()  # the loaded profile's secrets, for clip(); see remember()


def remember(secrets: "frozenset[str] | set[str]") -> None:
    """Make the profile's secrets known to clip() (the runner calls it before any check)."""
    _KNOWN.update(secrets)


def clip(text: object, limit: int = 160) -> str:
    """Server text fit for a message: one line, every known secret masked *before* it is cut
    to `limit` (a secret cut in half would no longer match the scrubber)."""
    text = scrub(" ".join(str(text).split()), _KNOWN)
    return text if len(text) <= limit else text[:limit] + "..."


def scrub(text: str, secrets: "frozenset[str] | set[str]") -> str:
    """Last line of defence for texts we did not build (exception messages, server answers):
    mask every known secret value, longest first so a secret containing another is masked
    whole; then what a message's length limit leaves of one: its first (or last) FRAGMENT+
    characters, beyond the public head of its kind (an sb_ key's type, a JWT's header), which
    checks name in their own words. A run from the middle is not masked: "password" in a
    password must not turn "wrong username or password" into "wrong username or ***"."""
    ordered = sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True)
    for s in ordered:
        text = text.replace(s, MASK)
    # every cut secret's span first, on the same text: masking one canary's head must not
    # hide the head of another that starts alike
    # A run must hold more than half of its secret: an 8-character head alone is often a
    # word ("platform-...", "sandbox-...") that would be masked all over unrelated text.
    # Our own truncations cannot cut a secret (clip() masks before it cuts).
    spans = sorted(span for s in ordered if len(s) > FRAGMENT and not isinstance(s, WholeOnly)
                   for span in _cuts(text, s) if span[1] - span[0] > len(s) // 2)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    for a, b in reversed(merged):
        text = text[:a] + MASK + text[b:]
    return text


_PUBLIC_HEAD = re.compile(r"sb_[a-z]+_|eyJ[A-Za-z0-9_-]*\.")


def _cuts(text: str, secret: str):
    """Spans of `text` holding the start or the end of `secret`, FRAGMENT+ characters long."""
    head = _PUBLIC_HEAD.match(secret)
    shortest = max(FRAGMENT, head.end() + 1 if head else 0)
    i = text.find(secret[:shortest])
    while i >= 0:  # the secret cut short at its end
        k = shortest
        while i + k < len(text) and k < len(secret) and text[i + k] == secret[k]:
            k += 1
        yield i, i + k
        i = text.find(secret[:shortest], i + 1)
    tail = secret[-FRAGMENT:]
    i = text.find(tail)
    while i >= 0:  # the secret cut short at its start
        j, k = i, len(secret) - FRAGMENT  # text[j:] matches secret[k:]
        while j > 0 and k > 0 and text[j - 1] == secret[k - 1]:
            j, k = j - 1, k - 1
        yield j, i + FRAGMENT
        i = text.find(tail, i + 1)
