"""`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `$$`.

Compose-style semantics: `:-`/`:?` treat an empty value like an unset one, `-`/`?` only an
unset one. Defaults and messages may nest further substitutions. A plain `${VAR}` that is
unset is an error: a profile that silently reads "" for a password hides a deployment bug.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_NESTING = 16  # `${A:-${B:-...}}` levels; each one recurses, so junk must not go deep


class SubstitutionError(ValueError):
    pass


def expand(text: str, env: Mapping[str, str], depth: int = 0) -> str:
    if depth > MAX_NESTING:
        raise SubstitutionError(f"substitutions nested more than {MAX_NESTING} deep")
    out, i = [], 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$$", j):
            out.append("$")
            i = j + 2
        elif text.startswith("${", j):
            end = _closing_brace(text, j + 2)
            out.append(_one(text[j + 2:end], env, depth))
            i = end + 1
        else:  # a lone `$` is literal (passwords may contain one)
            out.append("$")
            i = j + 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for k in range(start, len(text)):
        if text.startswith("${", k):
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    raise SubstitutionError(f"unclosed '${{' in {text[start - 2:start + 30]!r}")


def _one(expr: str, env: Mapping[str, str], depth: int) -> str:
    m = _NAME.match(expr)
    if not m:
        raise SubstitutionError(f"bad variable name in '${{{expr}}}'")
    name, rest = m.group(), expr[m.end():]
    value = env.get(name)
    if rest == "":
        if value is None:
            raise SubstitutionError(f"environment variable {name} is not set")
        return value
    for op, empty_counts in ((":-", True), ("-", False), (":?", True), ("?", False)):
        if rest.startswith(op):
            arg = rest[len(op):]
            missing = value is None or (empty_counts and value == "")
            if not missing:
                return value  # type: ignore[return-value]
            if op.endswith("-"):
                return expand(arg, env, depth + 1)
            detail = expand(arg, env, depth + 1) if arg else "required"
            state = "is not set" if value is None else "is empty"
            raise SubstitutionError(f"environment variable {name} {state}: {detail}")
    raise SubstitutionError(f"unsupported substitution '${{{expr}}}'"
                            " (use ${VAR}, ${VAR:-default} or ${VAR:?message})")
