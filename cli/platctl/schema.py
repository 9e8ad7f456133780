"""Generate the published JSON Schemas (contract/*.schema.json) from the models.

`make schemas` (python -m platctl.schema contract/) rewrites them; a test fails when the
committed files differ from what the models generate.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from platctl import contract
from platctl.profiles.model import Profile
from platctl.result import SCHEMA_ID, Reason, Report

BASE = "https://platctl.dev/schemas"


def profile_schema() -> dict:
    schema = Profile.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{BASE}/profile.schema.json"
    schema["title"] = "platctl deployment profile"
    return schema


def report_schema() -> dict:
    schema = Report.model_json_schema(mode="serialization", by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{BASE}/report.schema.json"
    schema["title"] = f"platctl report ({SCHEMA_ID})"
    schema["properties"]["schema"]["const"] = SCHEMA_ID
    return schema


def diagnose_schema() -> dict:
    """`platctl diagnose -o json` (render/diagnose.py to_data): written out by hand, as the
    diagnoses are plain dataclasses; tests/test_diagnose.py validates every document it gets."""
    from platctl.commands.diagnose import SCHEMA_ID as DIAGNOSE_ID
    from platctl.layers import NOT_REACHED

    text, maybe_text = {"type": "string"}, {"type": ["string", "null"]}
    layer = {"type": "object", "additionalProperties": False,
             "required": ["layer", "check", "status", "duration_ms", "message", "hint",
                          "reason", "details"],
             "properties": {
                 "layer": {"enum": ["dns", "tcp", "tls", "auth", "operation"]},
                 "check": maybe_text,
                 "status": {"enum": ["pass", "warn", "fail", "skip", NOT_REACHED]},
                 "duration_ms": {"type": "number", "minimum": 0},
                 "message": text, "hint": maybe_text,
                 "reason": {"enum": [None, *(r.value for r in Reason)]},
                 "details": {"type": "object", "description": "layer facts, e.g. the TLS"
                             " layer's protocol, cipher and certificate"}}}
    service = {"type": "object", "additionalProperties": False,
               "required": ["service", "endpoint", "ok", "first_failure", "layers"],
               "properties": {"service": {"enum": [s.name for s in contract.SERVICES]},
                              "endpoint": maybe_text, "ok": {"type": "boolean"},
                              "first_failure": {"oneOf": [{"$ref": "#/$defs/Layer"},
                                                          {"type": "null"}]},
                              "layers": {"type": "array", "items": {"$ref": "#/$defs/Layer"}}}}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{BASE}/diagnose.schema.json", "title": f"platctl diagnose ({DIAGNOSE_ID})",
            "type": "object", "additionalProperties": False,
            "required": ["schema", "profile", "ok", "duration_ms", "services"],
            "properties": {"schema": {"const": DIAGNOSE_ID}, "profile": text,
                           "ok": {"type": "boolean"},
                           "duration_ms": {"type": "number", "minimum": 0},
                           "services": {"type": "array", "items": {"$ref": "#/$defs/Service"}}},
            "$defs": {"Layer": layer, "Service": service}}


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


SCHEMAS = {"profile.schema.json": profile_schema, "report.schema.json": report_schema,
           "diagnose.schema.json": diagnose_schema}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "contract")
    out.mkdir(parents=True, exist_ok=True)
    for name, make in SCHEMAS.items():
        (out / name).write_text(render(make()))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
