"""The worker: one thread that mutates the host, fed by a coalescing queue.

File events, the resync timer, SIGHUP and API requests only set flags here; the worker turns any
number of them into one reconcile. A burst of file events is coalesced until it has been quiet
for ``debounce_s`` (but never delayed more than ``max_delay_s``); explicit requests run at once.
Events that arrive while a reconcile runs are not lost: they trigger the next one.

The API reads :meth:`Loop.snapshot`, which is swapped in whole after each reconcile, so a status
query never waits for the worker.

Every reading of time and every timed wait goes through the injected :class:`~agent.clock.Clock`,
so the tests drive the debounce, the resync timer, request timeouts and the watchdog pings with a
fake clock and count reconciles instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from agent import __version__
from agent.clock import SYSTEM_CLOCK, Clock
from agent.codes import Code
from agent.config import Config
from agent.daemon.engine import Engine, summary
from agent.daemon.state import Outcome, Snapshot
from agent.daemon.systemd import Notifier
from agent.errors import AgentError
from agent.reconcile.status import Report, State

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Waiter:
    done: bool = False  # set, with the outcome, under the loop's condition
    outcome: Outcome = field(default_factory=lambda: Outcome(ok=False, message="not run"))


class Loop:
    def __init__(
        self,
        *,
        engine: Engine,
        load_config: Callable[[], Config],
        make_engine: Callable[[Config, Engine], Engine],
        notifier: Notifier,
        on_config_change: Callable[[Config, Config], None] = lambda old, new: None,
        debounce_s: float = 0.1,
        max_delay_s: float = 1.0,
        heartbeat_s: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._engine = engine
        self._load_config = load_config
        self._make_engine = make_engine
        self._notifier = notifier
        self._on_config_change = on_config_change
        self._debounce_s = debounce_s
        self._max_delay_s = max_delay_s
        self._heartbeat_s = heartbeat_s
        self._clock = clock

        # One condition for everything: the worker waits on it for work, requesters for their
        # outcome; so it is always notify_all.
        self._cond = threading.Condition()
        self._events = 0  # file events seen (a counter, so none is lost during a reconcile)
        self._handled = 0  # events already covered by a reconcile
        self._first_event = 0.0
        self._last_event = 0.0
        self._reload_waiters: list[_Waiter] = []
        self._reload_requested = False
        self._reconcile_waiters: list[_Waiter] = []
        self._stopping = False
        self._next_resync = 0.0

        self._snapshot = Snapshot(version=__version__, started_at=clock.now(),
                                  config_source=str(engine.config.source or ""))
        self.heartbeat = clock.monotonic()
        self._thread = threading.Thread(target=self._run, name="secprof-worker", daemon=True)

    # -- what the outside world may call (any thread) --------------------------------------

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def changed(self, why: str) -> None:
        """A file event: reconcile once things have been quiet for a moment."""
        with self._cond:
            now = self._clock.monotonic()
            if self._events == self._handled:
                self._first_event = now
            self._events += 1
            self._last_event = now
            self._cond.notify_all()
        log.debug("change: %s", why)

    def reload_soon(self) -> None:
        """SIGHUP: reload the config, then reconcile."""
        with self._cond:
            self._reload_requested = True
            self._cond.notify_all()

    def request_reconcile(self, timeout_s: float) -> Outcome:
        return self._wait(self._reconcile_waiters, timeout_s)

    def request_reload(self, timeout_s: float) -> Outcome:
        return self._wait(self._reload_waiters, timeout_s)

    def _wait(self, queue: list[_Waiter], timeout_s: float) -> Outcome:
        waiter = _Waiter()
        with self._cond:
            if self._stopping:
                return Outcome(ok=False, message="the daemon is stopping", code=Code.STOPPING)
            queue.append(waiter)
            self._cond.notify_all()
            deadline = self._clock.monotonic() + timeout_s
            while not waiter.done:
                if self._clock.monotonic() >= deadline:
                    return Outcome(ok=False, code=Code.TIMEOUT, message=f"no result within "
                                   f"{timeout_s:.0f} s; the request stays queued")
                self._clock.wait_until(self._cond, deadline)
        return waiter.outcome

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let the current reconcile finish, then end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    def alive(self, stale_after_s: float) -> bool:
        """The worker runs and has made progress recently (for systemd's watchdog)."""
        return self._thread.is_alive() and \
            self._clock.monotonic() - self.heartbeat < stale_after_s

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        self._reconcile(first=True)
        while True:
            with self._cond:
                job = self._next_job()
                while job is None and not self._stopping:
                    self._clock.wait_until(self._cond, self._wake_at())
                    self.heartbeat = self._clock.monotonic()
                    job = self._next_job()
                if self._stopping:
                    break
                reload_waiters = self._take_reload()
                reconcile_waiters, self._reconcile_waiters = self._reconcile_waiters, []
            if reload_waiters is not None:
                outcome = self._reload()
                self._answer(reload_waiters, outcome)
            else:
                outcome = self._reconcile(full=job != "change")
            self._answer(reconcile_waiters, outcome)
        with self._cond:
            stranded = self._reconcile_waiters + self._reload_waiters
        self._answer(stranded, Outcome(ok=False, message="the daemon is stopping",
                                       code=Code.STOPPING))

    def _answer(self, waiters: list[_Waiter], outcome: Outcome) -> None:
        with self._cond:
            for waiter in waiters:
                waiter.outcome = outcome
                waiter.done = True
            self._cond.notify_all()

    def _next_job(self) -> str | None:
        now = self._clock.monotonic()
        if self._reload_requested or self._reload_waiters:
            return "reload"
        if self._reconcile_waiters:
            return "requested"
        if self._events != self._handled and (
            now - self._last_event >= self._debounce_s
            or now - self._first_event >= self._max_delay_s
        ):
            return "change"
        if now >= self._next_resync:
            return "resync"
        return None

    def _wake_at(self) -> float:
        # The next time a job can become due; at the latest one heartbeat from now.
        deadline = min(self._next_resync, self._clock.monotonic() + self._heartbeat_s)
        if self._events != self._handled:
            deadline = min(deadline, self._last_event + self._debounce_s,
                           self._first_event + self._max_delay_s)
        return deadline

    def _take_reload(self) -> list[_Waiter] | None:
        if not (self._reload_requested or self._reload_waiters):
            return None
        waiters, self._reload_waiters = self._reload_waiters, []
        self._reload_requested = False
        return waiters

    def _reconcile(self, *, first: bool = False, full: bool = True) -> Outcome:
        with self._cond:
            covered = self._events
        try:
            result = self._engine.reconcile(full=full)
        except AgentError as exc:  # named, e.g. state-locked: no traceback, its own code
            log.error("reconcile did not run: %s", exc, extra={"ERROR_CODE": exc.code})
            outcome = Outcome(ok=False, code=exc.code, message=exc.message)
        except Exception as exc:  # a bug: keep serving, say so, try again at the next trigger
            log.exception("reconcile failed unexpectedly")
            outcome = Outcome(ok=False, code=Code.INTERNAL_ERROR,
                              message=f"internal error: {type(exc).__name__}: {exc}")
        else:
            self._snapshot = replace(
                self._snapshot, ready=True, report=result.report, metrics=result.metrics,
                backends=result.backends, last_reconcile_at=self._clock.now(),
            )
            status = summary(result.report)
            if first:
                self._notifier.ready(status)
            else:
                self._notifier.status(status)
            outcome = Outcome(ok=result.report.ok, report=result.report,
                              code="" if result.report.ok else Code.PROFILES_IN_ERROR,
                              message="" if result.report.ok else "some profiles are in error")
        with self._cond:
            self._handled = covered
            now = self._clock.monotonic()
            self._next_resync = now + self._engine.config.agent.resync_interval_s
            if first and outcome.report is not None and _needs_network(outcome.report):
                # The boot reconcile used cached bases only; fetch what it could not settle now.
                self._next_resync = now
            self.heartbeat = now
        return outcome

    def _reload(self) -> Outcome:
        self._notifier.reloading()
        old = self._engine.config
        try:
            new = self._load_config()
            engine = self._make_engine(new, self._engine)
        except AgentError as exc:
            message = f"reload failed, keeping the running configuration: {exc}"
            log.error("%s", message, extra={"ERROR_CODE": exc.code})
            self._snapshot = replace(self._snapshot, last_reload_error=str(exc))
            self._notifier.ready(f"{message[:200]}")
            return Outcome(ok=False, message=message, code=exc.code)
        self._engine = engine
        self._snapshot = replace(self._snapshot, last_reload_error="",
                                 config_source=str(new.source or ""))
        self._on_config_change(old, new)
        log.info("configuration reloaded from %s", new.source or "built-in defaults")
        outcome = self._reconcile()
        self._notifier.ready(summary(outcome.report) if outcome.report else "reloaded")
        message = f"reloaded; {outcome.message}" if outcome.message else "reloaded"
        # The verdict of a reload is the config's: once it is in force and its reconcile ran,
        # the reload succeeded, even with profiles in error (they are in the report, and
        # `secprof reconcile` or `status` says so). Otherwise one bad manifest would make every
        # `systemctl reload` fail, and a refused config would look like any other failure.
        ok = outcome.ok or outcome.code == Code.PROFILES_IN_ERROR
        return Outcome(ok=ok, code="" if ok else outcome.code, message=message,
                       report=outcome.report)


def _needs_network(report: Report) -> bool:
    return any(p.state in (State.STALE, State.ERROR) for p in report.profiles)


class Watchdog:
    """The main thread's duty while the worker runs: ping systemd's watchdog every
    ``interval_s`` (half the timeout systemd asked for) while the worker is alive and has made
    progress within two intervals, until :meth:`stop`. Without an interval it only waits.
    """

    # Bounds a wait even without a watchdog: a stop() landing between the check and the wait
    # (a signal handler runs between two bytecodes) is seen within it.
    _IDLE_S = 5.0

    _RETRY_S = 1.0  # how soon a notification systemd could not take yet is sent again

    def __init__(self, *, alive: Callable[[float], bool], ping: Callable[[], None],
                 interval_s: float | None, clock: Clock = SYSTEM_CLOCK,
                 flush: Callable[[], bool] = lambda: True) -> None:
        """``flush`` sends held notifications, ``True`` when none is left."""
        self._alive = alive
        self._ping = ping
        self._flush = flush
        self._interval_s = interval_s
        self._clock = clock
        # Reentrant: stop() runs in a signal handler, possibly while run() holds it.
        self._cond = threading.Condition(threading.RLock())
        self._stopped = False

    def run(self) -> None:
        """Block until :meth:`stop`, pinging on time."""
        interval = self._interval_s
        with self._cond:
            next_ping = self._clock.monotonic() + (interval or 0.0)
            while not self._stopped:
                now = self._clock.monotonic()
                if interval and now >= next_ping:
                    if self._alive(2 * interval):
                        self._ping()
                    next_ping = now + interval
                idle = self._IDLE_S if self._flush() else self._RETRY_S
                wake = next_ping if interval else now + idle
                self._clock.wait_until(self._cond, min(wake, now + idle))

    def stop(self) -> None:
        """End :meth:`run` (safe from a signal handler)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
