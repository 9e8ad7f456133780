"""Where output goes. Commands write through `streams`, which `main` sets, so tests can
capture output in-process and the CLI decides colour and width in one place."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Streams:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    secrets: set[str] = field(default_factory=set)  # known once a profile is loaded

    def color(self, stream: TextIO) -> bool:
        if "NO_COLOR" in self.env or self.env.get("TERM") == "dumb":
            return False
        if self.env.get("FORCE_COLOR"):
            return True
        return bool(getattr(stream, "isatty", lambda: False)())

    def width(self, stream: TextIO) -> int:
        if self.env.get("COLUMNS", "").isdigit():
            return int(self.env["COLUMNS"])
        if getattr(stream, "isatty", lambda: False)():
            return shutil.get_terminal_size((100, 24)).columns
        return 100


streams = Streams()
