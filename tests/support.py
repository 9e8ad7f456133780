"""Helpers shared by the tests: profiles in temp dirs, in-process runs, the installed CLI,
and small real network peers (a hung server, free ports)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from platctl import contract, runner
from platctl.profiles.loader import load_path
from platctl.result import Report

VENV_BIN = Path(sys.executable).parent
PLATCTL = str(VENV_BIN / "platctl")
CLOSED = "127.0.0.1:1"  # nothing listens on port 1: connection refused at once

# Every service points somewhere harmless by default; a test overrides what it exercises
# and selects it with --only, so the other services never matter.
BASE_PROFILE: dict[str, Any] = {
    "name": "test",
    "redis": {"url": f"redis://{CLOSED}/0"},
    "arango": {"url": f"http://{CLOSED}", "password": "arango-pw", "database": "platform"},
    "supabase": {"url": f"http://{CLOSED}"},
    "gcs": {"bucket": "platform", "emulator_host": f"http://{CLOSED}"},
    "meilisearch": {"url": f"http://{CLOSED}"},
    "duckdb": {"path": "platform.duckdb"},
    "consul": {"url": f"http://{CLOSED}"},
    "telemetry": {"endpoint": f"http://{CLOSED}"},
    "execution": {"command": "true"},
}


# What an HTTP check must say for the emulators' common bad answers: (fault, reason, words).
BAD_HTTP_ANSWERS = [
    ("html", "unexpected", ("HTML page", "proxy")),
    ("http500", "server", ("HTTP 500",)),
    ("reset", "reset", ("reset",)),
    ("garbage", "unexpected", ("did not answer with valid HTTP",)),
]


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


def write_profile(directory: Path, name: str = "test", **sections: Any) -> Path:
    doc = deep_merge(BASE_PROFILE, {"name": name, **sections})
    path = Path(directory) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without any platform contract key (the developer's own must not leak in)."""
    keys = {k for s in contract.SERVICES for k in s.env_keys} | {
        "PLATCTL_PROFILE", "PLATCTL_PROFILE_DIR", "GITHUB_STEP_SUMMARY", "OTEL_EXPORTER_OTLP_PROTOCOL"}
    env = {k: v for k, v in os.environ.items() if k not in keys}
    env.update(extra)
    return env


def run_report(profile: Path, env: dict[str, str] | None = None, **opts: Any) -> Report:
    """Load the profile and run the real runner in-process."""
    env = clean_env() if env is None else env
    p = load_path(Path(profile), env)
    opts.setdefault("runtime_command", ("true",))
    return runner.run(p, runner.Options(**opts), env).report


def by_id(report: Report) -> dict[str, Any]:
    return {c.id: c for c in report.checks}


def assert_fail(check: Any, reason: str, *words: str, hint: str | None = None) -> None:
    """A failed check with this failure class, these words in its message and the hint."""
    assert (check.status.value, check.reason.value) == ("fail", reason), check
    for w in words:
        assert w in check.message, (w, check.message)
    if hint:
        assert hint in check.hint, (hint, check.hint)


def platctl(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
            cwd: str | Path | None = None, **kw: Any) -> subprocess.CompletedProcess:
    """The installed console script, in a subprocess (exit codes, streams, exec are real)."""
    return subprocess.run([PLATCTL, *args], env=clean_env() if env is None else env,
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def hung_server():
    """A TCP server that accepts connections and never answers: the worst peer."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(1)
        for c in conns:
            c.close()
        srv.close()


class Terminal:
    """A pseudo-terminal for a child's stdout/stderr (`fd`), drained by a thread so a full
    pty never blocks the child; `text()` is everything the child showed. Use as a context
    manager, and close the child's side (`release()`) once the child holds it."""

    def __init__(self) -> None:
        import pty

        self._controller, self.fd = pty.openpty()
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._controller, 65536)
            except OSError:  # EIO: the last holder of the terminal side is gone
                return
            if not data:
                return
            self._chunks.append(data)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace")

    def __enter__(self) -> "Terminal":
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._reader.join(5)
        os.close(self._controller)


class RuntimeStandIn:
    """A runtime on PATH (`name`) that prints "runtime pid $$", says whether `ready` existed
    when it started, and saves its environment: a test sees that it ran, in which process
    (boot execs: the PID is boot's own), with what."""

    def __init__(self, tmp: Path, name: str, ready: Path | None = None) -> None:
        self.tmp, self.name, self.env_file = tmp, name, tmp / "runtime-env"
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        check = f"test -f {ready} && echo ready-file-present\n" if ready else ""
        (bin_dir / name).write_text(f"#!/bin/sh\necho \"runtime pid $$\"\n{check}"
                                    f"env -0 > {self.env_file}\n")
        (bin_dir / name).chmod(0o755)
        self.vars = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    @property
    def ran(self) -> bool:
        return self.env_file.exists()

    def environ(self) -> dict[str, str]:
        items = self.env_file.read_bytes().decode().split("\0")
        return dict(i.split("=", 1) for i in items if i)

    def profile(self, **sections: Any) -> Path:
        return write_profile(self.tmp, duckdb={"path": str(self.tmp / "p.duckdb")},
                             execution={"command": self.name}, **sections)
