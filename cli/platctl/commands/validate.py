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
    profile = load_profile(req.profile)
    argv = runtime_command(profile, command_args)
    return run_checks(profile, argv, req), argv


def run_checks(profile, argv: tuple[str, ...] | None, req: Request,
               started_at: float | None = None, timeout: float | None = None,
               stop_at: float | None = None):
    """One attempt at every selected check. `started_at` anchors the first plane's clock
    (default: the launch); `timeout` overrides req.timeout (--wait clips it to what is left)
    and `stop_at` (--wait's deadline) is a time no check may run past."""
    from platctl import runner

    opts = runner.Options(timeout=req.timeout if timeout is None else timeout, only=req.only,
                          skip=req.skip, fail_fast=req.fail_fast, keep_going=req.keep_going,
                          read_only=req.read_only, runtime_command=argv,
                          started_at=io.streams.started_at if started_at is None else started_at,
                          stop_at=stop_at)
    try:
        return runner.run(profile, opts, io.streams.env)
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
    from platctl import receipt
    from platctl.commands import wait

    err = io.streams.err
    try:
        receipt.clear_ready_file(req.ready_file)  # a stale one must not pass a probe
        profile = load_profile(req.profile)
        waited = wait.run(profile, runtime_command(profile, ()), req)
    except (UsageError, receipt.ReceiptError) as exc:
        err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    emit(waited.report, req.output, io.streams.out)
    code = waited.code(verdict_code(waited.report))
    if waited.final_line:
        err.write(waited.final_line)
    if code is ExitCode.OK and req.ready_file:
        try:
            receipt.write_ready_file(req.ready_file, profile)
        except receipt.ReceiptError as exc:
            err.write(f"platctl: {exc}\n")
            return ExitCode.USAGE
    return code
