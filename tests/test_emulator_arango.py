"""The ArangoDB emulator answers like ArangoDB 3.12, seen through python-arango 8.3.7 and raw HTTP."""
from __future__ import annotations

import time

import httpx
import pytest
import requests
from arango import ArangoClient
from arango.exceptions import (
    CollectionCreateError,
    CollectionPropertiesError,
    DatabasePropertiesError,
    DocumentInsertError,
    JWTAuthError,
    PermissionGetError,
    ServerConnectionError,
)
from arango.http import DefaultHTTPClient

from tests.emulators.arango import ArangoEmulator

ROOT = ("root", "rootpw")
APP = ("app", "apppw")


@pytest.fixture
def emu():
    with ArangoEmulator() as e:
        yield e


def client(emu: ArangoEmulator, timeout: float = 2, tries: int | None = None) -> ArangoClient:
    # retry_attempts=0: python-arango's default urllib3 Retry(total=3, backoff 1 s) would sleep
    # through 503s and timeouts; checks must bound retries the same way.
    return ArangoClient(hosts=emu.url, resolver_max_tries=tries,
                        http_client=DefaultHTTPClient(request_timeout=timeout, retry_attempts=0))


def error_body(status: int, errnum: int, message: str) -> dict:
    return {"error": True, "errorNum": errnum, "errorMessage": message, "code": status}


# -- happy path through the official client ------------------------------------------------------
def test_client_happy_path(emu):
    c = client(emu)
    db = c.db("platform", *APP, verify=True)
    assert db.version() == "3.12.4"
    props = db.properties()
    assert props["name"] == "platform" and props["system"] is False
    assert db.has_collection("state_data") and not db.has_collection("missing")
    assert db.collection("state_data").properties()["name"] == "state_data"
    assert db.create_collection("fresh").name == "fresh"
    assert db.has_collection("fresh") and "fresh" in emu.databases["platform"]
    assert db.collection("state_data").insert({"a": 1})["_id"].startswith("state_data/")
    assert db.permission("app", "platform") == "rw"
    sys_db = c.db("_system", *ROOT, verify=True)
    assert sys_db.check_availability() == "default"
    assert sys_db.version(details=True)["license"] == "community"
    assert sys_db.permission("app", "platform") == "rw"  # admins may read other users' grants


def test_client_jwt_and_superuser_token(emu):
    c = client(emu)
    db = c.db("platform", *APP, auth_method="jwt", verify=True)
    assert db.version() == "3.12.4"
    assert db.conn._auth_header.startswith("bearer ")
    su = c.db("platform", superuser_token=emu.superuser_jwt(), verify=True)
    assert su.has_collection("state_data")


# -- failure classes through the official client -------------------------------------------------
def test_client_wrong_password(emu):
    c = client(emu)
    with pytest.raises(ServerConnectionError) as exc:
        c.db("platform", "app", "wrong", verify=True)
    assert "[HTTP 401][ERR 11]" in str(exc.value) and "wrong" not in str(exc.value)
    with pytest.raises(ServerConnectionError, match=r"\[HTTP 401\]\[ERR 11\]"):
        c.db("platform", "nobody", "x", verify=True)
    with pytest.raises(JWTAuthError) as jexc:  # POST /_open/auth -> 401 errno 401
        c.db("platform", "app", "wrong", auth_method="jwt")
    assert jexc.value.http_code == 401 and jexc.value.error_code == 401


def test_client_missing_database_depends_on_caller(emu):
    c = client(emu)
    with pytest.raises(ServerConnectionError) as exc:  # non-superuser: 401, not 404
        c.db("nosuchdb", *APP, verify=True)
    assert exc.value.http_code == 401 and exc.value.error_code == 11
    with pytest.raises(ServerConnectionError) as exc:
        c.db("nosuchdb", *ROOT, verify=True)
    assert exc.value.http_code == 404 and exc.value.error_code == 1228
    with pytest.raises(DatabasePropertiesError) as perr:
        c.db("nosuchdb", *ROOT).properties()
    assert perr.value.error_code == 1228 and perr.value.error_message == "database not found"


