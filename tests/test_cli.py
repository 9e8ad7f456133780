"""The installed console script in subprocesses: one test per exit code of DESIGN.md that
applies, the boot exec gate (same PID, never started on failure), and output formats."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import PLATCTL, clean_env, hung_server, platctl, write_profile

# Only the services that need no server: DuckDB in a temp dir and the execution plane.
LOCAL = ("--only", "duckdb", "--only", "runtime")


def runtime_script(tmp_path: Path, code: int = 0) -> Path:
    """A sample runtime that records its PID and argv, then exits with `code`."""
    script = tmp_path / "runtime.py"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"open({str(tmp_path / 'ran.json')!r}, 'w').write(json.dumps("
                      "{'pid': os.getpid(), 'argv': sys.argv[1:]}))\n"
                      "print('runtime stdout')\n"
                      f"sys.exit({code})\n")
    script.chmod(0o755)
    return script


def local_profile(tmp_path: Path, **over) -> Path:
    return write_profile(tmp_path, duckdb={"path": str(tmp_path / "db" / "p.duckdb")}, **over)


def test_exit_0_when_every_selected_check_passes(tmp_path):
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), *LOCAL, "-o", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert report["schema"] == "platctl.report/v1" and report["ok"] is True
    assert [p["name"] for p in report["planes"]] == ["data", "execution"]


def test_exit_1_when_a_required_check_fails(tmp_path):
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), "--only", "redis")
    assert proc.returncode == 1
    assert "Platform contract violation: redis.ping failed: connection refused" in proc.stdout
    assert "REDIS_URL" in proc.stdout


def test_exit_2_on_usage_error():
    proc = platctl("validate", "--fail-fast", "--timeout", "-1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_exit_3_on_an_injected_bug(tmp_path):
    # sitecustomize runs at interpreter start: it breaks the runner the way a bug would.
    (tmp_path / "sitecustomize.py").write_text(
        "import platctl.runner\n"
        "def broken(*a, **k):\n    raise ZeroDivisionError('injected bug')\n"
        "platctl.runner.run = broken\n")
    env = clean_env(PYTHONPATH=str(tmp_path))
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), *LOCAL, env=env)
    assert proc.returncode == 3
    assert "internal error (a bug" in proc.stderr and "injected bug" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_boot_execs_the_runtime_in_the_same_process(tmp_path):
    script = runtime_script(tmp_path, code=7)
    p = subprocess.Popen([PLATCTL, "boot", "-p", str(local_profile(tmp_path)), *LOCAL, "--",
                          str(script), "--serve", "x"], env=clean_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    ran = json.loads((tmp_path / "ran.json").read_text())
    assert ran["pid"] == p.pid  # exec, not a child: same PID
    assert ran["argv"] == ["--serve", "x"]
    assert p.returncode == 7  # the runtime's exit code is the command's
    assert out == "runtime stdout\n"  # the report went to stderr; stdout is the runtime's
    assert "runtime.command" in err and "starting" in err


def test_boot_takes_the_command_from_platform_runtime_cmd(tmp_path):
    script = runtime_script(tmp_path)
    env = clean_env(PLATFORM_RUNTIME_CMD=f"{script} --from-env")
    proc = platctl("boot", "-p", str(local_profile(tmp_path)), *LOCAL, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "ran.json").read_text())["argv"] == ["--from-env"]


def test_boot_never_starts_the_runtime_when_redis_is_down(tmp_path):
    script = runtime_script(tmp_path)
    proc = platctl("boot", "-p", str(local_profile(tmp_path)), "--only", "redis",
                   "--only", "runtime", "--", str(script))
    assert proc.returncode == 1
    assert not (tmp_path / "ran.json").exists()
    assert "not starting the runtime" in proc.stderr
    assert "execution plane failed" not in proc.stderr and "data plane failed" in proc.stderr


def test_boot_127_when_the_runtime_is_not_found(tmp_path):
    proc = platctl("boot", "-p", str(local_profile(tmp_path)), *LOCAL, "--",
                   "no-such-runtime-xyz")
    assert proc.returncode == 127
    assert "not found" in proc.stderr


def test_boot_126_when_the_runtime_is_not_executable(tmp_path):
    script = runtime_script(tmp_path)
    script.chmod(0o644)
    proc = platctl("boot", "-p", str(local_profile(tmp_path)), *LOCAL, "--", str(script))
    assert proc.returncode == 126, proc.stderr
    assert not (tmp_path / "ran.json").exists()


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_exit_promptly_and_boot_never_execs(tmp_path, sig, code):
    script = runtime_script(tmp_path)
    with hung_server() as port:
        profile = local_profile(tmp_path, redis={"url": f"redis://127.0.0.1:{port}/0"})
        p = subprocess.Popen([PLATCTL, "boot", "-p", str(profile), "--only", "redis",
                              "--timeout", "30", "--", str(script)], env=clean_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)  # inside the hung redis.ping
        t0 = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
        elapsed = time.monotonic() - t0
    assert p.returncode == code, err
    assert elapsed < 1.0
    assert not (tmp_path / "ran.json").exists()
    assert "Traceback" not in err


def test_a_stuck_client_does_not_hold_the_process(tmp_path):
    # A client that ignores its own timeout: the Redis check's connect patched to block.
    (tmp_path / "sitecustomize.py").write_text(
        "import time, platctl.checks.resp\n"
        "platctl.checks.resp.Connection.open = lambda self, *a, **k: time.sleep(120)\n")
    env = clean_env(PYTHONPATH=str(tmp_path))
    t0 = time.monotonic()
    proc = platctl("validate", "-p", str(local_profile(tmp_path, redis={"url": "redis://127.0.0.1:1"})),
                   "--only", "redis", "--timeout", "1", "-o", "json", env=env)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1
    ping = next(c for c in json.loads(proc.stdout)["checks"] if c["id"] == "redis.ping")
    assert ping["status"] == "fail" and "timed out after 1.0 s" in ping["message"]
    assert elapsed < 3.0


def test_junit_has_one_suite_per_plane(tmp_path):
    import xml.etree.ElementTree as ET
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), "--only", "redis",
                   "--only", "duckdb", "--keep-going", "--only", "runtime", "-o", "junit")
    root = ET.fromstring(proc.stdout)
    assert [s.get("name") for s in root.findall("testsuite")] == ["data", "execution"]
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["redis.ping"].find("failure") is not None
    assert cases["redis.canary"].find("skipped") is not None
    assert cases["duckdb.open"].find("failure") is None


def test_github_annotations_and_step_summary(tmp_path):
    summary = tmp_path / "summary.md"
    env = clean_env(GITHUB_STEP_SUMMARY=str(summary))
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), "--only", "redis",
                   "-o", "github", env=env)
    assert proc.returncode == 1
    assert "::error title=platctl redis.ping::connection refused" in proc.stdout
    assert "| ✗ fail | `redis.ping` |" in summary.read_text()


def test_table_is_plain_when_piped_and_fits_narrow_widths(tmp_path):
    proc = platctl("validate", "-p", str(local_profile(tmp_path)), "--only", "redis",
                   env=clean_env(COLUMNS="50"))
    assert "\x1b[" not in proc.stdout  # no colour codes when not a terminal
    assert max(len(line) for line in proc.stdout.splitlines()) <= 50


def test_color_is_forced_but_no_color_wins(tmp_path):
    args = ("validate", "-p", str(local_profile(tmp_path)), "--only", "redis")
    assert "\x1b[" in platctl(*args, env=clean_env(FORCE_COLOR="1")).stdout
    assert "\x1b[" not in platctl(*args, env=clean_env(FORCE_COLOR="1", NO_COLOR="1")).stdout


def test_fail_fast_and_keep_going(tmp_path):
    profile = str(local_profile(tmp_path))
    keep = json.loads(platctl("validate", "-p", profile, "--keep-going", "-o", "json",
                              "--only", "redis", "--only", "runtime").stdout)
    assert {c["id"]: c["status"] for c in keep["checks"]}["runtime.command"] == "pass"
    stop = json.loads(platctl("validate", "-p", profile, "-o", "json",
                              "--only", "redis", "--only", "runtime").stdout)
    cmd = {c["id"]: c for c in stop["checks"]}["runtime.command"]
    assert cmd["status"] == "skip" and "data plane failed" in cmd["message"]
    fast = json.loads(platctl("validate", "-p", profile, "-o", "json", "--fail-fast",
                              "--only", "redis", "--only", "duckdb").stdout)
    assert fast["ok"] is False


def test_skip_reports_what_was_skipped(tmp_path):
    report = json.loads(platctl("validate", "-p", str(local_profile(tmp_path)), "-o", "json",
                                *LOCAL, "--skip", "duckdb.schema").stdout)
    schema = {c["id"]: c for c in report["checks"]}["duckdb.schema"]
    assert schema["status"] == "skip" and "--skip duckdb.schema" in schema["message"]


def test_version_and_help_are_fast():
    t0 = time.monotonic()
    proc = platctl("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("platctl ")
    assert platctl("--help").returncode == 0
    assert time.monotonic() - t0 < 3.0
