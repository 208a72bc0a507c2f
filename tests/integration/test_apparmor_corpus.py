"""A real corpus: every profile Debian's ``apparmor`` and ``apparmor-profiles`` packages install
(``/etc/apparmor.d``, ``/usr/share/apparmor/extra-profiles``) goes through the raw path: a raw
AppArmorProfile manifest, the loader, the driver and the backend's one compile call.

secprof names are Kubernetes names, so a profile declared by path (``/usr/sbin/x {`` or
``profile /usr/sbin/x {``) gets a name in front of its path (``profile usr.sbin.x /usr/sbin/x
{``: the same attachment). Files the 3.0.8 parser itself rejects, run as installed, are left out
and counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.apparmor.driver import AppArmorDriver
from agent.backends import apparmor_parser as ap
from agent.backends.apparmor import AppArmorBackend, AppArmorSettings, Mode
from agent.backends.runner import SubprocessRunner
from agent.model.manifests import load_directory
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import State
from tests.support.counting import CountingRunner

_DIRS = (Path("/etc/apparmor.d"), Path("/usr/share/apparmor/extra-profiles"))


def _corpus() -> list[Path]:
    if shutil.which("dpkg") is None or shutil.which("apparmor_parser") is None:
        return []
    listed = subprocess.run(["dpkg", "-L", "apparmor", "apparmor-profiles"],
                            capture_output=True, text=True, check=False).stdout.split("\n")
    return sorted(Path(p) for p in listed
                  if Path(p).parent in _DIRS and Path(p).is_file() and Path(p).name != "README")


CORPUS = _corpus()


def _named(text: str, declared: str, name: str) -> str:
    """The policy with its profile called ``name`` (attached to its path when it had one)."""
    if declared == name:
        return text
    if declared.startswith(("/", "@{")):  # a path: it stays, as the attachment
        head = re.compile(rf"^(\s*)(?:profile\s+)?{re.escape(declared)}(?=[\s{{])", re.M)
        renamed, count = head.subn(rf"\1profile {name} {declared}", text, count=1)
    else:
        head = re.compile(rf"^(\s*)profile\s+{re.escape(declared)}(?=[\s{{])", re.M)
        renamed, count = head.subn(rf"\1profile {name}", text, count=1)
    assert count == 1, declared
    return renamed


@pytest.mark.skipif(len(CORPUS) < 50, reason="Debian's apparmor and apparmor-profiles are "
                    "not installed")
def test_debian_profiles_compile_through_the_raw_path(tmp_path: Path) -> None:
    desired = tmp_path / "profiles.d"
    desired.mkdir()
    origin: dict[str, Path] = {}
    for path in CORPUS:
        names = ap.top_names(subprocess.run(["apparmor_parser", "-N", str(path)],
                                            capture_output=True, text=True, check=False).stdout)
        assert len(names) == 1, path
        name = path.name.lower().replace("_", "-")
        policy = _named(path.read_text(), names[0], name)
        body = "\n".join("    " + line for line in policy.splitlines())
        (desired / f"{name}.yaml").write_text(
            "apiVersion: security-profiles-operator.x-k8s.io/v1alpha1\nkind: AppArmorProfile\n"
            f"metadata:\n  name: {name}\nspec:\n  policy: |\n{body}\n")
        origin[name] = path

    runner = CountingRunner(SubprocessRunner())
    settings = AppArmorSettings(mode=Mode.COMPILE_ONLY, profiles_dir=tmp_path / "apparmor.d",
                                securityfs=tmp_path / "none", state_dir=tmp_path / "state/aa",
                                cache_dir=tmp_path / "cache", proc_root=tmp_path)
    reconciler = Reconciler(drivers=[AppArmorDriver(AppArmorBackend(settings, runner))],
                            ledger=LedgerStore(tmp_path / "state"))
    report = reconciler.reconcile(load_directory(desired))
    failed = {p.key.name: p.message for p in report.profiles if p.state is not State.VALIDATED}
    # A failure counts as the parser's own only when the file as installed fails as well.
    rejected = {name for name in failed if subprocess.run(
        ["apparmor_parser", "-Q", "-K", str(origin[name])], capture_output=True,
        check=False).returncode != 0}
    print(f"{len(CORPUS)} Debian profiles; {len(rejected)} rejected by apparmor_parser 3.0.8 "
          f"itself: {sorted(rejected)}")
    assert {n: m for n, m in failed.items() if n not in rejected} == {}
    assert len(report.profiles) == len(CORPUS) > 100 and len(rejected) <= len(CORPUS) // 10
    assert [c[1] for c in runner.calls][:2] == ["-N", "-Q"]  # names, then one compile for all
