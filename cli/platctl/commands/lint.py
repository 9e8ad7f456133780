"""`platctl profile lint PATH`: findings of profiles/lint.py, printed.

Exit codes: 0 when the profile loads (warnings and notes allowed: they are advice, and a
profile whose secrets come from the deployment's environment must lint clean without them);
2 when it has an error (the same class of failure `validate` reports as a profile error).
With errors, the findings still go to stdout and the first error goes to stderr as the usual
one-line `profile error`, so scripts and people see the same thing as with `validate`.
"""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from platctl import io
from platctl.exitcodes import ExitCode


def lint_path(ref: str) -> Path:
    """A path as given; a bare name that is no file here but a known profile is looked up
    like `-p NAME`; anything else is read as a file (and its error names it)."""
    from platctl.profiles.loader import ProfileError, is_path, resolve

    if is_path(ref) or _exists(ref):
        return Path(ref)
    try:
        return resolve(ref, io.streams.env, Path.cwd())
    except ProfileError:
        return Path(f"./{ref}")


def _exists(ref: str) -> bool:
    try:  # Path.exists() raises on a name too long, found by test_fuzz_inputs
        return Path(ref).exists()
    except OSError:
        return False


def lint_profile(ref: str, fmt: str = "table", today: date | None = None) -> ExitCode:
    from platctl.profiles.lint import as_dict, lint
    from platctl.profiles.loader import ProfileError
    from platctl.profiles.source import build, read, secrets
    from platctl.secrets import scrub

    path = lint_path(ref)
    source = read(path, io.streams.env)
    profile, _ = build(source)
    if profile is not None:
        io.streams.secrets |= secrets(profile)
    findings = lint(source, today or date.today())
    errors = [f for f in findings if f.severity == "error"]
    name = source.data.get("name", path.stem)
    out = io.streams.out
    if fmt == "json":
        doc = {"file": str(path), "profile": str(name), "valid": not errors,
               "findings": [as_dict(f) for f in findings]}
        out.write(scrub(json.dumps(doc, indent=2), io.streams.secrets) + "\n")
    else:
        for f in findings:
            where = f"{path}:{f.line}" if f.line else str(path)
            text = f"{where}: {f.severity}: {f.key + ': ' if f.key else ''}{f.message}\n"
            if f.fix:
                text += f"    fix: {f.fix}\n"
            out.write(scrub(text, io.streams.secrets))
        counts = ", ".join(f"{n} {s}{'' if n == 1 else 's'}" for s in ("error", "warning", "note")
                           if (n := sum(f.severity == s for f in findings)))
        verdict = "is not a valid profile" if errors else "is a valid profile"
        out.write(f"{'error' if errors else 'ok'}: {path} {verdict} ({name})"
                  f"{': ' + counts if counts else ''}\n")
    out.flush()
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more; see the lint report)" if len(errors) > 1 else ""
        raise ProfileError(first.message + more, str(path), first.line, first.key)
    return ExitCode.OK
