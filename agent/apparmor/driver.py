"""The AppArmor driver: AppArmorProfiles → policy text (see :mod:`agent.apparmor.render`),
installed by :class:`~agent.backends.apparmor.AppArmorBackend`."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from agent.apparmor.render import Rendered, render
from agent.backends.apparmor import AppArmorBackend
from agent.backends.apparmor_parser import Source
from agent.errors import AgentError
from agent.model.apparmor import AppArmorProfile
from agent.model.desired import DesiredState
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.driver import Built

_KINDS = frozenset({Kind.APPARMOR})


@dataclass(frozen=True, slots=True, kw_only=True)
class AppArmorBuild:
    profile: AppArmorProfile
    rendered: Rendered


class AppArmorDriver:
    """Renders every AppArmorProfile; compiling happens in the backend, one call per batch."""

    name = "apparmor"
    kinds = _KINDS

    def __init__(self, backend: AppArmorBackend) -> None:
        self.backend = backend

    def build(
        self, desired: DesiredState, *, validated: Container[str]
    ) -> dict[ProfileKey, Built | AgentError]:
        """Pure but for one thing: it tells the backend where each text came from, so that a
        parser error can name the manifest field (``validated`` is not needed: rendering is
        cheap, and the parser runs only for changed profiles)."""
        out: dict[ProfileKey, Built | AgentError] = {}
        sources: dict[str, Source] = {}
        for key, profile in desired.of_kinds(_KINDS).items():
            assert isinstance(profile, AppArmorProfile)
            rendered = render(profile)
            sources[rendered.digest] = Source(
                origin=str(profile.origin), fields=rendered.fields,
                raw_field="spec.policy" if profile.raw else "",
            )
            out[key] = Built(
                key=key, origin=profile.origin, content=rendered.content,
                digest=rendered.digest, disabled=profile.disabled,
                detail=AppArmorBuild(profile=profile, rendered=rendered),
            )
        self.backend.sources = sources
        return out

    def details(self, built: Built) -> Mapping[str, object]:
        """The profile's mode, its form (abstract or raw) and the policy text it installs."""
        build = built.detail
        assert isinstance(build, AppArmorBuild)
        return {
            "mode": build.profile.mode.value,
            "form": "raw" if build.profile.raw else "abstract",
            "policy": build.rendered.text,
        }

    def usage(self, key: ProfileKey) -> str:
        """A pod's ``appArmorProfile: {type: Localhost, localhostProfile: <name>}``; the older
        annotation (and runtimes) spell it ``localhost/<name>``."""
        return f"localhost/{key.name}"
