"""YAML → plain data, with environment substitution and a map of key paths to line numbers.

We compose the node graph ourselves (instead of yaml.safe_load) to keep line numbers for
error messages, to substitute `${...}` in scalar values only (never in keys), to reject
duplicate keys, and to refuse alias bombs before they expand.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from platctl.profiles.envsubst import SubstitutionError, expand
from platctl.profiles.loader import MAX_NODES, ProfileError

Lines = dict[tuple[Any, ...], int]
MAX_DEPTH = 64  # a profile nests 3 levels; deeper means junk, and PyYAML recurses per level


class BoundedLoader(yaml.SafeLoader):
    """Refuses nesting past MAX_DEPTH while composing: PyYAML's composer recurses once per
    level, so `[[[[...` would otherwise end in a RecursionError (exit 3), not a message."""
    depth = 0

    def compose_node(self, parent, index):  # noqa: ANN001, ANN201
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:  # parse() adds the file name
                raise ProfileError(f"nested too deeply (more than {MAX_DEPTH} levels)", None,
                                   self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Constructor(yaml.SafeLoader):
    """Remembers the node being built: a scalar (a leaf) that fails is the last one entered."""
    last: yaml.Node | None = None

    def construct_object(self, node, deep=False):  # noqa: ANN001, ANN201
        self.last = node
        return super().construct_object(node, deep)


def parse(text: str, file: str, env: Mapping[str, str]) -> tuple[Any, Lines]:
    try:
        loader = BoundedLoader(text)
    except yaml.reader.ReaderError as exc:  # the reader refuses control characters up front
        what = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ProfileError(f"invalid YAML: character {what} is not allowed", file,
                           text.count("\n", 0, max(exc.position, 0)) + 1) from None
    try:
        node = loader.get_single_node()
    except ProfileError as exc:
        exc.file = file
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ProfileError(f"invalid YAML: {exc.problem or exc.context}", file,
                           mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"invalid YAML: {exc}", file) from None
    finally:
        loader.dispose()
    if node is None:
        raise ProfileError("empty profile", file)
    lines: Lines = {}
    _walk(node, (), lines, env, file, [0], loader)
    constructor = _Constructor("")
    try:
        data = constructor.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file,
                           mark.line + 1 if mark else None) from None
    except Exception:  # noqa: BLE001 - PyYAML's constructors raise whatever Python does on
        # a bad typed scalar: int() of 5000 digits, month 13, `!!bool maybe` (KeyError),
        # `!!timestamp x` (AttributeError). All are bad input. The value is not quoted: it
        # may be a password that happens to look like a number or a date.
        bad = constructor.last
        tag = bad.tag.replace("tag:yaml.org,2002:", "!!") if bad else "value"
        raise ProfileError(f"invalid YAML value: not a valid {tag} (quote it if it is text)",
                           file, bad.start_mark.line + 1 if bad else None) from None
    return data, lines


def _walk(node: yaml.Node, path: tuple[Any, ...], lines: Lines, env: Mapping[str, str],
          file: str, count: list[int], resolver: yaml.SafeLoader) -> None:
    count[0] += 1
    if len(path) > MAX_DEPTH:  # aliases can nest deeper than the text (`&a [*a]` is a cycle)
        raise ProfileError(f"nested too deeply (more than {MAX_DEPTH} levels; a recursive"
                           " alias?)", file, node.start_mark.line + 1)
    if count[0] > MAX_NODES:
        raise ProfileError(f"expands to more than {MAX_NODES} nodes (YAML alias bomb?)", file,
                           node.start_mark.line + 1)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is None:
                raise ProfileError("keys must be plain strings", file, key_node.start_mark.line + 1)
            if key in seen and key != "<<":
                raise ProfileError("duplicate key", file, key_node.start_mark.line + 1,
                                   ".".join(map(str, (*path, key))))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, env, file, count, resolver)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, env, file, count, resolver)
    elif isinstance(node, yaml.ScalarNode) and "$" in node.value and node.tag.endswith(":str"):
        _substitute(node, path, env, file, resolver)


def _substitute(node: yaml.ScalarNode, path: tuple[Any, ...], env: Mapping[str, str],
                file: str, resolver: yaml.SafeLoader) -> None:
    if getattr(node, "_platctl_done", False):  # an aliased node is visited more than once
        return
    try:
        value = expand(node.value, env)
    except SubstitutionError as exc:
        raise ProfileError(str(exc), file, node.start_mark.line + 1,
                           ".".join(map(str, path)) or None) from None
    node.value = value
    if node.style is None:  # plain scalar: `${PORT:-8080}` should read as the int it spells
        node.tag = resolver.resolve(yaml.ScalarNode, value, (True, False))
    node._platctl_done = True  # type: ignore[attr-defined]
