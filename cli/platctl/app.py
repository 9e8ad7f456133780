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
                       help="Profile name or path [default: $PLATCTL_PROFILE, else vm].")
OUTPUT = typer.Option(Output.table, "-o", "--output", help="Report format.")
TIMEOUT = typer.Option(5.0, "--timeout", min=0.1, max=3600, metavar="SECONDS",
                       help="Deadline of each check.")
ONLY = typer.Option(None, "--only", metavar="SERVICE|CHECK", help="Run only these (repeatable).")
SKIP = typer.Option(None, "--skip", metavar="SERVICE|CHECK", help="Skip these (repeatable).")
FAIL_FAST = typer.Option(False, "--fail-fast", help="Stop at the first failed check.")
READ_ONLY = typer.Option(False, "--read-only", help="No check writes anything anywhere.")


@app.command()
def validate(profile: Optional[str] = PROFILE, output: Output = OUTPUT,
             timeout: float = TIMEOUT, only: Optional[list[str]] = ONLY,
             skip: Optional[list[str]] = SKIP, fail_fast: bool = FAIL_FAST,
             keep_going: bool = typer.Option(False, "--keep-going",
                                             help="Run every plane even after one failed."),
             read_only: bool = READ_ONLY) -> int:
    """Run every check, print the report, exit 0 (ready) or 1 (not ready)."""
    from platctl.commands.validate import Request, validate as run

    return run(Request(profile, output.value, timeout, tuple(only or ()), tuple(skip or ()),
                       fail_fast, keep_going, read_only))


@app.command(context_settings={"allow_interspersed_args": False})
def boot(profile: Optional[str] = PROFILE, output: Output = OUTPUT,
         timeout: float = TIMEOUT, only: Optional[list[str]] = ONLY,
         skip: Optional[list[str]] = SKIP, fail_fast: bool = FAIL_FAST,
         read_only: bool = READ_ONLY,
         command: Optional[list[str]] = typer.Argument(None, metavar="[-- CMD ARGS...]",
                                                       help="Runtime command (after --).")) -> int:
    """Validate, then exec the runtime (same PID) only if every required check passed."""
    from platctl.commands.boot import boot as run
    from platctl.commands.validate import Request

    return run(Request(profile, output.value, timeout, tuple(only or ()), tuple(skip or ()),
                       fail_fast, False, read_only), tuple(command or ()))


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
def profile_lint(path: str = typer.Argument(..., metavar="PATH")) -> int:
    """Check a profile file; exit 0 when valid, 2 with the error otherwise."""
    from platctl.commands.info import lint_profile

    return lint_profile(path)


@profile_app.command("diff")
def profile_diff(a: str = typer.Argument(..., metavar="A"),
                 b: str = typer.Argument(..., metavar="B")) -> int:
    """Fields that differ between two profiles (secrets compared, never printed)."""
    from platctl.commands.info import diff_profiles

    return diff_profiles(a, b)


def command():
    return typer.main.get_command(app)
