"""`platctl profile lint`: schema errors (exit 2), policy and hygiene warnings, unset variables
as notes (exit 0), waivers ending soon; each finding with file:line, key and a fix."""
from __future__ import annotations

import io as stdio
import json
import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from platctl import io
from platctl.commands.lint import lint_profile
from platctl.profiles.loader import ProfileError, builtin_dir, load
from tests.support import BASE_PROFILE, clean_env, deep_merge, platctl
from tests.test_profiles import PHASE1_ENV

REPO = Path(__file__).resolve().parents[1]
MANAGED = {"policy": {"require_tls": True, "allow_emulators": False,
                      "require_credentials": True}}


def line_of(path: Path, needle: str) -> int:
    return next(i for i, ln in enumerate(path.read_text().splitlines(), 1) if needle in ln)


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def base_yaml(**over) -> str:
    """The tests' base profile, without its inline Arango password (a lint warning itself)."""
    base = deep_merge(BASE_PROFILE, {"arango": {"password": None}})
    return yaml.safe_dump(deep_merge(base, over), sort_keys=False)


def lint_in_process(path: Path, env=None, today=date(2030, 6, 1), fmt="table"):
    out, err = stdio.StringIO(), stdio.StringIO()
    io.streams = io.Streams(out=out, err=err, env=clean_env() if env is None else env)
    try:
        code = lint_profile(str(path), fmt, today)
    except ProfileError as exc:
        return 2, out.getvalue(), str(exc)
    return code, out.getvalue(), ""


