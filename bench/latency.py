"""Target 2: latency does not add up. Every network service of bench/stack.py answers each
request `DELAY` s late; `validate` against it, compared with sequential baselines: the seed
pre-boot's shape in one process (every check alone, one after another: nothing concurrent,
nothing asked early), wall time and the checks' own durations summed (start-up and imports
excluded: the stricter reading); and each service validated alone (`--only`), one after
another (start-up paid each time, as separate pre-boot scripts would). The sum of the
durations in validate's own report is no sequential baseline: a step that reads an answer
asked early reports ~0 ms."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from bench.stack import stack
from bench.timing import Run, markdown, median, run, s
from platctl import contract
from tests.support import PLATCTL

DELAY = 0.3
NETWORK_PLANES = 2  # data and control; the execution plane (runtime) is local
# Answers no design can ask for sooner: per network plane, the longest chain of requests that
# each need the answer before them. Data: GCS's canary upload, then its read-back (everything
# else, Redis's whole batch included, goes in the first round trip). Control: one.
DEPENDENT_TRIPS = {"data": 2, "control": 1}
VALIDATE = [PLATCTL, "validate", "-p", "vm", "-o", "json", "--timeout", "10"]


def validate(env: dict[str, str], *extra: str, rss: bool = False) -> tuple[Run, dict]:
    r = run([*VALIDATE, *extra], env, rss=rss)
    doc = json.loads(r.stdout)
    assert r.code == 0 and doc["ok"], [c for c in doc["checks"] if c["status"] == "fail"]
    return r, doc


@dataclass
class Sample:
    wall: float
    startup: float  # `validate --only runtime` just before: interpreter, imports, profile
    checks: dict[str, float]  # check id -> seconds
    planes: dict[str, float]
    trips: dict[str, int]  # service -> answers delayed


def _sample(st) -> Sample:  # noqa: ANN001
    startup = validate(st.env, "--only", "runtime")[0].seconds
    st.reset()
    r, doc = validate(st.env)
    return Sample(r.seconds, startup, {c["id"]: c["duration_ms"] / 1000 for c in doc["checks"]},
                  {p["name"]: p["duration_ms"] / 1000 for p in doc["planes"]}, st.round_trips())


# The seed platform's pre-boot, in one process: start, load the profile, then each check
# after the other (no concurrency anywhere, nothing asked early), importing each client
# library when its service's turn comes. Built from platctl's own runner so the checks are the
# very same: each check id is run alone (`only`), so no step carries a later one's requests.
_SEQUENTIAL = """
import os, shlex, sys
from pathlib import Path
from platctl import contract, runner
from platctl.profiles.loader import load
profile = load("vm", os.environ, Path.cwd())
argv = tuple(shlex.split(os.environ.get("PLATFORM_RUNTIME_CMD") or profile.execution.command))
bad, checks_ms = [], 0.0
for svc in contract.SERVICES:
    for cid in svc.check_ids:
        opts = runner.Options(timeout=10, only=(cid,), runtime_command=argv or None)
        report = runner.run(profile, opts, os.environ).report
        bad += [f"{c.id}: {c.message}" for c in report.failed]
        checks_ms += sum(c.duration_ms for c in report.checks if c.id == cid)
print(*bad, sep=chr(10), file=sys.stderr)
print(checks_ms / 1000)
sys.exit(1 if bad else 0)
"""


def one_process_sequential(env: dict[str, str]) -> tuple[float, float]:
    """(wall of the whole process, the checks' own durations summed within it)."""
    r = run([sys.executable, "-c", _SEQUENTIAL], env)
    assert r.code == 0, f"the sequential baseline failed: {r.stdout}"
    return r.seconds, float(r.stdout.split()[-1])


def _med(samples: list[Sample], get) -> float:  # noqa: ANN001
    return median([get(x) for x in samples])


def measure(reps: int) -> tuple[str, str, dict[str, float]]:
    with stack(DELAY) as st:
        samples = [_sample(st) for _ in range(reps)]
        alone = median([sum(validate(st.env, "--only", svc.name)[0].seconds
                            for svc in contract.SERVICES) for _ in range(max(1, reps // 2))])
        runs = [one_process_sequential(st.env) for _ in range(max(1, reps // 2))]
    one_proc, seq = median([w for w, _ in runs]), median([c for _, c in runs])
    wall, startup = _med(samples, lambda x: x.wall), _med(samples, lambda x: x.startup)
    trips = {name: _med(samples, lambda x: x.trips[name]) for name in samples[0].trips}
    ideal = startup + NETWORK_PLANES * DELAY
    chain = startup + DELAY * sum(DEPENDENT_TRIPS.values())
    summary = markdown(["measure", "median", "validate ÷ this"], [
        ["`validate -p vm`: 8 services, every answer +300 ms", s(wall), "1.00"],
        ["sequential, one process (the seed pre-boot: start-up, then each check after the"
         " other, each client imported when its turn comes)", s(one_proc),
         f"**{wall / one_proc:.2f}**"],
        ["sequential: the checks' own durations in that run, summed (start-up and imports"
         " left out)", s(seq), f"**{wall / seq:.2f}**"],
        ["sequential: each service alone (`--only`), one after another", s(alone),
         f"{wall / alone:.2f}"],
        ["start-up + 300 ms × 2 network planes (the issue's bound)", s(ideal),
         f"{wall / ideal:.2f}"],
        ["start-up + 300 ms × the answers that must wait for an earlier one (data 2: the"
         " GCS canary reads back what it wrote; control 1)", s(chain), f"{wall / chain:.2f}"],
        ["start-up alone: `validate --only runtime` (no network)", s(startup), ""],
    ])
    rows = []
    for svc in contract.SERVICES:
        ids = [cid for cid in svc.check_ids if cid in samples[0].checks]
        per = {cid: _med(samples, lambda x, cid=cid: x.checks[cid]) for cid in ids}
        steps = " → ".join(f"{cid.split('.', 1)[1]} {per[cid] / DELAY:.1f}" for cid in ids)
        rows.append([svc.name, svc.plane,
                     f"{trips[svc.name]:.0f}" if svc.name in trips else "local",
                     s(sum(per.values())), steps])
    chains = markdown(["service", "plane", "requests (each answered 300 ms late)",
                       "its checks, summed", "checks in order (duration ÷ 300 ms)"], rows)
    planes = markdown(["plane", "median duration", "÷ 300 ms"],
                      [[p, s(_med(samples, lambda x, p=p: x.planes[p])),
                        f"{_med(samples, lambda x, p=p: x.planes[p]) / DELAY:.1f}"]
                       for p in samples[0].planes])
    return summary, chains + "\n\n" + planes, {"wall": wall, "sequential": seq, "alone": alone,
                                               "one_process": one_proc,
                                               "ideal": ideal, "chain": chain}
