"""Console entry point: turns every way a run can end into exactly one exit code."""
from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Mapping, Sequence
from typing import TextIO

from platctl.exitcodes import ExitCode


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt is for SIGINT."""


def _on_sigterm(signum, frame):  # noqa: ANN001
    raise Terminated()


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The console script (argv None: exits the process) or an in-process call for tests,
    with the environment and both streams injectable."""
    from platctl import io

    io.streams = io.Streams(out=stdout or sys.stdout, err=stderr or sys.stderr,
                            env=os.environ if env is None else env)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    code = _run(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        _exit(int(code))
    return int(code)


def _run(args: list[str]) -> int:
    from platctl import io
    from platctl.secrets import scrub

    err = io.streams.err
    try:
        import typer

        from platctl.app import command
        from platctl.profiles.loader import ProfileError

        try:
            rv = command().main(args, prog_name="platctl", standalone_mode=False)
        except ProfileError as exc:
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
        return ExitCode.OK if rv is None else int(rv)
    except KeyboardInterrupt:
        err.write("platctl: interrupted (SIGINT)\n")
        return ExitCode.SIGINT
    except Terminated:
        err.write("platctl: terminated (SIGTERM)\n")
        return ExitCode.SIGTERM
    except Exception as exc:  # noqa: BLE001 - the last line: a bug, said as one
        secrets = io.streams.secrets
        err.write(f"platctl: internal error (a bug, please report it): {type(exc).__name__}:"
                  f" {scrub(str(exc), secrets)}\n")
        if io.streams.env.get("PLATCTL_DEBUG"):
            err.write(scrub("".join(traceback.format_exception(exc)), secrets))
        return ExitCode.INTERNAL


def _exit(code: int) -> None:
    """Flush and leave without joining abandoned check threads (a hung client library must
    not hold the process after the verdict)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
