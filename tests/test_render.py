"""Renderers are pure functions of a report; the published schemas match the models."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from platctl import schema
from platctl.render.github import render_github, render_summary_markdown
from platctl.render.junit import render_junit
from platctl.render.table import render_table
from platctl.result import CheckResult, PlaneResult, Reason, Report, Status

ROOT = Path(__file__).resolve().parents[1]


def sample() -> Report:
    checks = (
        CheckResult(id="redis.ping", service="redis", plane="data", status=Status.FAIL,
                    duration_ms=2.0, message="wrong password: 100% sure, a|b\nsecond line",
                    hint="check REDIS_URL (profile: redis.url)", reason=Reason.AUTH),
        CheckResult(id="redis.eviction", service="redis", plane="data", status=Status.WARN,
                    duration_ms=1.0, message="maxmemory-policy is allkeys-lru",
                    hint="set noeviction"),
        CheckResult(id="runtime.port", service="runtime", plane="execution", status=Status.SKIP,
                    duration_ms=0.0, message="not run: the data plane failed"),
    )
    planes = (PlaneResult(name="data", status=Status.FAIL, duration_ms=3.0),
              PlaneResult(name="execution", status=Status.SKIP, duration_ms=0.0))
    return Report(profile="vm", ok=False, duration_ms=5.0, planes=planes, checks=checks)


def test_published_schemas_are_not_stale():
    for name, make in schema.SCHEMAS.items():
        committed = (ROOT / "contract" / name).read_text()
        assert committed == schema.render(make()), f"contract/{name} is stale: run make schemas"


def test_json_report_validates_against_the_published_schema():
    doc = json.loads(sample().to_json())
    jsonschema.validate(doc, json.loads((ROOT / "contract" / "report.schema.json").read_text()))
    assert doc["schema"] == "platctl.report/v1"
    assert list(doc) == ["schema", "profile", "ok", "duration_ms", "planes", "checks"]


def test_resolved_builtin_profiles_validate_against_the_profile_schema():
    from platctl.profiles.loader import load
    from tests.test_profiles import PHASE1_ENV

    s = json.loads((ROOT / "contract" / "profile.schema.json").read_text())
    for name, env in (("vm", {}), ("option-c-phase1", PHASE1_ENV)):
        doc = load(name, env=env).model_dump(mode="json", exclude_none=True)
        jsonschema.validate(doc, s)


def test_table_plain_narrow_and_coloured():
    plain = render_table(sample(), color=False, width=40)
    assert "\x1b[" not in plain
    assert max(len(line) for line in plain.splitlines()) <= 40
    assert "Platform contract violation: redis.ping failed" in " ".join(plain.split())
    assert "\x1b[" in render_table(sample(), color=True, width=100)


def test_junit_failure_skip_and_warning():
    root = ET.fromstring(render_junit(sample()))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["data", "execution"]
    assert suites[0].get("failures") == "1" and suites[1].get("skipped") == "1"
    failure = root.find(".//testcase[@name='redis.ping']/failure")
    assert failure.get("type") == "auth" and "REDIS_URL" in failure.text


def test_github_commands_escape_data_and_properties():
    out = render_github(sample())
    line = next(ln for ln in out.splitlines() if ln.startswith("::error title=platctl redis.ping"))
    assert "100%25 sure" in line and "%0Asecond line" in line and "\n" not in line
    assert out.count("::warning") == 1
    md = render_summary_markdown(sample())
    assert r"a\|b" in md and re.search(r"\| ✗ fail \| `redis.ping` \|", md)
