"""Parse and validate a seccomp spec: SPO's ``SeccompProfile.spec`` or a plain OCI profile.

Both dialects share the runtime-spec fields. SPO's adds ``baseProfileName``, ``disabled`` and
``state``, and treats ``errnoRet: 0`` as unset (as SPO documents); the OCI dialect keeps an
explicit ``0``. ``defaultErrnoRet`` is accepted in both (SPO's CRD lacks it; runtimes honour it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from agent.errors import ResolveError, shown
from agent.fsutil import name_problem
from agent.model import seccomp as m
from agent.model.decode import Node
from agent.model.profile import Origin, ProfileKey
from agent.oci import reference
from agent.seccomp.render import spec_json

_RUNTIME_FIELDS = (
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "flags",
    "listenerPath",
    "listenerMetadata",
    "syscalls",
)
_SPO_FIELDS = (*_RUNTIME_FIELDS, "baseProfileName", "disabled", "state")
_SYSCALL_FIELDS = ("names", "action", "errnoRet", "args")
_ARG_FIELDS = ("index", "value", "valueTwo", "op")
_SYSCALL_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_MAX_SOCKET_PATH = 107  # sizeof(sun_path) - 1
# Far above real profiles (Docker's default: ~370 names in its largest rule, ~60 rules).
MAX_RULES = 4096
MAX_NAMES_PER_RULE = 4096


class Dialect(Enum):
    SPO = "spo"
    OCI = "oci"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSpec:
    spec: m.SeccompSpec
    base: str | None
    disabled: bool


def parse_document(spec: Node, key: ProfileKey, origin: Origin) -> m.SeccompProfile:
    """A SeccompProfile document's ``spec`` (SPO dialect)."""
    parsed = parse_spec(spec, Dialect.SPO)
    return m.SeccompProfile(name=key.name, origin=origin, spec=parsed.spec, base=parsed.base,
                            disabled=parsed.disabled)


def profile_to_cache(profile: m.SeccompProfile) -> dict[str, Any]:
    """A validated profile as plain JSON (its spec in runtime-spec form, rules as written)."""
    return {"name": profile.name, "base": profile.base, "disabled": profile.disabled,
            "spec": spec_json(profile.spec)}


def profile_from_cache(entry: Mapping[str, Any], origin: Origin) -> m.SeccompProfile:
    """The inverse of :func:`profile_to_cache` (trusted input: secprof's own state dir)."""
    spec = entry["spec"]
    return m.SeccompProfile(
        name=entry["name"],
        origin=origin,
        base=entry["base"],
        disabled=entry["disabled"],
        spec=m.SeccompSpec(
            default_action=spec["defaultAction"],
            default_errno_ret=spec.get("defaultErrnoRet"),
            architectures=tuple(spec.get("architectures", ())),
            flags=tuple(spec.get("flags", ())),
            listener_path=spec.get("listenerPath", ""),
            listener_metadata=spec.get("listenerMetadata", ""),
            syscalls=tuple(
                m.SyscallRule(
                    names=tuple(r["names"]), action=r["action"], errno_ret=r.get("errnoRet"),
                    args=tuple(m.Arg(index=a["index"], value=a["value"],
                                   value_two=a.get("valueTwo", 0), op=a["op"])
                               for a in r.get("args", ())),
                )
                for r in spec["syscalls"]
            ),
        ),
    )


