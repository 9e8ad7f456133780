"""`diagnose` output: pure functions of the diagnoses (a Rich table, or one JSON document).

The first failing layer of a service is marked and repeated under the table with its fix;
the TLS layer shows the certificate (subject, issuer, SANs, dates, verification) beneath its
verdict, since "which certificate is it really serving" is the 3 a.m. question.
"""
from __future__ import annotations

import json
from io import StringIO
from typing import Any

from platctl.layers import NOT_REACHED, Layer
from platctl.render.summary import SYMBOL
from platctl.result import Status

MARK = {**{s.value: SYMBOL[s] for s in Status}, NOT_REACHED: "·"}
STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim", NOT_REACHED: "dim"}


def to_data(found: list[Any], profile: str, seconds: float) -> dict[str, Any]:
    def layer(lay: Layer) -> dict[str, Any]:
        return {"layer": lay.layer, "check": lay.check, "status": lay.status,
                "duration_ms": lay.duration_ms, "message": lay.message, "hint": lay.hint,
                "reason": lay.reason, "details": lay.details}

    def service(d: Any) -> dict[str, Any]:
        first = d.first_failure
        return {"service": d.service, "endpoint": d.endpoint, "ok": d.ok,
                "first_failure": layer(first) if first else None,
                "layers": [layer(lay) for lay in d.layers]}

    from platctl.commands.diagnose import SCHEMA_ID

    return {"schema": SCHEMA_ID, "profile": profile, "ok": all(d.ok for d in found),
            "duration_ms": round(seconds * 1000, 1), "services": [service(d) for d in found]}


def render_json(found: list[Any], profile: str, seconds: float) -> str:
    return json.dumps(to_data(found, profile, seconds), indent=2, ensure_ascii=False)


def certificate_lines(details: dict[str, Any]) -> list[str]:
    cert = details.get("cert")
    if not cert:
        return []
    sans = ", ".join(cert["sans"]) or "none"
    verified = "yes" if details.get("verified") else f"no: {details.get('verify_error')}"
    return [f"{details.get('protocol')} {details.get('cipher')}",
            f"subject {cert['subject']}", f"issuer  {cert['issuer']}", f"SANs    {sans}",
            f"valid   {cert['not_before'][:16]} → {cert['not_after'][:16]} UTC"
            f" ({cert['days_left']:.0f} days left)", f"verified {verified}"]


def render_table(found: list[Any], profile: str, *, color: bool = False,
                 width: int = 100) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    buf = StringIO()
    console = Console(file=buf, width=max(width, 40), color_system="standard" if color else None,
                      force_terminal=color, no_color=not color, highlight=False,
                      soft_wrap=False, emoji=False, markup=False)
    for d in found:
        where = f" {d.endpoint}" if d.endpoint else " (no network endpoint)"
        console.print(Text(f"{d.service}{where} [profile {profile}]",
                           style="bold" if color else ""))
        table = Table(show_edge=False, box=None, pad_edge=False, header_style="bold" if color
                      else "")
        table.add_column("", no_wrap=True)
        table.add_column("layer", no_wrap=True)
        table.add_column("ms", justify="right", no_wrap=True)
        table.add_column("result", overflow="fold", ratio=1)
        first = d.first_failure
        for lay in d.layers:
            body = Text(lay.message)
            for line in certificate_lines(lay.details) if lay.layer == "tls" else ():
                body.append(f"\n{line}", style="dim" if color else "")
            if lay.hint and lay.status in ("fail", "warn"):
                body.append(f"\n→ {lay.hint}", style="dim" if color else "")
            label = lay.layer + (f" {lay.check}" if lay.check else "")
            status = "FIRST FAILURE" if lay is first else lay.status.replace("_", " ")
            table.add_row(Text(f"{MARK[lay.status]} {status}",
                               style=STYLE[lay.status] if color else ""),
                          label, f"{lay.duration_ms:.1f}", body)
        console.print(table)
        if first:
            what = first.layer + (f" ({first.check})" if first.check else "")
            console.print(Text(f"{d.service}: first failing layer: {what}: {first.message}",
                               style="red" if color else ""))
            if first.hint:
                console.print(Text(f"fix: {first.hint}"))
        else:
            console.print(Text(f"{d.service}: every layer passed", style="green" if color else ""))
        console.print()
    bad = [d.service for d in found if not d.ok]
    console.print(Text(f"FAILED: {', '.join(bad)}" if bad else "OK: every layer passed",
                       style=("bold red" if bad else "bold green") if color else ""))
    return buf.getvalue()
