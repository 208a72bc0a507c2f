"""The narrow seam between reconciling and the host: one :class:`Backend` per driver."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from agent.errors import AgentError
from agent.model.profile import ProfileKey


class Availability(StrEnum):
    INSTALLED = "installed"  # profiles are installed and enforced
    COMPILE_ONLY = "compile-only"  # profiles are validated, the kernel cannot load them
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    availability: Availability
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Install:
    key: ProfileKey
    content: bytes
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    installs: tuple[Install, ...] = ()
    removals: tuple[ProfileKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.installs or self.removals)


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What happened to one key of a batch. ``changed``: the host was really modified."""

    key: ProfileKey
    error: AgentError | None = None
    changed: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


class Backend(Protocol):
    """What one driver's profiles need of the host; the only code that mutates it."""

    def probe(self) -> Probe:
        """Can this host install profiles of this kind, and if not, why."""
        ...

    def location(self, key: ProfileKey) -> str:
        """Where the profile lives on the host (a path, a module or profile name)."""
        ...

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        """The digest of what is really installed for each of ``keys`` (``None``: absent)."""
        ...

    def apply(self, batch: Batch) -> list[Result]:
        """Install and remove, with as few host calls as possible; one result per key."""
        ...
