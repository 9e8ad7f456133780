"""`platctl profile diff`: per service what changes, templates when variables are unset,
secrets only as present / absent / differs."""
from __future__ import annotations

import io as stdio
import json
import re

from platctl import io
from platctl.commands.profile_diff import diff_profiles
from tests.support import clean_env, platctl, write_profile
from tests.test_profiles import PHASE1_ENV


def rows(stdout: str) -> dict[str, tuple[str, str]]:
    """`  key:  a  →  b` lines as key -> (a, b)."""
    found = re.findall(r"^  (\S+): +(.*?)  →  (.*)$", stdout, re.M)
    return {k: (a, b) for k, a, b in found}


def test_builtin_profiles_diff_without_the_phase1_variables():
    """On a laptop with none of Phase 1's variables: no error, the templates say where each
    value will come from, and what the policy will require."""
    proc = platctl("profile", "diff", "vm", "option-c-phase1", env=clean_env())
    assert proc.returncode == 0, proc.stderr
    r = rows(proc.stdout)
    assert r["policy.require_tls"] == ("false", "true")
    assert r["policy.allow_emulators"] == ("true", "false")
    assert r["redis.url"] == ("redis://localhost:6379/0", "(unset here)")
    assert r["redis.url[from]"] == ("${REDIS_URL:-redis://localhost:6379/0}", "${REDIS_URL:?…}")
    assert r["redis.url[tls]"] == ("no", "required by policy")
    assert r["redis.url[password]"] == ("absent", "required by policy")
    assert r["arango.password"] == ("absent", "(unset here)")
    assert r["consul.url[from]"] == (
        "${CONSUL_SCHEME:-http}://${CONSUL_HOST:-localhost}:${CONSUL_PORT:-8500}",
        "${CONSUL_SCHEME:-http}://${CONSUL_HOST:?…}:${CONSUL_PORT:?…}")
    assert "arango.url[password]" not in r  # only Redis carries its password in the URL
    assert proc.stdout.rstrip().endswith("the same in both: tls, execution")
    assert "platctl-unset" not in proc.stdout  # the stand-ins never show


def test_builtin_profiles_diff_with_the_phase1_environment_prints_no_secret():
    env = clean_env(**PHASE1_ENV)
    proc = platctl("profile", "diff", "vm", "option-c-phase1", env=env)
    assert proc.returncode == 0, proc.stderr
    r = rows(proc.stdout)
    # both read the same keys: with them set, only the sources and the policy differ
    assert "redis.url" not in r and "redis.url[from]" in r
    assert {k for k in r if not k.endswith("[from]")} == {
        "description", "policy.require_tls", "policy.allow_emulators",
        "policy.require_credentials"}
    for secret in ("redis-pw-1", "arango-pw-1", "sb_secret_abc", "sb_publishable_abc",
                   "meili-key-1", "consul-token-1"):
        assert secret not in proc.stdout + proc.stderr


def test_per_service_endpoint_tls_credentials_emulator_and_options(tmp_path):
    a = write_profile(tmp_path, name="a",
                      redis={"url": "redis://127.0.0.1:6379/0"},
                      arango={"url": "http://arango.local:8529", "password": "pw-a-7701",
                              "collections": ["state_data"]},
                      gcs={"bucket": "platform", "emulator_host": "http://127.0.0.1:9023"},
                      consul={"token": "tok-same-5521"})
    b = write_profile(tmp_path, name="b",
                      redis={"url": "rediss://app:redis-pw-b-9902@cache.example:6380/0"},
                      arango={"url": "https://arango.example:8529", "password": "pw-b-7702",
                              "collections": ["state_data", "graph"]},
                      gcs={"bucket": "platform", "emulator_host": "",
                           "credentials_json": "/etc/sa.json"},
                      consul={"token": "tok-same-5521"})
    proc = platctl("profile", "diff", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    r = rows(proc.stdout)
    assert r["redis.url"] == ("redis://127.0.0.1:6379/0", "rediss://app:***@cache.example:6380/0")
    assert r["redis.url[tls]"] == ("no", "yes")
    assert r["redis.url[password]"] == ("absent", "present")
    assert r["arango.url[tls]"] == ("no", "yes")
    assert r["arango.password"] == ("present", "present (secret differs)")
    assert r["arango.collections"] == ("state_data", "state_data, graph")
    assert r["gcs.emulator_host"] == ("http://127.0.0.1:9023", "(none)")
    assert r["gcs.credentials_json"] == ("absent", "present")
    assert "consul.token" not in r  # equal secrets are not a difference
    assert not any(k.endswith("[from]") for k in r)  # literal in both: no sources to compare
    out = proc.stdout + proc.stderr
    for secret in ("pw-a-7701", "pw-b-7702", "redis-pw-b-9902", "tok-same-5521", "/etc/sa.json"):
        assert secret not in out


def test_json_diff_in_process(tmp_path):
    a = write_profile(tmp_path, name="a", consul={"token": "tok-a-123456"})
    b = write_profile(tmp_path, name="b", consul={"token": "tok-b-654321"},
                      execution={"command": "other"})
    out = stdio.StringIO()
    io.streams = io.Streams(out=out, err=stdio.StringIO(), env=clean_env())
    assert diff_profiles(str(a), str(b), "json") == 0
    doc = json.loads(out.getvalue())
    assert (doc["a"]["profile"], doc["b"]["profile"]) == ("a", "b")
    changes = {c["key"]: (c["a"], c["b"]) for c in doc["changes"]}
    assert changes == {"consul.token": ("present", "present (secret differs)"),
                       "execution.command": ("true", "other")}
    assert "redis" in doc["unchanged"] and "tok-" not in out.getvalue()


def test_a_broken_profile_is_a_profile_error_naming_file_line_and_key(tmp_path):
    good = write_profile(tmp_path, name="good")
    bad = write_profile(tmp_path, name="bad", redis={"url": "redis://x:1/0", "port": 1})
    proc = platctl("profile", "diff", str(good), str(bad))
    assert proc.returncode == 2
    assert re.search(r"profile error: .*bad\.yaml:\d+: redis\.port: unknown key", proc.stderr)
    assert "Traceback" not in proc.stderr


def test_a_symlink_loop_is_a_profile_error_not_a_crash(tmp_path):
    """Found by test_fuzz_inputs: an absolute path to a symlink loop made diff crash (exit 3)."""
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    for args in ((str(loop), "vm"), ("vm", str(loop))):
        proc = platctl("profile", "diff", *args, env=clean_env())
        assert proc.returncode == 2, proc.stderr
        assert "profile error" in proc.stderr and "symbolic links" in proc.stderr