def test_client_permission_ro_and_none(emu):
    c = client(emu)
    emu.grants[("app", "platform")] = "ro"
    db = c.db("platform", *APP, verify=True)  # reading still works
    assert db.permission("app", "platform") == "ro"
    assert db.has_collection("state_data")
    with pytest.raises(CollectionCreateError) as exc:
        db.create_collection("nope")
    assert (exc.value.http_code, exc.value.error_code) == (403, 11)
    with pytest.raises(DocumentInsertError) as dexc:
        db.collection("state_data").insert({"a": 1})
    assert (dexc.value.http_code, dexc.value.error_code) == (403, 1004)
    with pytest.raises(PermissionGetError) as pexc:  # other users' grants: admins only
        db.permission("root", "platform")
    assert (pexc.value.http_code, pexc.value.error_code) == (403, 403)

    emu.grants[("app", "platform")] = "none"
    with pytest.raises(ServerConnectionError) as exc:
        c.db("platform", *APP, verify=True)
    assert exc.value.http_code == 401 and exc.value.error_code == 11
    # own grants stay readable with "none" on the database (canAccessPath /_api/user/ exception)
    assert c.db("_system", *APP).permission("app", "platform") == "none"


def test_client_missing_collection(emu):
    c = client(emu)
    emu.databases["platform"].discard("state_data")
    db = c.db("platform", *APP, verify=True)
    assert not db.has_collection("state_data")
    with pytest.raises(CollectionPropertiesError) as exc:
        db.collection("state_data").properties()
    assert (exc.value.http_code, exc.value.error_code) == (404, 1203)


def test_client_read_only_mode(emu):
    c = client(emu)
    emu.read_only = True
    sys_db = c.db("_system", *ROOT, verify=True)
    assert sys_db.check_availability() == "readonly"
    db = c.db("platform", *APP, verify=True)
    assert db.permission("app", "platform") == "ro"  # effective level is capped
    with pytest.raises(DocumentInsertError) as dexc:
        db.collection("state_data").insert({"a": 1})
    assert dexc.value.error_code == 1004
    with pytest.raises(CollectionCreateError) as cexc:
        db.create_collection("nope")
    assert cexc.value.error_code == 11
    su = c.db("platform", superuser_token=emu.superuser_jwt())
    assert su.create_collection("by_superuser").name == "by_superuser"  # superuser JWT bypasses


def test_client_unavailable_is_not_an_arango_error(emu):
    emu.unavailable = True
    # status 503 + errorNum 503: python-arango's GET retry sees 503 and gives up with a raw
    # requests RetryError (immediately, since retries are 0)
    with pytest.raises(requests.exceptions.RetryError):
        client(emu).db("_system", *ROOT).check_availability()


# -- exact shapes over raw HTTP ------------------------------------------------------------------
def test_availability_shapes(emu):
    url = emu.url + "/_admin/server/availability"
    r = httpx.get(url)  # no credentials needed
    assert (r.status_code, r.json()) == (200, {"error": False, "code": 200, "mode": "default"})
    emu.read_only = True
    r = httpx.get(url)
    assert (r.status_code, r.json()["mode"]) == (200, "readonly")
    emu.readonly_availability_503 = True
    r = httpx.get(url)
    assert (r.status_code, r.json()) == (503, error_body(503, 503, "service unavailable"))
    emu.reset()
    emu.unavailable = True
    r = httpx.get(url, auth=("app", "wrong"))
    assert (r.status_code, r.json()) == (503, error_body(503, 503, "service unavailable"))


