"""Trust policies, their ids, trusted roots and the verification record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import ConfigError, VerificationError
from agent.oci.signatures import Keyless, NoVerify, PublicKeys, TrustRoot, Verified
from agent.oci.signatures.trustroot import production_root_path
from tests.support.fakesigstore import FakeSigstore
from tests.unit.signatures.conftest import public_pem


@pytest.mark.parametrize(
    "settings",
    [
        {"identity": "a"},
        {"issuer": "b"},
        {"identity": "a", "identity_regex": "a", "issuer": "b"},
        {"identity": "", "issuer": "b"},
        {"identity_regex": "(", "issuer": "b"},
    ],
)
def test_keyless_needs_exactly_one_identity_and_issuer(settings: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Keyless(**settings)


@pytest.mark.parametrize("keys", [(), (b"not a key",), (b"-----BEGIN PUBLIC KEY-----\nAA\n",)])
def test_public_keys_must_parse(keys: tuple[bytes, ...]) -> None:
    with pytest.raises(ConfigError):
        PublicKeys(keys=keys)


def test_policy_ids_follow_settings_and_material(
    sigstore: FakeSigstore, foreign: FakeSigstore
) -> None:
    base = Keyless(identity="a", issuer="b", trusted_root=sigstore.trusted_root)
    same = Keyless(identity="a", issuer="b", trusted_root=sigstore.trusted_root)
    variants = [
        Keyless(identity="a", issuer="c", trusted_root=sigstore.trusted_root),
        Keyless(identity_regex="a", issuer="b", trusted_root=sigstore.trusted_root),
        Keyless(identity="a", issuer="b", trusted_root=foreign.trusted_root),
        Keyless(identity="a", issuer="b"),
        NoVerify(),
    ]
    assert base.policy_id == same.policy_id
    assert len({base.policy_id, *(v.policy_id for v in variants)}) == 1 + len(variants)
    one, two = (public_pem(ec.generate_private_key(ec.SECP256R1())) for _ in range(2))
    assert PublicKeys(keys=(one, two)).policy_id == PublicKeys(keys=(two, one)).policy_id
    assert PublicKeys(keys=(one,)).policy_id != PublicKeys(keys=(two,)).policy_id
    assert PublicKeys(keys=(one,)).policy_id != PublicKeys(keys=(one,), require_tlog=True).policy_id


def test_production_root_comes_from_the_wheel() -> None:
    root = TrustRoot.production()
    assert production_root_path().is_file()
    assert any(log.base_url == "https://rekor.sigstore.dev" for log in root.tlogs)
    assert len(root.authorities) == 2
    assert len(root.ctlogs) == 2
    assert Keyless(identity="a", issuer="b").root == root


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(mediaType="application/json"),
        lambda d: d["tlogs"][0]["publicKey"]["validFor"].pop("start"),
        lambda d: d["tlogs"][0]["publicKey"].update(rawBytes="!!"),
        lambda d: d["certificateAuthorities"][0]["certChain"].update(certificates=[]),
        lambda d: d["ctlogs"][0]["publicKey"].update(keyDetails="PKIX_ED25519"),
    ],
)
def test_malformed_trusted_roots(sigstore: FakeSigstore, change: object) -> None:
    doc = json.loads(sigstore.trusted_root_json())
    change(doc)  # type: ignore[operator]
    with pytest.raises(VerificationError) as info:
        TrustRoot.from_bytes(json.dumps(doc).encode())
    assert info.value.code == "trust-root-invalid"


def test_unknown_log_key_types_are_skipped(sigstore: FakeSigstore) -> None:
    doc = json.loads(sigstore.trusted_root_json())
    doc["tlogs"].append(
        {
            **doc["tlogs"][0],
            "publicKey": {**doc["tlogs"][0]["publicKey"], "keyDetails": "LMS_SHA256"},
        }
    )
    assert len(TrustRoot.from_bytes(json.dumps(doc).encode()).tlogs) == 1


def test_unreadable_root_file(tmp_path: object) -> None:
    from pathlib import Path  # noqa: PLC0415

    with pytest.raises(VerificationError) as info:
        TrustRoot.from_file(Path(str(tmp_path)) / "missing.json")
    assert info.value.code == "trust-root-invalid"


def test_verified_record_round_trips() -> None:
    record = Verified(
        policy_id="p",
        format="cosign-legacy",
        digest="sha256:" + "0" * 64,
        repository="r",
        identity="i",
        issuer="s",
        key_fingerprint=None,
        tlog_log_id="ab",
        tlog_index=3,
        integrated_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert Verified.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert record.signer == "i (s)"


def test_public_keys_from_files(tmp_path: object) -> None:
    from pathlib import Path  # noqa: PLC0415

    base = Path(str(tmp_path))
    pem = public_pem(ec.generate_private_key(ec.SECP256R1()))
    (base / "release.pub").write_bytes(pem)
    assert PublicKeys.from_files([base / "release.pub"]).keys == (pem,)
    with pytest.raises(ConfigError):
        PublicKeys.from_files([base / "missing.pub"])
