"""Signing: what we push verifies; keyless signing against fake Fulcio/Rekor on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import SigningError, VerificationError
from agent.oci.signatures import Keyless, PublicKeys, legacy, verify_bundle, verify_legacy
from agent.oci.signatures.payload import SIMPLE_SIGNING_MEDIA_TYPE
from agent.publish.keys import encrypted_key_pem, load_signing_key
from agent.publish.sign import (
    KeylessConfig,
    sign_bundle_keyless,
    sign_bundle_with_key,
    sign_legacy_keyless,
    sign_legacy_with_key,
)
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.support.fakesigstore_http import FakeServices
from tests.unit.signatures.conftest import DIGEST, REPO, public_pem


@pytest.fixture(scope="module")
def services(sigstore: FakeSigstore) -> Iterator[FakeServices]:
    with FakeServices(sigstore) as running:
        yield running


@pytest.fixture(scope="module")
def config(services: FakeServices, sigstore: FakeSigstore) -> KeylessConfig:
    return KeylessConfig(
        fulcio_url=services.url, rekor_url=services.url, trusted_root=sigstore.trusted_root
    )


def test_key_signed_layer_from_an_encrypted_cosign_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    loaded = load_signing_key(encrypted_key_pem(key, b"pw"), b"pw")
    layer = sign_legacy_with_key(loaded, digest=DIGEST, repository=REPO)
    assert layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE
    assert set(layer.annotations) == {legacy.SIGNATURE}
    verified = verify_legacy(
        layer.payload,
        layer.annotations,
        PublicKeys(keys=(public_pem(key),)),
        expected_digest=DIGEST,
        expected_repository=REPO,
    )
    assert verified.repository == REPO


def test_key_signed_bundle() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    bundle = sign_bundle_with_key(key, digest=DIGEST, repository=REPO)
    verified = verify_bundle(
        bundle,
        PublicKeys(keys=(public_pem(key),)),
        expected_digest=DIGEST,
        expected_repository=REPO,
    )
    assert verified.repository == REPO


def test_keyless_bundle_signed_through_fulcio_and_rekor(
    services: FakeServices, config: KeylessConfig, keyless: Keyless
) -> None:
    bundle = sign_bundle_keyless(
        digest=DIGEST, repository=REPO, identity_token=services.token(), config=config
    )
    verified = verify_bundle(bundle, keyless, expected_digest=DIGEST, expected_repository=REPO)
    assert (verified.identity, verified.issuer, verified.repository) == (IDENTITY, ISSUER, REPO)
    assert services.requests[-2:] == ["/api/v2/signingCert", "/api/v1/log/entries"]


def test_keyless_legacy_layer_signed_through_fulcio_and_rekor(
    services: FakeServices, config: KeylessConfig, keyless: Keyless
) -> None:
    layer = sign_legacy_keyless(
        digest=DIGEST, repository=REPO, identity_token=services.token(), config=config
    )
    assert set(layer.annotations) == {
        legacy.SIGNATURE,
        legacy.CERTIFICATE,
        legacy.CHAIN,
        legacy.BUNDLE,
    }
    verified = verify_legacy(
        layer.payload, layer.annotations, keyless, expected_digest=DIGEST, expected_repository=REPO
    )
    assert verified.identity == IDENTITY
    assert verified.tlog_index is not None


def test_keyless_identity_is_the_tokens(
    services: FakeServices, config: KeylessConfig, keyless: Keyless
) -> None:
    token = services.token(identity="someone-else@example.invalid")
    layer = sign_legacy_keyless(digest=DIGEST, repository=REPO, identity_token=token, config=config)
    with pytest.raises(VerificationError) as info:
        verify_legacy(
            layer.payload,
            layer.annotations,
            keyless,
            expected_digest=DIGEST,
            expected_repository=REPO,
        )
    assert info.value.code == "identity-mismatch"


@pytest.mark.parametrize("bad", ["forged", "expired", "garbage"])
def test_keyless_signing_failures(services: FakeServices, config: KeylessConfig, bad: str) -> None:
    token = {
        "forged": services.token(key=ec.generate_private_key(ec.SECP256R1())),
        "expired": services.token(lifetime=-60),
        "garbage": "not-a-jwt",
    }[bad]
    with pytest.raises(SigningError) as info:
        sign_bundle_keyless(digest=DIGEST, repository=REPO, identity_token=token, config=config)
    assert info.value.code == "signing-failed"
