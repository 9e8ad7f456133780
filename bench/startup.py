"""Target 1: start-up. `platctl --help`, `contract`, `--version`, `profile list` against
`python -c "import typer, rich"` in the same venv (medians, interleaved), and what each one
imports beyond typer and rich, read from `python -X importtime` of the console script."""
from __future__ import annotations

import os
import pty
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.timing import interleaved, markdown, median, ms, run
from tests.sandbox import redis_server
from tests.support import PLATCTL, clean_env

PY = sys.executable
BASELINE = "python -c 'import typer, rich'"
# Client libraries and the profile machinery: what an informational command must not load.
HEAVY = ("redis", "duckdb", "google", "httpx", "h2", "arango", "opentelemetry", "pydantic",
         "pydantic_core", "yaml", "typer.rich_utils", "rich.markdown")
COMMANDS = {
    "platctl --help": ["--help"],
    "platctl contract": ["contract"],
    "platctl contract -o json": ["contract", "-o", "json"],
    "platctl --version": ["--version"],
    "platctl profile list": ["profile", "list"],
}


def imported(args: list[str], env: dict[str, str], **kw) -> set[str]:
    proc = subprocess.run([PY, "-X", "importtime", *args], env=env, stdin=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=60,
                          **{"stdout": subprocess.DEVNULL, **kw})
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def heavy(names: set[str], besides: tuple[str, ...] = ()) -> str:
    found = sorted({h for h in HEAVY if h not in besides
                    for n in names if n == h or n.startswith(h + ".")})
    return ", ".join(found) or "none"


@contextmanager
def pseudo_terminal() -> Iterator[int]:
    """A terminal for a child's stdout; what it prints is read and dropped."""
    controller, terminal = pty.openpty()
    reader = threading.Thread(target=_drain, args=(controller,), daemon=True)
    reader.start()
    try:
        yield terminal
    finally:
        os.close(terminal)
        reader.join(5)
        os.close(controller)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def on_terminal(args: list[str], env: dict[str, str], reps: int) -> float:
    """Median wall time with stdout on a terminal: what a person typing it waits."""
    times = []
    for i in range(reps + 1):  # the first is a warm-up
        with pseudo_terminal() as terminal:
            times.append(run([PLATCTL, *args], env, stdout=terminal).seconds)
    return median(times[1:])


def measure(reps: int) -> tuple[str, dict[str, float]]:
    env = clean_env(COLUMNS="100")
    variants = {"python -c pass": [PY, "-c", "pass"],
                BASELINE: [PY, "-c", "import typer, rich"],
                **{name: [PLATCTL, *args] for name, args in COMMANDS.items()}}
    runs = interleaved(variants, reps, env)
    med = {name: median([r.seconds for r in rs]) for name, rs in runs.items()}
    base = med[BASELINE]
    base_mods = imported(["-c", "import typer, rich"], env)
    rows = []
    for name, t in med.items():
        if name.startswith("platctl"):
            mods = imported([PLATCTL, *COMMANDS[name]], env)
            extra, loads = len(mods - base_mods), heavy(mods)
        else:
            extra, loads = "", ""
        rows.append([f"`{name}`", ms(t), f"{t / base:.2f}×", extra, loads])
    tty = on_terminal(["--help"], env, reps)
    med["platctl --help (terminal)"] = tty
    with pseudo_terminal() as terminal:
        tty_mods = imported([PLATCTL, "--help"], env, stdout=terminal)
    rows.append(["`platctl --help` on a terminal (rich help)", ms(tty), f"{tty / base:.2f}×",
                 len(tty_mods - base_mods), heavy(tty_mods)])
    rows.append(_only_redis(env))
    table = markdown(["command", "median", "× baseline",
                      "modules beyond typer+rich", "heavy modules loaded"], rows)
    return table, {"baseline": base, **med}


def _only_redis(env: dict[str, str]) -> list[object]:
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        mods = imported([PLATCTL, "validate", "--only", "redis", "-p", "vm"],
                        {**env, "REDIS_URL": url})
    return ["`platctl validate --only redis` (imports, not timed)", "", "",
            "", heavy(mods, besides=("pydantic", "pydantic_core", "yaml"))
            + " (and the profile's pydantic, yaml)"]
