"""The frozen report model: what the runner produces and the renderers consume, nothing else.

Its JSON form is the published ``platctl.report/v1`` schema (contract/report.schema.json).
"""
from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_ID = "platctl.report/v1"
PLANES = ("data", "control", "execution")


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


class Reason(str, Enum):
    """Failure classes. Stable strings: scripts and --wait decide on them."""

    REFUSED = "refused"  # nothing listens
    TIMEOUT = "timeout"  # no answer within the deadline
    DNS = "dns"  # host name does not resolve
    TLS = "tls"  # handshake or certificate verification failed
    RESET = "reset"  # connection dropped mid-conversation
    AUTH = "auth"  # wrong or missing credentials
    FORBIDDEN = "forbidden"  # authenticated, but not allowed
    MISSING = "missing"  # database, bucket, index, collection... does not exist
    SERVER = "server"  # the service reported an error of its own (5xx)
    UNAVAILABLE = "unavailable"  # up but not ready: loading, read-only, no leader
    UNEXPECTED = "unexpected"  # an answer that is not the protocol (HTML page, garbage)
    CONFIG = "config"  # local configuration unusable (bad credentials file, bad path)
    INTERNAL = "internal"  # a bug in platctl's check


# Failures worth waiting out (--wait); every other reason is permanent.
TRANSIENT = frozenset({Reason.REFUSED, Reason.TIMEOUT, Reason.DNS, Reason.RESET,
                       Reason.SERVER, Reason.UNAVAILABLE})


class _Frozen(BaseModel):
    # Every key is always present in the JSON, so the published schema marks them required.
    model_config = ConfigDict(frozen=True, extra="forbid",
                              json_schema_serialization_defaults_required=True)


class CheckResult(_Frozen):
    id: str = Field(description="stable check id, SERVICE.ASPECT")
    service: str
    plane: str
    status: Status
    duration_ms: float
    message: str
    hint: str | None = Field(None, description="the env key or profile field to fix")
    reason: Reason | None = Field(None, description="failure class of a failed check")
    required: bool = True

    @field_validator("message", "hint")
    @classmethod
    def _encodable(cls, text: str | None) -> str | None:
        # A message may quote an environment value holding bytes that are not UTF-8 (Python
        # keeps them as lone surrogates): shown as \udcXX, or no JSON document and no strict
        # UTF-8 stdout could carry the report.
        return text.encode("utf-8", "backslashreplace").decode("utf-8") if text else text


class PlaneResult(_Frozen):
    name: str
    status: Status
    duration_ms: float


class Report(_Frozen):
    schema_: str = Field(SCHEMA_ID, alias="schema")
    profile: str
    ok: bool
    duration_ms: float
    planes: tuple[PlaneResult, ...]
    checks: tuple[CheckResult, ...]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              json_schema_serialization_defaults_required=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL and c.required)


def plane_status(results: list[CheckResult] | tuple[CheckResult, ...]) -> Status:
    statuses = {r.status for r in results}
    for s in (Status.FAIL, Status.WARN, Status.PASS):
        if s in statuses:
            return s
    return Status.SKIP
