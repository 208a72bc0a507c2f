"""Benchmark: SELinux modules in one semodule transaction (secprof) vs one per module
(selinuxd's way), on a private copy of the host's policy store, in the same run.

Cases, in order:
  install   N new SelinuxProfiles (and the shipped templates) in one reconcile
  no-change the same desired state again, drift check included: no semodule write call
  update    the N profiles all changed, in one reconcile
  per-module N changed modules, one `semodule -i` each (selinuxd's fork backend, priority 350)
Reported: semodule write calls, read calls, wall time; the ratio per-module / update.

    .venv/bin/python bench/selinux_bench.py [--modules N] [--keep DIR]

Needs semodule and /var/lib/selinux/default (scripts/setup.sh --test). Never touches the host
store: every call passes -p ROOT on the copy (and never -S).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from agent.backends.runner import RunResult, SubprocessRunner
from agent.config import SelinuxSection
from agent.model.manifests import load_directory
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.selinux.driver import SelinuxDriver

HOST_STORE = Path("/var/lib/selinux/default")


class CountingRunner:
    """The real runner, counting semodule calls that write (-i/-r) and that only read."""

    def __init__(self) -> None:
        self._inner = SubprocessRunner()
        self.writes = 0
        self.reads = 0

    def run(self, argv: Sequence[str], *, timeout_s: float) -> RunResult:
        if argv and Path(argv[0]).name == "semodule":
            if "-i" in argv or "-r" in argv:
                self.writes += 1
            else:
                self.reads += 1
        return self._inner.run(argv, timeout_s=timeout_s)


def manifest(name: str, perms: str) -> str:
    return (f"apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SelinuxProfile\n"
            f"metadata:\n  name: {name}\nspec:\n  inherit: [{{name: net_container}}]\n"
            f"  allow:\n    var_log_t: {{file: [{perms}]}}\n"
            f"    \"@self\": {{tcp_socket: [listen]}}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it")
    args = parser.parse_args()
    if shutil.which("semodule") is None or not HOST_STORE.is_dir():
        sys.exit("needs semodule and /var/lib/selinux/default (scripts/setup.sh --test)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="selinux-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args.modules)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, n: int) -> None:
    root = work / "root"
    (root / "var/lib/selinux").mkdir(parents=True)
    shutil.copytree(HOST_STORE, root / "var/lib/selinux/default", symlinks=True)
    profiles = work / "profiles.d"
    profiles.mkdir()
    runner = CountingRunner()
    driver = SelinuxDriver.from_config(SelinuxSection(store_root=root, priority=370),
                                       scratch_dir=work, runner=runner)
    reconciler = Reconciler(drivers=[driver], ledger=LedgerStore(work / "state"))
    rows: list[tuple[str, int, int, float]] = []

    def reconcile(case: str) -> float:
        writes, reads = runner.writes, runner.reads
        start = time.monotonic()
        report = reconciler.reconcile(load_directory(profiles), check_drift=True)
        wall = time.monotonic() - start
        bad = [p for p in report.profiles if p.state.value != "Installed"]
        if bad:
            sys.exit(f"{case}: {bad[0].key} {bad[0].state}: {bad[0].message}")
        rows.append((case, runner.writes - writes, runner.reads - reads, wall))
        return wall

    for i in range(n):
        (profiles / f"app{i:02}.yaml").write_text(manifest(f"app{i:02}", "read, open"))
    reconcile(f"install {n} (secprof)")
    reconcile("no-change (secprof)")
    for i in range(n):
        (profiles / f"app{i:02}.yaml").write_text(manifest(f"app{i:02}", "read, open, getattr"))
    one = reconcile(f"update {n} (secprof)")

    cil = work / "selinuxd"
    cil.mkdir()
    start = time.monotonic()
    for i in range(n):
        path = cil / f"sd{i:02}.cil"
        path.write_text(f"(block sd{i:02}\n(blockinherit container)\n(blockinherit net_container)"
                        f"\n(allow process var_log_t ( file ( getattr open read )))\n)\n")
        done = subprocess.run(["semodule", "-p", str(root), "-X", "350", "-i", str(path)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"semodule -i {path.name}: {done.stderr}")
    each = time.monotonic() - start
    rows.append((f"update {n}, one semodule each (selinuxd)", n, 0, each))

    print(f"{'case':<44} {'writes':>6} {'reads':>5} {'wall s':>8}")
    for case, writes, reads, wall in rows:
        print(f"{case:<44} {writes:>6} {reads:>5} {wall:>8.2f}")
    print(f"ratio one-per-module / one transaction: {each / one:.1f}x")


if __name__ == "__main__":
    main()
