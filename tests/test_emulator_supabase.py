"""The Supabase emulator answers as protocols.md section 4 documents, proven through the official
client (supabase-py 2.34.1) and by exact raw-HTTP assertions."""
from __future__ import annotations

import re
import time

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase import ClientOptions, create_client

from tests.emulators.supabase import SupabaseEmulator

# supabase-py 2.34.1 deprecates the timeout/verify it forwards from ClientOptions (it prefers an
# httpx_client); the warning is the client's, not the emulator's.
pytestmark = pytest.mark.filterwarnings("ignore:The '(timeout|verify)' parameter is deprecated")
KONG_WWW = 'Key realm="kong"'
HTTP = httpx.Client()  # one client for the raw asserts: building one per call costs ~40 ms


@pytest.fixture
def emu():
    with SupabaseEmulator() as e:
        yield e


def client(emu, key, *, retry=True, timeout=2):
    return create_client(emu.url, key, options=ClientOptions(
        postgrest_client_timeout=timeout, storage_client_timeout=2,
        postgrest_client_retry=retry, auto_refresh_token=False, persist_session=False))


def get(emu, path, key=None, bearer=None, **kw):
    headers = {}
    if key is not None:
        headers["apikey"] = key
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return HTTP.get(emu.url + path, headers=headers, timeout=kw.pop("timeout", 2), **kw)


