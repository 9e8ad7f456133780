"""Target 5: scale. N stacks of services (bench/stack.py, each in its own process: redis-server,
the gcp-storage-emulator, the five HTTP emulators, a DuckDB file) and N `platctl validate -p vm`
processes at once, one per stack: the loop the README documents for several profiles,

    for p in a b c; do platctl validate -p "$p" & done; wait

Wall time until the last one exits, median of repeated rounds, against N = 1; and the CPU
they used, to show where the two cores saturate."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.timing import Run, markdown, median, run, s
from tests.support import PLATCTL

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = [PLATCTL, "validate", "-p", "vm", "-o", "json", "--timeout", "30"]


@contextmanager
def stacks(n: int, batch: int = 4):
    """n stack processes; started a few at a time (each gcp-storage-emulator takes a second
    or two of CPU to start, and waits at most 20 s for its port)."""
    procs: list[subprocess.Popen] = []
    envs: list[dict[str, str]] = []
    try:
        for first in range(0, n, batch):
            started = [subprocess.Popen([sys.executable, "-m", "bench.stack"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True) for _ in range(min(batch, n - first))]
            procs += started
            for p in started:
                line = p.stdout.readline()
                if not line:
                    raise RuntimeError("a bench stack did not start")
                envs.append(json.loads(line))
        yield envs
    finally:
        for p in procs:
            p.stdin.close()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def _round(envs: list[dict[str, str]]) -> tuple[float, list[Run]]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(len(envs)) as pool:
        runs = list(pool.map(lambda env: run(VALIDATE, env, timeout=300), envs))
    return time.perf_counter() - t0, runs


def measure(reps: int, sizes: tuple[int, ...] = (1, 4, 16)) -> tuple[str, dict[str, float]]:
    rows, walls, cores = [], {}, os.cpu_count() or 1
    with stacks(max(sizes)) as envs:
        for n in sizes:
            _round(envs[:n])  # warm-up: page cache, bytecode, each stack's first connection
            results = [_round(envs[:n]) for _ in range(reps)]
            wall = median([w for w, _ in results])
            runs = [r for _, rs in results for r in rs]
            failed = sum(1 for r in runs if r.code != 0)
            cpu = median([sum(r.cpu_s for r in rs) for _, rs in results])
            walls[n] = wall
            rows.append([n, s(wall), f"{wall / walls[sizes[0]]:.2f}×", f"{cpu / n:.2f} s",
                         f"{cpu / wall:.2f}", s(cpu / cores), failed])
    table = markdown(["stacks N", "median wall (all N done)", "× N=1", "CPU per validate",
                      f"validate CPU ÷ wall (cores busy, of {cores})",
                      f"CPU-bound floor: N × CPU ÷ {cores} cores", "non-zero exits"], rows)
    return table, {f"wall_{n}": w for n, w in walls.items()}
