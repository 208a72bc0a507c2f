"""The worker's queue: coalescing, nothing lost during a reconcile, requests, reloads, the resync
timer and the watchdog, on a fake clock.

The engine is replaced by a counting double at the seam the Loop takes (it would otherwise touch
the host); everything else is the real Loop with its real thread. Time is a
:class:`~agent.clock.FakeClock`: the tests move it and count reconciles, they never sleep for time
to pass (the only real waiting is a bounded poll for the worker thread to act).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.clock import FakeClock
from agent.config import AgentSection, Config
from agent.daemon.engine import Result
from agent.daemon.loop import Loop, Watchdog
from agent.daemon.state import Metrics, Outcome
from agent.daemon.systemd import Notifier
from agent.errors import ConfigError
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.status import ProfileStatus, Report, State

DEBOUNCE, MAX_DELAY, RESYNC = 0.25, 1.0, 3600  # binary fractions: sums of steps are exact


class CountingEngine:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[bool] = []  # the `full` flag of each reconcile
        self.gate = threading.Event()  # cleared: a reconcile blocks until the test sets it
        self.gate.set()
        self.entered = threading.Event()
        self.report = Report(applied=True)  # what each reconcile reports

    def reconcile(self, *, full: bool = True) -> Result:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(full)
        return Result(report=self.report, metrics=Metrics(), backends={})


def config(resync: int = RESYNC) -> Config:
    return Config(agent=AgentSection(resync_interval_s=resync), source=Path("/c.toml"))


def poll(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait (really, bounded) for another thread to get somewhere; not for time to pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


def step(clock: FakeClock, seconds: float, *, threads: int = 1) -> None:
    """Advance the clock, then wait until ``threads`` threads have acted on it and block again."""
    clock.advance(seconds)
    poll(lambda: clock.waiting() >= threads)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine(config())


def make_loop(engine: CountingEngine, clock: FakeClock,
              load_config: Callable[[], Config] = config) -> Loop:
    return Loop(engine=engine, load_config=load_config,  # type: ignore[arg-type]
                make_engine=lambda new, old: engine,  # type: ignore[arg-type,return-value]
                notifier=Notifier(), debounce_s=DEBOUNCE, max_delay_s=MAX_DELAY, clock=clock)


@pytest.fixture
def loop(engine: CountingEngine, clock: FakeClock) -> Iterator[Loop]:
    lp = make_loop(engine, clock)
    lp.start()
    poll(lambda: engine.calls == [True] and clock.waiting() == 1)  # the boot reconcile
    yield lp
    lp.stop()


def test_a_burst_is_one_change_reconcile_after_the_quiet_time(
        loop: Loop, engine: CountingEngine, clock: FakeClock) -> None:
    for i in range(50):
        loop.changed(f"event {i}")
    step(clock, DEBOUNCE / 2)
    assert engine.calls == [True]  # not quiet long enough yet
    step(clock, DEBOUNCE / 2)
    assert engine.calls == [True, False]  # one more, and a change-triggered (not full) one
    step(clock, 10 * MAX_DELAY)
    assert engine.calls == [True, False]  # and no other
    assert loop.snapshot().ready


def test_a_steady_stream_is_not_delayed_beyond_the_max_delay(
        loop: Loop, engine: CountingEngine, clock: FakeClock) -> None:
    interval = DEBOUNCE / 2  # always inside the quiet window
    reconciled_after = []
    for n in range(1, 20):
        loop.changed("again")
        step(clock, interval)
        if len(engine.calls) == 2:
            reconciled_after.append(n * interval)
            break
    assert reconciled_after == [MAX_DELAY]  # max_delay_s wins over the debounce, at its time


def test_an_event_during_a_reconcile_triggers_another(
        loop: Loop, engine: CountingEngine, clock: FakeClock) -> None:
    engine.gate.clear()
    engine.entered.clear()
    loop.changed("first")
    clock.advance(DEBOUNCE)
    assert engine.entered.wait(5)
    loop.changed("while busy")
    engine.gate.set()
    poll(lambda: len(engine.calls) == 2 and clock.waiting() == 1)
    step(clock, DEBOUNCE)
    assert engine.calls == [True, False, False]


def test_requests_run_now_and_answer(loop: Loop, engine: CountingEngine) -> None:
    outcome = loop.request_reconcile(5)
    assert outcome.ok
    assert engine.calls == [True, True]  # full: an explicit request checks drift too


def test_request_timeout_says_so_and_the_request_stays_queued(
        loop: Loop, engine: CountingEngine, clock: FakeClock) -> None:
    engine.gate.clear()
    engine.entered.clear()
    outcomes: list[Outcome] = []
    requester = threading.Thread(target=lambda: outcomes.append(loop.request_reconcile(30)))
    requester.start()
    assert engine.entered.wait(5)  # the worker took the request and is held in the engine...
    poll(lambda: clock.waiting() == 1)  # ...and the requester waits for it on the clock
    step(clock, 29)
    assert outcomes == []
    clock.advance(1)
    requester.join(5)
    [outcome] = outcomes
    assert (outcome.ok, outcome.code) == (False, "timeout")
    assert "no result within 30 s" in outcome.message
    engine.gate.set()
    poll(lambda: engine.calls == [True, True])  # it still ran


def test_stop_answers_queued_requests(engine: CountingEngine, clock: FakeClock) -> None:
    lp = make_loop(engine, clock)
    engine.gate.clear()
    lp.start()
    assert engine.entered.wait(5)  # the boot reconcile, held
    outcomes: list[Outcome] = []
    requester = threading.Thread(target=lambda: outcomes.append(lp.request_reload(30)))
    requester.start()
    poll(lambda: clock.waiting() == 1)  # the requester (the worker is in the engine)
    lp.stop(timeout_s=0)  # asked to stop while the boot reconcile still runs
    engine.gate.set()
    lp.stop()
    requester.join(5)
    assert [(o.ok, o.code) for o in outcomes] == [(False, "stopping")]
    assert engine.calls == [True]  # the reload never ran
    assert lp.request_reconcile(30).code == "stopping"


def test_a_failing_reload_keeps_the_running_engine(engine: CountingEngine,
                                                   clock: FakeClock) -> None:
    def bad() -> Config:
        raise ConfigError("[agent] bogus: unknown key")

    lp = make_loop(engine, clock, load_config=bad)
    lp.start()
    try:
        outcome = lp.request_reload(5)
        assert not outcome.ok
        assert outcome.code == "config-invalid"
        assert "keeping the running configuration" in outcome.message
        assert lp.snapshot().last_reload_error == "[agent] bogus: unknown key"
        assert lp.request_reconcile(5).ok  # still serving
    finally:
        lp.stop()


def test_a_reload_in_force_succeeds_with_profiles_in_error(engine: CountingEngine,
                                                          clock: FakeClock) -> None:
    """The verdict of a reload is the config's: profiles in error are in its report, and a
    reconcile (like ``apply``) still says they are not ok."""
    broken = ProfileStatus(key=ProfileKey(Kind.SECCOMP, "web"), state=State.ERROR,
                           message="spec.syscalls[0].action: unknown action")
    engine.report = Report(applied=True, profiles=(broken,))
    lp = make_loop(engine, clock)
    lp.start()
    try:
        reloaded = lp.request_reload(5)
        assert (reloaded.ok, reloaded.code) == (True, "")
        assert reloaded.message == "reloaded; some profiles are in error"
        assert reloaded.report is not None and reloaded.report.profiles == (broken,)
        reconciled = lp.request_reconcile(5)
        assert (reconciled.ok, reconciled.code) == (False, "profiles-in-error")
    finally:
        lp.stop()


def test_resync_runs_on_its_timer(loop: Loop, engine: CountingEngine, clock: FakeClock) -> None:
    step(clock, RESYNC - 1)
    assert engine.calls == [True]
    step(clock, 1)
    assert engine.calls == [True, True]  # a resync is full
    step(clock, RESYNC - 1)
    assert engine.calls == [True, True]
    loop.changed("edit")
    step(clock, DEBOUNCE)
    assert engine.calls == [True, True, False]
    step(clock, RESYNC - 1)  # any reconcile restarts the timer
    assert engine.calls == [True, True, False]
    step(clock, 1)
    assert engine.calls == [True, True, False, True]


def test_times_come_from_the_clock(loop: Loop, clock: FakeClock) -> None:
    started = clock.now()
    assert loop.snapshot().started_at == started
    step(clock, 7)
    loop.request_reconcile(5)
    assert loop.snapshot().last_reconcile_at == started + 7


def test_a_stuck_worker_is_not_alive(loop: Loop, engine: CountingEngine,
                                     clock: FakeClock) -> None:
    step(clock, 60)  # idle: the worker wakes every heartbeat (10 s) and says so
    assert loop.alive(stale_after_s=11)
    engine.gate.clear()
    engine.entered.clear()
    loop.changed("x")
    clock.advance(DEBOUNCE)
    assert engine.entered.wait(5)
    clock.advance(10)
    assert loop.alive(stale_after_s=11)
    clock.advance(1)
    assert not loop.alive(stale_after_s=11)  # so the watchdog pings stop: systemd restarts it
    engine.gate.set()
    poll(lambda: loop.alive(stale_after_s=11))


def test_the_watchdog_pings_each_interval_while_the_worker_is_alive(clock: FakeClock) -> None:
    pings: list[float] = []
    healthy = [True]
    asked: list[float] = []

    def alive(stale_after_s: float) -> bool:
        asked.append(stale_after_s)
        return healthy[0]

    dog = Watchdog(alive=alive, ping=lambda: pings.append(clock.monotonic()), interval_s=5,
                   clock=clock)
    runner = threading.Thread(target=dog.run)
    runner.start()
    try:
        poll(lambda: clock.waiting() == 1)
        step(clock, 4)
        assert pings == []
        step(clock, 1)
        step(clock, 5)
        assert pings == [5, 10]
        assert asked == [10, 10]  # stale after two intervals
        healthy[0] = False
        step(clock, 5)
        step(clock, 5)
        assert pings == [5, 10]  # a stuck worker gets no pings
        healthy[0] = True
        step(clock, 5)
        assert pings == [5, 10, 25]
    finally:
        dog.stop()
        runner.join(5)
    assert not runner.is_alive()


def test_without_an_interval_the_watchdog_only_waits_for_stop(clock: FakeClock) -> None:
    pings: list[float] = []
    dog = Watchdog(alive=lambda s: True, ping=lambda: pings.append(0), interval_s=None,
                   clock=clock)
    runner = threading.Thread(target=dog.run)
    runner.start()
    poll(lambda: clock.waiting() == 1)
    step(clock, 3600)
    dog.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert pings == []


def test_a_named_failure_is_its_own_outcome_not_an_internal_error(
        loop: Loop, engine: CountingEngine, caplog: pytest.LogCaptureFixture) -> None:
    from agent.codes import Code  # noqa: PLC0415
    from agent.reconcile.lock import StateLocked  # noqa: PLC0415

    def locked(*, full: bool = True) -> Result:
        raise StateLocked("another secprof process (pid 42) has held the state lock",
                          code=Code.STATE_LOCKED)

    engine.reconcile = locked  # type: ignore[method-assign]
    outcome = loop.request_reconcile(5.0)
    assert (outcome.ok, outcome.code) == (False, Code.STATE_LOCKED)
    assert "pid 42" in outcome.message
    assert "Traceback" not in caplog.text