# -- keys ---------------------------------------------------------------------------------------
def test_minted_keys_have_documented_claims_and_formats(emu):
    for key, role in ((emu.anon_key, "anon"), (emu.service_role_key, "service_role")):
        claims = jwt.decode(key, emu.jwt_secret, algorithms=["HS256"])
        assert claims["role"] == role and claims["iss"] == "supabase" and "ref" not in claims
        assert claims["exp"] - time.time() > 9 * 365 * 24 * 3600
    assert re.fullmatch(r"sb_publishable_[\w-]{22}_\w{7}", emu.publishable_key)
    assert re.fullmatch(r"sb_secret_[\w-]{22}_\w{7}", emu.secret_key)
    hosted = SupabaseEmulator(hosted=True, project_ref="abcdefghijklmnopqrst")
    assert jwt.decode(hosted.anon_key, hosted.jwt_secret, algorithms=["HS256"])["ref"] == \
        "abcdefghijklmnopqrst"
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(emu.mint_jwt("anon", expired=True), emu.jwt_secret, algorithms=["HS256"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(emu.mint_jwt("anon", wrong_signature=True), emu.jwt_secret, algorithms=["HS256"])
    swapped = emu.swapped_keys()
    assert jwt.decode(swapped["anon"], options={"verify_signature": False})["role"] == "service_role"
    assert emu.swapped_keys(opaque=True)["anon"].startswith("sb_secret_")


# -- Storage ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["service_role_key", "secret_key"])
def test_client_lists_and_gets_buckets(emu, which):
    storage = client(emu, getattr(emu, which)).storage
    buckets = {b.id: b for b in storage.list_buckets()}
    assert set(buckets) == {"avatars", "public-assets"}
    assert buckets["public-assets"].public is True and buckets["avatars"].public is False
    bucket = storage.get_bucket("avatars")
    assert bucket.name == "avatars" and bucket.created_at.microsecond == \
        buckets["avatars"].created_at.microsecond
    raw = get(emu, "/storage/v1/bucket/avatars", bearer=emu.service_role_key).json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", raw["created_at"])


def test_client_missing_bucket_raises_with_body_status(emu):
    with pytest.raises(StorageApiError) as exc:
        client(emu, emu.service_role_key).storage.get_bucket("nope")
    assert (exc.value.status, exc.value.code, exc.value.message) == \
        ("404", "Bucket not found", "Bucket not found")
    r = get(emu, "/storage/v1/bucket/nope", bearer=emu.service_role_key)
    assert r.status_code == 400
    assert r.json() == {"statusCode": "404", "code": "NoSuchBucket", "error": "Bucket not found",
                        "message": "Bucket not found"}


def test_anon_sees_no_buckets_under_default_rls(emu):
    assert client(emu, emu.anon_key).storage.list_buckets() == []
    with pytest.raises(StorageApiError) as exc:
        client(emu, emu.publishable_key).storage.get_bucket("avatars")
    assert exc.value.status == "404"
    emu.anon_sees_buckets = True
    assert len(client(emu, emu.anon_key).storage.list_buckets()) == 2


@pytest.mark.parametrize("make,message", [
    (lambda e: e.mint_jwt("service_role", wrong_signature=True), "invalid signature"),
    (lambda e: e.mint_jwt("service_role", expired=True), "jwt expired"),
])
def test_storage_bad_jwt_is_http_400_with_403_in_body(emu, make, message):
    key = make(emu)
    with pytest.raises(StorageApiError) as exc:
        client(emu, key).storage.list_buckets()
    assert (exc.value.status, exc.value.code, exc.value.message) == ("403", "Unauthorized", message)
    r = get(emu, "/storage/v1/bucket", bearer=key)
    assert r.status_code == 400
    assert r.json() == {"statusCode": "403", "code": "AccessDenied", "error": "Unauthorized",
                        "message": message}


def test_storage_jose_messages(emu):
    emu.storage_jwt_lib = "jose"
    r = get(emu, "/storage/v1/bucket", bearer=emu.mint_jwt("anon", wrong_signature=True))
    assert r.json()["message"] == "signature verification failed"
    assert get(emu, "/storage/v1/bucket").json()["message"] == "Invalid Compact JWS"


def test_storage_has_no_key_auth_but_validates_jwt(emu):
    assert get(emu, "/storage/v1/bucket", bearer=emu.service_role_key).status_code == 200
    r = get(emu, "/storage/v1/bucket")  # no apikey, no Authorization: Storage, not Kong, answers
    assert r.status_code == 400 and r.json()["message"] == "jwt must be provided"
    # an opaque key in apikey alone is translated by the gateway, as Kong's $LUA_AUTH_EXPR does
    assert len(get(emu, "/storage/v1/bucket", key=emu.secret_key).json()) == 2


def test_storage_health(emu):
    assert get(emu, "/storage/v1/health", bearer=emu.anon_key).json() == {"healthy": True}
    emu.storage_healthy = False
    r = get(emu, "/storage/v1/health", bearer=emu.anon_key)
    assert (r.status_code, r.json()) == (200, {"healthy": False})


# -- gateway ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/rest/v1/", "/auth/v1/health", "/auth/v1/settings"])
def test_gateway_missing_key(emu, path):
    r = get(emu, path)
    assert r.status_code == 401 and r.headers["www-authenticate"] == KONG_WWW
    assert r.json() == {"message": "No API key found in request"}
    emu.hosted = True
    assert get(emu, path).json() == {"message": "No API key found in request",
                                     "hint": "No `apikey` request header or url param was found."}


def test_gateway_drop_apikey_switch_yields_no_key_through_client(emu):
    emu.drop_apikey = True
    with pytest.raises(APIError) as exc:
        client(emu, emu.service_role_key).table("todos").select("*").execute()
    assert exc.value.message == "No API key found in request" and exc.value.code is None


def test_gateway_invalid_key(emu):
    bogus = emu.mint_jwt("anon", wrong_signature=True, register=False)  # another project's key
    r = get(emu, "/rest/v1/", key=bogus, bearer=bogus)
    assert (r.status_code, r.json()) == (401, {"message": "Invalid authentication credentials"})
    emu.hosted = True
    r = get(emu, "/auth/v1/health", key="sb_publishable_nope")
    assert (r.status_code, r.json()) == (401, {
        "message": "Invalid API key",
        "hint": "Double check your Supabase `anon` or `service_role` API key."})
    emu.revoke(emu.anon_key)
    with pytest.raises(APIError) as exc:
        client(emu, emu.anon_key).table("todos").select("*").execute()
    assert exc.value.message == "Invalid API key" and exc.value.code is None


def test_gateway_key_in_query_and_header_name_case(emu):
    assert get(emu, "/rest/v1/", params={"apikey": emu.anon_key}).status_code == 200
    r = HTTP.get(emu.url + "/auth/v1/health", headers={"APIKEY": emu.anon_key})
    assert r.status_code == 200


def test_unmatched_route(emu):
    r = get(emu, "/rest/v2/", key=emu.anon_key)
    assert (r.status_code, r.json()) == (404, {"message": "no Route matched with those values"})


# -- PostgREST ----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["anon_key", "service_role_key", "publishable_key", "secret_key"])
def test_postgrest_root_is_swagger(emu, which):
    key = getattr(emu, which)
    r = get(emu, "/rest/v1/", key=key, bearer=key)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/openapi+json; charset=utf-8"
    doc = r.json()
    assert doc["swagger"] == "2.0" and "/todos" in doc["paths"] and "/" in doc["paths"]


def test_client_table_select_and_missing_table(emu):
    c = client(emu, emu.publishable_key)
    assert c.table("todos").select("*").execute().data == [{"id": 1, "task": "boot"}]
    with pytest.raises(APIError) as exc:
        c.table("nope").select("*").execute()
    assert exc.value.code == "PGRST205"
    assert exc.value.message == "Could not find the table 'public.nope' in the schema cache"


def test_postgrest_expired_jwt(emu):
    key = emu.mint_jwt("anon", expired=True)
    with pytest.raises(APIError) as exc:
        client(emu, key).table("todos").select("*").execute()
    assert (exc.value.code, exc.value.message) == ("PGRST303", "JWT expired")
    r = get(emu, "/rest/v1/", key=key, bearer=key)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == \
        'Bearer error="invalid_token", error_description="JWT expired"'
    assert r.headers["proxy-status"] == "PostgREST; error=PGRST303"
    assert r.json() == {"code": "PGRST303", "details": None, "hint": None, "message": "JWT expired"}


def test_postgrest_wrong_signature_and_rotated_secret(emu):
    key = emu.mint_jwt("service_role", wrong_signature=True)
    with pytest.raises(APIError) as exc:
        client(emu, key).table("todos").select("*").execute()
    assert (exc.value.code, exc.value.message) == ("PGRST301", "JWT cryptographic operation failed")
    emu.rotate_jwt_secret()  # stale legacy keys still pass the gateway, fail at PostgREST
    r = get(emu, "/rest/v1/", key=emu.anon_key, bearer=emu.anon_key)
    assert r.status_code == 401 and r.json()["code"] == "PGRST301"
    # opaque keys are translated with the current secret, so they keep working
    assert get(emu, "/rest/v1/", key=emu.secret_key, bearer=emu.secret_key).status_code == 200


def test_untranslated_sb_key_is_pgrst301_three_parts(emu):
    emu.translate_sb_keys = False  # the CLI gateway of supabase-py #1228/#1230
    with pytest.raises(APIError) as exc:
        client(emu, emu.secret_key).table("todos").select("*").execute()
    assert (exc.value.code, exc.value.message) == ("PGRST301", "Expected 3 parts in JWT; got 1")
    r = get(emu, "/rest/v1/", key=emu.secret_key, bearer=emu.secret_key)
    assert r.headers["www-authenticate"] == ('Bearer error="invalid_token", '
                                             'error_description="Expected 3 parts in JWT; got 1"')
    r = get(emu, "/storage/v1/bucket", key=emu.secret_key, bearer=emu.secret_key)
    assert (r.status_code, r.json()["statusCode"], r.json()["message"]) == \
        (400, "403", "jwt malformed")


@pytest.mark.parametrize("status", [401, 403])
def test_hosted_anon_refusal_on_root(status):
    with SupabaseEmulator(hosted=True) as emu:
        emu.anon_refusal_status = status
        for key in (emu.anon_key, emu.publishable_key):
            r = get(emu, "/rest/v1/", key=key, bearer=key)
            assert r.status_code == status
            assert r.json() == {"message": "Access to schema is forbidden", "hint": "Accessing the "
                                "schema via the Data API is only allowed using a secret API key."}
        for key in (emu.service_role_key, emu.secret_key):
            assert get(emu, "/rest/v1/", key=key, bearer=key).json()["swagger"] == "2.0"
        # tables are not the root: anon still reads them
        assert client(emu, emu.anon_key).table("todos").select("*").execute().data


def test_schema_cache_503(emu):
    emu.schema_cache_error = True
    r = get(emu, "/rest/v1/", key=emu.service_role_key, bearer=emu.service_role_key)
    assert r.status_code == 503
    assert r.json() == {"code": "PGRST002", "details": None, "hint": None,
                        "message": "Could not query the database for the schema cache. Retrying."}
    start = time.monotonic()
    with pytest.raises(APIError) as exc:
        client(emu, emu.service_role_key, retry=False).table("todos").select("*").execute()
    assert exc.value.code == "PGRST002" and time.monotonic() - start < 1


# -- GoTrue -------------------------------------------------------------------------------------
def test_gotrue_health_and_settings(emu):
    r = get(emu, "/auth/v1/health", key=emu.anon_key)
    assert r.status_code == 200 and r.headers["x-supabase-api-version"] == "2024-01-01"
    assert r.json() == {"version": emu.gotrue_version, "name": "GoTrue",
                        "description": "GoTrue is a user registration and authentication API"}
    s = get(emu, "/auth/v1/settings", key=emu.publishable_key).json()
    assert set(s) == {"external", "disable_signup", "mailer_autoconfirm", "phone_autoconfirm",
                      "sms_provider", "saml_enabled"}
    assert s["external"]["email"] is True and s["external"]["anonymous_users"] is False


def test_gotrue_down_is_kong_502_after_key_auth(emu):
    emu.down.add("auth")
    r = get(emu, "/auth/v1/health", key=emu.anon_key)
    assert (r.status_code, r.json()) == (
        502, {"message": "An invalid response was received from the upstream server"})
    assert get(emu, "/auth/v1/health").status_code == 401  # key-auth runs before proxying
    assert get(emu, "/rest/v1/", key=emu.anon_key, bearer=emu.anon_key).status_code == 200


# -- base faults --------------------------------------------------------------------------------
def test_fault_http500_and_html(emu):
    emu.fault = "http500"
    with pytest.raises(StorageApiError) as exc:
        client(emu, emu.service_role_key).storage.list_buckets()
    assert exc.value.status == 500 and exc.value.code == "InternalError"
    emu.fault = "html"
    r = get(emu, "/rest/v1/", key=emu.anon_key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_fault_hang_times_out_through_client(emu):
    emu.fault = "hang"
    start = time.monotonic()
    # postgrest-py int()s a number (0.5 -> 0 s), so a sub-second timeout must be an httpx.Timeout
    with pytest.raises(httpx.ReadTimeout):  # PostgREST timeouts are not retried
        client(emu, emu.anon_key, timeout=httpx.Timeout(0.5)).table("todos").select("*").execute()
    assert time.monotonic() - start < 2


def test_fault_slow(emu):
    emu.fault, emu.slow_seconds = "slow", 0.4
    with pytest.raises(httpx.ReadTimeout):
        get(emu, "/auth/v1/health", key=emu.anon_key, timeout=0.1)
    assert get(emu, "/auth/v1/health", key=emu.anon_key, timeout=2).status_code == 200


@pytest.mark.parametrize("fault", ["reset", "garbage"])
def test_fault_reset_and_garbage(emu, fault):
    emu.fault = fault
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client(emu, emu.anon_key, retry=False).table("todos").select("*").execute()


def test_reset_restores_a_healthy_emulator_with_the_same_keys(emu):
    anon = emu.anon_key
    emu.fault, emu.hosted, emu.schema_cache_error = "http500", True, True
    emu.down.add("rest")
    emu.revoke(anon)
    emu.rotate_jwt_secret()
    emu.reset()
    assert emu.anon_key == anon
    assert get(emu, "/rest/v1/", key=anon, bearer=anon).status_code == 200
