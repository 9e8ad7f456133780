"""What a pass leaves behind: the exec receipt `boot` hands the runtime, and --ready-file.

The runtime inherits platctl's environment plus three keys, so it can log what it was
validated against:
- PLATCTL_PROFILE: the profile reference (a name, or an absolute path);
- PLATCTL_PROFILE_SHA256: sha256 of the resolved profile as canonical JSON (sorted keys, no
  spaces), secrets masked: a changed URL, bucket or policy changes it, a rotated password
  does not, and the digest cannot be used to test guesses of a secret;
- PLATCTL_REPORT: the JSON report of the passing run, written 0600 before the exec.

The report goes to $PLATCTL_REPORT when the operator set it, else to a directory only this
user can enter: $XDG_RUNTIME_DIR/platctl, else $TMPDIR/platctl-UID (e.g. /tmp/platctl-1000),
as report-PID.json (PID: the runtime's own, since exec keeps it); reports of runtimes that
are gone are removed there. Every file is written to a temporary name and renamed: a reader
never sees half a document.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from platctl.result import Report

REPORT_MODE = 0o600
READY_MODE = 0o644  # secret-free; a probe may run as another user


class ReceiptError(Exception):
    """A receipt or ready file the operator asked for cannot be written (exit 2)."""


def profile_sha256(profile) -> str:  # noqa: ANN001
    """Digest of the resolved, secret-free profile (what `profile show` prints, as JSON)."""
    doc = profile.model_dump(mode="json")  # secret types serialize masked
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def profile_ref(ref: str | None, env: Mapping[str, str], cwd: Path) -> str:
    """The reference the profile was loaded by, so the runtime's own `platctl validate`
    (same environment) would load the same one: a name as is, a path made absolute."""
    from platctl.profiles.loader import is_path

    ref = ref if ref is not None else (env.get("PLATCTL_PROFILE") or "vm")
    return os.path.normpath(os.path.join(cwd, ref)) if is_path(ref) else ref


def exec_env(env: Mapping[str, str], profile, ref: str,  # noqa: ANN001
             report_path: str | None) -> dict:
    out = dict(env)
    out["PLATCTL_PROFILE"] = ref
    out["PLATCTL_PROFILE_SHA256"] = profile_sha256(profile)
    if report_path:
        out["PLATCTL_REPORT"] = report_path
    else:
        out.pop("PLATCTL_REPORT", None)  # never point the runtime at a stale report
    return out


def write_report(report: Report, env: Mapping[str, str], pid: int) -> Path:
    """Write the report (0600); ReceiptError when it cannot be."""
    chosen = env.get("PLATCTL_REPORT")
    if chosen:
        path = Path(chosen)
    else:
        directory = _private_dir(env)
        _prune(directory)
        path = directory / f"report-{pid}.json"
    _atomic_write(path, report.to_json() + "\n", REPORT_MODE, "PLATCTL_REPORT")
    return path.absolute()


def explicit_report_path(env: Mapping[str, str]) -> bool:
    return bool(env.get("PLATCTL_REPORT"))


def clear_ready_file(path: str | None) -> None:
    """Remove a ready file left by an earlier run (a restarted container keeps its volumes):
    only this run's pass may create it. Refuses a path whose directory does not exist, before
    any check runs rather than after they all passed."""
    if not path:
        return
    p = Path(path)
    try:
        usable = p.parent.is_dir()
    except OSError as exc:  # ENAMETOOLONG, EACCES on the way: is_dir() raises, not False
        raise ReceiptError(f"--ready-file {path}: unusable path ({exc.strerror})") from None
    if not usable:
        raise ReceiptError(f"--ready-file {path}: directory {p.parent} does not exist")
    try:
        p.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ReceiptError(f"--ready-file {path}: cannot remove the old one"
                           f" ({exc.strerror})") from None


def write_ready_file(path: str, profile) -> None:  # noqa: ANN001
    doc = {"ok": True, "profile": profile.name, "profile_sha256": profile_sha256(profile)}
    _atomic_write(Path(path), json.dumps(doc) + "\n", READY_MODE, "--ready-file")


def _private_dir(env: Mapping[str, str]) -> Path:
    runtime_dir = env.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime_dir) and os.path.isdir(runtime_dir):
        d = Path(runtime_dir) / "platctl"
    else:
        base = env.get("TMPDIR") or tempfile.gettempdir()
        d = Path(base) / f"platctl-{os.getuid()}"
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ReceiptError(f"cannot create {d} for the report ({exc.strerror})") from None
    st = os.lstat(d)  # a symlink or another user's directory in /tmp is somebody's trap
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ReceiptError(f"{d} is not a private directory of this user (mode 0700);"
                           " remove it, or set PLATCTL_REPORT to a path for the report")
    return d


def _prune(directory: Path) -> None:
    """Remove the reports of runtimes that are gone: restarts under systemd or a shell loop
    would otherwise pile one up per boot."""
    for f in directory.glob("report-*.json"):
        try:
            os.kill(int(f.stem.partition("-")[2]), 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, OSError):  # not ours to judge (another PID namespace, a name)
            pass


def _atomic_write(path: Path, text: str, mode: int, what: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise ReceiptError(f"{what}: cannot write {path} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp makes it 0600; a ready file is for probes
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ReceiptError(f"{what}: cannot write {path} ({exc.strerror})") from None
