"""Choosing among the signatures found for an artifact."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import VerificationError
from agent.oci.signatures import Keyless
from agent.oci.signatures.discovery import (
    BundleCandidate,
    LegacyCandidate,
    legacy_tag,
    referrers_tag,
    verify_first,
)
from agent.oci.signatures.payload import intoto_statement
from agent.publish.sign import sign_bundle_with_key
from tests.support.fakesigstore import FakeSigstore
from tests.unit.signatures.conftest import DIGEST, OTHER_DIGEST, REPO, payload


def test_tags() -> None:
    assert legacy_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
    assert referrers_tag(DIGEST) == "sha256-" + "ab" * 32


def test_first_good_candidate_wins(sigstore: FakeSigstore, keyless: Keyless) -> None:
    replayed = sigstore.legacy_keyless(payload(digest=OTHER_DIGEST))
    good = sigstore.bundle_keyless(intoto_statement(digest=DIGEST))
    found = [
        LegacyCandidate(
            payload=replayed.payload, annotations=replayed.annotations, source="sig[0]"
        ),
        BundleCandidate(bundle=good, source="referrer sha256:1"),
    ]
    verified = verify_first(found, keyless, expected_digest=DIGEST, expected_repository=REPO)
    assert verified.format == "sigstore-bundle"


def test_nothing_found_or_nothing_good(sigstore: FakeSigstore, keyless: Keyless) -> None:
    with pytest.raises(VerificationError) as info:
        verify_first([], keyless, expected_digest=DIGEST, expected_repository=REPO)
    assert info.value.code == "signature-missing"
    replayed = sigstore.legacy_keyless(payload(digest=OTHER_DIGEST))
    key_signed = sign_bundle_with_key(
        ec.generate_private_key(ec.SECP256R1()), digest=DIGEST, repository=REPO
    )
    found = [
        LegacyCandidate(
            payload=replayed.payload, annotations=replayed.annotations, source="sig[0]"
        ),
        BundleCandidate(bundle=key_signed, source="referrer sha256:2"),
    ]
    with pytest.raises(VerificationError) as info:
        verify_first(found, keyless, expected_digest=DIGEST, expected_repository=REPO)
    assert info.value.code == "digest-mismatch"
    assert "sig[0]: digest-mismatch" in info.value.message
    assert "referrer sha256:2: certificate-missing" in info.value.message


NESTED = "[" * 30_000 + "]" * 30_000  # within the size caps, deeper than json's recursion


def test_deeply_nested_signature_json_is_that_signatures_refusal(
        sigstore: FakeSigstore, keyless: Keyless) -> None:
    """A bundle, or a legacy layer's cosign bundle annotation, nested past Python's parser:
    a refusal with a code (it was a RecursionError that ended the whole apply)."""
    layer = sigstore.legacy_keyless(payload(digest=DIGEST))
    found = [
        LegacyCandidate(payload=layer.payload, source="sig[0]",
                        annotations={**layer.annotations, "dev.sigstore.cosign/bundle": NESTED}),
        BundleCandidate(bundle=NESTED.encode(), source="referrer sha256:1"),
    ]
    with pytest.raises(VerificationError) as info:
        verify_first(found, keyless, expected_digest=DIGEST, expected_repository=REPO)
    assert info.value.code == "signature-malformed"
    assert "sig[0]: signature-malformed" in info.value.message
    assert "referrer sha256:1: signature-malformed" in info.value.message
