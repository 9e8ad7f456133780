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
    def whole(self, stream: TextIO) -> Iterator[TextIO]:
        """Write one whole document to `stream` (through the writer yielded), then raise a
        signal that came meanwhile."""
        self.holding = True
        try:
            yield _FdWriter(stream)
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


class _FdWriter:
    """A stream whose write() goes straight to the file descriptor, looping over partial
    writes. CPython's BufferedWriter drops the tail of a write larger than its buffer when a
    signal handler interrupts it part-way and returns (seen on 3.10 to 3.13 with a pipe
    whose reader is slow): that is what a held SIGTERM does. Streams without a descriptor
    (in-process tests) are written as they are."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __getattr__(self, name: str):  # noqa: ANN204 - isatty, flush, encoding...
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        try:
            fd = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self._stream.write(text)
        self._stream.flush()
        data = memoryview(text.encode(getattr(self._stream, "encoding", None) or "utf-8",
                                      getattr(self._stream, "errors", None) or "strict"))
        while data:
            data = data[os.write(fd, data):]
        return len(text)


streams = Streams()
