"""Checks on a profile beyond its schema: libseccomp's view of names and of the merged filter.

* Syscall names libseccomp does not know, or that do not exist on any declared architecture,
  are *warnings*: runtimes skip such names silently, which is exactly why an operator needs to
  hear about them (a typo in an allow-list is a syscall that stays denied).
* A merged profile that libseccomp refuses to compile, or that uses ``SCMP_ACT_NOTIFY`` without
  a ``listenerPath``, is an *error*: a container runtime would refuse to start with it.
* So is one whose BPF program is longer than the kernel accepts (``BPF_MAXINSNS``): runc
  compiles the profile with libseccomp into one program for all its architectures, and the
  kernel refuses it at container start (see :func:`check_program_size`).
"""

from __future__ import annotations

from agent.codes import Code
from agent.errors import ValidationError
from agent.model.seccomp import ACT_NOTIFY, SeccompSpec
from agent.seccomp.libseccomp import (
    BPF_MAXINSNS,
    CompileFailure,
    Filter,
    compiled,
    exists_on,
    known,
)

# Each name's warning ("" if none) per architectures: a thousand profiles share a few hundred
# names. A plain dict per architectures tuple: an lru_cache keyed by (name, architectures) cost
# more per lookup than the loop around it. Started over past _MAX_NAMES (a daemon's names change).
_WARNINGS: dict[tuple[str, ...], dict[str, str]] = {}
_MAX_NAMES = 8192


def name_warnings(own: SeccompSpec, architectures: tuple[str, ...]) -> tuple[str, ...]:
    """Warnings for the names in ``own`` rules, checked against ``architectures``."""
    known_names = _WARNINGS.get(architectures)
    if known_names is None or len(known_names) > _MAX_NAMES:
        known_names = _WARNINGS[architectures] = {}
    out: list[str] = []
    seen: set[str] = set()
    for rule in own.syscalls:
        for name in rule.names:
            if name in seen:
                continue
            seen.add(name)
            warning = known_names.get(name)
            if warning is None:
                warning = known_names[name] = _name_warning(name, architectures)
            if warning:
                out.append(warning)
    return tuple(out)


def _name_warning(name: str, architectures: tuple[str, ...]) -> str:
    """One name's warning, "" if none."""
    if not known(name):
        return f"syscall {name!r} is unknown to libseccomp; runtimes ignore it silently"
    if not exists_on(name, architectures):
        where = ", ".join(architectures) if architectures else "this host's architecture"
        return f"syscall {name!r} does not exist on {where}; the rule has no effect"
    return ""


def check_merged(spec: SeccompSpec) -> None:
    """Raise :class:`ValidationError` if a runtime would refuse ``spec``."""
    if not spec.listener_path and any(r.action == ACT_NOTIFY for r in spec.syscalls):
        raise ValidationError(
            "SCMP_ACT_NOTIFY rules need spec.listenerPath (the seccomp agent's socket)",
            code=Code.NOTIFY_WITHOUT_LISTENER,
        )
    try:
        with compiled(spec) as built:
            check_program_size(built)
    except CompileFailure as failure:
        raise ValidationError(failure.message, code=Code.LIBSECCOMP_REJECTED) from None


def check_program_size(built: Filter, limit: int = BPF_MAXINSNS) -> int:
    """The filter's BPF instruction count; :class:`ValidationError` past the kernel's limit.

    runc loads libseccomp's program (plus a short stub of its own for unknown syscalls), so a
    program over the limit is one every container using the profile fails to start with.
    """
    try:
        count = built.instructions()
    except OSError as exc:
        raise ValidationError(f"libseccomp cannot export the BPF program: {exc.strerror}",
                              code=Code.LIBSECCOMP_REJECTED) from None
    if count > limit:
        raise ValidationError(
            f"the compiled BPF program has {count} instructions; the kernel loads at most "
            f"{limit} (BPF_MAXINSNS), so a container runtime would refuse this profile",
            code=Code.BPF_TOO_LARGE,
            hint="merge rules: list many syscalls in one rule, and use fewer argument "
                 "conditions or architectures",
        )
    return count
