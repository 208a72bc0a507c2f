"""One profile's own rules, read the way runc and libseccomp read them.

A profile may list a syscall in more than one rule. runc adds the rules to libseccomp in file
order and skips a rule whose action equals the default action; libseccomp then keeps the
*first* unconditional rule for a syscall and ignores later ones, and refuses a second rule with
the same arguments but another action ("file exists": the container does not start). Proved
with runc in tests/integration/test_enforcement.py.

:func:`as_runtime_reads` keeps exactly the rules that take effect, so the installed file says
what runc would do with the file as written, and reports each shadowed rule by naming both. The
chain merge that follows ranks *between* profiles (a child may loosen its base); within one
profile the file order decides, never the looser action, so the result is never looser than
runc on the raw file.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model.seccomp import Arg, SeccompSpec, SyscallRule
from agent.seccomp.libseccomp import action_value


@dataclass(frozen=True, slots=True)
class RuleConflict(Exception):
    """Two rules for one syscall and the same arguments with different actions."""

    field: str
    message: str


def _label(index: int, rule: SyscallRule) -> str:
    errno = f" errnoRet {rule.errno_ret}" if rule.errno_ret is not None else ""
    cond = " with args" if rule.args else ""
    return f"syscalls[{index}] ({rule.action}{errno}{cond})"


def as_runtime_reads(spec: SeccompSpec) -> tuple[SeccompSpec, tuple[str, ...]]:
    """``spec`` with shadowed names removed, and a warning for each; raises
    :class:`RuleConflict` where runc would refuse the profile."""
    listed = [(name, rule.args) for rule in spec.syscalls for name in rule.names]
    if len(set(listed)) == len(listed):
        return spec, ()  # the usual case: every name (with its arguments) is listed once
    default = action_value(spec.default_action, spec.default_errno_ret)
    # Where each (name, args) is decided: (rule index, value); args () is unconditional.
    decided: dict[tuple[str, tuple[Arg, ...]], tuple[int, int]] = {}
    for index, rule in enumerate(spec.syscalls):
        value = action_value(rule.action, rule.errno_ret)
        for name in rule.names:
            key = (name, rule.args)
            if value == default:
                continue  # runc skips it
            first = decided.get(key)
            if first is None:
                decided[key] = (index, value)
            elif first[1] != value and rule.args:
                raise RuleConflict(
                    f"syscalls[{index}]",
                    f"{name!r} has the same arguments as in "
                    f"{_label(first[0], spec.syscalls[first[0]])} but action {rule.action}: "
                    "libseccomp refuses the pair, so runc would not start the container",
                )
    if not any(decided.get((name, rule.args), (index,))[0] != index
               for index, rule in enumerate(spec.syscalls) for name in rule.names):
        return spec, ()  # repeats of a rule equal to the default only: nothing changes
    warnings: list[str] = []
    rules: list[SyscallRule] = []
    for index, rule in enumerate(spec.syscalls):
        value = action_value(rule.action, rule.errno_ret)
        keep: list[str] = []
        for name in rule.names:
            winner = decided.get((name, rule.args))
            if winner is None or winner[0] == index:
                keep.append(name)
            elif winner[1] != value:
                win = spec.syscalls[winner[0]]
                if value == default:
                    why = "it equals defaultAction, which runc skips"
                else:
                    why = "the first rule for a syscall wins in libseccomp"
                warnings.append(
                    f"{name!r}: {_label(index, rule)} has no effect, "
                    f"{_label(winner[0], win)} applies ({why})"
                )
        if keep:
            rules.append(SyscallRule(names=tuple(keep), action=rule.action,
                                     errno_ret=rule.errno_ret, args=rule.args))
    return _with_rules(spec, tuple(rules)), tuple(warnings)


def _with_rules(spec: SeccompSpec, rules: tuple[SyscallRule, ...]) -> SeccompSpec:
    return SeccompSpec(
        default_action=spec.default_action, default_errno_ret=spec.default_errno_ret,
        architectures=spec.architectures, flags=spec.flags, listener_path=spec.listener_path,
        listener_metadata=spec.listener_metadata, syscalls=rules,
    )
