"""Legacy cosign ``.sig`` layers: what passes, and every refusal with its own code."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import VerificationError
from agent.oci.signatures import Keyless, NoVerify, PublicKeys, TrustRoot, verify_legacy
from agent.oci.signatures import legacy as fmt
from agent.oci.signatures.rekor import hashedrekord_body
from agent.publish.sign import sign_legacy_with_key
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.unit.signatures.conftest import DIGEST, OTHER_DIGEST, REPO, payload, public_pem


def check(layer: Any, policy: Any, **kw: Any) -> Any:
    return verify_legacy(
        layer.payload,
        layer.annotations,
        policy,
        expected_digest=kw.pop("digest", DIGEST),
        expected_repository=kw.pop("repository", REPO),
        **kw,
    )


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(VerificationError) as info:
        call()
    assert info.value.hint, "every refusal tells the operator what to do"
    return info.value.code


def with_annotations(layer: Any, **changes: str | None) -> Any:
    notes: dict[str, str] = dict(layer.annotations)
    for key, value in changes.items():
        name = getattr(fmt, key.upper())
        if value is None:
            notes.pop(name, None)
        else:
            notes[name] = value
    return fmt.LegacyLayer(media_type=layer.media_type, payload=layer.payload, annotations=notes)


def test_keyless_signature_verifies(sigstore: FakeSigstore, keyless: Keyless) -> None:
    verified = check(sigstore.legacy_keyless(payload()), keyless)
    assert (verified.identity, verified.issuer) == (IDENTITY, ISSUER)
    assert verified.format == "cosign-legacy"
    assert verified.digest == DIGEST
    assert verified.repository == REPO
    assert verified.key_fingerprint is None
    assert verified.tlog_log_id == sigstore.log.log_id.hex()
    assert verified.integrated_time is not None
    assert verified.policy_id == keyless.policy_id


def test_anchored_regexes_verify(sigstore: FakeSigstore) -> None:
    policy = Keyless(
        identity_regex=r"release-bot@example\.invalid",
        issuer_regex=r"https://issuer\.example\.(invalid|test)",
        trusted_root=sigstore.trusted_root,
    )
    assert check(sigstore.legacy_keyless(payload()), policy).identity == IDENTITY


def test_uri_identity_as_ci_signs(sigstore: FakeSigstore) -> None:
    workflow = "https://github.com/org/repo/.github/workflows/release.yaml@refs/tags/v1"
    layer = sigstore.legacy_keyless(payload(), identity=workflow)
    policy = Keyless(identity=workflow, issuer=ISSUER, trusted_root=sigstore.trusted_root)
    assert check(layer, policy).identity == workflow


def test_key_signature_without_log(
    signing_key: ec.EllipticCurvePrivateKey, keys: PublicKeys
) -> None:
    layer = sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO)
    verified = check(layer, keys)
    assert verified.key_fingerprint is not None
    assert verified.key_fingerprint.startswith("sha256:")
    assert verified.identity is None
    assert verified.tlog_index is None


def test_key_signature_with_log(
    sigstore: FakeSigstore, signing_key: ec.EllipticCurvePrivateKey, keys_tlog: PublicKeys
) -> None:
    layer = sigstore.log_key_signature(
        sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO), signing_key
    )
    verified = check(layer, keys_tlog)
    assert verified.tlog_log_id == sigstore.log.log_id.hex()
    assert verified.key_fingerprint is not None


def test_any_of_several_keys(signing_key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    policy = PublicKeys(keys=(public_pem(other), public_pem(signing_key)))
    assert check(sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO), policy)


def test_docker_hub_names_are_one_repository(sigstore: FakeSigstore, keyless: Keyless) -> None:
    layer = sigstore.legacy_keyless(payload(repository="index.docker.io/org/profiles"))
    assert check(layer, keyless, repository="docker.io/org/profiles:v1").repository == (
        "index.docker.io/org/profiles"
    )


# --- refusals ------------------------------------------------------------------------------------


def test_required_failure_classes_have_distinct_codes(
    sigstore: FakeSigstore, foreign: FakeSigstore, keyless: Keyless
) -> None:
    now = datetime.now(UTC)
    good = sigstore.legacy_keyless(payload())
    sset = json.loads(good.annotations[fmt.BUNDLE])
    sset["SignedEntryTimestamp"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    unanchored = Keyless(
        identity_regex=r"release-bot@example\.invalid",
        issuer=ISSUER,
        trusted_root=sigstore.trusted_root,
    )
    cases: dict[str, Callable[[], object]] = {
        "unsigned": lambda: check(
            fmt.LegacyLayer(media_type="", payload=payload(), annotations={}), keyless
        ),
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
            sigstore.legacy_keyless(payload(), identity="release-bot@example.invalid.evil.test"),
            unanchored,
        ),
        "foreign trust root": lambda: check(foreign.legacy_keyless(payload()), keyless),
        "expired at signing": lambda: check(
            sigstore.legacy_keyless(payload(), not_before=now - timedelta(minutes=30)), keyless
        ),
        "bad SET": lambda: check(with_annotations(good, bundle=json.dumps(sset)), keyless),
        "tampered payload": lambda: check(
            fmt.LegacyLayer(
                media_type=good.media_type,
                payload=payload(repository=REPO + "x"),
                annotations=good.annotations,
            ),
            keyless,
        ),
        "replayed digest": lambda: check(
            sigstore.legacy_keyless(payload(digest=OTHER_DIGEST)), keyless
        ),
        "other repository": lambda: check(
            sigstore.legacy_keyless(payload(repository="registry.invalid:5000/profiles/other")),
            keyless,
        ),
    }
    got = {name: refused(call) for name, call in cases.items()}
    assert got == {
        "unsigned": "signature-missing",
        "wrong identity": "identity-mismatch",
        "wrong issuer": "issuer-mismatch",
        "unanchored-only identity": "identity-mismatch",
        "foreign trust root": "certificate-untrusted",
        "expired at signing": "certificate-expired",
        "bad SET": "tlog-invalid",
        "tampered payload": "payload-tampered",
        "replayed digest": "digest-mismatch",
        "other repository": "repository-mismatch",
    }


def test_unanchored_issuer_regex_is_refused(sigstore: FakeSigstore) -> None:
    policy = Keyless(
        identity=IDENTITY,
        issuer_regex=r"https://issuer\.example\.invalid",
        trusted_root=sigstore.trusted_root,
    )
    layer = sigstore.legacy_keyless(payload(), issuer="https://issuer.example.invalid.evil.test")
    assert refused(lambda: check(layer, policy)) == "issuer-mismatch"


@pytest.mark.parametrize(
    ("cert", "code"),
    [({"sct": False}, "sct-invalid"), ({"code_signing": False}, "certificate-invalid")],
)
def test_certificate_profile(
    sigstore: FakeSigstore, keyless: Keyless, cert: dict[str, bool], code: str
) -> None:
    assert refused(lambda: check(sigstore.legacy_keyless(payload(), **cert), keyless)) == code


def test_keyless_needs_certificate_and_log(
    sigstore: FakeSigstore, keyless: Keyless, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    key_signed = sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO)
    assert refused(lambda: check(key_signed, keyless)) == "certificate-missing"
    unlogged = with_annotations(sigstore.legacy_keyless(payload()), bundle=None)
    assert refused(lambda: check(unlogged, keyless)) == "tlog-missing"


def test_log_entry_of_another_signature(sigstore: FakeSigstore, keyless: Keyless) -> None:
    first, second = sigstore.legacy_keyless(payload()), sigstore.legacy_keyless(payload())
    swapped = with_annotations(first, bundle=second.annotations[fmt.BUNDLE])
    assert refused(lambda: check(swapped, keyless)) == "tlog-inconsistent"


def test_integration_time_in_the_future(sigstore: FakeSigstore, keyless: Keyless) -> None:
    layer = sigstore.legacy_keyless(payload())
    assert refused(lambda: check(layer, keyless, now=datetime.now(UTC) - timedelta(hours=1))) == (
        "tlog-invalid"
    )


def test_signature_bytes_altered(sigstore: FakeSigstore, keyless: Keyless) -> None:
    layer = sigstore.legacy_keyless(payload())
    # A valid log entry for an altered signature: only the signature check can catch it.
    other_key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415

    bogus = other_key.sign(layer.payload, ec.ECDSA(hashes.SHA256()))
    cert_pem = layer.annotations[fmt.CERTIFICATE].encode()
    body = hashedrekord_body(
        sha256_hex=hashlib.sha256(layer.payload).hexdigest(),
        signature=bogus,
        public_key_pem=cert_pem,
    )
    entry, _ = sigstore.log.append(body, integrated_time=datetime.now(UTC))
    forged = fmt.build_layer(
        payload=layer.payload, signature=bogus, certificate_pem=cert_pem, entry=entry
    )
    assert refused(lambda: check(forged, keyless)) == "signature-invalid"


def test_no_verify_never_yields_a_record(sigstore: FakeSigstore) -> None:
    assert refused(lambda: check(sigstore.legacy_keyless(payload()), NoVerify())) == (
        "policy-unsupported"
    )


@pytest.mark.parametrize(
    ("annotations", "code"),
    [
        ({fmt.SIGNATURE: "not base64!"}, "signature-malformed"),
        (
            {fmt.SIGNATURE: "MEUC", fmt.CERTIFICATE: "-----BEGIN CERTIFICATE-----\nAA\n"},
            "signature-malformed",
        ),
        ({fmt.SIGNATURE: "MEUC", fmt.BUNDLE: "{}"}, "signature-malformed"),
        ({fmt.SIGNATURE: "A" * (fmt.MAX_ANNOTATION_BYTES + 4)}, "signature-malformed"),
        ({fmt.CERTIFICATE: "x"}, "signature-missing"),
    ],
)
def test_malformed_material(keyless: Keyless, annotations: Mapping[str, str], code: str) -> None:
    layer = fmt.LegacyLayer(media_type="", payload=payload(), annotations=annotations)
    assert refused(lambda: check(layer, keyless)) == code


def test_payload_that_is_not_a_claim(
    signing_key: ec.EllipticCurvePrivateKey, keys: PublicKeys
) -> None:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415

    for body in (b"[]", b'{"critical":{"type":"something else"}}', b"\xff"):
        layer = fmt.build_layer(
            payload=body, signature=signing_key.sign(body, ec.ECDSA(hashes.SHA256()))
        )
        assert refused(lambda layer=layer: check(layer, keys)) == "payload-invalid"


# --- key-based refusals ---------------------------------------------------------------------


def test_key_refusals(
    sigstore: FakeSigstore,
    signing_key: ec.EllipticCurvePrivateKey,
    keys: PublicKeys,
    keys_tlog: PublicKeys,
) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1())
    signed = sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO)
    logged = sigstore.log_key_signature(signed, signing_key)
    tampered = fmt.LegacyLayer(
        media_type=logged.media_type,
        payload=payload(repository=REPO + "x"),
        annotations=logged.annotations,
    )
    got = {
        "other key": refused(
            lambda: check(sign_legacy_with_key(stranger, digest=DIGEST, repository=REPO), keys)
        ),
        "tlog required, none": refused(lambda: check(signed, keys_tlog)),
        "tampered, no log": refused(lambda: check(tampered, keys)),
        "tampered, logged": refused(lambda: check(tampered, keys_tlog)),
        "replayed": refused(lambda: check(signed, keys, digest=OTHER_DIGEST)),
    }
    assert got == {
        "other key": "signature-invalid",
        "tlog required, none": "tlog-missing",
        "tampered, no log": "signature-invalid",
        "tampered, logged": "payload-tampered",
        "replayed": "digest-mismatch",
    }


def test_key_log_entry_names_another_key(
    sigstore: FakeSigstore, signing_key: ec.EllipticCurvePrivateKey, keys_tlog: PublicKeys
) -> None:
    signed = sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO)
    signature = base64.b64decode(signed.annotations[fmt.SIGNATURE])
    stranger = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body = hashedrekord_body(
        sha256_hex=hashlib.sha256(signed.payload).hexdigest(),
        signature=signature,
        public_key_pem=stranger,
    )
    entry, _ = sigstore.log.append(body, integrated_time=datetime.now(UTC))
    layer = fmt.build_layer(payload=signed.payload, signature=signature, entry=entry)
    assert refused(lambda: check(layer, keys_tlog)) == "tlog-inconsistent"


def test_key_log_from_untrusted_log(
    foreign: FakeSigstore, signing_key: ec.EllipticCurvePrivateKey, keys_tlog: PublicKeys
) -> None:
    layer = foreign.log_key_signature(
        sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO), signing_key
    )
    assert refused(lambda: check(layer, keys_tlog)) == "tlog-invalid"


def test_log_key_not_yet_valid(
    sigstore: FakeSigstore, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    doc = json.loads(sigstore.trusted_root_json())
    later = datetime.now(UTC) + timedelta(days=1)
    doc["tlogs"][0]["publicKey"]["validFor"]["start"] = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    policy = PublicKeys(
        keys=(public_pem(signing_key),),
        require_tlog=True,
        trusted_root=TrustRoot.from_bytes(json.dumps(doc).encode()),
    )
    layer = sigstore.log_key_signature(
        sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO), signing_key
    )
    assert refused(lambda: check(layer, policy)) == "tlog-invalid"


def test_absurd_integration_time(
    sigstore: FakeSigstore, keys_tlog: PublicKeys, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    layer = sigstore.log_key_signature(
        sign_legacy_with_key(signing_key, digest=DIGEST, repository=REPO), signing_key
    )
    doc = json.loads(layer.annotations[fmt.BUNDLE])
    doc["Payload"]["integratedTime"] = 10**18
    assert refused(lambda: check(with_annotations(layer, bundle=json.dumps(doc)), keys_tlog)) == (
        "tlog-invalid"
    )


def _root_with(sigstore: FakeSigstore, change: Callable[[dict[str, Any]], None]) -> TrustRoot:
    doc = json.loads(sigstore.trusted_root_json())
    change(doc)
    return TrustRoot.from_bytes(json.dumps(doc).encode())


def test_ca_outside_its_window_and_unknown_ct_log(
    sigstore: FakeSigstore, foreign: FakeSigstore
) -> None:
    layer = sigstore.legacy_keyless(payload())

    def retire_ca(doc: dict[str, Any]) -> None:
        doc["certificateAuthorities"][0]["validFor"]["end"] = "2001-01-01T00:00:00Z"

    def foreign_ct(doc: dict[str, Any]) -> None:
        doc["ctlogs"] = json.loads(foreign.trusted_root_json())["ctlogs"]

    got = {
        name: refused(
            lambda root=root: check(
                layer, Keyless(identity=IDENTITY, issuer=ISSUER, trusted_root=root)
            )
        )
        for name, root in (
            ("retired CA", _root_with(sigstore, retire_ca)),
            ("foreign CT log", _root_with(sigstore, foreign_ct)),
        )
    }
    assert got == {"retired CA": "certificate-untrusted", "foreign CT log": "sct-invalid"}


def test_conflicting_issuer_extensions(sigstore: FakeSigstore, keyless: Keyless) -> None:
    layer = sigstore.legacy_keyless(payload(), raw_issuer="https://other.invalid")
    assert refused(lambda: check(layer, keyless)) == "certificate-invalid"


def test_log_entry_with_another_certificate(sigstore: FakeSigstore, keyless: Keyless) -> None:
    layer, other = sigstore.legacy_keyless(payload()), sigstore.legacy_keyless(payload())
    signature = base64.b64decode(layer.annotations[fmt.SIGNATURE])
    body = hashedrekord_body(
        sha256_hex=hashlib.sha256(layer.payload).hexdigest(),
        signature=signature,
        public_key_pem=other.annotations[fmt.CERTIFICATE].encode(),
    )
    entry, _ = sigstore.log.append(body, integrated_time=datetime.now(UTC))
    swapped = with_annotations(
        layer,
        bundle=fmt.build_layer(payload=layer.payload, signature=signature, entry=entry).annotations[
            fmt.BUNDLE
        ],
    )
    assert refused(lambda: check(swapped, keyless)) == "tlog-inconsistent"
