"""Benchmark: `secprof apply` on 1000 profiles in chains of depth 3 over 50 shared bases.

Layout: 25 root bases (~60 syscalls each), 25 middle bases (each on one root, +15 syscalls),
1000 application profiles (each on one middle base, +10 syscalls of its own, one conditional
rule). Everything is installed, so a cold apply writes 1050 files.

Measured, each in a fresh `secprof` process exactly as an operator runs it: a cold apply (empty
root), a no-op apply (nothing changed), and an apply after one root base changed (40 files).
Reported: wall time, CPU time (user + sys: less sensitive to other load on the machine), peak
RSS of the process, files written.

    .venv/bin/python bench/apply_bench.py [--runs N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECPROF = Path(sys.executable).with_name("secprof")
ROOTS, MIDDLES, APPS = 25, 25, 1000

# A pool of real x86_64 syscall names to draw allow-lists from.
POOL = """read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction
rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield
mremap msync mincore madvise dup dup2 pause nanosleep getitimer alarm setitimer getpid sendfile
socket connect accept sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername
socketpair setsockopt getsockopt clone fork vfork execve exit wait4 kill uname fcntl flock fsync
fdatasync truncate ftruncate getdents getcwd chdir fchdir rename mkdir rmdir creat link unlink
symlink readlink chmod fchmod chown fchown lchown umask gettimeofday getrlimit getrusage sysinfo
times getuid getgid setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid
setregid getgroups setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid
getsid capget capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack
utime mknod personality statfs fstatfs getpriority setpriority sched_setparam sched_getparam
prctl arch_prctl setrlimit sync gettid readahead setxattr getxattr listxattr removexattr tkill
time futex sched_setaffinity sched_getaffinity epoll_create getdents64 set_tid_address
restart_syscall semtimedop fadvise64 timer_create timer_settime timer_gettime timer_delete
clock_settime clock_gettime clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill
utimes waitid inotify_init inotify_add_watch inotify_rm_watch openat mkdirat mknodat fchownat
futimesat newfstatat unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6
ppoll unshare set_robust_list get_robust_list splice tee sync_file_range vmsplice utimensat
epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime accept4
signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev rt_tgsigqueueinfo
recvmmsg prlimit64 syncfs sendmmsg setns getcpu getrandom memfd_create statx rseq clone3
close_range openat2 faccessat2 epoll_pwait2""".split()


def doc(name: str, syscalls: list[str], base: str | None, conditional: bool) -> str:
    lines = ["apiVersion: security-profiles-operator.x-k8s.io/v1", "kind: SeccompProfile",
             f"metadata:\n  name: {name}", "spec:"]
    if base:
        lines.append(f"  baseProfileName: {base}")
    lines += ["  defaultAction: SCMP_ACT_ERRNO", "  architectures: [SCMP_ARCH_X86_64]",
              "  syscalls:", "    - action: SCMP_ACT_ALLOW", "      names:"]
    lines += [f"        - {s}" for s in syscalls]
    if conditional:
        lines += ["    - action: SCMP_ACT_ERRNO", "      errnoRet: 97", "      names: [socket]",
                  "      args: [{index: 0, value: 10, op: SCMP_CMP_EQ}]"]
    return "\n".join(lines) + "\n"


def generate(profiles: Path, seed: int = 1) -> None:
    rng = random.Random(seed)
    for i in range(ROOTS):
        (profiles / f"root-{i:02d}.yaml").write_text(
            doc(f"root-{i:02d}", sorted(rng.sample(POOL, 60)), None, False))
    for i in range(MIDDLES):
        (profiles / f"middle-{i:02d}.yaml").write_text(
            doc(f"middle-{i:02d}", sorted(rng.sample(POOL, 15)), f"root-{i % ROOTS:02d}", False))
    for i in range(APPS):
        (profiles / f"app-{i:04d}.yaml").write_text(
            doc(f"app-{i:04d}", sorted(rng.sample(POOL, 10)), f"middle-{i % MIDDLES:02d}",
                conditional=True))


def run_apply(config: Path) -> dict[str, float]:
    """One `secprof apply` process: wall time, its own peak RSS, files written."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(SECPROF), "apply", "--json", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    # wait4 via communicate() already reaped it; RUSAGE_CHILDREN is the max over children,
    # so each measurement runs in a fresh interpreter (see main).
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"apply failed ({proc.returncode}): {err.decode()[-2000:]}")
    report = json.loads(out)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": peak_kib / 1024, "files_written":
            report["filesWritten"], "profiles": len(report["profiles"])}


def measure_one(kind: str, config: Path) -> dict[str, float]:
    """Run one measurement in a child interpreter so RUSAGE_CHILDREN is that apply's alone."""
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import apply_bench as b; print(json.dumps(b.run_apply(__import__('pathlib')"
            f".Path({str(config)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    result: dict[str, float] = json.loads(out)
    result["kind"] = kind  # type: ignore[assignment]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="secprof-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        profiles = work / "profiles.d"
        config = work / "config.toml"
        config.write_text(f'[agent]\nprofiles_dir = "{profiles}"\nstate_dir = "{work}/state"\n'
                          f'[seccomp]\nroot = "{work}/seccomp"\n')
        rows: dict[str, list[dict[str, float]]] = {"cold": [], "noop": [], "one-base": []}
        for _ in range(args.runs):
            for d in (profiles, work / "state", work / "seccomp"):
                shutil.rmtree(d, ignore_errors=True)
            profiles.mkdir()
            generate(profiles)
            rows["cold"].append(measure_one("cold", config))
            rows["noop"].append(measure_one("noop", config))
            root = profiles / "root-00.yaml"
            root.write_text(root.read_text().replace("        - read\n", "        - pread64\n")
                            .replace("- pread64\n        - pread64\n", "- pread64\n"))
            rows["one-base"].append(measure_one("one-base", config))
        print(f"secprof apply: {ROOTS} roots + {MIDDLES} middles + {APPS} apps "
              f"(chains of depth 3), {args.runs} run(s) each, {os.cpu_count()} CPUs")
        print(f"{'case':<10} {'wall s (median)':>16} {'wall s (max)':>13} {'CPU s (median)':>15} "
              f"{'peak RSS MiB':>13} {'files written':>14}")
        for kind, results in rows.items():
            walls = [r["wall_s"] for r in results]
            cpus = [r["cpu_s"] for r in results]
            print(f"{kind:<10} {statistics.median(walls):>16.3f} {max(walls):>13.3f} "
                  f"{statistics.median(cpus):>15.3f} "
                  f"{max(r['peak_rss_mib'] for r in results):>13.1f} "
                  f"{int(results[-1]['files_written']):>14}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
