"""`platctl profile diff A B`: per service, what changes between two profiles.

Each profile is read as written and as resolved in this environment (profiles/source.py), so
`profile diff vm option-c-phase1` works on a laptop without the Phase 1 secrets: a field whose
variable is unset shows the `${...}` it comes from and "unset here" instead of failing. Next
to each field: where it comes from (the template) when that differs, and, for endpoints,
whether TLS is used and a password is present. Secret values never appear: secrets show only
as present / absent / unset here, and as "differs" when both are present and not equal
(compared by digest).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, get_args
from urllib.parse import urlsplit

from platctl import io
from platctl.exitcodes import ExitCode

UNSET = "(unset here)"


@dataclass(frozen=True)
class Row:
    section: str
    key: str  # dotted field, or field[aspect] for a derived aspect
    a: str
    b: str


@dataclass
class _Side:
    ref: str
    source: Any
    profile: Any

    @property
    def name(self) -> str:
        return self.profile.name


def _side(ref: str) -> _Side:
    from pathlib import Path

    from platctl.profiles.loader import ProfileError, resolve
    from platctl.profiles.source import build, read, secrets

    path = resolve(ref, io.streams.env, Path.cwd())
    try:  # shown as the operator would type it; lexically: resolve() raises on a symlink loop
        path = path.relative_to(Path.cwd()) if path.is_absolute() else path
    except ValueError:
        pass
    source = read(path, io.streams.env)
    profile, errors = build(source)
    if profile is None:
        loc, line, message = errors[0]
        raise ProfileError(message, str(path), line, ".".join(map(str, loc)) or None)
    io.streams.secrets |= secrets(profile)
    return _Side(ref, source, profile)


def _cell(side: _Side, section: str, field: str) -> tuple[str, str, str | None]:
    """(what the field is here, where it comes from: its template, "(literal)" or
    "(default)", and a digest when it is a secret)."""
    from pydantic import SecretStr

    from platctl.profiles.source import compact

    path = (section, field)
    leaf = side.source.leaves.get(path)
    written = leaf is not None or any(p[:2] == path for p in side.source.leaves)
    origin = (compact(leaf.template) if leaf is not None and leaf.template else
              "(literal)" if written else "(default)")
    if side.source.unresolved(path) is not None:
        return UNSET, origin, None
    value = getattr(getattr(side.profile, section), field)
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return "present", origin, hashlib.sha256(secret.encode()).hexdigest()
    if value is None and "Secret" in repr(type(getattr(side.profile, section))
                                          .model_fields[field].annotation):
        return "absent", origin, None
    return _text(value), origin, None


def _text(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if hasattr(value, "check") and hasattr(value, "until"):  # a waiver
        return f"{value.check} until {value.until.isoformat()}"
    return str(value)  # SecretURL: the URL with its password masked


def _endpoint_aspects(sides: tuple[_Side, _Side], section: str, field: str) -> list[Row]:
    """TLS and password of an endpoint URL, as each profile has them (or requires them)."""
    def aspects(side: _Side) -> tuple[str, str, str | None]:
        policy = side.profile.policy
        if side.source.unresolved((section, field)) is not None:
            leaf = side.source.leaves[(section, field)]
            literal = leaf.template.split("${")[0]
            tls = ("yes" if literal.startswith(("https:", "rediss:")) else
                   "no" if "://" in literal else
                   "required by policy" if policy.require_tls else UNSET)
            cred = ("required by policy" if policy.require_credentials and section == "redis"
                    else UNSET)
            return tls, cred, None
        url = getattr(getattr(side.profile, section), field)
        tls = "yes" if urlsplit(url.get_secret_value()).scheme in ("https", "rediss") else "no"
        password = url.password
        digest = hashlib.sha256(password.encode()).hexdigest() if password else None
        return tls, "present" if password else "absent", digest

    (tls_a, pw_a, dig_a), (tls_b, pw_b, dig_b) = aspects(sides[0]), aspects(sides[1])
    rows = [Row(section, f"{section}.{field}[tls]", tls_a, tls_b)] if tls_a != tls_b else []
    if pw_a != pw_b and {pw_a, pw_b} & {"present", "required by policy"}:
        rows.append(Row(section, f"{section}.{field}[password]", pw_a, pw_b))
    elif dig_a != dig_b:
        rows.append(Row(section, f"{section}.{field}[password]", pw_a, "present (differs)"))
    return rows


def changes(a: _Side, b: _Side) -> tuple[list[Row], list[str]]:
    """(the rows that differ, the sections that do not differ at all)."""
    from platctl.profiles.model import Profile
    from platctl.secrets import SecretURL

    rows: list[Row] = []
    same: list[str] = []
    if a.profile.description != b.profile.description:
        rows.append(Row("description", "description", a.profile.description or "(none)",
                        b.profile.description or "(none)"))
    for section, info in Profile.model_fields.items():
        fields = getattr(info.annotation, "model_fields", None)
        if fields is None:
            if section == "waivers" and (wa := _text(a.profile.waivers)) != \
                    (wb := _text(b.profile.waivers)):
                rows.append(Row(section, section, wa, wb))
            continue
        before = len(rows)
        for field, finfo in fields.items():
            (va, ta, da), (vb, tb, db) = _cell(a, section, field), _cell(b, section, field)
            key = f"{section}.{field}"
            if va != vb:
                rows.append(Row(section, key, va, vb))
            elif da != db:
                rows.append(Row(section, key, va, "present (secret differs)"))
            if ta != tb and "${" in ta + tb:  # literal vs default: the value row says it
                rows.append(Row(section, f"{key}[from]", ta, tb))
            if finfo.annotation is SecretURL or SecretURL in get_args(finfo.annotation):
                rows += _endpoint_aspects((a, b), section, field)
        if len(rows) == before:
            same.append(section)
    return rows, same


def diff_profiles(ref_a: str, ref_b: str, fmt: str = "table") -> ExitCode:
    from platctl.secrets import scrub

    a, b = _side(ref_a), _side(ref_b)
    rows, same = changes(a, b)
    out = io.streams.out
    if fmt == "json":
        doc = {"a": {"profile": a.name, "file": a.source.file},
               "b": {"profile": b.name, "file": b.source.file},
               "changes": [asdict(r) for r in rows], "unchanged": same}
        out.write(scrub(json.dumps(doc, indent=2), io.streams.secrets) + "\n")
        return ExitCode.OK
    out.write(scrub(render(a, b, rows, same), io.streams.secrets))
    return ExitCode.OK


def render(a: _Side, b: _Side, rows: list[Row], same: list[str]) -> str:
    width = max((len(r.key) for r in rows), default=0) + 2
    lines = [f"profile diff: {a.name} → {b.name}",
             f"  {a.name}: {a.source.file}", f"  {b.name}: {b.source.file}",
             "values as resolved in this environment; [from]: the ${...} a value comes from;",
             f"{UNSET}: a variable the profile needs is not set; secrets only as present /"
             " absent / differs", ""]
    section = None
    for r in rows:
        if r.section != section:
            lines += ["", r.section] if section is not None else [r.section]
            section = r.section
        lines.append(f"  {r.key + ':':<{width}} {r.a}  →  {r.b}")
    sections = len({r.section for r in rows})
    lines += ["", f"{len(rows)} difference{'s' if len(rows) != 1 else ''} in {sections}"
                  f" section{'s' if sections != 1 else ''}"
              + (f"; the same in both: {', '.join(same)}" if same else "")]
    return "\n".join(lines) + "\n"
