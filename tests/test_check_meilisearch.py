"""Meilisearch checks through the real runner against the emulator over real HTTP: one test per
failure class (status, reason, message words, hint key), plus the CLI never printing the key."""
from __future__ import annotations

import json
import time

import pytest

from tests.emulators.base import Reply
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.support import BAD_HTTP_ANSWERS, assert_fail, by_id, platctl, run_report, write_profile

IDS = ("meilisearch.health", "meilisearch.auth", "meilisearch.indexes")


@pytest.fixture
def emu():
    with MeilisearchEmulator(indexes={"movies": "id", "books": None}) as e:
        yield e


@pytest.fixture
def open_emu():
    with MeilisearchEmulator(master_key=None) as e:
        yield e


def meili(tmp_path, url, key=None, indexes=(), **section):
    sec = {"url": url, "indexes": list(indexes), **section}
    if key is not None:
        sec["api_key"] = key
    report = run_report(write_profile(tmp_path, meilisearch=sec), only=("meilisearch",),
                        timeout=2)
    return report, by_id(report)


def statuses(r):
    return [r[i].status.value for i in IDS]


def auth_headers(emu):
    return [req.header("authorization") for req in emu.requests]


# -- green paths ---------------------------------------------------------------------------------
def test_green_path_with_master_key(tmp_path, emu):
    report, r = meili(tmp_path, emu.url, emu.master_key, ["movies", "books"])
    assert statuses(r) == ["pass"] * 3 and report.ok
    assert "available" in r["meilisearch.health"].message
    assert "API key accepted by Meilisearch 1.12.0" in r["meilisearch.auth"].message
    assert "2 index(es) present: movies, books" in r["meilisearch.indexes"].message
    # /health and the open-server probe go without a key; "Bearer None" is never sent.
    assert "Bearer None" not in auth_headers(emu)
    # (health asks auth's and indexes' requests early, all at once: their order is not fixed)
    def sent(path):
        return [req.header("authorization") for req in emu.requests if req.path == path]
    assert sent("/health") == [None]
    # the open-server probe without a key, and the key's own: once each
    assert sorted(sent("/version"), key=str) == [f"Bearer {emu.master_key}", None]


def test_admin_key_and_no_indexes_required(tmp_path, emu):
    report, r = meili(tmp_path, emu.url, emu.admin_key)
    assert statuses(r) == ["pass"] * 3 and report.ok
    assert r["meilisearch.indexes"].message == \
        "no indexes required by the profile (meilisearch.indexes)"


def test_server_without_master_key_warns(tmp_path, open_emu):
    report, r = meili(tmp_path, open_emu.url, indexes=["movies"])
    auth = r["meilisearch.auth"]
    assert auth.status.value == "warn" and report.ok  # works, but anyone can write
    assert "without a master key" in auth.message and "1.12.0" in auth.message
    assert "MEILI_MASTER_KEY" in auth.hint
    assert r["meilisearch.indexes"].status.value == "pass"
    assert auth_headers(open_emu) == [None, None, None]  # never "Bearer None"


def test_configured_key_against_open_server_still_warns(tmp_path, open_emu):
    _, r = meili(tmp_path, open_emu.url, "some-key-the-server-ignores")
    assert r["meilisearch.auth"].status.value == "warn"
    assert "without a master key" in r["meilisearch.auth"].message


# -- transport failures --------------------------------------------------------------------------
def test_refused(tmp_path):
    report, r = meili(tmp_path, "http://127.0.0.1:1")
    assert_fail(r["meilisearch.health"], "refused", "connection refused", hint="MEILISEARCH_URL")
    assert statuses(r)[1:] == ["skip", "skip"] and not report.ok


def test_hung_server_verdict_within_timeout(tmp_path, emu):
    emu.fault = "hang"
    t0 = time.monotonic()
    _, r = meili(tmp_path, emu.url, emu.master_key)
    elapsed = time.monotonic() - t0
    print(f"hung meilisearch: verdict with --timeout 2 in {elapsed:.2f} s")
    assert_fail(r["meilisearch.health"], "timeout", "timed out after 2.0 s")
    assert elapsed <= 2.5


def test_slow_answer_past_the_timeout(tmp_path, emu):
    emu.fault, emu.slow_seconds = "slow", 3
    _, r = meili(tmp_path, emu.url, emu.master_key)
    assert_fail(r["meilisearch.health"], "timeout", "timed out")


def test_dns(tmp_path):
    _, r = meili(tmp_path, "http://no-such-meili.invalid:7700")
    assert_fail(r["meilisearch.health"], "dns", "DNS lookup failed", hint="MEILISEARCH_URL")


