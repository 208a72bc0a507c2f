"""The planner is a pure function; each case is one row."""

from __future__ import annotations

import pytest

from agent.model.profile import Kind, ProfileKey
from agent.reconcile.ledger import Entry
from agent.reconcile.plan import Step, make_plan

K = ProfileKey(Kind.SECCOMP, "p")
A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def entry(digest: str) -> Entry:
    return Entry(key=K, digest=digest, location="/x/p.json", source="p.yaml", installed_at=1.0)


@pytest.mark.parametrize(("desired", "held", "ledger", "actual", "step"), [
    ({K: A}, False, None, None, Step.ADD),
    ({K: A}, False, A, A, Step.UNCHANGED),
    ({K: B}, False, A, A, Step.UPDATE),
    ({K: A}, False, A, None, Step.REPAIR),  # deleted by someone else
    ({K: A}, False, A, B, Step.REPAIR),  # edited by someone else
    ({}, False, A, A, Step.REMOVE),
    ({}, True, A, A, Step.HOLD),  # manifest in error: the last good version stays
    ({}, False, None, None, None),
])
def test_steps(desired: dict[ProfileKey, str], held: bool, ledger: str | None,
               actual: str | None, step: Step | None) -> None:
    plan = make_plan(desired=desired, held=frozenset({K}) if held else frozenset(),
                     ledger={K: entry(ledger)} if ledger else {}, actual={K: actual})
    assert [p.step for p in plan] == ([step] if step else [])


def test_plan_is_sorted_by_key() -> None:
    keys = [ProfileKey(Kind.SECCOMP, n) for n in ("c", "a", "b")]
    plan = make_plan(desired={k: A for k in keys}, held=frozenset(), ledger={}, actual={})
    assert [p.key.name for p in plan] == ["a", "b", "c"]
