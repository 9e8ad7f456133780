"""What managed services do differently from the VM's own (protocols.md), each proven against a
real server or an emulator over HTTPS with a test CA, as Phase 1 reaches them:

- Memorystore blocks CONFIG and ACL: Redis still passes, the eviction policy reported unknown;
- a Supabase project with sb_secret_/sb_publishable_ keys: the secret key travels in `apikey`,
  never as a bearer JWT;
- ArangoDB Oasis hands the platform a non-superuser: a missing database and a missing grant
  both answer 401, and the message says "missing or not granted";
- Meilisearch Cloud's search key where an admin key is needed: insufficient scope, not
  "invalid key".
"""
from __future__ import annotations

import pytest

from tests.conftest import REDIS_PASSWORD
from tests.emulators.arango import ArangoEmulator
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.support import assert_fail, by_id, run_report, write_profile


def report(tmp_path, tls_certs, service, **section):
    profile = write_profile(tmp_path, **{service: section},
                            tls={"ca_file": str(tls_certs["ca"])})
    result = run_report(profile, only=(service,), timeout=3)
    return result, by_id(result)


def https(emu, tls_certs):
    return emu.use_tls(tls_certs["cert"], tls_certs["key"])


def statuses(r, service):
    return {i: c.status.value for i, c in r.items() if i.startswith(service + ".")}


# -- Redis: Memorystore ----------------------------------------------------------------------------
@pytest.fixture
def memorystore(redis_factory, tls_certs):
    """TLS (in-transit encryption), AUTH with a password only, CONFIG and ACL unavailable."""
    return redis_factory("--requirepass", REDIS_PASSWORD,
                         "--rename-command", "CONFIG", "", "--rename-command", "ACL", "",
                         "--tls-cert-file", str(tls_certs["cert"]),
                         "--tls-key-file", str(tls_certs["key"]),
                         "--tls-ca-cert-file", str(tls_certs["ca"]),
                         "--tls-auth-clients", "no", tls=True)


def test_memorystore_blocked_config_and_acl_still_pass(tmp_path, tls_certs, memorystore):
    tls = ("--tls", "--cacert", str(tls_certs["ca"]))
    for blocked in (("CONFIG", "GET", "maxmemory-policy"), ("ACL", "WHOAMI")):
        assert "unknown command" in memorystore.cli(*blocked, extra=tls)  # as Memorystore says
    result, r = report(tmp_path, tls_certs, "redis", url=memorystore.url())
    assert result.ok and set(statuses(r, "redis").values()) == {"pass"}, r
    eviction = r["redis.eviction"].message
    assert eviction.startswith("eviction policy unknown") and "CONFIG GET is not allowed" in \
        eviction and "unknown command" in eviction
    assert "noeviction in the provider's console" in eviction
    assert " as " not in r["redis.ping"].message  # ACL WHOAMI blocked: no user named
    assert "over TLS" in r["redis.ping"].message


def test_readable_eviction_policy_is_still_judged(tmp_path, tls_certs, redis_factory):
    server = redis_factory("--requirepass", REDIS_PASSWORD, "--maxmemory-policy", "allkeys-lru")
    r = by_id(run_report(write_profile(tmp_path, redis={"url": server.url()}), only=("redis",),
                         timeout=3))
    e = r["redis.eviction"]
    assert e.status.value == "warn" and "allkeys-lru" in e.message  # not "unknown"


# -- Supabase: hosted project with the new API keys ------------------------------------------------
@pytest.fixture
def hosted(tls_certs):
    with https(SupabaseEmulator(hosted=True), tls_certs) as emu:
        yield emu


def test_supabase_new_keys_travel_in_apikey_only(tmp_path, tls_certs, hosted):
    result, r = report(tmp_path, tls_certs, "supabase", url=hosted.url,
                       service_key=hosted.secret_key, anon_key=hosted.publishable_key)
    assert result.ok and set(statuses(r, "supabase").values()) == {"pass"}, r
    keys = r["supabase.keys"].message
    assert "sb_secret_ key (role service_role)" in keys
    assert "sb_publishable_ key (role anon)" in keys
    assert hosted.secret_key not in keys and hosted.publishable_key not in keys
    seen = [(q.path, q.header("apikey"), q.header("authorization")) for q in hosted.requests]
    assert ("/rest/v1/", hosted.secret_key, None) in seen  # the secret key: apikey, no Bearer
    assert ("/storage/v1/bucket", hosted.secret_key, None) in seen
    assert ("/auth/v1/health", hosted.publishable_key, None) in seen
    assert all(auth is None for _, _, auth in seen)