def test_www_authenticate_and_401_body(emu):
    r = httpx.get(emu.url + "/_api/version")
    assert r.status_code == 401
    assert r.json() == error_body(401, 11, "not authorized to execute this request")
    assert r.headers.get_list("www-authenticate") == [
        'Basic, realm="ArangoDB"', 'Bearer, token_type="JWT", realm="ArangoDB"']
    r = httpx.get(emu.url + "/_api/version", headers={"X-Omit-Www-Authenticate": "1"})
    assert r.status_code == 401 and "www-authenticate" not in r.headers
    r = httpx.get(emu.url + "/_api/version", auth=ROOT)
    assert r.json() == {"server": "arango", "version": "3.12.4", "license": "community"}
    assert "www-authenticate" not in r.headers


def test_raw_error_shapes(emu):
    r = httpx.get(emu.url + "/_db/platform/_api/collection/missing", auth=APP)
    assert (r.status_code, r.json()) == (404, error_body(404, 1203, "collection or view not found"))
    r = httpx.get(emu.url + "/_db/nosuchdb/_api/database/current", auth=ROOT)
    assert (r.status_code, r.json()) == (404, error_body(404, 1228, "database not found"))
    r = httpx.get(emu.url + "/_db/nosuchdb/_api/database/current", auth=APP)
    assert r.status_code == 401 and r.json()["errorNum"] == 11
    r = httpx.get(emu.url + "/_api/nothing-here", auth=ROOT)
    assert (r.status_code, r.json()) == (404, error_body(404, 404, "unknown path '/_api/nothing-here'"))
    r = httpx.get(emu.url + "/_db/_system/_api/user/root/database/platform", auth=APP)
    assert (r.status_code, r.json()) == (403, error_body(403, 403, "forbidden"))
    r = httpx.get(emu.url + "/_db/platform/_api/database/current", auth=APP)
    assert r.json()["error"] is False and r.json()["result"]["name"] == "platform"
    emu.maintenance = True
    r = httpx.get(emu.url + "/_api/collection", auth=ROOT)
    assert r.status_code == 503 and r.json()["errorNum"] == 503
    assert httpx.get(emu.url + "/_api/version", auth=ROOT).status_code == 200


def test_open_auth_and_bearer(emu):
    r = httpx.post(emu.url + "/_open/auth", json={"username": "app", "password": "apppw"})
    token = r.json()["jwt"]
    r = httpx.get(emu.url + "/_db/platform/_api/version", headers={"Authorization": f"bearer {token}"})
    assert r.status_code == 200
    r = httpx.get(emu.url + "/_db/platform/_api/version", headers={"Authorization": "Bearer junk"})
    assert r.status_code == 401
    r = httpx.post(emu.url + "/_open/auth", json={"username": "app", "password": "no"})
    assert (r.status_code, r.json()) == (401, error_body(401, 401, "Wrong credentials"))


# -- base faults ---------------------------------------------------------------------------------
def test_fault_hang(emu):
    emu.fault = "hang"
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(emu.url + "/_api/version", timeout=0.5)
    # A GET read timeout with Retry(total=0) surfaces as requests.ConnectionError, which
    # python-arango treats as "try the next host" and finally turns into ConnectionAbortedError
    # (one try per resolver attempt; 3 by default for one host, 1 here).
    start = time.monotonic()
    with pytest.raises(ConnectionAbortedError):
        client(emu, timeout=0.5, tries=1).db("_system", *ROOT).version()
    assert time.monotonic() - start < 2


def test_fault_html_and_http500(emu):
    emu.fault = "html"
    r = httpx.get(emu.url + "/_api/version")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    emu.fault = "http500"
    assert httpx.get(emu.url + "/_api/version").status_code == 500


def test_fault_slow(emu):
    emu.fault, emu.slow_seconds = "slow", 0.3
    start = time.monotonic()
    assert httpx.get(emu.url + "/_api/version", auth=ROOT).status_code == 200
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("fault", ["reset", "garbage"])
def test_fault_broken_transport(emu, fault):
    emu.fault = fault
    with pytest.raises(httpx.TransportError):
        httpx.get(emu.url + "/_api/version", timeout=2)
