"""Read-only commands: `contract` and `profile list|show|lint|diff`. None prints a secret:
profiles are dumped through their models, whose secret types serialize masked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from platctl import contract, io
from platctl.exitcodes import ExitCode


def show_contract(fmt: str) -> ExitCode:
    out = io.streams.out
    if fmt == "json":
        doc = [{"service": s.name, "plane": s.plane, "purpose": s.purpose,
                "env_keys": list(s.env_keys),
                "checks": [{"id": c.id, "summary": c.summary} for c in s.checks]}
               for s in contract.SERVICES]
        out.write(json.dumps({"planes": list(contract.PLANES), "services": doc}, indent=2) + "\n")
        return ExitCode.OK
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=io.streams.width(out), no_color=not io.streams.color(out),
                      color_system="standard" if io.streams.color(out) else None,
                      highlight=False, markup=False, emoji=False)
    table = Table(title="platform contract (every service is required)", box=None,
                  show_lines=False, pad_edge=False)
    for col in ("plane", "service", "purpose", "env keys", "checks"):
        table.add_column(col, overflow="fold")
    for s in contract.SERVICES:
        table.add_row(s.plane, s.name, s.purpose, " ".join(s.env_keys), " ".join(s.check_ids))
    console.print(table)
    return ExitCode.OK


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


def lint_profile(path: str) -> ExitCode:
    from platctl.commands.validate import load_profile

    ref = path if "/" in path or path.endswith((".yaml", ".yml")) else f"./{path}"
    profile = load_profile(ref)
    io.streams.out.write(f"ok: {path} is a valid profile ({profile.name})\n")
    return ExitCode.OK


def diff_profiles(a: str, b: str) -> ExitCode:
    from platctl.commands.validate import load_profile

    pa, pb = load_profile(a), load_profile(b)
    fa, fb = _flat(pa.model_dump(mode="json")), _flat(pb.model_dump(mode="json"))
    secret_a, secret_b = _flat(_secret_view(pa)), _flat(_secret_view(pb))
    out = io.streams.out
    changed = 0
    for key in sorted(set(fa) | set(fb)):
        if key == "name":
            continue
        if key in secret_a or key in secret_b:
            if secret_a.get(key) != secret_b.get(key):
                out.write(f"~ {key}: (secret differs)\n")
                changed += 1
            continue
        if fa.get(key) != fb.get(key):
            out.write(f"~ {key}: {fa.get(key)!r} → {fb.get(key)!r}\n")
            changed += 1
    out.write(f"{changed} field(s) differ between {pa.name} and {pb.name}\n")
    return ExitCode.OK


def _secret_view(profile) -> dict[str, Any]:
    """Secret fields only, as comparable digests (never printed)."""
    import hashlib

    from pydantic import BaseModel, SecretStr

    from platctl.secrets import SecretURL

    def walk(obj: Any) -> Any:
        if isinstance(obj, (SecretStr, SecretURL)):
            return hashlib.sha256(obj.get_secret_value().encode()).hexdigest()
        if isinstance(obj, BaseModel):
            d = {k: walk(getattr(obj, k)) for k in type(obj).model_fields}
            return {k: v for k, v in d.items() if v is not None and v != {}}
        return None
    return walk(profile)


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out
