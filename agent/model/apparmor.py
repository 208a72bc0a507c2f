"""AppArmorProfile values and the parser of their ``spec``.

Two forms, as SPO has had them: ``spec.abstract`` (the allow-lists SPO renders into a profile,
see :mod:`agent.apparmor.render`) and raw ``spec.policy`` text (SPO until v0.8; still what users
write). The mode is ``spec.mode`` (``Enforce``/``Complain``, SPO v1) or the older boolean
``spec.complainMode``.

A list that is present but empty is kept apart from an absent one (``()`` vs ``None``): SPO's
template prints blank lines for the first and nothing for the second, and the rendered bytes
must be SPO's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from agent.model.decode import Node
from agent.model.profile import Kind, Origin, ProfileKey


class Mode(StrEnum):
    ENFORCE = "Enforce"
    COMPLAIN = "Complain"


# The 41 capability names SPO accepts, lower case, without CAP_ (crd2armor.go).
CAPABILITIES: tuple[str, ...] = (
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin",
    "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
    "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
    "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read",
    "perfmon", "bpf", "checkpoint_restore",
)
# SPO's strictPathRegex: absolute paths of safe characters (AppArmor globs and @{variables}
# included), or its accepted "ptrace (x)," rule hack. No commas, quotes or newlines otherwise.
_PATH_RE = re.compile(r"^(?:/[a-zA-Z0-9_./*?+@{} -]*|ptrace\s*\([a-zA-Z]+\),(?:\s*#.*)?)\Z")
_MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Executable:
    allowed_executables: tuple[str, ...] | None = None
    allowed_libraries: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Filesystem:
    read_only_paths: tuple[str, ...] | None = None
    write_only_paths: tuple[str, ...] | None = None
    read_write_paths: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    allow_raw: bool | None = None
    allow_tcp: bool | None = None
    allow_udp: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Abstract:
    """``spec.abstract``; a section that is absent is ``None``."""

    executable: Executable | None = None
    filesystem: Filesystem | None = None
    network: Network | None = None
    capabilities: tuple[str, ...] | None = None  # capability.allowedCapabilities


@dataclass(frozen=True, slots=True, kw_only=True)
class AppArmorProfile:
    """An AppArmorProfile document: exactly one of ``abstract`` and ``policy`` is set."""

    name: str
    origin: Origin
    mode: Mode = Mode.ENFORCE
    abstract: Abstract | None = None
    policy: str | None = None
    disabled: bool = False

    @property
    def key(self) -> ProfileKey:
        return ProfileKey(Kind.APPARMOR, self.name)

    @property
    def raw(self) -> bool:
        return self.policy is not None


_SPEC_FIELDS = ("abstract", "policy", "mode", "complainMode", "state", "disabled")


def parse_apparmor(node: Node, key: ProfileKey, origin: Origin) -> AppArmorProfile:
    """Validate every field of an AppArmorProfile ``spec``; the first problem raises a
    :class:`~agent.errors.ManifestError` naming the field."""
    fields = node.fields(_SPEC_FIELDS)
    if "abstract" in fields and "policy" in fields:
        fields["policy"].fail("give either spec.abstract or spec.policy, not both")
    policy = None
    abstract = None
    if "policy" in fields:
        policy = fields["policy"].string(allow_empty=False)
        if "\0" in policy:
            fields["policy"].fail("must not contain NUL characters")
        if len(policy.encode()) > _MAX_POLICY_BYTES:
            fields["policy"].fail(f"is larger than {_MAX_POLICY_BYTES} bytes")
    else:
        # SPO's spec.abstract is a struct, not a pointer: no abstract renders an empty one.
        abstract = _abstract(fields["abstract"]) if "abstract" in fields else Abstract()
    return AppArmorProfile(
        name=key.name, origin=origin, mode=_mode(fields), abstract=abstract, policy=policy,
        disabled=_disabled(fields),
    )


def _mode(fields: dict[str, Node]) -> Mode:
    mode = Mode(fields["mode"].choice(tuple(Mode), what="mode")) if "mode" in fields else None
    if "complainMode" in fields:
        legacy = Mode.COMPLAIN if fields["complainMode"].boolean() else Mode.ENFORCE
        if mode is not None and mode is not legacy:
            fields["complainMode"].fail(
                f"says {legacy.value} but spec.mode says {mode.value}; give only spec.mode"
            )
        mode = legacy
    return mode or Mode.ENFORCE


def _disabled(fields: dict[str, Node]) -> bool:
    disabled = fields["disabled"].boolean() if "disabled" in fields else False
    if "state" in fields:
        state = fields["state"].choice(("Enabled", "Disabled"), what="state")
        disabled = disabled or state == "Disabled"
    return disabled


def _abstract(node: Node) -> Abstract:
    fields = node.fields(("executable", "filesystem", "network", "capability"))
    executable = filesystem = network = None
    capabilities = None
    if "executable" in fields:
        sub = fields["executable"].fields(("allowedExecutables", "allowedLibraries"))
        executable = Executable(
            allowed_executables=_paths(sub, "allowedExecutables", executable=True),
            allowed_libraries=_paths(sub, "allowedLibraries", executable=True),
        )
    if "filesystem" in fields:
        sub = fields["filesystem"].fields(("readOnlyPaths", "writeOnlyPaths", "readWritePaths"))
        filesystem = Filesystem(
            read_only_paths=_paths(sub, "readOnlyPaths"),
            write_only_paths=_paths(sub, "writeOnlyPaths"),
            read_write_paths=_paths(sub, "readWritePaths"),
        )
    if "network" in fields:
        sub = fields["network"].fields(("allowRaw", "allowedProtocols"))
        protocols = (sub["allowedProtocols"].fields(("allowTcp", "allowUdp"))
                     if "allowedProtocols" in sub else {})
        network = Network(
            allow_raw=sub["allowRaw"].boolean() if "allowRaw" in sub else None,
            allow_tcp=protocols["allowTcp"].boolean() if "allowTcp" in protocols else None,
            allow_udp=protocols["allowUdp"].boolean() if "allowUdp" in protocols else None,
        )
    if "capability" in fields:
        sub = fields["capability"].fields(("allowedCapabilities",))
        if "allowedCapabilities" in sub:
            capabilities = tuple(_capability(item) for item in sub["allowedCapabilities"].items())
    return Abstract(executable=executable, filesystem=filesystem, network=network,
                    capabilities=capabilities)


def _paths(fields: dict[str, Node], key: str, *, executable: bool = False
           ) -> tuple[str, ...] | None:
    if key not in fields:
        return None
    out: list[str] = []
    for item in fields[key].items():
        path = item.string()
        # SPO skips validation of an empty path (and so renders "   r,"; the parser rejects it).
        if path and not _PATH_RE.match(path):
            item.fail(f"{path!r} is not an absolute path of safe characters (letters, digits, "
                      "_ . / * ? + @ { } - and spaces)")
        if executable and path and ("/../" in path or path.startswith("/..")):
            item.fail(f"{path!r} must not climb out of a directory (/../)")
        out.append(path)
    return tuple(out)


def _capability(node: Node) -> str:
    value = node.string()
    # SPO checks the lower-cased, trimmed name but renders what was written.
    if value.strip().lower() not in CAPABILITIES:
        node.fail(f'unknown capability "{value}" (lower-case names without CAP_, such as '
                  '"net_bind_service")')
    return value


def profile_to_cache(profile: AppArmorProfile) -> dict[str, Any]:
    """A validated profile as plain JSON (``None`` kept apart from an empty list)."""
    return {"name": profile.name, "mode": profile.mode.value, "disabled": profile.disabled,
            "policy": profile.policy,
            "abstract": None if profile.abstract is None else asdict(profile.abstract)}


def profile_from_cache(entry: Mapping[str, Any], origin: Origin) -> AppArmorProfile:
    """The inverse of :func:`profile_to_cache` (trusted input: secprof's own state dir)."""
    raw = entry["abstract"]
    abstract = None
    if raw is not None:
        def paths(section: Mapping[str, Any] | None, key: str) -> tuple[str, ...] | None:
            value = section.get(key) if section else None
            return None if value is None else tuple(value)

        exe, fs, net = raw["executable"], raw["filesystem"], raw["network"]
        abstract = Abstract(
            executable=None if exe is None else Executable(
                allowed_executables=paths(exe, "allowed_executables"),
                allowed_libraries=paths(exe, "allowed_libraries")),
            filesystem=None if fs is None else Filesystem(
                read_only_paths=paths(fs, "read_only_paths"),
                write_only_paths=paths(fs, "write_only_paths"),
                read_write_paths=paths(fs, "read_write_paths")),
            network=None if net is None else Network(**net),
            capabilities=paths(raw, "capabilities"),
        )
    return AppArmorProfile(name=entry["name"], origin=origin, mode=Mode(entry["mode"]),
                           abstract=abstract, policy=entry["policy"], disabled=entry["disabled"])
