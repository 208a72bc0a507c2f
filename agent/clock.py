"""Time as an injected object: what the daemon's worker and the OCI cache read, and how they wait.

Code that decides by time (debounce, resync, watchdog, tag TTL, failure backoff, request
timeouts) takes a :class:`Clock` instead of calling :mod:`time` itself, so that tests move time by
hand and assert order and counts instead of sleeping. :data:`SYSTEM_CLOCK` is the real one;
:class:`FakeClock` is the one tests move (it lives here, beside the protocol, like the fake
backend beside its protocol).

Waiting is part of the clock because a timed wait is a read of time: :meth:`Clock.wait_until`
waits on a :class:`threading.Condition` until it is notified or the clock reaches a deadline.
Callers hold the condition, re-check their state after every return (it may return early, as
``Condition.wait`` may), and compute deadlines from :meth:`Clock.monotonic`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in seconds since the epoch: what is stored on disk and shown."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps back: for intervals and deadlines."""
        ...

    def wait_until(self, condition: threading.Condition, deadline: float) -> None:
        """Wait on ``condition`` (which the caller holds) until it is notified or
        :meth:`monotonic` reaches ``deadline``; may return early, so callers re-check."""
        ...


class SystemClock:
    """The host's clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait_until(self, condition: threading.Condition, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            condition.wait(remaining)


SYSTEM_CLOCK: Clock = SystemClock()


class FakeClock:
    """A clock that moves only when :meth:`advance` is called (for tests).

    Both readings move together. A thread in :meth:`wait_until` sleeps (really, without a timeout)
    until its condition is notified or an :meth:`advance` wakes it: every advance notifies every
    condition being waited on, under that condition's lock, so a deadline reached by an advance
    is never missed, whichever thread runs first. :meth:`waiting` tells a test when the threads
    it drives have acted on the last advance and are blocked again.
    """

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = now
        self._mono = 0.0
        self._advances = 0
        # (condition, advances seen when the wait began) -> threads waiting so
        self._waiting: Counter[tuple[threading.Condition, int]] = Counter()

    def now(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every waiter, so each re-checks its deadline."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._wall += seconds
            self._mono += seconds
            self._advances += 1
            conditions = {condition for condition, _ in self._waiting}
        for condition in conditions:
            with condition:
                condition.notify_all()

    def waiting(self) -> int:
        """How many threads are in :meth:`wait_until` and went there after the last advance:
        they have seen the time it set, done what it made due, and are blocked again."""
        with self._lock:
            return sum(n for (_, seen), n in self._waiting.items() if seen == self._advances)

    def wait_until(self, condition: threading.Condition, deadline: float) -> None:
        with self._lock:
            # Registered before the time is read: an advance after this line notifies us, and
            # cannot do so before we wait, since we hold the condition until then.
            if self._mono >= deadline:
                return
            key = (condition, self._advances)
            self._waiting[key] += 1
        try:
            condition.wait()
        finally:
            with self._lock:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]
