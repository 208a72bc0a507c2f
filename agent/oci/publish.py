"""Write signatures next to an artifact, where cosign, SPO and :mod:`agent.oci.discover` look.

* legacy (:func:`publish_legacy`): the manifest tagged ``sha256-<hex>.sig``, one simple-signing
  layer per signature; a new signature is appended to those already there, as cosign does;
* bundle (:func:`publish_bundle`): a referrer manifest (``artifactType`` and layer of the bundle
  media type, ``subject`` = the artifact) pushed by digest; and, where the registry did not
  index the subject itself (no ``OCI-Subject`` header: no referrers API, as in Distribution 2.8),
  the referrers tag-schema index ``sha256-<hex>`` gets an entry for it.

Both read-modify-write a tag; two signers racing on one artifact can lose a signature (cosign
has the same race). The signatures are made elsewhere (:mod:`agent.oci.signatures.sign`).
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any, Protocol

from agent.codes import Code
from agent.errors import SigningError
from agent.oci.artifact import CREATED, EMPTY_JSON, EMPTY_TYPE, INDEX_TYPE, MANIFEST_TYPE
from agent.oci.discover import MAX_SIGNATURE_MANIFEST_BYTES
from agent.oci.pack import Packed
from agent.oci.reference import Reference
from agent.oci.signatures.discovery import (
    BUNDLE_ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    legacy_tag,
    referrers_tag,
)
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.payload import COSIGN_SIGN_PREDICATE
from agent.seccomp.render import digest as sha256_digest

IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
BUNDLE_CONTENT = "dev.sigstore.bundle.content"
BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"


class Publisher(Protocol):
    """What publishing needs from a registry client (:class:`agent.oci.registry.RegistryClient`)."""

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None: ...

    def push(self, ref: Reference, packed: Packed) -> str: ...

    def push_blobs(self, ref: Reference, blobs: dict[str, bytes]) -> None: ...

    def put_manifest(self, ref: Reference, identifier: str, packed: Packed) -> bool: ...


def publish_legacy(client: Publisher, ref: Reference, digest: str, layer: LegacyLayer) -> str:
    """Add ``layer`` to the ``.sig`` manifest of ``ref.name@digest``; returns its tag."""
    tag = legacy_tag(digest)
    found = client.tagged_manifest(ref, tag, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
    client.push(replace(ref, tag=tag, digest=""),
                signature_manifest(None if found is None else found[0], layer, where=tag))
    return tag


def publish_bundle(client: Publisher, ref: Reference, *, subject: str, subject_size: int,
                   bundle: bytes, created: str) -> str:
    """Push ``bundle`` as a referrer of ``ref.name@subject``; returns the referrer's digest."""
    referrer = referrer_manifest(subject=subject, subject_size=subject_size, bundle=bundle,
                                 created=created)
    by_digest = replace(ref, tag="", digest="")
    client.push_blobs(by_digest, dict(referrer.blobs))
    if client.put_manifest(by_digest, referrer.digest, referrer):
        return referrer.digest  # the registry lists it in its referrers API
    tag = referrers_tag(subject)
    found = client.tagged_manifest(ref, tag, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
    index = referrers_index(None if found is None else found[0], referrer, where=tag)
    if index is not None:
        client.put_manifest(ref, tag, index)
    return referrer.digest


def signature_manifest(existing: bytes | None, layer: LegacyLayer, *, where: str) -> Packed:
    """The ``.sig`` manifest with ``layer`` added to ``existing``'s layers (if not there)."""
    layers = _entries(existing, "layers", where)
    descriptor = {"mediaType": layer.media_type, "size": len(layer.payload),
                  "digest": sha256_digest(layer.payload), "annotations": dict(layer.annotations)}
    if descriptor not in layers:
        layers.append(descriptor)
    # The image config go-containerregistry writes for cosign's signature image; nothing reads
    # it but image tools, which want the layers' diff IDs (uncompressed: their digests).
    config = _json({"architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
                    "os": "", "rootfs": {"type": "layers",
                                         "diff_ids": [entry["digest"] for entry in layers]}})
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                "config": {"mediaType": IMAGE_CONFIG_TYPE, "size": len(config),
                           "digest": sha256_digest(config)},
                "layers": layers}
    blobs = {sha256_digest(config): config, sha256_digest(layer.payload): layer.payload}
    return Packed(manifest=_json(manifest), media_type=MANIFEST_TYPE, blobs=blobs)


def referrer_manifest(*, subject: str, subject_size: int, bundle: bytes, created: str) -> Packed:
    """The referrer manifest cosign (v3) writes for a bundle signing ``subject``."""
    empty = {"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_JSON),
             "size": len(EMPTY_JSON), "data": base64.b64encode(EMPTY_JSON).decode()}
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": BUNDLE_ARTIFACT_TYPE,
        "config": empty,
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "digest": sha256_digest(bundle),
                    "size": len(bundle)}],
        "subject": {"mediaType": MANIFEST_TYPE, "digest": subject, "size": subject_size},
        "annotations": {BUNDLE_CONTENT: "dsse-envelope",
                        BUNDLE_PREDICATE_TYPE: COSIGN_SIGN_PREDICATE, CREATED: created},
    }
    blobs = {sha256_digest(EMPTY_JSON): EMPTY_JSON, sha256_digest(bundle): bundle}
    return Packed(manifest=_json(manifest), media_type=MANIFEST_TYPE, blobs=blobs)


def referrers_index(existing: bytes | None, referrer: Packed, *, where: str) -> Packed | None:
    """The tag-schema index with an entry for ``referrer``; ``None`` when it has one already."""
    entries = _entries(existing, "manifests", where)
    if any(entry.get("digest") == referrer.digest for entry in entries):
        return None
    doc = json.loads(referrer.manifest)
    entries.append({"mediaType": MANIFEST_TYPE, "digest": referrer.digest,
                    "size": len(referrer.manifest), "artifactType": doc["artifactType"],
                    "annotations": doc["annotations"]})
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries}
    return Packed(manifest=_json(index), media_type=INDEX_TYPE, blobs={})


def _entries(existing: bytes | None, key: str, where: str) -> list[dict[str, Any]]:
    if existing is None:
        return []
    try:
        entries = json.loads(existing)[key]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise TypeError(f"{key!r} is not a list of objects")
    except (ValueError, TypeError, KeyError) as exc:
        raise SigningError(
            f"the manifest tagged {where} is not one secprof can add to ({exc}); nothing was "
            "pushed", code=Code.SIGNATURE_STORE_INVALID,
            hint="delete that tag in the registry (it holds no usable signature), then push again",
        ) from None
    return entries


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
