"""Shared fixtures: a host layout in a tmp dir, and helpers to write manifests and run the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import Config, load
from tests.support.fakesigstore import FakeSigstore

SECPROF = Path(sys.executable).with_name("secprof")
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass
class Host:
    """A fake host root: every path of the config points inside ``root``."""

    root: Path
    config_path: Path
    run: Path  # short: the runtime directory of the socket lives here

    @property
    def socket(self) -> Path:
        return self.run / "secprof" / "secprof.sock"

    @property
    def profiles(self) -> Path:
        return self.root / "etc/secprof/profiles.d"

    @property
    def seccomp_dir(self) -> Path:
        return self.root / "var/lib/kubelet/seccomp/secprof"

    @property
    def state_dir(self) -> Path:
        return self.root / "var/lib/secprof"

    @property
    def config(self) -> Config:
        return load(self.config_path)

    def write(self, name: str, text: str) -> Path:
        path = self.profiles / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    def installed(self, name: str) -> Path:
        return self.seccomp_dir / f"{name}.json"

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(SECPROF), *args, "--config", str(self.config_path)],
            capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    root = tmp_path / "root"
    # A socket path must fit in sun_path (108 bytes): pytest's tmp_path can be longer.
    run = Path(tempfile.mkdtemp(prefix="sp-", dir="/tmp"))
    (root / "etc/secprof/profiles.d").mkdir(parents=True)
    config_path = root / "etc/secprof/config.toml"
    config_path.write_text(textwrap.dedent(f"""
        [agent]
        profiles_dir = "{root}/etc/secprof/profiles.d"
        state_dir = "{root}/var/lib/secprof"
        cache_dir = "{root}/var/cache/secprof"
        socket = "{run}/secprof/secprof.sock"

        [apparmor]
        profiles_dir = "{root}/etc/apparmor.d"
        securityfs = "{root}/sys/kernel/security/apparmor"

        [selinux]
        store_root = "{root}"

        [seccomp]  # last: tests append seccomp keys
        root = "{root}/var/lib/kubelet/seccomp"
        """))
    yield Host(root=root, config_path=config_path, run=run)
    shutil.rmtree(run, ignore_errors=True)


def seccomp_doc(name: str, body: str, *, api: str = "v1") -> str:
    """A SeccompProfile document with ``body`` (YAML, already indented for spec) as its spec."""
    return (
        f"apiVersion: security-profiles-operator.x-k8s.io/{api}\n"
        "kind: SeccompProfile\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"
    )


@pytest.fixture(scope="session")
def sigstore() -> FakeSigstore:
    """A throwaway Sigstore (CA, CT log, Rekor-like log), keys made for this run only."""
    return FakeSigstore(name="fake")


@pytest.fixture(scope="session")
def foreign() -> FakeSigstore:
    """Another instance: same identity and issuer names, other keys."""
    return FakeSigstore(name="foreign")
