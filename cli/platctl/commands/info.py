"""Read-only commands: `contract` and `profile list|show|lint|diff`. None prints a secret:
profiles are dumped through their models, whose secret types serialize masked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from platctl import contract, io
from platctl.exitcodes import ExitCode


_CONTRACT_TITLE = "platform contract (every service is required)"
_CONTRACT_COLUMNS = ("plane", "service", "purpose", "env keys", "checks")


def show_contract(fmt: str) -> ExitCode:
    out = io.streams.out
    if fmt == "json":
        doc = [{"service": s.name, "plane": s.plane, "purpose": s.purpose,
                "env_keys": list(s.env_keys),
                "checks": [{"id": c.id, "summary": c.summary} for c in s.checks]}
               for s in contract.SERVICES]
        out.write(json.dumps({"planes": list(contract.PLANES), "services": doc}, indent=2) + "\n")
        return ExitCode.OK
    rows = _contract_rows()
    if not io.streams.color(out) and not getattr(out, "isatty", lambda: False)():
        # Not a terminal and no colour asked for: plain columns, without rich's import
        # (~45 ms) and render (~25 ms). Check ids are folded last, so they stay whole.
        from platctl.render.plain import render_plain_table

        out.write(render_plain_table(_CONTRACT_COLUMNS, rows, width=io.streams.width(out),
                                     title=_CONTRACT_TITLE,
                                     whole=(_CONTRACT_COLUMNS.index("checks"),)))
        return ExitCode.OK
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=io.streams.width(out), no_color=not io.streams.color(out),
                      color_system="standard" if io.streams.color(out) else None,
                      highlight=False, markup=False, emoji=False)
    table = Table(title=_CONTRACT_TITLE, box=None, show_lines=False, pad_edge=False)
    for col in _CONTRACT_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return ExitCode.OK


def _contract_rows() -> list[tuple[str, str, str, str, str]]:
    return [(s.plane, s.name, s.purpose, " ".join(s.env_keys), " ".join(s.check_ids))
            for s in contract.SERVICES]


def list_profiles() -> ExitCode:
    import yaml

    from platctl.profiles.document import BoundedLoader
    from platctl.profiles.loader import ProfileError, available, read_text

    out = io.streams.out
    for name, path in available(io.streams.env, Path.cwd()).items():
        # read_text: size-capped, and a FIFO or a directory named *.yaml cannot block it;
        # BoundedLoader: no recursion on `[[[[...`. Only text is shown: str() of an aliased
        # structure (an alias bomb) would expand it in memory.
        try:
            doc = yaml.load(read_text(path), Loader=BoundedLoader) or {}  # noqa: S506 - safe
            desc = doc.get("description", "") if isinstance(doc, dict) else ""
            desc = desc.splitlines()[0][:120] if isinstance(desc, str) and desc else ""
        except ProfileError as exc:
            desc = f"({exc.message})"
        except (yaml.YAMLError, ValueError, RecursionError):
            desc = "(unreadable)"
        out.write(f"{name:<20} {desc}\n{'':<20} {path}\n")
    return ExitCode.OK


def _masked(ref: str) -> dict[str, Any]:
    from platctl.commands.validate import load_profile

    return load_profile(ref).model_dump(mode="json")


def show_profile(ref: str) -> ExitCode:
    import yaml

    io.streams.out.write(yaml.safe_dump(_masked(ref), sort_keys=False, allow_unicode=True))
    return ExitCode.OK


def lint_profile(path: str, fmt: str = "table") -> ExitCode:
    from platctl.commands.lint import lint_profile as run

    return run(path, fmt)


def diff_profiles(a: str, b: str, fmt: str = "table") -> ExitCode:
    from platctl.commands.profile_diff import diff_profiles as run

    return run(a, b, fmt)
