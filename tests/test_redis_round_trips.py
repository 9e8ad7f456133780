"""Round trips of the Redis check against a real, password-protected redis-server.

A managed Redis in another region is tens of milliseconds away, and every answer platctl waits
for costs that much. The whole service must cost ONE round trip: `redis.ping` sends, in one
write, AUTH, PING, INFO server, (without a username in the URL) ACL WHOAMI and the commands
of the later steps that are selected (streams, eviction's CONFIG GET, canary); each later
step reads its own replies. No CLIENT SETINFO / HELLO on connect (redis-py sent SETINFO).

Measured twice, independently:
  * at the server: `INFO commandstats` after `CONFIG RESETSTAT` names every command run;
  * on the wire: tests/faultproxy.py in `slow_ok` mode holds every answer chunk once (an
    answer that arrives in pieces meanwhile goes out with it), so `proxy.delayed` is the
    number of times platctl waited for the server.
"""
from __future__ import annotations

import json

import pytest
import redis

from tests.conftest import REDIS_PASSWORD
from tests.faultproxy import FaultProxy
from tests.support import by_id, platctl, run_report, write_profile

HELD = 0.05  # per answer: enough to count answers, far inside the 5 s timeout
NOINFO_PASSWORD = "noinfo-pw-6612"
READER_PASSWORD = "reader-rt-pw-3390"


def stats_client(server) -> redis.Redis:
    """A connection of the test's own, authenticated before the RESETSTAT it sends: its own
    commands after it are only CONFIG RESETSTAT and the INFO that reads the stats."""
    client = redis.Redis(host="127.0.0.1", port=server.port, password=REDIS_PASSWORD,
                         driver_info=None, single_connection_client=True)
    client.config_resetstat()
    return client


def commands_run(client: redis.Redis) -> tuple[dict[str, int], int]:
    """({command: calls}, error replies) since the RESETSTAT, without the test's own CONFIG
    RESETSTAT (one INFO all, which the stats do not count yet). A call refused by the ACL
    counts (rejected_calls): it cost a round trip all the same. Redis < 7.2 knows no CLIENT
    SETINFO and keeps no command stats for it, but answers it with an error reply: hence
    the error count."""
    stats = client.info("all")
    got = {k.removeprefix("cmdstat_"): v["calls"] + v.get("rejected_calls", 0)
           for k, v in stats.items() if k.startswith("cmdstat_")}
    got.pop("config|resetstat", None)
    return {k: v for k, v in got.items() if v}, stats["total_error_replies"]


def url(port: int, user: str = "", password: str = REDIS_PASSWORD) -> str:
    auth = f"{user}:{password}@" if user or password else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def through_proxy(tmp_path, server, user: str = "", password: str = REDIS_PASSWORD,
                  **opts) -> tuple[dict, int]:
    """Run the check in-process through a proxy holding every answer; (checks, answers).
    Only redis.ping unless `only` says otherwise."""
    opts.setdefault("only", ("redis.ping",))
    with FaultProxy(("127.0.0.1", server.port), mode="slow_ok", slow_ok_delay=HELD) as proxy:
        profile = write_profile(tmp_path, redis={"url": url(proxy.port, user, password)})
        report = run_report(profile, timeout=5, **opts)
        answers, accepted = proxy.delayed, proxy.accepted
    assert accepted == 1, "one connection"
    return by_id(report), answers


def ping_through_proxy(tmp_path, server, user: str = "", password: str = REDIS_PASSWORD):
    r, answers = through_proxy(tmp_path, server, user, password)
    return r["redis.ping"], answers


@pytest.fixture
def server(redis_factory):
    """A dedicated password-protected redis-server (its command stats are the test's alone),
    with a user that may not run INFO and a read-only user like conftest's `reader`."""
    return redis_factory(
        "--requirepass", REDIS_PASSWORD,
        "--user", "noinfo", "on", f">{NOINFO_PASSWORD}", "~*", "+@all", "-info",
        "--user", "reader", "on", f">{READER_PASSWORD}", "~*", "+@read", "+@connection",
        "+info", "-@write", "-@stream")


