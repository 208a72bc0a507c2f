"""SELinux profiles → CIL modules, byte for byte as SPO writes them.

``SelinuxProfile`` follows SPO's ``obj2cil`` translator::

    (block <name>
    (blockinherit container)          unless a SelinuxProfile is inherited (it brings container)
    (blockinherit <system template>)  each other System inherit, in the order written
    (blockinherit <profile>)          each SelinuxProfile inherit, in the order written
    (typepermissive process)          mode Permissive only
    (allow process <type> ( <class> ( <perms sorted, unique> )))   types, then classes, sorted
    )

``@self`` stands for the profile's own domain ``<name>.process``, which is also how a workload
uses it. ``RawSelinuxProfile`` is SPO's wrapper: ``(block <name>_`` around the trimmed policy
indented by four spaces. So the two kinds never share a block, and each module is named after
its block: a SelinuxProfile ``x`` is module ``x``, a RawSelinuxProfile ``x`` is module ``x_``
(a Kubernetes name never holds ``_``).

The checks are SPO's: its deny lists of types, classes and permissions, the allow-list of system
templates, and for raw CIL balanced parentheses and no restricted directive. Raw CIL is checked
statement by statement (SPO matches every word, so a comment that says "role" is refused); the
one exception is ``blockinherit`` of an allowed template, which SPO's own raw example uses, and
``in`` is refused too (like an unbalanced ``)`` it would write into another block).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from agent.codes import Code
from agent.errors import ManifestError
from agent.model.profile import Kind, Origin, ProfileKey
from agent.model.selinux import (
    DEFAULT_TEMPLATE,
    SELF,
    SELINUX_PROFILE,
    SYSTEM,
    Mode,
    RawSelinuxProfile,
    SelinuxProfile,
)
from agent.selinux.rules import Rules, block_name, usage

RESTRICTED_DIRECTIVES = frozenset({
    "block", "blockinherit", "blockstart", "booleanif", "category", "categoryorder", "class",
    "classmap", "classmapping", "classorder", "context", "dominance", "filecon", "genfscon",
    "level", "levelrange", "mls", "netifcon", "nodecon", "optional", "policycap", "portcon",
    "role", "roletype", "sensitivity", "sensitivityorder", "sid", "sidcontext", "sidorder",
    "tunable", "tunableif", "typepermissive", "user", "userrole",
    "in",  # secprof: adds statements to another block, an escape like an unbalanced ")"
})


_ALLOW_LINE_RE = re.compile(r"^\(allow process (\S+) \( (\S+) \(")


def source_field(key: ProfileKey, content: bytes, line: int) -> str | None:
    """The manifest field that line ``line`` (1-based) of a rendered module comes from."""
    lines = content.decode("utf-8", "replace").splitlines()
    if not 1 <= line <= len(lines):
        return None
    if key.kind is Kind.RAW_SELINUX:  # the wrapper adds one line before the trimmed policy
        return f"spec.policy, line {line - 1} after leading blank lines" if line > 1 else None
    text = lines[line - 1]
    allow = _ALLOW_LINE_RE.match(text)
    if allow:
        label = SELF if allow.group(1) == usage(key) else allow.group(1)
        return f"spec.allow.{label}.{allow.group(2)}"
    if text.startswith("(blockinherit "):
        return "spec.inherit"
    if text.startswith("(typepermissive "):
        return "spec.mode"
    return None


def _error(origin: Origin, field_path: str, message: str, code: str) -> ManifestError:
    return ManifestError(message, file=origin.display, index=origin.index, field=field_path,
                         code=code)


def render_selinux(
    profile: SelinuxProfile, rules: Rules, *, inherited: Mapping[str, str | None]
) -> bytes:
    """The CIL module of ``profile``.

    ``inherited`` maps the names of the SelinuxProfiles of the desired state to ``None`` when
    usable, or to why not (invalid, disabled); a name missing from it does not exist. Raises
    :class:`~agent.errors.ManifestError` naming the offending field.
    """
    origin = profile.origin
    if profile.name == DEFAULT_TEMPLATE or profile.name in rules.allowed_system_profiles:
        raise _error(origin, "metadata.name", f"{profile.name} is the name of a system "
                     "template: the profile's block would redeclare it", Code.SELINUX_NAME_TAKEN)
    systems: list[str] = []
    objects: list[str] = []
    for index, inherit in enumerate(profile.inherit):
        where = f"spec.inherit[{index}].name"
        if inherit.kind == SYSTEM:
            if inherit.name not in rules.allowed_system_profiles:
                allowed = ", ".join(sorted(rules.allowed_system_profiles))
                raise _error(origin, where, f"system profile {inherit.name} not in [selinux] "
                             f"allowed_system_profiles ({allowed})", Code.SELINUX_INHERIT_DENIED)
            systems.append(inherit.name)
        elif inherit.kind == SELINUX_PROFILE:
            if inherit.name not in inherited:
                raise _error(origin, where, "couldn't find inherit reference "
                             f"{SELINUX_PROFILE}/{inherit.name}", Code.SELINUX_INHERIT_MISSING)
            problem = inherited[inherit.name]
            if problem:
                raise _error(origin, where, f"inherited {SELINUX_PROFILE}/{inherit.name} "
                             f"cannot be used: {problem}", Code.SELINUX_INHERIT_INVALID)
            objects.append(inherit.name)

    own = usage(profile.key)
    lines = [f"(block {block_name(profile.key)}"]
    if not objects:
        lines.append(f"(blockinherit {DEFAULT_TEMPLATE})")
    lines.extend(f"(blockinherit {name})" for name in systems if name != DEFAULT_TEMPLATE)
    lines.extend(f"(blockinherit {name})" for name in objects)
    if profile.mode is Mode.PERMISSIVE:
        lines.append("(typepermissive process)")
    for rule in sorted(profile.allow, key=lambda r: r.label):
        where = f"spec.allow.{rule.label}"
        if rule.label in rules.denied_types:
            raise _error(origin, where, f"type {rule.label} is denied", Code.SELINUX_DENIED)
        target = own if rule.label == SELF else rule.label
        for entry in sorted(rule.classes, key=lambda c: c.object_class):
            if entry.object_class in rules.denied_classes:
                raise _error(origin, f"{where}.{entry.object_class}",
                             f"class {entry.object_class} is denied", Code.SELINUX_DENIED)
            for index, perm in enumerate(entry.permissions):
                if perm in rules.denied_permissions:
                    raise _error(origin, f"{where}.{entry.object_class}[{index}]",
                                 f"permission {perm} is denied", Code.SELINUX_DENIED)
            perms = " ".join(sorted(set(entry.permissions)))
            lines.append(f"(allow process {target} ( {entry.object_class} ( {perms} )))")
    lines.append(")")
    return ("\n".join(lines) + "\n").encode()


def render_raw(profile: RawSelinuxProfile, rules: Rules) -> bytes:
    """SPO's wrapper around a checked ``spec.policy``; raises
    :class:`~agent.errors.ManifestError` on ``spec.policy``."""
    problem = raw_policy_problem(profile.policy, rules)
    if problem:
        raise _error(profile.origin, "spec.policy", problem, Code.SELINUX_POLICY_INVALID)
    body = profile.policy.strip().replace("\n", "\n    ").strip()
    return f"(block {block_name(profile.key)}\n    {body}\n)".encode()


def raw_policy_problem(policy: str, rules: Rules) -> str | None:
    """Why raw CIL cannot be wrapped in a block safely, or ``None``."""
    depth = 0
    expect_head = False
    head = ""
    for atom, line in _tokens(policy):
        if atom == "(":
            depth += 1
            expect_head = True
            continue
        if atom == ")":
            depth -= 1
            if depth < 0:
                return (f"invalid policy: unmatched closing parenthesis ')' on line {line} "
                        "allows block escape")
            expect_head = False
            head = ""
            continue
        if head == "blockinherit":  # its argument
            if atom not in rules.allowed_system_profiles:
                return (f"invalid policy: blockinherit {atom} on line {line}: only the "
                        "allowed system profiles may be inherited ("
                        f"{', '.join(sorted(rules.allowed_system_profiles))})")
            head = ""
            continue
        head = ""
        if expect_head:
            expect_head = False
            lowered = atom.lower()
            if lowered == "blockinherit":
                head = lowered
            elif lowered in RESTRICTED_DIRECTIVES:
                return (f"invalid policy: use of restricted global directive '{atom}' on "
                        f"line {line} is not allowed")
    if depth != 0:
        return "invalid policy: unbalanced parentheses"
    return None


def _tokens(text: str) -> Iterator[tuple[str, int]]:
    """CIL tokens with their line: ``(``, ``)``, and atoms; comments are skipped and a quoted
    string is one token."""
    line = 1
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
        elif char.isspace():
            i += 1
        elif char in "()":
            yield char, line
            i += 1
        elif char == ";":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif char == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end + 1
            yield text[i:end], line
            line += text.count("\n", i, end)
            i = end
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '();"':
                i += 1
            yield text[start:i], line
