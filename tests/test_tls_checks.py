"""`SERVICE.tls` in validate: real redis-servers presenting real certificates (trustme) that
expire soon, have expired, are not valid yet, name another host or come from another CA."""
from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import timedelta

import pytest
import trustme

from platctl import contract
from platctl.checks.tls import Certificate, Endpoint, Inspection, judge
from tests.certs import NOW, redis_with
from tests.conftest import REDIS_PASSWORD
from tests.support import assert_fail, by_id, platctl, run_report, write_profile

WIDE = {"COLUMNS": "250"}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def report(tmp_path, served, ca_file=None, **opts):
    profile = write_profile(tmp_path, redis={"url": served.url},
                            tls={"ca_file": ca_file or served.ca})
    return run_report(profile, only=("redis",), timeout=5, **opts)


def test_every_network_service_checks_tls_before_it_connects():
    # gcs.credentials and telemetry.endpoint only read the profile: they may come first.
    local = {"gcs": 1, "telemetry": 1}
    for spec in contract.SERVICES:
        if spec.name in ("duckdb", "runtime"):
            assert f"{spec.name}.tls" not in spec.check_ids
        else:
            assert spec.check_ids[local.get(spec.name, 0)] == f"{spec.name}.tls", spec.check_ids


def test_expiring_in_5_days_warns_and_the_run_still_passes(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=5)
    r = report(tmp_path, served)
    t = r.checks[0]
    assert (t.id, t.status.value, t.reason) == ("redis.tls", "warn", None)
    assert "expires in 5 days" in t.message and "notAfter" in t.message
    assert "renew" in t.hint and "REDIS_URL" in t.hint
    assert by_id(r)["redis.ping"].status.value == "pass" and r.ok


def test_expiring_in_5_days_in_the_cli_table_and_json(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=5)
    profile = write_profile(tmp_path, redis={"url": served.url}, tls={"ca_file": served.ca})
    table = platctl("validate", "-p", str(profile), "--only", "redis", env=_env())
    assert table.returncode == 0, table.stdout + table.stderr
    row = next(ln for ln in table.stdout.splitlines() if "redis.tls" in ln)
    assert "warn" in row and "expires in 5 days" in row
    doc = json.loads(platctl("validate", "-p", str(profile), "--only", "redis", "-o", "json",
                             env=_env()).stdout)
    tls = next(c for c in doc["checks"] if c["id"] == "redis.tls")
    assert tls["status"] == "warn" and "expires in 5 days" in tls["message"] and doc["ok"]
    assert REDIS_PASSWORD not in table.stdout + json.dumps(doc)


def test_valid_certificate_passes_with_a_summary(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=200)
    t = report(tmp_path, served).checks[0]
    assert t.status.value == "pass", t
    assert "issued by" in t.message and "trustme" in t.message and "TLSv1" in t.message
    assert "199 more days" in t.message or "200 more days" in t.message


def test_expired_fails_with_the_date_and_skips_the_rest(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=-3, starts_in=-30)
    r = by_id(report(tmp_path, served))
    assert_fail(r["redis.tls"], "tls", "expired on", "3 days ago", "Testing cert",
                hint="renew")
    assert r["redis.ping"].status.value == "skip" and "redis.tls failed" in r["redis.ping"].message


def test_not_yet_valid_fails(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=30, starts_in=2)
    r = by_id(report(tmp_path, served))
    assert_fail(r["redis.tls"], "tls", "not valid yet", "valid from", "clock")


def test_hostname_mismatch_names_the_sans_it_saw(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "db.internal.example",
                        "db2.internal.example")
    r = by_id(report(tmp_path, served))
    assert_fail(r["redis.tls"], "tls", "does not match 127.0.0.1",
                "its SANs are db.internal.example, db2.internal.example", hint="REDIS_URL")


def test_dns_name_mismatch_names_the_sans_it_saw(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "cache.internal.example")
    served = replace(served, url=served.url.replace("127.0.0.1", "localhost"))
    r = by_id(report(tmp_path, served))
    assert_fail(r["redis.tls"], "tls", "does not match localhost",
                "its SANs are cache.internal.example", hint="reissue it for localhost")


def test_untrusted_ca_names_subject_and_issuer(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1")
    other = trustme.CA()
    other_file = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_file))
    t = by_id(report(tmp_path, served, ca_file=str(other_file)))["redis.tls"]
    assert_fail(t, "tls", "certificate verify failed: self-signed certificate in certificate chain",
                "OU=Testing cert", "issuer OU=Testing CA", "not signed by a trusted CA",
                hint="tls.ca_file")
    assert "SSL_CERT_FILE" in t.hint


def test_plaintext_endpoint_is_skipped_without_connecting(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        url = f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
        r = run_report(write_profile(tmp_path, redis={"url": url}), only=("redis.tls",))
        t = by_id(r)["redis.tls"]
        assert t.status.value == "skip"
        assert t.message == f"plaintext endpoint (redis://127.0.0.1:{port}): no TLS to check"
        with pytest.raises(BlockingIOError):  # nobody connected
            listener.accept()


def test_skip_option_applies_to_the_tls_check(tmp_path, ca, redis_factory):
    served = redis_with(redis_factory, ca, tmp_path / "c", "127.0.0.1", days=-3, starts_in=-30)
    r = by_id(report(tmp_path, served, skip=("redis.tls",)))
    assert r["redis.tls"].status.value == "skip" and "--skip redis.tls" in r["redis.tls"].message
    # redis.ping ran (the gate was skipped, not failed) and met the certificate in its own handshake
    assert_fail(r["redis.ping"], "tls", "certificate verify failed")


# -- the verdict alone, on certificates as the inspection reads them ------------------------
EP = Endpoint("https", "api.example", 443, "url", True, "http://")


def cert(days_left: float, since: float = 30) -> Certificate:
    return Certificate("CN=api.example", "CN=Example CA", ("api.example",),
                       NOW - timedelta(days=since), NOW + timedelta(days=days_left))


@pytest.mark.parametrize("days_left, status", [(13.9, "warn"), (14.1, "pass"), (0.5, "warn"),
                                               (-0.1, "fail")])
def test_the_14_day_threshold(days_left, status):
    got = judge(Inspection("TLSv1.3", "X", cert(days_left), days_left > 0), EP, "check X",
                now=NOW)
    assert got.status.value == status, got


def test_a_verified_but_expired_certificate_still_fails():
    # Dates are judged from the certificate whatever the verifier said (a clock skew between
    # the verifier's notion of now and ours must not turn an expired certificate into a pass).
    got = judge(Inspection("TLSv1.3", "X", cert(-2), True), EP, "check X", now=NOW)
    assert (got.status.value, got.reason.value) == ("fail", "tls") and "expired" in got.message


def _env():
    from tests.support import clean_env

    return clean_env(**WIDE)
