"""The SELinux driver: SelinuxProfile and RawSelinuxProfile → CIL modules, one driver for both
kinds so that all SELinux changes of a reconcile are one ``semodule`` transaction.

A SelinuxProfile may inherit another (``kind: SelinuxProfile``): profiles are built
dependencies first, and a profile whose parent is missing, invalid, disabled or part of a cycle
fails with that reason (its last good version stays installed).

The SELinux model and renderer are imported by the first build with a profile to render: a
host with no SELinux profile never imports them (``tests/integration/test_import_closure.py``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from agent.backends.runner import Runner, SubprocessRunner
from agent.backends.selinux import SelinuxBackend
from agent.config import SelinuxSection
from agent.errors import AgentError, ManifestError
from agent.model.desired import DesiredState
from agent.model.profile import Kind, Origin, ProfileKey
from agent.reconcile.driver import Built
from agent.seccomp.render import digest
from agent.selinux.rules import Rules, block_name, module_name, usage
from agent.selinux.shipped import template_names, templates

if TYPE_CHECKING:
    from agent.model.selinux import SelinuxProfile

_KINDS = frozenset({Kind.SELINUX, Kind.RAW_SELINUX})


@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    """What the status shows of one built profile."""

    module: str
    block: str
    inherits: tuple[str, ...]


class SelinuxDriver:
    name = "selinux"
    kinds = _KINDS

    def __init__(self, backend: SelinuxBackend, *, rules: Rules, priority: int) -> None:
        self.backend = backend
        self._rules = rules
        self._priority = priority

    @classmethod
    def from_config(cls, section: SelinuxSection, *, scratch_dir: Path | None = None,
                    runner: Runner | None = None) -> SelinuxDriver:
        """The driver over the real ``semodule`` as ``[selinux]`` says (``runner``: the
        default :class:`SubprocessRunner`, or one that wraps it)."""
        allowed = frozenset(section.allowed_system_profiles) or template_names()
        backend = SelinuxBackend(
            runner=runner or SubprocessRunner(), store_root=section.store_root,
            priority=section.priority, templates=templates(), mode=section.mode,
            timeout_s=section.timeout_s, scratch_dir=scratch_dir,
        )
        return cls(backend, rules=Rules(allowed_system_profiles=allowed),
                   priority=section.priority)

    def build(
        self, desired: DesiredState, *, validated: Container[str]
    ) -> dict[ProfileKey, Built | AgentError]:
        profiles = desired.of_kinds(_KINDS)
        if not profiles:  # nothing to render: the renderer is not even imported
            return {}
        from agent.model.selinux import RawSelinuxProfile, SelinuxProfile  # noqa: PLC0415
        from agent.selinux.render import render_raw  # noqa: PLC0415 -- see the docstring

        selinux = {k.name: p for k, p in profiles.items() if isinstance(p, SelinuxProfile)}
        invalid = desired.invalid_names(Kind.SELINUX)
        done: dict[str, Built | AgentError] = {}
        for name in sorted(selinux):
            self._build_selinux(name, selinux, invalid, done, ())
        out: dict[ProfileKey, Built | AgentError] = {
            ProfileKey(Kind.SELINUX, n): b for n, b in done.items()}
        for key, profile in profiles.items():
            if isinstance(profile, RawSelinuxProfile):
                try:
                    content = render_raw(profile, self._rules)
                except ManifestError as exc:
                    out[key] = exc
                    continue
                out[key] = self._built(key, profile.origin, content, disabled=profile.disabled,
                                       notes=(f"SPO's status reports {key.name}.process, but "
                                              f"the block SPO and secprof declare is "
                                              f"{block_name(key)}: use {usage(key)}",))
        why = self.backend.inactive_reason
        if not out or why is None:
            return out
        # Said on every profile: why a workload is not confined although "Installed".
        inactive = (f"the policy is not active ({why}): the module is in the store",)
        return {k: replace(b, notes=(*b.notes, *inactive)) if isinstance(b, Built) else b
                for k, b in out.items()}

    def _build_selinux(
        self, name: str, profiles: Mapping[str, SelinuxProfile], invalid: Mapping[str, str],
        done: dict[str, Built | AgentError], chain: tuple[str, ...],
    ) -> Built | AgentError:
        if name in done:
            return done[name]
        from agent.model.selinux import SELINUX_PROFILE  # noqa: PLC0415 -- see the docstring
        from agent.selinux.render import render_selinux  # noqa: PLC0415

        profile = profiles[name]
        inherited: dict[str, str | None] = {}
        parents = tuple(i.name for i in profile.inherit if i.kind == SELINUX_PROFILE)
        for parent in parents:
            if parent in chain or parent == name:
                inherited[parent] = "inherit cycle " + " → ".join((*chain, name, parent))
            elif parent in profiles:
                result = self._build_selinux(parent, profiles, invalid, done, (*chain, name))
                inherited[parent] = (
                    result.message if isinstance(result, AgentError)
                    else "it is disabled, so not installed" if result.disabled else None)
            elif parent in invalid:
                inherited[parent] = f"its manifest is invalid: {invalid[parent]}"
        built: Built | AgentError
        try:
            content = render_selinux(profile, self._rules, inherited=inherited)
        except ManifestError as exc:
            built = exc
        else:
            built = self._built(profile.key, profile.origin, content,
                                disabled=profile.disabled, parents=parents)
        done[name] = built
        return built

    @staticmethod
    def _built(key: ProfileKey, origin: Origin, content: bytes, *, disabled: bool,
               notes: tuple[str, ...] = (), parents: tuple[str, ...] = ()) -> Built:
        return Built(key=key, origin=origin, content=content, digest=digest(content),
                     disabled=disabled, notes=notes,
                     detail=Module(module=module_name(key), block=block_name(key),
                                   inherits=parents))

    def details(self, built: Built) -> Mapping[str, object]:
        """The module, its priority and block, inherited profiles, and whether the policy
        holding it is active in the kernel."""
        module = built.detail
        assert isinstance(module, Module)
        return {
            "module": module.module,
            "priority": self._priority,
            "block": module.block,
            "inherits": list(module.inherits),
            "policyActive": self.backend.policy_active,
            "cil": built.content.decode("utf-8", "replace"),
        }

    def usage(self, key: ProfileKey) -> str:
        """``<block>.process``: a pod's ``seLinuxOptions.type``."""
        return usage(key)
