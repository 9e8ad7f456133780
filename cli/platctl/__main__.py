"""Console entry point: turns every way a run can end into exactly one exit code."""
from __future__ import annotations

import time

LAUNCHED = time.monotonic()  # first thing: the console script's start, for the deadlines

import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from typing import TextIO  # noqa: E402

from platctl.exitcodes import ExitCode  # noqa: E402


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT."""


WATCHDOG = 0.7  # s from a first signal to the process end, whatever blocks (> CLEANUP_WAIT)
_CODES = {signal.SIGINT: ExitCode.SIGINT, signal.SIGTERM: ExitCode.SIGTERM}
_signalled: list[int] = []  # the console script's first signal; or the verdict, once leaving


def _on_sigterm(signum, frame):  # noqa: ANN001
    raise Terminated()


def _on_signal(signum, frame):  # noqa: ANN001
    """The console script's SIGINT/SIGTERM. The first one raises in the main thread, so the
    runner stops and lets canaries be deleted, and starts a watchdog: a stuck stdout/stderr
    reader or a cleanup that hangs cannot keep the process past WATCHDOG. A second one ends
    the process at once (no more cleanup, and no traceback from inside the first's handling).
    While the report is being written the first one waits for the document to be whole."""
    code = _CODES[signum]
    if _signalled:
        os._exit(code)
    _signalled.append(code)
    _alarm.set()  # the watchdog, started before any signal could come (see _arm)
    from platctl import io

    exc = KeyboardInterrupt() if signum == signal.SIGINT else Terminated()
    if io.streams.holding:
        io.streams.held = exc
        return
    raise exc


_alarm = threading.Event()


def _arm() -> None:
    """Start the watchdog thread now, waiting for a signal. Starting it inside the signal
    handler (as before) could deadlock: the handler runs in the main thread between two
    bytecodes, possibly while that thread holds threading's internal lock in the middle of
    starting a worker, and Thread.start() needs the same lock. Setting an Event cannot."""
    threading.Thread(target=_watchdog, name="platctl-watchdog", daemon=True).start()


def _watchdog() -> None:
    _alarm.wait()
    time.sleep(WATCHDOG)
    os._exit(_signalled[0])


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The console script (argv None: exits the process) or an in-process call for tests,
    with the environment and both streams injectable."""
    from platctl import io

    io.streams = io.Streams(out=stdout or sys.stdout, err=stderr or sys.stderr,
                            env=os.environ if env is None else env,
                            started_at=LAUNCHED if argv is None else time.monotonic())
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm if argv is not None else _on_signal)
        if argv is None and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _on_signal)  # not when started with SIGINT ignored
        if argv is None:
            _arm()
    code = _run(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        _exit(int(code))
    return int(code)


def _run(args: list[str]) -> int:
    from platctl import io

    err = io.streams.err
    try:
        import typer

        from platctl import typer_light
        from platctl.app import command
        from platctl.profiles.loader import ProfileError

        typer_light.install()  # keeps pydantic out of commands that need no profile
        try:
            rv = command().main(args, prog_name="platctl", standalone_mode=False)
        except ProfileError as exc:
            from platctl.secrets import scrub  # imports pydantic: only on the way out

            err.write(f"platctl: profile error: {scrub(str(exc), io.streams.secrets)}\n")
            return ExitCode.USAGE
        except typer.Exit as exc:
            return exc.exit_code
        except typer.exceptions.TyperException as exc:  # usage errors, bad option values
            show = getattr(exc, "show", None)
            show(file=err) if show else err.write(f"Error: {exc.format_message()}\n")
            return ExitCode.USAGE
        except typer.Abort:
            err.write("platctl: interrupted\n")
            return ExitCode.SIGINT
        if rv == ExitCode.SIGINT:  # typer turns KeyboardInterrupt into a silent 130
            err.write("platctl: interrupted (SIGINT)\n")
        return ExitCode.OK if rv is None else int(rv)
    except KeyboardInterrupt:
        err.write("platctl: interrupted (SIGINT)\n")
        return ExitCode.SIGINT
    except Terminated:
        err.write("platctl: terminated (SIGTERM)\n")
        return ExitCode.SIGTERM
    except Exception as exc:  # noqa: BLE001 - the last line: a bug, said as one
        import traceback

        from platctl.secrets import scrub

        secrets = io.streams.secrets
        err.write(f"platctl: internal error (a bug, please report it): {type(exc).__name__}:"
                  f" {scrub(str(exc), secrets)}\n")
        if io.streams.env.get("PLATCTL_DEBUG"):
            err.write(scrub("".join(traceback.format_exception(exc)), secrets))
        return ExitCode.INTERNAL


def _exit(code: int) -> None:
    """Flush and leave without joining abandoned check threads (a hung client library must
    not hold the process after the verdict)."""
    _signalled.append(code)  # a signal during the last flush (a slow reader) exits at once
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
