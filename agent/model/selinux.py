"""SELinux profile values and their spec parsers: SPO's ``SelinuxProfile`` and
``RawSelinuxProfile``.

The parsers check what one document can say about itself, naming the field: the name (it
becomes a CIL block name), the shape of ``inherit`` and ``allow``, and the characters SPO
allows in labels, classes and permissions, which is what keeps CIL out of them. What depends on
configuration or on other documents (deny lists, the template allow-list, inherited profiles,
the raw policy's directives) is checked when the profile is built (:mod:`agent.selinux.render`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from agent.codes import Code
from agent.model.decode import Node
from agent.model.profile import Kind, Origin, ProfileKey

SYSTEM = "System"
SELINUX_PROFILE = "SelinuxProfile"
INHERIT_KINDS = (SYSTEM, SELINUX_PROFILE)
SELF = "@self"
DEFAULT_TEMPLATE = "container"
MAX_RAW_POLICY = 500_000  # SPO's CRD limit on spec.policy

# SPO's admission regexes (api/selinuxprofile/v1): nothing that could close a CIL list.
LABEL_RE = re.compile(r"^([a-zA-Z0-9.\-_]+|@self)$")
CLASS_OR_PERMISSION_RE = re.compile(r"^[a-zA-Z0-9.\-_]+$")
# A CIL declaration name: a letter first, then letters, digits, '_' and '-' (no '.', which is
# CIL's namespace separator). Kubernetes names are lowercase and have no '_'.
BLOCK_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*$")
TEMPLATE_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]*$")


class Mode(StrEnum):
    ENFORCING = "Enforcing"
    PERMISSIVE = "Permissive"


@dataclass(frozen=True, slots=True, kw_only=True)
class Inherit:
    """``{kind, name}``: a system template (``System``) or another ``SelinuxProfile``."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClassPermissions:
    object_class: str
    permissions: tuple[str, ...]  # as written; rendering sorts and de-duplicates


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRule:
    label: str  # a type, another profile's ``<name>.process``, or ``@self``
    classes: tuple[ClassPermissions, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SelinuxProfile:
    name: str
    origin: Origin
    inherit: tuple[Inherit, ...] = (Inherit(kind=SYSTEM, name=DEFAULT_TEMPLATE),)
    mode: Mode = Mode.ENFORCING
    allow: tuple[LabelRule, ...] = ()
    disabled: bool = False

    @property
    def key(self) -> ProfileKey:
        return ProfileKey(Kind.SELINUX, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class RawSelinuxProfile:
    name: str
    origin: Origin
    policy: str
    disabled: bool = False

    @property
    def key(self) -> ProfileKey:
        return ProfileKey(Kind.RAW_SELINUX, self.name)


def _check_block_name(node: Node, name: str) -> None:
    if not BLOCK_NAME_RE.match(name):
        Node(name, "metadata.name", node.ctx).fail(
            f"{name!r} cannot name an SELinux policy: the name becomes a CIL block, which must "
            "start with a letter and hold only lowercase letters, digits and '-'",
            code=Code.SELINUX_NAME_INVALID,
        )


def parse_selinux_spec(node: Node, key: ProfileKey, origin: Origin) -> SelinuxProfile:
    """``SelinuxProfile.spec`` → :class:`SelinuxProfile`; the first problem raises a
    :class:`~agent.errors.ManifestError` naming the field."""
    _check_block_name(node, key.name)
    fields = node.fields(("inherit", "mode", "allow", "disabled"))
    inherit = _inherits(fields["inherit"], key.name) if "inherit" in fields \
        else (Inherit(kind=SYSTEM, name=DEFAULT_TEMPLATE),)
    mode = Mode(fields["mode"].choice(tuple(Mode), what="mode")) if "mode" in fields \
        else Mode.ENFORCING
    allow = _allow(fields["allow"]) if "allow" in fields else ()
    return SelinuxProfile(
        name=key.name, origin=origin, inherit=inherit, mode=mode, allow=allow,
        disabled=fields["disabled"].boolean() if "disabled" in fields else False,
    )


def _inherits(node: Node, own_name: str) -> tuple[Inherit, ...]:
    seen: set[Inherit] = set()
    out: list[Inherit] = []
    for item in node.items():
        entry = item.fields(("kind", "name"), required=("name",))
        name = entry["name"].string(allow_empty=False)
        kind = SYSTEM
        if "kind" in entry:
            kind = entry["kind"].string()
            if kind not in INHERIT_KINDS:
                entry["kind"].fail(f"{kind}/{name}: unknown inherit kind for entry (use "
                                   f"{' or '.join(INHERIT_KINDS)})")
        pattern = TEMPLATE_NAME_RE if kind == SYSTEM else BLOCK_NAME_RE
        if not pattern.match(name):
            entry["name"].fail(f"{name!r} is not a valid {kind} name for a CIL blockinherit")
        if kind == SELINUX_PROFILE and name == own_name:
            entry["name"].fail("a profile cannot inherit itself")
        inherit = Inherit(kind=kind, name=name)
        if inherit in seen:
            item.fail(f"duplicate inherit {kind}/{name}")
        seen.add(inherit)
        out.append(inherit)
    return tuple(out)


def _allow(node: Node) -> tuple[LabelRule, ...]:
    labels = node.fields(_keys(node))
    rules = []
    for label, label_node in labels.items():
        if not LABEL_RE.match(label):
            label_node.fail(f"{label!r} didn't match expected characters: invalid label key "
                            "(letters, digits, '.', '-', '_', or @self)")
        classes = []
        for object_class, class_node in label_node.fields(_keys(label_node)).items():
            if not CLASS_OR_PERMISSION_RE.match(object_class):
                class_node.fail(f"{object_class!r} is an invalid object class (letters, digits, "
                                "'.', '-', '_')")
            perms = []
            for perm_node in class_node.items():
                perm = perm_node.string(allow_empty=False)
                if not CLASS_OR_PERMISSION_RE.match(perm):
                    perm_node.fail(f"{perm!r} is an invalid permission (letters, digits, '.', "
                                   "'-', '_')")
                perms.append(perm)
            if not perms:
                class_node.fail("needs at least one permission")
            classes.append(ClassPermissions(object_class=object_class, permissions=tuple(perms)))
        if not classes:
            label_node.fail("needs at least one object class")
        rules.append(LabelRule(label=label, classes=tuple(classes)))
    return tuple(rules)


def _keys(node: Node) -> list[str]:
    """Any key is allowed in ``allow`` maps (they are labels and classes): a non-mapping
    still fails in :meth:`Node.fields`."""
    return [k for k in node.value if isinstance(k, str)] if isinstance(node.value, dict) else []


def parse_raw_selinux_spec(node: Node, key: ProfileKey, origin: Origin) -> RawSelinuxProfile:
    """``RawSelinuxProfile.spec`` → :class:`RawSelinuxProfile` (the CIL itself is checked when
    it is built)."""
    _check_block_name(node, key.name)
    fields = node.fields(("policy", "disabled"), required=("policy",))
    policy_node = fields["policy"]
    policy = policy_node.string()
    if not policy.strip():
        policy_node.fail("policy must not be empty")
    if len(policy) > MAX_RAW_POLICY:
        policy_node.fail(f"is {len(policy)} characters long; at most {MAX_RAW_POLICY} are "
                         "allowed")
    if "\x00" in policy:
        policy_node.fail("policy must not contain null bytes")
    return RawSelinuxProfile(
        name=key.name, origin=origin, policy=policy,
        disabled=fields["disabled"].boolean() if "disabled" in fields else False,
    )


# The parse cache's codecs (agent/model/specs.py): validated values as plain JSON and back.

def selinux_to_cache(profile: SelinuxProfile) -> dict[str, Any]:
    return {
        "name": profile.name, "disabled": profile.disabled, "mode": profile.mode.value,
        "inherit": [[i.kind, i.name] for i in profile.inherit],
        "allow": [[r.label, [[c.object_class, list(c.permissions)] for c in r.classes]]
                  for r in profile.allow],
    }


def selinux_from_cache(entry: Mapping[str, Any], origin: Origin) -> SelinuxProfile:
    """The inverse of :func:`selinux_to_cache` (trusted input: secprof's own state dir)."""
    return SelinuxProfile(
        name=entry["name"], origin=origin, disabled=entry["disabled"], mode=Mode(entry["mode"]),
        inherit=tuple(Inherit(kind=k, name=n) for k, n in entry["inherit"]),
        allow=tuple(
            LabelRule(label=label, classes=tuple(
                ClassPermissions(object_class=c, permissions=tuple(p)) for c, p in classes))
            for label, classes in entry["allow"]),
    )


def raw_to_cache(profile: RawSelinuxProfile) -> dict[str, Any]:
    return {"name": profile.name, "disabled": profile.disabled, "policy": profile.policy}


def raw_from_cache(entry: Mapping[str, Any], origin: Origin) -> RawSelinuxProfile:
    """The inverse of :func:`raw_to_cache`."""
    return RawSelinuxProfile(name=entry["name"], origin=origin, policy=entry["policy"],
                             disabled=entry["disabled"])
