"""The Verifier: discovery + verification once, then the record and its material from disk,
verified again; records keyed by policy, repository and digest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.clock import FakeClock
from agent.errors import VerificationError
from agent.oci.cache import OciCache
from agent.oci.reference import parse, parse_scope
from agent.oci.signatures.payload import intoto_statement, simple_signing_payload
from agent.oci.trust import Document, KeylessTerms, TrustPolicy, TrustStore
from agent.oci.verification import Verifier
from agent.publish.attach import publish_bundle, publish_legacy
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.unit.oci_fakes import SignatureStore

REF = parse("oci://r:5000/p/base:v1")
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def sigstore() -> FakeSigstore:
    return FakeSigstore(name="unit")


def keyless(sigstore: FakeSigstore, identity: str = IDENTITY) -> TrustPolicy:
    root = Document(path=Path("root.json"), data=sigstore.trusted_root_json())
    return TrustPolicy(scope=parse_scope("r:5000/p"), label="[[trust]][1]",
                       terms=KeylessTerms(identity=identity, issuer=ISSUER, trusted_root=root))


def verifier(tmp_path: Path, policy: TrustPolicy) -> Verifier:
    clock = FakeClock(time.time())
    cache = OciCache(tmp_path / "oci", max_entries=10, max_bytes=1 << 20, clock=clock)
    return Verifier(trust=TrustStore([policy]), cache=cache, clock=clock)


def signed_store(sigstore: FakeSigstore, *, bundle: bool = False) -> SignatureStore:
    store = SignatureStore()
    if bundle:
        publish_bundle(store, REF, subject=DIGEST, subject_size=1,
                       bundle=sigstore.bundle_keyless(intoto_statement(digest=DIGEST,
                                                                       name=REF.name)),
                       created="2026-01-01T00:00:00Z")
    else:
        publish_legacy(store, REF, DIGEST, sigstore.legacy_keyless(
            simple_signing_payload(docker_reference=REF.name, digest=DIGEST)))
    return store


@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_verified_once_then_from_disk_in_a_new_process(
        tmp_path: Path, sigstore: FakeSigstore, bundle: bool) -> None:
    policy = keyless(sigstore)
    store = signed_store(sigstore, bundle=bundle)
    verdict = verifier(tmp_path, policy).verify(policy, REF, DIGEST, store)
    assert verdict.signer == f"{IDENTITY} ({ISSUER})"
    assert verdict.record is not None
    assert verdict.record.format == ("sigstore-bundle" if bundle else "cosign-legacy")

    store.down = True  # a restarted host, registry unreachable
    again = verifier(tmp_path, policy)
    assert again.cached(policy, REF, DIGEST) == verdict
    assert again.verify(policy, REF, DIGEST, store) == verdict


def test_records_are_per_policy_repository_and_digest(
        tmp_path: Path, sigstore: FakeSigstore) -> None:
    policy = keyless(sigstore)
    check = verifier(tmp_path, policy)
    check.verify(policy, REF, DIGEST, signed_store(sigstore))
    other_identity = keyless(sigstore, identity="someone@example.invalid")
    assert verifier(tmp_path, other_identity).cached(other_identity, REF, DIGEST) is None
    assert check.cached(policy, parse("oci://r:5000/p/other:v1"), DIGEST) is None
    assert check.cached(policy, REF, "sha256:" + "cd" * 32) is None


def test_a_stored_record_that_no_longer_verifies_is_dropped(
        tmp_path: Path, sigstore: FakeSigstore) -> None:
    policy = keyless(sigstore)
    verifier(tmp_path, policy).verify(policy, REF, DIGEST, signed_store(sigstore))
    cache = OciCache(tmp_path / "oci", max_entries=10, max_bytes=1 << 20, clock=FakeClock())
    [(key, record)] = cache.listing().verifications
    record["material"]["payload"] = record["material"]["payload"][:-8] + "AAAAAAA="
    cache.store_verification(key, record)
    assert verifier(tmp_path, policy).cached(policy, REF, DIGEST) is None
    assert cache.listing().verifications == ()


def test_refusals_name_the_entry_and_digest_and_store_nothing(
        tmp_path: Path, sigstore: FakeSigstore) -> None:
    policy = keyless(sigstore, identity="someone@example.invalid")
    check = verifier(tmp_path, policy)
    with pytest.raises(VerificationError) as info:
        check.verify(policy, REF, DIGEST, signed_store(sigstore))
    assert info.value.code == "identity-mismatch"
    assert info.value.message.startswith(f"refused under [[trust]][1] ({DIGEST}): sha256-")
    with pytest.raises(VerificationError) as info:
        check.verify(policy, REF, DIGEST, SignatureStore())
    assert info.value.code == "signature-missing"
    assert OciCache(tmp_path / "oci", max_entries=10, max_bytes=1 << 20,
                    clock=FakeClock()).listing().verifications == ()


def test_verify_false_looks_for_nothing(tmp_path: Path) -> None:
    policy = TrustPolicy(scope=parse_scope("r:5000/p"), terms=None)
    store = SignatureStore()
    verdict = verifier(tmp_path, policy).verify(policy, REF, DIGEST, store)
    assert (verdict.signer, verdict.record) == ("unverified (verify = false)", None)
    assert sum(store.calls.values()) == 0
