"""Benchmark ``secprof status`` at 1000 profiles: the summary (default) and the rows (``--all``).

A real ``secprof daemon`` is started on a tmp root with the apply benchmark's 1000 profiles;
each variant is run as a new process (as an operator or a probe runs it), N times. Besides
wall time (at the mercy of the machine's load), the client's CPU time and the daemon's CPU time
per request are shown: they do not depend on what else runs.

    .venv/bin/python bench/status_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import apply_bench  # the same generated desired state as the apply benchmark
from daemon_bench import SECPROF, cpu_seconds, percentile, start_daemon, wait_ready

VARIANTS = {"status (summary)": [], "status --all (rows)": ["--all"],
            "status --json": ["--json"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sp-status-", dir="/tmp"))
    try:
        profiles = work / "profiles.d"
        profiles.mkdir()
        apply_bench.generate(profiles)
        config, proc = start_daemon(work, profiles)
        try:
            wait_ready(config, proc)
            print(f"secprof status against a daemon holding {len(list(profiles.iterdir()))} "
                  f"manifests, {args.runs} runs each, {os.cpu_count()} CPUs")
            print(f"{'command':<22} {'median ms':>9} {'p90 ms':>7} {'max ms':>7} "
                  f"{'CPU ms':>7} {'daemon CPU ms':>13} {'bytes':>7}")
            time.sleep(2)  # the daemon's follow-up reconcile after READY
            walls: dict[str, list[float]] = {label: [] for label in VARIANTS}
            cpus: dict[str, list[float]] = {label: [] for label in VARIANTS}
            daemon: dict[str, float] = dict.fromkeys(VARIANTS, 0.0)
            sizes: dict[str, int] = {}
            for round_ in range(args.runs + 2):  # round-robin: the load hits every variant alike
                for label, extra in VARIANTS.items():
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    daemon_before = cpu_seconds(proc.pid)
                    t = time.perf_counter()
                    out = subprocess.run([str(SECPROF), "status", *extra, "--config",
                                          str(config)], capture_output=True, check=False)
                    wall = time.perf_counter() - t
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    if round_ < 2:
                        continue  # warm-up
                    walls[label].append(wall)
                    cpus[label].append(after.ru_utime + after.ru_stime - before.ru_utime
                                       - before.ru_stime)
                    daemon[label] += cpu_seconds(proc.pid) - daemon_before
                    sizes[label] = len(out.stdout)
            for label in VARIANTS:
                print(f"{label:<22} {statistics.median(walls[label]) * 1e3:>9.1f} "
                      f"{percentile(walls[label], 0.9) * 1e3:>7.1f} "
                      f"{max(walls[label]) * 1e3:>7.1f} "
                      f"{statistics.median(cpus[label]) * 1e3:>7.1f} "
                      f"{daemon[label] / args.runs * 1e3:>13.1f} {sizes[label]:>7}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
