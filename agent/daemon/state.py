"""What the daemon shows the outside world: immutable snapshots, and the control seam.

The worker thread builds a new :class:`Snapshot` after every reconcile and swaps it in with one
assignment; the API thread only ever reads the current one, so a status query never waits on a
reconcile, and never sees half of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agent.backends.base import Probe
from agent.model.profile import Kind
from agent.reconcile.status import Report

# Upper bounds (seconds) of the reconcile-duration histogram buckets.
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                       10.0, 30.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """Cumulative counters since the daemon started."""

    reconciles: int = 0
    duration_bucket_counts: tuple[int, ...] = (0,) * len(DURATION_BUCKETS)  # per bucket, not cum.
    duration_sum_s: float = 0.0
    errors_by_code: Mapping[str, int] = field(default_factory=dict)
    drift_repairs: int = 0
    last_success_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    version: str
    started_at: float
    ready: bool = False  # the first full reconcile has finished
    report: Report | None = None  # the last reconcile's
    last_reconcile_at: float | None = None
    backends: Mapping[Kind, Probe] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    config_source: str = ""
    last_reload_error: str = ""  # why the last SIGHUP / reload kept the old config ("" if none)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The answer to a reconcile or reload request made through the API."""

    ok: bool
    message: str = ""
    report: Report | None = None
    code: str = ""  # stable kebab-case reason when not ok ("" lets the API pick a generic one)


class Control(Protocol):
    """What the API may ask of the daemon. Implementations never block the caller longer than
    ``timeout_s`` and never run host mutations on the caller's thread."""

    def snapshot(self) -> Snapshot: ...

    def request_reconcile(self, timeout_s: float) -> Outcome: ...

    def request_reload(self, timeout_s: float) -> Outcome: ...
