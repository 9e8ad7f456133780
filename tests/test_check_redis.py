"""Redis checks against real redis-server processes (password, ACL user, TLS, replica)."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import pytest

from tests.conftest import READER_PASSWORD, REDIS_PASSWORD
from tests.support import by_id, hung_server, platctl, run_report, write_profile


def redis_report(tmp_path, url, **opts):
    tls = opts.pop("tls", None)
    sections = {"redis": {"url": url}}
    if tls:
        sections["tls"] = tls
    return run_report(write_profile(tmp_path, **sections), only=opts.pop("only", ("redis",)),
                      timeout=opts.pop("timeout", 2), **opts)


def leftover_keys(server) -> list[str]:
    return [k for k in server.cli("--scan", "--pattern", "platctl:*").split() if k]


def test_green_path_passes_every_check_and_leaves_no_key(tmp_path, redis_server):
    r = by_id(redis_report(tmp_path, redis_server.url()))
    assert [r[i].status.value for i in ("redis.ping", "redis.streams", "redis.eviction",
                                         "redis.canary")] == ["pass"] * 4
    assert "PONG from Redis 7." in r["redis.ping"].message
    assert "noeviction" in r["redis.eviction"].message
    assert leftover_keys(redis_server) == []


def test_wrong_password_is_named_and_never_printed(tmp_path, redis_server):
    r = by_id(redis_report(tmp_path, redis_server.url(password="not-the-password-991")))
    ping = r["redis.ping"]
    assert (ping.status.value, ping.reason.value) == ("fail", "auth")
    assert "wrong username or password" in ping.message and "WRONGPASS" in ping.message
    assert "REDIS_URL" in ping.hint
    assert "not-the-password-991" not in ping.message + ping.hint
    assert r["redis.canary"].status.value == "skip"


def test_missing_password_is_noauth(tmp_path, redis_server):
    ping = by_id(redis_report(tmp_path, redis_server.url(password="")))["redis.ping"]
    assert ping.reason.value == "auth" and "NOAUTH" in ping.message


def test_acl_user_without_write_and_stream_permission(tmp_path, redis_server):
    r = by_id(redis_report(tmp_path, redis_server.url(user="reader", password=READER_PASSWORD)))
    assert r["redis.ping"].status.value == "pass" and "as reader" in r["redis.ping"].message
    for cid in ("redis.streams", "redis.canary"):
        assert (r[cid].status.value, r[cid].reason.value) == ("fail", "forbidden")
        assert "NOPERM" in r[cid].message
    # CONFIG is denied to this user, as managed Redis denies it: noted, not failed.
    assert r["redis.eviction"].status.value == "pass"
    assert "not readable" in r["redis.eviction"].message


def test_eviction_policy_other_than_noeviction_warns(tmp_path, redis_factory):
    server = redis_factory("--maxmemory-policy", "allkeys-lru")
    ev = by_id(redis_report(tmp_path, server.url(password="")))["redis.eviction"]
    assert ev.status.value == "warn" and "allkeys-lru" in ev.message
    assert "WAL" in ev.message and "noeviction" in ev.hint


def test_read_only_replica_fails_the_canary(tmp_path, redis_server, redis_factory):
    replica = redis_factory("--replicaof", "127.0.0.1", str(redis_server.port),
                            "--masterauth", REDIS_PASSWORD, "--requirepass", REDIS_PASSWORD)
    r = by_id(redis_report(tmp_path, replica.url()))
    assert r["redis.ping"].status.value == "pass"
    assert r["redis.canary"].reason.value == "forbidden"
    assert "read-only replica" in r["redis.canary"].message


def test_read_only_run_writes_nothing_at_the_server(tmp_path, redis_factory):
    server = redis_factory()
    server.cli("CONFIG", "RESETSTAT", password="")
    r = by_id(redis_report(tmp_path, server.url(password=""), read_only=True))
    assert r["redis.canary"].status.value == "skip"
    assert r["redis.streams"].status.value == "pass"
    stats = server.cli("INFO", "commandstats", password="")
    for write in ("cmdstat_set:", "cmdstat_xadd:", "cmdstat_del:", "cmdstat_pexpire:"):
        assert write not in stats


def test_refused_and_dns(tmp_path):
    r = by_id(redis_report(tmp_path, "redis://127.0.0.1:1/0"))
    assert r["redis.ping"].reason.value == "refused"
    assert "connection refused" in r["redis.ping"].message
    r = by_id(redis_report(tmp_path, "redis://no-such-host.invalid:6379/0"))
    assert r["redis.ping"].reason.value == "dns"


def test_tls_with_ca_from_profile(tmp_path, redis_tls, tls_certs):
    r = by_id(redis_report(tmp_path, redis_tls.url(), tls={"ca_file": str(tls_certs["ca"])}))
    assert r["redis.tls"].status.value == "pass", r["redis.tls"]
    assert r["redis.ping"].status.value == "pass" and "over TLS" in r["redis.ping"].message
    assert r["redis.canary"].status.value == "pass"


def test_tls_with_ca_from_ssl_cert_file(tmp_path, redis_tls, tls_certs):
    from tests.support import clean_env
    r = by_id(redis_report(tmp_path, redis_tls.url(),
                           env=clean_env(SSL_CERT_FILE=str(tls_certs["ca"]))))
    assert r["redis.ping"].status.value == "pass"


def test_tls_untrusted_certificate(tmp_path, redis_tls, tls_certs):
    untrusted = {"ca_file": str(tls_certs["other_ca"])}
    r = by_id(redis_report(tmp_path, redis_tls.url(), tls=untrusted))
    tls = r["redis.tls"]  # the certificate check comes first and is a gate
    assert tls.reason.value == "tls" and "certificate verify failed" in tls.message
    assert r["redis.ping"].status.value == "skip"
    # redis.ping's own handshake (checks/resp.py), with the certificate check skipped, says
    # the same
    ping = by_id(redis_report(tmp_path, redis_tls.url(), tls=untrusted,
                              skip=("redis.tls",)))["redis.ping"]
    assert ping.reason.value == "tls" and "certificate verify failed" in ping.message


def test_plaintext_client_against_tls_server(tmp_path, redis_tls):
    url = redis_tls.url().replace("rediss://", "redis://")
    ping = by_id(redis_report(tmp_path, url))["redis.ping"]
    assert ping.status.value == "fail" and ping.reason.value in ("reset", "timeout")
    if ping.reason.value == "reset":
        assert "rediss://" in ping.message


def test_tls_client_against_plaintext_server(tmp_path, redis_server, tls_certs):
    url = redis_server.url().replace("redis://", "rediss://")
    r = by_id(redis_report(tmp_path, url, tls={"ca_file": str(tls_certs["ca"])}))
    # A plaintext Redis waits for the rest of the "command" the ClientHello started.
    tls = r["redis.tls"]
    assert tls.reason.value == "timeout" and "TLS handshake" in tls.message
    ping = by_id(redis_report(tmp_path, url, tls={"ca_file": str(tls_certs["ca"])},
                              skip=("redis.tls",)))["redis.ping"]
    assert ping.reason.value == "timeout" and "TLS handshake" in ping.message


@contextmanager
def resp_stub(reply: bytes):
    """A peer that answers every read with `reply`: LOADING errors, garbage..."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.settimeout(2)
            try:
                while conn.recv(65536):
                    conn.sendall(reply)
            except OSError:
                pass
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(1)
    srv.close()


