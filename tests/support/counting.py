"""A real runner that records what it ran: tests and benchmarks count host-tool calls with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.backends.runner import Runner, RunResult


@dataclass(slots=True)
class CountingRunner:
    """Wraps a real :class:`~agent.backends.runner.Runner` (not a fake: every call runs)."""

    inner: Runner
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        self.calls.append(tuple(argv))
        return self.inner.run(argv, timeout_s=timeout_s)
