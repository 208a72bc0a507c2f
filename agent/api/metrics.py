"""``GET /metrics``: a snapshot in the Prometheus text exposition format 0.0.4.

Every family is written on every scrape, and every (kind, state) and (kind, availability) pair
with it, zeros included, so a series never vanishes just because nothing is in that state right
now (an absent series silences an alert instead of clearing it). The one exception is the last
success time, which has no honest value before the first success.
"""

from __future__ import annotations

import math
import platform
from collections import Counter
from collections.abc import Iterable, Mapping

from agent.backends.base import Availability
from agent.daemon.state import DURATION_BUCKETS, Snapshot
from agent.model.profile import Kind
from agent.reconcile.status import State

PREFIX = "secprof_"


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_label_value(value)}"' for name, value in sorted(labels.items()))
    return "{" + inner + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines.append(f"# HELP {PREFIX}{name} {help_text}")
        self.lines.append(f"# TYPE {PREFIX}{name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        self.lines.append(f"{PREFIX}{name}{_labels(labels or {})} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _histogram(w: _Writer, name: str, counts: Iterable[int], total: int, sum_s: float) -> None:
    """``counts`` are per bucket (not cumulative) for :data:`DURATION_BUCKETS`; ``total`` counts
    every observation, those above the last bound too, so it is also the ``+Inf`` bucket."""
    cumulative = 0
    for bound, count in zip(DURATION_BUCKETS, counts, strict=True):
        cumulative += count
        w.sample(f"{name}_bucket", cumulative, {"le": _number(bound)})
    w.sample(f"{name}_bucket", total, {"le": "+Inf"})
    w.sample(f"{name}_sum", sum_s)
    w.sample(f"{name}_count", total)


def render(snapshot: Snapshot) -> str:
    """The exposition text for ``snapshot`` (deterministic: families and labels in a fixed
    order)."""
    w = _Writer()
    metrics = snapshot.metrics

    w.family("build_info", "gauge", "secprof version and the Python it runs on; always 1.")
    w.sample("build_info", 1, {"version": snapshot.version,
                               "python": platform.python_version()})

    w.family("start_time_seconds", "gauge", "Unix time the daemon started.")
    w.sample("start_time_seconds", snapshot.started_at)

    w.family("ready", "gauge", "1 once the first full reconcile has finished, else 0.")
    w.sample("ready", 1 if snapshot.ready else 0)

    w.family("profiles", "gauge", "Profiles by kind and state, as of the last reconcile.")
    report = snapshot.report
    by_key = Counter((p.key.kind, p.state) for p in report.profiles) if report else Counter()
    for kind in Kind:
        for state in State:
            w.sample("profiles", by_key[(kind, state)], {"kind": kind.value, "state": state.value})

    w.family("backend_availability", "gauge",
             "1 for the availability each backend reported at its last probe, else 0.")
    for kind, probe in sorted(snapshot.backends.items(), key=lambda item: item[0]):
        for availability in Availability:
            w.sample("backend_availability", 1 if probe.availability is availability else 0,
                     {"kind": kind.value, "availability": availability.value})

    w.family("reconcile_duration_seconds", "histogram", "Wall time of each reconcile.")
    _histogram(w, "reconcile_duration_seconds", metrics.duration_bucket_counts,
               metrics.reconciles, metrics.duration_sum_s)

    w.family("errors_total", "counter", "Errors recorded since the daemon started, by code.")
    for code, count in sorted(metrics.errors_by_code.items()):
        w.sample("errors_total", count, {"code": code})

    w.family("drift_repairs_total", "counter",
             "Profiles reinstalled because what was on the host had drifted from what secprof "
             "installed.")
    w.sample("drift_repairs_total", metrics.drift_repairs)

    w.family("last_success_timestamp_seconds", "gauge",
             "Unix time the last reconcile without errors finished (absent before the first).")
    if metrics.last_success_at is not None:
        w.sample("last_success_timestamp_seconds", metrics.last_success_at)
    return w.text()
