"""Identity of a profile: its kind and name, and where its document came from."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple, Protocol


class Kind(StrEnum):
    """Profile kinds, spelled exactly as SPO's ``kind`` field."""

    SECCOMP = "SeccompProfile"
    APPARMOR = "AppArmorProfile"
    SELINUX = "SelinuxProfile"
    RAW_SELINUX = "RawSelinuxProfile"

    @classmethod
    def parse(cls, text: str) -> Kind:
        """A kind from its SPO spelling or a short alias (``seccomp``), case-insensitive."""
        lowered = text.lower()
        for kind in cls:
            if lowered in (kind.value.lower(), kind.short):
                return kind
        raise ValueError(text)

    @property
    def short(self) -> str:
        return _SHORT[self]


_SHORT = {
    Kind.SECCOMP: "seccomp",
    Kind.APPARMOR: "apparmor",
    Kind.SELINUX: "selinux",
    Kind.RAW_SELINUX: "rawselinux",
}


class ProfileKey(NamedTuple):
    """``(kind, name)``: two documents with the same key are in conflict.

    A tuple rather than a dataclass: it is the key of every table in a reconcile, and tuple
    hashing and ordering run in C (a dataclass re-hashes its fields in Python on every lookup).
    """

    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a document came from.

    ``file`` is relative to the desired-state directory (the ledger records it, so that a file
    that becomes unreadable holds what it installed), ``display`` is how messages show it.
    """

    file: str
    display: str
    index: int
    item: int | None = None  # the entry of a ``kind: List`` document

    def __str__(self) -> str:
        where = f"{self.display}[{self.index}]"
        return where if self.item is None else f"{where}.items[{self.item}]"


class Profile(Protocol):
    """What every kind's profile value offers the kind-neutral parts (loading, planning, the
    ledger): its identity, where it came from, and whether it is switched off.

    Each kind defines its own frozen dataclass (``SeccompProfile``, …); only its driver looks
    further into it.
    """

    @property
    def key(self) -> ProfileKey: ...

    @property
    def name(self) -> str: ...

    @property
    def origin(self) -> Origin: ...

    @property
    def disabled(self) -> bool: ...
