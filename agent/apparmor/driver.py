"""The AppArmor driver: AppArmorProfiles → policy text (see :mod:`agent.apparmor.render`),
installed by :class:`~agent.backends.apparmor.AppArmorBackend`.

The renderer and the model are imported by the first build with a profile to render: a host
with no AppArmorProfile never imports them (``tests/integration/test_import_closure.py``)."""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.backends.apparmor import AppArmorBackend
from agent.errors import AgentError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.driver import Built

if TYPE_CHECKING:
    from agent.apparmor.render import Rendered
    from agent.backends.apparmor_parser import Source
    from agent.model.apparmor import AppArmorProfile

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
        profiles = desired.of_kinds(_KINDS)
        if not profiles:  # nothing to render: the renderer is not even imported
            self.backend.sources = {}
            return {}
        from agent.apparmor.render import render  # noqa: PLC0415 -- see the module docstring
        from agent.backends.apparmor_parser import Source  # noqa: PLC0415
        from agent.model.apparmor import AppArmorProfile  # noqa: PLC0415

        out: dict[ProfileKey, Built | AgentError] = {}
        sources: dict[str, Source] = {}
        for key, profile in profiles.items():
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
