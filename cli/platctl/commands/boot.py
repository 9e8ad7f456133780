"""`platctl boot`: validate, then become the runtime with execve (same PID, so signals and
the exit code are the runtime's own), or never start it at all."""
from __future__ import annotations

import os

from platctl import io
from platctl.checks.base import CheckFailed
from platctl.commands.validate import Request, UsageError, emit, execute, verdict_code
from platctl.exitcodes import ExitCode
from platctl.result import Reason

_NOT_RUNNABLE = {Reason.MISSING: ExitCode.NOT_FOUND, Reason.FORBIDDEN: ExitCode.NOT_EXECUTABLE}


def boot(req: Request, command_args: tuple[str, ...]) -> ExitCode:
    from platctl.checks.runtime import NO_COMMAND, resolve_executable

    err = io.streams.err
    try:
        outcome, argv = execute(req, command_args)
    except UsageError as exc:
        err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    report = outcome.report
    emit(report, req.output, err)  # the runtime owns stdout
    code = verdict_code(report)
    if code is not ExitCode.OK:
        others = [c for c in report.failed if c.id != "runtime.command"]
        cmd = next((c for c in report.failed if c.id == "runtime.command"), None)
        if code is ExitCode.FAILED and not others and cmd and cmd.reason in _NOT_RUNNABLE:
            code = _NOT_RUNNABLE[cmd.reason]
        err.write(f"platctl: not starting the runtime (exit {int(code)})\n")
        return code
    if not argv:
        err.write(f"platctl: {NO_COMMAND}\n")
        return ExitCode.USAGE
    try:  # resolve again: --skip runtime may have skipped the check
        program = resolve_executable(argv[0], io.streams.env.get("PATH"))
    except CheckFailed as failed:
        err.write(f"platctl: {failed.message}\n")
        return _NOT_RUNNABLE.get(failed.reason, ExitCode.NOT_FOUND)
    err.write(f"platctl: starting {argv[0]} (exec, pid {os.getpid()})\n")
    err.flush()
    try:
        os.execve(program, list(argv), dict(io.streams.env))
    except FileNotFoundError:
        err.write(f"platctl: runtime command {argv[0]} not found\n")
        return ExitCode.NOT_FOUND
    except OSError as exc:
        err.write(f"platctl: cannot execute {argv[0]}: {exc.strerror}\n")
        return ExitCode.NOT_EXECUTABLE
    return ExitCode.INTERNAL  # unreachable: exec does not return
