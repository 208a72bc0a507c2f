"""Parse and validate a seccomp spec: SPO's ``SeccompProfile.spec`` or a plain OCI profile.

Both dialects share the runtime-spec fields. SPO's adds ``baseProfileName``, ``disabled`` and
``state``, and treats ``errnoRet: 0`` as unset (as SPO documents); the OCI dialect keeps an
explicit ``0``. ``defaultErrnoRet`` is accepted in both (SPO's CRD lacks it; runtimes honour it).
Docker's template fields (``archMap``, ``includes``…) are flattened for this host first
(:mod:`agent.model.docker_format`), and rules that a runtime would never apply are dropped with
a warning (:mod:`agent.seccomp.conflicts`).

Every problem of a spec is reported, not only the first: each field and each rule is checked
on its own, and all their errors are raised together as one :class:`SpecErrors`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, TypeVar

from agent.codes import Code
from agent.errors import ManifestError, ResolveError, shown
from agent.fsutil import name_problem
from agent.model import seccomp as m
from agent.model.decode import Node
from agent.model.docker_format import (
    TEMPLATE_RULE_FIELDS,
    Flattened,
    TemplateHost,
    flatten,
    is_template,
)
from agent.model.profile import Origin, ProfileKey
from agent.seccomp.conflicts import RuleConflict, as_runtime_reads
from agent.seccomp.render import spec_json

T = TypeVar("T")

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
MAX_REPORTED = 50  # errors of one document shown; a hostile file must not flood the output


class Dialect(Enum):
    SPO = "spo"
    OCI = "oci"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedSpec:
    spec: m.SeccompSpec
    base: str | None
    disabled: bool
    notes: tuple[str, ...] = ()  # what flattening a Docker template dropped, and why
    warnings: tuple[str, ...] = ()  # rules the runtime would never apply


def parse_document(spec: Node, key: ProfileKey, origin: Origin) -> m.SeccompProfile:
    """A SeccompProfile document's ``spec`` (SPO dialect).

    With SPO v0.8's namespaced identity (``<namespace>/<name>``), a local base is looked up in
    the profile's own namespace, as SPO v0.8 did."""
    parsed = parse_spec(spec, Dialect.SPO)
    base = parsed.base
    namespace, slash, _ = key.name.rpartition("/")
    if slash and base and not base.startswith(m.OCI_PREFIX):
        base = f"{namespace}/{base}"
    return m.SeccompProfile(name=key.name, origin=origin, spec=parsed.spec, base=base,
                            disabled=parsed.disabled, warnings=parsed.warnings)


def profile_to_cache(profile: m.SeccompProfile) -> dict[str, Any]:
    """A validated profile as plain JSON (its spec in runtime-spec form, rules as they take
    effect), with what reading it noted."""
    return {"name": profile.name, "base": profile.base, "disabled": profile.disabled,
            "spec": spec_json(profile.spec), "notes": list(profile.notes),
            "warnings": list(profile.warnings)}


def profile_from_cache(entry: Mapping[str, Any], origin: Origin) -> m.SeccompProfile:
    """The inverse of :func:`profile_to_cache` (trusted input: secprof's own state dir)."""
    spec = entry["spec"]
    return m.SeccompProfile(
        name=entry["name"],
        origin=origin,
        base=entry["base"],
        disabled=entry["disabled"],
        notes=tuple(entry["notes"]),
        warnings=tuple(entry["warnings"]),
        spec=m.SeccompSpec(
            default_action=spec["defaultAction"],
            default_errno_ret=spec.get("defaultErrnoRet"),
            architectures=tuple(spec.get("architectures", ())),
            flags=tuple(spec.get("flags", ())),
            listener_path=spec.get("listenerPath", ""),
            listener_metadata=spec.get("listenerMetadata", ""),
            # Lists, not generators, into tuple(): this runs for every profile of every run.
            syscalls=tuple([
                m.SyscallRule(
                    names=tuple(r["names"]), action=r["action"], errno_ret=r.get("errnoRet"),
                    args=tuple([m.Arg(index=a["index"], value=a["value"],
                                      value_two=a.get("valueTwo", 0), op=a["op"])
                                for a in r["args"]]) if "args" in r else (),
                )
                for r in spec["syscalls"]
            ]),
        ),
    )


class SpecErrors(ManifestError):
    """All the problems of one spec; it reads as the first, ``errors`` holds every one."""

    def __init__(self, errors: list[ManifestError]) -> None:
        first = errors[0]
        super().__init__(first.message, file=first.file, index=first.index, field=first.field,
                         code=first.code, hint=first.hint)
        self.errors = tuple(errors)


class _Problems:
    """Collects the errors raised inside ``with problems.guard():`` blocks (a plain context
    manager, not a generator one: it wraps every syscall name of every profile)."""

    def __init__(self) -> None:
        self.errors: list[ManifestError] = []

    def guard(self) -> _Problems:
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if isinstance(exc, SpecErrors):
            self.errors.extend(exc.errors)
            return True
        if isinstance(exc, ManifestError):
            self.errors.append(exc)
            return True
        return False

    def each(self, nodes: list[Node], parse: Callable[[Node], T]) -> list[T]:
        out: list[T] = []
        for node in nodes:
            with self.guard():
                out.append(parse(node))
        return out

    def check(self) -> None:
        if len(self.errors) > MAX_REPORTED:
            last = self.errors[MAX_REPORTED - 1]
            self.errors[MAX_REPORTED - 1:] = [ManifestError(
                f"… and {len(self.errors) - MAX_REPORTED + 1} more errors in this document",
                file=last.file, index=last.index, code=last.code)]
        if self.errors:
            raise SpecErrors(self.errors)


