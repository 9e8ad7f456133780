"""Profile-level policy (the `policy:` section): TLS everywhere, no emulators, credentials
everywhere. `option-c-phase1` turns all three on. Violations are profile errors (exit 2):
a Phase 1 deployment that falls back to plaintext must not get as far as a check.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from platctl.profiles.loader import ProfileError
from platctl.profiles.model import Profile
from platctl.profiles.validate import line_of

_URL_FIELDS = (("arango", "url"), ("supabase", "url"), ("meilisearch", "url"),
               ("consul", "url"), ("telemetry", "endpoint"))
_CREDENTIALS = (("arango", "password"), ("supabase", "service_key"), ("supabase", "anon_key"),
                ("gcs", "credentials_json"), ("meilisearch", "api_key"), ("consul", "token"))


def violations(p: Profile) -> Iterator[tuple[tuple[Any, ...], str]]:
    if p.policy.require_tls:
        if urlsplit(p.redis.url.get_secret_value()).scheme != "rediss":
            yield ("redis", "url"), "this profile requires TLS (policy.require_tls): use rediss://"
        for section, field in _URL_FIELDS:
            url = getattr(getattr(p, section), field)
            if urlsplit(url.get_secret_value()).scheme != "https":
                yield (section, field), ("this profile requires TLS (policy.require_tls):"
                                         f" use https://, got {url}")
    if not p.policy.allow_emulators and p.gcs.emulator_host:
        yield ("gcs", "emulator_host"), ("emulator endpoints are refused by this profile"
                                         " (policy.allow_emulators): unset STORAGE_EMULATOR_HOST")
    if p.policy.require_credentials:
        if not p.redis.url.password:
            yield ("redis", "url"), ("this profile requires credentials"
                                     " (policy.require_credentials): put the password in REDIS_URL")
        for section, field in _CREDENTIALS:
            if getattr(getattr(p, section), field) is None:
                yield (section, field), ("this profile requires credentials"
                                         " (policy.require_credentials); the value is empty")


def enforce(p: Profile, lines: dict[tuple[Any, ...], int], file: str) -> None:
    for loc, message in violations(p):
        raise ProfileError(message, file, line_of(loc, lines), ".".join(loc))
