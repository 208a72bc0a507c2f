"""One reconcile as the daemon runs it: load (memoised), reconcile, log, count.

The engine is not thread-safe by design: only the worker thread calls it.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from agent import app
from agent.backends.base import Probe
from agent.config import Config
from agent.daemon.state import DURATION_BUCKETS, Metrics
from agent.model.manifests import FileMemo, load_directory
from agent.model.profile import Kind
from agent.reconcile.plan import Step
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import Report, State
from agent.seccomp.build import BuildCache

log = logging.getLogger(__name__)


class ReconcilerFactory(Protocol):
    def __call__(self, config: Config, *, network: bool, build_cache: BuildCache) -> Reconciler:
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    report: Report
    metrics: Metrics
    backends: dict[Kind, Probe]


class Engine:
    def __init__(
        self,
        config: Config,
        *,
        previous: Engine | None = None,
        clock: Callable[[], float] = time.time,
        reconcilers: ReconcilerFactory = app.build_reconciler,
    ) -> None:
        """``previous`` (after a config reload) hands over the counters, which must not reset;
        ``reconcilers`` builds the reconcilers (the composition root's, or one over fakes)."""
        self.config = config
        self._clock = clock
        # Boot never waits on the network: the first reconcile takes oci:// bases from the disk
        # cache only; the next one (a change, a request or the resync) refreshes them.
        cache = BuildCache()
        self._offline: Reconciler | None = reconcilers(config, network=False,
                                                       build_cache=cache)
        self._reconciler: Reconciler = reconcilers(config, network=True, build_cache=cache)
        self._memo = FileMemo()
        self._options = app.load_options(config)
        self._metrics: Metrics = previous.metrics if previous else Metrics()

    @property
    def metrics(self) -> Metrics:
        return self._metrics

    def reconcile(self, *, full: bool = True) -> Result:
        """A reconcile; ``full=False`` (after a file event) trusts unchanged file stats and the
        ledger's view of the host, the periodic resync (``full``) re-reads and re-checks all."""
        started = time.monotonic()
        with app.state_lock(self.config):  # one writer, with `secprof apply`
            desired = load_directory(self.config.agent.profiles_dir, memo=self._memo,
                                     trust_stat=not full, options=self._options)
            reconciler, self._offline = self._offline or self._reconciler, None
            report = reconciler.reconcile(desired, check_drift=full)
        elapsed = time.monotonic() - started
        self._log(report)
        self._metrics = self._count(report, elapsed)
        return Result(report=report, metrics=self._metrics, backends=dict(report.backends))

    def _count(self, report: Report, elapsed: float) -> Metrics:
        m = self._metrics
        buckets = list(m.duration_bucket_counts)
        index = bisect.bisect_left(DURATION_BUCKETS, elapsed)
        if index < len(buckets):
            buckets[index] += 1
        errors = Counter(m.errors_by_code)
        errors.update(p.error_code for p in report.profiles if p.state is State.ERROR)
        errors.update(e.code for e in report.file_errors)
        return replace(
            m,
            reconciles=m.reconciles + 1,
            duration_bucket_counts=tuple(buckets),
            duration_sum_s=m.duration_sum_s + elapsed,
            errors_by_code=dict(errors),
            drift_repairs=m.drift_repairs + sum(1 for p in report.profiles
                                                if p.step is Step.REPAIR),
            last_success_at=self._clock() if report.ok else m.last_success_at,
        )

    @staticmethod
    def _log(report: Report) -> None:
        for p in report.profiles:
            fields = {"PROFILE_KIND": p.key.kind.value, "PROFILE_NAME": p.key.name}
            if p.state is State.ERROR:
                log.error("%s: %s", p.key, p.message,
                          extra={**fields, "ERROR_CODE": p.error_code})
            elif p.step is Step.REPAIR:
                log.warning("%s: repaired (changed on the host by someone else): %s", p.key,
                            p.location, extra=fields)
            elif p.step in (Step.ADD, Step.UPDATE):
                log.info("%s: %s %s", p.key, "installed" if p.step is Step.ADD else "updated",
                         p.location, extra=fields)
        for key in report.removed:
            log.info("%s: removed", key,
                     extra={"PROFILE_KIND": key.kind.value, "PROFILE_NAME": key.name})
        for error in report.file_errors:
            log.error("%s", error, extra={"ERROR_CODE": error.code})


def summary(report: Report) -> str:
    """The one-line ``STATUS=`` text: counts by state and how long the last reconcile took."""
    counts = report.counts()
    parts = [f"{n} {state.lower()}" for state, n in sorted(counts.items())]
    if report.file_errors:
        parts.append(f"{len(report.file_errors)} unreadable file(s)")
    body = ", ".join(parts) or "no profiles"
    return f"{sum(counts.values())} profile(s): {body}; last reconcile took " \
           f"{report.duration_s:.2f} s"
