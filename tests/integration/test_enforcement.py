"""Installed profiles really enforce: loaded by libseccomp into a forked child, and by runc.

The kernel here enforces seccomp, so nothing is faked: each test installs profiles with the
real `secprof apply`, then runs real syscalls under the installed file.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.model.manifests import load_bytes
from agent.model.seccomp import Arg, SeccompSpec, SyscallRule
from agent.seccomp.libseccomp import compile_filter
from tests.conftest import Host, seccomp_doc

pytestmark = pytest.mark.enforcement
REPO = Path(__file__).resolve().parents[2]
_libc = ctypes.CDLL(None, use_errno=True)


def run_in_child(setup: Callable[[], None], probe: Callable[[], dict[str, int]]) -> dict[str, int]:
    """Fork; in the child apply ``setup`` (load a filter) then report ``probe()`` over a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_fd)
            setup()
            os.write(write_fd, json.dumps(probe()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    assert data, "the child died before reporting"
    return json.loads(data)  # type: ignore[no-any-return]


def _errno_of(call: Callable[[], int]) -> int:
    ctypes.set_errno(0)
    return 0 if call() >= 0 else ctypes.get_errno()


def load_installed(path: Path) -> Callable[[], None]:
    desired = load_bytes(path.read_bytes(), display=str(path), as_json=True, plain_name="p")
    (profile,) = desired.profiles.values()
    filt = compile_filter(profile.spec)
    return filt.load


@pytest.fixture
def stacked(host: Host) -> Host:
    host.write("base.yaml", seccomp_doc("deny-mkdir", """
        defaultAction: SCMP_ACT_ALLOW
        syscalls:
          - {names: [mkdir, mkdirat], action: SCMP_ACT_ERRNO, errnoRet: 1}
          - {names: [personality], action: SCMP_ACT_ERRNO, errnoRet: 22,
             args: [{index: 0, value: 8, op: SCMP_CMP_EQ}]}
        """))
    host.write("app.yaml", seccomp_doc("app", """
        baseProfileName: deny-mkdir
        defaultAction: SCMP_ACT_ALLOW
        syscalls:
          - {names: [chmod, fchmodat], action: SCMP_ACT_ERRNO, errnoRet: 13}
          - {names: [socket], action: SCMP_ACT_ERRNO, errnoRet: 97,
             args: [{index: 0, value: 10, op: SCMP_CMP_EQ}]}
        """))
    host.cli("apply", check=True)
    return host


def test_merged_profile_denies_what_it_denies_and_allows_the_rest(stacked: Host,
                                                                  tmp_path: Path) -> None:
    target = tmp_path / "made-by-child"

    def probe() -> dict[str, int]:
        def try_socket(family: int) -> int:
            try:
                socket.socket(family, socket.SOCK_STREAM).close()
            except OSError as exc:
                return exc.errno or -1
            return 0

        return {
            "mkdir": _errno_of(lambda: _libc.mkdir(str(target).encode(), 0o700)),
            "chmod": _errno_of(lambda: _libc.chmod(str(tmp_path).encode(), 0o755)),
            "inet6": try_socket(socket.AF_INET6),
            "inet": try_socket(socket.AF_INET),
            "personality-8": _errno_of(lambda: _libc.personality(8)),
            "personality-query": _errno_of(lambda: _libc.personality(0xFFFFFFFF)),
            "getpid": _errno_of(_libc.getpid),
        }

    result = run_in_child(load_installed(stacked.installed("app")), probe)
    assert result == {
        "mkdir": errno.EPERM,  # from the base
        "chmod": errno.EACCES,  # from the child
        "inet6": errno.EAFNOSUPPORT,  # the child's conditional rule
        "inet": 0,
        "personality-8": errno.EINVAL,  # the base's conditional rule survived the merge
        "personality-query": 0,
        "getpid": 0,
    }
    assert not target.exists()
    assert _errno_of(lambda: _libc.mkdir(str(target).encode(), 0o700)) == 0  # parent: no filter


def test_libseccomp_lets_an_unconditional_rule_override_conditional_ones() -> None:
    """The fact merge.py relies on to drop inert conditional rules, in both rule orders (the
    spec is compiled as written, without the merge)."""
    conditional = SyscallRule(names=("personality",), action="SCMP_ACT_ERRNO",
                              errno_ret=errno.EINVAL,
                              args=(Arg(index=0, value=8, value_two=0, op="SCMP_CMP_EQ"),))
    unconditional = SyscallRule(names=("personality",), action="SCMP_ACT_ERRNO",
                                errno_ret=errno.EACCES)
    for rules in ((conditional, unconditional), (unconditional, conditional)):
        spec = SeccompSpec(default_action="SCMP_ACT_ALLOW", syscalls=rules)
        result = run_in_child(compile_filter(spec).load, lambda: {
            "p8": _errno_of(lambda: _libc.personality(8)),
        })
        assert result == {"p8": errno.EACCES}


@pytest.mark.skipif(not (shutil.which("runc") and Path("/bin/busybox").exists()),
                    reason="needs runc and busybox-static (apt-get install runc busybox-static)")
@pytest.mark.parametrize(("profile", "mkdir_rc"), [("web-frontend", 1), ("batch-job", 0)])
def test_runc_container_runs_under_the_installed_file(host: Host, tmp_path: Path, profile: str,
                                                      mkdir_rc: int) -> None:
    for example in (REPO / "examples" / "profiles.d").iterdir():
        shutil.copy(example, host.profiles / example.name)
    host.cli("apply", check=True)

    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ("sh", "mkdir", "chmod", "cat"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = [
        "sh", "-c", "mkdir /tmp/x; echo mkdir=$?; cat /proc/self/status",
    ]
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev"]})
    config["linux"]["seccomp"] = json.loads(host.installed(profile).read_text())
    (bundle / "config.json").write_text(json.dumps(config))

    proc = subprocess.run(
        ["runc", "--root", str(tmp_path / "runc-state"), "run", "--bundle", str(bundle),
         f"secprof-test-{os.getpid()}-{profile}"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"mkdir={mkdir_rc}" in proc.stdout
    assert "Seccomp:\t2" in proc.stdout  # filter mode: the profile is really in force
