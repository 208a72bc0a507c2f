"""Turn the seccomp profiles of a desired state into installable bytes: resolve → merge → render
→ validate, each profile independently (one failing profile never stops the others)."""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping
from dataclasses import dataclass

from agent.codes import Code
from agent.errors import AgentError
from agent.model.profile import ProfileKey
from agent.model.seccomp import SeccompProfile
from agent.seccomp.render import digest, render
from agent.seccomp.resolve import BaseSource, Carry, Resolution, Resolver
from agent.seccomp.validate import check_merged, name_warnings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeccompBuild:
    """A seccomp profile's build: the profile, its resolved chain and the installable bytes."""

    profile: SeccompProfile
    resolution: Resolution
    content: bytes
    digest: str
    warnings: tuple[str, ...]
    notes: tuple[str, ...]


class BuildCache:
    """What one run built, for the next (the daemon): a profile whose resolution is the very
    same object as last time is not rendered, compiled or checked again."""

    def __init__(self) -> None:
        self.carry = Carry()
        self.built: dict[ProfileKey, SeccompBuild] = {}


def build_all(
    profiles: Mapping[ProfileKey, SeccompProfile],
    *,
    invalid: Mapping[str, str],
    max_depth: int,
    oci: BaseSource | None = None,
    validated: Container[str] = (),
    cache: BuildCache | None = None,
) -> dict[ProfileKey, SeccompBuild | AgentError]:
    """Build every profile. ``invalid`` maps names of SeccompProfiles whose documents are in
    error to that error (a base in error fails its children clearly instead of "not found");
    ``validated`` holds digests known good (installed before), whose libseccomp compile is
    skipped."""
    by_name = {key.name: profile for key, profile in profiles.items()}
    resolver = Resolver(by_name, invalid=invalid, oci=oci, max_depth=max_depth,
                        carry=cache.carry if cache else None)
    previous = cache.built if cache else {}
    out: dict[ProfileKey, SeccompBuild | AgentError] = {}
    for key, profile in profiles.items():
        try:
            out[key] = build_one(profile, resolver, validated, previous.get(key))
        except AgentError as exc:
            out[key] = exc
        except Exception as exc:  # a bug one profile meets is that profile's error only
            log.exception("internal error while building %s", key)
            out[key] = AgentError(f"cannot be built: internal error ({type(exc).__name__}); "
                                  "please report it with the manifest", code=Code.BUILD_FAILED)
    resolver.finish()
    if cache is not None:
        cache.built = {k: b for k, b in out.items() if isinstance(b, SeccompBuild)}
    return out


def build_one(
    profile: SeccompProfile,
    resolver: Resolver,
    validated: Container[str],
    previous: SeccompBuild | None = None,
) -> SeccompBuild:
    resolution = resolver.resolve(profile.name)
    if previous is not None and previous.resolution is resolution and (
        previous.profile is profile
    ):
        return previous
    spec = resolution.merged.spec
    content = render(spec)
    content_digest = digest(content)
    if content_digest not in validated:
        check_merged(spec)
    return SeccompBuild(
        profile=profile,
        resolution=resolution,
        content=content,
        digest=content_digest,
        warnings=profile.warnings + name_warnings(profile.spec, spec.architectures),
        notes=profile.notes + resolution.notes(),
    )
