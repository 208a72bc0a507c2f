"""AppArmorProfiles from a desired-state directory through the reconciler, the driver and the
real ``apparmor_parser``: compile-only as ``auto`` gives here, and load/remove against the fake
securityfs of :mod:`tests.support.apparmor_kernel` (this kernel has no AppArmor).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from agent.apparmor.driver import AppArmorDriver
from agent.backends.apparmor import AppArmorBackend, AppArmorSettings, Mode
from agent.backends.runner import SubprocessRunner
from agent.model.manifests import load_directory
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import Report, State
from tests.conftest import Host
from tests.integration.daemon_support import api, running, wait_for
from tests.support.apparmor_kernel import FEATURES, make_parser, make_securityfs
from tests.support.counting import CountingRunner

pytestmark = pytest.mark.skipif(shutil.which("apparmor_parser") is None,
                                reason="apparmor_parser is not installed")
_REPO = Path(__file__).resolve().parents[2]
SPO = next((p for p in (_REPO.parent / "shared" / "spo", Path("/work/shared/spo")) if p.is_dir()),
           None)


def doc(name: str, spec: str) -> str:
    return (f"apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: AppArmorProfile\n"
            f"metadata:\n  name: {name}\nspec:\n{textwrap.indent(textwrap.dedent(spec), '  ')}")


class World:
    def __init__(self, root: Path, *, mode: Mode) -> None:
        self.desired = root / "profiles.d"
        self.desired.mkdir(parents=True)
        self.proc = root / "proc"
        self.proc.mkdir()
        self.fs = make_securityfs(root)
        self.runner = CountingRunner(SubprocessRunner())
        self.settings = AppArmorSettings(
            mode=mode, profiles_dir=root / "apparmor.d", securityfs=self.fs,
            kernel_features=FEATURES if FEATURES.exists() else None, state_dir=root / "state/aa",
            cache_dir=root / "cache", proc_root=self.proc,
            enabled_file=root / "no-such-file",
            parser=str(make_parser(root)) if mode is Mode.LOAD else "apparmor_parser",
        )
        self.reconciler = Reconciler(
            drivers=[AppArmorDriver(AppArmorBackend(self.settings, self.runner))],
            ledger=LedgerStore(root / "state"),
        )

    def write(self, file: str, *docs: str) -> None:
        (self.desired / file).write_text("---\n".join(docs))

    def run(self, *, check_drift: bool = True) -> Report:
        return self.reconciler.reconcile(load_directory(self.desired), check_drift=check_drift)


def states(report: Report) -> dict[str, tuple[str, str]]:
    return {p.key.name: (p.state.value, p.message) for p in report.profiles}


def test_auto_validates_here_and_says_why(tmp_path: Path) -> None:
    world = World(tmp_path, mode=Mode.AUTO)
    world.write("a.yaml", doc("web", "abstract:\n  filesystem:\n    readOnlyPaths: [/etc/x]\n"),
                doc("raw", "policy: |\n  profile raw {\n    file,\n  }\n"))
    report = world.run()
    (web, raw) = sorted(report.profiles, key=lambda p: p.key.name, reverse=True)
    assert web.state is State.VALIDATED and raw.state is State.VALIDATED
    assert "the kernel has no AppArmor" in web.message and "not loaded" in web.message
    assert web.usage == "localhost/web"
    assert web.location == str(tmp_path / "apparmor.d/secprof.web")
    assert web.details is not None
    details = web.details.render()
    assert details["mode"] == "Enforce" and details["form"] == "abstract"
    assert details["policy"] == (tmp_path / "apparmor.d/secprof.web").read_text()
    assert [c[1] for c in world.runner.calls] == ["-N", "-Q"]  # raw names, then one compile
    world.run()
    assert len(world.runner.calls) == 2  # a resync with nothing changed runs no parser


def test_bad_documents_never_block_the_others(tmp_path: Path) -> None:
    world = World(tmp_path, mode=Mode.COMPILE_ONLY)
    world.write("a.yaml",
                doc("ok", "abstract: {}\n"),
                doc("caps", "abstract:\n  capability:\n"
                    "    allowedCapabilities: [chown, NET_RAW]\n"),
                doc("typo", "abstract:\n  capabilty: {}\n"),
                doc("other", "policy: |\n  profile not-other {\n  }\n"))
    got = states(world.run())
    assert got["ok"][0] == "Validated"
    assert got["caps"] == ("Error", "profiles.d/a.yaml[1] "
                           "spec.abstract.capability.allowedCapabilities[1] "
                           "(line 19 of the rendered profile): Invalid capability NET_RAW.")
    assert got["typo"][0] == "Error" and "spec.abstract.capabilty" in got["typo"][1]
    assert got["other"][0] == "Error" and "declares not-other" in got["other"][1]


def test_load_drift_repair_and_in_use_removal(tmp_path: Path) -> None:
    world = World(tmp_path, mode=Mode.LOAD)
    world.write("a.yaml", doc("web", "mode: Complain\nabstract: {}\n"), doc("db", "abstract: {}\n"))
    assert {p.state for p in world.run().profiles} == {State.INSTALLED}
    assert (world.fs / "profiles").read_text() == "db (enforce)\nweb (complain)\n"
    calls = len(world.runner.calls)
    assert {p.state for p in world.run().profiles} == {State.INSTALLED}
    assert len(world.runner.calls) == calls  # nothing changed: no parser call

    (world.fs / "profiles").write_text("db (enforce)\n")  # someone unloaded web
    report = world.run()
    assert [p.step.value for p in report.profiles if p.key.name == "web"] == ["repair"]
    assert "web (complain)" in (world.fs / "profiles").read_text()

    (world.proc / "31337/attr/apparmor").mkdir(parents=True)
    (world.proc / "31337/attr/apparmor/current").write_text("web (complain)\n")
    world.write("a.yaml", doc("db", "abstract: {}\n"))
    web = {p.key.name: p for p in world.run().profiles}["web"]
    assert web.state is State.REMOVING and "PIDs 31337" in web.message
    assert "web (complain)" in (world.fs / "profiles").read_text()
    shutil.rmtree(world.proc / "31337")
    report = world.run()
    assert report.removed == (ProfileKey(Kind.APPARMOR, "web"),)
    assert (world.fs / "profiles").read_text() == "db (enforce)\n"
    assert not (tmp_path / "apparmor.d/secprof.web").exists()


@pytest.mark.skipif(SPO is None, reason="../shared/spo is not here")
def test_spo_examples_compile(tmp_path: Path) -> None:
    """SPO's example AppArmorProfiles (and its own deployment profiles) compile as rendered,
    in one parser call."""
    assert SPO is not None
    world = World(tmp_path, mode=Mode.COMPILE_ONLY)
    names = []
    for i, example in enumerate(sorted((SPO / "examples").glob("apparmorprofile*.yaml"))):
        text = example.read_text().replace("name: test-recording-test-pod", f"name: rec-{i}")
        (world.desired / example.name).write_text(text)
        names += [ln.split(":", 1)[1].strip() for ln in text.splitlines()
                  if ln.startswith("  name:")]
    report = world.run()
    assert {p.key.name: p.state for p in report.profiles} == dict.fromkeys(names, State.VALIDATED)
    assert len(world.runner.calls) == 1


def test_secprof_apply_and_status_json(host: Host) -> None:
    """The CLI as an operator runs it, on this host's config (auto: compile-only here)."""
    host.write("aa.yaml", doc("web", "abstract:\n  network:\n    allowRaw: true\n"))
    proc = host.cli("apply")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = host.root / "etc/apparmor.d/secprof.web"
    assert "Validated" in proc.stdout and str(installed) in proc.stdout
    assert "  network raw,\n" in installed.read_text()
    proc = host.cli("plan", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (web,) = [p for p in json.loads(proc.stdout)["profiles"] if p["name"] == "web"]
    assert web["kind"] == "AppArmorProfile" and web["usage"] == "localhost/web"


def test_the_daemon_reports_apparmor_through_its_api(host: Host) -> None:
    """The real daemon process and socket: AppArmor is compile-only here, and says why."""
    host.write("aa.yaml", doc("web", "mode: Complain\nabstract:\n  filesystem:\n"
                                     "    readOnlyPaths: [/etc/web]\n"))
    with running(host):
        path = "/v1/profiles/AppArmorProfile/web"
        wait_for(lambda: api(host, "GET", path)[0] == 200, what="the profile's status")
        profile = api(host, "GET", path)[1]["profile"]
        assert profile["state"] == "Validated"
        assert "not loaded ([apparmor] mode = auto)" in profile["message"]
        assert profile["mode"] == "Complain" and profile["form"] == "abstract"
        assert "profile web flags=(complain," in profile["policy"]
        backends = {b["kind"]: b for b in api(host, "GET", "/v1/status")[1]["backends"]}
        assert backends["AppArmorProfile"]["availability"] == "compile-only"
    assert (host.root / "etc/apparmor.d/secprof.web").read_text() == profile["policy"]
