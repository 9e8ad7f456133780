"""Proves the Consul emulator against the official client py-consul 1.8.0 and raw HTTP.

Every failure class a check must classify is produced here once, through py-consul where the
client can reach it and through httpx where the exact status/body/headers matter.
"""
from __future__ import annotations

import inspect
import re
import time

import consul
import httpx
import pytest
import requests

from tests.emulators.consul import ANONYMOUS_ACCESSOR, GOOD_TOKEN, LIMITED_TOKEN, ConsulEmulator

TEXT = "text/plain; charset=utf-8"
ENV = ("CONSUL_HTTP_TOKEN", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY",
       "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


HTTP: httpx.Client  # one per test (an SSL context per httpx.get costs ~30 ms), see emu()


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch):
    global HTTP
    # CONSUL_HTTP_TOKEN would *override* token= (base.py: os.getenv("CONSUL_HTTP_TOKEN", token)).
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    # The httpx client closes first, so no keep-alive connection outlives its emulator.
    with ConsulEmulator() as e, httpx.Client(timeout=2, trust_env=False) as HTTP:
        yield e


def client(emu: ConsulEmulator, token: str | None = GOOD_TOKEN, timeout: float = 2,
           **kw) -> consul.Consul:
    return consul.Consul(host="127.0.0.1", port=emu.port, token=token,
                         connections_timeout=timeout, **kw)


def get(emu: ConsulEmulator, path: str, token: str | None = GOOD_TOKEN, **kw) -> httpx.Response:
    headers = {"X-Consul-Token": token} if token else {}
    return HTTP.get(emu.url + path, headers=headers, **kw)


def test_installed_client_has_connections_timeout():
    assert consul.__version__ == "1.8.0"
    assert "connections_timeout" in inspect.signature(consul.Consul.__init__).parameters


# -- status ---------------------------------------------------------------------------------
def test_status_leader_and_peers(emu):
    c = client(emu)
    assert c.status.leader() == "10.0.0.10:8300"
    assert c.status.peers() == ["10.0.0.10:8300"]
    r = get(emu, "/v1/status/leader", token=None)  # needs no ACL
    assert (r.status_code, r.text, r.headers["content-type"]) == (200, '"10.0.0.10:8300"',
                                                                  "application/json")
    assert "x-consul-index" not in r.headers  # status routes do not setMeta


def test_no_leader_is_200_empty_string_and_reads_fail(emu):
    emu.leader = ""
    c = client(emu)
    assert c.status.leader() == ""  # not an error: the check itself must notice ""
    with pytest.raises(consul.ConsulException, match="^500 No cluster leader$"):
        c.catalog.services()
    index, services = c.catalog.services(consistency="stale")  # any server may answer
    assert "redis" in services
    r = get(emu, "/v1/catalog/services?stale")
    assert r.headers["x-consul-knownleader"] == "false"
    r = get(emu, "/v1/kv/config/platctl/enabled")
    assert (r.status_code, r.text, r.headers["content-type"]) == (500, "No cluster leader", TEXT)


def test_client_agent_without_servers(emu):
    emu.no_known_servers = True
    c = client(emu)
    with pytest.raises(consul.ConsulException, match="^500 No known Consul servers$") as exc:
        c.status.leader()
    assert type(exc.value) is consul.ConsulException
    r = get(emu, "/v1/status/leader")
    assert (r.status_code, r.text, r.headers["content-type"]) == (500, "No known Consul servers",
                                                                  TEXT)
    # The agent itself still answers /v1/agent/self, reporting it is not a server.
    assert get(emu, "/v1/agent/self").json()["Config"]["Server"] is False


# -- agent/self and the token bug -----------------------------------------------------------
def test_py_consul_agent_self_sends_no_token(emu):
    c = client(emu, token=GOOD_TOKEN)
    with pytest.raises(consul.ACLPermissionDenied) as exc:
        c.agent.self()
    assert str(exc.value) == (
        "Permission denied: anonymous token lacks permission 'agent:read' on "
        "\"consul-server-1\". The anonymous token is used implicitly when a request does "
        "not specify a token.")
    assert "x-consul-token" not in emu.requests[-1].headers  # the documented client bug
    # The same token sent by hand works.
    r = get(emu, "/v1/agent/self", token=GOOD_TOKEN)
    assert r.status_code == 200
    assert r.json()["Config"]["Version"] == "1.20.1"
    assert r.json()["Config"]["Datacenter"] == "dc1"