def test_loading_server_is_not_ready(tmp_path):
    with resp_stub(b"-LOADING Redis is loading the dataset in memory\r\n") as port:
        ping = by_id(redis_report(tmp_path, f"redis://127.0.0.1:{port}/0"))["redis.ping"]
    assert ping.reason.value == "unavailable" and "LOADING" in ping.message


def test_garbage_answer_is_unexpected(tmp_path):
    with resp_stub(b"HTTP/1.1 400 Bad Request\r\n\r\n") as port:
        ping = by_id(redis_report(tmp_path, f"redis://127.0.0.1:{port}/0"))["redis.ping"]
    assert ping.status.value == "fail" and ping.reason.value == "unexpected"
    assert "did not answer like Redis" in ping.message


def test_hung_redis_verdict_within_timeout_through_the_cli(tmp_path):
    with hung_server() as port:
        profile = write_profile(tmp_path, redis={"url": f"redis://127.0.0.1:{port}/0"})
        t0 = time.monotonic()
        proc = platctl("validate", "-p", str(profile), "--only", "redis", "--timeout", "2",
                       "-o", "json")
        elapsed = time.monotonic() - t0
    print(f"hung redis: platctl validate --timeout 2 returned in {elapsed:.2f} s")
    assert proc.returncode == 1, proc.stderr
    assert '"reason": "timeout"' in proc.stdout and "timed out after 2.0 s" in proc.stdout
    assert elapsed <= 2.5


@pytest.mark.parametrize("fmt", ["table", "json", "junit", "github"])
def test_password_never_printed_in_any_format(tmp_path, redis_server, fmt):
    profile = write_profile(tmp_path, redis={"url": redis_server.url(password="wrong-" + fmt +
                                                                     "-pw-4411")})
    proc = platctl("validate", "-p", str(profile), "--only", "redis", "-o", fmt)
    assert proc.returncode == 1
    assert "wrong-" + fmt + "-pw-4411" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("only", ["redis.streams", "redis.canary", "redis.eviction"])
def test_a_step_run_alone_classifies_a_refused_connection(tmp_path, only):
    # Without redis.ping the step itself makes the connection: found by the fuzzer (exit 3).
    r = by_id(redis_report(tmp_path, "redis://127.0.0.1:1/0", only=(only,)))
    assert r[only].reason.value == "refused", r[only]
