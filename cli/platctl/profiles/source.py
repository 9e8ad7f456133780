"""A profile as written *and* as resolved, for `profile lint` and `profile diff`.

Both must work where the deployment's variables are not set (a laptop, a CI job without
secrets): `option-c-phase1` is nothing but `${VAR:?...}`. So a field whose variable is unset
is not an error here: it is recorded as missing (naming the variables) and gets a stand-in
value that satisfies the schema and the policy, so the rest of the profile can still be
validated. Stand-ins never reach any output: every view shows "unset" for such a field.

The file is read once (it may be a pipe) and parsed with every `$` escaped, which gives the
templates exactly as written, with the loader's line numbers and its alias-bomb and depth
limits; each template is then expanded on its own.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platctl.profiles.envsubst import SubstitutionError, expand
from platctl.profiles.loader import ProfileError, read_text

STANDIN = "platctl-unset"  # what an unset variable reads as while validating the rest
_UNSET = re.compile(r"environment variable ([A-Za-z_][A-Za-z0-9_]*) is (?:not set|empty)")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_MESSAGE = re.compile(r"(\$\{[A-Za-z_][A-Za-z0-9_]*:?\?)[^${}]*\}")  # `${X:?message}`
_URL_STANDIN = {"redis": f"rediss://platctl:{STANDIN}@{STANDIN}.invalid:6380/0"}
_HTTP_STANDIN = f"https://platctl:{STANDIN}@{STANDIN}.invalid"


@dataclass(frozen=True)
class Leaf:
    """One scalar of the file: where it is, what was written, and what it resolved to."""
    path: tuple[Any, ...]
    line: int | None
    raw: Any  # as written; a template keeps its `${...}`
    value: Any  # resolved in the given environment (a stand-in where `missing`)
    missing: tuple[str, ...] = ()  # required variables unset in the environment

    @property
    def key(self) -> str:
        return ".".join(map(str, self.path))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_VARIABLE.findall(self.template or "")))

    @property
    def template(self) -> str | None:
        return self.raw if isinstance(self.raw, str) and "${" in self.raw else None


@dataclass
class Source:
    file: str
    text: str
    env: Mapping[str, str]
    leaves: dict[tuple[Any, ...], Leaf] = field(default_factory=dict)
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # resolved, stand-ins included

    @property
    def missing(self) -> dict[str, list[Leaf]]:
        """Unset variable → the fields that need it."""
        out: dict[str, list[Leaf]] = {}
        for leaf in self.leaves.values():
            for name in leaf.missing:
                out.setdefault(name, []).append(leaf)
        return out

    def unresolved(self, loc: tuple[Any, ...]) -> Leaf | None:
        """The leaf at or under `loc` that holds a stand-in, if any."""
        for path, leaf in self.leaves.items():
            if leaf.missing and path[:len(loc)] == loc:
                return leaf
        return None


def secrets(profile) -> frozenset[str]:
    """The profile's secrets for the scrubber, without the stand-ins (or their Basic-auth
    forms): masking "platctl-unset" would only garble messages."""
    import base64
    import binascii

    def standin(s: str) -> bool:
        try:
            s = s + " " + base64.b64decode(s, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            pass
        return STANDIN in s
    return frozenset(s for s in profile.secret_values() if not standin(s))


def compact(template: str) -> str:
    """A template with the `:?message` of its required variables shortened to `:?…`."""
    return _MESSAGE.sub(r"\1…}", template)


def read(path: Path, env: Mapping[str, str]) -> Source:
    from platctl.profiles.document import parse

    file = str(path)
    text = read_text(path)
    raw, lines = parse(text.replace("$", "$$"), file, {})  # `$$` reads back as `$`
    if not isinstance(raw, dict):
        raise ProfileError("the top level must be a mapping of sections", file, 1)
    source = Source(file, text, env, lines=lines)
    source.data = _resolve(raw, (), source, env)
    source.data.setdefault("name", path.stem)
    return source


def _resolve(node: Any, path: tuple[Any, ...], source: Source, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _resolve(v, (*path, k), source, env) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, (*path, i), source, env) for i, v in enumerate(node)]
    value, missing = node, ()
    if isinstance(node, str) and "$" in node:
        value, missing = expand_leniently(node, path, source.file, source.lines, env)
    source.leaves[path] = Leaf(path, source.lines.get(path), node, value, missing)
    return value


def expand_leniently(template: str, path: tuple[Any, ...], file: str, lines: dict,
                     env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """Expand like the loader; each variable that the loader would refuse as unset is
    recorded and stood in for (a whole-field URL by a URL of the right kind, a port by 1)."""
    forced: dict[str, str] = {}
    while True:
        try:
            value = expand(template, {**env, **forced})
            break
        except SubstitutionError as exc:
            m = _UNSET.search(str(exc))
            if not m or m.group(1) in forced or len(forced) > 64:
                raise ProfileError(str(exc), file, lines.get(path),
                                   ".".join(map(str, path)) or None) from None
            forced[m.group(1)] = "1" if m.group(1).endswith("PORT") else STANDIN
    if forced and value == STANDIN and path[-1:] in (("url",), ("endpoint",)):
        value = _URL_STANDIN.get(str(path[0]), _HTTP_STANDIN)
    return value, tuple(forced)


def build(source: Source):
    """(the Profile or None, every schema error as (key path, line, message)). A field that
    holds a stand-in and still fails (a bool read from an unset variable) cannot be judged
    here: it is left to its default so that the rest of the profile can be."""
    from pydantic import ValidationError

    from platctl.profiles.model import Profile
    from platctl.profiles.validate import line_of

    data, errors = source.data, []
    for _ in range(4):
        try:
            return Profile.model_validate(data), errors
        except ValidationError as exc:
            found = [(tuple(e["loc"]), e) for e in exc.errors(include_url=False,
                                                                include_input=False)]
        standins = [loc for loc, _ in found if source.unresolved(loc) is not None]
        for loc, err in found:
            if loc not in standins:
                message = {"extra_forbidden": "unknown key", "missing": "required key is missing"
                           }.get(err["type"], err["msg"]).removeprefix("Value error, ")
                errors.append((loc, line_of(loc, source.lines), message))
        if len(standins) < len(found) or not standins:
            return None, errors
        data = _without(data, standins)
    return None, errors


def _without(data: Any, locs: list[tuple[Any, ...]]) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, [loc[1:] for loc in locs if loc[:1] == (k,)])
                for k, v in data.items() if (k,) not in locs}
    return data
