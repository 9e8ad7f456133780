"""pydantic validation of parsed profile data, errors mapped back to file lines."""
from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from platctl.profiles.loader import ProfileError
from platctl.profiles.model import Profile

_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def validate(data: dict[str, Any], lines: dict[tuple[Any, ...], int], file: str) -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(err["loc"])
        message = _MESSAGES.get(err["type"], err["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        more = exc.error_count() - 1
        if more:
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ProfileError(message, file, line_of(loc, lines),
                           ".".join(str(p) for p in loc) or None) from None


def line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    """The line of `loc`, else of its nearest ancestor present in the file."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None