def test_vm_lints_clean():
    proc = platctl("profile", "lint", str(REPO / "profiles/vm.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"ok: {REPO / 'profiles/vm.yaml'} is a valid profile (vm)\n"


def test_phase1_lints_without_its_secrets_and_flags_the_consul_scheme_default():
    """No Phase 1 variable set (a CI job without secrets): valid, exit 0; each variable it
    needs is a note at its line; the `${CONSUL_SCHEME:-http}` fallback is a warning."""
    path = REPO / "profiles/option-c-phase1.yaml"
    proc = platctl("profile", "lint", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    consul = line_of(path, "url: \"${CONSUL_SCHEME")
    assert (f"{path}:{consul}: warning: consul.url: is http:// when CONSUL_SCHEME is unset,"
            " which policy.require_tls refuses\n    fix: always set CONSUL_SCHEME, or change"
            " the default to https:// in the file\n") in proc.stdout
    redis = line_of(path, "url: \"${REDIS_URL")
    assert (f"{path}:{redis}: note: redis.url: REDIS_URL is not set here; validate needs it\n"
            in proc.stdout)
    assert "neither ARANGO_PASSWORD nor ARANGO_ROOT_PASSWORD is set" in proc.stdout
    assert ": error:" not in proc.stdout
    assert proc.stdout.splitlines()[-1] == (f"ok: {path} is a valid profile (option-c-phase1):"
                                            " 1 warning, 19 notes")
    # the same profile with its environment: no notes, the warning stays (it is in the file)
    proc = platctl("profile", "lint", str(path), env=clean_env(**PHASE1_ENV))
    assert proc.returncode == 0 and "note:" not in proc.stdout
    assert proc.stdout.splitlines()[-1].endswith("(option-c-phase1): 1 warning")


def test_a_loader_error_is_a_lint_error_with_file_line_key(tmp_path):
    """With the variables set, lint and the loader agree: a plaintext ARANGO_URL under
    require_tls is refused by both."""
    path = REPO / "profiles/option-c-phase1.yaml"
    env = clean_env(**{**PHASE1_ENV, "ARANGO_URL": "http://arango.example"})
    proc = platctl("profile", "lint", str(path), env=env)
    assert proc.returncode == 2
    line = line_of(path, "url: \"${ARANGO_URL")
    assert f"{path}:{line}: error: arango.url: this profile requires TLS" in proc.stdout
    assert f"platctl: profile error: {path}:{line}: arango.url: this profile requires TLS" \
        in proc.stderr
    with pytest.raises(ProfileError) as exc:  # validate says the same
        load(str(path), env)
    assert (exc.value.line, exc.value.key) == (line, "arango.url")


def test_unsafe_profile_findings_each_with_line_key_and_fix(tmp_path):
    text = base_yaml(**MANAGED, redis={"url": "rediss://app:inline-redis-pw-4471@r.example:6380/0"},
                     arango={"url": "${ARANGO_URL:-http://localhost:8529}",
                             "password": "${ARANGO_PASSWORD:-default-pw-8812}"},
                     supabase={"url": "https://x.supabase.co",
                               "service_key": "sb_secret_inline_0042", "anon_key": "${SB_ANON}"},
                     gcs={"bucket": "b", "credentials_json": "${GCS_SA:?}",
                          "emulator_host": "${STORAGE_EMULATOR_HOST-localhost:9023}"},
                     meilisearch={"url": "https://m.example", "api_key": "${MEILI_KEY:-}"},
                     consul={"url": "https://c.example", "token": "${CONSUL_TOKEN:?}"},
                     telemetry={"endpoint": "https://o.example"})
    path = write(tmp_path, text)
    # where the loader would take those fallbacks, they are errors: validate would refuse
    code, out, err = lint_in_process(path)
    assert code == 2 and "arango.url: this profile requires TLS" in err
    assert re.search(r"error: gcs.emulator_host: .*\n.*\n.*error: meilisearch.api_key", out)
    # where the environment sets them, the profile loads, and the fallbacks are warnings
    env = clean_env(ARANGO_URL="https://a.example", STORAGE_EMULATOR_HOST="",
                    MEILI_KEY="meili-key-in-env-5510")
    code, out, err = lint_in_process(path, env=env)
    assert code == 0, out + err
    found = re.findall(r"^\S+:(\d+): (\w+): (\S+): (.*)\n    fix: (.*)$", out, re.M)
    by_key = {key: (int(line), sev, msg, fix) for line, sev, key, msg, fix in found}
    assert by_key["redis.url"] == (line_of(path, "inline-redis-pw"), "warning",
                                   "a password in the URL is written in the profile",
                                   "read it from the environment: ${REDIS_URL}")
    assert by_key["supabase.service_key"][1:3] == ("warning", "a secret is written in the profile")
    assert by_key["arango.password"][2] == "a secret is written as the default of a ${...}"
    assert by_key["arango.url"][1:3] == (
        "warning", "is http:// when ARANGO_URL is unset, which policy.require_tls refuses")
    assert by_key["gcs.emulator_host"][1:3] == (
        "warning", "is an emulator when STORAGE_EMULATOR_HOST is unset, which"
                   " policy.allow_emulators refuses")
    assert by_key["meilisearch.api_key"][1:3] == (
        "warning", "is empty when MEILI_KEY is unset, which policy.require_credentials refuses")
    assert "SB_ANON is not set here" in out and "GCS_SA is not set here" in out
    for secret in ("inline-redis-pw-4471", "default-pw-8812", "sb_secret_inline_0042",
                   "meili-key-in-env-5510"):
        assert secret not in out + err


def test_schema_errors_exit_2_with_every_error_listed(tmp_path):
    text = base_yaml(redis={"url": "redis://x:1/0", "colour": "red"},
                     execution={"command": "true", "port": 70000})
    path = write(tmp_path, text)
    proc = platctl("profile", "lint", str(path))
    assert proc.returncode == 2
    assert f"{path}:{line_of(path, 'colour')}: error: redis.colour: unknown key" in proc.stdout
    assert f"{path}:{line_of(path, 'port: 70000')}: error: execution.port:" in proc.stdout
    assert proc.stdout.splitlines()[-1] == f"error: {path} is not a valid profile (test): 2 errors"
    assert "profile error" in proc.stderr and "(and 1 more; see the lint report)" in proc.stderr


def test_a_literal_plaintext_url_under_require_tls_is_an_error_whatever_the_env(tmp_path):
    path = write(tmp_path, base_yaml(**MANAGED, consul={"url": "http://${CONSUL_HOST:?}:8500"}))
    code, out, err = lint_in_process(path)
    assert code == 2 and "consul.url: is http:// whatever the environment holds" in out


@pytest.mark.parametrize("until,words", [
    (date(2030, 5, 31), "the waiver of redis.eviction expired on 2030-05-31: the check fails"
                        " again"),
    (date(2030, 6, 1), "the waiver of redis.eviction expires in 0 days (2030-06-01)"),
    (date(2030, 6, 15), "the waiver of redis.eviction expires in 14 days (2030-06-15)"),
    (date(2030, 6, 16), None),
])
def test_waivers_ending_within_14_days_are_listed(tmp_path, until, words):
    path = write(tmp_path, base_yaml(waivers=[{"check": "redis.eviction", "reason": "OPS-7",
                                               "until": until}]))
    code, out, _ = lint_in_process(path, today=date(2030, 6, 1))
    assert code == 0
    if words is None:
        assert "waivers.0" not in out
    else:
        assert f"{path}:{line_of(path, 'until:')}: warning: waivers.0: {words}\n" in out


def test_json_findings(tmp_path):
    path = write(tmp_path, base_yaml(consul={"url": "http://c:1", "token": "tok-inline-99887"}))
    code, out, _ = lint_in_process(path, fmt="json")
    doc = json.loads(out)
    assert code == 0 and doc["valid"] and doc["profile"] == "test"
    assert doc["findings"] == [{"severity": "warning", "line": line_of(path, "tok-inline"),
                                "key": "consul.token", "message": "a secret is written in the"
                                " profile", "fix": "read it from the environment:"
                                " ${CONSUL_TOKEN}"}]
    assert "tok-inline-99887" not in out


def test_builtin_profiles_carry_the_schema_comment_and_lines_still_match():
    for name in ("vm", "option-c-phase1"):
        path = builtin_dir() / f"{name}.yaml"
        first = path.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../contract/profile.schema.json"
        schema = (path.parent / first.split("$schema=")[1]).resolve()
        assert json.loads(schema.read_text())["title"] == "platctl deployment profile"
    path = builtin_dir() / "option-c-phase1.yaml"
    env = {k: v for k, v in PHASE1_ENV.items() if k != "SUPABASE_SERVICE_KEY"}
    with pytest.raises(ProfileError) as exc:
        load("option-c-phase1", env)
    assert (exc.value.line, exc.value.key) == (line_of(path, "service_key:"),
                                               "supabase.service_key")


def test_a_name_too_long_for_the_filesystem_is_a_profile_error(tmp_path):
    """Found by test_fuzz_inputs: Path.exists() raised ENAMETOOLONG (exit 3)."""
    proc = platctl("profile", "lint", "x" * 300, env=clean_env())
    assert proc.returncode == 2 and "profile error" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
