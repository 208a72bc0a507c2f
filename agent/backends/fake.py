"""An in-memory backend and driver, beside the protocols they implement.

For the tests of the reconciler, the daemon and the API that are not about a real backend: they
keep what is "installed" in a dict, count every host call, and fail where told to. The real
backends are tested against the real tools (files, ``apparmor_parser``, ``semodule``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field

from agent.backends.base import Availability, Batch, Probe, Result
from agent.codes import Code
from agent.errors import AgentError, BackendError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, Origin, ProfileKey
from agent.reconcile.driver import Built


def fake_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


@dataclass(slots=True)
class FakeBackend:
    """Installs into :attr:`installed`; ``fail`` maps names to the error their install or
    removal gets; :attr:`batches` records every ``apply`` (a host call)."""

    probe_result: Probe = field(default_factory=lambda: Probe(
        availability=Availability.INSTALLED))
    installed: dict[ProfileKey, bytes] = field(default_factory=dict)
    fail: dict[str, AgentError] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    probes: int = 0

    def probe(self) -> Probe:
        self.probes += 1
        return self.probe_result

    def location(self, key: ProfileKey) -> str:
        return f"fake:{key.kind.short}/{key.name}"

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        return {k: fake_digest(self.installed[k]) if k in self.installed else None for k in keys}

    def apply(self, batch: Batch) -> list[Result]:
        self.batches.append(batch)
        results = []
        for install in batch.installs:
            error = self.fail.get(install.key.name)
            if error is None:
                changed = self.installed.get(install.key) != install.content
                self.installed[install.key] = install.content
                results.append(Result(key=install.key, changed=changed))
            else:
                results.append(Result(key=install.key, error=error))
        for key in batch.removals:
            error = self.fail.get(key.name)
            if error is None:
                results.append(Result(key=key, changed=self.installed.pop(key, None) is not None))
            else:
                results.append(Result(key=key, error=error))
        return results


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeProfile:
    """A profile of any kind, for desired states built in tests (satisfies ``Profile``)."""

    key: ProfileKey
    origin: Origin
    body: str = ""
    disabled: bool = False

    @property
    def name(self) -> str:
        return self.key.name


class FakeDriver:
    """Builds each profile of ``kinds`` into a small JSON document; a profile whose name is in
    ``broken`` fails to build (its error stands for a render or compile failure)."""

    def __init__(self, name: str, kinds: Iterable[Kind], backend: FakeBackend | None = None,
                 *, broken: Container[str] = ()) -> None:
        self.name = name
        self.kinds = frozenset(kinds)
        self.backend = backend or FakeBackend()
        self._broken = broken
        self.builds = 0

    def build(self, desired: DesiredState, *, validated: Container[str]
              ) -> dict[ProfileKey, Built | AgentError]:
        self.builds += 1
        out: dict[ProfileKey, Built | AgentError] = {}
        for key, profile in desired.of_kinds(self.kinds).items():
            if key.name in self._broken:
                out[key] = BackendError(f"{key} does not render", code=Code.BACKEND_FAILED)
                continue
            body = profile.body if isinstance(profile, FakeProfile) else ""
            content = json.dumps({"kind": key.kind.value, "name": key.name, "body": body},
                                 sort_keys=True).encode()
            out[key] = Built(key=key, origin=profile.origin, content=content,
                             digest=fake_digest(content), disabled=profile.disabled,
                             detail={"body": body})
        return out

    def details(self, built: Built) -> Mapping[str, object]:
        return dict(built.detail) if isinstance(built.detail, Mapping) else {}

    def usage(self, key: ProfileKey) -> str:
        return f"fake/{key.name}"
