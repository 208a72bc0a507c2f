"""Union of a seccomp profile with its (already merged) base: pure, deterministic.

Semantics (DESIGN §5), and where they differ from SPO on purpose:

* top-level fields (``defaultAction``, ``architectures``, …) come from the child;
* one decision per syscall name for unconditional rules: the less restrictive action wins; on a
  tie the deeper base's rule, with its ``errnoRet``, stays;
* a rule with ``args`` is never AND-ed with another (SPO concatenates them into one rule, which
  can turn a conditional deny into an allow); one decision per (name, args), same ranking;
* libseccomp lets an unconditional rule for a syscall override every conditional rule for it,
  whatever the order and actions (tests/integration/test_enforcement.py), so conditional rules
  for a name that also has an unconditional rule are dropped here and reported as notes: the
  installed file then says exactly what the kernel will do;
* output groups names by identical (action, errnoRet, args), sorted, so the same input always
  gives the same bytes.

Merging is associative, so a base shared by many profiles is merged once and reused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model.seccomp import ACTION_RANK, Arg, SeccompSpec, SyscallRule, rank

_Decision = tuple[str, int | None]  # (action, errno_ret)
_CondKey = tuple[str, tuple[Arg, ...]]  # (syscall name, args)


_GroupKey = tuple[str, int | None, tuple[Arg, ...]]  # (action, errno_ret, args)


@dataclass(frozen=True, slots=True, kw_only=True)
class Merged:
    """A merged spec (syscalls normalised and grouped), the names whose conditional rules the
    merge dropped because an unconditional rule for the same name overrides them, and the
    tables behind the spec: each name's decision, and each group's sorted names. They are kept
    so that merging a child on top costs only the child's rules, not the whole chain again."""

    spec: SeccompSpec
    inert: frozenset[str] = frozenset()
    unconditional: Mapping[str, _Decision] = field(default_factory=dict, repr=False,
                                                   compare=False)
    conditional: Mapping[_CondKey, _Decision] = field(default_factory=dict, repr=False,
                                                      compare=False)
    groups: Mapping[_GroupKey, tuple[str, ...]] = field(default_factory=dict, repr=False,
                                                        compare=False)  # sorted names


def union(child: SeccompSpec, base: Merged | None) -> Merged:
    """``child`` on top of ``base`` (``None``: no base), normalised."""
    unconditional: dict[str, _Decision] = dict(base.unconditional) if base else {}
    conditional: dict[_CondKey, _Decision] = dict(base.conditional) if base else {}
    # Copy-on-write: a base's groups are shared until this merge changes one. A changed group
    # is the names added to it and the names moved out of it (a name only ever moves to a less
    # restrictive group, so it never comes back to one it left), put together with the base's
    # sorted names once at the end: Timsort takes a sorted run and a few more in linear time.
    groups: dict[_GroupKey, tuple[str, ...]] = dict(base.groups) if base else {}
    changed: dict[_GroupKey, tuple[list[str], set[str]]] = {}

    def group(key: _GroupKey) -> tuple[list[str], set[str]]:
        names = changed.get(key)
        if names is None:
            names = changed[key] = ([], set())
        return names

    ranks = ACTION_RANK
    for rule in child.syscalls:  # the base's decisions are already in: they win ties
        decision = (rule.action, rule.errno_ret)
        new_rank = ranks[rule.action]
        args = rule.args
        table: dict[Any, _Decision] = conditional if args else unconditional
        target: list[str] | None = None  # this rule's group, looked up once per rule
        for name in rule.names:
            key: Any = (name, args) if args else name
            old = table.get(key)
            if old is not None:
                if new_rank <= ranks[old[0]]:
                    continue
                group((*old, args))[1].add(name)
            table[key] = decision
            if target is None:
                target = group((*decision, args))[0]
            target.append(name)
    for key, (added, moved) in changed.items():
        members = [*groups.get(key, ()), *added]
        if moved:
            members = [n for n in members if n not in moved]
        if members:
            groups[key] = tuple(sorted(members))
        else:
            groups.pop(key, None)

    inert = frozenset(name for name, _ in conditional if name in unconditional)
    rules = []
    for key, names in sorted(groups.items(), key=_group_order):
        shown = tuple(n for n in names if n not in inert) if key[2] and inert else names
        if shown:
            rules.append(SyscallRule(names=tuple(shown), action=key[0], errno_ret=key[1],
                                     args=key[2]))
    spec = SeccompSpec(
        default_action=child.default_action,
        default_errno_ret=child.default_errno_ret,
        architectures=child.architectures,
        flags=child.flags,
        listener_path=child.listener_path,
        listener_metadata=child.listener_metadata,
        syscalls=tuple(rules),
    )
    return Merged(spec=spec, inert=inert, unconditional=unconditional,
                  conditional=conditional, groups=groups)


def _group_order(item: tuple[_GroupKey, tuple[str, ...]]) -> tuple[int, str, int, tuple[Arg, ...]]:
    (action, errno, args), _ = item
    # Least restrictive first (the allow-list reads first), then unconditional before conditional.
    return (-rank(action), action, -1 if errno is None else errno, args)


def top_level_differences(child: SeccompSpec, base: SeccompSpec, base_label: str) -> list[str]:
    """Notes for the base's top-level fields that the child's replace (SPO keeps the child's)."""
    notes = []
    for label, mine, theirs in (  # tuples as they are: json.dumps writes them as lists
        ("defaultAction", child.default_action, base.default_action),
        ("defaultErrnoRet", child.default_errno_ret, base.default_errno_ret),
        ("architectures", child.architectures, base.architectures),
        ("flags", child.flags, base.flags),
        ("listenerPath", child.listener_path, base.listener_path),
    ):
        if theirs not in (None, "", ()) and mine != theirs:
            notes.append(f"base {base_label} sets {label} {json.dumps(theirs)}; this profile's "
                         f"{json.dumps(mine)} is used")
    return notes
