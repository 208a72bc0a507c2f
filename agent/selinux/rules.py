"""What a SELinux profile may ask for (:class:`Rules`) and what its module and domain are called.

Apart from :mod:`agent.selinux.render` so that the driver and the backend, which every host
builds and probes, do not import the SELinux model and renderer: those are imported by the
first build with a SELinux profile to render.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.model.profile import Kind, ProfileKey

DENIED_TYPES = ("kernel_t", "kmem_t", "security_t", "shadow_t")
DENIED_CLASSES = ("capability", "capability2", "security", "system")
DENIED_PERMISSIONS = ("load_policy", "mac_admin", "mounton", "relabelto", "relabelfrom",
                      "setbool", "setenforce", "setsecparam")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """What a profile may ask for (``[selinux]`` in the config; SPO's defaults). The default
    template is ``agent.model.selinux.DEFAULT_TEMPLATE`` (a test checks they agree)."""

    allowed_system_profiles: frozenset[str] = field(default_factory=lambda: frozenset(
        {"container"}))
    denied_types: frozenset[str] = frozenset(DENIED_TYPES)
    denied_classes: frozenset[str] = frozenset(DENIED_CLASSES)
    denied_permissions: frozenset[str] = frozenset(DENIED_PERMISSIONS)


def block_name(key: ProfileKey) -> str:
    """The CIL block a profile declares (SPO's naming)."""
    return f"{key.name}_" if key.kind is Kind.RAW_SELINUX else key.name


def module_name(key: ProfileKey) -> str:
    """The policy module: named after its block, so the two kinds never collide."""
    return block_name(key)


def usage(key: ProfileKey) -> str:
    """How a workload selects the profile's domain (``seLinuxOptions.type``)."""
    return f"{block_name(key)}.process"
