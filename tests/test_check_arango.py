"""ArangoDB checks against the HTTP emulator (real sockets, the real runner and report)."""
from __future__ import annotations

import json
import time

import pytest

from tests.emulators.arango import ArangoEmulator
from tests.support import by_id, free_port, platctl, run_report, write_profile

IDS = ("arango.available", "arango.auth", "arango.database", "arango.permission",
       "arango.collections")
APP = {"username": "app", "password": "apppw"}
ROOT = {"username": "root", "password": "rootpw"}


@pytest.fixture
def emu():
    with ArangoEmulator() as e:
        yield e


def arango(tmp_path, url, **section):
    opts = {"read_only": section.pop("read_only", False)}
    sec = {"url": url, "database": "platform", **APP, **section}
    return by_id(run_report(write_profile(tmp_path, arango=sec), only=("arango",), timeout=2,
                            **opts))


def failed(r, cid, reason, *words, hint=None):
    c = r[cid]
    assert (c.status.value, c.reason.value) == ("fail", reason), c
    for w in words:
        assert w in c.message, (w, c.message)
    if hint:
        assert hint in (c.hint or ""), (hint, c.hint)
    later = IDS[IDS.index(cid) + 1:]
    if cid in IDS[:3]:  # a failed gate skips the rest
        assert all(r[i].status.value == "skip" for i in later), [r[i] for i in later]
    return c


# -- green path -----------------------------------------------------------------------------------
def test_green_path(tmp_path, emu):
    r = arango(tmp_path, emu.url)
    assert [r[i].status.value for i in IDS] == ["pass"] * 5
    assert "mode default" in r["arango.available"].message
    assert "user app" in r["arango.auth"].message and "3.12.4" in r["arango.auth"].message
    assert "rw on platform" in r["arango.permission"].message
    assert "state_data" in r["arango.collections"].message
    # availability is asked without credentials
    avail = next(q for q in emu.requests if q.path == "/_admin/server/availability")
    assert "authorization" not in avail.headers


# -- transport and protocol failures --------------------------------------------------------------
def test_refused(tmp_path):
    c = failed(arango(tmp_path, f"http://127.0.0.1:{free_port()}"), "arango.available",
               "refused", "connection refused", hint="ARANGO_URL")
    assert "arango.url" in c.hint


def test_hung_server_verdict_within_deadline(tmp_path, emu):
    emu.fault = "hang"
    t0 = time.monotonic()
    r = arango(tmp_path, emu.url)
    took = time.monotonic() - t0
    print(f"hung ArangoDB verdict after {took:.2f} s (timeout 2)")
    failed(r, "arango.available", "timeout", "timed out after 2.0 s")
    assert took <= 2.5


def test_dns(tmp_path):
    failed(arango(tmp_path, "http://arango.platctl.invalid:8529"), "arango.available", "dns",
           "DNS lookup failed", "arango.platctl.invalid", hint="ARANGO_URL")


def test_html_page(tmp_path, emu):
    emu.fault = "html"
    failed(arango(tmp_path, emu.url), "arango.available", "unexpected", "an HTML page",
           hint="ARANGO_URL")


def test_http500(tmp_path, emu):
    emu.fault = "http500"
    failed(arango(tmp_path, emu.url), "arango.available", "server", "HTTP 500",
           hint="ARANGO_URL")


def test_reset(tmp_path, emu):
    emu.fault = "reset"
    failed(arango(tmp_path, emu.url), "arango.available", "reset", "reset", hint="ARANGO_URL")


def test_garbage(tmp_path, emu):
    emu.fault = "garbage"
    failed(arango(tmp_path, emu.url), "arango.available", "unexpected", "valid HTTP",
           hint="ARANGO_URL")


def test_tls_against_plain_http(tmp_path, emu):
    r = arango(tmp_path, emu.url.replace("http://", "https://"))
    tls = r["arango.tls"]  # the certificate check comes first and is a gate
    assert (tls.status.value, tls.reason.value) == ("fail", "tls"), tls
    assert "TLS handshake" in tls.message and "ARANGO_URL" in tls.hint
    assert all(r[i].status.value == "skip" for i in IDS)


# -- server states --------------------------------------------------------------------------------
def test_read_only_mode(tmp_path, emu):
    emu.read_only = True  # availability 200 {"mode": "readonly"}, as the server source does
    failed(arango(tmp_path, emu.url), "arango.available", "unavailable", "read-only mode",
           "needs writes")


