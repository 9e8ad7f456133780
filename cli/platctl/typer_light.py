"""Option coercion without pydantic for the two kinds of option every command has.

typer 0.29 coerces each option's value through a pydantic TypeAdapter, built on first use:
even `--help` left unset (a bool flag whose value is None) and `-o table` (an Enum given one of
its values). Importing pydantic and building the adapters costs about 100 ms on every command,
which `contract`, `profile list` and `--help` otherwise never pay (no profile model there).
Bool flags given a bool and Enum options are coerced here with typer's own choice function;
anything else, and any value these cannot take, goes to typer's adapter exactly as before, so
results and error messages stay typer's. tests/test_startup.py notices when a typer upgrade
makes this a no-op (pydantic imported again) and that messages stay the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

_installed: list[bool] = []


def install() -> None:
    if _installed:
        return
    _installed.append(True)
    try:  # private typer modules: if they move, typer's own coercion simply stays in place
        from typer import _coercion, core
        from typer._param_types import coerce_cli_choice
    except ImportError:
        return
    typer_build = _coercion.build_runtime_param

    @dataclass(frozen=True)
    class LightParam(_coercion.RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is bool:
                if isinstance(value, bool):
                    return value
            else:
                try:
                    return coerce_cli_choice(value, choices=tuple(self.annotation),
                                             case_sensitive=self.parameter_info.case_sensitive,
                                             ctx=ctx)
                except ValueError:
                    pass  # typer's adapter says what is wrong, in typer's words
            return typer_build(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    def build(descriptor: Any) -> Any:
        kind = descriptor.annotation
        light = (descriptor.file_annotation is None and descriptor.parameter_info.parser is None
                 and (kind is bool or (isinstance(kind, type) and issubclass(kind, Enum))))
        if light:
            try:
                return LightParam(annotation=kind, parameter_info=descriptor.parameter_info)
            except Exception:  # noqa: BLE001 - a typer whose RuntimeParam changed: its own
                pass
        return typer_build(descriptor)

    core.build_runtime_param = build
