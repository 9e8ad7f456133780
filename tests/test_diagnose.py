"""`platctl diagnose`: the installed CLI against real redis-servers presenting real
certificates, a name that cannot resolve and a wrong password; each case read as the table an
on-call engineer sees and as the JSON a script reads."""
from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest
import trustme

from platctl import contract
from tests.certs import redis_with
from tests.conftest import REDIS_PASSWORD
from tests.support import clean_env, hung_server, platctl, write_profile

DIAGNOSE_SCHEMA = json.loads((Path(__file__).parents[1] / "contract" / "diagnose.schema.json")
                             .read_text())
ENV = clean_env(COLUMNS="250")  # one table row per line: the assertions read rows
NET = ["dns", "tcp", "tls"]


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def diagnose(profile, service="redis", *extra: str, timeout: float = 5):
    """(table run, json run, the JSON document) of `platctl diagnose`."""
    args = ("diagnose", service, "-p", str(profile), "--timeout", str(timeout), *extra)
    table = platctl(*args, env=ENV)
    js = platctl(*args, "-o", "json", env=ENV)
    assert "Traceback" not in table.stderr + js.stderr
    assert table.returncode == js.returncode, (table.stdout, js.stdout)
    doc = json.loads(js.stdout)
    jsonschema.validate(doc, DIAGNOSE_SCHEMA)  # the published contract/diagnose.schema.json
    return table, js, doc


def row(table, layer: str) -> str:
    """The table row of `layer` ("tls", "auth redis.ping") with its continuation lines."""
    lines = table.stdout.splitlines()
    i = next(i for i, ln in enumerate(lines) if f"  {layer} " in ln or ln.rstrip().endswith(
        f"  {layer}"))
    out = [lines[i]]
    for ln in lines[i + 1:]:
        if ln[:1].strip():  # the next row (or the summary) starts in the first column
            break
        out.append(ln)
    return "\n".join(out)


def layers(doc, service="redis") -> dict[str, dict]:
    svc = next(s for s in doc["services"] if s["service"] == service)
    return {(lay["check"] or lay["layer"]): lay for lay in svc["layers"]}


def test_certificate_expiring_in_5_days(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", "localhost", days=5)
    profile = write_profile(tmp_path, redis={"url": served.url}, tls={"ca_file": served.ca})
    table, js, doc = diagnose(profile)
    assert table.returncode == 0, table.stdout + table.stderr
    tls = row(table, "tls")
    assert tls.lstrip().startswith("! warn") and "expires in 5 days" in tls
    for words in ("TLSv1.", "subject OU=Testing cert", "issuer  OU=Testing CA",
                  "SANs    127.0.0.1, localhost", "(5 days left)", "verified yes", "→ renew"):
        assert words in tls, (words, tls)
    assert row(table, "auth redis.ping").lstrip().startswith("✓ pass")
    assert "redis: every layer passed" in table.stdout
    lay = layers(doc)
    assert [s["layer"] for s in doc["services"][0]["layers"]][:4] == [*NET, "auth"]
    assert lay["tls"]["status"] == "warn" and lay["tls"]["reason"] is None
    cert = lay["tls"]["details"]["cert"]
    assert 4.9 < cert["days_left"] <= 5.0 and set(cert["sans"]) == {"127.0.0.1", "localhost"}
    assert lay["tls"]["details"]["verified"] is True and lay["tls"]["details"]["protocol"]
    assert lay["dns"]["details"]["addresses"] == ["127.0.0.1"]
    assert lay["tcp"]["details"]["addresses"][0]["status"] == "connected"
    assert doc["ok"] is True and doc["services"][0]["first_failure"] is None
    assert all(lay[c]["status"] == "pass" for c in ("redis.ping", "redis.streams"))
    assert REDIS_PASSWORD not in table.stdout + js.stdout


def test_hostname_mismatch(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "cache.internal.example")
    profile = write_profile(tmp_path, redis={"url": served.url}, tls={"ca_file": served.ca})
    table, js, doc = diagnose(profile)
    assert table.returncode == 1
    tls = row(table, "tls")
    assert tls.lstrip().startswith("✗ FIRST FAILURE")
    assert "does not match 127.0.0.1: its SANs are cache.internal.example" in tls
    assert "SANs    cache.internal.example" in tls
    assert "verified no: IP address mismatch" in tls  # OpenSSL's verify message
    assert row(table, "auth redis.ping").lstrip().startswith("· not reached")
    assert "redis: first failing layer: tls: certificate does not match 127.0.0.1" in table.stdout
    assert "fix: connect with a name the certificate lists" in table.stdout
    first = doc["services"][0]["first_failure"]
    assert (first["layer"], first["status"], first["reason"]) == ("tls", "fail", "tls")
    assert first["details"]["cert"]["sans"] == ["cache.internal.example"]
    assert first["details"]["verified"] is False
    assert "IP address mismatch" in first["details"]["verify_error"]
    lay = layers(doc)
    assert lay["dns"]["status"] == lay["tcp"]["status"] == "pass"
    assert {lay[c]["status"] for c in contract.BY_NAME["redis"].check_ids[1:]} == {"not_reached"}
    assert doc["ok"] is False


def test_dns_failure(tmp_path):
    url = f"rediss://:{REDIS_PASSWORD}@cache.no-such-host.invalid:6380/0"
    table, js, doc = diagnose(write_profile(tmp_path, redis={"url": url}))
    assert table.returncode == 1
    dns = row(table, "dns")
    assert dns.lstrip().startswith("✗ FIRST FAILURE")
    assert "DNS lookup failed for cache.no-such-host.invalid" in dns and "REDIS_URL" in dns
    assert row(table, "tcp").lstrip().startswith("· not reached")
    assert "not reached: the dns layer failed" in row(table, "tls")
    assert "redis: first failing layer: dns" in table.stdout
    first = doc["services"][0]["first_failure"]
    assert (first["layer"], first["reason"]) == ("dns", "dns")
    assert "check REDIS_URL (profile: redis.url)" == first["hint"]
    assert doc["services"][0]["endpoint"] == "rediss://cache.no-such-host.invalid:6380"
    assert [lay["status"] for lay in doc["services"][0]["layers"]] == \
        ["fail"] + ["not_reached"] * 6
    assert REDIS_PASSWORD not in table.stdout + js.stdout


def test_wrong_password(tmp_path, redis_server):
    wrong = "not-the-password-4410"
    profile = write_profile(tmp_path, redis={"url": redis_server.url(password=wrong)})
    table, js, doc = diagnose(profile)
    assert table.returncode == 1
    assert row(table, "tls").lstrip().startswith("- skip")  # redis://: no TLS to inspect
    auth = row(table, "auth redis.ping")
    assert auth.lstrip().startswith("✗ FIRST FAILURE")
    assert "wrong username or password" in auth and "→ check REDIS_URL" in auth
    assert row(table, "operation redis.streams").lstrip().startswith("· not reached")
    assert "redis: first failing layer: auth (redis.ping): wrong username or password" \
        in table.stdout
    first = doc["services"][0]["first_failure"]
    assert (first["layer"], first["check"], first["reason"]) == ("auth", "redis.ping", "auth")
    lay = layers(doc)
    assert [lay[k]["status"] for k in ("dns", "tcp", "tls")] == ["pass", "pass", "skip"]
    assert wrong not in table.stdout + js.stdout + table.stderr + js.stderr


def test_tls_handshake_that_hangs_is_a_timeout_within_the_deadline(tmp_path):
    with hung_server() as port:
        profile = write_profile(tmp_path, redis={"url": f"rediss://127.0.0.1:{port}/0"})
        t0 = time.monotonic()
        proc = platctl("diagnose", "redis", "-p", str(profile), "-o", "json", "--timeout", "1",
                       env=ENV)
        elapsed = time.monotonic() - t0
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, DIAGNOSE_SCHEMA)
    first = doc["services"][0]["first_failure"]
    assert proc.returncode == 1 and (first["layer"], first["reason"]) == ("tls", "timeout")
    assert "during the TLS handshake" in first["message"]
    assert elapsed < 1 + 3.0, elapsed  # start-up + one timeout, with margin for a loaded host


