"""Benchmark: 100 changed AppArmorProfiles in one reconcile vs 100 separate parser calls.

Each profile is an SPO abstract of about 30 rendered rules (executables, libraries, paths,
network, capabilities), distinct per profile. Measured in the same run, on the real
``apparmor_parser`` (this kernel has no AppArmor, so ``auto`` is compile-only: ``-Q -K``
against ``--kernel-features``):

* one reconcile that installs the 100 (the loader, the driver, the backend's one call);
* the same 100 files compiled by 100 separate ``apparmor_parser -Q -K`` calls (what a
  per-profile loader does);
* a no-change resync (drift checked: files read, nothing run);
* a reconcile after every profile changed;
* the load path: one reconcile of 100 in ``load`` mode against a fake securityfs (the real
  parser's ``--replace``; its kernel bookkeeping is done by the test wrapper, which adds a
  Python start and a cache scan to that one call).

Parser invocations are counted at the runner; CPU (user + sys) is this process's (secprof)
and its children's (the parser), less sensitive than wall time to other load on the machine.

    .venv/bin/python bench/apparmor_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.apparmor.driver import AppArmorDriver
from agent.backends.apparmor import AppArmorBackend, AppArmorSettings, Mode
from agent.backends.runner import SubprocessRunner
from agent.model.manifests import load_directory
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import State
from tests.support.apparmor_kernel import FEATURES, make_parser, make_securityfs
from tests.support.counting import CountingRunner

COUNT = 100


def manifest(i: int, generation: int) -> str:
    return f"""\
apiVersion: security-profiles-operator.x-k8s.io/v1
kind: AppArmorProfile
metadata:
  name: app-{i:03d}
spec:
  mode: Enforce
  abstract:
    executable:
      allowedExecutables: [/usr/bin/app-{i}, /bin/sh, /usr/bin/env]
      allowedLibraries: ["/lib/x86_64-linux-gnu/**", "/usr/lib/x86_64-linux-gnu/**"]
    filesystem:
      readOnlyPaths: [/etc/app-{i}/**, /etc/hosts, /etc/resolv.conf, /etc/passwd,
                      /usr/share/zoneinfo/**, "/proc/@{{pid}}/cgroup"]
      writeOnlyPaths: [/var/log/app-{i}/*.log]
      readWritePaths: [/var/lib/app-{i}/**, /tmp/**, /run/app-{i}.sock, /gen-{generation}/**]
    network:
      allowRaw: false
      allowedProtocols: {{allowTcp: true, allowUdp: true}}
    capability:
      allowedCapabilities: [net_bind_service, setuid, setgid, chown]
"""


class Setup:
    def __init__(self, root: Path, mode: Mode) -> None:
        self.desired = root / "profiles.d"
        self.desired.mkdir(parents=True)
        self.runner = CountingRunner(SubprocessRunner())
        fs = make_securityfs(root)
        self.settings = AppArmorSettings(
            mode=mode, profiles_dir=root / "apparmor.d", securityfs=fs,
            kernel_features=FEATURES if FEATURES.exists() else None,
            state_dir=root / "state/aa", cache_dir=root / "cache", proc_root=root / "proc",
            enabled_file=root / "none",
            parser=str(make_parser(root)) if mode is Mode.LOAD else "apparmor_parser",
        )
        self.reconciler = Reconciler(
            drivers=[AppArmorDriver(AppArmorBackend(self.settings, self.runner))],
            ledger=LedgerStore(root / "state"))

    def write(self, generation: int) -> None:
        for i in range(COUNT):
            (self.desired / f"app-{i:03d}.yaml").write_text(manifest(i, generation))

    def reconcile(self, expect: State) -> Figures:
        before, started = len(self.runner.calls), _clock()
        report = self.reconciler.reconcile(load_directory(self.desired))
        wall, own, parser = _since(started)
        bad = [p for p in report.profiles if p.state is not expect]
        if bad or len(report.profiles) != COUNT:
            raise SystemExit(f"unexpected result: {bad[:3]}")
        return wall, own, parser, len(self.runner.calls) - before

    def separate(self) -> Figures:
        files = sorted(self.settings.profiles_dir.glob("secprof.*"))
        features = ["--kernel-features", str(FEATURES)] if FEATURES.exists() else []
        before, started = len(self.runner.calls), _clock()
        for path in files:
            done = self.runner.run(["apparmor_parser", "-Q", "-K", *features, str(path)],
                                   timeout_s=60)
            if not done.ok:
                raise SystemExit(done.stderr)
        wall, own, parser = _since(started)
        return wall, own, parser, len(self.runner.calls) - before


Figures = tuple[float, float, float, int]  # wall s, secprof CPU s, parser CPU s, parser calls


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _clock() -> tuple[float, float, float]:
    return (time.perf_counter(), _cpu(resource.RUSAGE_SELF),
            _cpu(resource.RUSAGE_CHILDREN))


def _since(started: tuple[float, float, float]) -> tuple[float, float, float]:
    now = _clock()
    return now[0] - started[0], now[1] - started[1], now[2] - started[2]


def one_run() -> dict[str, Figures]:
    out: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory(prefix="aa-bench-") as tmp:
        s = Setup(Path(tmp), Mode.AUTO)
        s.write(0)
        out["100 changed, one reconcile"] = s.reconcile(State.VALIDATED)
        out["100 separate parser calls"] = s.separate()
        out["no-change resync"] = s.reconcile(State.VALIDATED)
        s.write(1)
        out["100 changed again, one reconcile"] = s.reconcile(State.VALIDATED)
    with tempfile.TemporaryDirectory(prefix="aa-bench-") as tmp:
        s = Setup(Path(tmp), Mode.LOAD)
        s.write(0)
        out["load: 100 new, one reconcile"] = s.reconcile(State.INSTALLED)
        out["load: no-change resync"] = s.reconcile(State.INSTALLED)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runs = [one_run() for _ in range(args.runs)]
    def median(k: str, i: int) -> float:
        return statistics.median(r[k][i] for r in runs)
    print(f"AppArmor, {COUNT} profiles, median of {args.runs} runs "
          f"(apparmor_parser {'--kernel-features ' + str(FEATURES) if FEATURES.exists() else ''}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'case':36} {'wall s':>8} {'secprof CPU s':>14} {'parser CPU s':>13} "
          f"{'parser calls':>13}")
    for case in runs[0]:
        print(f"{case:36} {median(case, 0):8.3f} {median(case, 1):14.3f} "
              f"{median(case, 2):13.3f} {median(case, 3):13.0f}")


if __name__ == "__main__":
    main()
