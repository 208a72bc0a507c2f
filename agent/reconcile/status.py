"""What a reconcile found and did, per profile: the values the CLI prints and the API serves."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from agent.backends.base import Probe
from agent.errors import ManifestError
from agent.model.profile import Kind, ProfileKey
from agent.reconcile.driver import Details
from agent.reconcile.plan import Step


class State(StrEnum):
    PENDING = "Pending"  # desired, not (yet) applied: `secprof plan`, or before the first run
    INSTALLED = "Installed"
    VALIDATED = "Validated"  # checked, but the kernel cannot load it (compile-only backends)
    STALE = "Stale"  # installed from a cached base because its registry could not be reached
    ERROR = "Error"
    REMOVING = "Removing"  # removal planned or failed
    DISABLED = "Disabled"  # spec.disabled / spec.state: Disabled; usable as a base


@dataclass(frozen=True, slots=True, kw_only=True)
class ProfileStatus:
    key: ProfileKey
    state: State
    step: Step | None = None  # what this run did (or, for a plan, would do)
    message: str = ""
    error_code: str = ""
    source: str = ""  # manifest file and document index
    digest: str = ""  # of the desired content ("" when it could not be built)
    installed_digest: str = ""  # of what secprof installed last (the last good version)
    installed_at: float | None = None  # unix time the ledger recorded for that install
    location: str = ""
    usage: str = ""  # how a workload references it (a pod's localhostProfile, …)
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # Kind-specific fields (a seccomp chain and merged syscalls, …), rendered on demand.
    details: Details | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    profiles: tuple[ProfileStatus, ...] = ()
    removed: tuple[ProfileKey, ...] = ()
    file_errors: tuple[ManifestError, ...] = ()  # errors not tied to one profile
    notes: tuple[str, ...] = ()  # documents read but not applied, and why (ProfileBinding, …)
    applied: bool = False  # False for a plan
    files_written: int = 0
    started_at: float = 0.0
    duration_s: float = 0.0
    backends: Mapping[Kind, Probe] = field(default_factory=dict)  # each kind's backend probe

    def counts(self) -> Counter[str]:
        """Profiles per state."""
        return Counter(p.state.value for p in self.profiles)

    @property
    def ok(self) -> bool:
        return not self.file_errors and all(p.state is not State.ERROR for p in self.profiles)
