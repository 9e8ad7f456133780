"""The Meilisearch emulator answers like a v1.x server (protocols.md section 3), proven with the
official client ``meilisearch`` 0.43.0 and with raw httpx requests over real HTTP."""
from __future__ import annotations

import re

import httpx
import meilisearch
import pytest
import requests
from meilisearch.errors import (MeilisearchApiError, MeilisearchCommunicationError,
                                MeilisearchError, MeilisearchTimeoutError)

from tests.emulators.meilisearch import MeilisearchEmulator

LINK = "https://docs.meilisearch.com/errors#"
FRACTIONAL_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$")


def err(code: str, message: str, etype: str = "auth") -> dict:
    return {"message": message, "code": code, "type": etype, "link": LINK + code}


MISSING_HEADER = err("missing_authorization_header", "The Authorization header is missing. "
                     "It must use the bearer authorization method.")
INVALID_KEY = err("invalid_api_key", "The provided API key is invalid.")
MISSING_MASTER = err("missing_master_key", "Meilisearch is running without a master key. To "
                     "access this API endpoint, you must have set a master key at launch.")


@pytest.fixture
def emu():
    with MeilisearchEmulator(indexes={"movies": "id", "books": None}) as e:
        yield e


@pytest.fixture
def open_emu():
    with MeilisearchEmulator(master_key=None) as e:
        yield e


def client(emu: MeilisearchEmulator, key: str | None, timeout: float = 2) -> meilisearch.Client:
    return meilisearch.Client(emu.url, key, timeout=timeout)


def get(emu: MeilisearchEmulator, path: str, auth: str | None = None) -> httpx.Response:
    return httpx.get(emu.url + path, headers={"Authorization": auth} if auth else {}, timeout=2)


def api_error(call) -> MeilisearchApiError:
    with pytest.raises(MeilisearchApiError) as info:
        call()
    return info.value


# -- success paths through the official client ---------------------------------------------------
def test_health_is_public(emu):
    assert client(emu, "not-a-key").health() == {"status": "available"}
    assert client(emu, None).is_healthy() is True
    r = get(emu, "/health")
    assert (r.status_code, r.json()) == (200, {"status": "available"})


def test_version(emu):
    v = client(emu, emu.master_key).get_version()
    assert set(v) == {"commitSha", "commitDate", "pkgVersion"} and v["pkgVersion"] == "1.12.0"
    assert client(emu, emu.admin_key).get_version() == v


def test_keys_listing_and_lookup(emu):
    keys = client(emu, emu.master_key).get_keys()
    assert (keys.offset, keys.limit, keys.total) == (0, 20, 2)
    # Newest first: the search key is created after the admin key.
    assert [k.name for k in keys.results] == ["Default Search API Key", "Default Admin API Key"]
    assert keys.results[0].key == emu.search_key and keys.results[0].actions == ["search"]
    admin = client(emu, emu.admin_key)  # actions ["*"] include keys.get (store.rs)
    assert admin.get_key(emu.search_key).uid == admin.get_key(keys.results[0].uid).uid
    raw = get(emu, "/keys", "Bearer " + emu.master_key).json()
    assert set(raw) == {"results", "offset", "limit", "total"}
    assert set(raw["results"][0]) == {"name", "description", "key", "uid", "actions", "indexes",
                                      "expiresAt", "createdAt", "updatedAt"}


def test_index_views(emu):
    c = client(emu, emu.master_key)
    raw = c.get_raw_index("movies")
    assert set(raw) == {"uid", "createdAt", "updatedAt", "primaryKey"}
    assert raw["uid"] == "movies" and raw["primaryKey"] == "id"
    assert FRACTIONAL_RFC3339.match(raw["createdAt"]) and FRACTIONAL_RFC3339.match(raw["updatedAt"])
    index = c.get_index("books")
    assert index.uid == "books" and index.primary_key is None and index.created_at is not None
    listing = get(emu, "/indexes", "Bearer " + emu.master_key).json()
    assert set(listing) == {"results", "offset", "limit", "total"} and listing["total"] == 2
    assert [i["uid"] for i in listing["results"]] == ["books", "movies"]


def test_index_list_is_filtered_for_a_restricted_key(emu):
    key = emu.add_key("movies only", ["indexes.*"], ["movies"])
    listing = get(emu, "/indexes", "Bearer " + key).json()
    assert [i["uid"] for i in listing["results"]] == ["movies"] and listing["total"] == 1


# -- failure paths through the official client --------------------------------------------------
def test_client_failure_classes(emu):
    wrong = api_error(client(emu, "wrong-key").get_version)
    assert (wrong.status_code, wrong.code, wrong.type) == (403, "invalid_api_key", "auth")
    for call in (client(emu, emu.search_key).get_version, client(emu, emu.search_key).get_keys,
                 lambda: client(emu, emu.search_key).get_raw_index("movies")):
        lacking = api_error(call)  # the search key lacks version / keys.get / indexes.get
        assert (lacking.status_code, lacking.code) == (403, "invalid_api_key")
    restricted = emu.add_key("restricted", ["*"], ["movies", "tv*"])
    on_index = api_error(lambda: client(emu, restricted).get_raw_index("books"))
    assert (on_index.status_code, on_index.code) == (403, "invalid_api_key")
    assert on_index.message == ('The API key cannot acces the index `books`, authorized indexes '
                                'are ["movies", "tv*"].')
    assert client(emu, restricted).get_raw_index("movies")["uid"] == "movies"
    missing = api_error(lambda: client(emu, emu.master_key).get_index("nope"))
    assert (missing.status_code, missing.code, missing.type) == (404, "index_not_found",
                                                                 "invalid_request")
    assert missing.message == "Index `nope` not found."
    no_key = api_error(lambda: client(emu, emu.master_key).get_key("0" * 64))
    assert (no_key.status_code, no_key.code) == (404, "api_key_not_found")


