"""The worker: one thread that mutates the host, fed by a coalescing queue.

File events, the resync timer, SIGHUP and API requests only set flags here; the worker turns any
number of them into one reconcile. A burst of file events is coalesced until it has been quiet
for ``debounce_s`` (but never delayed more than ``max_delay_s``); explicit requests run at once.
Events that arrive while a reconcile runs are not lost: they trigger the next one.

The API reads :meth:`Loop.snapshot`, which is swapped in whole after each reconcile, so a status
query never waits for the worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from agent import __version__
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
    done: threading.Event = field(default_factory=threading.Event)
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
    ) -> None:
        self._engine = engine
        self._load_config = load_config
        self._make_engine = make_engine
        self._notifier = notifier
        self._on_config_change = on_config_change
        self._debounce_s = debounce_s
        self._max_delay_s = max_delay_s
        self._heartbeat_s = heartbeat_s

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

        self._snapshot = Snapshot(version=__version__, started_at=time.time(),
                                  config_source=str(engine.config.source or ""))
        self.heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="secprof-worker", daemon=True)

    # -- what the outside world may call (any thread) --------------------------------------

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def changed(self, why: str) -> None:
        """A file event: reconcile once things have been quiet for a moment."""
        with self._cond:
            now = time.monotonic()
            if self._events == self._handled:
                self._first_event = now
            self._events += 1
            self._last_event = now
            self._cond.notify()
        log.debug("change: %s", why)

    def reload_soon(self) -> None:
        """SIGHUP: reload the config, then reconcile."""
        with self._cond:
            self._reload_requested = True
            self._cond.notify()

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
            self._cond.notify()
        if not waiter.done.wait(timeout_s):
            return Outcome(ok=False, code=Code.TIMEOUT, message=f"no result within {timeout_s:.0f} "
                           "s; the request stays queued")
        return waiter.outcome

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let the current reconcile finish, then end the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def alive(self, stale_after_s: float) -> bool:
        """The worker runs and has made progress recently (for systemd's watchdog)."""
        return self._thread.is_alive() and time.monotonic() - self.heartbeat < stale_after_s

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        self._reconcile(first=True)
        while True:
            with self._cond:
                job = self._next_job()
                while job is None and not self._stopping:
                    self._cond.wait(self._wait_time())
                    self.heartbeat = time.monotonic()
                    job = self._next_job()
                if self._stopping:
                    break
                reload_waiters = self._take_reload()
                reconcile_waiters, self._reconcile_waiters = self._reconcile_waiters, []
            if reload_waiters is not None:
                outcome = self._reload()
                for waiter in reload_waiters:
                    waiter.outcome = outcome
                    waiter.done.set()
            else:
                outcome = self._reconcile(full=job != "change")
            for waiter in reconcile_waiters:
                waiter.outcome = outcome
                waiter.done.set()
        with self._cond:
            for waiter in self._reconcile_waiters + self._reload_waiters:
                waiter.outcome = Outcome(ok=False, message="the daemon is stopping",
                                         code=Code.STOPPING)
                waiter.done.set()

    def _next_job(self) -> str | None:
        now = time.monotonic()
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

    def _wait_time(self) -> float:
        now = time.monotonic()
        deadline = self._next_resync
        if self._events != self._handled:
            deadline = min(deadline, self._last_event + self._debounce_s,
                           self._first_event + self._max_delay_s)
        return max(0.0, min(deadline - now, self._heartbeat_s))

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
                backends=result.backends, last_reconcile_at=time.time(),
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
            self._next_resync = time.monotonic() + self._engine.config.agent.resync_interval_s
            if first and outcome.report is not None and _needs_network(outcome.report):
                # The boot reconcile used cached bases only; fetch what it could not settle now.
                self._next_resync = time.monotonic()
            self.heartbeat = time.monotonic()
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
        return Outcome(ok=outcome.ok, code=outcome.code, message=message, report=outcome.report)


def _needs_network(report: Report) -> bool:
    return any(p.state in (State.STALE, State.ERROR) for p in report.profiles)