@pytest.mark.parametrize("switch", ["unavailable", "maintenance", "readonly_availability_503"])
def test_unavailable_503(tmp_path, emu, switch):
    setattr(emu, switch, True)
    emu.read_only = switch == "readonly_availability_503"  # the documented read-only variant
    failed(arango(tmp_path, emu.url), "arango.available", "unavailable", "HTTP 503",
           "service unavailable: starting, in maintenance", "or overloaded", hint="--wait")


# -- credentials, database, grants ----------------------------------------------------------------
def test_wrong_password(tmp_path, emu):
    c = failed(arango(tmp_path, emu.url, password="not-the-pw-4471"), "arango.auth", "auth",
               "wrong username or password", "user app", hint="ARANGO_USERNAME")
    assert "ARANGO_PASSWORD" in c.hint and "not-the-pw-4471" not in c.message + c.hint


def test_superuser_missing_database_is_404(tmp_path, emu):
    r = arango(tmp_path, emu.url, database="nope", **ROOT)
    assert r["arango.auth"].status.value == "pass" and "3.12.4" in r["arango.auth"].message
    c = failed(r, "arango.database", "missing", "database nope does not exist",
               hint="ARANGO_DATABASE")
    assert "no access" not in c.message


def test_non_superuser_missing_database_is_401_wording(tmp_path, emu):
    r = arango(tmp_path, emu.url, database="nope")
    assert r["arango.auth"].status.value == "pass"
    c = failed(r, "arango.database", "missing", "database nope does not exist or user app has"
               " no access to it", "401", hint="ARANGO_DATABASE")
    assert "grant app rw on nope" in c.hint


def test_permission_ro(tmp_path, emu):
    emu.grants[("app", "platform")] = "ro"
    r = arango(tmp_path, emu.url)
    failed(r, "arango.permission", "forbidden", "user app has read-only access to platform",
           "the platform writes", hint="grant app rw on platform")
    assert r["arango.collections"].status.value == "pass"  # not a gate: still reported


def test_permission_none(tmp_path, emu):
    emu.grants[("app", "platform")] = "none"
    # A full run stops at the database gate: ArangoDB's 401 cannot tell "no grant" from missing.
    failed(arango(tmp_path, emu.url), "arango.database", "missing", "has no access")
    sec = {"url": emu.url, "database": "platform", **APP}
    r = by_id(run_report(write_profile(tmp_path, arango=sec), only=("arango.permission",),
                         timeout=2))
    failed(r, "arango.permission", "forbidden", "user app has no access to platform",
           hint="grant app rw on platform")


# -- collections ----------------------------------------------------------------------------------
def test_missing_collections_are_all_listed(tmp_path, emu):
    emu.databases["platform"].discard("state_data")
    c = failed(arango(tmp_path, emu.url, collections=["state_data", "edges", "_graphs"]),
               "arango.collections", "missing", "state_data, edges", "platform",
               hint="create_missing")
    assert "_graphs" not in c.message


def test_create_missing_creates(tmp_path, emu):
    r = arango(tmp_path, emu.url, collections=["state_data", "fresh"], create_missing=True)
    c = r["arango.collections"]
    assert c.status.value == "pass" and "created: fresh" in c.message, c
    assert "fresh" in emu.databases["platform"]


def test_create_missing_under_read_only_does_not_create(tmp_path, emu):
    r = arango(tmp_path, emu.url, collections=["fresh"], create_missing=True, read_only=True)
    failed(r, "arango.collections", "missing", "fresh", "not created because of --read-only")
    assert "fresh" not in emu.databases["platform"]
    assert not [q for q in emu.requests if q.method != "GET"]


# -- the installed CLI ----------------------------------------------------------------------------
def test_cli_wrong_password_exit_1_and_no_secret(tmp_path, emu):
    secret = "Zq9-wrong-arango-pw-5512"
    profile = write_profile(tmp_path, arango={"url": emu.url, "database": "platform",
                                               "username": "app", "password": secret})
    p = platctl("validate", "-p", str(profile), "--only", "arango", "-o", "json",
                "--timeout", "2")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert secret not in p.stdout + p.stderr
    auth = next(c for c in json.loads(p.stdout)["checks"] if c["id"] == "arango.auth")
    assert (auth["status"], auth["reason"]) == ("fail", "auth")
    assert "ARANGO_PASSWORD" in auth["hint"]
