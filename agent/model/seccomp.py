"""Seccomp profile values: the OCI runtime-spec ``LinuxSeccomp`` shape, as frozen dataclasses.

The vocabularies below are the ones SPO's CRD accepts (and runc/crun understand); the action rank
is the order the merge uses to pick the less restrictive action.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.model.profile import Kind, Origin, ProfileKey

ACT_ALLOW = "SCMP_ACT_ALLOW"
ACT_ERRNO = "SCMP_ACT_ERRNO"
ACT_TRACE = "SCMP_ACT_TRACE"
ACT_NOTIFY = "SCMP_ACT_NOTIFY"

# Most restrictive first; KILL is an alias of KILL_THREAD and ranks equal to it.
ACTION_RANK: dict[str, int] = {
    "SCMP_ACT_KILL_PROCESS": 0,
    "SCMP_ACT_KILL_THREAD": 1,
    "SCMP_ACT_KILL": 1,
    "SCMP_ACT_TRAP": 2,
    ACT_ERRNO: 3,
    ACT_NOTIFY: 4,
    ACT_TRACE: 5,
    "SCMP_ACT_LOG": 6,
    ACT_ALLOW: 7,
}
ACTIONS: tuple[str, ...] = tuple(ACTION_RANK)
# Actions that carry an errno (``errnoRet`` / ``defaultErrnoRet``).
ERRNO_ACTIONS = frozenset({ACT_ERRNO, ACT_TRACE})
MAX_ERRNO = 4095

ARCHITECTURES: tuple[str, ...] = (
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
)

FLAGS: tuple[str, ...] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)

OPERATORS: tuple[str, ...] = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
MAX_ARG_INDEX = 5
MAX_ARGS = 6
UINT64_MAX = 2**64 - 1
OCI_PREFIX = "oci://"


def rank(action: str) -> int:
    return ACTION_RANK[action]


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Arg:
    """One argument condition; compared and ordered field by field."""

    index: int
    value: int
    value_two: int
    op: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SyscallRule:
    """One ``syscalls[]`` entry. ``errno_ret`` is ``None`` when unset (the runtime uses EPERM)."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SeccompSpec:
    """The runtime-facing part of a profile (what ends up in the installed JSON)."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str = ""
    listener_metadata: str = ""
    syscalls: tuple[SyscallRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SeccompProfile:
    """A SeccompProfile document: its spec plus the SPO-only fields.

    ``base`` is ``None``, the name of another SeccompProfile, or an ``oci://`` reference.
    """

    name: str
    origin: Origin
    spec: SeccompSpec
    base: str | None = None
    disabled: bool = False
    notes: tuple[str, ...] = ()  # what reading the document changed, and why (Docker templates)
    warnings: tuple[str, ...] = ()  # what in the document has no effect (shadowed rules)

    @property
    def key(self) -> ProfileKey:
        return ProfileKey(Kind.SECCOMP, self.name)
