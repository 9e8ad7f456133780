"""The runner: plane order, concurrency inside a plane, fail-fast, selection, `required`."""
from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from platctl import contract, runner, worker
from tests.support import by_id, clean_env, hung_server, run_report, write_profile


def test_checks_of_one_plane_run_concurrently(tmp_path):
    with ExitStack() as stack:
        ports = [stack.enter_context(hung_server()) for _ in range(3)]
        profile = write_profile(
            tmp_path, redis={"url": f"redis://127.0.0.1:{ports[0]}/0"},
            arango={"url": f"http://127.0.0.1:{ports[1]}"},
            meilisearch={"url": f"http://127.0.0.1:{ports[2]}"})
        t0 = time.monotonic()
        report = run_report(profile, only=("redis", "arango", "meilisearch"), timeout=1)
        elapsed = time.monotonic() - t0
    r = by_id(report)
    for cid in ("redis.ping", "arango.available", "meilisearch.health"):
        assert r[cid].reason.value == "timeout", r[cid]
    assert elapsed < 2.0  # three 1 s timeouts cost one, not three


def test_planes_run_in_order_and_later_planes_wait_on_a_failed_one(tmp_path):
    report = run_report(write_profile(tmp_path, duckdb={"path": str(tmp_path / "d.duckdb")}),
                        only=("redis", "duckdb", "consul", "runtime"), timeout=2)
    assert [p.name for p in report.planes] == ["data", "control", "execution"]
    assert [p.status.value for p in report.planes] == ["fail", "skip", "skip"]
    skipped = by_id(report)["consul.leader"]
    assert skipped.status.value == "skip" and "the data plane failed" in skipped.message
    assert by_id(report)["duckdb.open"].status.value == "pass"  # same plane: still ran


def test_keep_going_runs_every_plane(tmp_path):
    report = run_report(write_profile(tmp_path), only=("redis", "runtime"), keep_going=True)
    assert by_id(report)["runtime.command"].status.value == "pass"


def test_fail_fast_stops_at_the_first_failure(tmp_path):
    with hung_server() as port:
        profile = write_profile(tmp_path, redis={"url": f"redis://127.0.0.1:{port}/0"})
        t0 = time.monotonic()
        report = run_report(profile, only=("redis", "meilisearch"), timeout=5, fail_fast=True)
        elapsed = time.monotonic() - t0
    r = by_id(report)
    assert r["meilisearch.health"].reason.value == "refused"
    assert r["redis.ping"].status.value == "skip" and "--fail-fast" in r["redis.ping"].message
    assert elapsed < 3.0  # did not wait for the hung Redis's 5 s


def test_a_service_marked_not_required_does_not_block(tmp_path):
    report = run_report(write_profile(tmp_path, redis={"required": False}),
                        only=("redis", "runtime"))
    ping = by_id(report)["redis.ping"]
    assert ping.status.value == "fail" and ping.required is False
    assert report.ok is True
    assert by_id(report)["runtime.command"].status.value == "pass"


def test_only_omits_other_services_and_skip_reports_them(tmp_path):
    report = run_report(write_profile(tmp_path), only=("runtime",), skip=("runtime.port",))
    assert {c.service for c in report.checks} == {"runtime"}
    port = by_id(report)["runtime.port"]
    assert port.status.value == "skip" and "--skip runtime.port" in port.message


@pytest.mark.parametrize("only,skip", [(("redsi",), ()), ((), ("redis.pong",))])
def test_unknown_selection_is_a_usage_error(tmp_path, only, skip):
    with pytest.raises(runner.SelectionError, match="unknown service or check"):
        run_report(write_profile(tmp_path), only=only, skip=skip)


def test_every_module_declares_exactly_the_contract_ids(tmp_path):
    import importlib

    from platctl.checks import MODULES
    from platctl.checks.base import CheckContext
    from platctl.profiles.loader import load_path
    from tests.support import clean_env

    ctx = CheckContext(profile=load_path(write_profile(tmp_path), clean_env()))
    assert set(MODULES) == set(contract.BY_NAME)
    for spec in contract.SERVICES:
        check = importlib.import_module(MODULES[spec.name]).CHECK(ctx)
        assert tuple(s.id for s in check.all_steps()) == spec.check_ids, spec.name


@pytest.mark.parametrize("check_id", contract.CHECK_IDS)
def test_every_check_run_alone_against_a_refusing_stack_is_classified(tmp_path, check_id):
    # Selected alone, a step cannot lean on an earlier one (its connection, its state):
    # whatever it meets must still be a classified verdict, never an internal error.
    report = run_report(write_profile(tmp_path, duckdb={"path": str(tmp_path / "d.duckdb")}),
                        only=(check_id,), timeout=2)
    result = by_id(report)[check_id]
    assert result.reason is None or result.reason.value != "internal", result


