"""What ``semodule`` prints, read: module listings and failure messages.

A failed transaction names the sandbox path of the module it choked on
(``<store>/tmp/modules/370/web/cil:3``, ``line 3 of …/web/cil``): that is how a failure is
pinned to one module, and how the message is made readable (the path becomes ``module web line
3`` with the CIL line quoted). libsemanage's chatter that comes with every commit is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# "<store>/tmp/modules/370/name/cil:3" and "line 3 of <store>/tmp/modules/370/name/cil"
_AT_RE = re.compile(r"(?:\S*/)?modules/(\d+)/([^/\s]+)/cil(?::(\d+))?")
_LINE_OF_RE = re.compile(r"line (\d+) of (?:\S*/)?modules/(\d+)/([^/\s]+)/cil")
# "semodule:  Failed on <scratch>/name.cil!": the file semodule could not take in
_FAILED_ON_RE = re.compile(r"Failed on (?:\S*/)?([^/\s]+)\.cil!")
_NOISE = (
    re.compile(r"^libsemanage\.add_user: user \S+ not in password file$"),
    re.compile(r"^libsemanage\.semanage_direct_remove_key: Removing last .*$"),
    re.compile(r"^semodule:\s+Failed(?: on \S+)?!$"),
)


# libsemanage takes its locks without waiting long: a package upgrade holds them for a while.
_BUSY_RE = re.compile(r"could not get (?:direct )?(?:transaction|read) lock", re.IGNORECASE)


def is_busy(text: str) -> bool:
    """The failure is another writer holding the store's lock, not a module."""
    return _BUSY_RE.search(text) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Module:
    """One line of ``semodule -lfull [--checksum]``."""

    priority: int
    name: str
    checksum: str | None = None
    disabled: bool = False


def parse_listing(text: str) -> list[Module]:
    """Modules from ``semodule -lfull`` output (libsemanage's warnings are skipped)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        checksum = next((p for p in parts[3:] if p.startswith("sha256:")), None)
        out.append(Module(priority=int(parts[0]), name=parts[1], checksum=checksum,
                          disabled="disabled" in parts[3:]))
    return out


def named_modules(text: str, priority: int) -> set[str]:
    """Our-priority modules a failure message points at."""
    named = {m.group(2) for m in _AT_RE.finditer(text) if int(m.group(1)) == priority}
    named |= {m.group(3) for m in _LINE_OF_RE.finditer(text) if int(m.group(2)) == priority}
    return named | set(_FAILED_ON_RE.findall(text))  # only our scratch files are passed


def clean(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    return "; ".join(line for line in lines if line and not any(n.match(line) for n in _NOISE))


def explain(text: str, module: str, content: bytes | None,
            field: Callable[[int], str | None] = lambda _line: None) -> str:
    """semodule's message without sandbox paths, quoting the CIL line it names in ``module``
    (whose source is ``content``) and the manifest field ``field`` maps that line to."""
    lines = content.decode("utf-8", "replace").splitlines() if content else []

    def quote(name: str, line: str | None) -> str:
        where = f"module {name}" + (f" line {line}" if line else "")
        if name == module and line and 0 < int(line) <= len(lines):
            where += f" `{lines[int(line) - 1].strip()}`"
            source = field(int(line))
            if source:
                where += f" (from {source})"
        return where

    text = _LINE_OF_RE.sub(lambda m: quote(m.group(3), m.group(1)), text)
    text = _AT_RE.sub(lambda m: quote(m.group(2), m.group(3)), text)
    return clean(text) or "semodule failed without a message"