def test_agent_self_with_allow_policy_works_through_py_consul(emu):
    emu.default_policy = "allow"
    assert client(emu).agent.self()["Config"]["NodeName"] == "consul-server-1"


def test_token_lacking_agent_read(emu):
    r = get(emu, "/v1/agent/self", token=LIMITED_TOKEN)
    assert r.status_code == 403
    assert r.headers["content-type"] == TEXT
    assert r.text == ("Permission denied: token with AccessorID "
                      "'e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc02' lacks permission 'agent:read' "
                      "on \"consul-server-1\"")


def test_bad_token_is_acl_not_found(emu):
    c = client(emu, token="00000000-dead-beef-0000-000000000000")
    with pytest.raises(consul.ACLPermissionDenied, match="^ACL not found$"):
        c.acl.token.read_self()
    # Catalog and token/self defer setMeta, so even their errors carry X-Consul-Index;
    # health and kv set it only after a successful RPC; agent/self never does.
    for path, meta in (("/v1/acl/token/self", True), ("/v1/catalog/services", True),
                       ("/v1/agent/self", False), ("/v1/health/service/redis", False),
                       ("/v1/kv/config/platctl/enabled", False)):
        r = get(emu, path, token="wrong")
        assert (r.status_code, r.text, r.headers["content-type"]) == (403, "ACL not found", TEXT)
        assert ("x-consul-index" in r.headers) is meta, path
        assert r.headers["x-consul-default-acl-policy"] == "deny"


def test_token_precedence_query_then_header_then_bearer(emu):
    def status(**kw):
        return HTTP.get(emu.url + "/v1/agent/self", **kw).status_code

    bearer = {"Authorization": f"Bearer {GOOD_TOKEN}"}
    assert status(headers=bearer) == 200
    assert status(headers={**bearer, "X-Consul-Token": "wrong"}) == 403  # header beats bearer
    assert status(params={"token": GOOD_TOKEN}, headers={"X-Consul-Token": "wrong"}) == 200
    assert status(params={"token": "wrong"}, headers={"X-Consul-Token": GOOD_TOKEN}) == 403
    assert status(params={"token": ""}, headers={"X-Consul-Token": GOOD_TOKEN}) == 200  # empty
    assert status(headers={"Authorization": f"Basic {GOOD_TOKEN}"}) == 403  # not a bearer


# -- acl/token/self ---------------------------------------------------------------------------
def test_read_self_token(emu):
    tok = client(emu).acl.token.read_self()
    assert tok["AccessorID"] == "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc01"
    assert tok["SecretID"] == GOOD_TOKEN
    assert tok["Policies"] == [{"ID": "5c2f3e1d-aaaa-4bbb-8ccc-0123456789ab",
                                "Name": "platctl-read"}]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z", tok["CreateTime"])
    assert {"Description", "Local", "Hash", "CreateIndex", "ModifyIndex"} <= tok.keys()
    anon = client(emu, token="anonymous").acl.token.read_self()
    assert anon["AccessorID"] == ANONYMOUS_ACCESSOR


def test_acls_disabled(emu):
    emu.acl_enabled = False
    with pytest.raises(consul.ACLDisabled, match="^ACL support disabled$"):
        client(emu).acl.token.read_self()
    r = get(emu, "/v1/acl/token/self")
    assert (r.status_code, r.text, r.headers["content-type"]) == (401, "ACL support disabled",
                                                                  TEXT)
    assert r.headers["x-consul-default-acl-policy"] == "deny"  # still sent with ACLs off
    assert client(emu).agent.self()["Config"]["Version"] == "1.20.1"  # nothing is checked


# -- health / catalog / kv ------------------------------------------------------------------
def test_health_service_passing_filter(emu):
    emu.services["redis"].append({"Node": "cache-2", "Address": "10.0.0.22", "Port": 6379,
                                  "Checks": ["passing", "warning"]})
    c = client(emu)
    index, nodes = c.health.service("redis")
    assert index == "128" and len(nodes) == 2
    index, nodes = c.health.service("redis", passing=True)
    assert emu.requests[-1].query["passing"] == ["1"]
    assert [n["Node"]["Node"] for n in nodes] == ["cache-1"]  # warning is not passing
    assert nodes[0]["Service"]["Port"] == 6379
    assert all(ch["Status"] == "passing" for ch in nodes[0]["Checks"])
    emu.services["redis"][0]["Checks"] = ["critical"]
    assert c.health.service("redis", passing=True)[1] == []
    assert c.health.service("no-such-service") == ("128", [])  # unknown: 200 [], not 404
    assert get(emu, "/v1/health/service/redis?passing").json() == []  # bare ?passing is true


