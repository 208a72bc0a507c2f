"""Fixtures with a real registry: Debian's docker-registry on a free 127.0.0.1 port, one per
test (it is up in ~50 ms), stopped by PID. Skipped where the binary is not installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def sigstore() -> FakeSigstore:
    """A throwaway Sigstore (CA, CT log, Rekor-like log), keys made for this run only."""
    return FakeSigstore(name="fake")


@pytest.fixture(scope="session")
def foreign() -> FakeSigstore:
    """Another instance: same identity and issuer names, other keys."""
    return FakeSigstore(name="foreign")


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
