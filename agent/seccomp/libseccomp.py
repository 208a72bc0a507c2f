"""Compile a spec into a libseccomp filter the way runc does, without loading it.

This is the validation oracle: if libseccomp refuses a rule here, runc would refuse the
container. The enforcement tests load the same filter into a forked child, so what is tested is
what validation accepts. The steps follow runc's ``libcontainer/seccomp/seccomp_linux.go``:
unknown syscall names are skipped, rules whose action equals the default action are skipped
(libseccomp rejects them), and a rule whose conditions repeat an argument index is split into
one rule per condition.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pyseccomp as sc

from agent.model.seccomp import Arg, SeccompSpec

_ACTIONS: dict[str, Callable[[int | None], int]] = {
    "SCMP_ACT_KILL": lambda _e: sc.KILL,
    "SCMP_ACT_KILL_THREAD": lambda _e: sc.KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": lambda _e: sc.KILL_PROCESS,
    "SCMP_ACT_TRAP": lambda _e: sc.TRAP,
    "SCMP_ACT_ERRNO": lambda e: sc.ERRNO(errno.EPERM if e is None else e),
    "SCMP_ACT_TRACE": lambda e: sc.TRACE(errno.EPERM if e is None else e),
    "SCMP_ACT_NOTIFY": lambda _e: sc.NOTIFY,
    "SCMP_ACT_LOG": lambda _e: sc.LOG,
    "SCMP_ACT_ALLOW": lambda _e: sc.ALLOW,
}
ARCHES: dict[str, int] = {
    "SCMP_ARCH_NATIVE": sc.Arch.NATIVE,
    "SCMP_ARCH_X86": sc.Arch.X86,
    "SCMP_ARCH_X86_64": sc.Arch.X86_64,
    "SCMP_ARCH_X32": sc.Arch.X32,
    "SCMP_ARCH_ARM": sc.Arch.ARM,
    "SCMP_ARCH_AARCH64": sc.Arch.AARCH64,
    "SCMP_ARCH_MIPS": sc.Arch.MIPS,
    "SCMP_ARCH_MIPS64": sc.Arch.MIPS64,
    "SCMP_ARCH_MIPS64N32": sc.Arch.MIPS64N32,
    "SCMP_ARCH_MIPSEL": sc.Arch.MIPSEL,
    "SCMP_ARCH_MIPSEL64": sc.Arch.MIPSEL64,
    "SCMP_ARCH_MIPSEL64N32": sc.Arch.MIPSEL64N32,
    "SCMP_ARCH_PPC": sc.Arch.PPC,
    "SCMP_ARCH_PPC64": sc.Arch.PPC64,
    "SCMP_ARCH_PPC64LE": sc.Arch.PPC64LE,
    "SCMP_ARCH_S390": sc.Arch.S390,
    "SCMP_ARCH_S390X": sc.Arch.S390X,
    "SCMP_ARCH_PARISC": sc.Arch.PARISC,
    "SCMP_ARCH_PARISC64": sc.Arch.PARISC64,
    "SCMP_ARCH_RISCV64": sc.Arch.RISCV64,
}
_OPERATORS = {
    "SCMP_CMP_NE": sc.NE,
    "SCMP_CMP_LT": sc.LT,
    "SCMP_CMP_LE": sc.LE,
    "SCMP_CMP_EQ": sc.EQ,
    "SCMP_CMP_GE": sc.GE,
    "SCMP_CMP_GT": sc.GT,
    "SCMP_CMP_MASKED_EQ": sc.MASKED_EQ,
}
_UNKNOWN = -1  # __NR_SCMP_ERROR; other negative numbers are libseccomp pseudo-syscalls


@cache
def syscall_number(arch: str, name: str) -> int:
    """libseccomp's number for ``name`` on ``arch`` (-1 unknown, < -1 not on that arch)."""
    return int(sc.resolve_syscall(ARCHES[arch], name))


def known(name: str) -> bool:
    return syscall_number("SCMP_ARCH_NATIVE", name) != _UNKNOWN


def exists_on(name: str, arches: tuple[str, ...]) -> bool:
    """Whether ``name`` is a real syscall on at least one of ``arches`` (native when empty)."""
    return any(syscall_number(a, name) >= 0 for a in (arches or ("SCMP_ARCH_NATIVE",)))


@dataclass(frozen=True, slots=True)
class CompileFailure(Exception):
    message: str


def _action(name: str, errno_ret: int | None) -> int:
    return _ACTIONS[name](errno_ret)


def _condition(arg: Arg) -> sc.Arg:
    return sc.Arg(arg.index, _OPERATORS[arg.op], arg.value, arg.value_two)


def compile_filter(spec: SeccompSpec) -> sc.SyscallFilter:
    """Build the filter runc would build for ``spec``; raises :class:`CompileFailure`."""
    default = _action(spec.default_action, spec.default_errno_ret)
    filt = sc.SyscallFilter(default)
    for arch in spec.architectures:
        value = ARCHES[arch]
        try:
            if not filt.exist_arch(value):
                filt.add_arch(value)
        except OSError as exc:
            raise CompileFailure(f"libseccomp rejects architecture {arch}: {exc.strerror}") \
                from None
    for rule in spec.syscalls:
        action = _action(rule.action, rule.errno_ret)
        if action == default:
            continue
        conditions = [_condition(a) for a in rule.args]
        indexes = [a.index for a in rule.args]
        split = len(set(indexes)) != len(indexes)
        for name in rule.names:
            if not known(name):
                continue
            try:
                if split:
                    for condition in conditions:
                        filt.add_rule(action, name, condition)
                else:
                    filt.add_rule(action, name, *conditions)
            except OSError as exc:
                raise CompileFailure(
                    f"libseccomp rejects the {rule.action} rule for {name!r}: "
                    f"{exc.strerror or exc} (a container runtime would refuse this profile)"
                ) from None
    return filt