def test_all_diagnoses_every_service(tmp_path):
    profile = write_profile(tmp_path, duckdb={"path": str(tmp_path / "d.duckdb")})
    table, js, doc = diagnose(profile, "all", timeout=2)
    assert table.returncode == 1  # every network service points at a closed port
    assert [s["service"] for s in doc["services"]] == list(contract.BY_NAME)
    by = {s["service"]: s for s in doc["services"]}
    assert by["duckdb"]["ok"] and by["duckdb"]["endpoint"] is None
    assert [lay["layer"] for lay in by["duckdb"]["layers"]] == ["operation"] * 3
    assert by["arango"]["first_failure"]["layer"] == "tcp"
    assert by["arango"]["first_failure"]["reason"] == "refused"
    for svc in ("redis", "arango", "consul", "telemetry"):
        assert f"{svc}: first failing layer: tcp" in table.stdout
    assert "duckdb: every layer passed" in table.stdout


@pytest.mark.parametrize("args, words", [
    (("diagnose", "redsi"), "unknown service 'redsi'; services: redis, arango"),
    (("diagnose", "redis", "-o", "junit"), "diagnose prints table or json"),
])
def test_usage_errors_exit_2(tmp_path, args, words):
    proc = platctl(*args, "-p", str(write_profile(tmp_path)), env=ENV)
    assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr


def test_read_only_diagnosis_writes_nothing(tmp_path, redis_server):
    """`diagnose --read-only`, as `validate --read-only`: no canary, no write at the server."""
    profile = write_profile(tmp_path, redis={"url": redis_server.url()})
    redis_server.cli("CONFIG", "RESETSTAT")
    table, js, doc = diagnose(profile, "redis", "--read-only")
    assert table.returncode == 0, table.stdout + table.stderr
    lay = layers(doc)
    canary = lay["redis.canary"]
    assert canary["status"] == "skip" and "--read-only" in canary["message"], canary
    assert lay["redis.streams"]["message"].endswith("(read-only: XLEN only)")
    stats = redis_server.cli("INFO", "commandstats")
    assert not any(f"cmdstat_{c}:" in stats for c in ("set", "xadd", "del", "pexpire")), stats