def test_validate_only_ping_is_one_round_trip_and_never_setinfo(tmp_path, server):
    """The CLI (`platctl validate --only redis.ping`), through the proxy, with the stats."""
    stats = stats_client(server)
    with FaultProxy(("127.0.0.1", server.port), mode="slow_ok", slow_ok_delay=HELD) as proxy:
        profile = write_profile(tmp_path, redis={"url": url(proxy.port)})
        proc = platctl("validate", "-p", str(profile), "--only", "redis.ping", "--timeout", "5",
                       "-o", "json")
        answers = proxy.delayed
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ping = next(c for c in json.loads(proc.stdout)["checks"] if c["id"] == "redis.ping")
    assert ping["status"] == "pass" and "PONG from Redis 7." in ping["message"]
    assert ping["message"].endswith(" as default"), ping["message"]
    ran, errors = commands_run(stats)
    print(f"redis.ping: {answers} round trips, server ran {ran}, {errors} error replies")
    assert not any(k.startswith("client") for k in ran), ran  # no CLIENT SETINFO (>= 7.2)
    assert errors == 0, f"{errors} error replies (CLIENT SETINFO on Redis < 7.2?)"
    # redis.eviction is not selected: its CONFIG GET does not ride along
    assert ran == {"auth": 1, "ping": 1, "info": 1, "acl|whoami": 1}
    assert answers == 1, f"{answers} round trips (AUTH and the rest in one write expected)"


def test_username_in_url_skips_acl_whoami(tmp_path, server):
    stats = stats_client(server)
    r, answers = through_proxy(tmp_path, server, "reader", READER_PASSWORD,
                               only=("redis.ping", "redis.eviction"))
    ping = r["redis.ping"]
    assert ping.status.value == "pass" and ping.message.endswith(" as reader"), ping
    # `reader` may not run CONFIG (+@read only): refused in ping's write, one error reply,
    # which redis.eviction reads as "unknown" without asking again
    assert r["redis.eviction"].status.value == "pass", r["redis.eviction"]
    assert "not readable" in r["redis.eviction"].message
    assert commands_run(stats) == ({"auth": 1, "ping": 1, "info": 1, "config|get": 1}, 1)
    assert answers == 1


def test_acl_whoami_denied_still_passes_without_a_name(tmp_path, redis_factory):
    """A default user that may not run ACL (managed Redis blocks it): NOPERM on ping's last
    command must not fail the step, nor leave an answer unread."""
    server = redis_factory("--user", "default", "on", f">{REDIS_PASSWORD}", "~*", "+@all",
                           "-acl")
    ping, answers = ping_through_proxy(tmp_path, server)
    assert ping.status.value == "pass", ping
    assert ping.message.startswith("PONG from Redis 7.") and " as " not in ping.message
    assert answers == 1
    # the connection stays in step: the next steps on it read their own answers
    r = by_id(run_report(write_profile(tmp_path, redis={"url": url(server.port)}),
                         only=("redis",), timeout=5))
    steps = ("redis.ping", "redis.streams", "redis.eviction", "redis.canary")
    assert [r[i].status.value for i in steps] == ["pass"] * 4, [r[i] for i in steps]


def test_info_denied_fails_as_before(tmp_path, server):
    """NOPERM on INFO (ping's second command after AUTH) is still the step's failure."""
    ping, answers = ping_through_proxy(tmp_path, server, "noinfo", NOINFO_PASSWORD)
    assert (ping.status.value, ping.reason.value) == ("fail", "forbidden"), ping
    assert "may not run PING (NOPERM" in ping.message
    assert answers == 1


def test_noauth_is_named(tmp_path, server):
    """No password in the URL: no AUTH, and the first answer, NOAUTH, is the verdict."""
    stats = stats_client(server)
    ping, answers = ping_through_proxy(tmp_path, server, password="")
    assert ping.reason.value == "auth" and "NOAUTH" in ping.message, ping
    assert answers == 1
    ran, errors = commands_run(stats)
    assert not any(k.startswith("client") for k in ran), ran
    assert errors == 3, errors  # NOAUTH to PING, INFO, ACL WHOAMI: nothing else


