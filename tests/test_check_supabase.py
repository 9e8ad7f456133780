"""Supabase checks through the real runner against the emulator over real HTTP: one test per
failure class (status, reason, message words, hint key), plus the CLI never printing a key."""
from __future__ import annotations

import json
import time

import jwt
import pytest

from tests.emulators.supabase import SupabaseEmulator
from tests.support import (
    BAD_HTTP_ANSWERS,
    assert_fail,
    by_id,
    hung_server,
    platctl,
    run_report,
    write_profile,
)

IDS = ("supabase.keys", "supabase.rest", "supabase.auth", "supabase.storage")
DAY = 24 * 3600


@pytest.fixture
def emu():
    with SupabaseEmulator() as e:
        yield e


@pytest.fixture
def hosted():
    with SupabaseEmulator(hosted=True) as e:
        yield e


def supa(tmp_path, url, service=None, anon=None, buckets=(), only=("supabase",), **section):
    sec = {"url": url, "buckets": list(buckets), **section}
    if service is not None:
        sec["service_key"] = service
    if anon is not None:
        sec["anon_key"] = anon
    report = run_report(write_profile(tmp_path, supabase=sec), only=only, timeout=2)
    return report, by_id(report)


def keys_of(emu, **over):
    return {"service": emu.service_role_key, "anon": emu.anon_key, **over}


def statuses(r):
    return [r[i].status.value for i in IDS]


def assert_no_key(check, *keys):
    text = check.message + (check.hint or "")
    for key in keys:
        assert key not in text
        if key.count(".") == 2:
            assert key.rsplit(".", 1)[1] not in text  # nor the signature part


# -- green paths ---------------------------------------------------------------------------------
def test_green_path_with_legacy_jwt_keys(tmp_path, emu):
    report, r = supa(tmp_path, emu.url, **keys_of(emu), buckets=["avatars"])
    assert statuses(r) == ["pass"] * 4 and report.ok, r
    assert "role service_role" in r["supabase.keys"].message
    assert "role anon" in r["supabase.keys"].message
    assert "iss supabase" in r["supabase.keys"].message
    assert "PostgREST 12.2.12 answers with the service key" in r["supabase.rest"].message
    assert "GoTrue v2.177.0 healthy; the gateway accepts the anon key" in r["supabase.auth"].message
    assert "Storage lists 2 bucket(s); required present: avatars" in r["supabase.storage"].message
    for check in r.values():
        assert_no_key(check, emu.service_role_key, emu.anon_key)
    # legacy JWT keys travel as apikey AND Bearer
    assert all(q.header("authorization") == f"Bearer {q.header('apikey')}" for q in emu.requests)


def test_green_path_with_opaque_keys_never_sent_as_bearer(tmp_path, emu):
    report, r = supa(tmp_path, emu.url, emu.secret_key, emu.publishable_key)
    assert statuses(r) == ["pass"] * 4 and report.ok, r
    assert "sb_secret_ key (role service_role)" in r["supabase.keys"].message
    assert "sb_publishable_ key (role anon)" in r["supabase.keys"].message
    assert "none required by supabase.buckets" in r["supabase.storage"].message
    assert len(emu.requests) == 3
    assert all(q.header("authorization") is None for q in emu.requests)


# -- keys (local inspection) ---------------------------------------------------------------------
def test_swapped_keys(tmp_path, emu):
    swapped = emu.swapped_keys()
    report, r = supa(tmp_path, emu.url, swapped["service_role"], swapped["anon"])
    assert_fail(r["supabase.keys"], "config", "swapped", "SUPABASE_SERVICE_KEY holds the anon key"
                " and SUPABASE_ANON_KEY the service key", hint="SUPABASE_SERVICE_KEY")
    assert statuses(r)[1:] == ["skip"] * 3 and not report.ok
    assert emu.requests == []  # decided locally


def test_publishable_key_as_service_key_is_the_swap_too(tmp_path, emu):
    _, r = supa(tmp_path, emu.url, emu.publishable_key, emu.secret_key)
    assert_fail(r["supabase.keys"], "config", "swapped", hint="SUPABASE_ANON_KEY")


def test_anon_key_as_both_keys(tmp_path, emu):
    _, r = supa(tmp_path, emu.url, emu.anon_key, emu.anon_key)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_SERVICE_KEY holds the anon key",
                "not the service key", hint="SUPABASE_SERVICE_KEY")


