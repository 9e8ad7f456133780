"""Find, read and validate a profile. Every failure becomes one ProfileError naming the file,
the line where known, and the key; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_BYTES = 1 << 20  # a profile is a page of YAML; a megabyte means something is wrong
MAX_NODES = 20_000  # refuses YAML alias bombs before they expand


@dataclass
class ProfileError(Exception):
    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file or "profile"
        if self.line:
            where += f":{self.line}"
        return f"{where}: {self.key + ': ' if self.key else ''}{self.message}"


def builtin_dir() -> Path:
    """Built-in profiles: shipped inside the wheel, or the repo's profiles/ in a checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_builtin_profiles"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "profiles"


def search_dirs(env: Mapping[str, str], cwd: Path) -> list[Path]:
    dirs = [Path(env["PLATCTL_PROFILE_DIR"])] if env.get("PLATCTL_PROFILE_DIR") else []
    return [*dirs, cwd / "profiles", builtin_dir()]


def is_path(ref: str) -> bool:
    return "/" in ref or ref.endswith((".yaml", ".yml"))


def resolve(ref: str, env: Mapping[str, str], cwd: Path) -> Path:
    if is_path(ref):
        return Path(ref)
    if not ref or ref.startswith(".") or "\x00" in ref:
        raise ProfileError(f"invalid profile name {ref!r}")
    for d in search_dirs(env, cwd):
        candidate = d / f"{ref}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(available(env, cwd))
    raise ProfileError(f"unknown profile {ref!r}; known profiles: {', '.join(known) or 'none'}"
                       " (a path must contain '/' or end in .yaml)")


def available(env: Mapping[str, str], cwd: Path) -> dict[str, Path]:
    """Profile name → file, the first directory in resolution order winning."""
    found: dict[str, Path] = {}
    for d in search_dirs(env, cwd):
        try:
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
        except OSError:
            continue
    return found


def read_text(path: Path) -> str:
    name = str(path)
    try:
        if path.is_dir():
            raise ProfileError("is a directory, not a profile file", name)
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except ProfileError:
        raise
    except FileNotFoundError:
        raise ProfileError("file not found", name) from None
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror or exc}", name) from None
    if len(data) > MAX_BYTES:
        raise ProfileError(f"larger than {MAX_BYTES // 1024} KiB; not a profile", name)
    if b"\x00" in data:
        raise ProfileError("binary data, not YAML", name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ProfileError("not UTF-8 text", name, line) from None
    if not text.strip() or all(ln.strip().startswith("#") or not ln.strip()
                                for ln in text.splitlines()):
        raise ProfileError("empty profile", name)
    return text


def load(ref: str, env: Mapping[str, str] | None = None, cwd: Path | None = None):
    """Resolve `ref` (name or path) and return a validated Profile."""
    env = os.environ if env is None else env
    path = resolve(ref, env, cwd or Path.cwd())
    return load_path(path, env)


def load_path(path: Path, env: Mapping[str, str]):
    from platctl.profiles.document import parse
    from platctl.profiles.policy import enforce
    from platctl.profiles.validate import validate

    text = read_text(path)
    data, lines = parse(text, str(path), env)
    if not isinstance(data, dict):
        raise ProfileError("the top level must be a mapping of sections", str(path), 1)
    data.setdefault("name", path.stem)
    profile = validate(data, lines, str(path))
    enforce(profile, lines, str(path))
    return profile


