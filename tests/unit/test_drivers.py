"""The reconciler through the driver seam: probe gating, order, isolation between drivers.

These tests are about the reconciler, not a backend: they use the in-memory FakeDriver and
FakeBackend (agent/backends/fake.py). Each real backend is tested against its real tool.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.backends.base import Availability, Batch, Probe, Result
from agent.backends.fake import FakeBackend, FakeDriver, FakeProfile
from agent.errors import BackendError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, Origin, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.plan import Step
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import Report, State

AA = Kind.APPARMOR
SE = Kind.SELINUX


def key(kind: Kind, name: str) -> ProfileKey:
    return ProfileKey(kind, name)


def desired(*keys: ProfileKey, body: str = "v1") -> DesiredState:
    profiles = {
        k: FakeProfile(key=k, origin=Origin(file=f"{k.name}.yaml", display=f"{k.name}.yaml",
                                            index=0), body=body)
        for k in keys
    }
    return DesiredState(profiles=dict(sorted(profiles.items())))


def state(report: Report, k: ProfileKey) -> tuple[State, Step | None, str]:
    p = next(p for p in report.profiles if p.key == k)
    return p.state, p.step, p.message


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.fast = FakeDriver("fast", [AA])
        self.slow = FakeDriver("slow", [SE, Kind.RAW_SELINUX])
        self.ledger = LedgerStore(tmp_path / "state")
        self.reconciler = Reconciler(drivers=[self.fast, self.slow], ledger=self.ledger,
                                     clock=lambda: 1.0)

    def run(self, d: DesiredState) -> Report:
        return self.reconciler.reconcile(d)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_each_driver_installs_its_own_kinds(w: World) -> None:
    report = w.run(desired(key(AA, "a"), key(SE, "s")))
    assert report.ok
    assert set(w.fast.backend.installed) == {key(AA, "a")}
    assert set(w.slow.backend.installed) == {key(SE, "s")}
    assert {p.usage for p in report.profiles} == {"fake/a", "fake/s"}
    assert report.backends[AA].availability is Availability.INSTALLED


def test_drivers_apply_in_order_fastest_first(tmp_path: Path) -> None:
    order: list[str] = []

    class Recording(FakeBackend):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def apply(self, batch: Batch) -> list[Result]:
            order.append(self.name)
            return super().apply(batch)

    fast = FakeDriver("fast", [AA], Recording("fast"))
    slow = FakeDriver("slow", [SE], Recording("slow"))
    Reconciler(drivers=[fast, slow], ledger=LedgerStore(tmp_path)).reconcile(
        desired(key(SE, "s"), key(AA, "a")))
    assert order == ["fast", "slow"]


def test_unavailable_driver_fails_its_profiles_and_the_others_go_on(w: World) -> None:
    w.run(desired(key(AA, "a"), key(SE, "s")))
    w.slow.backend.probe_result = Probe(availability=Availability.UNAVAILABLE,
                                        reason="semodule is not installed")
    report = w.run(desired(key(AA, "a"), key(SE, "s"), body="v2"))
    st, step, message = state(report, key(SE, "s"))
    assert st is State.ERROR
    assert "the slow backend is unavailable: semodule is not installed" in message
    assert "stays installed" in message
    assert step is Step.HOLD
    assert w.slow.builds == 1  # not even built while unavailable
    assert len(w.slow.backend.batches) == 1  # no host call
    assert state(report, key(AA, "a"))[:2] == (State.INSTALLED, Step.UPDATE)
    assert not report.ok


def test_unavailable_driver_never_removes(w: World) -> None:
    w.run(desired(key(SE, "s")))
    w.slow.backend.probe_result = Probe(availability=Availability.UNAVAILABLE, reason="gone")
    report = w.run(desired())
    assert key(SE, "s") in w.slow.backend.installed
    assert key(SE, "s") in w.ledger.load()
    st, step, message = state(report, key(SE, "s"))
    assert (st, step) == (State.ERROR, Step.HOLD) and "unavailable: gone" in message
    w.slow.backend.probe_result = Probe(availability=Availability.INSTALLED)
    assert w.run(desired()).removed == (key(SE, "s"),)


def test_compile_only_gives_validated_never_installed(w: World) -> None:
    w.fast.backend.probe_result = Probe(availability=Availability.COMPILE_ONLY,
                                        reason="the kernel has no AppArmor")
    report = w.run(desired(key(AA, "a"), key(SE, "s")))
    assert state(report, key(AA, "a")) == (State.VALIDATED, Step.ADD,
                                           "the kernel has no AppArmor")
    assert state(report, key(SE, "s"))[0] is State.INSTALLED
    assert report.ok


def test_a_backend_that_raises_fails_only_its_batch(w: World) -> None:
    class Exploding(FakeBackend):
        def apply(self, batch: Batch) -> list[Result]:
            raise RuntimeError("boom")

    broken = FakeDriver("slow", [SE], Exploding())
    reconciler = Reconciler(drivers=[w.fast, broken], ledger=w.ledger)
    report = reconciler.reconcile(desired(key(AA, "a"), key(SE, "s")))
    st, _, message = state(report, key(SE, "s"))
    assert st is State.ERROR and "the slow backend failed: RuntimeError('boom')" in message
    assert state(report, key(AA, "a"))[0] is State.INSTALLED
    assert set(w.ledger.load()) == {key(AA, "a")}


def test_per_key_failure_keeps_the_last_good_version(w: World) -> None:
    w.run(desired(key(AA, "a")))
    w.fast.backend.fail["a"] = BackendError("parser said no", code="backend-failed")
    report = w.run(desired(key(AA, "a"), body="v2"))
    st, _, message = state(report, key(AA, "a"))
    assert st is State.ERROR and "parser said no" in message and "stays installed" in message
    assert b'"v1"' in w.fast.backend.installed[key(AA, "a")]


def test_a_kind_without_a_driver_is_an_error_of_its_own(tmp_path: Path) -> None:
    only = FakeDriver("fast", [AA])
    report = Reconciler(drivers=[only], ledger=LedgerStore(tmp_path)).reconcile(
        desired(key(AA, "a"), key(SE, "s")))
    p = next(p for p in report.profiles if p.key == key(SE, "s"))
    assert (p.state, p.error_code) == (State.ERROR, "kind-unsupported")
    assert state(report, key(AA, "a"))[0] is State.INSTALLED


def test_no_change_no_host_call_and_details_on_demand(w: World) -> None:
    w.run(desired(key(AA, "a")))
    report = w.run(desired(key(AA, "a")))
    assert len(w.fast.backend.batches) == 1
    [p] = report.profiles
    assert p.step is Step.UNCHANGED
    assert p.details is not None and p.details.render() == {"body": "v1"}


def test_plan_probes_but_never_applies(w: World) -> None:
    ev = w.reconciler.evaluate(desired(key(AA, "a"), key(SE, "s")), read_only=True)
    report = w.reconciler.preview(ev)
    assert {p.state for p in report.profiles} == {State.PENDING}
    assert w.fast.backend.batches == [] and w.slow.backend.batches == []
    assert w.fast.backend.probes == 1
