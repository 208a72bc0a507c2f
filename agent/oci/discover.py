"""Find the signatures of one artifact digest in its repository (the registry side of
:mod:`agent.oci.signatures.discovery`, which names the places and decides among candidates).

In this order, lazily (:func:`candidates` is a generator: :func:`verify_first` stops at the first
signature that verifies, and nothing after it is fetched):

1. cosign's legacy signatures: the manifest tagged ``sha256-<hex>.sig``; each simple-signing
   layer is a candidate, its blob fetched by digest (size and sha256 checked);
2. sigstore bundles: the referrers API, or where a registry has none (Distribution 2.8 has none)
   the index tagged ``sha256-<hex>``; each entry is fetched by digest, and its ``subject`` must be
   the artifact: index entries are not signed, and an index can be written by anyone who can
   push a tag.

Caps bound what a hostile repository can make a host download: :data:`MAX_CANDIDATES`
signatures in all (the rest is not looked at), manifests and indexes of
:data:`MAX_SIGNATURE_MANIFEST_BYTES`, payloads and bundles as large as the verifiers accept.
Material that cannot be read becomes an :class:`UnusableCandidate` with its reason, so that a
refusal says what was found. An unreachable registry stops discovery
(:class:`RegistryUnreachable` propagates): "no signature" must never be concluded from an outage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol

from agent.codes import Code
from agent.errors import RegistryError, RegistryUnreachable, VerificationError
from agent.oci.reference import DIGEST_RE, Reference
from agent.oci.signatures.bundle import MAX_BUNDLE_BYTES
from agent.oci.signatures.discovery import (
    BUNDLE_ARTIFACT_TYPE,
    BUNDLE_MEDIA_TYPE,
    LEGACY_LAYER_MEDIA_TYPE,
    MAX_CANDIDATES,
    BundleCandidate,
    Candidate,
    LegacyCandidate,
    UnusableCandidate,
    legacy_tag,
    referrers_tag,
)
from agent.oci.signatures.payload import MAX_PAYLOAD_BYTES

MAX_SIGNATURE_MANIFEST_BYTES = 1 << 20


class SignatureRegistry(Protocol):
    """What discovery needs from a registry client (:class:`agent.oci.registry.RegistryClient`)."""

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None: ...

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str,
                  max_bytes: int) -> bytes | None: ...

    def manifest(self, ref: Reference, digest: str) -> bytes: ...

    def blob(self, ref: Reference, digest: str, size: int, *, max_bytes: int) -> bytes: ...


def candidates(client: SignatureRegistry, ref: Reference, digest: str) -> Iterator[Candidate]:
    """Every signature of ``ref.name@digest``: legacy ``.sig`` layers first, then bundles."""
    yield from _legacy(client, ref, digest)
    yield from _bundles(client, ref, digest)


def _legacy(client: SignatureRegistry, ref: Reference, digest: str) -> Iterator[Candidate]:
    tag = legacy_tag(digest)
    try:
        found = client.tagged_manifest(ref, tag, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
    except RegistryUnreachable:
        raise
    except RegistryError as exc:
        yield _unusable(tag, f"cannot read the signature manifest: {exc.message}")
        return
    if found is None:
        return
    try:
        layers = _list(_object(json.loads(found[0])), "layers")
    except (ValueError, TypeError) as exc:
        yield _unusable(tag, f"not a signature manifest: {exc}")
        return
    signatures = [layer for layer in layers
                  if isinstance(layer, dict) and layer.get("mediaType") == LEGACY_LAYER_MEDIA_TYPE]
    for number, layer in enumerate(signatures[:MAX_CANDIDATES]):
        source = f"{tag}[{number}]"
        annotations = layer.get("annotations") or {}
        if not isinstance(annotations, dict):
            yield _unusable(source, "the layer's annotations are not an object")
            continue
        payload = _fetch(client, ref, layer, cap=MAX_PAYLOAD_BYTES, source=source, what="payload")
        if isinstance(payload, UnusableCandidate):
            yield payload
        else:
            yield LegacyCandidate(payload=payload, annotations=annotations, source=source)


def _bundles(client: SignatureRegistry, ref: Reference, digest: str) -> Iterator[Candidate]:
    where = f"referrers of {digest}"
    try:
        index = client.referrers(ref, digest, artifact_type=BUNDLE_ARTIFACT_TYPE,
                                 max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
        if index is None:  # no referrers API: the tag schema
            where = referrers_tag(digest)
            found = client.tagged_manifest(ref, where, max_bytes=MAX_SIGNATURE_MANIFEST_BYTES)
            index = None if found is None else found[0]
    except RegistryUnreachable:
        raise
    except RegistryError as exc:
        yield _unusable(where, f"cannot list the referrers: {exc.message}")
        return
    if index is None:
        return
    try:
        entries = _list(_object(json.loads(index)), "manifests")
    except (ValueError, TypeError) as exc:
        yield _unusable(where, f"not an index: {exc}")
        return
    # The referrers API filters by artifactType only where the registry supports it, and the
    # tag-schema index holds every referrer: filter here (entries that do not say are fetched).
    bundles = [e for e in entries if isinstance(e, dict)
               and e.get("artifactType", BUNDLE_ARTIFACT_TYPE) == BUNDLE_ARTIFACT_TYPE]
    for entry in bundles[:MAX_CANDIDATES]:
        found_one = _referrer(client, ref, digest, entry)
        if found_one is not None:
            yield found_one


def _referrer(client: SignatureRegistry, ref: Reference, digest: str,
              entry: dict[str, Any]) -> Candidate | None:
    """The bundle of one referrer; ``None`` when the referrer is not a sigstore bundle."""
    referrer = entry.get("digest")
    source = f"referrer {referrer}"
    if not isinstance(referrer, str) or not DIGEST_RE.match(referrer):
        return _unusable(source, "the index entry has no sha256 digest")
    size = entry.get("size")
    if not isinstance(size, int) or size > MAX_SIGNATURE_MANIFEST_BYTES:
        return _unusable(source, f"the referrer manifest is not {MAX_SIGNATURE_MANIFEST_BYTES} "
                         "bytes or less")
    try:
        manifest = _object(json.loads(client.manifest(ref, referrer)))
    except RegistryUnreachable:
        raise
    except RegistryError as exc:
        return _unusable(source, exc.message)
    except (ValueError, TypeError) as exc:
        return _unusable(source, f"not a manifest: {exc}")
    config = manifest.get("config")
    kind = manifest.get("artifactType") or (config.get("mediaType")
                                           if isinstance(config, dict) else None)
    if kind != BUNDLE_ARTIFACT_TYPE:
        return None
    subject = manifest.get("subject")
    about = subject.get("digest") if isinstance(subject, dict) else None
    if about != digest:
        return UnusableCandidate(source=source, error=VerificationError(
            f"it is a signature of {about}, not of {digest}", code=Code.DIGEST_MISMATCH,
            hint="an index entry pointed at another artifact's signature"))
    layers = [layer for layer in manifest.get("layers") or []
              if isinstance(layer, dict) and layer.get("mediaType") == BUNDLE_MEDIA_TYPE]
    if len(layers) != 1:
        return _unusable(source, f"{len(layers)} bundle layers, not 1")
    bundle = _fetch(client, ref, layers[0], cap=MAX_BUNDLE_BYTES, source=source, what="bundle")
    if isinstance(bundle, UnusableCandidate):
        return bundle
    return BundleCandidate(bundle=bundle, source=source)


def _fetch(client: SignatureRegistry, ref: Reference, layer: dict[str, Any], *, cap: int,
           source: str, what: str) -> bytes | UnusableCandidate:
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest) or not isinstance(size, int):
        return _unusable(source, f"the {what} descriptor has no sha256 digest and size")
    if not 0 <= size <= cap:
        return _unusable(source, f"the {what} is {size} bytes, more than the {cap} accepted")
    try:
        return client.blob(ref, digest, size, max_bytes=cap)
    except RegistryUnreachable:
        raise
    except RegistryError as exc:
        return _unusable(source, f"{what}: {exc.message}")


def _unusable(source: str, why: str) -> UnusableCandidate:
    error = VerificationError(why, code=Code.SIGNATURE_MALFORMED,
                              hint="push the signature again, with cosign or secprof push")
    return UnusableCandidate(source=source, error=error)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError("not a JSON object")
    return value


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key)
    if not isinstance(value, list):
        raise TypeError(f"{key!r} is not a list")
    return value
