"""Compile a spec into a libseccomp filter the way runc does, without loading it.

This is the validation oracle: if libseccomp refuses a rule here, runc would refuse the
container. The enforcement tests load the same filter into a forked child, so what is tested is
what validation accepts. The steps follow runc's ``libcontainer/seccomp/seccomp_linux.go``:
unknown syscall names are skipped, rules whose action equals the default action are skipped
(libseccomp rejects them), and a rule whose conditions repeat an argument index is split into
one rule per condition.

libseccomp is called through ctypes directly (``libseccomp.so.2``, the ABI Debian ships): the
handful of functions needed here does not justify a binding whose import runs ``ldconfig`` in a
subprocess (~80 ms on every ``secprof apply``). The constants are libseccomp's ``seccomp.h``.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from agent.codes import Code
from agent.errors import ValidationError
from agent.model.seccomp import Arg, SeccompSpec

_AUDIT_64 = 0x80000000
_AUDIT_LE = 0x40000000
_MIPS64N32 = 0x20000000
ARCHES: dict[str, int] = {
    "SCMP_ARCH_NATIVE": 0,
    "SCMP_ARCH_X86": 3 | _AUDIT_LE,
    "SCMP_ARCH_X86_64": 62 | _AUDIT_64 | _AUDIT_LE,
    "SCMP_ARCH_X32": 62 | _AUDIT_LE,
    "SCMP_ARCH_ARM": 40 | _AUDIT_LE,
    "SCMP_ARCH_AARCH64": 183 | _AUDIT_64 | _AUDIT_LE,
    "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _AUDIT_64,
    "SCMP_ARCH_MIPS64N32": 8 | _AUDIT_64 | _MIPS64N32,
    "SCMP_ARCH_MIPSEL": 8 | _AUDIT_LE,
    "SCMP_ARCH_MIPSEL64": 8 | _AUDIT_64 | _AUDIT_LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _AUDIT_64 | _AUDIT_LE | _MIPS64N32,
    "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _AUDIT_64,
    "SCMP_ARCH_PPC64LE": 21 | _AUDIT_64 | _AUDIT_LE,
    "SCMP_ARCH_S390": 22,
    "SCMP_ARCH_S390X": 22 | _AUDIT_64,
    "SCMP_ARCH_PARISC": 15,
    "SCMP_ARCH_PARISC64": 15 | _AUDIT_64,
    "SCMP_ARCH_RISCV64": 243 | _AUDIT_64 | _AUDIT_LE,
}
_ACTIONS: dict[str, Callable[[int | None], int]] = {
    "SCMP_ACT_KILL_PROCESS": lambda _e: 0x80000000,
    "SCMP_ACT_KILL_THREAD": lambda _e: 0x00000000,
    "SCMP_ACT_KILL": lambda _e: 0x00000000,
    "SCMP_ACT_TRAP": lambda _e: 0x00030000,
    "SCMP_ACT_ERRNO": lambda e: 0x00050000 | ((errno.EPERM if e is None else e) & 0xFFFF),
    "SCMP_ACT_TRACE": lambda e: 0x7FF00000 | ((errno.EPERM if e is None else e) & 0xFFFF),
    "SCMP_ACT_NOTIFY": lambda _e: 0x7FC00000,
    "SCMP_ACT_LOG": lambda _e: 0x7FFC0000,
    "SCMP_ACT_ALLOW": lambda _e: 0x7FFF0000,
}
_OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
BPF_INSTRUCTION_BYTES = 8  # sizeof(struct sock_filter)
BPF_MAXINSNS = 4096  # the kernel refuses a longer seccomp program (EINVAL at load)
_UNKNOWN = -1  # __NR_SCMP_ERROR; other negative numbers are libseccomp pseudo-syscalls


def action_value(action: str, errno_ret: int | None) -> int:
    """libseccomp's value for an action and its errno: two rules with equal values do the same
    thing (``SCMP_ACT_KILL`` is ``SCMP_ACT_KILL_THREAD``; an unset errno is EPERM)."""
    return _ACTIONS[action](errno_ret)


class _ArgCmp(ctypes.Structure):
    _fields_ = (  # struct scmp_arg_cmp
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


@cache
def _lib() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise ValidationError(
            f"libseccomp is not available: {exc}", code=Code.LIBSECCOMP_MISSING,
            hint="apt-get install libseccomp2",
        ) from None
    lib.seccomp_init.argtypes = (ctypes.c_uint32,)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = (ctypes.c_void_p,)
    lib.seccomp_release.restype = None
    lib.seccomp_load.argtypes = (ctypes.c_void_p,)
    lib.seccomp_arch_exist.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.seccomp_arch_add.argtypes = (ctypes.c_void_p, ctypes.c_uint32)
    lib.seccomp_rule_add_array.argtypes = (ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp))
    lib.seccomp_syscall_resolve_name_arch.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
    lib.seccomp_export_bpf.argtypes = (ctypes.c_void_p, ctypes.c_int)
    lib.seccomp_syscall_resolve_name_rewrite.argtypes = (ctypes.c_uint32, ctypes.c_char_p)
    return lib


@cache
def syscall_number(arch: str, name: str) -> int:
    """libseccomp's number for ``name`` on ``arch`` (-1 unknown, < -1 not on that arch)."""
    return int(_lib().seccomp_syscall_resolve_name_arch(ARCHES[arch], name.encode()))


