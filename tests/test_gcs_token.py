"""The real service-account credential flow: google-auth signs a JWT with an RSA key made in
the test, exchanges it at the key's token_uri (tests/tokenserver.py verifies the signature with
the public key, over HTTPS), and the bucket checks then run with the issued token against the
real gcp-storage-emulator behind an HTTPS front that admits only issued tokens. Each way the
exchange can be refused has its own message and hint."""
from __future__ import annotations

import json
import time

import pytest

from tests.emulators.base import json_reply
from tests.emulators.gcs import GcsEmulator
from tests.support import by_id, run_report, write_profile
from tests.tokenserver import GOOGLE_AUD, GcsFront, TokenServer, rsa_key, service_account_json

EMAIL = "platform-runtime@acme-prod.iam.gserviceaccount.com"
IDS = ("gcs.credentials", "gcs.bucket", "gcs.permissions", "gcs.canary")


@pytest.fixture(scope="module")
def key():
    return rsa_key()


@pytest.fixture(scope="module")
def stack(tls_certs, key):
    tls = (str(tls_certs["cert"]), str(tls_certs["key"]))
    with GcsEmulator(bucket="platform") as emu, TokenServer(tls) as tokens, \
            GcsFront(("127.0.0.1", emu.port), tokens, tls) as front:
        yield emu, tokens, front


@pytest.fixture
def tokens(stack, key):
    _, tokens, front = stack
    tokens.reset()
    tokens.accounts, tokens.revoked, tokens.clock_offset = {EMAIL: key[1]}, set(), 0.0
    tokens.forced, front.authorized = None, 0
    tokens.issued.clear()
    tokens.claims.clear()
    return tokens


def run(tmp_path, stack, tls_certs, private_pem, **opts):
    emu, tokens, front = stack
    sa = service_account_json(EMAIL, private_pem, tokens.token_uri)
    profile = write_profile(tmp_path, gcs={"bucket": "platform", "emulator_host": None,
                                           "endpoint": front.url, "credentials_json": sa},
                            tls={"ca_file": str(tls_certs["ca"])})
    return by_id(run_report(profile, only=("gcs",), timeout=5, **opts))


def token_requests(tokens):
    return [q for q in tokens.requests if q.path == "/token"]


def test_token_exchange_then_bucket_checks_with_the_issued_token(tmp_path, stack, tokens,
                                                                  tls_certs, key):
    emu, _, front = stack
    r = run(tmp_path, stack, tls_certs, key[0])
    assert [r[i].status.value for i in IDS] == ["pass"] * 4, [r[i].message for i in IDS]
    assert r["gcs.credentials"].message == (f"service account {EMAIL} (project acme-prod),"
                                            f" GCS API at {front.url}")
    assert "bucket platform exists at 127.0.0.1" in r["gcs.bucket"].message
    # one real exchange: signed with the test's key, verified by the token endpoint
    assert len(token_requests(tokens)) == 1 and len(tokens.claims) == 1
    claims = tokens.claims[0]
    assert claims["iss"] == EMAIL and claims["aud"] == GOOGLE_AUD
    assert "devstorage" in claims["scope"]
    # every JSON API call carried the issued token (the front refuses anything else)
    assert front.authorized >= 5 and list(tokens.issued.values()) == [EMAIL]
    assert emu.objects("platctl-canary/") == []


def test_front_refuses_a_token_it_did_not_see_issued(tmp_path, stack, tokens, tls_certs, key):
    _, _, front = stack
    tokens.forced = json_reply(200, {"access_token": "ya29.not-issued", "expires_in": 3599,
                                     "token_type": "Bearer"})
    b = run(tmp_path, stack, tls_certs, key[0])["gcs.bucket"]
    assert (b.status.value, b.reason.value) == ("fail", "auth"), b.message
    assert "GCS answered 401" in b.message and "Invalid Credentials" in b.message
    assert front.authorized == 0


def test_key_that_is_not_the_accounts_key(tmp_path, stack, tokens, tls_certs):
    other_private, _ = rsa_key()  # a valid key, but not the one registered for EMAIL
    b = run(tmp_path, stack, tls_certs, other_private)["gcs.bucket"]
    assert (b.status.value, b.reason.value) == ("fail", "auth")
    assert "rejects the signature made with the private key of " + EMAIL in b.message
    assert "Invalid JWT Signature." in b.message and "not a current key" in b.message
    assert "create a new key for " + EMAIL in b.hint and "GCS_CREDENTIALS_JSON" in b.hint
    assert len(token_requests(tokens)) == 1 and tokens.issued == {}  # nothing issued