def test_supabase_revoked_secret_key(tmp_path, tls_certs, hosted):
    hosted.revoke(hosted.secret_key)
    _, r = report(tmp_path, tls_certs, "supabase", url=hosted.url,
                  service_key=hosted.secret_key, anon_key=hosted.publishable_key)
    assert_fail(r["supabase.rest"], "auth", "the gateway rejects SUPABASE_SERVICE_KEY",
                "Invalid API key", hint="SUPABASE_SERVICE_KEY")
    assert r["supabase.auth"].status.value == "pass"  # the publishable key is still good


# -- ArangoDB: Oasis, a non-superuser --------------------------------------------------------------
@pytest.fixture
def oasis(tls_certs):
    with https(ArangoEmulator(), tls_certs) as emu:  # root: superuser; app: rw on platform
        yield emu


@pytest.mark.parametrize("case", ["typo in the name", "grant forgotten"])
def test_arango_non_superuser_missing_or_not_granted(tmp_path, tls_certs, oasis, case):
    database = "platfrom" if case == "typo in the name" else "platform"
    if case == "grant forgotten":
        oasis.grants[("app", "platform")] = "none"
    _, r = report(tmp_path, tls_certs, "arango", url=oasis.url, username="app",
                  password="apppw", database=database)
    assert r["arango.auth"].status.value == "pass"  # the credentials are proven first
    c = r["arango.database"]
    assert_fail(c, "missing", f"database {database} does not exist or user app has no access"
                " to it", "missing or not granted", "401", hint="ARANGO_DATABASE")
    assert f"grant app rw on {database}" in c.hint
    assert "credentials are wrong" not in c.message


def test_arango_superuser_gets_the_plain_missing_message(tmp_path, tls_certs, oasis):
    _, r = report(tmp_path, tls_certs, "arango", url=oasis.url, username="root",
                  password="rootpw", database="platfrom")
    c = r["arango.database"]
    assert_fail(c, "missing", "database platfrom does not exist", hint="ARANGO_DATABASE")
    assert "not granted" not in c.message


# -- Meilisearch Cloud: the search key -------------------------------------------------------------
@pytest.fixture
def cloud(tls_certs):
    with https(MeilisearchEmulator(), tls_certs) as emu:
        yield emu


def test_meilisearch_search_key_is_insufficient_scope(tmp_path, tls_certs, cloud):
    result, r = report(tmp_path, tls_certs, "meilisearch", url=cloud.url,
                       api_key=cloud.search_key, indexes=["movies"])
    c = r["meilisearch.auth"]
    assert_fail(c, "auth", "insufficient scope", "may only search", "admin key",
                hint="Default Admin API Key")
    assert "MEILI_MASTER_KEY" in c.hint and cloud.search_key not in c.message + c.hint
    assert r["meilisearch.indexes"].status.value == "skip" and not result.ok
    assert [q.path for q in cloud.requests if q.method == "POST"] == ["/multi-search"]


def test_meilisearch_unknown_key_is_not_called_a_scope_problem(tmp_path, tls_certs, cloud):
    _, r = report(tmp_path, tls_certs, "meilisearch", url=cloud.url, api_key="not-a-key-0042")
    c = r["meilisearch.auth"]
    assert_fail(c, "auth", "the API key is invalid", hint="MEILI_MASTER_KEY")
    assert "scope" not in c.message


def test_meilisearch_admin_key_passes(tmp_path, tls_certs, cloud):
    result, r = report(tmp_path, tls_certs, "meilisearch", url=cloud.url,
                       api_key=cloud.admin_key, indexes=["movies"])
    assert result.ok and set(statuses(r, "meilisearch").values()) == {"pass"}, r
