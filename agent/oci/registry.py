"""The registry client: the distribution-protocol reads a host makes, by digest wherever it can.

:meth:`RegistryClient.resolve` turns a tag into a manifest digest (``HEAD``, the
``Docker-Content-Digest`` header); :meth:`~RegistryClient.manifest` and
:meth:`~RegistryClient.blob` fetch by that digest only, and check what they got: its sha256, its
size, and the caps (manifest 4 MiB; profile ``max_profile_bytes``, refused from the descriptor
before a byte is downloaded). A registry serves whatever is on its disk without re-hashing it, so
these checks are the only thing between a tampered blob and an installed profile.

oras-py builds the URLs (:class:`oras.container.Container`) and fetches blobs
(``Registry.get_blob``), through :class:`~agent.oci.transport.HostTransport`'s ``do_request``;
manifests, tags and referrers are requested here, since oras-py parses manifests into dicts (their
digest is over the exact bytes) and has no tag-to-digest call and no referrers API. Each public
method is one operation, under one deadline, unless it runs inside a wider one
(:meth:`RegistryClient.operation`: the source resolves a whole base in one). Writes are
:mod:`agent.publish.upload`'s.

Importing this module imports oras-py and requests (~0.3 s): only code that must really talk to
a registry does, never a command served from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from urllib.parse import urlencode

import oras.container
import requests

from agent.codes import Code
from agent.errors import RegistryError
from agent.oci.artifact import ACCEPT, INDEX_TYPE
from agent.oci.auth import Credential, HostAuth
from agent.oci.redirects import redirect_rule
from agent.oci.reference import DIGEST_RE, Reference
from agent.oci.transport import (
    HostTransport,
    HttpPolicy,
    read_body,
    registry_message,
)
from agent.seccomp.render import digest as sha256_digest

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def container(ref: Reference) -> oras.container.Container:
    """oras-py's view of ``ref``'s repository. Built field by field: oras-py parses names by
    Docker's rules, where a first component without a dot or colon is not a host
    (``localhost/x``), and secprof has parsed the reference already (:mod:`.reference`)."""
    namespace, _, name = ref.repository.rpartition("/")
    out = oras.container.Container(name, registry=ref.registry)
    out.namespace = namespace or None
    return out


class RegistryClient:
    """Talks to any number of registries; one :class:`HostTransport` (session, auth) each.

    ``scope_of`` maps ``host/repository`` to the trust scope that covers it (``None``: none
    does); a registry may redirect only within one scope. Without it, only within one
    repository.
    """

    def __init__(self, *, policy: HttpPolicy, credentials: Mapping[str, Credential],
                 session_factory: Callable[[], requests.Session] = requests.Session,
                 sleep: Callable[[float], None] = time.sleep,
                 scope_of: Callable[[str], object | None] | None = None) -> None:
        self._policy = policy
        self._credentials = credentials
        self._session_factory = session_factory
        self._sleep = sleep
        self._redirects = redirect_rule(plain_http=policy.plain_http,
                                        scope_of=scope_of or (lambda name: name))
        self._hosts: dict[str, HostTransport] = {}

    def transport(self, registry: str) -> HostTransport:
        """The one transport for ``registry`` (built on first use)."""
        host = self._hosts.get(registry)
        if host is None:
            auth = HostAuth(registry, self._credentials.get(registry),
                            plain_http=registry in self._policy.plain_http, clock=time.monotonic)
            host = HostTransport(registry, auth=auth, policy=self._policy,
                                 session=self._session_factory(), sleep=self._sleep,
                                 redirects=self._redirects)
            self._hosts[registry] = host
        return host

    def operation(self, registry: str) -> AbstractContextManager[float]:
        """Make everything asked of ``registry`` inside the block one operation, under one
        deadline (``timeout_s``): what a host does to resolve one base, signatures included."""
        return self.transport(registry).operation()

    def request(self, ref: Reference, method: str, path: str, *,
                headers: Mapping[str, str] | None = None, data: bytes | None = None,
                ) -> requests.Response:
        """One request inside the current operation, for ``path`` (a URL without its scheme,
        as :class:`oras.container.Container` builds them)."""
        host = self.transport(ref.registry)
        return host.do_request(f"{host.prefix}://{path}", method, data=data,
                               headers=dict(headers or {}))

    def refused(self, ref: Reference, response: requests.Response, deadline: float,
                what: str, not_found_code: Code) -> RegistryError:
        """The error for an answer that is not the one asked for."""
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
        where = container(ref).manifest_url(ref.tag)
        accept = {"Accept": ", ".join(ACCEPT)}
        with self.transport(ref.registry).operation() as deadline:
            response = self.request(ref, "HEAD", where, headers=accept)
            if response.status_code != 200:
                raise self.refused(ref, response, deadline, f"tag {ref.tag!r}",
                                   Code.ARTIFACT_NOT_FOUND)
            response.close()
            found = response.headers.get("Docker-Content-Digest", "")
            if not found:  # the header is optional: hash the manifest itself
                response = self.request(ref, "GET", where, headers=accept)
                if response.status_code != 200:
                    raise self.refused(ref, response, deadline, f"tag {ref.tag!r}",
                                       Code.ARTIFACT_NOT_FOUND)
                found = sha256_digest(read_body(response, MAX_MANIFEST_BYTES, deadline))
        if not DIGEST_RE.match(found):
            raise RegistryError(f"{ref}: the registry names digest {found[:80]!r}; secprof "
                                "accepts sha256 only", code=Code.DIGEST_UNSUPPORTED)
        return found

    def manifest(self, ref: Reference, digest: str) -> bytes:
        """The manifest's exact bytes, checked against ``digest``."""
        with self.transport(ref.registry).operation() as deadline:
            response = self.request(ref, "GET", container(ref).manifest_url(digest),
                                    headers={"Accept": ", ".join(ACCEPT)})
            if response.status_code != 200:
                raise self.refused(ref, response, deadline, f"manifest {digest}",
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
        host = self.transport(ref.registry)
        with host.operation() as deadline:
            response = host.get_blob(container(ref), digest, stream=True)
            if response.status_code != 200:
                raise self.refused(ref, response, deadline, f"blob {digest}", Code.BLOB_NOT_FOUND)
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
        with self.transport(ref.registry).operation() as deadline:
            response = self.request(ref, "GET", container(ref).manifest_url(tag),
                                    headers={"Accept": ", ".join(ACCEPT)})
            if response.status_code == 404:
                response.close()
                return None
            if response.status_code != 200:
                raise self.refused(ref, response, deadline, f"tag {tag!r}",
                                   Code.ARTIFACT_NOT_FOUND)
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
        repo = container(ref)
        where = (f"{repo.registry}/v2/{repo.api_prefix}/referrers/{digest}?"
                 f"{urlencode({'artifactType': artifact_type})}")
        with self.transport(ref.registry).operation() as deadline:
            response = self.request(ref, "GET", where, headers={"Accept": INDEX_TYPE})
            if response.status_code in (400, 404, 405) or (
                    response.status_code == 200 and _media_type(response) != INDEX_TYPE):
                response.close()
                return None
            if response.status_code != 200:
                raise self.refused(ref, response, deadline, f"the referrers of {digest}",
                                   Code.ARTIFACT_NOT_FOUND)
            return read_body(response, max_bytes, deadline, oversize=RegistryError(
                f"{ref.name}: the referrers of {digest} are listed in more than {max_bytes} "
                "bytes", code=Code.MANIFEST_TOO_LARGE))


def _media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip()


def _check(data: bytes, digest: str, what: str) -> None:
    got = sha256_digest(data)
    if got != digest:
        raise RegistryError(f"{what} has digest {got}, not {digest}: it was altered, in the "
                            "registry or on the way", code=Code.DIGEST_MISMATCH,
                            hint="do not use this artifact; push it again from a trusted copy")