def test_client_api_key_none_sends_bearer_none(emu):
    e = api_error(client(emu, None).get_version)
    assert (e.status_code, e.code) == (403, "invalid_api_key")  # not 401
    assert emu.requests[-1].header("authorization") == "Bearer None"


def test_client_empty_api_key_is_bearer_with_empty_token(emu):
    e = api_error(client(emu, "").get_version)
    assert (e.status_code, e.code) == (403, "invalid_api_key")
    assert emu.requests[-1].header("authorization") == "Bearer "


def test_expired_key_is_invalid(emu):
    key = emu.add_key("old", ["*"], expires_at="2001-01-01T00:00:00Z")
    assert api_error(client(emu, key).get_version).code == "invalid_api_key"


# -- exact wire answers ---------------------------------------------------------------------------
@pytest.mark.parametrize("auth, status, body", [
    (None, 401, MISSING_HEADER),
    ("bearer {master}", 401, MISSING_HEADER),  # scheme match is case-sensitive
    ("Basic {master}", 401, MISSING_HEADER),
    ("Bearer", 403, INVALID_KEY),  # Bearer with no token
    ("Bearer wrong-key", 403, INVALID_KEY),
    ("Bearer {search}", 403, INVALID_KEY),  # key lacks the action
])
def test_wire_auth_outcomes(emu, auth, status, body):
    auth = auth and auth.format(master=emu.master_key, search=emu.search_key)
    r = get(emu, "/version", auth)
    assert (r.status_code, r.json()) == (status, body)
    assert r.headers["content-type"] == "application/json"


def test_wire_index_not_found(emu):
    r = get(emu, "/indexes/nope", "Bearer " + emu.master_key)
    assert r.status_code == 404
    assert r.json() == err("index_not_found", "Index `nope` not found.", "invalid_request")


def test_wire_no_master_key(open_emu):
    for auth in (None, "Bearer anything"):
        r = get(open_emu, "/keys", auth)
        assert (r.status_code, r.json()) == (401, MISSING_MASTER)
        assert get(open_emu, "/keys/some-uid", auth).status_code == 401
        assert get(open_emu, "/version", auth).status_code == 200
        assert get(open_emu, "/indexes/movies", auth).json()["uid"] == "movies"
    # The scheme is checked before the master key (from_request), so this is refused anyway.
    r = get(open_emu, "/version", "bearer x")
    assert (r.status_code, r.json()) == (401, MISSING_HEADER)
    c = client(open_emu, None)  # "Bearer None" is fine without a master key ...
    assert c.get_version()["pkgVersion"] == "1.12.0"
    e = api_error(c.get_keys)  # ... except on /keys
    assert (e.status_code, e.code) == (401, "missing_master_key")


def test_unavailable_answers_503_with_retry_after(emu):
    emu.unavailable = True
    r = get(emu, "/health")
    assert (r.status_code, r.headers["retry-after"]) == (503, "10")
    assert r.json() == err("too_many_search_requests", "Too many search requests running at the "
                           "same time: 1000. Retry after 10s.", "system")
    e = api_error(lambda: client(emu, emu.master_key).get_raw_index("movies"))
    assert (e.status_code, e.code, e.type) == (503, "too_many_search_requests", "system")
    assert client(emu, emu.master_key).is_healthy() is False
    emu.reset()
    assert client(emu, emu.master_key).is_healthy() is True


# -- base faults, as the official client sees them ------------------------------------------------
def test_fault_hang_times_out(emu):
    emu.fault = "hang"
    with pytest.raises(MeilisearchTimeoutError):
        client(emu, emu.master_key, timeout=0.3).health()


def test_fault_slow(emu):
    emu.fault, emu.slow_seconds = "slow", 0.2
    assert client(emu, emu.master_key, timeout=2).health() == {"status": "available"}
    emu.slow_seconds = 1.0
    with pytest.raises(MeilisearchTimeoutError):
        client(emu, emu.master_key, timeout=0.3).health()


def test_fault_http500(emu):
    emu.fault = "http500"
    e = api_error(client(emu, emu.master_key).health)
    assert (e.status_code, e.code) == (500, None)  # HTML body: no Meilisearch code
    assert client(emu, emu.master_key).is_healthy() is False


def test_fault_html_escapes_the_client_error_hierarchy(emu):
    # A 200 HTML page makes requests' .json() raise requests.JSONDecodeError, which the client
    # does not wrap: it is no MeilisearchError, so even is_healthy() raises.
    emu.fault = "html"
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client(emu, emu.master_key).health()
    with pytest.raises(requests.exceptions.RequestException):
        client(emu, emu.master_key).is_healthy()


def test_fault_reset(emu):
    # Headers arrive, then RST: usually requests.ChunkedEncodingError, which the client does not
    # wrap (it only wraps Timeout and ConnectionError).
    emu.fault = "reset"
    with pytest.raises((requests.exceptions.RequestException, MeilisearchError)):
        client(emu, emu.master_key).health()


def test_fault_garbage(emu):
    emu.fault = "garbage"
    with pytest.raises(MeilisearchCommunicationError):
        client(emu, emu.master_key).health()
    assert client(emu, emu.master_key).is_healthy() is False
