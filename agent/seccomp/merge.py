"""Union of a seccomp profile with its (already merged) base: pure, deterministic.

Semantics (DESIGN §5), and where they differ from SPO on purpose:

* top-level fields (``defaultAction``, ``architectures``, …) come from the child;
* one decision per syscall name for unconditional rules: the less restrictive action wins; on a
  tie the deeper base's rule, with its ``errnoRet``, stays;
* a rule with ``args`` is never AND-ed with another (SPO concatenates them into one rule, which
  can turn a conditional deny into an allow); one decision per (name, args), same ranking;
* libseccomp lets an unconditional rule for a syscall override every conditional rule for it,
  whatever the order and actions (measured; see tests/unit/test_merge.py), so conditional rules
  for a name that also has an unconditional rule are dropped here and reported as notes: the
  installed file then says exactly what the kernel will do;
* output groups names by identical (action, errnoRet, args), sorted, so the same input always
  gives the same bytes.

Merging is associative, so a base shared by many profiles is merged once and reused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from agent.model.seccomp import Arg, SeccompSpec, SyscallRule, rank

_Decision = tuple[str, int | None]  # (action, errno_ret)
_CondKey = tuple[str, tuple[Arg, ...]]  # (syscall name, args)
K = TypeVar("K")


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged:
    """A merged spec (syscalls normalised and grouped), and the names whose conditional rules
    the merge dropped because an unconditional rule for the same name overrides them."""

    spec: SeccompSpec
    inert: frozenset[str] = frozenset()


def _pick(table: dict[K, _Decision], key: K, new: _Decision) -> None:
    """Keep the less restrictive decision; the one already there (deeper) wins ties."""
    old = table.get(key)
    if old is None or rank(new[0]) > rank(old[0]):
        table[key] = new


def union(child: SeccompSpec, base: Merged | None) -> Merged:
    """``child`` on top of ``base`` (``None``: no base), normalised."""
    unconditional: dict[str, _Decision] = {}
    conditional: dict[_CondKey, _Decision] = {}
    layers: list[Iterable[SyscallRule]] = []
    if base is not None:
        layers.append(base.spec.syscalls)
    layers.append(child.syscalls)
    for rules in layers:  # deepest first, so that ties keep the deeper decision
        for rule in rules:
            decision = (rule.action, rule.errno_ret)
            for name in rule.names:
                if rule.args:
                    _pick(conditional, (name, rule.args), decision)
                else:
                    _pick(unconditional, name, decision)

    groups: dict[tuple[str, int | None, tuple[Arg, ...]], list[str]] = defaultdict(list)
    for name, (action, errno) in unconditional.items():
        groups[(action, errno, ())].append(name)
    inert: set[str] = set()
    for (name, args), (action, errno) in conditional.items():
        if name in unconditional:
            inert.add(name)
            continue
        groups[(action, errno, args)].append(name)

    syscalls = tuple(
        SyscallRule(names=tuple(sorted(names)), action=action, errno_ret=errno, args=args)
        for (action, errno, args), names in sorted(groups.items(), key=_group_order)
    )
    spec = SeccompSpec(
        default_action=child.default_action,
        default_errno_ret=child.default_errno_ret,
        architectures=child.architectures,
        flags=child.flags,
        listener_path=child.listener_path,
        listener_metadata=child.listener_metadata,
        syscalls=syscalls,
    )
    if base is not None:
        inert |= base.inert
    return Merged(spec=spec, inert=frozenset(inert))


def _group_order(
    item: tuple[tuple[str, int | None, tuple[Arg, ...]], list[str]],
) -> tuple[int, str, int, tuple[Arg, ...]]:
    (action, errno, args), _ = item
    # Least restrictive first (the allow-list reads first), then unconditional before conditional.
    return (-rank(action), action, -1 if errno is None else errno, args)


def top_level_differences(child: SeccompSpec, base: SeccompSpec, base_label: str) -> list[str]:
    """Notes for the base's top-level fields that the child's replace (SPO keeps the child's)."""
    notes = []
    for label, mine, theirs in (
        ("defaultAction", child.default_action, base.default_action),
        ("defaultErrnoRet", child.default_errno_ret, base.default_errno_ret),
        ("architectures", list(child.architectures), list(base.architectures)),
        ("flags", list(child.flags), list(base.flags)),
        ("listenerPath", child.listener_path, base.listener_path),
    ):
        if theirs not in (None, "", []) and mine != theirs:
            notes.append(f"base {base_label} sets {label} {theirs!r}; this profile's "
                         f"{mine!r} is used")
    return notes