def known(name: str) -> bool:
    return syscall_number("SCMP_ARCH_NATIVE", name) != _UNKNOWN


@cache
def _filtered_number(arch: str, name: str) -> int:
    """The number libseccomp really filters on ``arch``: on 32-bit x86, s390 and others,
    ``recv``, ``send``, ``shmget``… are multiplexed through ``socketcall``/``ipc``, and a rule
    for them compiles into a rule on that syscall (negative: nothing to filter)."""
    return int(_lib().seccomp_syscall_resolve_name_rewrite(ARCHES[arch], name.encode()))


def exists_on(name: str, arches: tuple[str, ...]) -> bool:
    """Whether a rule for ``name`` filters anything on at least one of ``arches`` (native when
    empty), directly or through a multiplexer such as ``socketcall``."""
    return any(_filtered_number(a, name) >= 0 for a in (arches or ("SCMP_ARCH_NATIVE",)))


@dataclass(frozen=True, slots=True)
class CompileFailure(Exception):
    message: str


class Filter:
    """A compiled filter (a libseccomp context); :meth:`load` applies it to this thread."""

    def __init__(self, ctx: int) -> None:
        self._ctx: int | None = ctx

    def load(self) -> None:
        result = _lib().seccomp_load(self._ctx)
        if result < 0:
            raise OSError(-result, os.strerror(-result))

    def export_bpf(self) -> bytes:
        """The BPF program libseccomp generates (what a runtime hands the kernel): an array of
        8-byte ``struct sock_filter`` instructions, one program for all the filter's
        architectures."""
        fd = os.memfd_create("secprof-bpf", os.MFD_CLOEXEC)
        try:
            result = _lib().seccomp_export_bpf(self._ctx, fd)
            if result < 0:
                raise OSError(-result, os.strerror(-result))
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def instructions(self) -> int:
        """The length of :meth:`export_bpf`'s program, in instructions."""
        return len(self.export_bpf()) // BPF_INSTRUCTION_BYTES

    def close(self) -> None:
        if self._ctx is not None:
            _lib().seccomp_release(self._ctx)
            self._ctx = None

    def __del__(self) -> None:
        self.close()


def _conditions(args: tuple[Arg, ...]) -> ctypes.Array[_ArgCmp]:
    array = (_ArgCmp * len(args))()
    for slot, arg in zip(array, args, strict=True):
        slot.arg, slot.op = arg.index, _OPERATORS[arg.op]
        slot.datum_a, slot.datum_b = arg.value, arg.value_two
    return array


def compile_filter(spec: SeccompSpec) -> Filter:
    """Build the filter runc would build for ``spec``; raises :class:`CompileFailure`."""
    lib = _lib()
    default = _ACTIONS[spec.default_action](spec.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise CompileFailure(f"libseccomp cannot start a filter with {spec.default_action}")
    built = Filter(ctx)
    for arch in spec.architectures:
        token = ARCHES[arch]
        if lib.seccomp_arch_exist(ctx, token) == 0:
            continue  # already there (the native one)
        result = lib.seccomp_arch_add(ctx, token)
        if result < 0:
            built.close()
            raise CompileFailure(f"libseccomp rejects architecture {arch}: "
                                 f"{os.strerror(-result)}")
    for rule in spec.syscalls:
        action = _ACTIONS[rule.action](rule.errno_ret)
        if action == default:
            continue
        indexes = [a.index for a in rule.args]
        # runc: conditions repeating an index become one rule each (OR), others one rule (AND)
        groups = [(a,) for a in rule.args] if len(set(indexes)) != len(indexes) else [rule.args]
        for name in rule.names:
            number = syscall_number("SCMP_ARCH_NATIVE", name)
            if number == _UNKNOWN:
                continue
            for args in groups:
                result = lib.seccomp_rule_add_array(ctx, action, number, len(args),
                                                    _conditions(args))
                if result < 0:
                    built.close()
                    raise CompileFailure(
                        f"libseccomp rejects the {rule.action} rule for {name!r}: "
                        f"{os.strerror(-result)} (a container runtime would refuse this profile)"
                    )
    return built


@contextmanager
def compiled(spec: SeccompSpec) -> Iterator[Filter]:
    """:func:`compile_filter`, released on exit."""
    built = compile_filter(spec)
    try:
        yield built
    finally:
        built.close()
