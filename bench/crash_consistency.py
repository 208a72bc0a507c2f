"""Crash consistency: ``kill -9`` a real ``secprof apply`` at random points, then check the host.

Each run changes the desired state (every profile's content flips, a few profiles appear or go),
starts ``secprof apply`` and kills it with SIGKILL: in odd runs after a random delay drawn from
[0, one uninterrupted apply's duration] (anywhere, start-up included), in even runs a random
delay in [0, a fifth of that] after the run announced its writes (the intent journal appeared)
(or the install directory changed), so that the write phase is hit often whatever the machine's
load. Then it checks:

* **no partial file where kubelet reads**: every ``<name>.json`` in the install directory is
  one whole profile (parses as JSON with a ``defaultAction``), and is byte-for-byte a version
  secprof rendered for that name (the previous or the new one);
* **the next apply converges**: an uninterrupted ``secprof apply`` exits 0, the install
  directory then holds exactly the desired names (nothing orphaned: ownership survived the
  kill), no temp file is left, and a further apply writes nothing.

Where each kill landed is told from what it left: nothing changed, an intent journal (killed
between announcing writes and recording them), temp files (killed mid-write).

    .venv/bin/python bench/crash_consistency.py [--runs 100] [--profiles 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

SECPROF = Path(sys.executable).with_name("secprof")
SYSCALLS = ["read", "write", "openat", "close", "futex", "mmap", "munmap", "brk", "fstat",
            "getpid", "getppid", "nanosleep", "clock_gettime", "exit_group"]


def doc(name: str, syscalls: list[str]) -> str:
    return (f"apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"
            f"metadata:\n  name: {name}\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n"
            f"  syscalls:\n    - action: SCMP_ACT_ALLOW\n      names: [{', '.join(syscalls)}]\n")


class Host:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.profiles = work / "profiles.d"
        self.installed = work / "seccomp" / "secprof"
        self.state = work / "state"
        self.config = work / "config.toml"
        self.profiles.mkdir()
        self.config.write_text(
            f'[agent]\nprofiles_dir = "{self.profiles}"\nstate_dir = "{self.state}"\n'
            f'cache_dir = "{work}/cache"\nsocket = "{work}/run/secprof.sock"\n'
            f'[seccomp]\nroot = "{work}/seccomp"\n')

    def apply(self) -> dict[str, object]:
        proc = subprocess.run([str(SECPROF), "apply", "--json", "--config", str(self.config)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"apply failed ({proc.returncode}): {proc.stderr[-2000:]}")
        report: dict[str, object] = json.loads(proc.stdout)
        return report

    def files(self) -> dict[str, bytes]:
        if not self.installed.exists():
            return {}
        return {p.name: p.read_bytes() for p in self.installed.iterdir()}


def mutate(host: Host, rng: random.Random, desired: set[str], run: int) -> None:
    """Flip every profile's content; add two profiles and drop one."""
    for _ in range(2):
        desired.add(f"p{rng.randrange(10_000):05d}")
    if len(desired) > 3:
        desired.discard(rng.choice(sorted(desired)))
    for path in host.profiles.iterdir():
        if path.stem not in desired:
            path.unlink()
    for name in sorted(desired):
        syscalls = SYSCALLS[: 4 + (hash((name, run)) % 10)]
        tmp = host.profiles / f".{name}.tmp"
        tmp.write_text(doc(name, syscalls))
        os.replace(tmp, host.profiles / f"{name}.yaml")


def wait_for_writing(host: Host, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Until the run announced its writes (the intent journal exists) or began them (the install
    directory changed: a temp file or a rename), or ended."""
    intent = host.state / "intent.json"
    mtime = host.installed.stat().st_mtime_ns
    while proc.poll() is None and time.monotonic() < deadline:
        if intent.exists() or host.installed.stat().st_mtime_ns != mtime:
            return
        time.sleep(0.001)


def landed(host: Host, before: dict[str, bytes]) -> str:
    names = os.listdir(host.installed) if host.installed.exists() else []
    if any(n.endswith(".secprof-tmp") for n in names):
        return "mid-write (temp files left)"
    if (host.state / "intent.json").exists():
        return "after writing, before the ledger (intent pending)"
    if host.files() == before:
        return "before any write"
    return "after the ledger was saved"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--profiles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="sp-crash-", dir="/tmp"))
    try:
        host = Host(work)
        desired = {f"p{i:05d}" for i in range(args.profiles)}
        mutate(host, rng, desired, 0)
        host.apply()
        durations = []
        for run in range(1, 4):  # how long one uninterrupted apply with every file changing takes
            mutate(host, rng, desired, run)
            started = time.perf_counter()
            host.apply()
            durations.append(time.perf_counter() - started)
        full = statistics.median(durations)

        where: Counter[str] = Counter()
        torn = foreign = orphans = leftovers = not_converged = 0
        for run in range(4, 4 + args.runs):
            before = host.files()
            mutate(host, rng, desired, run)
            proc = subprocess.Popen([str(SECPROF), "apply", "--config", str(host.config)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if run % 2:  # anywhere in the run
                time.sleep(rng.uniform(0, full))
            else:  # in the window that matters: once the first write was announced
                wait_for_writing(host, proc, deadline=time.monotonic() + 4 * full)
                time.sleep(rng.uniform(0, full / 5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            where[landed(host, before)] += 1
            killed = host.files()

            host.apply()  # converge
            after = host.files()
            for name, data in killed.items():
                if not name.endswith(".json"):
                    continue
                try:
                    whole = "defaultAction" in json.loads(data)
                except ValueError:
                    whole = False
                torn += not whole
                # Only the old bytes or the new bytes, never a mix of two versions.
                foreign += whole and data not in (before.get(name), after.get(name))
            names = set(after)
            leftovers += sum(1 for n in names if not n.endswith(".json"))
            orphans += len({n.removesuffix(".json") for n in names if n.endswith(".json")}
                           - desired)
            second = host.apply()
            not_converged += bool(second.get("filesWritten")) or (
                {n.removesuffix(".json") for n in names if n.endswith(".json")} != desired)

        print(f"crash consistency: {args.runs} runs, {args.profiles} profiles (+1 a run), "
              f"SIGKILL after uniform(0, {full:.2f} s) or once writing + "
              f"uniform(0, {full / 5:.2f} s), seed {args.seed}")
        print(f"{'where the kill landed':<52} {'runs':>5}")
        for label, count in where.most_common():
            print(f"{label:<52} {count:>5}")
        print(f"{'check':<52} {'count':>5}")
        for label, count in (("torn or partial files where kubelet reads", torn),
                             ("files with bytes never rendered for their name", foreign),
                             ("orphans after the next apply (ownership lost)", orphans),
                             ("temp files left after the next apply", leftovers),
                             ("next apply did not converge", not_converged)):
            print(f"{label:<52} {count:>5}")
        if torn or foreign or orphans or leftovers or not_converged:
            raise SystemExit(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)



if __name__ == "__main__":
    main()
