"""Issue 5, item 2: the exec receipt and --ready-file, through the installed console script.

The runtime inherits platctl's environment plus PLATCTL_PROFILE, PLATCTL_PROFILE_SHA256 (of
the resolved, secret-free profile) and PLATCTL_REPORT (a 0600 JSON report written before the
exec); nothing secret in any of them. --ready-file appears only after a pass.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from platctl import receipt
from platctl.profiles.loader import load_path
from tests.conftest import REDIS_PASSWORD
from tests.support import CLOSED, PLATCTL, RuntimeStandIn, clean_env, platctl, write_profile

RUNTIME = "platctl-receipt-runtime"
SHELL_KEYS = {"PWD", "OLDPWD", "SHLVL", "_"}  # what sh itself may add to its environment


class Runtime(RuntimeStandIn):
    """The stand-in runtime (tests/support.py), booted with Redis and itself checked."""

    def __init__(self, tmp: Path, ready: Path | None = None) -> None:
        super().__init__(tmp, RUNTIME, ready)

    def boot(self, profile: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([PLATCTL, "boot", "-p", str(profile), "--only", "redis",
                               "--only", "runtime", *args], env={**self.vars, **env},
                              capture_output=True, text=True, timeout=60)


def sha_from_profile_show(profile: Path, env: dict[str, str]) -> str:
    """Independently of receipt.py: `profile show` (secrets masked), as canonical JSON."""
    shown = subprocess.run([PLATCTL, "profile", "show", str(profile)], env=env,
                           capture_output=True, text=True, timeout=30, check=True).stdout
    text = json.dumps(yaml.safe_load(shown), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_runtime_gets_the_receipt_and_nothing_secret(tmp_path, redis_server):
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url()})
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    proc = rt.boot(profile, XDG_RUNTIME_DIR=str(xdg))
    assert proc.returncode == 0, proc.stderr
    pid = int(proc.stdout.split()[2])  # "runtime pid N"
    got = rt.environ()
    given = {**rt.vars, "XDG_RUNTIME_DIR": str(xdg)}
    added = set(got) - set(given) - SHELL_KEYS
    assert added == {"PLATCTL_PROFILE", "PLATCTL_PROFILE_SHA256", "PLATCTL_REPORT"}, added
    assert all(got[k] == v for k, v in given.items() if k not in SHELL_KEYS)
    assert got["PLATCTL_PROFILE"] == str(profile)  # a path, made absolute
    assert got["PLATCTL_PROFILE_SHA256"] == sha_from_profile_show(profile, rt.vars)
    report_path = Path(got["PLATCTL_REPORT"])
    assert report_path == xdg / "platctl" / f"report-{pid}.json"  # the runtime's own PID
    assert stat.S_IMODE(report_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(report_path.parent.stat().st_mode) == 0o700
    doc = json.loads(report_path.read_text())
    assert doc["schema"] == "platctl.report/v1" and doc["ok"] is True
    assert {c["id"] for c in doc["checks"] if c["status"] == "pass"} >= {"redis.ping"}
    everything = report_path.read_text() + "".join(f"{k}={v}" for k, v in got.items()) + \
        proc.stdout + proc.stderr
    assert REDIS_PASSWORD not in everything
    assert [p.name for p in report_path.parent.iterdir()] == [report_path.name]  # no temp left


def test_report_location_tmpdir_and_explicit(tmp_path, redis_server):
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url()})
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    proc = rt.boot(profile, TMPDIR=str(tmpdir))
    assert proc.returncode == 0, proc.stderr
    path = Path(rt.environ()["PLATCTL_REPORT"])
    assert path.parent == tmpdir / f"platctl-{os.getuid()}"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    chosen = tmp_path / "reports" / "boot.json"
    chosen.parent.mkdir()
    proc = rt.boot(profile, PLATCTL_REPORT=str(chosen))
    assert proc.returncode == 0, proc.stderr
    assert rt.environ()["PLATCTL_REPORT"] == str(chosen)
    assert stat.S_IMODE(chosen.stat().st_mode) == 0o600 and json.loads(chosen.read_text())["ok"]


def test_reports_of_runtimes_that_are_gone_are_removed(tmp_path, redis_server):
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url()})
    xdg = tmp_path / "xdg"
    (xdg / "platctl").mkdir(parents=True, mode=0o700)
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = xdg / "platctl" / f"report-{gone.pid}.json"
    alive = xdg / "platctl" / f"report-{os.getpid()}.json"  # this test's own process
    for f in (dead, alive):
        f.write_text("{}")
    proc = rt.boot(profile, XDG_RUNTIME_DIR=str(xdg))
    assert proc.returncode == 0, proc.stderr
    assert not dead.exists() and alive.exists()
    assert Path(rt.environ()["PLATCTL_REPORT"]).exists()


def test_a_shared_report_directory_is_refused_but_the_runtime_starts(tmp_path, redis_server):
    """Another user's (or a world-writable) platctl-UID in /tmp is a trap: no report there;
    the runtime starts without PLATCTL_REPORT and a warning says why."""
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url()})
    tmpdir = tmp_path / "tmp"
    trap = tmpdir / f"platctl-{os.getuid()}"
    trap.mkdir(parents=True)
    trap.chmod(0o777)
    proc = rt.boot(profile, TMPDIR=str(tmpdir))
    assert proc.returncode == 0, proc.stderr
    assert "warning: no report file" in proc.stderr and "not a private directory" in proc.stderr
    assert "PLATCTL_REPORT" not in rt.environ() and list(trap.iterdir()) == []


def test_an_explicit_report_path_that_cannot_be_written_is_exit_2(tmp_path, redis_server):
    rt = Runtime(tmp_path)
    profile = rt.profile(redis={"url": redis_server.url()})
    proc = rt.boot(profile, PLATCTL_REPORT=str(tmp_path / "missing" / "r.json"))
    assert proc.returncode == 2, proc.stderr
    assert "PLATCTL_REPORT: cannot write" in proc.stderr and not rt.env_file.exists()


def test_profile_digest_follows_settings_not_secrets(tmp_path):
    def digest(**sections) -> str:  # noqa: ANN003
        return receipt.profile_sha256(load_path(write_profile(tmp_path, **sections), clean_env()))

    base = digest(redis={"url": "redis://:first-password-123@h:6379/0"})
    assert base == digest(redis={"url": "redis://:other-password-456@h:6379/0"})
    assert base != digest(redis={"url": "redis://:first-password-123@h:6380/0"})
    assert base != digest(redis={"url": "redis://:first-password-123@h:6379/0"},
                          gcs={"bucket": "elsewhere"})
    assert len(base) == 64 and int(base, 16) >= 0


# -- --ready-file -------------------------------------------------------------------------------
def validate(profile: Path, ready: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PLATCTL, "validate", "-p", str(profile), "--only", "redis",
                           "--ready-file", str(ready), *args], env=clean_env(),
                          capture_output=True, text=True, timeout=60)


def test_ready_file_only_after_a_pass(tmp_path, redis_server):
    ready = tmp_path / "ready"
    good = write_profile(tmp_path, "good", redis={"url": redis_server.url()})
    proc = validate(good, ready)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(ready.read_text())
    assert doc == {"ok": True, "profile": "good",
                   "profile_sha256": sha_from_profile_show(good, clean_env())}
    assert REDIS_PASSWORD not in ready.read_text()
    bad = write_profile(tmp_path, "bad", redis={"url": f"redis://{CLOSED}/0"})
    proc = validate(bad, ready)  # the earlier run's file must not survive a failing run
    assert proc.returncode == 1 and not ready.exists()


@pytest.mark.parametrize("command", ["validate", "boot"])
def test_ready_file_in_a_missing_directory_is_exit_2_before_any_check(tmp_path, command):
    profile = write_profile(tmp_path, redis={"url": f"redis://{CLOSED}/0"})
    proc = subprocess.run([PLATCTL, command, "-p", str(profile), "--ready-file",
                           str(tmp_path / "nope" / "ready")], env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr, proc.stderr
    assert "redis.ping" not in proc.stdout + proc.stderr  # refused before running anything


@pytest.mark.parametrize("command", ["validate", "boot"])
def test_a_ready_file_path_too_long_for_the_os_is_exit_2_not_a_crash(tmp_path, command):
    # Path.is_dir() raises ENAMETOOLONG instead of answering False (a crash, exit 3, before)
    proc = platctl(command, "-p", str(write_profile(tmp_path)), "--only", "runtime",
                   "--ready-file", str(tmp_path / ("a" * 300) / "ready"), env=clean_env())
    assert proc.returncode == 2, proc.stderr
    assert "--ready-file" in proc.stderr and "unusable path" in proc.stderr
    assert "internal error" not in proc.stderr


def test_boot_writes_the_ready_file_before_the_exec(tmp_path, redis_server):
    ready = tmp_path / "ready"
    ready.write_text("stale\n")
    rt = Runtime(tmp_path, ready=ready)
    proc = rt.boot(rt.profile(redis={"url": redis_server.url()}), "--ready-file", str(ready),
                   "--wait", "10s")
    assert proc.returncode == 0, proc.stderr
    assert "ready-file-present" in proc.stdout and json.loads(ready.read_text())["ok"] is True


@pytest.mark.parametrize("command", ["validate", "boot"])
def test_an_empty_ready_file_path_is_a_usage_error(command):
    proc = platctl(command, "--ready-file", "", env=clean_env())
    assert proc.returncode == 2 and "--ready-file" in proc.stderr and "empty path" in proc.stderr
