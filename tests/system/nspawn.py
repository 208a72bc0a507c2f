"""A Debian 12 container booted by systemd-nspawn, for tests of the package under a real systemd.

How it is made safe on a host whose PID 1 is not systemd (research/host-backends.md §4):
- nspawn and everything it starts live in a dedicated cgroup (`secprof-test-<pid>`, made beside
  this process's own in every hierarchy), never in the root one: a systemd started from the root
  cgroup moves every process of it, PID 1 included, into a new init.scope;
- `--register=no --keep-unit` (no machined, no system bus on this host), a private network;
- the root is a cached mmdebstrap tree mounted read-only under a tmpfs overlay
  (`--volatile=overlay`): every boot starts pristine, nothing is written back.

The root is cached in /var/cache/secprof-test/ (outside any checkout), keyed by what it holds;
`python -m tests.system.nspawn shell DEB` boots one with the package installed, for debugging.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CACHE = Path("/var/cache/secprof-test")
SUITE = "bookworm"
# systemd to boot; passwd and dbus to manage users and units; the package's dependencies, so
# that `dpkg -i` works without a network.
INCLUDE = ("systemd", "systemd-sysv", "dbus", "passwd", "python3.11", "libseccomp2",
           "libsystemd0", "libgcc-s1")
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def root_tree() -> Path:
    """The cached Debian 12 root, made with mmdebstrap on first use (about 20-90 s)."""
    argv = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(INCLUDE), SUITE]
    key = hashlib.sha256(" ".join(argv).encode()).hexdigest()[:12]
    tree = CACHE / f"{SUITE}-{key}"
    if (tree / "usr/lib/systemd/systemd").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=".build-") as scratch:
        tarball = Path(scratch) / "root.tar"
        proc = subprocess.run([*argv, str(tarball)], env=CLEAN_ENV, capture_output=True,
                              text=True, timeout=1200)
        if proc.returncode:
            raise RuntimeError(f"mmdebstrap failed: {proc.stderr[-2000:]}")
        staged = Path(scratch) / "root"
        staged.mkdir()
        subprocess.run(["tar", "-xpf", str(tarball), "-C", str(staged)], check=True,
                       timeout=600)
        # A node has kubelet's seccomp root; ReadWritePaths needs it to exist at start.
        (staged / "var/lib/kubelet/seccomp").mkdir(parents=True)
        staged.rename(tree)  # atomic: a half-made tree is never taken for the cache
    return tree


# The hierarchies systemd manages (research notes §4); cpuset and the rest stay as they are
# (a new v1 cpuset cgroup has no CPUs: joining it fails with ENOSPC).
_HIERARCHIES = ("", "name=systemd", "pids", "memory", "cpu", "cpu,cpuacct")


def _cgroup_dirs(name: str) -> list[Path]:
    """A new cgroup beside this process's own, in each hierarchy systemd uses."""
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers not in _HIERARCHIES:
            continue
        base = Path("/sys/fs/cgroup") / (controllers.removeprefix("name=") or "unified")
        if not controllers and not base.is_dir():  # cgroup v2 only: mounted at the top
            base = Path("/sys/fs/cgroup")
        if base.is_dir():
            dirs.append(base / path.lstrip("/") / name)
    return dirs