# -- waves: steps of one service that run together (Step.parallel) ----------------------------
@pytest.fixture
def scripted(monkeypatch):
    """consul's checks replaced by tests/scripted_check.py: leader, then a wave of three."""
    from platctl.checks import MODULES
    from tests import scripted_check

    monkeypatch.setitem(MODULES, "consul", "tests.scripted_check")
    scripted_check.SCRIPT.clear()
    scripted_check.RAN.clear()
    scripted_check.CLOSED.clear()
    return scripted_check


WAVE = ("consul.leader", "consul.token", "consul.agent", "consul.services")


def test_a_wave_costs_its_slowest_step_not_their_sum(tmp_path, scripted):
    scripted.SCRIPT.update({cid: ("pass", 0.4) for cid in WAVE})
    report = run_report(write_profile(tmp_path), only=("consul",), timeout=5)
    r = by_id(report)
    assert all(r[c].status.value == "pass" for c in WAVE), [r[c] for c in WAVE]
    assert all(r[c].duration_ms >= 390 for c in WAVE)  # each really took its 0.4 s
    control = next(p for p in report.planes if p.name == "control")
    assert control.duration_ms < 1000, control  # 4 x 0.4 s one after another would be 1.6 s


def test_a_failed_gate_voids_the_answers_of_its_wave(tmp_path, scripted):
    scripted.SCRIPT["consul.leader"] = ("fail", 0.2)
    report = run_report(write_profile(tmp_path), only=("consul",), timeout=5)
    r = by_id(report)
    assert r["consul.leader"].reason.value == "unavailable"
    assert set(scripted.RAN) == set(WAVE)  # the others did run alongside...
    for cid in WAVE[1:]:  # ...but read as not run, their answers meaning nothing now
        assert r[cid].status.value == "skip", r[cid]
        assert r[cid].message == "not run: consul.leader failed"


def test_a_failed_step_that_is_no_gate_leaves_its_wave_alone(tmp_path, scripted):
    scripted.SCRIPT["consul.agent"] = ("fail", 0.0)
    r = by_id(run_report(write_profile(tmp_path), only=("consul",), timeout=5))
    assert r["consul.agent"].status.value == "fail"
    assert [r[c].status.value for c in ("consul.leader", "consul.token", "consul.services")] \
        == ["pass"] * 3


def test_a_hung_wave_blames_its_first_check_and_keeps_the_deadline(tmp_path, scripted):
    scripted.SCRIPT.update({"consul.leader": ("hang", 0), "consul.agent": ("hang", 0)})
    t0 = time.monotonic()
    report = run_report(write_profile(tmp_path), only=("consul",), timeout=1)
    elapsed = time.monotonic() - t0
    r = by_id(report)
    assert r["consul.leader"].reason.value == "timeout", r["consul.leader"]
    assert [r[c].message for c in ("consul.token", "consul.agent")] == \
        ["not run: consul.leader failed"] * 2
    assert elapsed < 1.8


def test_cleanup_overlaps_the_next_plane_and_ends_before_run_returns(tmp_path, scripted):
    scripted.SCRIPT["close"] = ("pass", 0.6)  # e.g. deleting a canary on a slow server
    t0 = time.monotonic()
    report = run_report(write_profile(tmp_path), only=("consul", "runtime"), timeout=5)
    returned = time.monotonic()
    control = next(p for p in report.planes if p.name == "control")
    assert report.ok, report
    assert control.duration_ms < 300, control  # the verdicts, not the cleanup
    assert scripted.CLOSED and scripted.CLOSED[0] <= returned  # nothing left running
    assert returned - t0 >= 0.6
    assert report.duration_ms < 500  # the report times the verdict, not the cleanup


def test_a_hung_cleanup_is_abandoned_after_the_timeout(tmp_path, scripted):
    scripted.SCRIPT["close"] = ("pass", 30.0)
    t0 = time.monotonic()
    outcome = runner.run(*_loaded(tmp_path), runner.Options(timeout=1, only=("consul",)),
                         clean_env())
    assert time.monotonic() - t0 < 2.0
    assert outcome.report.ok and outcome.stuck_workers == 1 and not scripted.CLOSED


def _loaded(tmp_path):
    from platctl.profiles.loader import load_path

    return (load_path(write_profile(tmp_path), clean_env()),)


# -- asking early: a step sends later steps' requests (ServiceCheck.ask_early) -----------------
def _consul_profile(tmp_path, emu):
    from tests.emulators.consul import GOOD_TOKEN

    return write_profile(tmp_path, consul={"url": emu.url, "token": GOOD_TOKEN,
                                           "services": ["consul", "redis"]})


