"""Sigstore bundles (cosign v3 image signatures): keyless through sigstore-python, keys without."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import VerificationError
from agent.oci.signatures import Keyless, NoVerify, PublicKeys, verify_bundle
from agent.oci.signatures.payload import INTOTO_PAYLOAD_TYPE, intoto_statement, pae
from agent.publish.sign import sign_bundle_with_key
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.unit.signatures.conftest import DIGEST, OTHER_DIGEST, REPO, public_pem


def check(bundle: bytes, policy: Any, **kw: Any) -> Any:
    return verify_bundle(
        bundle,
        policy,
        expected_digest=kw.pop("digest", DIGEST),
        expected_repository=kw.pop("repository", REPO),
        **kw,
    )


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    return info.value.code


def edit(bundle: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(bundle)
    change(doc)
    return json.dumps(doc).encode()


def test_keyless_bundle_verifies(sigstore: FakeSigstore, keyless: Keyless) -> None:
    verified = check(sigstore.bundle_keyless(intoto_statement(digest=DIGEST)), keyless)
    assert (verified.format, verified.identity, verified.issuer) == (
        "sigstore-bundle",
        IDENTITY,
        ISSUER,
    )
    assert verified.repository is None, "cosign's statement names no repository"
    assert verified.tlog_log_id == sigstore.log.log_id.hex()


def test_named_subject_binds_the_repository(sigstore: FakeSigstore, keyless: Keyless) -> None:
    bundle = sigstore.bundle_keyless(intoto_statement(digest=DIGEST, name=REPO))
    assert check(bundle, keyless).repository == REPO
    other = sigstore.bundle_keyless(intoto_statement(digest=DIGEST, name=REPO + "-other"))
    assert refused(lambda: check(other, keyless)) == "repository-mismatch"


def test_key_bundle_without_log(signing_key: ec.EllipticCurvePrivateKey, keys: PublicKeys) -> None:
    verified = check(sign_bundle_with_key(signing_key, digest=DIGEST, repository=REPO), keys)
    assert verified.key_fingerprint is not None
    assert verified.tlog_index is None
    assert verified.repository == REPO


def test_key_bundle_with_log(
    sigstore: FakeSigstore, signing_key: ec.EllipticCurvePrivateKey, keys_tlog: PublicKeys
) -> None:
    verified = check(
        sigstore.bundle_with_key(intoto_statement(digest=DIGEST), signing_key), keys_tlog
    )
    assert verified.tlog_log_id == sigstore.log.log_id.hex()


def test_required_failure_classes(
    sigstore: FakeSigstore, foreign: FakeSigstore, keyless: Keyless
) -> None:
    now = datetime.now(UTC)
    good = sigstore.bundle_keyless(intoto_statement(digest=DIGEST))

    def bad_set(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"][
            "signedEntryTimestamp"
        ] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()

    def tamper(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = base64.b64encode(
            intoto_statement(digest=OTHER_DIGEST)
        ).decode()

    cases: dict[str, Callable[[], object]] = {
        "wrong identity": lambda: check(
            good,
            Keyless(
                identity="mallory@example.invalid",
                issuer=ISSUER,
                trusted_root=sigstore.trusted_root,
            ),
        ),
        "wrong issuer": lambda: check(
            good,
            Keyless(
                identity=IDENTITY,
                issuer="https://other.invalid",
                trusted_root=sigstore.trusted_root,
            ),
        ),
        "unanchored-only identity": lambda: check(
            sigstore.bundle_keyless(
                intoto_statement(digest=DIGEST), identity="xrelease-bot@example.invalid"
            ),
            Keyless(
                identity_regex=r"release-bot@example\.invalid",
                issuer=ISSUER,
                trusted_root=sigstore.trusted_root,
            ),
        ),
        "foreign trust root": lambda: check(
            foreign.bundle_keyless(intoto_statement(digest=DIGEST)), keyless
        ),
        "expired at signing": lambda: check(
            sigstore.bundle_keyless(
                intoto_statement(digest=DIGEST), not_before=now - timedelta(minutes=30)
            ),
            keyless,
        ),
        "bad SET": lambda: check(edit(good, bad_set), keyless),
        "tampered payload": lambda: check(edit(good, tamper), keyless),
        "replayed digest": lambda: check(
            sigstore.bundle_keyless(intoto_statement(digest=OTHER_DIGEST)), keyless
        ),
        "no SCT": lambda: check(
            sigstore.bundle_keyless(intoto_statement(digest=DIGEST), sct=False), keyless
        ),
        "not code signing": lambda: check(
            sigstore.bundle_keyless(intoto_statement(digest=DIGEST), code_signing=False), keyless
        ),
    }
    got = {name: refused(call) for name, call in cases.items()}
    assert got == {
        "wrong identity": "identity-mismatch",
        "wrong issuer": "issuer-mismatch",
        "unanchored-only identity": "identity-mismatch",
        "foreign trust root": "certificate-untrusted",
        "expired at signing": "certificate-expired",
        "bad SET": "tlog-invalid",
        "tampered payload": "payload-tampered",
        "replayed digest": "digest-mismatch",
        "no SCT": "sct-invalid",
        "not code signing": "certificate-invalid",
    }


def test_altered_dsse_signature(sigstore: FakeSigstore, keyless: Keyless) -> None:
    good = sigstore.bundle_keyless(intoto_statement(digest=DIGEST))
    bogus = ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(hashes.SHA256()))

    def swap(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bogus).decode()

    assert refused(lambda: check(edit(good, swap), keyless)) in {"signature-invalid"}


def test_not_image_signatures(sigstore: FakeSigstore, keyless: Keyless) -> None:
    attestation = intoto_statement(digest=DIGEST).replace(
        b"https://sigstore.dev/cosign/sign/v1", b"https://slsa.dev/provenance/v1"
    )
    assert (
        refused(lambda: check(sigstore.bundle_keyless(attestation), keyless)) == "payload-invalid"
    )

    def message_signature(doc: dict[str, Any]) -> None:
        del doc["dsseEnvelope"]
        doc["messageSignature"] = {"signature": "MEUC"}

    good = sigstore.bundle_keyless(intoto_statement(digest=DIGEST))
    assert refused(lambda: check(edit(good, message_signature), keyless)) == "policy-unsupported"


def test_keyless_policy_on_key_bundle(
    signing_key: ec.EllipticCurvePrivateKey, keyless: Keyless
) -> None:
    bundle = sign_bundle_with_key(signing_key, digest=DIGEST, repository=REPO)
    assert refused(lambda: check(bundle, keyless)) == "certificate-missing"


@pytest.mark.parametrize("data", [b"", b"{}", b"[1]", b'{"mediaType":"x"}', b"\x00" * 300_000])
def test_malformed_bundles(keyless: Keyless, keys: PublicKeys, data: bytes) -> None:
    assert refused(lambda: check(data, keyless)) == "signature-malformed"
    assert refused(lambda: check(data, keys)) == "signature-malformed"


def test_no_verify(sigstore: FakeSigstore) -> None:
    bundle = sigstore.bundle_keyless(intoto_statement(digest=DIGEST))
    assert refused(lambda: check(bundle, NoVerify())) == "policy-unsupported"


def test_key_bundle_refusals(
    sigstore: FakeSigstore,
    foreign: FakeSigstore,
    signing_key: ec.EllipticCurvePrivateKey,
    keys: PublicKeys,
    keys_tlog: PublicKeys,
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    unlogged = sign_bundle_with_key(signing_key, digest=DIGEST, repository=REPO)
    logged = sigstore.bundle_with_key(intoto_statement(digest=DIGEST), signing_key)

    def tamper(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = base64.b64encode(
            intoto_statement(digest=OTHER_DIGEST)
        ).decode()

    def drop_set(doc: dict[str, Any]) -> None:  # what a Rekor v2 entry looks like
        del doc["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]

    got = {
        "other key": refused(
            lambda: check(sign_bundle_with_key(stranger, digest=DIGEST, repository=REPO), keys)
        ),
        "tlog required, none": refused(lambda: check(unlogged, keys_tlog)),
        "tampered, no log": refused(lambda: check(edit(unlogged, tamper), keys)),
        "tampered, logged": refused(lambda: check(edit(logged, tamper), keys_tlog)),
        "foreign log": refused(
            lambda: check(
                foreign.bundle_with_key(intoto_statement(digest=DIGEST), signing_key), keys_tlog
            )
        ),
        "entry without SET": refused(lambda: check(edit(logged, drop_set), keys_tlog)),
        "replayed": refused(lambda: check(unlogged, keys, digest=OTHER_DIGEST)),
    }
    assert got == {
        "other key": "signature-invalid",
        "tlog required, none": "tlog-missing",
        "tampered, no log": "signature-invalid",
        "tampered, logged": "payload-tampered",
        "foreign log": "tlog-invalid",
        "entry without SET": "policy-unsupported",
        "replayed": "digest-mismatch",
    }


def test_key_bundle_with_two_signatures(
    signing_key: ec.EllipticCurvePrivateKey, keys: PublicKeys
) -> None:
    bundle = sign_bundle_with_key(signing_key, digest=DIGEST, repository=REPO)
    sig = signing_key.sign(pae(INTOTO_PAYLOAD_TYPE, b"{}"), ec.ECDSA(hashes.SHA256()))

    def twice(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["signatures"].append({"sig": base64.b64encode(sig).decode()})

    assert refused(lambda: check(edit(bundle, twice), keys)) == "signature-malformed"


def test_key_policy_ignores_unrelated_keys(signing_key: ec.EllipticCurvePrivateKey) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    policy = PublicKeys(keys=(public_pem(stranger), public_pem(signing_key)))
    bundle = sign_bundle_with_key(signing_key, digest=DIGEST, repository=REPO)
    assert (
        check(bundle, policy).key_fingerprint
        == check(bundle, PublicKeys(keys=(public_pem(signing_key),))).key_fingerprint
    )


def test_log_entry_of_another_signature(sigstore: FakeSigstore, keyless: Keyless) -> None:
    statement = intoto_statement(digest=DIGEST)
    first, second = sigstore.bundle_keyless(statement), sigstore.bundle_keyless(statement)
    entries = json.loads(second)["verificationMaterial"]["tlogEntries"]

    def swap(doc: dict[str, Any]) -> None:
        doc["verificationMaterial"]["tlogEntries"] = entries

    assert refused(lambda: check(edit(first, swap), keyless)) == "tlog-inconsistent"


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("failed to verify SCT on signing certificate: SCT verify failed", "sct-invalid"),
        ("invalid signing cert: expired at time of signing, time via x", "certificate-expired"),
        ("Extended usage does not contain `code signing`", "certificate-invalid"),
        ("log entry payload hash does not match bundle", "payload-tampered"),
        ("log entry signatures do not match bundle", "tlog-inconsistent"),
        ("transparency log entry is inconsistent with other materials", "tlog-inconsistent"),
        ("invalid log entry: SET: invalid inclusion promise", "tlog-invalid"),
        ("not enough sources of verified time", "tlog-invalid"),
        ("DSSE: invalid signature", "signature-invalid"),
        ("something sigstore says one day", "signature-invalid"),
    ],
)
def test_sigstore_messages_map_to_codes(message: str, code: str) -> None:
    from agent.oci.signatures._sigstore import _classify  # noqa: PLC0415

    assert _classify(message) == code
