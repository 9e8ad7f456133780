"""`option-c-phase1` end to end against a local stack with TLS on every hop (tests/tls_stack.py),
through the installed CLI: green for all 8 services with the test CA configured (SSL_CERT_FILE,
or tls.ca_file in a copy of the profile); without it every network service fails on TLS
verification, naming the certificate's subject; a plaintext URL or the GCS emulator variable is a
profile error (exit 2) naming the key."""
from __future__ import annotations

import json
import socket

import pytest

from platctl.profiles.loader import builtin_dir
from tests.support import free_port, platctl
from tests.tls_stack import NETWORK, SUBJECT_CN, phase1_stack

SERVICES = (*NETWORK, "duckdb", "runtime")


@pytest.fixture(scope="module")
def stack():
    with phase1_stack() as s:
        yield s


def port_8080_busy() -> bool:
    """The built-in profile's runtime port; another process on it is not this test's subject."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", 8080))
        except OSError:
            return True
    return False


def validate(env, profile="option-c-phase1", *extra):
    skip = ("--skip", "runtime.port") if profile == "option-c-phase1" and port_8080_busy() else ()
    proc = platctl("validate", "-p", str(profile), "-o", "json", "--timeout", "5", *skip, *extra,
                   env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def checks_of(proc):
    return json.loads(proc.stdout)["checks"]


def assert_all_green(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = checks_of(proc)
    assert {c["service"] for c in checks} == set(SERVICES)
    bad = [(c["id"], c["status"], c["message"]) for c in checks
           if c["status"] != "pass" and c["id"] != "runtime.port"]
    assert bad == []
    for service in NETWORK:  # each network service really was checked over TLS
        tls = next(c for c in checks if c["id"] == f"{service}.tls")
        assert f"CN={SUBJECT_CN}" in tls["message"], tls


def test_green_for_all_8_services_with_ssl_cert_file(stack):
    proc = validate({**stack.env, "SSL_CERT_FILE": str(stack.certs.ca)})
    assert_all_green(proc)
    by_id = {c["id"]: c for c in checks_of(proc)}
    assert "over TLS" in by_id["redis.ping"]["message"]
    assert "sb_secret_ key" in by_id["supabase.keys"]["message"]
    assert f"GCS API at {stack.env['GCS_ENDPOINT']}" in by_id["gcs.credentials"]["message"]
    assert "certificate verified" in by_id["telemetry.connect"]["message"]
    # the GCS checks ran with a token the HTTPS token endpoint issued for the key's signature
    assert stack.emulators["tokens"].claims and stack.emulators["gcs_front"].authorized >= 5


def test_green_with_tls_ca_file_in_a_copy_of_the_profile(stack, tmp_path):
    text = (builtin_dir() / "option-c-phase1.yaml").read_text()
    line = 'ca_file: "${SSL_CERT_FILE:-}"'
    assert text.count(line) == 1
    copy = tmp_path / "option-c-phase1.yaml"
    copy.write_text(text.replace(line, f'ca_file: "{stack.certs.ca}"')
                    .replace("port: 8080", f"port: {free_port()}"))
    assert "SSL_CERT_FILE" not in stack.env
    assert_all_green(validate(stack.env, copy))


def test_without_the_ca_every_network_service_fails_on_tls_naming_the_subject(stack):
    proc = validate(stack.env, "option-c-phase1", "--keep-going")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    checks = checks_of(proc)
    for service in NETWORK:
        first = next(c for c in checks if c["service"] == service and c["status"] == "fail")
        assert first["reason"] == "tls", first
        assert SUBJECT_CN in first["message"], first
        assert "certificate verify failed" in first["message"], first
        assert "SSL_CERT_FILE" in first["hint"] or "tls.ca_file" in first["hint"], first
    for c in checks:  # local services are not affected
        if c["service"] in ("duckdb", "runtime") and c["id"] != "runtime.port":
            assert c["status"] == "pass", c


@pytest.mark.parametrize("key, value, field", [
    ("REDIS_URL", "redis://:phase1-redis-pw-5190@127.0.0.1:6379/0", "redis.url"),
    ("ARANGO_URL", "http://127.0.0.1:8529", "arango.url"),
    ("SUPABASE_URL", "http://127.0.0.1:8000", "supabase.url"),
    ("GCS_ENDPOINT", "http://127.0.0.1:9023", "gcs.endpoint"),
    ("MEILISEARCH_URL", "http://127.0.0.1:7700", "meilisearch.url"),
    ("CONSUL_SCHEME", "http", "consul.url"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "telemetry.endpoint"),
])
def test_a_plaintext_url_is_a_profile_error_naming_the_key(stack, key, value, field):
    proc = validate({**stack.env, key: value, "SSL_CERT_FILE": str(stack.certs.ca)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""  # no report: nothing was checked
    assert f"{field}: this profile requires TLS" in proc.stderr, proc.stderr
    assert key in proc.stderr, proc.stderr
    assert "phase1-redis-pw-5190" not in proc.stderr


def test_the_gcs_emulator_variable_is_refused(stack):
    env = {**stack.env, "SSL_CERT_FILE": str(stack.certs.ca),
           "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9023"}
    proc = validate(env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "gcs.emulator_host" in proc.stderr and "unset STORAGE_EMULATOR_HOST" in proc.stderr
    assert "GCS_ENDPOINT" in proc.stderr  # where a GCS API at another URL goes instead
