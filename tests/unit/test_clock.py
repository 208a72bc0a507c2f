"""The clocks: the fake moves only when told and wakes the waiters whose deadline it reaches; the
system clock waits on a real condition until its deadline."""

from __future__ import annotations

import threading
import time

import pytest

from agent.clock import SYSTEM_CLOCK, FakeClock


def waiter(clock: FakeClock, condition: threading.Condition, deadline: float,
           woke: list[float]) -> threading.Thread:
    def run() -> None:
        with condition:
            while clock.monotonic() < deadline:
                clock.wait_until(condition, deadline)
            woke.append(clock.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def settle(clock: FakeClock, threads: int) -> None:
    deadline = time.monotonic() + 5
    while clock.waiting() < threads:
        assert time.monotonic() < deadline, "the waiters never blocked"
        time.sleep(0.002)


def test_the_fake_moves_only_when_advanced_and_both_readings_together() -> None:
    clock = FakeClock(now=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    clock.advance(2.5)
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)


def test_an_advance_wakes_exactly_the_waiters_whose_deadline_it_reaches() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    woke: list[float] = []
    early, late = waiter(clock, condition, 5, woke), waiter(clock, condition, 10, woke)
    settle(clock, 2)
    clock.advance(4)
    settle(clock, 2)  # both woke, re-checked, and wait again
    assert woke == []
    clock.advance(1)
    early.join(5)
    settle(clock, 1)
    assert woke == [5]
    clock.advance(100)
    late.join(5)
    assert woke == [5, 105]
    assert clock.waiting() == 0


def test_a_deadline_already_reached_does_not_wait() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    clock.advance(3)
    with condition:
        clock.wait_until(condition, 3)  # returns at once: no other thread could wake it
    assert clock.waiting() == 0


def test_a_notify_wakes_a_fake_waiter_before_its_deadline() -> None:
    clock = FakeClock()
    condition = threading.Condition()
    done: list[bool] = []

    def run() -> None:
        with condition:
            clock.wait_until(condition, 3600)
            done.append(True)

    thread = threading.Thread(target=run)
    thread.start()
    settle(clock, 1)
    with condition:
        condition.notify_all()
    thread.join(5)
    assert done == [True]
    assert clock.monotonic() == 0


def test_the_system_clock_waits_until_its_deadline() -> None:
    assert abs(SYSTEM_CLOCK.now() - time.time()) < 60
    condition = threading.Condition()
    with condition:
        SYSTEM_CLOCK.wait_until(condition, SYSTEM_CLOCK.monotonic() - 1)  # past: no wait
        started = SYSTEM_CLOCK.monotonic()
        SYSTEM_CLOCK.wait_until(condition, started + 0.02)
        assert SYSTEM_CLOCK.monotonic() >= started + 0.02
