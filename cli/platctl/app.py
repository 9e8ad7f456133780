"""The Typer application: options and help text only; each command's work lives in
platctl.commands.* and returns an exit code. Heavy modules are imported inside commands so
`platctl --help` and shell completion stay fast."""
from __future__ import annotations

from enum import Enum
from typing import Optional

import typer

from platctl import __version__

app = typer.Typer(name="platctl", no_args_is_help=True, add_completion=True,
                  pretty_exceptions_enable=False,
                  help="Pre-boot gate and diagnostics for the platform's backing services.")
profile_app = typer.Typer(no_args_is_help=True, help="Inspect deployment profiles.")
app.add_typer(profile_app, name="profile")


class Output(str, Enum):
    table = "table"
    json = "json"
    junit = "junit"
    github = "github"


def _version(value: bool) -> None:
    if value:
        from platctl import io

        io.streams.out.write(f"platctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


PROFILE = typer.Option(None, "-p", "--profile", metavar="NAME|PATH",
                       help="Profile name or path (default: $PLATCTL_PROFILE, else vm).")
OUTPUT = typer.Option(Output.table, "-o", "--output", help="Report format.")
TIMEOUT = typer.Option(5.0, "--timeout", min=0.1, max=3600, metavar="SECONDS",
                       help="Deadline of each check.")
ONLY = typer.Option(None, "--only", metavar="SERVICE|CHECK", help="Run only these (repeatable).")
SKIP = typer.Option(None, "--skip", metavar="SERVICE|CHECK", help="Skip these (repeatable).")
FAIL_FAST = typer.Option(False, "--fail-fast", help="Stop at the first failed check.")
READ_ONLY = typer.Option(False, "--read-only", help="No check writes anything anywhere.")


def _duration():
    def parse(value: Optional[str]) -> Optional[float]:
        if value is None:
            return None
        from platctl.durations import DurationError, parse_duration

        try:
            return parse_duration(value)
        except DurationError as exc:
            raise typer.BadParameter(str(exc)) from None
    return parse


WAIT = typer.Option(None, "--wait", metavar="DURATION", callback=_duration(),
                    help="Retry transient failures (refused, timeout, 5xx, loading...) with"
                         " backoff until DURATION (90s, 2m); permanent ones end the wait."
                         " Exit 124 when the deadline passes.")
def _path(value: Optional[str]) -> Optional[str]:
    if value is not None and not value.strip():
        raise typer.BadParameter("an empty path")
    return value


READY_FILE = typer.Option(None, "--ready-file", metavar="PATH", callback=_path,
                          help="Write PATH once every required check passed (startup probes).")


@app.command()
def validate(profile: Optional[str] = PROFILE, output: Output = OUTPUT,
             timeout: float = TIMEOUT, only: Optional[list[str]] = ONLY,
             skip: Optional[list[str]] = SKIP, fail_fast: bool = FAIL_FAST,
             keep_going: bool = typer.Option(False, "--keep-going",
                                             help="Run every plane even after one failed."),
             read_only: bool = READ_ONLY, wait: Optional[str] = WAIT,
             ready_file: Optional[str] = READY_FILE,
             watch: Optional[str] = typer.Option(
                 None, "--watch", metavar="SECONDS", callback=_duration(),
                 help="Re-run the checks every SECONDS as a live dashboard; Ctrl-C ends it"
                      " with a summary.")) -> int:
    """Run every check, print the report, exit 0 (ready) or 1 (not ready)."""
    from platctl.commands.validate import Request, validate as run

    req = Request(profile, output.value, timeout, tuple(only or ()), tuple(skip or ()),
                  fail_fast, keep_going, read_only, wait=wait, ready_file=ready_file)
    if watch is not None:
        if wait is not None or ready_file is not None:
            raise typer.BadParameter("--watch cannot be combined with --wait or --ready-file")
        from platctl.commands.watch import watch as run_watch

        return run_watch(req, watch)
    return run(req)


@app.command(context_settings={"allow_interspersed_args": False})
def boot(profile: Optional[str] = PROFILE, output: Output = OUTPUT,
         timeout: float = TIMEOUT, only: Optional[list[str]] = ONLY,
         skip: Optional[list[str]] = SKIP, fail_fast: bool = FAIL_FAST,
         read_only: bool = READ_ONLY, wait: Optional[str] = WAIT,
         ready_file: Optional[str] = READY_FILE,
         command: Optional[list[str]] = typer.Argument(None, metavar="[-- CMD ARGS...]",
                                                       help="Runtime command (after --).")) -> int:
    """Validate, then exec the runtime (same PID) only if every required check passed."""
    from platctl.commands.boot import boot as run
    from platctl.commands.validate import Request

    return run(Request(profile, output.value, timeout, tuple(only or ()), tuple(skip or ()),
                       fail_fast, False, read_only, wait=wait, ready_file=ready_file),
               tuple(command or ()))


@app.command()
def diagnose(service: str = typer.Argument(..., metavar="SERVICE|all",
                                           help="A service name (see `platctl contract`)"
                                                " or `all`."),
             profile: Optional[str] = PROFILE,
             output: Output = typer.Option(Output.table, "-o", "--output",
                                           help="table or json."),
             timeout: float = TIMEOUT, read_only: bool = READ_ONLY) -> int:
    """On-call view of a service, layer by layer: DNS, TCP, TLS, auth, operations."""
    from platctl.commands.diagnose import diagnose as run

    return run(service, profile, output.value, timeout, read_only)


@app.command()
def contract(output: Output = typer.Option(Output.table, "-o", "--output",
                                           help="table or json.")) -> int:
    """The platform contract: services, planes, purpose, env keys, checks."""
    from platctl.commands.info import show_contract

    return show_contract(output.value)


@profile_app.command("list")
def profile_list() -> int:
    """Profiles found, in resolution order ($PLATCTL_PROFILE_DIR, ./profiles, built-in)."""
    from platctl.commands.info import list_profiles

    return list_profiles()


@profile_app.command("show")
def profile_show(name: str = typer.Argument(..., metavar="NAME|PATH")) -> int:
    """The resolved profile, environment substituted, secrets masked."""
    from platctl.commands.info import show_profile

    return show_profile(name)


@profile_app.command("lint")
def profile_lint(path: str = typer.Argument(..., metavar="PATH"),
                 output: Output = typer.Option(Output.table, "-o", "--output",
                                               help="table or json.")) -> int:
    """Check a profile file; exit 0 when valid, 2 with the error otherwise."""
    from platctl.commands.info import lint_profile

    return lint_profile(path, _table_or_json(output))


@profile_app.command("diff")
def profile_diff(a: str = typer.Argument(..., metavar="A"),
                 b: str = typer.Argument(..., metavar="B"),
                 output: Output = typer.Option(Output.table, "-o", "--output",
                                               help="table or json.")) -> int:
    """Fields that differ between two profiles (secrets compared, never printed)."""
    from platctl.commands.info import diff_profiles

    return diff_profiles(a, b, _table_or_json(output))


def _table_or_json(output: Output) -> str:
    if output not in (Output.table, Output.json):
        raise typer.BadParameter(f"{output.value} is not available here: use table or json",
                                 param_hint="'-o' / '--output'")
    return output.value


def command():
    # typer's rich help imports rich.markdown, rich.syntax, rich.traceback (about 120 ms):
    # worth it for a person at a terminal; a pipe or a script gets Click's plain help.
    from platctl import io

    out = io.streams.out
    rich_help = bool(getattr(out, "isatty", lambda: False)() or io.streams.env.get("FORCE_COLOR"))
    app.rich_markup_mode = profile_app.rich_markup_mode = "rich" if rich_help else None
    return typer.main.get_command(app)
