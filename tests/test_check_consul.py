"""Consul checks through the real runner against the emulator over real HTTP: one test per
failure class (status, reason, message words, hint key), plus the CLI never printing the token
and the token travelling only in the X-Consul-Token header."""
from __future__ import annotations

import json
import time

import pytest

from tests.emulators.base import Reply
from tests.emulators.consul import GOOD_TOKEN, LIMITED_TOKEN, ConsulEmulator
from tests.support import BAD_HTTP_ANSWERS, assert_fail, by_id, platctl, run_report, write_profile

IDS = ("consul.leader", "consul.token", "consul.agent", "consul.services")
URL_KEYS = "CONSUL_HOST / CONSUL_PORT / CONSUL_SCHEME"


@pytest.fixture
def emu():
    with ConsulEmulator() as e:
        yield e


def consul(tmp_path, url, token=None, services=(), **section):
    sec = {"url": url, "services": list(services), **section}
    if token is not None:
        sec["token"] = token
    report = run_report(write_profile(tmp_path, consul=sec), only=("consul",), timeout=2)
    return report, by_id(report)


def statuses(r):
    return [r[i].status.value for i in IDS]


def assert_token_only_in_header(emu, token=GOOD_TOKEN):
    assert emu.requests
    for req in emu.requests:
        assert "token" not in req.query and token not in json.dumps(req.query), req
        assert token not in req.path


def assert_secret_free(report, *secrets):
    text = report.to_json()
    for s in secrets:
        assert s not in text


# -- green paths ---------------------------------------------------------------------------------
def test_green_path(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, GOOD_TOKEN, ["redis", "consul"])
    assert statuses(r) == ["pass"] * 4 and report.ok
    assert "cluster leader 10.0.0.10:8300" in r["consul.leader"].message
    tok = r["consul.token"].message
    assert "token accepted: 'platctl pre-boot check'" in tok and "platctl-read" in tok
    assert "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc01" in tok  # the accessor is no secret
    assert r["consul.agent"].message == \
        "Consul 1.20.1, datacenter dc1, node consul-server-1 (server)"
    assert r["consul.services"].message == \
        "2 service(s) passing: redis (1 instance(s)), consul (1 instance(s))"
    assert_secret_free(report, GOOD_TOKEN)
    assert_token_only_in_header(emu)
    sent = {req.path: req.header("x-consul-token") for req in emu.requests}
    assert sent["/v1/agent/self"] == GOOD_TOKEN  # unlike py-consul's agent.self()
    assert sent["/v1/acl/token/self"] == GOOD_TOKEN


def test_no_services_required(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, GOOD_TOKEN)
    assert report.ok and r["consul.services"].message == \
        "no services required by the profile (consul.services)"


def test_acls_disabled_pass_with_note(tmp_path):
    with ConsulEmulator(acl_enabled=False) as e:
        report, r = consul(tmp_path, e.url, "some-token-the-cluster-ignores", ["redis"])
    assert statuses(r) == ["pass"] * 4 and report.ok
    assert r["consul.token"].message == \
        "ACLs are disabled on this cluster; token not needed"


def test_acls_disabled_without_token(tmp_path):
    with ConsulEmulator(acl_enabled=False) as e:
        report, r = consul(tmp_path, e.url, services=["redis"])
    assert report.ok and "ACLs are disabled" in r["consul.token"].message


# -- transport failures --------------------------------------------------------------------------
def test_refused(tmp_path):
    report, r = consul(tmp_path, "http://127.0.0.1:1", GOOD_TOKEN)
    assert_fail(r["consul.leader"], "refused", "connection refused", hint=URL_KEYS)
    assert "consul.url" in r["consul.leader"].hint
    assert statuses(r)[1:] == ["skip"] * 3 and not report.ok


def test_hung_server_verdict_within_timeout(tmp_path, emu):
    emu.fault = "hang"
    t0 = time.monotonic()
    _, r = consul(tmp_path, emu.url, GOOD_TOKEN)
    elapsed = time.monotonic() - t0
    print(f"hung consul: verdict with --timeout 2 in {elapsed:.2f} s")
    assert_fail(r["consul.leader"], "timeout", "timed out after 2.0 s")
    assert elapsed <= 2.5


