"""Writes to a registry, for ``secprof push``: blobs through oras-py's upload session, then the
manifest's exact bytes.

oras-py does the blob protocol (``Registry.upload_blob``: ``HEAD`` to skip a blob the repository
has, ``POST`` for an upload session, its ``Location`` made absolute, ``PUT`` with the digest),
through :class:`~agent.oci.transport.HostTransport` (deadline, auth, redirects). It reads blobs
from files, so each is written to a private temporary directory first. Manifests are ``PUT``
here: oras-py's ``upload_manifest`` re-serialises a dict (the digest pushed would not be the
digest built and signed), validates it as an image manifest and always sends the image
manifest's media type (an index could not be pushed).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from agent.codes import Code
from agent.errors import RegistryError
from agent.oci.reference import Reference
from agent.oci.registry import RegistryClient, container
from agent.publish.pack import Packed


class Uploader:
    """What publishing needs from a registry (:class:`agent.publish.attach.Publisher`)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None:
        """See :meth:`RegistryClient.tagged_manifest`."""
        return self.client.tagged_manifest(ref, tag, max_bytes=max_bytes)

    def push(self, ref: Reference, packed: Packed) -> str:
        """Push ``packed`` under ``ref``'s tag (by its digest when ``ref`` has no tag);
        returns the manifest digest."""
        self.push_blobs(ref, packed.blobs)
        self.put_manifest(ref, ref.tag or packed.digest, packed)
        return packed.digest

    def push_blobs(self, ref: Reference, blobs: Mapping[str, bytes]) -> None:
        """Upload each blob that the repository does not have yet."""
        for digest, data in blobs.items():
            self._push_blob(ref, digest, data)

    def put_manifest(self, ref: Reference, identifier: str, packed: Packed) -> bool:
        """PUT ``packed``'s exact manifest bytes under ``identifier`` (a tag or its digest);
        its blobs must be there. Returns whether the registry said it indexed the manifest's
        ``subject`` (the ``OCI-Subject`` header of a registry with the referrers API)."""
        with self.client.transport(ref.registry).operation() as deadline:
            response = self.client.request(
                ref, "PUT", container(ref).manifest_url(identifier), data=packed.manifest,
                headers={"Content-Type": packed.media_type})
            if response.status_code not in (200, 201):
                raise self.client.refused(ref, response, deadline, "the manifest",
                                          Code.ARTIFACT_NOT_FOUND)
            response.close()
        said = response.headers.get("Docker-Content-Digest", packed.digest)
        if said != packed.digest:
            raise RegistryError(f"{ref.name}:{identifier}: the registry stored the manifest as "
                                f"{said}, not {packed.digest}", code=Code.DIGEST_MISMATCH)
        return bool(response.headers.get("OCI-Subject"))

    def _push_blob(self, ref: Reference, digest: str, data: bytes) -> None:
        host = self.client.transport(ref.registry)
        layer = {"digest": digest, "size": len(data), "mediaType": "application/octet-stream"}
        with tempfile.TemporaryDirectory(prefix="secprof-push-") as tmp, \
                host.operation() as deadline:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            try:
                response = host.upload_blob(str(path), container(ref), layer)
            except ValueError as exc:  # oras-py's word for "no upload session was opened"
                raise RegistryError(f"{ref.registry} opened no upload session for blob "
                                    f"{digest}: {str(exc)[:200]}",
                                    code=Code.REGISTRY_PROTOCOL) from None
            if response.status_code not in (200, 201):
                raise self.client.refused(ref, response, deadline, f"blob {digest}",
                                          Code.BLOB_NOT_FOUND)
            if response.raw is not None:  # oras-py answers "already there" with a bare 200
                response.close()
