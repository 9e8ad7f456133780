"""Durations on the command line: `120`, `120s`, `2m`, `1m30s`, `500ms`, `1h`.

A bare number is seconds (like --timeout). Anything else is a usage error (Typer names
the option), never a traceback.
"""
from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = 7 * 24 * 3600.0  # a week: longer is a typo, not a deployment


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    s = text.strip().lower()
    try:
        seconds = float(s)
    except ValueError:
        pos, seconds = 0, 0.0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise DurationError(f"{text!r} is not a duration (examples: 90, 90s,"
                                " 2m, 1m30s, 500ms)") from None
    if not (0 < seconds <= MAX_SECONDS) or seconds != seconds:
        raise DurationError(f"{text!r} must be more than 0 and at most 7 days")
    return seconds
