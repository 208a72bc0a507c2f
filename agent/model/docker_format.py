"""Docker's seccomp template format, flattened for this host the way Docker does it.

Docker (moby ``profiles/seccomp``), Podman and SPO's own shipped profiles extend the runtime-spec
JSON with fields that only make sense before a container starts: ``archMap`` (the architectures
to add for each host architecture), per-rule ``includes``/``excludes`` (by host ``arches``, the
container's ``caps`` and the running kernel's ``minKernel``), ``comment``, and the singular
``name``. runc and containerd read such a file by ignoring those fields, which turns every
capability-gated allow (``mount``, ``unshare``, ``bpf``…) into an unconditional one. Docker and
CRI-O instead evaluate them once for the host and the container; :func:`flatten` does the same,
for this host and the capability set of ``[seccomp] template_capabilities``:

* ``archMap``: the entry whose ``architecture`` is this host's gives ``architectures`` (itself
  and its ``subArchitectures``); no entry for this host leaves the native architecture only.
  Setting both ``architectures`` and ``archMap`` is an error, as in Docker.
* a rule is dropped when an ``excludes`` condition holds (the host architecture is listed, *any*
  listed capability is granted, the kernel is at least ``minKernel``), or when an ``includes``
  condition fails (the host architecture is not listed, *any* listed capability is missing, the
  kernel is older than ``minKernel``), checked in that order;
* ``name`` becomes ``names``; ``comment`` is dropped;
* Podman's ``defaultErrno`` and per-rule ``errno`` (an errno name such as ``ENOSYS``, or a
  number; they win over ``defaultErrnoRet``/``errnoRet``, as in containers/common) become
  ``defaultErrnoRet``/``errnoRet``, with this host's numbers.

Every dropped rule gives a note saying why. The result is a plain runtime-spec mapping that the
ordinary parser then validates field by field.
"""

from __future__ import annotations

import errno as errno_names
import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from agent.errors import ManifestError, shown
from agent.model.decode import Node
from agent.model.seccomp import ARCHITECTURES

# Docker's default capability set (moby daemon/pkg/oci/caps/defaults.go).
DOCKER_DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

# Docker's names for host architectures (libseccomp's strings), from uname's machine, and the
# runtime-spec architecture each stands for.
_MACHINE_TO_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "x86", "i486": "x86", "i586": "x86",
    "i686": "x86", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm", "armv6l": "arm",
    "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64", "ppc": "ppc", "s390x": "s390x",
    "s390": "s390", "riscv64": "riscv64", "mips64": "mips64", "loongarch64": "loong64",
}
TEMPLATE_ARCHES: dict[str, str] = {
    "x86": "SCMP_ARCH_X86", "amd64": "SCMP_ARCH_X86_64", "x32": "SCMP_ARCH_X32",
    "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64", "loong64": "SCMP_ARCH_LOONGARCH64",
    "mips": "SCMP_ARCH_MIPS", "mipsel": "SCMP_ARCH_MIPSEL", "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32", "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32", "mipsle": "SCMP_ARCH_MIPSEL", "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE", "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
}
_TEMPLATE_FIELDS = ("archMap", "defaultErrno")
TEMPLATE_RULE_FIELDS = ("includes", "excludes", "comment", "name", "errno")
_RULE_FIELD_SET = frozenset(TEMPLATE_RULE_FIELDS)
_FILTER_FIELDS = ("caps", "arches", "minKernel")
_CAP_RE = re.compile(r"^CAP_[A-Z_]+$")
_KERNEL_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})$")
_ARCH_ENTRY_FIELDS = ("architecture", "subArchitectures")
_WHAT = "a field of Docker's seccomp template format"


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateHost:
    """What a Docker-format template is flattened for: this host's architecture (Docker's
    name, ``amd64``), the running kernel's ``(version, major revision)``, and the capabilities
    the containers hold."""

    arch: str
    kernel: tuple[int, int]
    capabilities: frozenset[str]

    @property
    def seccomp_arch(self) -> str:
        return TEMPLATE_ARCHES.get(self.arch, "")

    def fingerprint(self) -> bytes:
        """Bytes that change whenever a flattening could (the parse cache's key)."""
        caps = ",".join(sorted(self.capabilities))
        return f"{self.arch};{self.kernel[0]}.{self.kernel[1]};{caps}".encode()


