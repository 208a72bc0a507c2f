"""Integration fixtures.

* A real registry: Debian's docker-registry on a free 127.0.0.1 port, one per test (it is up in
  ~50 ms), stopped by PID; skipped where the binary is not installed.
* A real status server on a real Unix socket in a short private tmp dir, driven by
  :class:`~tests.support.control.MemoryControl`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.api.client import Client
from agent.api.protocol import Limits
from agent.api.server import ApiServer
from tests.support.control import MemoryControl, clock, starting
from tests.support.fakesigstore import FakeSigstore
from tests.support.fakesigstore_http import FakeServices
from tests.support.host import Host
from tests.support.registry import RegistryServer, available, start_registry
from tests.support.signed import SignedHost

USERS = {"alice": "wonderland"}


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    if not available():
        pytest.skip("docker-registry (CNCF Distribution) is not installed")
    server = start_registry(tmp_path / "registry")
    yield server
    server.stop()


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A registry that wants htpasswd (Basic) credentials: alice / wonderland."""
    if not available():
        pytest.skip("docker-registry (CNCF Distribution) is not installed")
    server = start_registry(tmp_path / "auth-registry", users=USERS)
    yield server
    server.stop()


@pytest.fixture
def oci_host(tmp_path: Path, registry: RegistryServer) -> Host:
    """A host whose config reaches ``registry`` over HTTP and trusts its profiles/ prefix."""
    machine = Host(tmp_path / "host")
    machine.root.mkdir()
    machine.write_config(insecure=[registry.host], trust=[f"{registry.host}/profiles"])
    return machine


GROUP = "nogroup"  # exists on Debian; its gid is what a group-member test process joins
FAST = Limits(read_timeout_s=0.5, write_timeout_s=0.5)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # pytest's tmp_path can be too long for sun_path (108 bytes); 0755 lets a test child that
    # dropped root reach the runtime directory, whose own mode is then the only gate.
    root = Path(tempfile.mkdtemp(prefix="sp-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def socket_path(short_tmp: Path) -> Path:
    return short_tmp / "run" / "secprof.sock"


@pytest.fixture
def control() -> MemoryControl:
    return MemoryControl(starting())


@pytest.fixture
def server_clock() -> Callable[[], float]:
    """The server's "now": fixed, to match the fixed times of the support snapshots."""
    return clock


@pytest.fixture
def server(socket_path: Path, control: MemoryControl,
           server_clock: Callable[[], float]) -> Iterator[ApiServer]:
    srv = ApiServer(socket_path, GROUP, control, limits=FAST, clock=server_clock)
    srv.start()
    yield srv
    srv.close()


@pytest.fixture
def client(server: ApiServer) -> Client:
    return Client(server.path, group=GROUP, timeout_s=5.0)


@pytest.fixture(scope="session")
def services(sigstore: FakeSigstore) -> Iterator[FakeServices]:
    """The fake Sigstore's Fulcio, Rekor and OIDC issuer over HTTP on 127.0.0.1."""
    with FakeServices(sigstore) as running:
        yield running


@pytest.fixture
def signed_host(oci_host: Host, registry: RegistryServer, sigstore: FakeSigstore,
                services: FakeServices) -> SignedHost:
    """The registry-connected host, its signing pointed at the fake Sigstore, with no trust
    entry yet (tests write the one they need with :meth:`SignedHost.trust`)."""
    machine = SignedHost(oci_host.root, registry=registry, sigstore=sigstore,
                         services=services)
    machine.trust("")
    return machine
