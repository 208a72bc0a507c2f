"""SELinux profiles through the real reconciler, driver and ``semodule`` on a private copy of
the host's policy store (see selinux_store.py): a small one shared by the session, where a
transaction costs about 1.3 s, and one full copy (6-7 s a transaction) for the SPO examples.
Transactions are counted."""

from __future__ import annotations

import hashlib
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.backends.base import Availability
from agent.config import SelinuxSection
from agent.model.manifests import load_directory
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import ProfileStatus, Report, State
from agent.selinux.driver import SelinuxDriver
from tests.integration.selinux_store import (
    PRIORITY,
    SMALL_POLICY,
    Store,
    available,
    tree_digest,
)
from tests.support.spo import SPO

pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))

TEMPLATES = {"secprof_container", "secprof_net_container", "secprof_log_container",
             "secprof_log_rw_container"}


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    before = tree_digest()
    store = Store(tmp_path_factory.mktemp("selinux-root"))
    store.copy_from_host(keep=SMALL_POLICY)
    yield store
    assert tree_digest() == before, "the host's SELinux store or policy changed"


@pytest.fixture
def full_store(store: Store, tmp_path: Path) -> Store:
    """A copy of the host's whole store: the templates must build against Debian's full policy.
    (Asks for ``store`` so that the host check at the end of the session covers it too.)"""
    full = Store(tmp_path / "selinux-root")
    full.copy_from_host()
    return full


class Agent:
    """The reconciler with only the SELinux driver, over a profiles dir and a state dir."""

    def __init__(self, store: Store, tmp: Path) -> None:
        self.profiles = tmp / "profiles.d"
        self.profiles.mkdir()
        self.driver = SelinuxDriver.from_config(
            SelinuxSection(store_root=store.root, priority=PRIORITY), scratch_dir=tmp)
        self.reconciler = Reconciler(drivers=[self.driver], ledger=LedgerStore(tmp / "state"))

    def write(self, name: str, text: str) -> None:
        (self.profiles / name).write_text(textwrap.dedent(text).lstrip())

    def reconcile(self, *, check_drift: bool = True) -> Report:
        return self.reconciler.reconcile(load_directory(self.profiles), check_drift=check_drift)

    @property
    def transactions(self) -> int:
        return self.driver.backend.transactions


def doc(kind: str, name: str, spec: str) -> str:
    return (f"apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: {kind}\n"
            f"metadata:\n  name: {name}\nspec:\n" + textwrap.indent(textwrap.dedent(spec), "  "))


def row(report: Report, kind: Kind, name: str) -> ProfileStatus:
    [found] = [p for p in report.profiles if p.key == ProfileKey(kind, name)]
    return found


def status(report: Report, kind: Kind, name: str) -> tuple[State, str]:
    found = row(report, kind, name)
    return found.state, found.message


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


WEB = doc("SelinuxProfile", "web", """\
    inherit:
      - name: net_container
      - name: log_rw_container
    allow:
      "@self": {tcp_socket: [listen]}
      http_port_t: {tcp_socket: [name_bind]}
    """)
CHILD = doc("SelinuxProfile", "web-child", """\
    inherit: [{kind: SelinuxProfile, name: web}]
    allow: {var_log_t: {file: [read, open, getattr]}}
    """)
LOGGER = doc("SelinuxProfile", "logger", """\
    mode: Permissive
    allow: {var_log_t: {dir: [search, open], file: [append, open]}}
    """)
RAW = doc("RawSelinuxProfile", "logger", """\
    policy: |
      (blockinherit container)
      (allow process var_log_t ( dir ( open read search )))
    """)
BAD = doc("SelinuxProfile", "broken", """\
    allow:
      var_log_t: {file: [read]}
      no_such_type_t: {file: [read]}
    """)


