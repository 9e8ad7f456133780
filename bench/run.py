"""Benchmarks: ratios measured in one run (the machines are shared and noisy, so absolute
times drift; ratios of things measured side by side do not, much).

    python bench/run.py [--reps N]

1. plane concurrency: the data plane against slow emulators (every request delayed), wall
   time vs the sum of the checks' own durations (what a sequential runner would cost);
2. hung-service verdict: `validate --only redis --timeout 2` against a server that never
   answers, wall time / timeout;
3. start-up: `platctl --version` vs a bare `python -c pass`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.emulators.arango import ArangoEmulator  # noqa: E402
from tests.emulators.meilisearch import MeilisearchEmulator  # noqa: E402
from tests.emulators.supabase import SupabaseEmulator  # noqa: E402
from tests.support import PLATCTL, clean_env, hung_server, run_report, write_profile  # noqa: E402

DELAY = 0.2  # seconds added to every emulator answer


def plane_concurrency(reps: int) -> tuple[float, float, float]:
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        arango = stack.enter_context(ArangoEmulator(users={"root": "pw"}))
        meili = stack.enter_context(MeilisearchEmulator(master_key="k"))
        supa = stack.enter_context(SupabaseEmulator())
        for emu in (arango, meili, supa):
            emu.fault, emu.slow_seconds = "slow", DELAY
        profile = write_profile(
            Path(tmp), arango={"url": arango.url, "username": "root", "password": "pw"},
            meilisearch={"url": meili.url, "api_key": "k"},
            supabase={"url": supa.url, "service_key": supa.service_role_key,
                      "anon_key": supa.anon_key})
        walls, sums = [], []
        for _ in range(reps):
            t0 = time.monotonic()
            report = run_report(profile, only=("arango", "meilisearch", "supabase"), timeout=5)
            walls.append(time.monotonic() - t0)
            sums.append(sum(c.duration_ms for c in report.checks) / 1000)
            assert report.ok, [c for c in report.checks if c.status.value == "fail"]
    wall, seq = statistics.median(walls), statistics.median(sums)
    return wall, seq, seq / wall


def hung_verdict(reps: int, timeout: float = 2.0) -> tuple[float, float]:
    times = []
    with hung_server() as port, tempfile.TemporaryDirectory() as tmp:
        profile = write_profile(Path(tmp), redis={"url": f"redis://127.0.0.1:{port}/0"})
        for _ in range(reps):
            t0 = time.monotonic()
            subprocess.run([PLATCTL, "validate", "-p", str(profile), "--only", "redis",
                            "--timeout", str(timeout), "-o", "json"], env=clean_env(),
                           capture_output=True)
            times.append(time.monotonic() - t0)
    med = statistics.median(times)
    return med, med / timeout


def startup(reps: int) -> tuple[float, float, float]:
    def timed(cmd: list[str]) -> float:
        runs = []
        for _ in range(reps):
            t0 = time.monotonic()
            subprocess.run(cmd, capture_output=True, env=clean_env())
            runs.append(time.monotonic() - t0)
        return statistics.median(runs)
    bare = timed([sys.executable, "-c", "pass"])
    ours = timed([PLATCTL, "--version"])
    return ours, bare, ours / bare


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    wall, seq, speedup = plane_concurrency(reps)
    print(f"plane concurrency  median wall {wall:.2f} s vs sequential sum {seq:.2f} s"
          f"  -> speed-up x{speedup:.1f}  (3 services, {DELAY:.1f} s per request, {reps} reps)")
    verdict, ratio = hung_verdict(reps)
    print(f"hung-service verdict  median {verdict:.2f} s for --timeout 2"
          f"  -> {ratio:.2f} x timeout  ({reps} reps)")
    ours, bare, over = startup(reps)
    print(f"start-up  platctl --version median {ours * 1000:.0f} ms vs python -c pass"
          f" {bare * 1000:.0f} ms  -> x{over:.1f}  ({reps} reps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