def test_dns(tmp_path):
    _, r = consul(tmp_path, "http://no-such-consul.invalid:8500", GOOD_TOKEN)
    assert_fail(r["consul.leader"], "dns", "DNS lookup failed", hint="CONSUL_HOST")


def test_tls_against_plaintext_server(tmp_path, emu):
    _, r = consul(tmp_path, emu.url.replace("http://", "https://"), GOOD_TOKEN)
    assert_fail(r["consul.tls"], "tls", "TLS handshake", hint="CONSUL_SCHEME")


@pytest.mark.parametrize("fault, reason, words", BAD_HTTP_ANSWERS)
def test_bad_answers(tmp_path, emu, fault, reason, words):
    emu.fault = fault
    _, r = consul(tmp_path, emu.url, GOOD_TOKEN)
    assert_fail(r["consul.leader"], reason, *words, hint=URL_KEYS)
    assert statuses(r)[1:] == ["skip"] * 3


def test_url_pointing_at_another_service(tmp_path):
    from tests.emulators.meilisearch import MeilisearchEmulator

    with MeilisearchEmulator() as e:
        _, r = consul(tmp_path, e.url, GOOD_TOKEN)
    assert_fail(r["consul.leader"], "unexpected", "HTTP 404", "Consul HTTP API", hint=URL_KEYS)


# -- cluster state -------------------------------------------------------------------------------
def test_no_leader(tmp_path):
    with ConsulEmulator(leader="") as e:
        report, r = consul(tmp_path, e.url, GOOD_TOKEN, ["redis"])
    assert_fail(r["consul.leader"], "unavailable", "no cluster leader elected", hint=URL_KEYS)
    assert statuses(r)[1:] == ["skip"] * 3 and not report.ok


def test_no_known_servers(tmp_path):
    with ConsulEmulator(no_known_servers=True) as e:
        _, r = consul(tmp_path, e.url, GOOD_TOKEN)
    assert_fail(r["consul.leader"], "unavailable", "cannot reach any Consul server",
                "No known Consul servers", hint=URL_KEYS)


# -- tokens and ACLs -----------------------------------------------------------------------------
def test_bad_token(tmp_path, emu):
    bad = "0badc0de-dead-beef-0000-123456789abc"
    report, r = consul(tmp_path, emu.url, bad, ["redis"])
    assert r["consul.leader"].status.value == "pass"
    assert_fail(r["consul.token"], "auth", "CONSUL_TOKEN is not a valid token", "ACL not found",
                hint="CONSUL_TOKEN")
    assert "consul.token" in r["consul.token"].hint
    assert statuses(r)[2:] == ["skip", "skip"] and not report.ok
    assert_secret_free(report, bad)
    assert_token_only_in_header(emu, bad)


class DeletedTokenEmulator(ConsulEmulator):
    """A token deleted between resolution and lookup: 404 `Supplied token does not exist`."""

    def route(self, req):
        if req.path == "/v1/acl/token/self":
            return Reply(404, b"Supplied token does not exist", "text/plain; charset=utf-8")
        return super().route(req)


def test_token_that_does_not_exist(tmp_path):
    with DeletedTokenEmulator() as e:
        _, r = consul(tmp_path, e.url, GOOD_TOKEN)
    assert_fail(r["consul.token"], "auth", "not a valid token", "Supplied token does not exist",
                hint="CONSUL_TOKEN")


def test_limited_token_agent_forbidden_services_hidden(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, LIMITED_TOKEN, ["redis"])
    assert r["consul.token"].status.value == "pass"
    assert "'kv writer only'" in r["consul.token"].message
    assert "no policies or roles" in r["consul.token"].message
    agent = r["consul.agent"]
    assert_fail(agent, "forbidden", "'kv writer only'", "lacks agent:read",
                "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc02", hint="CONSUL_TOKEN")
    assert "grant agent:read" in agent.hint
    # health results are silently dropped; only the header tells
    assert_fail(r["consul.services"], "forbidden", "hidden by ACLs",
                "X-Consul-Results-Filtered-By-ACLs", "lacks service:read", "redis",
                hint="CONSUL_TOKEN")
    assert not report.ok
    assert_secret_free(report, LIMITED_TOKEN)