def test_asking_early_costs_one_round_trip_for_the_whole_service(tmp_path):
    from tests.emulators.consul import ConsulEmulator

    with ConsulEmulator() as emu:
        emu.fault, emu.slow_seconds = "slow", 0.4  # every answer 0.4 s late
        report = run_report(_consul_profile(tmp_path, emu), only=("consul",), timeout=5)
        asked = [req.path for req in emu.requests]
    r = by_id(report)
    assert all(r[c].status.value == "pass" for c in WAVE), [r[c] for c in WAVE]
    assert len(asked) == 5, asked  # leader, token, agent, and each service's health
    assert r["consul.leader"].duration_ms >= 390  # the one wait...
    control = next(p for p in report.planes if p.name == "control")
    assert control.duration_ms < 700, control  # ...for all five: 2 s one after another


def test_answers_asked_early_are_not_read_after_a_failed_gate(tmp_path):
    from tests.emulators.consul import ConsulEmulator

    with ConsulEmulator() as emu:
        emu.leader = ""  # 200 "" from /v1/status/leader: no leader elected
        report = run_report(_consul_profile(tmp_path, emu), only=("consul",), timeout=5)
        # the run does not wait for answers it will never read: on a loaded machine a
        # request asked early may reach the server just after the verdict
        end = time.monotonic() + 3
        while "/v1/acl/token/self" not in {r.path for r in emu.requests} and \
                time.monotonic() < end:
            time.sleep(0.02)
        asked = {req.path for req in emu.requests}
    r = by_id(report)
    assert r["consul.leader"].reason.value == "unavailable"
    assert "/v1/acl/token/self" in asked  # asked early...
    for cid in WAVE[1:]:  # ...but never read
        assert r[cid].status.value == "skip", r[cid]
        assert r[cid].message == "not run: consul.leader failed"


def test_a_step_run_alone_asks_for_itself(tmp_path):
    from tests.emulators.consul import ConsulEmulator

    with ConsulEmulator() as emu:
        report = run_report(_consul_profile(tmp_path, emu), only=("consul.agent",), timeout=5)
        asked = [req.path for req in emu.requests]
    assert by_id(report)["consul.agent"].status.value == "pass"
    assert asked == ["/v1/agent/self"]  # nothing asked for the unselected checks


def test_stop_at_cuts_every_deadline_short(tmp_path):
    """--wait's deadline (Options.stop_at) wins over a longer per-check timeout."""
    with hung_server() as port:
        profile = write_profile(tmp_path, consul={"url": f"http://127.0.0.1:{port}"})
        t0 = time.monotonic()
        report = run_report(profile, only=("consul",), timeout=10, stop_at=t0 + 1.0)
        elapsed = time.monotonic() - t0
    assert by_id(report)["consul.leader"].reason.value == "timeout"
    assert 0.9 < elapsed < 1.6, elapsed


# -- imports one service at a time (worker.Turns) -----------------------------------------------
def test_services_take_turns_to_import_in_contract_order():
    import threading

    turns, log = worker.Turns(["redis", "arango", "duckdb"]), []

    def prepare(name):
        with turns.turn(name, time.monotonic() + 5):
            log.append(f"{name} in")
            time.sleep(0.05)  # an import: nobody else's may interleave with it
            log.append(f"{name} out")

    threads = [threading.Thread(target=prepare, args=(n,)) for n in ("duckdb", "arango", "redis")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log == ["redis in", "redis out", "arango in", "arango out", "duckdb in", "duckdb out"]


def test_a_turn_that_does_not_come_is_taken_at_the_deadline():
    turns = worker.Turns(["redis", "arango"])  # redis never takes its turn
    t0 = time.monotonic()
    with turns.turn("arango", t0 + 0.3):
        waited = time.monotonic() - t0
    assert 0.25 < waited < 1.0


def test_asking_early_is_capped_and_the_rest_are_asked_when_read(tmp_path):
    """A profile listing many collections must not open a connection for each at once."""
    import threading

    from platctl.checks.base import MAX_EARLY, CheckContext, ServiceCheck
    from platctl.profiles.loader import load_path

    class Many(ServiceCheck):
        service = "arango"

    check = Many(CheckContext(profile=load_path(write_profile(tmp_path), clean_env())))
    release, calls = threading.Event(), []

    def ask(i):
        calls.append(i)
        release.wait(5)
        return i

    check.ask_early(range(MAX_EARLY + 4), ask)
    time.sleep(0.2)
    assert sorted(calls) == list(range(MAX_EARLY))  # the first MAX_EARLY are in the air
    release.set()
    assert [check.answer(i, ask) for i in range(MAX_EARLY + 4)] == \
        list(range(MAX_EARLY + 4))  # the others asked now, when read
    assert sorted(calls) == list(range(MAX_EARLY + 4))  # each exactly once
