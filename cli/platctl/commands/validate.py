"""`platctl validate`, and the pieces `boot` shares with it: load, run, render."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from platctl import io
from platctl.exitcodes import ExitCode
from platctl.result import Reason, Report


@dataclass(frozen=True)
class Request:
    profile: str | None
    output: str
    timeout: float
    only: tuple[str, ...]
    skip: tuple[str, ...]
    fail_fast: bool
    keep_going: bool
    read_only: bool
    wait: float | None = None  # --wait: seconds until the deadline (commands/wait.py)
    ready_file: str | None = None  # --ready-file: written only after a pass


class UsageError(Exception):
    """Bad command-line input found after parsing (exit 2)."""


def load_profile(ref: str | None):
    from platctl.profiles.loader import load

    env = io.streams.env
    if ref is None:  # an explicit `-p ""` is refused by load(), not read as "the default"
        ref = env.get("PLATCTL_PROFILE") or "vm"
    profile = load(ref, env, Path.cwd())
    io.streams.secrets |= profile.secret_values()
    return profile


def runtime_command(profile, args: tuple[str, ...]) -> tuple[str, ...] | None:
    """`--` arguments, else PLATFORM_RUNTIME_CMD, else the profile's execution.command."""
    if args:
        return args
    text = io.streams.env.get("PLATFORM_RUNTIME_CMD") or profile.execution.command
    if not text:
        return None
    try:
        return tuple(shlex.split(text)) or None
    except ValueError as exc:
        raise UsageError(f"cannot parse the runtime command ({exc}): check PLATFORM_RUNTIME_CMD"
                         " or execution.command") from None


def execute(req: Request, command_args: tuple[str, ...] = ()):
    """Load the profile and run the checks: (RunOutcome, the runtime argv or None)."""
    from platctl import runner

    profile = load_profile(req.profile)
    argv = runtime_command(profile, command_args)
    opts = runner.Options(timeout=req.timeout, only=req.only, skip=req.skip,
                          fail_fast=req.fail_fast, keep_going=req.keep_going,
                          read_only=req.read_only, runtime_command=argv,
                          started_at=io.streams.started_at)
    try:
        return runner.run(profile, opts, io.streams.env), argv
    except runner.SelectionError as exc:
        raise UsageError(str(exc)) from None


def emit(report: Report, fmt: str, stream: TextIO) -> None:
    # A SIGTERM mid-write must not cut `-o json` into half a document: it waits for the end.
    with io.streams.whole(stream) as whole:
        _emit(report, fmt, whole)


def _emit(report: Report, fmt: str, stream: TextIO) -> None:
    if fmt == "json":
        stream.write(report.to_json() + "\n")
    elif fmt == "junit":
        from platctl.render.junit import render_junit
        stream.write(render_junit(report))
    elif fmt == "github":
        from platctl.render.github import render_github, render_summary_markdown
        stream.write(render_github(report))
        summary = io.streams.env.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as f:
                f.write(render_summary_markdown(report))
    else:
        from platctl.render.table import render_table
        stream.write(render_table(report, color=io.streams.color(stream),
                                  width=io.streams.width(stream)))
    stream.flush()


def verdict_code(report: Report) -> ExitCode:
    if any(c.reason is Reason.INTERNAL for c in report.checks):
        return ExitCode.INTERNAL
    return ExitCode.OK if report.ok else ExitCode.FAILED


def validate(req: Request) -> ExitCode:
    try:
        outcome, _ = execute(req)
    except UsageError as exc:
        io.streams.err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    emit(outcome.report, req.output, io.streams.out)
    return verdict_code(outcome.report)
