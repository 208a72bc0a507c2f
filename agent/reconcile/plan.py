"""Planning: a pure function from (desired, ledger, actual) to the steps that converge them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from agent.model.profile import ProfileKey
from agent.reconcile.ledger import Entry


class Step(StrEnum):
    ADD = "add"  # desired, never installed
    UPDATE = "update"  # desired content changed
    REPAIR = "repair"  # unchanged, but what is on the host drifted (edited or deleted)
    REMOVE = "remove"  # installed by us, no longer desired
    UNCHANGED = "unchanged"
    HOLD = "hold"  # installed by us, its manifest is in error: the last good version stays

    @property
    def mutates(self) -> bool:
        return self in (Step.ADD, Step.UPDATE, Step.REPAIR, Step.REMOVE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    key: ProfileKey
    step: Step


def make_plan(
    *,
    desired: Mapping[ProfileKey, str],
    held: frozenset[ProfileKey],
    ledger: Mapping[ProfileKey, Entry],
    actual: Mapping[ProfileKey, str | None],
) -> tuple[Planned, ...]:
    """One step per key, sorted by key.

    ``desired`` maps each installable key to the digest of its rendered content; ``held`` are
    keys whose desired state is unknown or in error (never removed); ``ledger`` is what secprof
    installed; ``actual`` the digest on the host of each ledger key (``None``: missing).
    """
    out: list[Planned] = []
    for key in sorted(desired.keys() | ledger.keys()):
        want = desired.get(key)
        entry = ledger.get(key)
        if want is None:
            if entry is None:
                continue
            step = Step.HOLD if key in held else Step.REMOVE
        elif entry is None:
            step = Step.ADD
        elif entry.digest != want:
            step = Step.UPDATE
        elif actual.get(key) != want:
            step = Step.REPAIR
        else:
            step = Step.UNCHANGED
        out.append(Planned(key=key, step=step))
    return tuple(out)
