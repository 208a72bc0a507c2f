"""Reconciling against the real seccomp backend on a tmp root, observed through a counting seam."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from agent.backends.base import Batch, Probe, Result
from agent.backends.seccomp import SeccompBackend
from agent.errors import BackendError
from agent.model.manifests import load_directory
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.plan import Step
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import Report, State
from agent.seccomp.driver import SeccompDriver
from tests.conftest import seccomp_doc


class Counting:
    """The real backend, with every host call counted (and optionally some installs failing)."""

    def __init__(self, real: SeccompBackend) -> None:
        self.real = real
        self.batches: list[Batch] = []
        self.fail: set[str] = set()

    def probe(self) -> Probe:
        return self.real.probe()

    def location(self, key: ProfileKey) -> str:
        return self.real.location(key)

    def relative(self, key: ProfileKey) -> str:
        return self.real.relative(key)

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        return self.real.actual(keys)

    def apply(self, batch: Batch) -> list[Result]:
        self.batches.append(batch)
        failing = [i for i in batch.installs if i.key.name in self.fail]
        ok = Batch(installs=tuple(i for i in batch.installs if i not in failing),
                   removals=batch.removals)
        return self.real.apply(ok) + [
            Result(key=i.key, error=BackendError("disk on fire", code="write-failed"))
            for i in failing
        ]


def key(name: str) -> ProfileKey:
    return ProfileKey(Kind.SECCOMP, name)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.profiles = tmp_path / "profiles.d"
        self.profiles.mkdir()
        self.out = tmp_path / "seccomp" / "secprof"
        self.backend = Counting(SeccompBackend(tmp_path / "seccomp", "secprof"))
        self.clock = iter(float(i) for i in range(1000))
        self.reconciler = Reconciler(drivers=[SeccompDriver(self.backend, max_depth=15)],
                                     ledger=LedgerStore(tmp_path / "state"),
                                     clock=lambda: next(self.clock))

    def write(self, name: str, body: str = "read", base: str | None = None) -> None:
        text = f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {{names: [{body}], " \
               "action: SCMP_ACT_ALLOW}\n"
        if base:
            text = f"baseProfileName: {base}\n" + text
        (self.profiles / f"{name}.yaml").write_text(seccomp_doc(name, text))

    def run(self) -> Report:
        return self.reconciler.reconcile(load_directory(self.profiles))

    def state(self, report: Report, name: str) -> State:
        return next(p.state for p in report.profiles if p.key == key(name))


@pytest.fixture
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_second_reconcile_makes_no_host_call(s: Setup) -> None:
    s.write("base")
    s.write("app", "write", base="base")
    first = s.run()
    assert first.ok and first.files_written == 2
    assert len(s.backend.batches) == 1
    second = s.run()
    assert len(s.backend.batches) == 1  # no apply call at all
    assert second.files_written == 0
    assert {p.step for p in second.profiles} == {Step.UNCHANGED}


def test_base_change_updates_every_child(s: Setup) -> None:
    s.write("base")
    s.write("a", "write", base="base")
    s.write("b", "close", base="base")
    s.run()
    s.write("base", "openat")
    report = s.run()
    assert sorted(i.key.name for i in s.backend.batches[-1].installs) == ["a", "b", "base"]
    assert b'"openat"' in (s.out / "a.json").read_bytes()
    assert report.ok


def test_broken_manifest_keeps_the_last_good_file(s: Setup) -> None:
    s.write("app")
    s.run()
    good = (s.out / "app.json").read_bytes()
    (s.profiles / "app.yaml").write_text(seccomp_doc("app", "defaultAction: SCMP_ACT_ALOW"))
    report = s.run()
    assert (s.out / "app.json").read_bytes() == good
    status = report.profiles[0]
    assert status.state is State.ERROR and status.step is Step.HOLD
    assert "the last good version (sha256:" in status.message
    assert status.source == "profiles.d/app.yaml[0]"
    assert not report.ok


def test_unreadable_file_holds_what_it_installed(s: Setup) -> None:
    s.write("app")
    s.run()
    (s.profiles / "app.yaml").write_text("apiVersion: [unclosed\n")
    report = s.run()
    assert (s.out / "app.json").exists()
    assert report.profiles[0].step is Step.HOLD
    assert "its manifest file cannot be read" in report.profiles[0].message


def test_removed_manifest_removes_the_file(s: Setup) -> None:
    s.write("app")
    s.write("other")
    s.run()
    (s.profiles / "app.yaml").unlink()
    report = s.run()
    assert not (s.out / "app.json").exists()
    assert (s.out / "other.json").exists()
    assert report.removed == (key("app"),)


def test_files_not_in_the_ledger_are_never_removed(s: Setup) -> None:
    s.out.mkdir(parents=True)
    (s.out / "foreign.json").write_text("{}")
    s.write("app")
    s.run()
    (s.profiles / "app.yaml").unlink()
    s.run()
    assert (s.out / "foreign.json").read_text() == "{}"


def test_drift_is_repaired(s: Setup) -> None:
    s.write("app")
    s.run()
    good = (s.out / "app.json").read_bytes()
    (s.out / "app.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    report = s.run()
    assert report.profiles[0].step is Step.REPAIR
    assert (s.out / "app.json").read_bytes() == good
    (s.out / "app.json").unlink()
    assert s.run().profiles[0].step is Step.REPAIR
    assert (s.out / "app.json").read_bytes() == good


def test_failed_install_keeps_last_good_and_retries_next_time(s: Setup) -> None:
    s.write("app")
    s.run()
    good = (s.out / "app.json").read_bytes()
    s.write("app", "write")
    s.backend.fail = {"app"}
    report = s.run()
    assert s.state(report, "app") is State.ERROR
    assert "disk on fire" in report.profiles[0].message
    assert (s.out / "app.json").read_bytes() == good
    s.backend.fail = set()
    assert s.run().profiles[0].step is Step.UPDATE  # the ledger still holds the old digest
    assert b'"write"' in (s.out / "app.json").read_bytes()


def test_resolution_error_holds_child_and_reports_chain(s: Setup) -> None:
    s.write("app", base="base")
    s.write("base")
    s.run()
    (s.profiles / "base.yaml").unlink()
    report = s.run()
    status = next(p for p in report.profiles if p.key == key("app"))
    assert status.state is State.ERROR and status.step is Step.HOLD
    assert status.error_code == "base-not-found"
    assert (s.out / "app.json").exists()
    assert report.removed == (key("base"),)


def test_disabled_profile_is_removed_but_stays_usable_as_base(s: Setup) -> None:
    s.write("base")
    s.write("app", "write", base="base")
    s.run()
    (s.profiles / "base.yaml").write_text(seccomp_doc(
        "base", "disabled: true\ndefaultAction: SCMP_ACT_ERRNO\n"
        "syscalls:\n  - {names: [read], action: SCMP_ACT_ALLOW}"))
    report = s.run()
    assert s.state(report, "base") is State.DISABLED
    assert not (s.out / "base.json").exists()
    assert s.state(report, "app") is State.INSTALLED


def test_preview_changes_nothing(s: Setup, tmp_path: Path) -> None:
    s.write("app")
    ev = s.reconciler.evaluate(load_directory(s.profiles), read_only=True)
    report = s.reconciler.preview(ev)
    assert report.profiles[0].state is State.PENDING and report.profiles[0].step is Step.ADD
    assert s.backend.batches == []
    assert not (tmp_path / "state").exists()
