"""Benchmark the daemon: event → installed latency, idle CPU, RSS, `secprof status` wall time.

For each directory size (10 and 1000 profiles; the 1000 are the apply benchmark's chains of
depth 3 over 50 shared bases), a real `secprof daemon` is started on a tmp root and:

* latency: a manifest is replaced atomically (temp file + rename in the directory), and the
  time until the installed file holds the new content is measured, over N changes;
* idle CPU: the daemon's user+sys CPU over an idle window (no polling loops: expected ~0);
* RSS: VmRSS and VmHWM of the daemon;
* `secprof status` wall time (a new process each run, as an operator or a script runs it).

    .venv/bin/python bench/daemon_bench.py [--changes 200] [--idle 60] [--sizes 10,1000]
"""

from __future__ import annotations

import argparse
import os
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

SECPROF = Path(sys.executable).with_name("secprof")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def small_set(profiles: Path, count: int) -> None:
    for i in range(count):
        (profiles / f"p{i:02d}.yaml").write_text(apply_bench.doc(
            f"p{i:02d}", ["read", "write", "openat", "close", "futex"], None, False))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_ready(config: Path, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"daemon exited with {proc.returncode}")
        if subprocess.run([str(SECPROF), "is-ready", "--config", str(config)],
                          check=False).returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("daemon not ready in time")


def latency(profiles: Path, installed: Path, name: str, changes: int) -> list[float]:
    path = profiles / f"{name}.yaml"
    original = path.read_text()
    samples = []
    for i in range(changes):
        # alternate between two real syscalls so that every change is a real content change
        syscall = "getpid" if i % 2 == 0 else "getppid"
        text = original.replace("  syscalls:\n", f"  syscalls:\n    - action: SCMP_ACT_ALLOW\n"
                                f"      names: [{syscall}]\n", 1)
        tmp = profiles / f".{name}.yaml.tmp"
        tmp.write_text(text)
        marker = f'"{syscall}"'
        start = time.perf_counter()
        os.replace(tmp, path)
        while True:
            try:
                if marker in installed.read_text():
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.0005)
        samples.append(time.perf_counter() - start)
        time.sleep(0.05)  # let the daemon go idle: each change is its own event
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_daemon(work: Path, profiles: Path) -> tuple[Path, subprocess.Popen[bytes]]:
    """Write a config pointing every path into ``work`` and start `secprof daemon` on it (not
    under systemd: no NOTIFY_SOCKET). Returns the config file and the process."""
    config = work / "config.toml"
    config.write_text(f'[agent]\nprofiles_dir = "{profiles}"\nstate_dir = "{work}/state"\n'
                      f'cache_dir = "{work}/cache"\nsocket = "{work}/run/secprof.sock"\n'
                      f'[seccomp]\nroot = "{work}/seccomp"\n')
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([str(SECPROF), "daemon", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return config, proc


def run(size: int, changes: int, idle_s: float, status_runs: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="sp-bench-", dir="/tmp"))
    try:
        profiles = work / "profiles.d"
        profiles.mkdir()
        if size >= 1000:
            apply_bench.generate(profiles)
            target = "app-0001"
        else:
            small_set(profiles, size)
            target = "p01"
        started = time.perf_counter()
        config, proc = start_daemon(work, profiles)
        try:
            wait_ready(config, proc)
            ready_s = time.perf_counter() - started
            samples = latency(profiles, work / "seccomp" / "secprof" / f"{target}.json", target,
                              changes)
            time.sleep(1)
            cpu_before = cpu_seconds(proc.pid)
            time.sleep(idle_s)
            idle_cpu = cpu_seconds(proc.pid) - cpu_before
            mem = memory_kib(proc.pid)
            walls = []
            for _ in range(status_runs):
                t = time.perf_counter()
                subprocess.run([str(SECPROF), "status", "--config", str(config)],
                               stdout=subprocess.DEVNULL, check=False)
                walls.append(time.perf_counter() - t)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        return {"size": size, "ready_s": ready_s, "p50_ms": percentile(samples, 0.5) * 1e3,
                "p99_ms": percentile(samples, 0.99) * 1e3, "max_ms": max(samples) * 1e3,
                "idle_cpu_s": idle_cpu, "idle_window_s": idle_s,
                "rss_mib": mem["VmRSS"] / 1024, "hwm_mib": mem["VmHWM"] / 1024,
                "status_ms": statistics.median(walls) * 1e3}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--sizes", default="10,1000")
    parser.add_argument("--status-runs", type=int, default=20)
    args = parser.parse_args()
    print(f"secprof daemon, {args.changes} changes, {args.idle:g} s idle window, "
          f"{os.cpu_count()} CPUs")
    print(f"{'profiles':>8} {'ready s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'idle CPU s':>10} {'RSS MiB':>8} {'peak MiB':>8} {'status ms':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = run(size, args.changes, args.idle, args.status_runs)
        print(f"{size:>8} {r['ready_s']:>8.2f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
              f"{r['max_ms']:>7.1f} {r['idle_cpu_s']:>10.2f} {r['rss_mib']:>8.1f} "
              f"{r['hwm_mib']:>8.1f} {r['status_ms']:>9.1f}")


if __name__ == "__main__":
    main()