def test_private_key_that_is_not_a_key(tmp_path, stack, tokens, tls_certs, key):
    broken = key[0].replace(key[0].splitlines()[3], "B" * 64)
    r = run(tmp_path, stack, tls_certs, broken)
    c = r["gcs.credentials"]
    assert (c.status.value, c.reason.value) == ("fail", "config")
    assert "not a valid PEM private key" in c.message and "BBBB" not in c.message
    assert token_requests(tokens) == []  # decided locally


def test_revoked_credentials(tmp_path, stack, tokens, tls_certs, key):
    tokens.revoked.add(EMAIL)
    b = run(tmp_path, stack, tls_certs, key[0])["gcs.bucket"]
    assert (b.status.value, b.reason.value) == ("fail", "auth")
    assert f"the credentials of {EMAIL} are revoked or expired" in b.message
    assert "Token has been expired or revoked." in b.message
    assert "create a new key" in b.hint


@pytest.mark.parametrize("offset, side", [(-7200, "ahead of"), (7200, "behind")])
def test_clock_skew_beyond_the_tolerance(tmp_path, stack, tokens, tls_certs, key, offset, side):
    tokens.clock_offset = offset  # the token endpoint's clock differs from ours by 2 h
    b = run(tmp_path, stack, tls_certs, key[0])["gcs.bucket"]
    assert (b.status.value, b.reason.value) == ("fail", "auth")
    assert "refuses the JWT's iat/exp: this host's clock is wrong by about" in b.message
    assert f"({side} the token endpoint's Date header)" in b.message
    assert "reasonable timeframe" in b.message
    skew = float(b.message.split("by about ")[1].split(" s")[0])
    assert 7190 <= skew <= 7210
    assert "synchronise this host's clock" in b.hint and "GCS_CREDENTIALS_JSON" not in b.hint


def test_the_three_refusals_read_differently(tmp_path, stack, tokens, tls_certs, key):
    seen = set()
    for setup in ("signature", "revoked", "clock"):
        tokens.revoked, tokens.clock_offset = set(), 0.0
        pem = rsa_key()[0] if setup == "signature" else key[0]
        if setup == "revoked":
            tokens.revoked.add(EMAIL)
        if setup == "clock":
            tokens.clock_offset = 3 * 3600
        b = run(tmp_path, stack, tls_certs, pem)["gcs.bucket"]
        seen.add((b.message.split(" (")[0], b.hint))
    assert len(seen) == 3


def test_retryable_token_error_is_one_attempt_within_budget(tmp_path, stack, tokens, tls_certs,
                                                            key):
    # google-auth would back off and retry a body naming temporarily_unavailable, whatever
    # its status (oauth2/_client._can_retry)
    tokens.forced = json_reply(400, {"error": "temporarily_unavailable",
                                     "error_description": "try again"})
    t0 = time.monotonic()
    b = run(tmp_path, stack, tls_certs, key[0])["gcs.bucket"]
    assert time.monotonic() - t0 < 4  # one backoff sleep alone would be >= 1 s per retry
    assert (b.status.value, b.reason.value) == ("fail", "server")
    assert "temporarily_unavailable" in b.message
    assert len(token_requests(tokens)) == 1


def test_no_key_material_in_the_report(tmp_path, stack, tokens, tls_certs, key):
    tokens.revoked.add(EMAIL)
    r = run(tmp_path, stack, tls_certs, key[0])
    text = json.dumps({i: (c.message, c.hint) for i, c in r.items()})
    body = [line for line in key[0].splitlines() if "-----" not in line]
    assert not any(line in text for line in body) and "PRIVATE KEY" not in text


def test_plaintext_token_uri_is_refused_when_the_profile_requires_tls(tmp_path, stack, tokens,
                                                                      key):
    _, _, front = stack
    sa = service_account_json(EMAIL, key[0], "http://127.0.0.1:9/token")
    closed = "https://127.0.0.1:1"  # TLS URLs for the services not under test
    profile = write_profile(tmp_path, gcs={"bucket": "platform", "emulator_host": None,
                                           "endpoint": front.url, "credentials_json": sa},
                            policy={"require_tls": True}, redis={"url": "rediss://127.0.0.1:1"},
                            arango={"url": closed}, supabase={"url": closed},
                            meilisearch={"url": closed}, consul={"url": closed},
                            telemetry={"endpoint": closed})
    c = by_id(run_report(profile, only=("gcs.credentials",), timeout=5))["gcs.credentials"]
    assert (c.status.value, c.reason.value) == ("fail", "config")
    assert "token_uri (http://127.0.0.1:9) is not https" in c.message
    assert "GCS_CREDENTIALS_JSON" in c.hint
