"""What `validate --watch` shows: pure functions of the watch state (commands/watch.py), and
the small View that puts them on a terminal (Rich Live) or in a log (plain lines)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, TextIO

from platctl.render.summary import SYMBOL
from platctl.result import Report, Status
from platctl.secrets import scrub

STYLE = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else "ready" if ok else "NOT READY"


def round_line(state: Any, report: Report, at: datetime) -> str:
    counts = {s: sum(c.status is s for c in report.checks) for s in Status}
    return (f"{at:%H:%M:%S} round {state.rounds}: {_verdict(report.ok)};"
            f" {counts[Status.PASS]} pass, {counts[Status.WARN]} warn,"
            f" {counts[Status.FAIL]} fail, {counts[Status.SKIP]} skip"
            f" in {report.duration_ms:.0f} ms")


def change_line(change: Any, at: datetime) -> str:
    return (f"{at:%H:%M:%S}   {change.id}: {change.before.value} → {change.after.value}:"
            f" {change.message}")


def summary_text(state: Any, ended: str) -> str:
    head = (f"watch summary: profile {state.profile or '-'}, {state.rounds} round"
            f"{'' if state.rounds == 1 else 's'} every {state.interval:g} s, ended by {ended};"
            f" last round: {_verdict(state.ok)}")
    rows = [("check", "rounds", "failures", "flaps", "last", "latency")]
    for t in state.tracks.values():
        latency = f"{t.latency_ms:.1f} ms" if t.latency_ms is not None else "-"
        rows.append((t.id, str(t.rounds), str(t.failures), str(t.flaps),
                     t.status.value if t.status else "-", latency))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    lines = [head] + ["  ".join(v.ljust(w) if i in (0, 4) else v.rjust(w)
                                for i, (v, w) in enumerate(zip(r, widths))).rstrip()
                      for r in rows]
    return "\n".join(lines) + "\n"


def dashboard(state: Any, running: bool = False):
    from rich.table import Table
    from rich.text import Text

    status = "running…" if running else f"last round {state.round_ms:.0f} ms"
    table = Table(title=f"platctl watch · profile {state.profile or '-'} · round {state.rounds}"
                        f" every {state.interval:g} s · {_verdict(state.ok)} · {status}",
                  caption="Ctrl-C ends with a summary", box=None, pad_edge=False,
                  title_justify="left", caption_justify="left")
    for col, justify in (("", "left"), ("check", "left"), ("latency", "right"),
                         ("since", "left"), ("changes", "right"), ("flaps", "right"),
                         ("result", "left")):
        table.add_column(col, justify=justify, no_wrap=col != "result",
                         overflow="ellipsis", ratio=1 if col == "result" else None)
    for t in state.tracks.values():
        mark = f"{SYMBOL[t.status]} {t.status.value}" if t.status else "-"
        table.add_row(Text(mark, style=STYLE.get(t.status, "")), t.id,
                      f"{t.latency_ms:.0f} ms" if t.latency_ms is not None else "-",
                      f"{t.since:%H:%M:%S}" if t.since else "-", str(t.changes),
                      Text(str(t.flaps), style="bold red" if t.flaps else ""),
                      Text(t.message, no_wrap=True, overflow="ellipsis"))
    return table


class View:
    """Where the watch goes: a Rich Live dashboard on a terminal, else plain lines (or one
    JSON report per line with -o json, the lines then going to stderr)."""

    def __init__(self, state: Any, out: TextIO, err: TextIO, as_json: bool, env: Any) -> None:
        from platctl import io

        self.state, self.out, self.err, self.as_json = state, out, err, as_json
        self.secrets = io.streams.secrets  # the set the profile loader fills, by reference
        self.live = None
        if not as_json and getattr(out, "isatty", lambda: False)():
            from rich.console import Console
            from rich.live import Live

            console = Console(file=out, width=io.streams.width(out),
                              no_color=not io.streams.color(out), highlight=False,
                              markup=False, emoji=False)
            self.live = Live(dashboard(state, True), console=console, auto_refresh=False,
                             transient=False, redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> "View":
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()  # leaves the last dashboard on the screen

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(scrub(text, self.secrets))
        stream.flush()

    def running(self) -> None:
        if self.live is not None:
            self.live.update(dashboard(self.state, True), refresh=True)

    def round(self, report: Report, changes: list, at: datetime) -> None:
        if self.live is not None:
            self.live.update(dashboard(self.state), refresh=True)
            return
        lines = [round_line(self.state, report, at)]
        lines += [change_line(c, at) for c in changes]
        if self.as_json:
            self._write(self.out, report.model_dump_json(by_alias=True) + "\n")
            self._write(self.err, "\n".join(lines) + "\n")
        else:
            self._write(self.out, "\n".join(lines) + "\n")

    def summary(self, ended: str) -> None:
        if self.live is not None:
            self.live.stop()
        self._write(self.err if self.as_json else self.out,
                    "\n" + summary_text(self.state, ended))
