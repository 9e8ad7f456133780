"""Find, read and validate a profile. Every failure becomes one ProfileError naming the file,
the line where known, and the key; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import os
import select
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1 << 20  # a profile is a page of YAML; a megabyte means something is wrong
MAX_NODES = 20_000  # refuses YAML alias bombs before they expand
READ_DEADLINE = 5.0  # a pipe (`-p <(sops -d x.yaml)`) gets this long to deliver the profile


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
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a name longer than the OS allows cannot be a profile here
            continue
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
        data = _read_capped(path)
    except FileNotFoundError:
        raise ProfileError("file not found", name) from None
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror or exc}", name) from None
    except ValueError:  # os.open refuses it before the OS sees it
        raise ProfileError("not a usable path (it contains a NUL byte)", repr(name)) from None
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


def _read_capped(path: Path) -> bytes:
    """At most MAX_BYTES + 1 bytes of `path`. Opened non-blocking, so a FIFO without a writer
    reads as empty instead of blocking in open(); a pipe or terminal that stays silent ends
    the wait after READ_DEADLINE instead of hanging the CLI."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise ProfileError("is a directory, not a profile file", str(path))
        data, deadline = bytearray(), time.monotonic() + READ_DEADLINE
        while len(data) <= MAX_BYTES:
            try:
                chunk = os.read(fd, MAX_BYTES + 1 - len(data))
            except BlockingIOError:  # a writer is attached but has sent nothing yet
                poll = select.poll()
                poll.register(fd, select.POLLIN)
                if not poll.poll(max(0.0, deadline - time.monotonic()) * 1000):
                    raise ProfileError(f"nothing to read within {READ_DEADLINE:g} s (a pipe or"
                                       " terminal that never sends a profile?)", str(path))
                continue
            if not chunk:
                break
            data += chunk
        return bytes(data)
    finally:
        os.close(fd)


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


