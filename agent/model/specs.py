"""Which kinds this version reads, and how: one spec parser per kind (and, where a kind's
validated values can be kept in the parse cache, its codec).

This table is the only place the loader learns about kinds; a new kind adds one line here, its
driver one line in :mod:`agent.app`. A document of a kind with no parser is an error of that
document only (``kind-unsupported``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.model import apparmor, seccomp_parse, selinux
from agent.model.decode import Node
from agent.model.profile import Kind, Origin, Profile, ProfileKey

SpecParser = Callable[[Node, ProfileKey, Origin], Profile]
"""Parse the ``spec`` node of one document whose identity is known; errors name the field."""

SPEC_PARSERS: dict[Kind, SpecParser] = {
    Kind.SECCOMP: seccomp_parse.parse_document,
    Kind.APPARMOR: apparmor.parse_apparmor,
    Kind.SELINUX: selinux.parse_selinux_spec,
    Kind.RAW_SELINUX: selinux.parse_raw_selinux_spec,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheCodec:
    """A kind's validated profile as plain JSON and back (see :mod:`agent.model.parsecache`).

    ``load`` reads trusted input (secprof's own state dir, keyed by the code that wrote it)."""

    dump: Callable[[Any], dict[str, Any]]
    load: Callable[[Mapping[str, Any], Origin], Profile]


CACHE_CODECS: dict[Kind, CacheCodec] = {
    Kind.SECCOMP: CacheCodec(dump=seccomp_parse.profile_to_cache,
                             load=seccomp_parse.profile_from_cache),
    Kind.APPARMOR: CacheCodec(dump=apparmor.profile_to_cache, load=apparmor.profile_from_cache),
    Kind.SELINUX: CacheCodec(dump=selinux.selinux_to_cache, load=selinux.selinux_from_cache),
    Kind.RAW_SELINUX: CacheCodec(dump=selinux.raw_to_cache, load=selinux.raw_from_cache),
}
