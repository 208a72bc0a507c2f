"""A real, in-memory :class:`~agent.daemon.state.Control`: the seam the API is written against.

It holds a snapshot that tests replace, and answers reconcile/reload requests with outcomes the
test queues, recording every call. It is what the daemon's worker is to the API, without the
worker, not a mock of it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace

from agent.backends.base import Availability, Probe
from agent.backends.fake import FakeDriver
from agent.daemon.state import DURATION_BUCKETS, Metrics, Outcome, Snapshot
from agent.errors import ManifestError
from agent.model.profile import Kind, Origin, ProfileKey
from agent.model.seccomp import Arg, SeccompSpec, SyscallRule
from agent.reconcile.driver import Built, Details
from agent.reconcile.plan import Step
from agent.reconcile.status import ProfileStatus, Report, State
from agent.seccomp.driver import link_json
from agent.seccomp.render import rule_json
from agent.seccomp.resolve import Link

T0 = 1_800_000_000.0  # the "now" of tests that pass a clock; CLI tests use the real time


@dataclass
class MemoryControl:
    current: Snapshot
    outcomes: deque[Outcome] = field(default_factory=deque)
    calls: list[tuple[str, float]] = field(default_factory=list)
    hold: threading.Event | None = None  # when set, requests wait on it (a busy worker)

    def snapshot(self) -> Snapshot:
        return self.current

    def _answer(self, what: str, timeout_s: float) -> Outcome:
        self.calls.append((what, timeout_s))
        if self.hold is not None and not self.hold.wait(timeout_s):
            return Outcome(ok=False, code="timeout", message=f"no answer in {timeout_s:g} s")
        return self.outcomes.popleft() if self.outcomes else Outcome(ok=True)

    def request_reconcile(self, timeout_s: float) -> Outcome:
        return self._answer("reconcile", timeout_s)

    def request_reload(self, timeout_s: float) -> Outcome:
        return self._answer("reload", timeout_s)


def _spec() -> SeccompSpec:
    return SeccompSpec(default_action="SCMP_ACT_ERRNO")


def web_frontend(now: float = T0) -> ProfileStatus:
    chain = (
        Link(reference="web-frontend", digest="sha256:" + "a" * 64,
             source="web-frontend.yaml[0]", spec=_spec()),
        Link(reference="oci://registry.example:5000/profiles/runtime:v1",
             digest="sha256:" + "b" * 64, source="registry.example:5000/profiles/runtime",
             signer="release@example.invalid", stale=True, spec=_spec()),
    )
    syscalls = (
        SyscallRule(names=("accept4", "bind"), action="SCMP_ACT_ALLOW"),
        SyscallRule(names=("personality",), action="SCMP_ACT_ALLOW",
                    args=(Arg(index=0, value=8, value_two=0, op="SCMP_CMP_EQ"),)),
        SyscallRule(names=("ptrace",), action="SCMP_ACT_ERRNO", errno_ret=1),
    )
    return ProfileStatus(
        key=ProfileKey(Kind.SECCOMP, "web-frontend"), state=State.STALE, step=Step.UNCHANGED,
        source="web-frontend.yaml[0]", digest="sha256:" + "c" * 64,
        installed_digest="sha256:" + "c" * 64, installed_at=now - 7200,
        location="/var/lib/kubelet/seccomp/secprof/web-frontend.json",
        usage="secprof/web-frontend.json",
        details=Details(FakeDriver("seccomp", [Kind.SECCOMP]), Built(
            key=ProfileKey(Kind.SECCOMP, "web-frontend"),
            origin=Origin(file="web-frontend.yaml", display="web-frontend.yaml", index=0),
            content=b"{}", digest="sha256:" + "c" * 64,
            detail={"chain": [link_json(link) for link in chain],
                    "syscalls": [rule_json(rule) for rule in syscalls]},
        )),
        notes=("defaultAction differs in base oci://registry.example:5000/profiles/runtime:v1",),
    )


def broken(now: float = T0) -> ProfileStatus:
    return ProfileStatus(
        key=ProfileKey(Kind.SECCOMP, "broken"), state=State.ERROR, step=Step.HOLD,
        source="broken.yaml[0]", message="spec.syscalls[0].action: unknown action 'ALLOW'",
        error_code="manifest-invalid", installed_digest="sha256:" + "d" * 64,
        installed_at=now - 86400 * 3,
    )


def apparmor() -> ProfileStatus:
    return ProfileStatus(key=ProfileKey(Kind.APPARMOR, "nginx"), state=State.VALIDATED,
                         step=Step.ADD, source="nginx.yaml[0]", location="secprof-nginx")


def report(now: float = T0) -> Report:
    return Report(
        profiles=(web_frontend(now), broken(now), apparmor()),
        removed=(ProfileKey(Kind.SECCOMP, "old"),),
        file_errors=(ManifestError("not valid YAML", file="junk.yaml",
                                   code="yaml-invalid"),),
        applied=True, files_written=1, started_at=now - 60, duration_s=0.125,
    )


def metrics(now: float = T0) -> Metrics:
    counts = [0] * len(DURATION_BUCKETS)
    counts[0], counts[5], counts[-1] = 2, 3, 1  # 0.005, 0.25, 30: and one above 30 s
    return Metrics(reconciles=7, duration_bucket_counts=tuple(counts), duration_sum_s=75.5,
                   errors_by_code={"manifest-invalid": 4, 'we"ird\\code\n': 1},
                   drift_repairs=2, last_success_at=now - 600)


def starting(now: float = T0) -> Snapshot:
    """Just started: nothing reconciled yet."""
    return Snapshot(version="0.1.0", started_at=now - 5,
                    backends={Kind.SECCOMP: Probe(availability=Availability.INSTALLED)})


def running(now: float = T0) -> Snapshot:
    """An hour up, after a reconcile with one profile in error and one stale."""
    return replace(
        starting(now), ready=True, report=report(now), last_reconcile_at=now - 60,
        started_at=now - 3600,
        backends={
            Kind.SECCOMP: Probe(availability=Availability.INSTALLED),
            Kind.APPARMOR: Probe(availability=Availability.COMPILE_ONLY,
                                 reason="no AppArmor in this kernel"),
        },
        metrics=metrics(now), config_source="/etc/secprof/config.toml",
        last_reload_error="[agent] sockett: unknown key",
    )


def clock() -> float:
    return T0
