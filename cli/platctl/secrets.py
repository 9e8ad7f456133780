"""Secret types. Redaction comes from the type: these values cannot be printed by accident.

Passwords, keys and tokens use pydantic's ``SecretStr``. URLs that may carry a password
(``redis://user:pw@host``) use ``SecretURL``: its str/repr/format show the URL with the
password replaced, and only ``get_secret_value()`` gives the real one.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

MASK = "***"


def redact_url(url: str) -> str:
    """The URL with any password (and query token) masked; never raises."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = re.sub(r"(?i)((?:token|key|password|apikey|secret)=)[^&]*", rf"\1{MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


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
        try:
            return urlsplit(self._value).password
        except ValueError:
            return None

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


def scrub(text: str, secrets: "frozenset[str] | set[str]") -> str:
    """Last line of defence for texts we did not build (exception messages): mask every
    known secret value. Longest first, so a secret containing another is masked whole."""
    for s in sorted(secrets, key=len, reverse=True):
        if s and len(s) >= 4:
            text = text.replace(s, MASK)
    return text