def test_health_acl_filtering_is_silent(emu):
    r = get(emu, "/v1/health/service/redis", token=LIMITED_TOKEN)
    assert (r.status_code, r.json()) == (200, [])
    assert r.headers["x-consul-results-filtered-by-acls"] == "true"
    r = get(emu, "/v1/health/service/redis", token=None)  # anonymous under deny
    assert (r.status_code, r.json()) == (200, [])
    assert "x-consul-results-filtered-by-acls" not in r.headers


def test_catalog_services(emu):
    index, services = client(emu).catalog.services()
    assert services == {"consul": [], "redis": ["primary"]}


def test_kv_get(emu):
    c = client(emu)
    assert c.kv.get("missing/key") == ("128", None)
    index, entry = c.kv.get("config/platctl/enabled")
    assert entry["Value"] == b"true"
    r = get(emu, "/v1/kv/missing/key")
    assert (r.status_code, r.content) == (404, b"")
    assert "content-type" not in r.headers
    assert r.headers["x-consul-index"] == "128"
    r = get(emu, "/v1/kv/config/platctl/enabled", token=LIMITED_TOKEN)
    assert r.status_code == 403 and r.text.endswith(
        "lacks permission 'key:read' on \"config/platctl/enabled\"")


# -- protocol details -------------------------------------------------------------------------
def test_read_headers(emu):
    r = get(emu, "/v1/catalog/services")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-consul-default-acl-policy"] == "deny"
    assert r.headers["x-consul-index"] == "128"
    assert r.headers["x-consul-knownleader"] == "true"
    assert r.headers["x-consul-lastcontact"] == "0"
    assert r.text == '{"consul":[],"redis":["primary"]}'  # compact, like json.Marshal
    emu.default_policy = "allow"
    assert get(emu, "/v1/status/leader").headers["x-consul-default-acl-policy"] == "allow"


def test_unknown_path_and_method(emu):
    r = get(emu, "/v1/nope")
    assert (r.status_code, r.text, r.headers["content-type"]) == (
        404, "Invalid URL path: not a recognized HTTP API endpoint\n", TEXT)
    r = HTTP.post(emu.url + "/v1/status/leader")
    assert (r.status_code, r.text, r.headers["allow"]) == (405, "method POST not allowed",
                                                           "OPTIONS,GET")


def test_blocking_query_waits(emu):
    start = time.monotonic()
    r = get(emu, "/v1/kv/config/platctl/enabled?index=128&wait=300ms")
    assert r.status_code == 200 and time.monotonic() - start >= 0.25
    assert get(emu, "/v1/kv/x?wait=soon&index=1").text == "Invalid wait time"


def test_reset_restores_state(emu):
    emu.leader, emu.acl_enabled, emu.fault = "", False, "hang"
    emu.services["redis"][0]["Checks"] = ["critical"]
    emu.reset()
    assert (emu.leader, emu.acl_enabled, emu.fault) == ("10.0.0.10:8300", True, "none")
    assert emu.services["redis"][0]["Checks"] == ["passing"]


# -- base faults, as py-consul sees them ----------------------------------------------------
def test_fault_hang_times_out(emu):
    emu.fault = "hang"
    start = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):  # raw requests error, not wrapped
        client(emu, timeout=0.5).status.leader()
    assert time.monotonic() - start < 2


def test_fault_slow(emu):
    emu.fault, emu.slow_seconds = "slow", 1.0
    with pytest.raises(requests.exceptions.ReadTimeout):
        client(emu, timeout=0.3).status.leader()


def test_fault_html_and_http500(emu):
    emu.fault = "html"
    with pytest.raises(consul.ConsulException, match="Failed to decode JSON"):
        client(emu).status.leader()
    emu.fault = "http500"
    with pytest.raises(consul.ConsulException, match=r"^500 <!DOCTYPE html>"):
        client(emu).status.leader()


def test_fault_reset_and_garbage(emu):
    # A reset after the headers surfaces as ChunkedEncodingError, which is *not* a
    # ConnectionError: a check must catch requests.RequestException to classify both.
    emu.fault = "reset"
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client(emu).status.leader()
    emu.fault = "garbage"
    with pytest.raises(requests.exceptions.ConnectionError):
        client(emu).status.leader()
