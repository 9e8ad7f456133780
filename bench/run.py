"""Benchmarks for issue 8 (`make bench`): ratios of things measured side by side in one run,
medians of repeated runs. Writes bench/results.md (pasted into the README's Performance
section) and prints it.

    python bench/run.py [--reps N] [--only startup,latency,hung,memory,scale]

1. start-up: --help, contract, --version, profile list vs `python -c "import typer, rich"`;
2. latency: 8 services answering 300 ms late, validate vs the sequential baselines;
3. hung verdict: each network service accepting and never answering, --timeout 2;
4. memory: peak RSS of a full validate, and of each service alone;
5. scale: 1, 4 and 16 stacks validated at once.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import hung, latency, memory, scale, startup  # noqa: E402

TARGETS = ("startup", "latency", "hung", "memory", "scale")


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5, help="repetitions (start-up: 3×)")
    parser.add_argument("--only", default=",".join(TARGETS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.md"))
    args = parser.parse_args()
    chosen, reps = args.only.split(","), args.reps
    started, load_before = time.monotonic(), _load()
    parts: list[str] = []
    if "startup" in chosen:
        table, _ = startup.measure(3 * reps)
        parts += ["### 1. Start-up (target: `--help` and `contract` ≤ 1.3× the baseline)",
                  f"Medians of {3 * reps} interleaved runs, output to a pipe unless stated."
                  " Heavy modules from `python -X importtime` of the console script.", table]
    if "latency" in chosen:
        summary, chains, _ = latency.measure(reps)
        parts += ["### 2. Latency per plane (target: ≤ 0.35× sequential)",
                  f"`platctl validate -p vm -o json --timeout 10` against bench/stack.py with"
                  f" every answer {latency.DELAY * 1000:.0f} ms late; medians of {reps} runs"
                  f" ({max(1, reps // 2)} for the one-by-one baseline).", summary,
                  "A service's first network step asks the later steps' requests early"
                  " (checks/base.py ServiceCheck.ask_early; Redis sends every command in one"
                  " write), and the later steps read the answers in order: a service costs"
                  " one round trip, GCS two (its canary reads back what it wrote). The"
                  " services import their libraries one at a time (worker.Turns), so the"
                  " first ones already wait on the network while the others import. A plane"
                  " costs its slowest service:", chains]
    if "hung" in chosen:
        table, _ = hung.measure(reps)
        parts += [f"### 3. Verdict on a hung service (target: ≤ {hung.BOUND} s at"
                  f" `--timeout {hung.TIMEOUT:.0f}`)",
                  f"`validate --only SERVICE --timeout 2` against a server that accepts and never"
                  f" answers; {reps} runs each, wall time from launch.", table]
    if "memory" in chosen:
        table, _ = memory.measure(max(3, reps // 2))
        parts += [f"### 4. Peak RSS (target: ≤ {memory.BOUND_MB} MB)",
                  "Peak resident set of the platctl process (wait4 from a small parent), against"
                  " the sandbox stack without latency.", table]
    if "scale" in chosen:
        table, _ = scale.measure(max(3, reps // 2))
        parts += ["### 5. Scale: N stacks validated at once",
                  "N bench/stack.py processes (every service of the sandbox each), N"
                  " `platctl validate -p vm` processes started together, one per stack.", table]
    header = (f"Machine: {os.cpu_count()} cores, {platform.python_implementation()}"
              f" {platform.python_version()}, load average {load_before} before and {_load()}"
              f" after ({time.monotonic() - started:.0f} s). Reproduce: `make bench`"
              f" (`python bench/run.py --reps {reps}`).")
    text = "\n\n".join([header, *parts]) + "\n"
    Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
