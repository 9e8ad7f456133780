"""DuckDB: the platform's deterministic compute store, a local file.

Opening a foreign file makes DuckDB try to download extensions (protocols.md §8), so
auto-install and auto-load are off. A lock held by another process fails at once, naming
the holder. When the file does not exist yet, the checks run on a scratch file in the same
directory (removed afterwards) so that "DuckDB can create it here" is proven, not assumed.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip
from platctl.result import Reason

CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_LOCK = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


class DuckdbCheck(ServiceCheck):
    service = "duckdb"
    env = {"path": "DUCKDB_DATABASE_PATH", "read_only": "DUCKDB_READ_ONLY"}

    conn = None
    scratch: Path | None = None

    @cached_property
    def path(self) -> Path:
        return Path(self.cfg.path).expanduser()

    @property
    def read_only(self) -> bool:
        return bool(self.cfg.read_only or self.ctx.read_only)

    def prepare(self) -> None:
        import duckdb  # noqa: F401

    def steps(self) -> Sequence[Step]:
        return (Step("duckdb.path", self.check_path),
                Step("duckdb.open", self.open),
                Step("duckdb.schema", self.schema, gate=False))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.scratch is not None:
            for p in (self.scratch, Path(f"{self.scratch}.wal")):
                p.unlink(missing_ok=True)

    # -- steps ------------------------------------------------------------------------------
    def check_path(self) -> str:
        try:
            p = self.path
            exists = p.exists()
        except (OSError, RuntimeError) as exc:  # `~nouser/x`, a name longer than the OS allows
            why = getattr(exc, "strerror", None) or exc
            raise CheckFailed(Reason.CONFIG, f"unusable path {self.cfg.path}: {why}",
                              self.hint("path")) from None
        if exists:
            if p.is_dir():
                raise CheckFailed(Reason.CONFIG, f"{p} is a directory, not a database file",
                                  self.hint("path"))
            if not p.is_file():  # DuckDB would block forever opening a FIFO
                raise CheckFailed(Reason.CONFIG, f"{p} is not a regular file (a device, FIFO or"
                                  " socket), not a database file", self.hint("path"))
            if not os.access(p, os.R_OK):
                raise CheckFailed(Reason.FORBIDDEN, f"{p} is not readable by this user",
                                  self.hint("path"))
            if not self.read_only and not os.access(p, os.W_OK):
                raise CheckFailed(Reason.FORBIDDEN, f"{p} is not writable by this user (set"
                                  " read_only if the platform only reads it)", self.hint("path"))
            return f"{p} exists ({p.stat().st_size // 1024} KiB)"
        if self.cfg.read_only:
            raise CheckFailed(Reason.MISSING, f"read_only needs an existing database, and {p}"
                              " does not exist", self.hint("path", "read_only"))
        anchor = _nearest_existing(p.parent)
        if not anchor.is_dir() or not os.access(anchor, os.W_OK | os.X_OK):
            raise CheckFailed(Reason.FORBIDDEN, f"{p} does not exist and cannot be created:"
                              f" {anchor} is not a writable directory", self.hint("path"))
        made = "" if anchor == p.parent else f" (its directory will be created under {anchor})"
        return f"{p} does not exist yet; DuckDB can create it{made}"

    def open(self) -> str:
        import duckdb

        target = self.path
        if not target.exists():
            if self.read_only:
                return skip("the database file does not exist yet; nothing to open read-only")
            anchor = _nearest_existing(target.parent)
            self.scratch = target = anchor / f".platctl-canary-{self.ctx.run_id}.duckdb"
        try:
            self.conn = duckdb.connect(str(target), read_only=self.read_only and not self.scratch,
                                       config=CONFIG)
            version = self.conn.execute("SELECT 1, version()").fetchone()[1]
        except duckdb.Error as exc:
            raise self._classify(exc) from None
        mode = "read-only" if self.read_only else "read-write"
        where = f"a scratch file beside {self.path.name} (removed)" if self.scratch else \
            str(self.path)
        return f"DuckDB {version} opened {where} {mode}; SELECT 1 ok"

    def schema(self) -> str | Outcome:
        import duckdb

        if self.read_only:
            return skip("skipped: read-only (--read-only or duckdb.read_only)")
        if self.conn is None:
            return skip("skipped: the database did not open")
        name = f"platctl_canary_{self.ctx.run_id}"
        try:
            self.conn.execute("BEGIN TRANSACTION")
            self.conn.execute(f"CREATE SCHEMA {name}")
            self.conn.execute(f"CREATE TABLE {name}.probe (id INTEGER, note VARCHAR)")
            self.conn.execute(f"INSERT INTO {name}.probe VALUES (1, 'platctl')")
        except duckdb.Error as exc:
            raise self._classify(exc) from None
        finally:
            try:
                self.conn.execute("ROLLBACK")
            except duckdb.Error:
                pass
        return "schema, table and insert succeed (inside a transaction, rolled back)"

    def _classify(self, exc: Exception) -> CheckFailed:
        text = str(exc)
        hint = self.hint("path")
        if m := _LOCK.search(text):
            return CheckFailed(Reason.UNAVAILABLE, f"{self.path} is locked by another process:"
                               f" {m['exe']} (PID {m['pid']})",
                               "stop that process or open the file read-only"
                               " (DUCKDB_READ_ONLY / duckdb.read_only)")
        if "not a valid DuckDB database file" in text:
            return CheckFailed(Reason.UNEXPECTED, f"{self.path} exists but is not a DuckDB"
                               " database", hint)
        if "does not exist" in text:
            return CheckFailed(Reason.MISSING, f"{self.path} does not exist", hint)
        if "Permission denied" in text:
            return CheckFailed(Reason.FORBIDDEN, f"permission denied opening {self.path}", hint)
        if "read-only" in text:
            return CheckFailed(Reason.FORBIDDEN, f"write refused, the file is read-only: {text}",
                               self.hint("read_only"))
        first = text.splitlines()[0] if text else type(exc).__name__
        return CheckFailed(Reason.UNEXPECTED, f"DuckDB could not use {self.path}: {first}", hint)


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


CHECK = DuckdbCheck
