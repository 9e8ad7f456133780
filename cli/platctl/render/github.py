"""GitHub Actions: workflow commands for annotations, Markdown for $GITHUB_STEP_SUMMARY."""
from __future__ import annotations

from platctl.render.summary import SYMBOL, verdict
from platctl.result import Report, Status


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for c in report.checks:
        if c.status in (Status.FAIL, Status.WARN):
            kind = "error" if c.status is Status.FAIL else "warning"
            body = c.message + (f"\n{c.hint}" if c.hint else "")
            lines.append(f"::{kind} title={_prop('platctl ' + c.id)}::{_data(body)}")
    lines.append(("::notice title=platctl::" if report.ok else "::error title=platctl::")
                 + _data(verdict(report)))
    return "\n".join(lines) + "\n"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_summary_markdown(report: Report) -> str:
    out = [f"## platctl: {'✅' if report.ok else '❌'} profile `{report.profile}`", "",
           verdict(report), "", "| | check | result | hint |", "|---|---|---|---|"]
    for c in report.checks:
        out.append(f"| {SYMBOL[c.status]} {c.status.value} | `{c.id}` | {_cell(c.message)} |"
                   f" {_cell(c.hint)} |")
    return "\n".join(out) + "\n"
