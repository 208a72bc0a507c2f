"""Ownership that survives crashes, lost ledgers and full state dirs: the real reconciler, the real
seccomp backend and the real ledger files in a tmp dir. A "crash" is a BaseException raised at a
point inside the run (the crash hook): nothing after it runs, as after a kill; the next run is a
new reconciler over the same directories, as after a restart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.backends.base import Batch, Result
from agent.backends.seccomp import SeccompBackend
from agent.model.manifests import load_directory
from agent.model.options import LoadOptions
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import Report, State
from agent.seccomp.driver import SeccompDriver
from tests.conftest import seccomp_doc


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


class DiesAfterWriting(SeccompBackend):
    """The real backend; the process "dies" right after the files are written, before the
    reconciler saves its ledger."""

    def apply(self, batch: Batch) -> list[Result]:
        super().apply(batch)
        raise Killed


class Host:
    def __init__(self, tmp_path: Path) -> None:
        self.profiles = tmp_path / "profiles.d"
        self.profiles.mkdir(exist_ok=True)
        self.root = tmp_path / "seccomp"
        self.out = self.root / "secprof"
        self.state = tmp_path / "state"

    def reconciler(self, backend_type: type[SeccompBackend] = SeccompBackend) -> Reconciler:
        backend = backend_type(self.root, "secprof")
        return Reconciler(drivers=[SeccompDriver(backend, max_depth=15)],
                          ledger=LedgerStore(self.state))

    def write(self, name: str, body: str = "read") -> None:
        text = f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {{names: [{body}], " \
               "action: SCMP_ACT_ALLOW}\n"
        (self.profiles / f"{name}.yaml").write_text(seccomp_doc(name, text))

    def run(self, backend_type: type[SeccompBackend] = SeccompBackend) -> Report:
        return self.reconciler(backend_type).reconcile(load_directory(self.profiles))

    def files(self) -> list[str]:
        return sorted(os.listdir(self.out))


def states(report: Report) -> dict[str, State]:
    return {p.key.name: p.state for p in report.profiles}


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def test_a_kill_between_writing_and_saving_the_ledger_loses_no_ownership(host: Host) -> None:
    host.write("keep")
    host.run()
    host.write("orphan")
    with pytest.raises(Killed):
        host.run(DiesAfterWriting)
    assert host.files() == ["keep.json", "orphan.json"]  # written, but not in the ledger
    assert (host.state / "intent.json").exists()

    (host.profiles / "orphan.yaml").unlink()  # no longer desired: it must go
    report = host.run()

    assert host.files() == ["keep.json"]
    assert [k.name for k in report.removed] == ["orphan"]
    assert not (host.state / "intent.json").exists()


def test_an_interrupted_update_is_rewritten_when_still_desired(host: Host) -> None:
    host.write("web", "read")
    host.run()
    host.write("web", "write")
    with pytest.raises(Killed):
        host.run(DiesAfterWriting)
    host.write("web", "read")  # reverted before the restart: the old digest is desired again
    report = host.reconciler().reconcile(load_directory(host.profiles), check_drift=False)
    assert states(report) == {"web": State.INSTALLED}
    assert b'"read"' in (host.out / "web.json").read_bytes()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_corrupt_ledger_is_rebuilt_from_secprofs_own_directory(host: Host,
                                                                  damage: str) -> None:
    for name in ("a", "b", "gone"):
        host.write(name)
    host.run()
    # Someone else's profile next to secprof's directory: never adopted, never removed.
    (host.root / "foreign.json").write_text("{}")
    ledger = host.state / "ledger.json"
    data = ledger.read_bytes()
    ledger.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\xff{[",
                        "empty": b""}[damage])
    (host.profiles / "gone.yaml").unlink()

    report = host.run()

    assert states(report) == {"a": State.INSTALLED, "b": State.INSTALLED}
    assert [k.name for k in report.removed] == ["gone"]
    assert host.files() == ["a.json", "b.json"]
    assert (host.root / "foreign.json").exists()
    assert any(p.name.startswith("ledger.json.corrupt-") for p in host.state.iterdir())
    assert sorted(k.name for k in LedgerStore(host.state).load()) == ["a", "b"]


def test_a_corrupt_ledger_is_rebuilt_with_spo_v08s_namespaced_layout(host: Host) -> None:
    """`<subdir>/<namespace>/<name>.json`: the namespace directories are listed as well, and
    temp files killed runs left in them are removed."""
    def doc(namespace: str, name: str) -> str:
        return seccomp_doc(name, "defaultAction: SCMP_ACT_LOG").replace(
            "metadata:\n", f"metadata:\n  namespace: {namespace}\n")

    def run() -> Report:
        desired = load_directory(host.profiles, options=LoadOptions(namespaced=True))
        return host.reconciler().reconcile(desired)

    for namespace, name in (("team-a", "web"), ("team-a", "gone"), ("team-b", "web")):
        (host.profiles / f"{namespace}-{name}.yaml").write_text(doc(namespace, name))
    run()
    (host.state / "ledger.json").write_bytes(b"\x00")
    (host.profiles / "team-a-gone.yaml").unlink()
    temp = host.out / "team-b" / ".web.json.0123456789ab.secprof-tmp"
    temp.write_text("{")
    (host.out / "team-c").symlink_to(host.root)  # never followed: not a namespace of ours

    report = run()

    assert states(report) == {"team-a/web": State.INSTALLED, "team-b/web": State.INSTALLED}
    assert [k.name for k in report.removed] == ["team-a/gone"]
    assert sorted(os.listdir(host.out / "team-a")) == ["web.json"]
    assert not temp.exists()
    assert sorted(k.name for k in LedgerStore(host.state).load()) == ["team-a/web", "team-b/web"]


def test_temp_files_of_killed_runs_are_removed_from_the_state_dir(host: Host) -> None:
    host.write("a")
    host.run()
    (host.state / ".ledger.json.0123456789ab.secprof-tmp").write_text("{")
    (host.state / "notes.txt").write_text("not ours")
    host.run()
    assert sorted(os.listdir(host.state)) == ["ledger.json", "notes.txt"]


class CountingBackend(SeccompBackend):
    calls = 0

    def apply(self, batch: Batch) -> list[Result]:
        CountingBackend.calls += 1
        return super().apply(batch)


def test_an_unwritable_state_dir_writes_nothing_and_says_so(host: Host) -> None:
    host.write("a")
    host.state.parent.mkdir(parents=True, exist_ok=True)
    host.state.write_text("a file where the state directory goes")

    report = host.run(CountingBackend)

    (status,) = report.profiles
    assert status.state is State.ERROR
    assert status.error_code == "state-unwritable"
    assert CountingBackend.calls == 0  # nothing written that could not be recorded
    assert not host.out.exists() or host.files() == []



def test_a_symlinked_state_dir_is_refused_and_its_target_untouched(host: Host,
                                                                    tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    host.state.symlink_to(elsewhere)
    host.write("a")

    report = host.run()

    assert [p.error_code for p in report.profiles] == ["state-unwritable"]
    assert os.listdir(elsewhere) == []
    assert not host.out.exists() or host.files() == []


def test_a_symlinked_oci_cache_dir_is_refused(tmp_path: Path) -> None:
    from agent.errors import ResolveError  # noqa: PLC0415 - only this test needs the OCI side
    from agent.oci.cache import OciCache  # noqa: PLC0415

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "oci").symlink_to(elsewhere)
    cache = OciCache(tmp_path / "oci", max_entries=10, max_bytes=1 << 20, clock=lambda: 0.0)
    with pytest.raises(ResolveError) as exc:
        cache.content("sha256:" + "0" * 64)
    assert exc.value.code == "cache-unavailable"
    assert os.listdir(elsewhere) == []


def test_fifos_planted_in_the_state_dir_do_not_hang_a_run(host: Host) -> None:
    from agent.model.parsecache import CACHE_FILE, ParseCache  # noqa: PLC0415

    host.write("a")
    host.state.mkdir()
    os.mkfifo(host.state / "ledger.json")
    os.mkfifo(host.state / CACHE_FILE)
    ParseCache(host.state)  # reads its file: refused without blocking, treated as empty
    report = host.run()
    assert [p.state for p in report.profiles] == [State.INSTALLED]


def test_a_new_intent_keeps_the_keys_of_one_still_pending(tmp_path: Path) -> None:
    from agent.reconcile.ledger import Entry  # noqa: PLC0415

    store = LedgerStore(tmp_path / "state")

    def entry(name: str) -> Entry:
        return Entry(key=ProfileKey(Kind.SECCOMP, name), digest="sha256:x", location=name,
                     source="f.yaml", installed_at=1.0)

    store.intend([entry("a")])  # its run died before the ledger was saved
    store.intend([entry("b")])
    assert sorted(e.key.name for e in store.pending()) == ["a", "b"]
    store.done()
    assert store.pending() == []
