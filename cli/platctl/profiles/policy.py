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

_URL_FIELDS = (("arango", "url"), ("supabase", "url"), ("gcs", "endpoint"),
               ("meilisearch", "url"), ("consul", "url"), ("telemetry", "endpoint"))
_CREDENTIALS = (("arango", "password"), ("supabase", "service_key"), ("supabase", "anon_key"),
                ("gcs", "credentials_json"), ("meilisearch", "api_key"), ("consul", "token"))
# The environment key the built-in profiles read for each field: operators set keys, not YAML,
# so the message names the key to change (the error's file:line:key names the field).
_ENV = {("redis", "url"): "REDIS_URL", ("arango", "url"): "ARANGO_URL",
        ("arango", "password"): "ARANGO_PASSWORD", ("supabase", "url"): "SUPABASE_URL",
        ("supabase", "service_key"): "SUPABASE_SERVICE_KEY",
        ("supabase", "anon_key"): "SUPABASE_ANON_KEY", ("gcs", "endpoint"): "GCS_ENDPOINT",
        ("gcs", "credentials_json"): "GCS_CREDENTIALS_JSON",
        ("meilisearch", "url"): "MEILISEARCH_URL (or MEILISEARCH_HOST/MEILISEARCH_PORT)",
        ("meilisearch", "api_key"): "MEILI_MASTER_KEY",
        ("consul", "url"): "CONSUL_SCHEME=https (with CONSUL_HOST/CONSUL_PORT)",
        ("consul", "token"): "CONSUL_TOKEN",
        ("telemetry", "endpoint"): "OTEL_EXPORTER_OTLP_ENDPOINT"}


def violations(p: Profile) -> Iterator[tuple[tuple[Any, ...], str]]:
    if p.policy.require_tls:
        url = p.redis.url
        if urlsplit(url.get_secret_value()).scheme != "rediss":
            yield ("redis", "url"), ("this profile requires TLS (policy.require_tls): set"
                                     f" REDIS_URL to a rediss:// URL, got {url}")
        for section, field in _URL_FIELDS:
            url = getattr(getattr(p, section), field)
            if urlsplit(url.get_secret_value()).scheme != "https":
                yield (section, field), ("this profile requires TLS (policy.require_tls): set"
                                         f" {_ENV[section, field]} to an https:// URL, got {url}")
    if not p.policy.allow_emulators and p.gcs.emulator_host:
        yield ("gcs", "emulator_host"), ("emulator endpoints are refused by this profile"
                                         " (policy.allow_emulators): unset STORAGE_EMULATOR_HOST"
                                         " (a GCS API at another URL goes in GCS_ENDPOINT)")
    if p.policy.require_credentials:
        if not p.redis.url.password:
            yield ("redis", "url"), ("this profile requires credentials"
                                     " (policy.require_credentials): put the password in REDIS_URL")
        for section, field in _CREDENTIALS:
            if getattr(getattr(p, section), field) is None:
                yield (section, field), ("this profile requires credentials"
                                         f" (policy.require_credentials): {_ENV[section, field]}"
                                         " is empty")


def enforce(p: Profile, lines: dict[tuple[Any, ...], int], file: str) -> None:
    for loc, message in violations(p):
        raise ProfileError(message, file, line_of(loc, lines), ".".join(loc))
