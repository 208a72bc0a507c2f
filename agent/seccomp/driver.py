"""The seccomp driver: SeccompProfiles → merged OCI JSON files (see :mod:`agent.seccomp.build`)."""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any, Protocol

from agent.backends.base import Backend
from agent.errors import AgentError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.reconcile.driver import Built
from agent.seccomp.build import BuildCache, SeccompBuild, build_all
from agent.seccomp.render import rule_json
from agent.seccomp.resolve import BaseSource, Link

_KINDS = frozenset({Kind.SECCOMP})


class FileBackend(Backend, Protocol):
    """The seccomp backend (:class:`agent.backends.seccomp.SeccompBackend`): files under
    kubelet's seccomp root."""

    def relative(self, key: ProfileKey) -> str:
        """The profile's path relative to that root."""
        ...


class SeccompDriver:
    """Builds every SeccompProfile through its base chain; ``cache`` (the daemon's) carries
    resolutions and builds from one reconcile to the next."""

    name = "seccomp"
    kinds = _KINDS

    def __init__(
        self,
        backend: FileBackend,
        *,
        max_depth: int,
        oci: BaseSource | None = None,
        cache: BuildCache | None = None,
    ) -> None:
        self.backend = backend
        self._max_depth = max_depth
        self._oci = oci
        self._cache = cache

    def build(
        self, desired: DesiredState, *, validated: Container[str]
    ) -> dict[ProfileKey, Built | AgentError]:
        profiles = {k: p for k, p in desired.of_kinds(_KINDS).items()
                    if isinstance(p, SeccompProfile)}
        built = build_all(profiles, invalid=desired.invalid_names(Kind.SECCOMP),
                          max_depth=self._max_depth, oci=self._oci, validated=validated,
                          cache=self._cache)
        return {key: _neutral(key, b) if isinstance(b, SeccompBuild) else b
                for key, b in built.items()}

    def details(self, built: Built) -> Mapping[str, object]:
        """The resolved chain (each link's reference, digest, signer) and the merged syscalls."""
        build = built.detail
        assert isinstance(build, SeccompBuild)
        return {
            "chain": [link_json(link) for link in build.resolution.chain],
            "syscalls": [rule_json(rule) for rule in build.resolution.merged.spec.syscalls],
        }

    def usage(self, key: ProfileKey) -> str:
        """A pod's ``seccompProfile.localhostProfile`` (relative to kubelet's seccomp root)."""
        return self.backend.relative(key)


def _neutral(key: ProfileKey, build: SeccompBuild) -> Built:
    stale = build.resolution.stale_reasons()
    return Built(
        key=key, origin=build.profile.origin, content=build.content, digest=build.digest,
        disabled=build.profile.disabled, warnings=build.warnings, notes=build.notes,
        stale=("a base is served from the cache: " + "; ".join(stale),) if stale else (),
        detail=build,
    )


def link_json(link: Link) -> dict[str, Any]:
    """One link of a chain as the status API and ``secprof resolve --json`` show it."""
    return {
        "reference": link.reference,
        "digest": link.content_digest(),
        "source": link.source,
        "signer": link.signer,
        "stale": link.stale,
        "staleReason": link.stale_reason,
    }
