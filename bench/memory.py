"""Target 4: peak RSS of a full `validate` against bench/stack.py (no latency), and of each
service validated alone, which says what costs."""
from __future__ import annotations

from bench.latency import validate
from bench.stack import stack
from bench.timing import markdown, median, ms, run
from platctl import contract
from tests.support import PLATCTL

BOUND_MB = 120


def measure(reps: int) -> tuple[str, dict[str, float]]:
    with stack() as st:
        full = [validate(st.env, rss=True)[0] for _ in range(reps)]
        alone = {svc.name: validate(st.env, "--only", svc.name, rss=True)[0]
                 for svc in contract.SERVICES}
        version = run([PLATCTL, "--version"], st.env, rss=True)
    peak = max(r.rss_mb for r in full)
    rows = [["full `validate -p vm`", f"**{peak:.1f} MB**",
             f"{median([r.rss_mb for r in full]):.1f} MB", ms(median([r.seconds for r in full])),
             f"{median([r.cpu_s for r in full]):.2f} s"],
            ["`platctl --version` (interpreter, typer)", f"{version.rss_mb:.0f} MB", "",
             ms(version.seconds), f"{version.cpu_s:.2f} s"]]
    for name, r in sorted(alone.items(), key=lambda kv: -kv[1].rss_mb):
        rows.append([f"`validate --only {name}`", f"{r.rss_mb:.0f} MB", "", ms(r.seconds),
                     f"{r.cpu_s:.2f} s"])
    table = markdown(["run", "peak RSS (max)", "median", "wall", "CPU"], rows)
    return table, {"peak_mb": peak}