def parse_release(release: str) -> tuple[int, int]:
    """``6.1.0-13-amd64`` → ``(6, 1)``: only the version and major revision count (Docker)."""
    match = re.match(r"^(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


@cache
def _detected() -> tuple[str, tuple[int, int]]:
    uname = os.uname()  # platform.machine() is uname's machine, and costs 3 ms of imports
    return _MACHINE_TO_ARCH.get(uname.machine, uname.machine), parse_release(uname.release)


def host_template(capabilities: tuple[str, ...] = ()) -> TemplateHost:
    """This host, with ``capabilities`` (empty: Docker's default set)."""
    arch, kernel = _detected()
    return TemplateHost(arch=arch, kernel=kernel,
                        capabilities=frozenset(capabilities or DOCKER_DEFAULT_CAPABILITIES))


def is_template(value: Any) -> bool:
    """Whether a spec mapping uses any field of Docker's template format."""
    if not isinstance(value, dict):
        return False
    if any(key in value for key in _TEMPLATE_FIELDS):
        return True
    rules = value.get("syscalls")
    return isinstance(rules, list) and any(
        isinstance(rule, dict) and not _RULE_FIELD_SET.isdisjoint(rule) for rule in rules
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Flattened:
    node: Node
    notes: tuple[str, ...]


def flatten(node: Node, host: TemplateHost) -> Flattened:
    """The template in ``node`` evaluated for ``host``, as a runtime-spec mapping.

    Raises a :class:`ManifestError` naming the template field that cannot be flattened; an
    input without template fields comes back unchanged.
    """
    if not is_template(node.value):
        return Flattened(node=node, notes=())
    try:
        return _flatten(node, host)
    except ManifestError as exc:
        if not exc.hint:
            exc.hint = ("the file is a Docker-format seccomp template (archMap, "
                        "includes/excludes), flattened for this host as Docker does")
        raise


def _flatten(node: Node, host: TemplateHost) -> Flattened:
    value: dict[str, Any] = dict(node.value)
    notes: list[str] = []
    _take_errno(node, value, "defaultErrno", "defaultErrnoRet")
    if "archMap" in value:
        arch_map = node.child("archMap", value.pop("archMap"))
        if arch_map.value is not None:
            if value.get("architectures"):
                arch_map.fail("both architectures and archMap are set (Docker refuses this too)",
                              hint="keep one of them")
            arches = _arch_map(arch_map, host, notes)
            if arches:
                value["architectures"] = arches
    if isinstance(value.get("syscalls"), list):
        rules_node = node.child("syscalls", value["syscalls"])
        kept = []
        for index, rule in enumerate(rules_node.items()):
            flat = _rule(rule, host, index, notes)
            if flat is not None:
                kept.append(flat)
        value["syscalls"] = kept
    return Flattened(node=Node(value, node.path, node.ctx), notes=tuple(notes))


def _arch_map(node: Node, host: TemplateHost, notes: list[str]) -> list[str]:
    chosen: list[str] = []
    others: list[str] = []
    for entry in node.items():
        fields = entry.fields(_ARCH_ENTRY_FIELDS, required=("architecture",))
        arch = fields["architecture"].string(allow_empty=False)
        subs = fields["subArchitectures"].items() if "subArchitectures" in fields else []
        if arch != host.seccomp_arch or chosen:
            others.append(arch)
            continue
        # Only the entry used is checked against what libseccomp knows: the others name
        # architectures this host never filters (Docker's own file lists SCMP_ARCH_LOONGARCH64).
        for candidate in [arch, *(s.choice(ARCHITECTURES, what="architecture") for s in subs)]:
            if candidate not in chosen:
                chosen.append(candidate)
    where = f"this host ({host.arch})"
    if chosen:
        notes.append(f"archMap: architectures {', '.join(chosen)} for {where}"
                     + (f"; entries for {', '.join(others)} dropped" if others else ""))
    else:
        notes.append(f"archMap has no entry for {where}: only the native architecture is "
                     "filtered (as Docker does)")
    return chosen


def _rule(node: Node, host: TemplateHost, index: int, notes: list[str]) -> Any:
    if not isinstance(node.value, dict):
        return node.value  # the ordinary parser reports it
    rule = dict(node.value)
    rule.pop("comment", None)
    _take_errno(node, rule, "errno", "errnoRet")
    if "name" in rule:
        name = node.child("name", rule.pop("name"))
        if name.value is not None:
            if rule.get("names"):
                name.fail("both name and names are set (Docker refuses this too)",
                          hint="list every syscall under names")
            rule["names"] = [name.string(allow_empty=False)]
    excludes = _filter(node, "excludes", rule.pop("excludes", None))
    includes = _filter(node, "includes", rule.pop("includes", None))
    why = _excluded(excludes, host) or _not_included(includes, host)
    if why:
        names = rule.get("names")
        shown = ", ".join(str(n) for n in names[:3]) + (", …" if len(names) > 3 else "") if (
            isinstance(names, list)) else "?"
        notes.append(f"template rule syscalls[{index}] ({shown}) dropped: {why}")
        return None
    return rule


@dataclass(frozen=True, slots=True, kw_only=True)
class _Filter:
    caps: tuple[str, ...]
    arches: tuple[str, ...]
    min_kernel: tuple[int, int] | None


def _filter(rule: Node, key: str, raw: Any) -> _Filter | None:
    if raw is None:
        return None
    fields = rule.child(key, raw).fields(_FILTER_FIELDS)
    caps: list[str] = []
    for item in fields["caps"].items() if "caps" in fields else []:
        cap = item.string()
        if not _CAP_RE.match(cap):
            item.fail(f'"{cap}" is not a capability name (CAP_…); {_WHAT}')
        caps.append(cap)
    arches = tuple(item.choice(sorted(TEMPLATE_ARCHES), what="template architecture")
                   for item in fields["arches"].items()) if "arches" in fields else ()
    kernel = None
    if "minKernel" in fields:
        text = fields["minKernel"].string()
        match = _KERNEL_RE.match(text)
        if text and (match is None or match.groups() == ("0", "0")
                     or max(int(g) for g in match.groups()) > 255):
            fields["minKernel"].fail(
                f'"{text}" is not a kernel version "<version>.<major>" such as "5.8" ({_WHAT})')
        if match:
            kernel = (int(match.group(1)), int(match.group(2)))
    return _Filter(caps=tuple(caps), arches=arches, min_kernel=kernel)


def _excluded(f: _Filter | None, host: TemplateHost) -> str:
    if f is None:
        return ""
    if host.arch in f.arches:
        return f"excluded on {host.arch}"
    granted = [c for c in f.caps if c in host.capabilities]
    if granted:
        return f"excluded when {granted[0]} is granted (it is, by template_capabilities)"
    if f.min_kernel is not None and host.kernel >= f.min_kernel:
        return (f"excluded from kernel {_version(f.min_kernel)} on "
                f"(this kernel is {_version(host.kernel)})")
    return ""


def _not_included(f: _Filter | None, host: TemplateHost) -> str:
    if f is None:
        return ""
    if f.arches and host.arch not in f.arches:
        return f"only for {', '.join(f.arches)} (this host is {host.arch})"
    missing = [c for c in f.caps if c not in host.capabilities]
    if missing:
        return f"needs {missing[0]}, which template_capabilities does not grant"
    if f.min_kernel is not None and host.kernel < f.min_kernel:
        return (f"needs kernel {_version(f.min_kernel)} or later "
                f"(this kernel is {_version(host.kernel)})")
    return ""


def _take_errno(node: Node, value: dict[str, Any], podman: str, oci: str) -> None:
    """Podman's errno field ``podman`` of ``value`` becomes the OCI field ``oci`` (a number)."""
    if podman in value:
        number = _errno(node.child(podman, value.pop(podman)))
        if number is not None:
            value[oci] = number


def _errno(node: Node) -> int | None:
    """Podman's errno: a name (``ENOSYS``) or a number as a string; empty means unset."""
    if node.value is None:
        return None
    text = node.string()
    if not text:
        return None
    if text.isdigit() and len(text) <= 4:
        return int(text)
    number = getattr(errno_names, text, None) if text.startswith("E") else None
    if not isinstance(number, int):
        node.fail(f'"{shown(text)}" is not an errno name (such as ENOSYS) or number '
                  f"({_WHAT})")
    return number


def _version(kernel: tuple[int, int]) -> str:
    return f"{kernel[0]}.{kernel[1]}"


