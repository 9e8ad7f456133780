"""Deployment profile models (pydantic v2). Unknown keys are rejected; secrets are typed.

The JSON Schema published as contract/profile.schema.json is generated from these models.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator,
                      model_validator)

from platctl.secrets import SecretURL, basic_auth, secret_parts


def _url(*schemes: str):
    """Validator: a URL with one of `schemes`, a host, and a port in range if given."""
    def check(value: SecretURL) -> SecretURL:
        raw = value.get_secret_value()
        try:
            parts = urlsplit(raw)
            parts.port  # raises ValueError when out of range or not a number
        except ValueError as exc:  # urllib's text may quote the URL's parts (a password)
            what = "the port is not a number in 0-65535" if "Port" in str(exc) else \
                "malformed IPv6 host" if "IPv6" in str(exc) else "unparseable"
            raise ValueError(f"not a valid URL ({what}): {value}") from None
        if parts.scheme not in schemes:
            raise ValueError(f"scheme must be one of {', '.join(s + '://' for s in schemes)};"
                             f" got {value}")
        if not parts.hostname:
            raise ValueError(f"URL has no host: {value}")
        return value
    return AfterValidator(check)


HttpURL = Annotated[SecretURL, _url("http", "https")]
RedisURL = Annotated[SecretURL, _url("redis", "rediss")]
Port = Annotated[int, Field(ge=1, le=65535)]
_SURROGATE = re.compile("[\ud800-\udfff]")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, data: Any) -> Any:
        # `${KEY:-}` yields "" for an unset key: treat it as "not given" so defaults apply
        # and optional secrets become None instead of an empty credential.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Only a YAML "\0" escape can put a NUL here, and no path, host, URL, argv or header
        # can carry one. Lone surrogates (a "\udcff" escape, or an environment value whose
        # bytes are not UTF-8) reach no client library or report intact. Refused now, they
        # would crash or mislead a check later. The message never quotes the value (a secret?).
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and "\x00" in v:
                raise ValueError("contains a NUL character")
            if isinstance(v, str) and _SURROGATE.search(v):
                raise ValueError("contains bytes that are not UTF-8 text")
        return value


class ServiceSection(Section):
    required: bool = Field(True, description="a failure of this service blocks boot")


class Policy(Section):
    require_tls: bool = Field(False, description="every network hop must use TLS")
    allow_emulators: bool = Field(True, description="emulator endpoints (GCS) are acceptable")
    require_credentials: bool = Field(False, description="every service must have credentials")


class Tls(Section):
    ca_file: Path | None = Field(None, description="CA bundle for every TLS client"
                                                   " (default: SSL_CERT_FILE, else the system's)")


class Redis(ServiceSection):
    url: RedisURL = Field(description="redis:// or rediss://, password inside the URL")


class Arango(ServiceSection):
    url: HttpURL
    username: str = "root"
    password: SecretStr | None = None
    database: str = "_system"
    collections: list[str] = Field(default_factory=lambda: ["state_data"])
    create_missing: bool = Field(False, description="create missing collections"
                                                    " (never under --read-only)")


class Supabase(ServiceSection):
    url: HttpURL
    service_key: SecretStr | None = None
    anon_key: SecretStr | None = None
    buckets: list[str] = Field(default_factory=list, description="storage buckets that must exist")


class Gcs(ServiceSection):
    project_id: str | None = None
    bucket: str
    credentials_json: SecretStr | None = Field(
        None, description="service-account JSON, inline or a path to the file")
    emulator_host: str | None = Field(None, description="STORAGE_EMULATOR_HOST (vm only)")
    # Not the emulator setting: a real GCS API behind another URL (Private Service Connect,
    # restricted.googleapis.com, a TLS-terminating egress proxy), with real credentials.
    endpoint: HttpURL = Field(SecretURL("https://storage.googleapis.com"), validate_default=True,
                              description="GCS JSON API endpoint (GCS_ENDPOINT); not an emulator")


class Meilisearch(ServiceSection):
    url: HttpURL
    api_key: SecretStr | None = None
    indexes: list[str] = Field(default_factory=list)


class Duckdb(ServiceSection):
    path: Path
    read_only: bool = False


class Consul(ServiceSection):
    url: HttpURL
    token: SecretStr | None = None
    services: list[str] = Field(default_factory=list, description="services that must be passing")


class Telemetry(ServiceSection):
    endpoint: HttpURL
    protocol: Literal["http/protobuf", "http/json", "grpc"] = "http/protobuf"
    headers: SecretStr | None = Field(
        None, description="exporter headers, 'key=value,key2=value2' (OTEL_EXPORTER_OTLP_HEADERS);"
                          " managed collectors take their credentials here")


class Execution(ServiceSection):
    command: str | None = Field(None, description="runtime command (PLATFORM_RUNTIME_CMD wins)")
    host: str = "0.0.0.0"
    port: Port | None = Field(None, description="port the runtime binds; must be free")


class Waiver(Section):
    """A known failure accepted for a while: the check reports `warn` with the reason until
    the date (inclusive), then fails again. A past date still loads (lint warns about it)."""
    check: str = Field(description="check id, SERVICE.ASPECT (see `platctl contract`)")
    reason: str = Field(min_length=1, description="why the failure is accepted; shown in the"
                                                  " report")
    until: date = Field(description="last day the waiver applies, YYYY-MM-DD")

    @field_validator("check")
    @classmethod
    def _known_check(cls, value: str) -> str:
        from platctl.contract import CHECK_IDS

        if value not in CHECK_IDS:
            raise ValueError(f"unknown check id {value!r}; check ids are SERVICE.ASPECT, listed"
                             " by `platctl contract`")
        return value


class Profile(Section):
    name: str
    description: str = ""
    policy: Policy = Policy()
    tls: Tls = Tls()
    redis: Redis
    arango: Arango
    supabase: Supabase
    gcs: Gcs
    meilisearch: Meilisearch
    duckdb: Duckdb
    consul: Consul
    telemetry: Telemetry
    execution: Execution = Execution()
    waivers: list[Waiver] = Field(default_factory=list,
                                  description="failures accepted until a date (a waived"
                                              " check reports warn)")

    def section(self, service: str) -> ServiceSection:
        return getattr(self, "execution" if service == "runtime" else service)

    def secret_values(self) -> frozenset[str]:
        """Every secret in the profile, for the last-line scrubber of exception texts."""
        found: set[str] = set()

        def walk(obj: Any) -> None:
            if isinstance(obj, SecretStr):
                found.update(secret_parts(obj.get_secret_value()))
            elif isinstance(obj, SecretURL):
                found.update(obj.secrets)
            elif isinstance(obj, BaseModel):
                for name in type(obj).model_fields:
                    walk(getattr(obj, name))
                password = getattr(obj, "password", None)
                if isinstance(password, SecretStr) and isinstance(getattr(obj, "username", None),
                                                                  str):
                    found.add(basic_auth(obj.username, password.get_secret_value()))
        walk(self)
        return frozenset(s for s in found if s)


