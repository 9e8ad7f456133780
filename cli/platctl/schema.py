"""Generate the published JSON Schemas (contract/*.schema.json) from the models.

`make schemas` (python -m platctl.schema contract/) rewrites them; a test fails when the
committed files differ from what the models generate.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from platctl.profiles.model import Profile
from platctl.result import SCHEMA_ID, Report

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


def render(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


SCHEMAS = {"profile.schema.json": profile_schema, "report.schema.json": report_schema}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "contract")
    out.mkdir(parents=True, exist_ok=True)
    for name, make in SCHEMAS.items():
        (out / name).write_text(render(make()))
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