def parse_spec(node: Node, dialect: Dialect) -> ParsedSpec:
    """Validate every field of ``node`` and build the spec; the first problem raises."""
    allowed = _SPO_FIELDS if dialect is Dialect.SPO else _RUNTIME_FIELDS
    fields = node.fields(allowed, required=("defaultAction",))

    default_action = fields["defaultAction"].choice(m.ACTIONS, what="action")
    if default_action == m.ACT_NOTIFY:
        fields["defaultAction"].fail(
            "SCMP_ACT_NOTIFY cannot be the default action (container runtimes reject it)"
        )
    default_errno = None
    if "defaultErrnoRet" in fields:
        default_errno = _errno(fields["defaultErrnoRet"], default_action, dialect)

    listener_path = ""
    if "listenerPath" in fields:
        listener_path = fields["listenerPath"].string()
        if listener_path and (
            not listener_path.startswith("/") or len(listener_path) > _MAX_SOCKET_PATH
        ):
            fields["listenerPath"].fail(
                f"must be an absolute socket path of at most {_MAX_SOCKET_PATH} characters"
            )

    spec = m.SeccompSpec(
        default_action=default_action,
        default_errno_ret=default_errno,
        architectures=_optional_choices(fields, "architectures", m.ARCHITECTURES, "architecture"),
        flags=_optional_choices(fields, "flags", m.FLAGS, "flag"),
        listener_path=listener_path,
        listener_metadata=fields["listenerMetadata"].string() if "listenerMetadata" in fields
        else "",
        syscalls=tuple(
            _syscall(item, dialect) for item in fields["syscalls"].items(max_items=MAX_RULES)
        ) if "syscalls" in fields else (),
    )
    return ParsedSpec(spec=spec, base=_base(fields), disabled=_disabled(fields))


def _optional_choices(
    fields: dict[str, Node], key: str, choices: tuple[str, ...], what: str
) -> tuple[str, ...]:
    return fields[key].unique_choices(choices, what=what) if key in fields else ()


def _errno(node: Node, action: str, dialect: Dialect) -> int | None:
    value = node.integer(minimum=0, maximum=m.MAX_ERRNO)
    if dialect is Dialect.SPO and value == 0:
        return None  # SPO: "A value of 0 is treated like an unset field"
    if action not in m.ERRNO_ACTIONS:
        node.fail(
            f"has no effect with {action}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno"
        )
    return value


def _syscall(node: Node, dialect: Dialect) -> m.SyscallRule:
    fields = node.fields(_SYSCALL_FIELDS, required=("names", "action"))
    names: dict[str, None] = {}  # ordered; membership O(1) however long the list
    name_nodes = fields["names"].items(max_items=MAX_NAMES_PER_RULE)
    if not name_nodes:
        fields["names"].fail("must list at least one syscall")
    for name_node in name_nodes:
        name = name_node.string()
        if not _SYSCALL_NAME_RE.match(name):
            name_node.fail(f'"{shown(name)}" is not a syscall name (lowercase letters, digits '
                           "and _)")
        if name in names:
            name_node.fail(f'duplicate syscall "{name}"')
        names[name] = None
    action = fields["action"].choice(m.ACTIONS, what="action")
    errno = _errno(fields["errnoRet"], action, dialect) if "errnoRet" in fields else None
    args = tuple(_arg(item) for item in fields["args"].items(max_items=m.MAX_ARGS)) if (
        "args" in fields
    ) else ()
    return m.SyscallRule(names=tuple(names), action=action, errno_ret=errno, args=args)


def _arg(node: Node) -> m.Arg:
    fields = node.fields(_ARG_FIELDS, required=("index", "op"))

    def value(key: str) -> int:
        if key not in fields:
            return 0
        return fields[key].integer(minimum=0, maximum=m.UINT64_MAX)

    return m.Arg(
        index=fields["index"].integer(minimum=0, maximum=m.MAX_ARG_INDEX),
        value=value("value"),
        value_two=value("valueTwo"),
        op=fields["op"].choice(m.OPERATORS, what="operator"),
    )


def _base(fields: dict[str, Node]) -> str | None:
    if "baseProfileName" not in fields:
        return None
    node = fields["baseProfileName"]
    base = node.string()
    if not base:
        return None
    if base.startswith(m.OCI_PREFIX):
        try:
            reference.parse(base)
        except ResolveError as exc:
            node.fail(exc.message, code=exc.code, hint=exc.hint)
        return base
    problem = name_problem(base)
    if problem:
        node.fail(f"{problem} (a base is the name of a SeccompProfile or an oci:// reference)")
    return base


def _disabled(fields: dict[str, Node]) -> bool:
    disabled = fields["disabled"].boolean() if "disabled" in fields else False
    if "state" in fields:
        disabled = disabled or fields["state"].choice(("Enabled", "Disabled"), what="state") == (
            "Disabled"
        )
    return disabled