def test_tls_against_plaintext_server(tmp_path, emu):
    _, r = meili(tmp_path, emu.url.replace("http://", "https://"), emu.master_key)
    assert_fail(r["meilisearch.tls"], "tls", "TLS handshake", hint="MEILISEARCH_URL")


@pytest.mark.parametrize("fault, reason, words", BAD_HTTP_ANSWERS)
def test_bad_answers(tmp_path, emu, fault, reason, words):
    emu.fault = fault
    _, r = meili(tmp_path, emu.url, emu.master_key)
    assert_fail(r["meilisearch.health"], reason, *words, hint="MEILISEARCH_URL")
    assert statuses(r)[1:] == ["skip", "skip"]


def test_unavailable_503_mentions_retry_after(tmp_path, emu):
    emu.unavailable = True
    _, r = meili(tmp_path, emu.url, emu.master_key)
    assert_fail(r["meilisearch.health"], "unavailable", "unavailable", "HTTP 503",
                "retry after 10 s", hint="MEILISEARCH_URL")


# -- auth ----------------------------------------------------------------------------------------
def test_missing_key_against_master_keyed_server(tmp_path, emu):
    _, r = meili(tmp_path, emu.url, indexes=["movies"])
    assert_fail(r["meilisearch.auth"], "auth",
                "server requires an API key and none is configured", hint="MEILI_MASTER_KEY")
    assert "meilisearch.api_key" in r["meilisearch.auth"].hint
    assert r["meilisearch.indexes"].status.value == "skip"
    assert set(auth_headers(emu)) == {None}  # no "Bearer None"


def test_invalid_key(tmp_path, emu):
    _, r = meili(tmp_path, emu.url, "wrong-key-5f3a9c")
    auth = r["meilisearch.auth"]
    assert_fail(auth, "auth", "API key is invalid", hint="MEILI_MASTER_KEY")
    assert "wrong-key-5f3a9c" not in auth.message + auth.hint


def test_key_lacking_the_version_action(tmp_path, emu):
    _, r = meili(tmp_path, emu.url, emu.search_key)
    auth = r["meilisearch.auth"]
    assert_fail(auth, "auth", "lacks the 'version' action", hint="MEILI_MASTER_KEY")
    assert emu.search_key not in auth.message + auth.hint


# -- indexes -------------------------------------------------------------------------------------
def test_key_not_allowed_on_an_index(tmp_path, emu):
    key = emu.add_key("movies only", ["*"], ["movies"])
    report, r = meili(tmp_path, emu.url, key, ["movies", "books"])
    assert r["meilisearch.auth"].status.value == "pass"
    idx = r["meilisearch.indexes"]
    assert_fail(idx, "forbidden", "may not access index(es) books", hint="MEILI_MASTER_KEY")
    assert "movies" not in idx.message and not report.ok


def test_missing_indexes_are_all_listed(tmp_path, emu):
    report, r = meili(tmp_path, emu.url, emu.master_key, ["movies", "songs", "books", "albums"])
    assert_fail(r["meilisearch.indexes"], "missing", "index(es) missing: songs, albums",
                hint="meilisearch.indexes")
    assert not report.ok


def test_missing_index_does_not_block_when_not_required(tmp_path, emu):
    report, r = meili(tmp_path, emu.url, emu.master_key, ["songs"], required=False)
    assert r["meilisearch.indexes"].status.value == "fail" and report.ok


class StrictUidEmulator(MeilisearchEmulator):
    """Real Meilisearch refuses uids outside [A-Za-z0-9_-] with 400 invalid_index_uid."""

    def route(self, req):
        uid = req.path.removeprefix("/indexes/")
        if req.path.startswith("/indexes/") and not uid.replace("-", "").replace("_", "").isalnum():
            body = {"message": f"`{uid}` is not a valid index uid.", "code": "invalid_index_uid",
                    "type": "invalid_request", "link": "https://docs.meilisearch.com/errors#"}
            return Reply(400, json.dumps(body).encode(), "application/json")
        return super().route(req)


def test_invalid_index_uid_is_a_config_error(tmp_path):
    with StrictUidEmulator() as e:
        _, r = meili(tmp_path, e.url, e.master_key, ["my index"])
    assert_fail(r["meilisearch.indexes"], "config", "'my index' is not a valid index uid",
                hint="meilisearch.indexes")


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_exit_1_and_key_never_printed(tmp_path, emu):
    key = "sk-never-print-me-8d1e2f"
    profile = write_profile(tmp_path, meilisearch={"url": emu.url, "api_key": key})
    proc = platctl("validate", "-p", str(profile), "--only", "meilisearch", "-o", "json",
                   "--timeout", "2")
    assert proc.returncode == 1, proc.stderr
    assert key not in proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["meilisearch.auth"]["reason"] == "auth"
    assert "MEILI_MASTER_KEY" in checks["meilisearch.auth"]["hint"]
