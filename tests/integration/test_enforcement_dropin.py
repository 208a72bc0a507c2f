"""Docker-format templates and conflicting rules under the real runc with busybox.

Nothing is faked: `secprof apply` installs the files, runc starts a busybox container under
them, and the container reports whether `mkdir` worked. Each test also runs runc on the file as
the user wrote it, to show what the installed file is compared against.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Host

pytestmark = [
    pytest.mark.enforcement,
    pytest.mark.skipif(not (shutil.which("runc") and Path("/bin/busybox").exists()),
                       reason="needs runc and busybox-static "
                       "(apt-get install runc busybox-static)"),
]


def native_syscalls() -> list[str]:
    """Every syscall libseccomp knows on this host's architecture (a Docker-like allow-list
    that busybox and runc's init surely get by with)."""
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_syscall_resolve_num_arch.argtypes = (ctypes.c_uint32, ctypes.c_int)
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_char_p  # leaks a little: a test
    arch = lib.seccomp_arch_native()
    names = {lib.seccomp_syscall_resolve_num_arch(arch, n) for n in range(0, 1024)}
    return sorted(n.decode() for n in names if n)


def run_mkdir(seccomp: dict[str, Any], bundle: Path, state: Path, tag: str) -> str:
    """Run busybox `mkdir` in a runc container under ``seccomp``; its exit status."""
    rootfs = bundle / "rootfs"
    if not rootfs.exists():
        for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
            (rootfs / d).mkdir(parents=True)
        shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
        for applet in ("sh", "mkdir"):
            (rootfs / "bin" / applet).symlink_to("busybox")
        subprocess.run(["runc", "spec"], cwd=bundle, check=True)
        (bundle / "config.template.json").write_bytes((bundle / "config.json").read_bytes())
    config = json.loads((bundle / "config.template.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "mkdir /tmp/x; echo mkdir=$?"]
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev"]})
    config["linux"]["seccomp"] = seccomp
    (bundle / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        ["runc", "--root", str(state), "run", "--bundle", str(bundle),
         f"secprof-dropin-{os.getpid()}-{tag}"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def docker_template() -> dict[str, Any]:
    allowed = [n for n in native_syscalls() if n not in ("mkdir", "mkdirat")]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": allowed, "action": "SCMP_ACT_ALLOW", "comment": "the usual"},
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ALLOW",
             "comment": "only for CAP_SYS_ADMIN, like mount in Docker's profile",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        ],
    }


def test_capability_gated_allow_is_denied_unless_the_capability_is_configured(
        host: Host, tmp_path: Path) -> None:
    template = docker_template()
    host.write("docker-like.json", json.dumps(template))
    host.cli("apply", check=True)
    installed = json.loads(host.installed("docker-like").read_text())
    assert "archMap" not in json.dumps(installed) and "includes" not in json.dumps(installed)
    bundle, state = tmp_path / "bundle", tmp_path / "state"
    assert run_mkdir(installed, bundle, state, "flat") == "mkdir=1"  # denied: no CAP_SYS_ADMIN

    # runc on the template as written ignores `includes`: the gated allow is unconditional.
    assert run_mkdir(template, bundle, state, "raw") == "mkdir=0"

    with host.config_path.open("a") as fh:
        fh.write('template_capabilities = ["CAP_SYS_ADMIN"]\n')
    host.cli("apply", check=True)
    granted = json.loads(host.installed("docker-like").read_text())
    assert run_mkdir(granted, bundle, state, "granted") == "mkdir=0"


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("SCMP_ACT_ERRNO", "SCMP_ACT_LOG", "mkdir=1"),
    ("SCMP_ACT_LOG", "SCMP_ACT_ERRNO", "mkdir=0"),
])
def test_conflicting_rules_install_what_runc_does_with_the_raw_file(
        host: Host, tmp_path: Path, first: str, second: str, expected: str) -> None:
    raw = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": first},
        {"names": ["mkdir", "mkdirat"], "action": second},
    ]}
    host.write("conflict.json", json.dumps(raw))
    proc = host.cli("apply", check=True)
    assert "syscalls[1]" in proc.stdout and "has no effect" in proc.stdout
    installed = json.loads(host.installed("conflict").read_text())
    bundle, state = tmp_path / "bundle", tmp_path / "state"
    assert run_mkdir(raw, bundle, state, "raw") == expected
    assert run_mkdir(installed, bundle, state, "installed") == expected
    assert [r["action"] for r in installed["syscalls"]] == [first]
