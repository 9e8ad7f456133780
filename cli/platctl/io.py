"""Where output goes. Commands write through `streams`, which `main` sets, so tests can
capture output in-process and the CLI decides colour and width in one place."""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Streams:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    secrets: set[str] = field(default_factory=set)  # known once a profile is loaded
    started_at: float | None = None  # when the command was launched (monotonic)
    # Set while a report is written: the console script's first SIGINT/SIGTERM is then held
    # until the document is whole (its watchdog still ends the process if the reader is stuck).
    holding: bool = False
    held: BaseException | None = None

    @contextmanager
    def whole(self) -> Iterator[None]:
        """Write one whole document, then raise a signal that came meanwhile."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        held, self.held = self.held, None
        if held is not None:
            raise held

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
