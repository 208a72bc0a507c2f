"""Discovery and publishing of signatures against an in-memory registry: both bundle routes
(referrers API, tag schema), laziness, caps, and material that cannot be read."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from agent.errors import RegistryUnreachable
from agent.oci.discover import candidates
from agent.oci.reference import parse
from agent.oci.signatures import legacy_tag, referrers_tag
from agent.oci.signatures.discovery import (
    MAX_CANDIDATES,
    BundleCandidate,
    LegacyCandidate,
    UnusableCandidate,
)
from agent.oci.signatures.payload import MAX_PAYLOAD_BYTES
from agent.publish.attach import publish_bundle, publish_legacy, signature_manifest
from agent.publish.sign import sign_bundle_with_key, sign_legacy_with_key
from agent.seccomp.render import digest as sha256_digest
from tests.unit.oci_fakes import SignatureStore

REF = parse("oci://r:5000/p/base:v1")
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
KEY = ec.generate_private_key(ec.SECP256R1())


def legacy_layer(digest: str = DIGEST):  # type: ignore[no-untyped-def]
    return sign_legacy_with_key(KEY, digest=digest, repository=REF.name)


def bundle(digest: str = DIGEST) -> bytes:
    return sign_bundle_with_key(KEY, digest=digest, repository=REF.name)


@pytest.mark.parametrize("api", [True, False], ids=["referrers-api", "tag-schema"])
def test_a_published_bundle_is_found(api: bool) -> None:
    store = SignatureStore(referrers_api=api)
    referrer = publish_bundle(store, REF, subject=DIGEST, subject_size=123, bundle=bundle(),
                              created="2026-01-01T00:00:00Z")
    assert (referrers_tag(DIGEST) in store.tags) is not api  # the index only where needed
    [found] = candidates(store, REF, DIGEST)
    assert isinstance(found, BundleCandidate)
    assert found.source == f"referrer {referrer}"
    manifest = json.loads(store.manifests[referrer][0])
    assert manifest["subject"] == {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "digest": DIGEST, "size": 123}
    assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert manifest["annotations"]["dev.sigstore.bundle.predicateType"] == (
        "https://sigstore.dev/cosign/sign/v1")


def test_the_tag_schema_index_grows_without_duplicates() -> None:
    store = SignatureStore()
    first = publish_bundle(store, REF, subject=DIGEST, subject_size=1, bundle=bundle(),
                           created="2026-01-01T00:00:00Z")
    second = publish_bundle(store, REF, subject=DIGEST, subject_size=1, bundle=bundle(),
                            created="2026-01-01T00:00:00Z")
    publish_bundle(store, REF, subject=DIGEST, subject_size=1,
                   bundle=store.blobs[_bundle_layer(store, first)], created="2026-01-01T00:00:00Z")
    index = json.loads(store.manifests[store.tags[referrers_tag(DIGEST)]][0])
    assert [e["digest"] for e in index["manifests"]] == [first, second]
    assert {e["artifactType"] for e in index["manifests"]} == {
        "application/vnd.dev.sigstore.bundle.v0.3+json"}


def _bundle_layer(store: SignatureStore, referrer: str) -> str:
    return str(json.loads(store.manifests[referrer][0])["layers"][0]["digest"])


def test_legacy_first_and_lazily() -> None:
    store = SignatureStore()
    for _ in range(3):
        publish_legacy(store, REF, DIGEST, legacy_layer())
    publish_bundle(store, REF, subject=DIGEST, subject_size=1, bundle=bundle(),
                   created="2026-01-01T00:00:00Z")
    store.calls.clear()
    found = candidates(store, REF, DIGEST)
    first = next(found)
    assert isinstance(first, LegacyCandidate)
    assert first.source == f"{legacy_tag(DIGEST)}[0]"
    assert store.calls == {"tagged_manifest": 1, "blob": 1}  # nothing more fetched yet
    rest = list(found)
    assert [type(c).__name__ for c in rest] == ["LegacyCandidate"] * 2 + ["BundleCandidate"]


def test_caps_on_count_and_size() -> None:
    store = SignatureStore()
    for _ in range(MAX_CANDIDATES + 3):
        publish_legacy(store, REF, DIGEST, legacy_layer())
    assert sum(1 for _ in candidates(store, REF, DIGEST)) == MAX_CANDIDATES

    store = SignatureStore()
    publish_legacy(store, REF, DIGEST, legacy_layer())
    tag = store.tags[legacy_tag(DIGEST)]
    doc = json.loads(store.manifests[tag][0])
    doc["layers"][0]["size"] = MAX_PAYLOAD_BYTES + 1
    store.manifests[tag] = (json.dumps(doc).encode(), store.manifests[tag][1])
    [found] = candidates(store, REF, DIGEST)
    assert isinstance(found, UnusableCandidate)
    assert found.error.code == "signature-malformed"
    assert "more than the 65536 accepted" in found.error.message
    assert store.calls["blob"] == 0  # refused from the descriptor, before any download


def test_material_that_cannot_be_read_is_a_refusal_with_its_reason() -> None:
    store = SignatureStore()
    layer = legacy_layer()
    publish_legacy(store, REF, DIGEST, layer)
    store.blobs[sha256_digest(layer.payload)] = b"altered in the registry"
    [found] = candidates(store, REF, DIGEST)
    assert isinstance(found, UnusableCandidate)
    assert "was altered" in found.error.message

    store = SignatureStore()
    store.tags[legacy_tag(DIGEST)] = "sha256:" + "00" * 32
    store.manifests["sha256:" + "00" * 32] = (b"[]", "application/json")
    [found] = candidates(store, REF, DIGEST)
    assert isinstance(found, UnusableCandidate)
    assert "not a signature manifest" in found.error.message


def test_a_referrer_of_another_artifact_listed_in_the_index() -> None:
    store = SignatureStore()
    publish_bundle(store, REF, subject=OTHER, subject_size=1, bundle=bundle(OTHER),
                   created="2026-01-01T00:00:00Z")
    store.tags[referrers_tag(DIGEST)] = store.tags[referrers_tag(OTHER)]
    [found] = candidates(store, REF, DIGEST)
    assert isinstance(found, UnusableCandidate)
    assert found.error.code == "digest-mismatch"
    assert f"a signature of {OTHER}, not of {DIGEST}" in found.error.message


def test_other_referrers_are_skipped_without_being_fetched() -> None:
    store = SignatureStore()
    publish_bundle(store, REF, subject=DIGEST, subject_size=1, bundle=bundle(),
                   created="2026-01-01T00:00:00Z")
    tag = store.tags[referrers_tag(DIGEST)]
    index = json.loads(store.manifests[tag][0])
    index["manifests"][0]["artifactType"] = "application/vnd.example.sbom"
    store.manifests[tag] = (json.dumps(index).encode(), store.manifests[tag][1])
    assert list(candidates(store, REF, DIGEST)) == []
    assert store.calls["manifest"] == 0


def test_an_unreachable_registry_is_never_no_signature() -> None:
    store = SignatureStore()
    publish_legacy(store, REF, DIGEST, legacy_layer())
    store.down = True
    with pytest.raises(RegistryUnreachable):
        list(candidates(store, REF, DIGEST))


def test_signature_manifest_keeps_what_is_there() -> None:
    first = signature_manifest(None, legacy_layer(), where="t")
    second_layer = legacy_layer()
    both = signature_manifest(first.manifest, second_layer, where="t")
    layers = json.loads(both.manifest)["layers"]
    assert layers[0] == json.loads(first.manifest)["layers"][0]
    assert layers[1]["annotations"] == dict(second_layer.annotations)
    config = json.loads(both.blobs[json.loads(both.manifest)["config"]["digest"]])
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in layers]
    assert signature_manifest(both.manifest, second_layer, where="t").digest == both.digest
