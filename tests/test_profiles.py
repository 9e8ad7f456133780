"""Profiles: substitution, built-in profiles and their environment keys, policy, and every
kind of bad input giving one message that names file, line and key (exit 2, no traceback)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from platctl.profiles.envsubst import SubstitutionError, expand
from platctl.profiles.loader import ProfileError, load, load_path
from tests.support import BASE_PROFILE, clean_env, platctl, write_profile

PHASE1_ENV = dict(
    REDIS_URL="rediss://app:redis-pw-1@redis.example:6380/0", ARANGO_URL="https://arango.example",
    ARANGO_USERNAME="app", ARANGO_PASSWORD="arango-pw-1", ARANGO_DATABASE="platform",
    SUPABASE_URL="https://ref.supabase.co", SUPABASE_SERVICE_KEY="sb_secret_abc",
    SUPABASE_ANON_KEY="sb_publishable_abc", GCS_PROJECT_ID="proj", GCS_BUCKET_NAME="blobs",
    GCS_CREDENTIALS_JSON='{"type": "service_account"}', MEILISEARCH_URL="https://meili.example",
    MEILI_MASTER_KEY="meili-key-1", DUCKDB_DATABASE_PATH="/var/lib/platform.duckdb",
    CONSUL_SCHEME="https", CONSUL_HOST="consul.example", CONSUL_PORT="8501",
    CONSUL_TOKEN="consul-token-1", OTEL_EXPORTER_OTLP_ENDPOINT="https://otel.example:4318")


# -- substitution ---------------------------------------------------------------------------
@pytest.mark.parametrize("text,env,want", [
    ("${A}", {"A": "x"}, "x"),
    ("${A:-d}", {}, "d"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A:-${B:-z}}", {}, "z"),
    ("http://${H:-localhost}:${P:-7700}", {"P": "1"}, "http://localhost:1"),
    ("pa$$word", {}, "pa$word"),
    ("pa$word", {}, "pa$word"),
    ("${A:?need A}", {"A": "ok"}, "ok"),
])
def test_expand(text, env, want):
    assert expand(text, env) == want


@pytest.mark.parametrize("text,env,words", [
    ("${A}", {}, "A is not set"),
    ("${A:?set the thing}", {}, "A is not set: set the thing"),
    ("${A:?}", {"A": ""}, "A is empty"),
    ("${A", {}, "unclosed"),
    ("${1A}", {}, "bad variable name"),
    ("${A:+x}", {"A": "1"}, "unsupported"),
])
def test_expand_errors(text, env, words):
    with pytest.raises(SubstitutionError, match=words):
        expand(text, env)


# -- built-in profiles ------------------------------------------------------------------------
def test_vm_defaults_to_local_ports_without_any_env():
    p = load("vm", env={})
    assert p.redis.url.get_secret_value() == "redis://localhost:6379/0"
    assert p.arango.url.get_secret_value() == "http://localhost:8529"
    assert p.meilisearch.url.get_secret_value() == "http://localhost:7700"
    assert p.consul.url.get_secret_value() == "http://localhost:8500"
    assert p.arango.password is None and p.gcs.emulator_host is None


def test_vm_reads_every_contract_env_key():
    env = dict(REDIS_URL="redis://:pw@r:1/2", ARANGO_ROOT_PASSWORD="root-pw",
               MEILISEARCH_HOST="m", MEILISEARCH_PORT="7701", CONSUL_HOST="c", CONSUL_PORT="1",
               CONSUL_SCHEME="https", DUCKDB_READ_ONLY="true", DUCKDB_DATABASE_PATH="/d.db",
               STORAGE_EMULATOR_HOST="http://127.0.0.1:9023", GCS_BUCKET_NAME="b",
               OTEL_EXPORTER_OTLP_ENDPOINT="http://o:4318", SUPABASE_URL="http://s:8000")
    p = load("vm", env=env)
    assert p.arango.password.get_secret_value() == "root-pw"  # ARANGO_PASSWORD's fallback
    assert p.meilisearch.url.get_secret_value() == "http://m:7701"
    assert p.consul.url.get_secret_value() == "https://c:1"
    assert p.duckdb.read_only is True and str(p.duckdb.path) == "/d.db"
    assert p.gcs.emulator_host == "http://127.0.0.1:9023" and p.gcs.bucket == "b"
    assert load("vm", env={**env, "MEILISEARCH_URL": "http://x:1"}).meilisearch.url \
        .get_secret_value() == "http://x:1"
    assert load("vm", env={**env, "ARANGO_PASSWORD": "p2"}).arango.password \
        .get_secret_value() == "p2"


def test_phase1_loads_with_every_key():
    p = load("option-c-phase1", env=PHASE1_ENV)
    assert p.policy.require_tls and p.redis.url.password == "redis-pw-1"


@pytest.mark.parametrize("key", ["REDIS_URL", "SUPABASE_SERVICE_KEY", "CONSUL_TOKEN",
                                 "OTEL_EXPORTER_OTLP_ENDPOINT", "GCS_CREDENTIALS_JSON"])
def test_phase1_missing_key_is_named(key):
    env = {k: v for k, v in PHASE1_ENV.items() if k != key}
    with pytest.raises(ProfileError) as err:
        load("option-c-phase1", env=env)
    assert key in str(err.value) and "option-c-phase1.yaml:" in str(err.value)


@pytest.mark.parametrize("key,value,words", [
    ("REDIS_URL", "redis://:pw@r:6379/0", "redis.url: this profile requires TLS"),
    ("ARANGO_URL", "http://arango.example", "arango.url: this profile requires TLS"),
    ("CONSUL_SCHEME", "http", "consul.url: this profile requires TLS"),
    ("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023", "gcs.emulator_host: emulator"),
    ("REDIS_URL", "rediss://r:6380/0", "redis.url: this profile requires credentials"),
])
def test_phase1_policy(key, value, words):
    with pytest.raises(ProfileError, match=words):
        load("option-c-phase1", env={**PHASE1_ENV, key: value})


def test_secrets_are_masked_in_str_and_repr():
    p = load("option-c-phase1", env=PHASE1_ENV)
    text = f"{p} {p!r} {p.redis.url} {p.redis.url!r} {p.consul.token}"
    for secret in ("redis-pw-1", "arango-pw-1", "consul-token-1", "sb_secret_abc"):
        assert secret not in text
    assert p.secret_values() >= {"redis-pw-1", "arango-pw-1", "consul-token-1", "meili-key-1"}


# -- resolution -----------------------------------------------------------------------------
def test_resolution_order(tmp_path, monkeypatch):
    (tmp_path / "dir").mkdir()
    (tmp_path / "profiles").mkdir()
    write_profile(tmp_path / "dir", name="vm", execution={"command": "from-dir"})
    write_profile(tmp_path / "profiles", name="vm", execution={"command": "from-cwd"})
    env = {"PLATCTL_PROFILE_DIR": str(tmp_path / "dir")}
    assert load("vm", env=env, cwd=tmp_path).execution.command == "from-dir"
    assert load("vm", env={}, cwd=tmp_path).execution.command == "from-cwd"
    assert load("vm", env={}, cwd=tmp_path / "dir").execution.command == "platform-runtime"


# -- bad input: one message naming file, line and key ----------------------------------------
def _err(tmp_path: Path, text: str | bytes, env=None) -> str:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ProfileError) as err:
        load_path(path, env or {})
    return str(err.value)


def _valid_yaml(**over) -> str:
    import yaml
    from tests.support import deep_merge
    return yaml.safe_dump(deep_merge(BASE_PROFILE, over), sort_keys=False)


def test_unknown_key_names_line_and_key(tmp_path):
    text = _valid_yaml().replace("redis:\n", "redis:\n  uri: x\n", 1)
    msg = _err(tmp_path, text)
    line = text.splitlines().index("  uri: x") + 1
    assert msg == f"{tmp_path}/bad.yaml:{line}: redis.uri: unknown key"


def test_wrong_type_names_key(tmp_path):
    msg = _err(tmp_path, _valid_yaml(execution={"command": "x", "port": "eighty"}))
    assert "execution.port" in msg and "integer" in msg


def test_port_out_of_range_and_odd_scheme(tmp_path):
    assert "execution.port" in _err(tmp_path, _valid_yaml(execution={"port": 70000}))
    msg = _err(tmp_path, _valid_yaml(redis={"url": "http://h:1"}))
    assert "redis.url" in msg and "redis://" in msg
    assert "redis.url" in _err(tmp_path, _valid_yaml(redis={"url": "redis://h:99999"}))


def test_url_error_never_echoes_password(tmp_path):
    msg = _err(tmp_path, _valid_yaml(redis={"url": "http://u:hunter2-pw@h:1"}))
    assert "hunter2-pw" not in msg


def test_bad_yaml_names_line(tmp_path):
    assert ":3: invalid YAML" in _err(tmp_path, "name: x\nredis:\n\turl: x\n")


def test_missing_variable_names_line_and_key(tmp_path):
    text = _valid_yaml().replace("url: redis://127.0.0.1:1/0", "url: ${REDIS_URL}")
    msg = _err(tmp_path, text)
    assert "redis.url: environment variable REDIS_URL is not set" in msg and "bad.yaml:" in msg


@pytest.mark.parametrize("content,words", [
    (b"", "empty profile"),
    (b"# only a comment\n", "empty profile"),
    (b"\x00\x01\x02binary", "binary data"),
    (b"name: \xff\xfe\n", "not UTF-8"),
    (b"- a\n- b\n", "top level must be a mapping"),
    (b"name: a\nname: b\n", "duplicate key"),
])
def test_junk_files(tmp_path, content, words):
    assert words in _err(tmp_path, content)


def test_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    assert "alias bomb" in _err(tmp_path, "\n".join(lines) + "\n")


def test_not_found_directory_and_symlink_loop(tmp_path):
    with pytest.raises(ProfileError, match="file not found"):
        load_path(tmp_path / "nope.yaml", {})
    with pytest.raises(ProfileError, match="is a directory"):
        load_path(tmp_path, {})
    loop = tmp_path / "loop.yaml"
    os.symlink(loop, loop)
    with pytest.raises(ProfileError, match="cannot read"):
        load_path(loop, {})


def test_unknown_profile_name_lists_known_ones(tmp_path):
    with pytest.raises(ProfileError, match="unknown profile 'vn'.*option-c-phase1, vm"):
        load("vn", env={}, cwd=tmp_path)


# -- the CLI: exit 2, one line, no traceback --------------------------------------------------
@pytest.mark.parametrize("args", [
    ["validate", "-p", "no-such-profile"],
    ["validate", "-p", "/nonexistent/x.yaml"],
    ["validate", "-p", "option-c-phase1"],
    ["validate", "--timeout", "abc"],
    ["validate", "--only", "redsi"],
    ["validate", "-o", "xml"],
    ["profile", "show", "option-c-phase1"],
    ["profile", "lint", "/etc"],
])
def test_cli_usage_and_profile_errors_exit_2(args):
    proc = platctl(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_profile_show_masks_every_secret():
    proc = platctl("profile", "show", "option-c-phase1", env=clean_env(**PHASE1_ENV))
    assert proc.returncode == 0, proc.stderr
    for secret in ("redis-pw-1", "arango-pw-1", "sb_secret_abc", "sb_publishable_abc",
                   "meili-key-1", "consul-token-1", "service_account"):
        assert secret not in proc.stdout
    assert "rediss://app:***@redis.example:6380/0" in proc.stdout


def test_profile_diff_compares_secrets_without_printing_them(tmp_path):
    a = write_profile(tmp_path, name="a", consul={"token": "tok-a-123"})
    b = write_profile(tmp_path, name="b", consul={"token": "tok-b-456"},
                      execution={"command": "other"})
    proc = platctl("profile", "diff", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\n  consul\.token: +present  →  present \(secret differs\)\n", proc.stdout)
    assert re.search(r"\n  execution\.command: +true  →  other\n", proc.stdout)
    assert "tok-a-123" not in proc.stdout and "tok-b-456" not in proc.stdout


def test_profile_list_and_lint(tmp_path):
    proc = platctl("profile", "list")
    assert "vm" in proc.stdout and "option-c-phase1" in proc.stdout
    good = write_profile(tmp_path)
    assert platctl("profile", "lint", str(good)).returncode == 0
