"""Fixtures: two throwaway Sigstore instances per session and the policies that trust one."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.oci.signatures import Keyless, PublicKeys
from agent.oci.signatures.payload import simple_signing_payload
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore

DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
REPO = "registry.invalid:5000/profiles/runc"


@pytest.fixture(scope="session")
def keyless(sigstore: FakeSigstore) -> Keyless:
    return Keyless(identity=IDENTITY, issuer=ISSUER, trusted_root=sigstore.trusted_root)


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="session")
def keys(signing_key: ec.EllipticCurvePrivateKey, sigstore: FakeSigstore) -> PublicKeys:
    return PublicKeys(keys=(public_pem(signing_key),), trusted_root=sigstore.trusted_root)


@pytest.fixture(scope="session")
def keys_tlog(signing_key: ec.EllipticCurvePrivateKey, sigstore: FakeSigstore) -> PublicKeys:
    return PublicKeys(
        keys=(public_pem(signing_key),), require_tlog=True, trusted_root=sigstore.trusted_root
    )


def payload(digest: str = DIGEST, repository: str = REPO) -> bytes:
    return simple_signing_payload(docker_reference=repository, digest=digest)
