"""Which kinds this version reads, and how: one spec parser per kind (and, where a kind's
validated values can be kept in the parse cache, its codec).

This table is the only place the loader learns about kinds; a new kind adds one line here, its
driver one line in :mod:`agent.app`. A document of a kind with no parser is an error of that
document only (``kind-unsupported``).

Only seccomp's module is imported with this one: the AppArmor and SELinux models (dataclasses
and regexes, about 13 ms of imports) are imported the first time a document or cache entry of
their kind is read (:class:`_OnFirstUse`), so a host with seccomp profiles only never pays for
them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.model import seccomp_parse
from agent.model.decode import Node
from agent.model.profile import Kind, Origin, Profile, ProfileKey

SpecParser = Callable[[Node, ProfileKey, Origin], Profile]
"""Parse the ``spec`` node of one document whose identity is known; errors name the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheCodec:
    """A kind's validated profile as plain JSON and back (see :mod:`agent.model.parsecache`).

    ``load`` reads trusted input (secprof's own state dir, keyed by the code that wrote it)."""

    dump: Callable[[Any], dict[str, Any]]
    load: Callable[[Mapping[str, Any], Origin], Profile]


def _apparmor() -> tuple[SpecParser, CacheCodec]:
    from agent.model import apparmor  # noqa: PLC0415 -- on first use, see the docstring

    return apparmor.parse_apparmor, CacheCodec(dump=apparmor.profile_to_cache,
                                               load=apparmor.profile_from_cache)


def _selinux() -> tuple[SpecParser, CacheCodec]:
    from agent.model import selinux  # noqa: PLC0415 -- on first use, see the docstring

    return selinux.parse_selinux_spec, CacheCodec(dump=selinux.selinux_to_cache,
                                                  load=selinux.selinux_from_cache)


def _raw_selinux() -> tuple[SpecParser, CacheCodec]:
    from agent.model import selinux  # noqa: PLC0415 -- on first use, see the docstring

    return selinux.parse_raw_selinux_spec, CacheCodec(dump=selinux.raw_to_cache,
                                                      load=selinux.raw_from_cache)


class _OnFirstUse:
    """One kind's parser and codec whose module is imported the first time either is called."""

    def __init__(self, load: Callable[[], tuple[SpecParser, CacheCodec]]) -> None:
        self._load = load
        self._loaded: tuple[SpecParser, CacheCodec] | None = None

    def _get(self) -> tuple[SpecParser, CacheCodec]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def parse(self, node: Node, key: ProfileKey, origin: Origin) -> Profile:
        return self._get()[0](node, key, origin)

    def dump(self, profile: Any) -> dict[str, Any]:
        return self._get()[1].dump(profile)

    def load(self, entry: Mapping[str, Any], origin: Origin) -> Profile:
        return self._get()[1].load(entry, origin)

    @property
    def codec(self) -> CacheCodec:
        return CacheCodec(dump=self.dump, load=self.load)


_APPARMOR = _OnFirstUse(_apparmor)
_SELINUX = _OnFirstUse(_selinux)
_RAW_SELINUX = _OnFirstUse(_raw_selinux)

SPEC_PARSERS: dict[Kind, SpecParser] = {
    Kind.SECCOMP: seccomp_parse.parse_document,
    Kind.APPARMOR: _APPARMOR.parse,
    Kind.SELINUX: _SELINUX.parse,
    Kind.RAW_SELINUX: _RAW_SELINUX.parse,
}

CACHE_CODECS: dict[Kind, CacheCodec] = {
    Kind.SECCOMP: CacheCodec(dump=seccomp_parse.profile_to_cache,
                             load=seccomp_parse.profile_from_cache),
    Kind.APPARMOR: _APPARMOR.codec,
    Kind.SELINUX: _SELINUX.codec,
    Kind.RAW_SELINUX: _RAW_SELINUX.codec,
}