def parse_spec(node: Node, dialect: Dialect, *, template: TemplateHost | None = None
               ) -> ParsedSpec:
    """Validate every field of ``node`` and build the spec; all problems raise together
    (:class:`SpecErrors`).

    ``template``: the host a Docker-format profile (a plain JSON file) is flattened for; without
    it, Docker's template fields are errors that say where they belong (SPO's SeccompProfile
    has none of them)."""
    if template is None:
        _no_template(node)
    flat = flatten(node, template) if template else Flattened(node=node, notes=())
    node = flat.node
    allowed = _SPO_FIELDS if dialect is Dialect.SPO else _RUNTIME_FIELDS
    problems = _Problems()
    fields: dict[str, Node] = {}
    with problems.guard():
        fields = node.fields(allowed, required=("defaultAction",))
    if not fields:
        problems.check()

    default_action = m.ACT_ALLOW
    with problems.guard():
        default_action = fields["defaultAction"].choice(m.ACTIONS, what="action")
        if default_action == m.ACT_NOTIFY:
            fields["defaultAction"].fail(
                "SCMP_ACT_NOTIFY cannot be the default action (container runtimes reject it)"
            )
    default_errno = None
    if "defaultErrnoRet" in fields:
        with problems.guard():
            default_errno = _errno(fields["defaultErrnoRet"], default_action, dialect)

    listener_path = ""
    if "listenerPath" in fields:
        with problems.guard():
            listener_path = _listener_path(fields["listenerPath"])
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_metadata = ""
    rules: list[m.SyscallRule] = []
    base = None
    disabled = False
    with problems.guard():
        architectures = _optional_choices(fields, "architectures", m.ARCHITECTURES,
                                          "architecture")
    with problems.guard():
        flags = _optional_choices(fields, "flags", m.FLAGS, "flag")
    with problems.guard():
        listener_metadata = fields["listenerMetadata"].string() if (
            "listenerMetadata" in fields) else ""
    with problems.guard():
        items = fields["syscalls"].items(max_items=MAX_RULES) if "syscalls" in fields else []
        rules = problems.each(items, lambda item: _syscall(item, dialect))
    with problems.guard():
        base = _base(fields)
    with problems.guard():
        disabled = _disabled(fields)
    problems.check()

    spec = m.SeccompSpec(
        default_action=default_action,
        default_errno_ret=default_errno,
        architectures=architectures,
        flags=flags,
        listener_path=listener_path,
        listener_metadata=listener_metadata,
        syscalls=tuple(rules),
    )
    try:
        spec, warnings = as_runtime_reads(spec)
    except RuleConflict as conflict:
        Node(None, f"{node.path}.{conflict.field}" if node.path else conflict.field,
             node.ctx).fail(
            conflict.message, code=Code.RULE_CONFLICT,
            hint="keep one action for each syscall and set of arguments",
        )
    return ParsedSpec(spec=spec, base=base, disabled=disabled, notes=flat.notes,
                      warnings=warnings)


def _no_template(node: Node) -> None:
    if not is_template(node.value):
        return
    where = "archMap" if "archMap" in node.value else next(
        f"syscalls[{i}].{key}" for i, rule in enumerate(node.value["syscalls"])
        if isinstance(rule, dict) for key in TEMPLATE_RULE_FIELDS if key in rule)
    Node(None, f"{node.path}.{where}" if node.path else where, node.ctx).fail(
        "is a field of Docker's seccomp template format, which a SeccompProfile spec does not "
        "have", code=Code.TEMPLATE_IN_SPEC,
        hint="put the Docker-format profile in a plain .json file of its own: secprof "
        "flattens it for this host",
    )


def _listener_path(node: Node) -> str:
    listener_path = node.string()
    if listener_path and (
        not listener_path.startswith("/") or len(listener_path) > _MAX_SOCKET_PATH
    ):
        node.fail(f"must be an absolute socket path of at most {_MAX_SOCKET_PATH} characters")
    return listener_path


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
    problems = _Problems()
    names: dict[str, None] = {}  # ordered; membership O(1) however long the list
    with problems.guard():
        name_nodes = fields["names"].items(max_items=MAX_NAMES_PER_RULE)
        if not name_nodes:
            fields["names"].fail("must list at least one syscall")
        for name_node in name_nodes:
            try:  # not a `with`: this runs for every name of every profile
                name = name_node.string()
                if not _SYSCALL_NAME_RE.match(name):
                    name_node.fail(f'"{shown(name)}" is not a syscall name (lowercase letters, '
                                   "digits and _)")
                if name in names:
                    name_node.fail(f'duplicate syscall "{name}"')
                names[name] = None
            except ManifestError as exc:
                problems.errors.append(exc)
    action = m.ACT_ALLOW
    errno = None
    args: list[m.Arg] = []
    with problems.guard():
        action = fields["action"].choice(m.ACTIONS, what="action")
        errno = _errno(fields["errnoRet"], action, dialect) if "errnoRet" in fields else None
    with problems.guard():
        items = fields["args"].items(max_items=m.MAX_ARGS) if "args" in fields else []
        args = problems.each(items, _arg)
    problems.check()
    return m.SyscallRule(names=tuple(names), action=action, errno_ret=errno, args=tuple(args))


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
        from agent.oci import reference  # noqa: PLC0415 -- only an oci:// base needs it

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
