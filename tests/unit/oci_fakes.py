"""An in-memory registry for signature discovery and publishing, with or without the referrers
API (Distribution 2.8, the real registry of the integration tests, has none)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping

from agent.errors import RegistryError, RegistryUnreachable
from agent.oci.artifact import INDEX_TYPE
from agent.oci.reference import Reference
from agent.publish.pack import Packed
from agent.seccomp.render import digest as sha256_digest


class SignatureStore:
    def __init__(self, *, referrers_api: bool = False) -> None:
        self.referrers_api = referrers_api
        self.tags: dict[str, str] = {}  # tag -> manifest digest
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self.down = False

    def _call(self, what: str) -> None:
        self.calls[what] += 1
        if self.down:
            raise RegistryUnreachable("cannot reach r: connection refused")

    # -- reads ------------------------------------------------------------------------------
    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None:
        self._call("tagged_manifest")
        digest = self.tags.get(tag)
        return None if digest is None else self.manifests[digest]

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str,
                  max_bytes: int) -> bytes | None:
        self._call("referrers")
        if not self.referrers_api:
            return None
        entries = []
        for found, (raw, media_type) in self.manifests.items():
            doc = json.loads(raw)
            if (doc.get("subject") or {}).get("digest") == digest and (
                    doc.get("artifactType") == artifact_type):
                entries.append({"mediaType": media_type, "digest": found, "size": len(raw),
                                "artifactType": doc["artifactType"]})
        return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE,
                           "manifests": entries}).encode()

    def manifest(self, ref: Reference, digest: str) -> bytes:
        self._call("manifest")
        return self.manifests[digest][0]

    def blob(self, ref: Reference, digest: str, size: int, *, max_bytes: int) -> bytes:
        self._call("blob")
        data = self.blobs[digest]
        if sha256_digest(data) != digest:
            raise RegistryError(f"blob {digest} was altered", code="digest-mismatch")
        return data

    # -- writes -----------------------------------------------------------------------------
    def push(self, ref: Reference, packed: Packed) -> str:
        self.push_blobs(ref, packed.blobs)
        self.put_manifest(ref, ref.tag or packed.digest, packed)
        return packed.digest

    def push_blobs(self, ref: Reference, blobs: Mapping[str, bytes]) -> None:
        self.blobs.update(blobs)

    def put_manifest(self, ref: Reference, identifier: str, packed: Packed) -> bool:
        self._call("put_manifest")
        self.manifests[packed.digest] = (packed.manifest, packed.media_type)
        if not identifier.startswith("sha256:"):
            self.tags[identifier] = packed.digest
        return self.referrers_api and b'"subject"' in packed.manifest
