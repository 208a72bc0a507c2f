"""The worker's queue: coalescing, nothing lost during a reconcile, requests, reloads.

The engine is replaced by a counting double at the seam the Loop takes (it would otherwise touch
the host); everything else is the real Loop with its real thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import AgentSection, Config
from agent.daemon.engine import Result
from agent.daemon.loop import Loop
from agent.daemon.state import Metrics
from agent.daemon.systemd import Notifier
from agent.errors import ConfigError
from agent.reconcile.status import Report


class CountingEngine:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[bool] = []  # the `full` flag of each reconcile
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def reconcile(self, *, full: bool = True) -> Result:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(full)
        return Result(report=Report(applied=True), metrics=Metrics(), backends={})


def config(resync: int = 3600) -> Config:
    return Config(agent=AgentSection(resync_interval_s=resync), source=Path("/c.toml"))


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine(config())


@pytest.fixture
def loop(engine: CountingEngine) -> Iterator[Loop]:
    lp = Loop(engine=engine, load_config=config,  # type: ignore[arg-type]
              make_engine=lambda new, old: engine,  # type: ignore[arg-type,return-value]
              notifier=Notifier(), debounce_s=0.05, max_delay_s=0.5)
    lp.start()
    wait(lambda: engine.calls == [True])  # the boot reconcile
    yield lp
    lp.stop()


def wait(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.005)
    raise AssertionError("timed out")


def test_a_burst_is_one_change_reconcile(loop: Loop, engine: CountingEngine) -> None:
    for i in range(50):
        loop.changed(f"event {i}")
    wait(lambda: len(engine.calls) == 2)
    time.sleep(0.2)
    assert engine.calls == [True, False]  # one more, and a change-triggered (not full) one
    assert loop.snapshot().ready


def test_a_steady_stream_is_not_delayed_forever(loop: Loop, engine: CountingEngine) -> None:
    started = time.monotonic()
    while len(engine.calls) < 2 and time.monotonic() - started < 3:
        loop.changed("again")
        time.sleep(0.01)  # always inside the 50 ms quiet window
    assert len(engine.calls) == 2
    assert time.monotonic() - started < 1.0  # max_delay_s (0.5 s) wins over the debounce


def test_an_event_during_a_reconcile_triggers_another(loop: Loop,
                                                      engine: CountingEngine) -> None:
    engine.gate.clear()
    engine.entered.clear()
    loop.changed("first")
    assert engine.entered.wait(5)
    loop.changed("while busy")
    engine.gate.set()
    wait(lambda: len(engine.calls) == 3)


def test_requests_run_now_and_answer(loop: Loop, engine: CountingEngine) -> None:
    outcome = loop.request_reconcile(5)
    assert outcome.ok
    assert engine.calls == [True, True]  # full: an explicit request checks drift too


def test_request_timeout_says_so(loop: Loop, engine: CountingEngine) -> None:
    engine.gate.clear()
    outcome = loop.request_reconcile(0.1)
    assert (outcome.ok, outcome.code) == (False, "timeout")
    engine.gate.set()


def test_a_failing_reload_keeps_the_running_engine(engine: CountingEngine) -> None:
    def bad() -> Config:
        raise ConfigError("[agent] bogus: unknown key")

    lp = Loop(engine=engine, load_config=bad,  # type: ignore[arg-type]
              make_engine=lambda new, old: engine,  # type: ignore[arg-type,return-value]
              notifier=Notifier())
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


def test_resync_runs_on_its_timer(engine: CountingEngine) -> None:
    engine.config = config(resync=1)
    lp = Loop(engine=engine, load_config=config,  # type: ignore[arg-type]
              make_engine=lambda new, old: engine,  # type: ignore[arg-type,return-value]
              notifier=Notifier())
    lp.start()
    try:
        wait(lambda: len(engine.calls) >= 2, timeout=3)
        assert engine.calls[1] is True  # a resync is full
    finally:
        lp.stop()


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