def test_service_key_as_anon_key_warns_of_the_leak(tmp_path, emu):
    _, r = supa(tmp_path, emu.url, emu.service_role_key, emu.service_role_key)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_ANON_KEY holds the service_role key",
                "full database access", hint="SUPABASE_ANON_KEY")


def test_expired_key(tmp_path, emu):
    key = emu.mint_jwt("service_role", expired=True)
    report, r = supa(tmp_path, emu.url, key, emu.anon_key)
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 3600))
    assert_fail(r["supabase.keys"], "auth", f"SUPABASE_SERVICE_KEY expired on {day}",
                hint="SUPABASE_SERVICE_KEY")
    assert "SUPABASE_ANON_KEY" not in r["supabase.keys"].hint
    assert statuses(r)[1:] == ["skip"] * 3 and not report.ok
    assert_no_key(r["supabase.keys"], key)


def test_expiring_soon_warns(tmp_path, emu):
    key = emu.mint_jwt("anon", exp=int(time.time()) + 10 * DAY)
    report, r = supa(tmp_path, emu.url, emu.service_role_key, key)
    keys = r["supabase.keys"]
    assert keys.status.value == "warn" and report.ok
    assert "SUPABASE_ANON_KEY expires on" in keys.message and "(in 10 days)" in keys.message
    assert "SUPABASE_ANON_KEY" in keys.hint
    assert statuses(r)[1:] == ["pass"] * 3


@pytest.mark.parametrize("bad", ["not-a-key", "sb_something_abc", "a.b.c", "eyJhbGciOi.x"])
def test_not_a_key_is_config(tmp_path, emu, bad):
    _, r = supa(tmp_path, emu.url, emu.service_role_key, bad)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_ANON_KEY is not a Supabase API key",
                hint="SUPABASE_ANON_KEY")
    assert bad not in r["supabase.keys"].message


def test_jwt_without_role(tmp_path, emu):
    key = jwt.encode({"iss": "supabase", "exp": int(time.time()) + DAY}, emu.jwt_secret)
    _, r = supa(tmp_path, emu.url, key, emu.anon_key)
    assert_fail(r["supabase.keys"], "config", "JWT without a role claim",
                hint="SUPABASE_SERVICE_KEY")


def test_missing_keys(tmp_path, emu):
    _, r = supa(tmp_path, emu.url)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_SERVICE_KEY and SUPABASE_ANON_KEY are not"
                " set", hint="supabase.service_key")
    assert "SUPABASE_ANON_KEY" in r["supabase.keys"].hint
    _, r = supa(tmp_path, emu.url, anon=emu.anon_key)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_SERVICE_KEY is not set",
                hint="SUPABASE_SERVICE_KEY")


def test_keys_of_another_project_than_the_url(tmp_path):
    other = SupabaseEmulator(hosted=True, project_ref="otherprojectref00000")
    _, r = supa(tmp_path, "https://myprojectref000000000.supabase.co", other.service_role_key,
                other.anon_key, only=("supabase.keys",))
    assert_fail(r["supabase.keys"], "config", "project otherprojectref00000",
                "SUPABASE_URL points at project myprojectref000000000", hint="SUPABASE_URL")
    mine = SupabaseEmulator(hosted=True, project_ref="myprojectref000000000")
    _, r = supa(tmp_path, "https://x.supabase.co", mine.service_role_key, other.anon_key,
                only=("supabase.keys",))
    assert_fail(r["supabase.keys"], "config", "different projects", hint="SUPABASE_ANON_KEY")


# -- rest ----------------------------------------------------------------------------------------
def test_invalid_key_at_the_gateway(tmp_path, emu):
    key = emu.mint_jwt("service_role", wrong_signature=True, register=False)  # another project's
    report, r = supa(tmp_path, emu.url, key, emu.anon_key)
    assert r["supabase.keys"].status.value == "pass"
    assert_fail(r["supabase.rest"], "auth", "gateway rejects SUPABASE_SERVICE_KEY",
                "Invalid authentication credentials", hint="SUPABASE_SERVICE_KEY")
    assert r["supabase.auth"].status.value == "pass" and not report.ok
    assert_no_key(r["supabase.rest"], key)


