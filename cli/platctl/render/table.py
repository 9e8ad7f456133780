"""The human report: a Rich table, plain (no colour, no control codes) when asked."""
from __future__ import annotations

from io import StringIO

from platctl.render.summary import SYMBOL, verdict, violation
from platctl.result import Report, Status

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def render_table(report: Report, *, color: bool = False, width: int = 100) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = StringIO()
    console = Console(file=buf, width=max(width, 40), color_system="standard" if color else None,
                      force_terminal=color, no_color=not color, highlight=False, soft_wrap=False,
                      emoji=False, markup=False)
    table = Table(show_edge=False, expand=False, pad_edge=False, box=None, show_lines=False,
                  header_style="bold" if color else "")
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True, overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("result", overflow="fold", ratio=1)
    plane = None
    for c in report.checks:
        if c.plane != plane:
            plane = c.plane
            p = next((p for p in report.planes if p.name == plane), None)
            label = f"{plane} plane" + (f" ({p.status.value}, {p.duration_ms:.0f} ms)" if p else "")
            table.add_row("", Text(label, style="bold" if color else ""), "", "")
        body = Text(c.message)
        if c.hint and c.status in (Status.FAIL, Status.WARN):
            body.append(f"\n→ {c.hint}", style="dim" if color else "")
        mark = f"{SYMBOL[c.status]} {c.status.value}"
        table.add_row(Text(mark, style=STYLE[c.status] if color else ""), c.id,
                      f"{c.duration_ms:.0f}", body)
    console.print(table)
    console.print()
    for c in report.failed[:1]:
        console.print(Text(violation(c), style="red" if color else ""))
    console.print(Text(verdict(report), style=("bold green" if report.ok else "bold red")
                       if color else ""))
    return buf.getvalue()
