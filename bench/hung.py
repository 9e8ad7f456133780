"""Target 3: time to verdict on a hung service. Each network service in turn points at a
server that accepts connections and never answers (tests/support.py hung_server); the
verdict must come within `--timeout` (bound: 2.3 s for --timeout 2), start-up included."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.timing import markdown, median, run, s
from tests.emulators.supabase import SupabaseEmulator
from tests.support import PLATCTL, clean_env, hung_server, write_profile

TIMEOUT = 2.0
BOUND = 2.3


def _section(service: str, url: str) -> dict:
    keys = SupabaseEmulator()  # not started: only its well-formed JWT keys are used
    return {"redis": {"url": f"redis://{url[7:]}/0"},
            "arango": {"url": url, "password": "pw", "database": "platform"},
            "supabase": {"url": url, "service_key": keys.service_role_key,
                         "anon_key": keys.anon_key},
            "gcs": {"bucket": "platform", "emulator_host": url},
            "meilisearch": {"url": url}, "consul": {"url": url},
            "telemetry": {"endpoint": url}}[service]


SERVICES = ("redis", "arango", "supabase", "gcs", "meilisearch", "consul", "telemetry")



def measure(reps: int, services: tuple[str, ...] = SERVICES) -> tuple[str, dict[str, float]]:
    rows, worst = [], 0.0
    with hung_server() as port, tempfile.TemporaryDirectory() as tmp:
        url = f"http://127.0.0.1:{port}"
        for service in services:
            profile = write_profile(Path(tmp), name=service, **{service: _section(service, url)})
            cmd = [PLATCTL, "validate", "-p", str(profile), "--only", service,
                   "--timeout", str(TIMEOUT), "-o", "json"]
            runs = [run(cmd, clean_env()) for _ in range(reps)]
            doc = json.loads(runs[-1].stdout)
            failed = next((c for c in doc["checks"] if c["status"] == "fail"), None)
            verdict = f"{failed['id']}: {failed['reason']}" if failed else "no failure (!)"
            times = [r.seconds for r in runs]
            worst = max(worst, max(times))
            rows.append([service, s(median(times)), s(max(times)),
                         f"{median(times) / TIMEOUT:.2f}×", {r.code for r in runs}.pop()
                         if len({r.code for r in runs}) == 1 else sorted({r.code for r in runs}),
                         verdict])
    table = markdown(["service (hung)", "median", "max", "median / timeout", "exit",
                      "verdict"], rows)
    return table, {"worst": worst}
