"""Start-up behaviour: what the installed CLI imports for each command (issue 8, target 1).

Read from sys.modules after the console script's main() returns, so every import counts, lazy
ones included. Timing is the benchmark's business (bench/); these only assert which modules load.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import Terminal, clean_env, write_profile

# Client libraries and what only a profile needs: none may load before a command needs it.
CLIENTS = ("redis", "duckdb", "google.cloud.storage", "google.auth", "httpx", "h2", "arango",
           "meilisearch", "consul", "opentelemetry.sdk")
PROFILE_ONLY = ("pydantic", "pydantic_core", "platctl.profiles.model", "platctl.runner")


# The console script's main(), run with argv so it returns, then sys.modules. (`-X importtime`
# would miss the check modules: the runner loads them with importlib.import_module, which that
# option does not time.)
WRAPPER = ("import sys\n"
           "from platctl.__main__ import main\n"
           "code = main(sys.argv[1:])\n"
           "sys.stdout.flush()\n"
           "sys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n"
           "sys.exit(code)\n")


def imports(*args: str, **kw) -> tuple[subprocess.CompletedProcess, set[str]]:
    kw.setdefault("stdout", subprocess.PIPE)
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=kw.pop("env", clean_env()),
                          stderr=subprocess.PIPE, text=True, timeout=60, **kw)
    listing = proc.stderr.rpartition("\nMODULES ")[2]
    names = set(listing.split())
    assert {"typer", "platctl.app"} <= names, proc.stderr[-2000:]  # the run got that far
    return proc, names


def loaded(names: set[str], *packages: str) -> list[str]:
    return sorted(n for n in names for p in packages if n == p or n.startswith(p + "."))


@pytest.mark.parametrize("args, says", [
    (("--help",), "Commands"),
    (("validate", "--help"), "--timeout"),
    (("--version",), "platctl "),
    (("contract",), "redis.ping"),
    (("contract", "-o", "json"), '"planes"'),
    (("profile", "list"), "vm"),
])
def test_informational_commands_import_no_client_and_no_pydantic(args, says):
    proc, names = imports(*args)
    assert proc.returncode == 0 and says in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert loaded(names, *CLIENTS, *PROFILE_ONLY) == []


def test_piped_help_is_plain_and_skips_typers_rich_help():
    proc, names = imports("--help")
    assert "typer.rich_utils" not in names and "rich.markdown" not in names
    assert "Usage: platctl" in proc.stdout and "╭" not in proc.stdout


def test_help_on_a_terminal_is_typers_rich_help():
    with Terminal() as term:
        proc, names = imports("--help", env=clean_env(COLUMNS="100"), stdin=subprocess.DEVNULL,
                              stdout=term.fd)
    shown = term.text()
    assert proc.returncode == 0 and "╭" in shown and "validate" in shown, shown
    assert "typer.rich_utils" in names and loaded(names, *CLIENTS, *PROFILE_ONLY) == []


def _run_both(*args: str) -> list[tuple[int, str, str]]:
    """The same command line in-process with platctl's light option coercion and with
    typer's own (install() made a no-op before main runs)."""
    code = ("import io, sys; from platctl import typer_light\n"
            "if sys.argv[1] == 'typer': typer_light._installed.append(True)\n"
            "from platctl.__main__ import main\n"
            "out, err = io.StringIO(), io.StringIO()\n"
            "rc = main(sys.argv[2:], stdout=out, stderr=err)\n"
            "sys.stdout.write(f'{rc}\\0{out.getvalue()}\\0{err.getvalue()}')\n")
    runs = []
    for mode in ("light", "typer"):
        p = subprocess.run([sys.executable, "-c", code, mode, *args], env=clean_env(),
                           capture_output=True, text=True, timeout=60)
        rc, out, err = p.stdout.split("\0")
        runs.append((int(rc), out, err + p.stderr))
    return runs


@pytest.mark.parametrize("args", [
    ("contract", "-o", "json"),
    ("contract", "-o", "JSON"),  # not a choice (case-sensitive): typer's message
    ("contract", "--output", "xml"),
    ("validate", "-o", "yaml"),
    ("validate", "--timeout", "0"),  # not an Enum or bool: typer's number adapter
    ("profile", "list"),
    ("--version",),
])
def test_light_option_coercion_answers_as_typer_does(args):
    light, typer_own = _run_both(*args)
    assert light == typer_own


def test_light_option_coercion_rejects_a_wrong_choice_with_exit_2():
    (rc, out, err), _ = _run_both("contract", "-o", "xml")
    assert rc == 2 and "'xml' is not one of 'table', 'json', 'junit', 'github'" in err
    assert "Traceback" not in err and out == ""


def test_validate_only_redis_imports_no_client_library(redis_server, tmp_path):
    profile = write_profile(tmp_path, redis={"url": redis_server.url()})
    proc, names = imports("validate", "-p", str(profile), "--only", "redis", "--timeout", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    # platctl speaks RESP itself (checks/resp.py): redis-py (0.15-0.3 s of imports, the
    # OpenTelemetry SDK among them) is not loaded
    assert {"platctl.checks.redis", "platctl.checks.resp"} <= names
    assert loaded(names, *CLIENTS) == []
    assert loaded(names, *(f"platctl.checks.{s}" for s in (
        "arango", "supabase", "gcs", "meilisearch", "duckdb", "consul", "telemetry",
        "runtime"))) == []


def test_validate_only_duckdb_imports_duckdb_and_no_network_client(tmp_path):
    profile = write_profile(tmp_path, duckdb={"path": str(tmp_path / "p.duckdb")})
    proc, names = imports("validate", "-p", str(profile), "--only", "duckdb", "--timeout", "10")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "duckdb" in names
    assert loaded(names, *(c for c in CLIENTS if c != "duckdb")) == []


def test_validate_only_gcs_on_the_emulator_imports_no_google_library(tmp_path):
    """The JSON API over httpx (checks/gcs_api.py): google-cloud-storage, api_core and requests
    cost ~0.45 s of CPU, and the emulator's anonymous calls need nothing of google-auth."""
    from tests.emulators.gcs import GcsEmulator

    with GcsEmulator(bucket="platform") as emu:
        profile = write_profile(tmp_path, gcs={"bucket": "platform", "emulator_host": emu.url})
        proc, names = imports("validate", "-p", str(profile), "--only", "gcs", "--timeout", "5")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert {"platctl.checks.gcs", "httpx"} <= names
    assert loaded(names, "google.cloud", "google.api_core", "google.auth", "google.oauth2",
                  "google.resumable_media", "requests", "urllib3") == []
    # httpcore's connection pool loads h2 whenever it is installed (httpx[http2])
    assert loaded(names, *(c for c in CLIENTS if c not in ("httpx", "h2"))) == []