def test_invalid_key_hosted_wording(tmp_path, hosted):
    hosted.revoke(hosted.anon_key)
    _, r = supa(tmp_path, hosted.url, **keys_of(hosted))
    assert_fail(r["supabase.auth"], "auth", "gateway rejects SUPABASE_ANON_KEY", "Invalid API key",
                hint="SUPABASE_ANON_KEY")


def test_wrong_signature_after_jwt_secret_rotation(tmp_path, emu):
    emu.rotate_jwt_secret()
    _, r = supa(tmp_path, emu.url, **keys_of(emu))
    assert_fail(r["supabase.rest"], "auth", "PostgREST rejects the JWT of SUPABASE_SERVICE_KEY",
                "PGRST301", "JWT secret", hint="SUPABASE_SERVICE_KEY")
    assert_fail(r["supabase.storage"], "auth", "Storage rejects the JWT", "invalid signature",
                "JWT secret", hint="SUPABASE_SERVICE_KEY")


def test_gateway_that_does_not_translate_sb_keys(tmp_path, emu):
    # supabase-py would send the sb_ key as Bearer and get PGRST301 "Expected 3 parts"; the check
    # never does, so PostgREST passes and Storage (which needs a JWT) names the real problem.
    emu.translate_sb_keys = False
    _, r = supa(tmp_path, emu.url, emu.secret_key, emu.publishable_key)
    assert r["supabase.rest"].status.value == "pass"
    assert_fail(r["supabase.storage"], "auth", "jwt must be provided",
                "does not translate opaque sb_ keys",
                hint="SUPABASE_SERVICE_KEY")
    assert all(q.header("authorization") is None for q in emu.requests)


def test_stripped_apikey_header(tmp_path, emu):
    emu.drop_apikey = True
    _, r = supa(tmp_path, emu.url, **keys_of(emu))
    assert_fail(r["supabase.rest"], "auth", "no API key", "proxy", hint="SUPABASE_SERVICE_KEY")
    assert_fail(r["supabase.auth"], "auth", "no API key", hint="SUPABASE_ANON_KEY")


@pytest.mark.parametrize("status", [401, 403])
def test_hosted_anon_refusal(tmp_path, hosted, status):
    hosted.anon_refusal_status = status
    # the keys step catches an anon key given as the service key before any request ...
    _, r = supa(tmp_path, hosted.url, hosted.anon_key, hosted.anon_key)
    assert_fail(r["supabase.keys"], "config", "SUPABASE_SERVICE_KEY holds the anon key")
    # ... and the rest step alone classifies the gateway's refusal
    report, r = supa(tmp_path, hosted.url, hosted.publishable_key, hosted.anon_key,
                     only=("supabase.rest",))
    assert [c.id for c in report.checks if c.status.value != "skip"] == ["supabase.rest"]
    assert_fail(r["supabase.rest"], "forbidden", "SUPABASE_SERVICE_KEY is an anon/publishable key",
                "Access to schema is forbidden", hint="SUPABASE_SERVICE_KEY")


def test_schema_cache_503(tmp_path, emu):
    emu.schema_cache_error = True
    _, r = supa(tmp_path, emu.url, **keys_of(emu))
    assert_fail(r["supabase.rest"], "unavailable", "not ready", "HTTP 503", "PGRST002",
                hint="SUPABASE_URL")
    assert r["supabase.storage"].status.value == "pass"


def test_rest_down_behind_the_gateway(tmp_path, emu):
    emu.down.add("rest")
    _, r = supa(tmp_path, emu.url, **keys_of(emu))
    assert_fail(r["supabase.rest"], "server", "PostgREST behind the gateway is down", "HTTP 502",
                hint="SUPABASE_URL")


# -- auth / storage -----------------------------------------------------------------------------
def test_gotrue_down(tmp_path, emu):
    emu.down.add("auth")
    report, r = supa(tmp_path, emu.url, **keys_of(emu))
    assert_fail(r["supabase.auth"], "server", "GoTrue behind the gateway is down", "HTTP 502",
                hint="SUPABASE_URL")
    assert [r[i].status.value for i in ("supabase.rest", "supabase.storage")] == ["pass", "pass"]
    assert not report.ok


def test_storage_missing_buckets_are_all_listed(tmp_path, emu):
    report, r = supa(tmp_path, emu.url, **keys_of(emu), buckets=["avatars", "docs", "media"])
    assert_fail(r["supabase.storage"], "missing", "bucket(s) missing: docs, media",
                "lists 2 bucket(s)", hint="supabase.buckets")
    assert not report.ok


