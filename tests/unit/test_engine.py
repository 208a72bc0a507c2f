"""The daemon's engine (load, reconcile, log, count) over the in-memory FakeDriver: what the
daemon does with reports, not what a backend does (each backend is tested for real)."""

from __future__ import annotations

from pathlib import Path

from agent.backends.base import Availability, Probe
from agent.backends.fake import FakeBackend, FakeDriver
from agent.config import AgentSection, Config
from agent.daemon.engine import Engine
from agent.errors import BackendError
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.seccomp.build import BuildCache
from tests.conftest import seccomp_doc


class Factory:
    """Builds reconcilers over one shared fake backend, recording each ``network`` flag."""

    def __init__(self, state: Path) -> None:
        self.backend = FakeBackend()
        self.state = state
        self.network: list[bool] = []

    def __call__(self, config: Config, *, network: bool, build_cache: BuildCache) -> Reconciler:
        self.network.append(network)
        return Reconciler(drivers=[FakeDriver("fake", [Kind.SECCOMP], self.backend)],
                          ledger=LedgerStore(self.state), clock=lambda: 100.0)


def setup(tmp_path: Path) -> tuple[Engine, Factory, Path]:
    profiles = tmp_path / "profiles.d"
    profiles.mkdir()
    factory = Factory(tmp_path / "state")
    config = Config(agent=AgentSection(profiles_dir=profiles, state_dir=tmp_path / "state"))
    return Engine(config, clock=lambda: 200.0, reconcilers=factory), factory, profiles


def test_boot_is_offline_then_every_run_is_online(tmp_path: Path) -> None:
    engine, factory, profiles = setup(tmp_path)
    (profiles / "a.yaml").write_text(seccomp_doc("a", "defaultAction: SCMP_ACT_ERRNO"))
    assert factory.network == [False, True]  # both built up front
    first = engine.reconcile()
    assert first.report.ok and ProfileKey(Kind.SECCOMP, "a") in factory.backend.installed
    assert first.backends[Kind.SECCOMP].availability is Availability.INSTALLED
    assert engine.reconcile().metrics.reconciles == 2
    assert len(factory.backend.batches) == 1  # the second run changed nothing


def test_errors_and_drift_repairs_are_counted(tmp_path: Path) -> None:
    engine, factory, profiles = setup(tmp_path)
    (profiles / "a.yaml").write_text(seccomp_doc("a", "defaultAction: SCMP_ACT_ERRNO"))
    (profiles / "b.yaml").write_text(seccomp_doc("b", "defaultAction: SCMP_ACT_ERRNO"))
    factory.backend.fail["b"] = BackendError("no", code="write-failed")
    result = engine.reconcile()
    assert result.metrics.errors_by_code == {"write-failed": 1}
    assert result.metrics.last_success_at is None
    factory.backend.installed[ProfileKey(Kind.SECCOMP, "a")] = b"edited by someone"
    assert engine.reconcile(full=False).metrics.drift_repairs == 0  # trusts the ledger
    result = engine.reconcile(full=True)
    assert result.metrics.drift_repairs == 1
    assert result.metrics.errors_by_code == {"write-failed": 3}


def test_an_unavailable_backend_is_reported_not_raised(tmp_path: Path) -> None:
    engine, factory, profiles = setup(tmp_path)
    factory.backend.probe_result = Probe(availability=Availability.UNAVAILABLE, reason="nope")
    (profiles / "a.yaml").write_text(seccomp_doc("a", "defaultAction: SCMP_ACT_ERRNO"))
    result = engine.reconcile()
    assert result.backends[Kind.SECCOMP].reason == "nope"
    assert result.metrics.errors_by_code == {"backend-unavailable": 1}