def _remove_cgroup(directory: Path) -> None:
    """rmdir a cgroup tree, deepest first (cgroup directories hold no removable files)."""
    if not directory.is_dir():
        return
    for child in sorted((p for p in directory.rglob("*") if p.is_dir()),
                        key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            child.rmdir()
    with contextlib.suppress(OSError):
        directory.rmdir()


# Run in the forked child before exec: move it into the dedicated cgroup first.
_ENTER_CGROUP = """
import os, sys
for procs in sys.argv[1].split(":"):
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
os.execvp(sys.argv[2], sys.argv[2:])
"""


# What `systemctl is-system-running` says before the container's systemd answers.
_NOT_UP_YET = ("", "offline")


class Container:
    """A booted container; run commands in it with :meth:`run`."""

    def __init__(self, tree: Path, name: str, binds: Sequence[tuple[Path, str]]) -> None:
        self.name = name
        self.cgroups = _cgroup_dirs(f"secprof-test-{os.getpid()}-{name}")
        for directory in self.cgroups:
            directory.mkdir(parents=True, exist_ok=True)
        argv = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit",
                "--private-network", "--console=passive", "--volatile=overlay",
                "--capability=CAP_MAC_ADMIN", "-D", str(tree), "-M", name,
                *(f"--bind-ro={src}:{dst}" for src, dst in binds), "-b"]
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        procs = ":".join(str(d / "cgroup.procs") for d in self.cgroups)
        self.nspawn = subprocess.Popen(
            [sys.executable, "-c", _ENTER_CGROUP, procs, *argv], env=CLEAN_ENV,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.leader = self._find_leader()
        except BaseException:
            self.stop()
            raise

    def _find_leader(self, timeout_s: float = 60) -> int:
        """The container's PID 1 (systemd), a child of nspawn."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"nspawn exited {self.nspawn.returncode}: {self.output()}")
            for stat in Path("/proc").glob("[0-9]*/stat"):
                with contextlib.suppress(OSError, IndexError):
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.nspawn.pid and "(systemd)" in stat.read_text():
                        return int(stat.parent.name)
            time.sleep(0.1)
        raise RuntimeError(f"no container init after {timeout_s} s: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def run(self, *argv: str, check: bool = True, timeout: float = 120,
            user: str | None = None, stdin: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces), as root or ``user``."""
        if user:
            argv = ("runuser", "-u", user, "--", *argv)
        proc = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-C", "--",
             "env", "-i", *(f"{k}={v}" for k, v in CLEAN_ENV.items()), *argv],
            capture_output=True, text=True, timeout=timeout, input=stdin)
        if check and proc.returncode:
            raise AssertionError(f"{argv} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc

    def write(self, path: str, text: str) -> None:
        """Write a file inside the container."""
        self.run("tee", path, stdin=text)

    def wait_booted(self, timeout_s: float = 120) -> str:
        """Wait until systemd has finished booting; its state (running or degraded)."""
        deadline = time.monotonic() + timeout_s
        state = ""
        # Right after exec the manager is not up yet, and systemctl says so in one of two ways:
        # it prints nothing (no bus to connect to), or "offline" (/run/systemd/system is not made
        # yet, so it takes PID 1 for another init). `--wait` only waits once it can connect.
        while state in _NOT_UP_YET and time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", "--wait", check=False,
                             timeout=timeout_s).stdout.strip()
            if state in _NOT_UP_YET:
                time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise RuntimeError(f"container booted to {state!r}: {self.output()}")
        return state

    def stop(self) -> None:
        """Power off (or kill) the container, then remove its cgroups and nspawn's leftovers."""
        try:
            if self.nspawn.poll() is None:
                if getattr(self, "leader", None):
                    self.run("systemctl", "poweroff", check=False, timeout=30)
                else:
                    self.nspawn.kill()
            if self.nspawn.poll() is None:
                try:
                    self.nspawn.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self.nspawn.kill()
                    self.nspawn.wait(timeout=30)
        finally:
            self.log.close()
            for directory in self.cgroups:
                _remove_cgroup(directory)
            for leftover in (f"/run/systemd/nspawn/unix-export/{self.name}",
                             f"/run/systemd/nspawn/propagate/{self.name}"):
                shutil.rmtree(leftover, ignore_errors=True)


@contextlib.contextmanager
def booted(name: str, binds: Sequence[tuple[Path, str]] = ()) -> Iterator[Container]:
    """A freshly booted container, stopped and cleaned up afterwards whatever happens."""
    container = Container(root_tree(), name, binds)
    try:
        container.wait_booted()
        yield container
    finally:
        container.stop()


def main(argv: list[str]) -> int:
    """`shell DEB`: boot, install DEB, and open a shell inside (for debugging)."""
    if len(argv) != 2 or argv[0] != "shell":
        print("usage: python -m tests.system.nspawn shell DEB", file=sys.stderr)
        return 2
    deb = Path(argv[1]).resolve()
    with booted("secprof-debug", [(deb, "/root/secprof.deb")]) as box:
        box.run("dpkg", "-i", "/root/secprof.deb")
        return subprocess.call(["nsenter", "-t", str(box.leader), "-a", "--", "/bin/bash"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
