"""A hung server (accepts, never answers) gets a timeout verdict within --timeout 2 plus a
half-second, end to end through the installed console script, for every network service."""
from __future__ import annotations

import json
import time

import pytest

from tests.support import hung_server, platctl, write_profile

TIMES: dict[str, float] = {}


def section(service: str, url: str) -> dict:
    return {
        "redis": {"redis": {"url": url.replace("http://", "redis://") + "/0"}},
        "arango": {"arango": {"url": url}},
        "supabase": {"supabase": {"url": url, "service_key": "sb_secret_x",
                                  "anon_key": "sb_publishable_x"}},
        "gcs": {"gcs": {"emulator_host": url}},
        "meilisearch": {"meilisearch": {"url": url}},
        "consul": {"consul": {"url": url}},
        "telemetry": {"telemetry": {"endpoint": url}},
    }[service]


@pytest.mark.parametrize("service", ["redis", "arango", "supabase", "gcs", "meilisearch",
                                     "consul", "telemetry"])
def test_hung_server_verdict_within_timeout(tmp_path, service):
    with hung_server() as port:
        profile = write_profile(tmp_path, **section(service, f"http://127.0.0.1:{port}"))
        t0 = time.monotonic()
        proc = platctl("validate", "-p", str(profile), "--only", service, "--timeout", "2",
                       "-o", "json")
        elapsed = time.monotonic() - t0
    TIMES[service] = elapsed
    report = json.loads(proc.stdout)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert proc.returncode == 1 and failed, proc.stdout
    assert failed[0]["reason"] == "timeout" and "timed out after 2.0 s" in failed[0]["message"]
    assert elapsed <= 2.5, f"{service}: verdict after {elapsed:.2f} s"


def test_print_hung_verdict_times(capsys):
    with capsys.disabled():
        print("\nhung-server verdict, platctl validate --timeout 2 (wall, process included):")
        for service, seconds in TIMES.items():
            print(f"  {service:<12} {seconds:.2f} s")
