"""The registry client: the distribution-protocol calls secprof makes, by digest wherever it can.

Reads: :meth:`RegistryClient.resolve` turns a tag into a manifest digest (``HEAD``, the
``Docker-Content-Digest`` header); :meth:`~RegistryClient.manifest` and
:meth:`~RegistryClient.blob` fetch by that digest only, and check what they got: its sha256, its
size, and the caps (manifest 4 MiB; profile ``max_profile_bytes``, refused from the descriptor
before a byte is downloaded). A registry serves whatever is on its disk without re-hashing it, so
these checks are the only thing between a tampered blob and an installed profile.

Writes (``secprof push``): blobs through an upload session, then the manifest's exact bytes
(oras-py re-serialises manifests, so the digest pushed would not be the digest built).

Importing this module imports oras-py and requests (~0.3 s): only code that must really talk to
a registry does, never a command served from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from agent.codes import Code
from agent.errors import RegistryError
from agent.oci.artifact import ACCEPT, INDEX_TYPE
from agent.oci.auth import Credential, HostAuth
from agent.oci.pack import Packed
from agent.oci.reference import DIGEST_RE, Reference
from agent.oci.transport import HostTransport, HttpPolicy, read_body, registry_message
from agent.seccomp.render import digest as sha256_digest

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class RegistryClient:
    """Talks to any number of registries; one :class:`HostTransport` (session, auth) each."""

    def __init__(self, *, policy: HttpPolicy, credentials: Mapping[str, Credential],
                 session_factory: Callable[[], requests.Session] = requests.Session,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._policy = policy
        self._credentials = credentials
        self._session_factory = session_factory
        self._sleep = sleep
        self._hosts: dict[str, HostTransport] = {}

    def _host(self, registry: str) -> HostTransport:
        host = self._hosts.get(registry)
        if host is None:
            auth = HostAuth(registry, self._credentials.get(registry),
                            plain_http=registry in self._policy.plain_http, clock=time.monotonic)
            host = HostTransport(registry, auth=auth, policy=self._policy,
                                 session=self._session_factory(), sleep=self._sleep)
            self._hosts[registry] = host
        return host

    def _request(self, ref: Reference, method: str, path: str, *,
                 headers: Mapping[str, str] | None = None, data: bytes | None = None,
                 url: str = "") -> tuple[requests.Response, float]:
        """Send one request for ``ref``'s repository (``path`` under ``/v2/<repository>/``, or
        an absolute ``url``); returns the response and the operation's deadline."""
        host = self._host(ref.registry)
        deadline = time.monotonic() + self._policy.timeout_s
        target = url or f"{host.base}/v2/{ref.repository}/{path}"
        return host.do_request(target, method, data=data, headers=dict(headers or {}),
                               deadline=deadline), deadline

    def _refused(self, ref: Reference, response: requests.Response, deadline: float,
                 what: str, not_found_code: Code) -> RegistryError:
        status = response.status_code
        said = registry_message(response, deadline)
        detail = f": {said}" if said else ""
        if status == 404:
            return RegistryError(f"{what} not found in {ref.name}{detail}", code=not_found_code,
                                 hint="check the repository, tag and digest")
        if status == 403:
            return RegistryError(f"{ref.registry} denied access to {what}{detail}",
                                 code=Code.REGISTRY_DENIED,
                                 hint="check the account's permissions on the repository")
        return RegistryError(f"{ref.registry} answered {status} for {what}{detail}")

    def resolve(self, ref: Reference) -> str:
        """The manifest digest ``ref``'s tag points to now."""
        response, deadline = self._request(ref, "HEAD", f"manifests/{ref.tag}",
                                           headers={"Accept": ", ".join(ACCEPT)})
        if response.status_code != 200:
            raise self._refused(ref, response, deadline, f"tag {ref.tag!r}",
                                Code.ARTIFACT_NOT_FOUND)
        response.close()
        found = response.headers.get("Docker-Content-Digest", "")
        if not found:  # the header is optional: hash the manifest itself
            response, deadline = self._request(ref, "GET", f"manifests/{ref.tag}",
                                               headers={"Accept": ", ".join(ACCEPT)})
            if response.status_code != 200:
                raise self._refused(ref, response, deadline, f"tag {ref.tag!r}",
                                    Code.ARTIFACT_NOT_FOUND)
            found = sha256_digest(read_body(response, MAX_MANIFEST_BYTES, deadline))
        if not DIGEST_RE.match(found):
            raise RegistryError(f"{ref}: the registry names digest {found[:80]!r}; secprof "
                                "accepts sha256 only", code=Code.DIGEST_UNSUPPORTED)
        return found

    def manifest(self, ref: Reference, digest: str) -> bytes:
        """The manifest's exact bytes, checked against ``digest``."""
        response, deadline = self._request(ref, "GET", f"manifests/{digest}",
                                           headers={"Accept": ", ".join(ACCEPT)})
        if response.status_code != 200:
            raise self._refused(ref, response, deadline, f"manifest {digest}",
                                Code.ARTIFACT_NOT_FOUND)
        raw = read_body(response, MAX_MANIFEST_BYTES, deadline, oversize=RegistryError(
            f"{ref.name}@{digest}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes",
            code=Code.MANIFEST_TOO_LARGE))
        _check(raw, digest, f"{ref.name}@{digest}: manifest")
        return raw

    def blob(self, ref: Reference, digest: str, size: int, *, max_bytes: int) -> bytes:
        """The blob's bytes, checked against ``digest`` and ``size`` (refused above
        ``max_bytes`` before anything is downloaded)."""
        where = f"{ref.name}@{digest}"
        if size > max_bytes:
            raise RegistryError(f"{where}: the profile is {size} bytes, more than "
                                f"max_profile_bytes ({max_bytes})", code=Code.PROFILE_TOO_LARGE,
                                hint="raise [oci] max_profile_bytes if the profile is right")
        response, deadline = self._request(ref, "GET", f"blobs/{digest}")
        if response.status_code != 200:
            raise self._refused(ref, response, deadline, f"blob {digest}", Code.BLOB_NOT_FOUND)
        data = read_body(response, size, deadline, oversize=RegistryError(
            f"{where}: the registry sent more than the {size} bytes the manifest says",
            code=Code.SIZE_MISMATCH))
        if len(data) != size:
            raise RegistryError(f"{where}: the registry sent {len(data)} bytes, the manifest "
                                f"says {size}", code=Code.SIZE_MISMATCH)
        _check(data, digest, f"{where}: blob")
        return data

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None:
        """The manifest or index tagged ``tag`` in ``ref``'s repository and its media type;
        ``None`` when there is no such tag. Not checked against any digest (a tag has none):
        callers use it only to find descriptors, and check what those point to."""
        response, deadline = self._request(ref, "GET", f"manifests/{tag}",
                                           headers={"Accept": ", ".join(ACCEPT)})
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise self._refused(ref, response, deadline, f"tag {tag!r}", Code.ARTIFACT_NOT_FOUND)
        media_type = _media_type(response)
        raw = read_body(response, max_bytes, deadline, oversize=RegistryError(
            f"{ref.name}:{tag}: the manifest is larger than {max_bytes} bytes",
            code=Code.MANIFEST_TOO_LARGE))
        return raw, media_type

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str,
                  max_bytes: int) -> bytes | None:
        """The referrers API's index for ``digest`` (OCI distribution 1.1), filtered by
        ``artifact_type`` where the registry filters; ``None`` where the registry has no
        referrers API (404, 400, 405, or an answer that is not an index)."""
        response, deadline = self._request(
            ref, "GET", f"referrers/{digest}?{urlencode({'artifactType': artifact_type})}",
            headers={"Accept": INDEX_TYPE})
        if response.status_code in (400, 404, 405) or (
                response.status_code == 200 and _media_type(response) != INDEX_TYPE):
            response.close()
            return None
        if response.status_code != 200:
            raise self._refused(ref, response, deadline, f"the referrers of {digest}",
                                Code.ARTIFACT_NOT_FOUND)
        return read_body(response, max_bytes, deadline, oversize=RegistryError(
            f"{ref.name}: the referrers of {digest} are listed in more than {max_bytes} bytes",
            code=Code.MANIFEST_TOO_LARGE))

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
        response, deadline = self._request(
            ref, "PUT", f"manifests/{identifier}", data=packed.manifest,
            headers={"Content-Type": packed.media_type},
        )
        if response.status_code not in (200, 201):
            raise self._refused(ref, response, deadline, "the manifest", Code.ARTIFACT_NOT_FOUND)
        response.close()
        said = response.headers.get("Docker-Content-Digest", packed.digest)
        if said != packed.digest:
            raise RegistryError(f"{ref.name}:{identifier}: the registry stored the manifest as "
                                f"{said}, not {packed.digest}", code=Code.DIGEST_MISMATCH)
        return bool(response.headers.get("OCI-Subject"))

    def _push_blob(self, ref: Reference, digest: str, data: bytes) -> None:
        response, deadline = self._request(ref, "HEAD", f"blobs/{digest}")
        response.close()
        if response.status_code == 200:
            return
        response, deadline = self._request(ref, "POST", "blobs/uploads/")
        location = response.headers.get("Location", "")
        if response.status_code != 202 or not location:
            raise self._refused(ref, response, deadline, "a blob upload", Code.ARTIFACT_NOT_FOUND)
        response.close()
        host = self._host(ref.registry)
        parts = urlsplit(urljoin(f"{host.base}/", location))
        query = urlencode([*parse_qsl(parts.query), ("digest", digest)])
        response, deadline = self._request(
            ref, "PUT", "", data=data, url=urlunsplit(parts._replace(query=query)),
            headers={"Content-Type": "application/octet-stream"},
        )
        if response.status_code != 201:
            raise self._refused(ref, response, deadline, f"blob {digest}", Code.BLOB_NOT_FOUND)
        response.close()


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _check(data: bytes, digest: str, what: str) -> None:
    got = sha256_digest(data)
    if got != digest:
        raise RegistryError(f"{what} has digest {got}, not {digest}: it was altered, in the "
                            "registry or on the way", code=Code.DIGEST_MISMATCH,
                            hint="do not use this artifact; push it again from a trusted copy")
