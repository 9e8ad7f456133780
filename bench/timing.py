"""Timing primitives: child processes timed with their own peak RSS and CPU, interleaved
repetitions (so a burst of load on a shared machine hits every variant alike) and medians."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    seconds: float  # wall time, launch to exit
    code: int
    stdout: str
    cpu_s: float  # the child's user + system CPU time
    rss_mb: float | None = None  # the child's peak resident set size (run(..., rss=True))


# Peak RSS needs a small parent: Linux carries the parent's high-water mark into a child
# spawned with fork/vfork + exec (a `/bin/true` started from a 300 MB process reports 300 MB).
# This process hosts emulators, so the child is started from a bare interpreter instead.
_RSS_PARENT = ("import os, subprocess, sys\n"
               "p = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)\n"
               "_, status, use = os.wait4(p.pid, 0)\n"
               "sys.stderr.write(f'{use.ru_maxrss}\\n')\n"
               "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run(cmd: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 120,
        rss: bool = False, **kw) -> Run:
    """One child, waited with wait4 for its own CPU time (RUSAGE_CHILDREN would add every
    child this process ever had: emulator processes are children here too)."""
    kw.setdefault("stdout", subprocess.PIPE)
    if rss:
        cmd = [sys.executable, "-S", "-c", _RSS_PARENT, *cmd]
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), env=None if env is None else dict(env), text=True,
                            stderr=subprocess.PIPE if rss else subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, **kw)
    try:
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        _, status, usage = _wait4(proc, t0 + timeout)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_mb = int(err.split()[-1]) / 1024 if rss and err.split() else None
    return Run(seconds, proc.returncode, out, usage.ru_utime + usage.ru_stime, rss_mb)


def _wait4(proc: subprocess.Popen, deadline: float):  # noqa: ANN202
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return pid, status, usage
        if time.perf_counter() > deadline:
            proc.kill()
            return os.wait4(proc.pid, 0)
        time.sleep(0.002)


def interleaved(variants: Mapping[str, Sequence[str]], reps: int,
                env: Mapping[str, str] | None = None, warmup: int = 1,
                **kw) -> dict[str, list[Run]]:
    """Each variant `reps` times, round-robin (a, b, c, a, b, c, ...), after `warmup` rounds
    that fill the OS page cache and CPython's bytecode cache."""
    runs: dict[str, list[Run]] = {name: [] for name in variants}
    for i in range(warmup + reps):
        for name, cmd in variants.items():
            r = run(cmd, env, **kw)
            if i >= warmup:
                runs[name].append(r)
    return runs


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def s(seconds: float) -> str:
    return f"{seconds:.2f} s"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
