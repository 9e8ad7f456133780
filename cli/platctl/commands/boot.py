"""`platctl boot`: validate, then become the runtime with execve (same PID, so signals and
the exit code are the runtime's own), or never start it at all."""
from __future__ import annotations

import os
import signal

from platctl import io
from platctl.checks.base import CheckFailed
from platctl.commands.validate import (Request, UsageError, emit, load_profile,
                                       runtime_command, verdict_code)
from platctl.exitcodes import ExitCode
from platctl.result import Reason

_NOT_RUNNABLE = {Reason.MISSING: ExitCode.NOT_FOUND, Reason.FORBIDDEN: ExitCode.NOT_EXECUTABLE}


def boot(req: Request, command_args: tuple[str, ...]) -> ExitCode:
    from platctl import receipt
    from platctl.checks.runtime import NO_COMMAND, resolve_executable
    from platctl.commands import wait

    err = io.streams.err
    try:
        receipt.clear_ready_file(req.ready_file)  # a stale one must not pass a probe
        profile = load_profile(req.profile)
        argv = runtime_command(profile, command_args)
        waited = wait.run(profile, argv, req)  # one attempt, or --wait's attempts
    except (UsageError, receipt.ReceiptError) as exc:
        err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    report = waited.report
    emit(report, req.output, err)  # the runtime owns stdout
    if waited.final_line:
        err.write(waited.final_line)
    code = verdict_code(report)
    if code is not ExitCode.OK:
        others = [c for c in report.failed if c.id != "runtime.command"]
        cmd = next((c for c in report.failed if c.id == "runtime.command"), None)
        if code is ExitCode.FAILED and not others and cmd and cmd.reason in _NOT_RUNNABLE:
            code = _NOT_RUNNABLE[cmd.reason]
        code = waited.code(code)  # --wait's deadline passed: 124
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
    try:
        env = _receipt(req, profile, report)
    except receipt.ReceiptError as exc:
        err.write(f"platctl: {exc}\n")
        return ExitCode.USAGE
    err.write(f"platctl: starting {argv[0]} (exec, pid {os.getpid()})\n")
    err.flush()
    saved = _commit_to_exec()
    try:
        os.execve(program, list(argv), env)
    except FileNotFoundError:
        err.write(f"platctl: runtime command {argv[0]} not found\n")
        return ExitCode.NOT_FOUND
    except OSError as exc:
        err.write(f"platctl: cannot execute {argv[0]}: {exc.strerror}\n")
        return ExitCode.NOT_EXECUTABLE
    finally:  # reached only when the exec failed: platctl carries on, with its handlers
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return ExitCode.INTERNAL  # unreachable: exec does not return


def _receipt(req: Request, profile, report) -> dict:  # noqa: ANN001
    """The runtime's environment (platctl's plus the receipt keys), after writing the report
    file and the ready file. A report the operator placed with PLATCTL_REPORT must be
    written; the default one is a convenience: if it cannot be, the runtime starts without."""
    from pathlib import Path

    from platctl import receipt

    env = io.streams.env
    try:
        path = str(receipt.write_report(report, env, os.getpid()))
    except receipt.ReceiptError as exc:
        if receipt.explicit_report_path(env):
            raise
        io.streams.err.write(f"platctl: warning: no report file for the runtime: {exc}\n")
        path = None
    if req.ready_file:
        receipt.write_ready_file(req.ready_file, profile)
    return receipt.exec_env(env, profile, receipt.profile_ref(req.profile, env, Path.cwd()),
                            path)


def _commit_to_exec() -> dict:
    """Close the last window in which a signal could be lost and the runtime start anyway:
    one arriving inside os.execve's C code, before the exec, trips Python's flag but its
    handler never runs. With INT/TERM blocked, a signal that came before has raised by the
    time pthread_sigmask returns; the handlers then go back to the defaults execve would give
    the runtime anyway, and unblocking lets a signal that came meanwhile end platctl, by that
    signal, before anything is exec'd."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}  # an in-process call from a test thread: signals are not ours to change
    both = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, both)
    saved = {sig: signal.getsignal(sig) for sig in both if callable(signal.getsignal(sig))}
    for sig in saved:  # caught: reset, as exec does; an ignored signal stays ignored
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return saved
