"""Waivers against a real redis-server: a waived failure is `warn` with its reason until the
date, blocks nothing, and fails again the day after. "Today" is pinned through the runner."""
from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from platctl.profiles.loader import ProfileError, load_path
from tests.conftest import READER_PASSWORD
from tests.support import by_id, clean_env, platctl, run_report, write_profile

UNTIL = date(2031, 3, 31)


def reader_profile(tmp_path, redis_server, *waived: str, until=UNTIL, password=READER_PASSWORD):
    """The ACL user `reader` may PING but not write or use streams: redis.streams and
    redis.canary fail with `forbidden`."""
    waivers = [{"check": cid, "reason": f"ticket OPS-1: {cid} on the shared cache",
                "until": until} for cid in waived]
    return write_profile(tmp_path, redis={"url": redis_server.url(user="reader",
                                                                  password=password)},
                         waivers=waivers)


def test_waived_failure_is_a_warning_until_its_date_then_fails_again(tmp_path, redis_server):
    profile = reader_profile(tmp_path, redis_server, "redis.streams", "redis.canary")
    on_the_day = run_report(profile, only=("redis",), timeout=2, today=UNTIL)
    r = by_id(on_the_day)
    for cid in ("redis.streams", "redis.canary"):
        assert r[cid].status.value == "warn", r[cid]
        assert r[cid].reason.value == "forbidden"  # the failure class is kept
        assert r[cid].message.startswith(
            f"waived until 2031-03-31: ticket OPS-1: {cid} on the shared cache — ")
        assert "NOPERM" in r[cid].message  # and what really failed
    assert on_the_day.ok

    day_after = run_report(profile, only=("redis",), timeout=2, today=UNTIL + timedelta(1))
    r = by_id(day_after)
    for cid in ("redis.streams", "redis.canary"):
        assert (r[cid].status.value, r[cid].reason.value) == ("fail", "forbidden")
        assert "NOPERM" in r[cid].message and "waiver expired on 2031-03-31" in r[cid].message
    assert not day_after.ok


def test_only_the_waived_check_is_waived(tmp_path, redis_server):
    profile = reader_profile(tmp_path, redis_server, "redis.streams")
    report = run_report(profile, only=("redis",), timeout=2, today=UNTIL)
    r = by_id(report)
    assert r["redis.streams"].status.value == "warn"
    assert (r["redis.canary"].status.value, r["redis.canary"].reason.value) == ("fail",
                                                                               "forbidden")
    assert "waive" not in r["redis.canary"].message
    assert not report.ok and [c.id for c in report.failed] == ["redis.canary"]


@pytest.mark.parametrize("fail_fast", [False, True])
def test_a_waived_failure_blocks_no_plane_and_stops_no_fail_fast(tmp_path, redis_server,
                                                                 fail_fast):
    profile = reader_profile(tmp_path, redis_server, "redis.streams", "redis.canary")
    opts = dict(only=("redis", "runtime"), timeout=2, fail_fast=fail_fast)
    waived = by_id(run_report(profile, today=UNTIL, **opts))
    assert waived["runtime.command"].status.value == "pass", waived["runtime.command"]
    assert waived["redis.canary"].status.value == "warn"
    # the same run the day after: the data plane fails and the execution plane waits
    expired = by_id(run_report(profile, today=UNTIL + timedelta(1), **opts))
    assert expired["runtime.command"].status.value == "skip"
    assert "data plane failed" in expired["runtime.command"].message or fail_fast


def test_a_waived_gate_still_names_itself_in_the_steps_it_stopped(tmp_path, redis_server):
    profile = reader_profile(tmp_path, redis_server, "redis.ping", password="wrong-pw-4410")
    report = run_report(profile, only=("redis",), timeout=2, today=UNTIL)
    r = by_id(report)
    assert (r["redis.ping"].status.value, r["redis.ping"].reason.value) == ("warn", "auth")
    assert r["redis.streams"].status.value == "skip"
    assert r["redis.streams"].message == "not run: redis.ping failed"
    assert report.ok


def test_waivers_are_validated_with_file_line_and_key(tmp_path):
    bad_id = write_profile(tmp_path, name="bad-id",
                           waivers=[{"check": "redis.evictoin", "reason": "x", "until": UNTIL}])
    with pytest.raises(ProfileError, match=r"unknown check id 'redis.evictoin'") as exc:
        load_path(bad_id, {})
    assert exc.value.key == "waivers.0.check" and exc.value.line
    bad_date = write_profile(tmp_path, name="bad-date",
                             waivers=[{"check": "redis.eviction", "reason": "x",
                                       "until": "end of the quarter"}])
    with pytest.raises(ProfileError) as exc:
        load_path(bad_date, {})
    assert exc.value.key == "waivers.0.until"
    no_reason = write_profile(tmp_path, name="no-reason",
                              waivers=[{"check": "redis.eviction", "until": UNTIL}])
    with pytest.raises(ProfileError, match="required key is missing"):
        load_path(no_reason, {})
    # a date in the past is not a load error (lint warns); the waiver just no longer applies
    past = write_profile(tmp_path, name="past",
                         waivers=[{"check": "redis.eviction", "reason": "x",
                                   "until": date(2001, 1, 1)}])
    assert load_path(past, {}).waivers[0].until == date(2001, 1, 1)


@pytest.mark.parametrize("until,code,status", [("2999-12-31", 0, "warn"),
                                                ("2001-01-01", 1, "fail")])
def test_waivers_through_the_cli(tmp_path, redis_server, until, code, status):
    profile = reader_profile(tmp_path, redis_server, "redis.streams", "redis.canary",
                             until=until)
    proc = platctl("validate", "-p", str(profile), "--only", "redis", "-o", "json",
                   "--timeout", "3", env=clean_env())
    assert proc.returncode == code, proc.stdout + proc.stderr
    checks = {c["id"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["redis.canary"]["status"] == status
    assert checks["redis.canary"]["reason"] == "forbidden"