def test_storage_missing_bucket_not_required(tmp_path, emu):
    report, r = supa(tmp_path, emu.url, **keys_of(emu), buckets=["docs"], required=False)
    assert r["supabase.storage"].status.value == "fail" and report.ok


def test_storage_bad_jwt_is_400_with_403_in_body(tmp_path, emu):
    key = emu.mint_jwt("service_role", wrong_signature=True)  # accepted by the gateway
    _, r = supa(tmp_path, emu.url, key, emu.anon_key, only=("supabase.storage",))
    assert_fail(r["supabase.storage"], "auth", "Storage rejects the JWT of SUPABASE_SERVICE_KEY",
                "invalid signature", hint="SUPABASE_SERVICE_KEY")
    assert_no_key(r["supabase.storage"], key)


def test_storage_expired_jwt_when_keys_step_skipped(tmp_path, emu):
    key = emu.mint_jwt("service_role", expired=True)
    _, r = supa(tmp_path, emu.url, key, emu.anon_key, only=("supabase.storage",))
    assert_fail(r["supabase.storage"], "auth", "jwt expired", "the key has expired")


# -- transport failures --------------------------------------------------------------------------
def test_refused(tmp_path, emu):
    report, r = supa(tmp_path, "http://127.0.0.1:1", **keys_of(emu))
    assert_fail(r["supabase.rest"], "refused", "connection refused", hint="SUPABASE_URL")
    for i in ("supabase.auth", "supabase.storage"):  # same gateway: repeated, not retried
        assert_fail(r[i], "refused", "connection refused", "supabase.rest", hint="SUPABASE_URL")
    assert not report.ok


def test_hung_server_verdict_within_timeout(tmp_path, emu):
    with hung_server() as port:
        t0 = time.monotonic()
        _, r = supa(tmp_path, f"http://127.0.0.1:{port}", **keys_of(emu))
        elapsed = time.monotonic() - t0
    print(f"hung supabase: verdict with --timeout 2 in {elapsed:.2f} s")
    assert_fail(r["supabase.rest"], "timeout", "timed out after 2.0 s", hint="SUPABASE_URL")
    assert_fail(r["supabase.storage"], "timeout", "timed out")
    assert elapsed <= 2.5


def test_hung_emulator(tmp_path, emu):
    emu.fault = "hang"
    _, r = supa(tmp_path, emu.url, **keys_of(emu), only=("supabase.auth",))
    assert_fail(r["supabase.auth"], "timeout", "timed out after 2.0 s", hint="SUPABASE_URL")


def test_dns(tmp_path, emu):
    _, r = supa(tmp_path, "http://no-such-supabase.invalid:8000", **keys_of(emu))
    assert_fail(r["supabase.rest"], "dns", "DNS lookup failed", hint="SUPABASE_URL")


def test_tls_against_plaintext_server(tmp_path, emu):
    _, r = supa(tmp_path, emu.url.replace("http://", "https://"), **keys_of(emu))
    assert_fail(r["supabase.tls"], "tls", "TLS handshake", hint="SUPABASE_URL")
    assert "CA bundle" in r["supabase.tls"].hint


@pytest.mark.parametrize("fault, reason, words", BAD_HTTP_ANSWERS)
def test_bad_answers(tmp_path, emu, fault, reason, words):
    emu.fault = fault
    report, r = supa(tmp_path, emu.url, **keys_of(emu))
    for i in IDS[1:]:
        assert_fail(r[i], reason, *words, hint="SUPABASE_URL")
    assert not report.ok


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_exit_1_and_keys_never_printed(tmp_path, emu):
    emu.rotate_jwt_secret()
    service, anon = emu.service_role_key, emu.anon_key
    profile = write_profile(tmp_path, supabase={"url": emu.url, "service_key": service,
                                                "anon_key": anon})
    proc = platctl("validate", "-p", str(profile), "--only", "supabase", "-o", "json",
                   "--timeout", "2")
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout + proc.stderr
    for key in (service, anon):
        assert key not in out and key.rsplit(".", 1)[1] not in out
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["supabase.rest"]["reason"] == "auth"
    assert "SUPABASE_SERVICE_KEY" in checks["supabase.rest"]["hint"]
