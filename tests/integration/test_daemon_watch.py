"""Every way a manifest can appear, change or disappear reaches the host, through the daemon."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Host, seccomp_doc
from tests.integration.daemon_support import DaemonProcess, running, wait_for


def doc(name: str, syscall: str = "read") -> str:
    return seccomp_doc(name, f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n"
                             f"  - {{names: [{syscall}], action: SCMP_ACT_ALLOW}}")


@pytest.fixture
def daemon(host: Host) -> Iterator[DaemonProcess]:
    with running(host) as d:
        yield d


def has(host: Host, name: str, syscall: str) -> bool:
    path = host.installed(name)
    return path.exists() and f'"{syscall}"' in path.read_text()


def test_create_write_close(host: Host, daemon: DaemonProcess) -> None:
    with open(host.profiles / "a.yaml", "w") as fh:
        fh.write(doc("a"))
    wait_for(lambda: has(host, "a", "read"), what="created file installed")


def test_atomic_replace_inside_the_directory(host: Host, daemon: DaemonProcess) -> None:
    host.write("a.yaml", doc("a"))
    wait_for(lambda: has(host, "a", "read"))
    tmp = host.profiles / ".a.yaml.tmp"
    tmp.write_text(doc("a", "write"))
    os.replace(tmp, host.profiles / "a.yaml")
    wait_for(lambda: has(host, "a", "write"), what="renamed-over file installed")


def test_rename_in_from_outside(host: Host, daemon: DaemonProcess) -> None:
    outside = host.root / "staging.yaml"
    outside.write_text(doc("b"))
    os.replace(outside, host.profiles / "b.yaml")
    wait_for(lambda: has(host, "b", "read"), what="moved-in file installed")


def test_delete_removes(host: Host, daemon: DaemonProcess) -> None:
    host.write("a.yaml", doc("a"))
    wait_for(lambda: has(host, "a", "read"))
    (host.profiles / "a.yaml").unlink()
    wait_for(lambda: not host.installed("a").exists(), what="removed")


def test_move_out_removes(host: Host, daemon: DaemonProcess) -> None:
    host.write("a.yaml", doc("a"))
    wait_for(lambda: has(host, "a", "read"))
    os.replace(host.profiles / "a.yaml", host.root / "parked.yaml")
    wait_for(lambda: not host.installed("a").exists(), what="moved-out file removed")


def test_subdirectory(host: Host, daemon: DaemonProcess) -> None:
    (host.profiles / "team").mkdir()
    (host.profiles / "team" / "c.yaml").write_text(doc("c"))
    wait_for(lambda: has(host, "c", "read"), what="file in a new subdirectory installed")


def _configmap_update(directory: Path, content: dict[str, str], stamp: str) -> None:
    """What kubelet's atomic writer does: new timestamp dir, ..data_tmp, rename onto ..data."""
    new = directory / f"..{stamp}"
    new.mkdir()
    for name, text in content.items():
        (new / name).write_text(text)
    old = os.readlink(directory / "..data") if (directory / "..data").is_symlink() else None
    os.symlink(new.name, directory / "..data_tmp")
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in content:
        if not (directory / name).is_symlink():
            os.symlink(f"..data/{name}", directory / name)
    if old:
        shutil.rmtree(directory / old)


def test_configmap_data_swap(host: Host, daemon: DaemonProcess) -> None:
    _configmap_update(host.profiles, {"cm.yaml": doc("cm")}, "2026_11_29_01")
    wait_for(lambda: has(host, "cm", "read"), what="ConfigMap profile installed")
    # Nothing fires for cm.yaml itself (the symlink never changes); only ..data moves.
    _configmap_update(host.profiles, {"cm.yaml": doc("cm", "write")}, "2026_11_29_02")
    wait_for(lambda: has(host, "cm", "write"), what="ConfigMap update installed")


def test_editor_leftovers_do_not_install(host: Host, daemon: DaemonProcess) -> None:
    host.write("x.yaml~", doc("leftover"))
    host.write("real.yaml", doc("real"))
    wait_for(lambda: has(host, "real", "read"))
    assert not host.installed("leftover").exists()