def test_the_whole_service_is_one_round_trip(tmp_path, server):
    """The whole service: AUTH, PING, INFO, ACL WHOAMI, streams (XADD, PEXPIRE, XRANGE, DEL),
    eviction (CONFIG GET) and canary (SET, GET, DEL) in one write; every step reads its own
    answers from it: one."""
    stats = stats_client(server)
    with FaultProxy(("127.0.0.1", server.port), mode="slow_ok", slow_ok_delay=HELD) as proxy:
        profile = write_profile(tmp_path, redis={"url": url(proxy.port)})
        r = by_id(run_report(profile, only=("redis",), timeout=5))
        answers, accepted = proxy.delayed, proxy.accepted
    steps = ("redis.ping", "redis.streams", "redis.eviction", "redis.canary")
    assert [r[i].status.value for i in steps] == ["pass"] * 4, [r[i] for i in steps]
    ran, errors = commands_run(stats)
    print(f"redis (all steps): {answers} round trips, server ran {ran}")
    assert (accepted, answers, errors) == (1, 1, 0)
    assert ran == {"auth": 1, "ping": 1, "info": 1, "acl|whoami": 1, "xadd": 1, "pexpire": 1,
                   "xrange": 1, "del": 2, "config|get": 1, "set": 1, "get": 1}


def test_eviction_alone_asks_for_itself(tmp_path, server):
    """Without redis.ping in the run, redis.eviction sends its own CONFIG GET."""
    stats = stats_client(server)
    profile = write_profile(tmp_path, redis={"url": url(server.port)})
    r = by_id(run_report(profile, only=("redis.eviction",), timeout=5))
    assert r["redis.eviction"].status.value == "pass", r["redis.eviction"]
    assert r["redis.ping"].status.value == "skip"
    assert commands_run(stats) == ({"auth": 1, "config|get": 1}, 0)


def test_a_step_run_without_ping_is_one_round_trip_with_its_own_auth(tmp_path, server):
    """`--only redis.canary`: ping carried nothing, the canary sends AUTH, SET, GET and DEL
    in one write on a connection of its own."""
    stats = stats_client(server)
    r, answers = through_proxy(tmp_path, server, only=("redis.canary",))
    assert r["redis.canary"].status.value == "pass", r["redis.canary"]
    assert answers == 1
    assert commands_run(stats) == ({"auth": 1, "set": 1, "get": 1, "del": 1}, 0)


@pytest.mark.parametrize("opts, absent", [
    ({"skip": ("redis.canary",)}, {"set", "get"}),
    ({"skip": ("redis.streams",)}, {"xadd", "pexpire", "xrange", "xlen"}),
    ({"read_only": True}, {"set", "get", "del", "xadd", "pexpire", "xrange"}),
], ids=["skip-canary", "skip-streams", "read-only"])
def test_ping_carries_only_what_the_run_may_send(tmp_path, server, opts, absent):
    """Ping's one write carries a later step's commands only when that step runs, and never
    a write under --read-only (XLEN stands in for the streams)."""
    stats = stats_client(server)
    r, answers = through_proxy(tmp_path, server, only=("redis",), **opts)
    ran, errors = commands_run(stats)
    print(f"{opts}: {answers} round trips, server ran {ran}")
    assert (answers, errors) == (1, 0)
    assert not absent & set(ran), ran
    assert {"auth", "ping", "info", "acl|whoami", "config|get"} <= set(ran), ran
    if opts.get("read_only"):
        assert ran.get("xlen") == 1 and r["redis.canary"].status.value == "skip"
    ran_ids = [i for i in ("redis.streams", "redis.eviction", "redis.canary")
               if r[i].status.value == "pass"]
    assert len(ran_ids) == 3 - len(opts.get("skip", ())) - bool(opts.get("read_only")), r