def test_no_token_on_deny_cluster_runs_as_anonymous(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, services=["redis"])
    tok = r["consul.token"]
    assert tok.status.value == "warn"
    assert "ACLs are enabled (default policy deny)" in tok.message
    assert "anonymous token with no policies or roles" in tok.message
    assert "CONSUL_TOKEN" in tok.hint
    assert_fail(r["consul.agent"], "forbidden", "anonymous token", "agent:read",
                hint="CONSUL_TOKEN")
    # anonymous requests get no X-Consul-Results-Filtered-By-ACLs header: say it may be hidden
    assert_fail(r["consul.services"], "missing", "not registered", "hidden from the anonymous"
                " token", "redis", hint="consul.services")
    assert not report.ok
    # the only token ever sent is the anonymous token's well-known secret, for its lookup
    assert {req.header("x-consul-token") for req in emu.requests} == {None, "anonymous"}


def test_no_token_on_allow_cluster_passes(tmp_path):
    with ConsulEmulator(default_policy="allow") as e:
        report, r = consul(tmp_path, e.url, services=["redis"])
    assert statuses(r) == ["pass"] * 4 and report.ok
    assert "default policy allow" in r["consul.token"].message


def test_no_token_but_agent_default_token(tmp_path):
    with ConsulEmulator(default_token=GOOD_TOKEN) as e:
        report, r = consul(tmp_path, e.url, services=["redis"])
    assert statuses(r) == ["pass"] * 4 and report.ok
    assert "requests run as the agent's default token 'platctl pre-boot check'" in \
        r["consul.token"].message
    assert_secret_free(report, GOOD_TOKEN)


# -- services ------------------------------------------------------------------------------------
def test_services_missing_are_all_listed(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, GOOD_TOKEN, ["redis", "api", "worker"])
    svc = r["consul.services"]
    assert_fail(svc, "missing", "not registered in Consul: api, worker", hint="consul.services")
    assert "hidden from the anonymous" not in svc.message and "redis" not in svc.message
    assert not report.ok


def test_service_critical(tmp_path, emu):
    emu.services["redis"][0]["Checks"] = ["critical"]
    report, r = consul(tmp_path, emu.url, GOOD_TOKEN, ["redis", "consul"])
    assert_fail(r["consul.services"], "unavailable", "registered but no passing instance",
                "redis (1 instance(s): critical)", hint="consul.services")
    assert "consul" not in r["consul.services"].message.split(":", 1)[1]
    assert not report.ok


def test_service_not_required_does_not_block(tmp_path, emu):
    report, r = consul(tmp_path, emu.url, GOOD_TOKEN, ["api"], required=False)
    assert r["consul.services"].status.value == "fail" and report.ok


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_exit_1_and_token_never_printed(tmp_path, emu):
    secret = "5ec2e7aa-never-print-me-0000-8d1e2f"
    emu.tokens[secret] = {"AccessorID": "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc03",
                          "Description": "cli test", "Policies": [], "agent_read": False,
                          "service_read": False}
    profile = write_profile(tmp_path, consul={"url": emu.url, "token": secret,
                                              "services": ["redis", "api"]})
    proc = platctl("validate", "-p", str(profile), "--only", "consul", "-o", "json",
                   "--timeout", "2")
    assert proc.returncode == 1, proc.stderr
    assert secret not in proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["consul.token"]["status"] == "pass"
    assert checks["consul.agent"]["reason"] == "forbidden"
    assert "CONSUL_TOKEN" in checks["consul.agent"]["hint"]
    # the emulator saw the token on every ACL'd request, always as a header, never in a query
    assert_token_only_in_header(emu, secret)
    assert {req.header("x-consul-token") for req in emu.requests} == {secret}
