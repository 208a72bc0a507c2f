"""The seam between the kind-neutral reconciler and each kind: one :class:`Driver` per backend.

A driver turns its kinds' profiles into installable bytes (:meth:`Driver.build`, pure), says what
the status shows for them (:meth:`Driver.details`) and how a workload references one
(:meth:`Driver.usage`); its :class:`~agent.backends.base.Backend` touches the host. The reconciler
plans, applies and records through this seam only, and names no kind.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import Protocol

from agent.backends.base import Backend
from agent.errors import AgentError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, Origin, ProfileKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """One profile ready to install, whatever its kind.

    ``stale`` says why part of it was served from a cache (an ``oci://`` base whose registry
    could not be reached); ``detail`` is the driver's own data, read back by its ``details``.
    """

    key: ProfileKey
    origin: Origin
    content: bytes
    digest: str
    disabled: bool = False
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    detail: object = None


class Driver(Protocol):
    """One backend's profiles: build them, describe them. One module per kind implements it
    (``agent/<kind>/driver.py``); :func:`agent.app.build_drivers` lists them, fastest first."""

    @property
    def name(self) -> str:
        """Short backend name (``seccomp``), as logs and the status API show it."""
        ...

    @property
    def kinds(self) -> frozenset[Kind]: ...

    @property
    def backend(self) -> Backend: ...

    def build(
        self, desired: DesiredState, *, validated: Container[str]
    ) -> Mapping[ProfileKey, Built | AgentError]:
        """Every valid profile of :attr:`kinds` in ``desired``, built independently: one
        failure is that profile's error, never the others'. ``validated`` holds digests known
        good (installed before), whose expensive checks may be skipped."""
        ...

    def details(self, built: Built) -> Mapping[str, object]:
        """JSON-ready, kind-specific fields the status API shows for one profile."""
        ...

    def usage(self, key: ProfileKey) -> str:
        """How a workload references the profile (a pod's ``localhostProfile``, …)."""
        ...


@dataclass(frozen=True, slots=True)
class Details:
    """A profile's kind-specific details, rendered only when asked for (``secprof status
    KIND/NAME``), not for every row of every reconcile."""

    driver: Driver
    built: Built

    def render(self) -> Mapping[str, object]:
        return self.driver.details(self.built)
