"""The container templates shipped in ``agent/selinux/templates`` (package data).

Each ``<block>.cil`` is installed as its own module ``secprof_<block>`` (a Kubernetes name has
no ``_``, so no profile module can take that name), in the same transaction as the profiles
that inherit it. Hosts with udica's templates (Fedora, RHEL: modules ``base_container``,
``net_container``, …) already declare these blocks; there secprof's copy stays out and the
host's is used, so SPO's profiles keep their meaning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from agent.fsutil import sha256_hex

MODULE_PREFIX = "secprof_"
# Template block → the udica/selinuxd modules that declare the same block on other hosts.
_HOST_MODULES = {
    "container": ("base_container",),
    "log_rw_container": ("log_container",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    block: str
    content: bytes

    @property
    def module(self) -> str:
        return f"{MODULE_PREFIX}{self.block}"

    @property
    def digest(self) -> str:
        return f"sha256:{sha256_hex(self.content)}"

    @property
    def host_modules(self) -> tuple[str, ...]:
        """Modules that, when present at another priority, already provide this block."""
        return _HOST_MODULES.get(self.block, (self.block,))


@cache
def templates() -> tuple[Template, ...]:
    """Every shipped template, sorted by block name (so a transaction's order is stable)."""
    # Read beside this module (secprof runs from files on disk, never from a zip): importlib's
    # resources API costs 6 ms of imports (tempfile, random) on every host, SELinux or not.
    found = []
    with os.scandir(os.path.join(os.path.dirname(__file__), "templates")) as entries:
        for entry in entries:
            if entry.name.endswith(".cil"):
                with open(entry.path, "rb") as f:
                    found.append(Template(block=entry.name.removesuffix(".cil"),
                                          content=f.read()))
    return tuple(sorted(found, key=lambda t: t.block))


def template_names() -> frozenset[str]:
    return frozenset(t.block for t in templates())