def test_install_update_repair_remove(store: Store, tmp_path: Path) -> None:
    agent = Agent(store, tmp_path)
    for name, text in {"web": WEB, "child": CHILD, "logger": LOGGER, "raw": RAW,
                       "bad": BAD}.items():
        agent.write(f"{name}.yaml", text)

    # Install: one transaction fails on the bad module, one more installs all the rest.
    report = agent.reconcile()
    assert agent.transactions == 2
    state, message = status(report, Kind.SELINUX, "broken")
    assert state is State.ERROR
    assert ("module broken line 3 `(allow process no_such_type_t ( file ( read )))` (from "
            "spec.allow.no_such_type_t.file)") in message
    assert all(status(report, k, n)[0] is State.INSTALLED for k, n in [
        (Kind.SELINUX, "web"), (Kind.SELINUX, "web-child"), (Kind.SELINUX, "logger"),
        (Kind.RAW_SELINUX, "logger")])
    ours = store.ours()
    assert set(ours) == {"web", "web-child", "logger", "logger_"} | TEMPLATES | {
        "secprof_config_container", "secprof_home_container", "secprof_tmp_container",
        "secprof_tty_container"}
    assert "broken" not in store.names()
    policy = store.policy()
    for domain in (b"web.process", b"web-child.process", b"logger.process",
                   b"logger_.process"):
        assert domain in policy
    rows = {p.key: p for p in report.profiles}
    assert rows[ProfileKey(Kind.SELINUX, "web")].usage == "web.process"
    assert rows[ProfileKey(Kind.RAW_SELINUX, "logger")].usage == "logger_.process"
    assert ours["logger_"] == rows[ProfileKey(Kind.RAW_SELINUX, "logger")].digest
    assert Kind.SELINUX in report.backends
    assert "policy is not active" in report.backends[Kind.SELINUX].reason
    details = rows[ProfileKey(Kind.SELINUX, "web-child")].details
    assert details is not None
    assert details.render()["inherits"] == ["web"]
    assert details.render()["policyActive"] is False

    # Nothing changed: the drift check lists checksums, and no transaction runs.
    report = agent.reconcile()
    assert agent.transactions == 2
    assert status(report, Kind.SELINUX, "web")[0] is State.INSTALLED

    # Update one, fix the bad one, remove one: one transaction.
    agent.write("logger.yaml", LOGGER.replace("append, open", "append, open, getattr"))
    agent.write("bad.yaml", BAD.replace("no_such_type_t", "tmp_t"))
    (agent.profiles / "raw.yaml").unlink()
    report = agent.reconcile()
    assert agent.transactions == 3
    assert status(report, Kind.SELINUX, "broken")[0] is State.INSTALLED
    assert ProfileKey(Kind.RAW_SELINUX, "logger") in report.removed
    ours = store.ours()
    assert "logger_" not in ours and "broken" in ours
    assert ours["logger"] == row(report, Kind.SELINUX, "logger").digest

    # Drift: someone replaces our module behind our back; the next checked reconcile repairs.
    drift = tmp_path / "web.cil"
    drift.write_text("(block web\n(blockinherit container)\n)\n")
    assert store.semodule("-n", "-X", str(PRIORITY), "-i", str(drift)).returncode == 0
    assert store.ours()["web"] == sha(drift.read_bytes())
    report = agent.reconcile(check_drift=False)  # trusts the ledger: nothing to do
    assert agent.transactions == 3
    report = agent.reconcile()
    assert agent.transactions == 4
    assert store.ours()["web"] == row(report, Kind.SELINUX, "web").digest

    # Everything removed: the profiles and the templates go in one transaction.
    for path in agent.profiles.iterdir():
        path.unlink()
    report = agent.reconcile()
    assert agent.transactions == 5
    assert store.ours() == {}
    assert len(report.removed) == 4


def test_names_of_other_priorities_are_refused(store: Store, tmp_path: Path) -> None:
    agent = Agent(store, tmp_path)
    agent.write("apache.yaml", doc("SelinuxProfile", "apache", "allow: {}\n"))
    report = agent.reconcile()
    state, message = status(report, Kind.SELINUX, "apache")
    assert state is State.ERROR
    assert "already exists at priority 100" in message
    assert agent.transactions == 0
    assert "apache" not in store.ours()


def test_probe_of_the_private_store(store: Store, tmp_path: Path) -> None:
    agent = Agent(store, tmp_path)
    probe = agent.driver.backend.probe()
    assert probe.availability is Availability.INSTALLED
    assert "private policy store" in probe.reason
    off = SelinuxDriver.from_config(SelinuxSection(store_root=store.root, mode="off"))
    assert off.backend.probe().availability is Availability.UNAVAILABLE
    empty = SelinuxDriver.from_config(SelinuxSection(store_root=tmp_path, mode="on"))
    assert empty.backend.probe().availability is Availability.UNAVAILABLE


@pytest.mark.skipif(SPO is None, reason="SPO reference data (../shared/spo) not here")
def test_spo_example_manifests_on_the_full_policy(full_store: Store, tmp_path: Path) -> None:
    assert SPO is not None
    agent = Agent(full_store, tmp_path)
    for name in ("selinuxprofile.yaml", "rawselinuxprofile.yaml"):
        shutil.copy(SPO / "examples" / name, agent.profiles / name)
    report = agent.reconcile()
    assert status(report, Kind.SELINUX, "errorlogger")[0] is State.INSTALLED
    assert status(report, Kind.RAW_SELINUX, "errorlogger")[0] is State.INSTALLED
    assert {"errorlogger", "errorlogger_"} | TEMPLATES <= set(full_store.ours())
    policy = full_store.policy()
    assert b"errorlogger.process" in policy
    assert b"sshd_t" in policy  # the whole policy: ssh is not in the small one
    assert agent.transactions == 1
