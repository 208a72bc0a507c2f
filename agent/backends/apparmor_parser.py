"""What ``apparmor_parser`` and the kernel's AppArmor interface say, as values.

Kept apart from the backend so that each format has one reader: the parser's error lines, its
``-N`` name lists, the kernel's ``profiles`` list and the labels in ``/proc/<pid>/attr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# "AppArmor parser error for <file> in profile <file it happened in> at line N: <what>"
_ERROR_RE = re.compile(
    r"^AppArmor parser error for (?P<file>.+?) in profile (?P<inner>.+?) at line "
    r"(?P<line>\d+): (?P<what>.*)$"
)
# apparmor_parser: Unable to replace "x".  Profile doesn't exist  (load errors name the profile)
_UNABLE_RE = re.compile(
    r'^(?:\S*/)?apparmor_parser: Unable to \w+ "(?P<name>[^"]+)"\.\s*(?P<what>.*)$'
)
_NOISE = ("Cache read/write disabled", "Warning: unable to find a suitable fs")
_HEADER_RE = re.compile(r"^\s*profile\s+(?P<name>\S+)[^\n{]*?flags\s*=\s*\((?P<flags>[^)]*)\)",
                        re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParserMessage:
    """One error the parser printed: the file it compiled, where (line, and the included file
    when the error is in one) and what."""

    file: str
    line: int | None
    what: str
    inner: str = ""  # the included file the error is in, "" when it is in ``file`` itself


def messages(stderr: str) -> list[ParserMessage]:
    """The error lines of the parser's stderr that name a file."""
    out: list[ParserMessage] = []
    for raw in stderr.splitlines():
        match = _ERROR_RE.match(raw.strip())
        if match:
            inner = match["inner"]
            out.append(ParserMessage(file=match["file"], line=int(match["line"]),
                                     what=match["what"],
                                     inner="" if inner == match["file"] else inner))
    return out


def unable(stderr: str) -> dict[str, str]:
    """Profiles the kernel interface refused (``Unable to replace "x"``), name → reason."""
    out: dict[str, str] = {}
    for raw in stderr.splitlines():
        match = _UNABLE_RE.match(raw.strip())
        if match:
            out[match["name"]] = match["what"] or "refused by the kernel"
    return out


def tail(stderr: str, limit: int = 600) -> str:
    """The parser's stderr without the lines it prints on every host without a kernel
    interface, shortened for a status message."""
    lines = [ln.strip() for ln in stderr.splitlines()
             if ln.strip() and not ln.startswith(_NOISE) and "--subdomainfs" not in ln]
    text = "; ".join(lines)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def top_names(names_output: str) -> list[str]:
    """Top-level profile names of ``apparmor_parser -N`` output (children ``a//b`` left out)."""
    return [n for n in (ln.strip() for ln in names_output.splitlines()) if n and "//" not in n]


def declared_mode(content: bytes, name: str) -> str | None:
    """``enforce``/``complain`` from the flags of ``profile <name> … flags=(…)``; ``None`` when
    the text does not say (the kernel's default, enforce, is then not checked)."""
    text = content.decode(errors="replace")
    for match in _HEADER_RE.finditer(text):
        if match["name"] == name:
            flags = {f.strip() for f in match["flags"].split(",")}
            return "complain" if "complain" in flags else "enforce"
    return None


def kernel_profiles(securityfs: Path) -> dict[str, str]:
    """``<securityfs>/profiles`` as name → mode (empty when the file is missing)."""
    try:
        text = (securityfs / "profiles").read_text(errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, mode = line.rpartition(" (")
        if sep:
            out[name] = mode.rstrip(")")
    return out


def confined_pids(proc_root: Path, names: Iterable[str]) -> Mapping[str, list[int]]:
    """The PIDs running under each of ``names`` (or one of its children ``name//x``), read from
    ``<proc>/<pid>/attr/apparmor/current`` (kernels ≥ 5.8) or ``attr/current``."""
    wanted = set(names)
    out: dict[str, list[int]] = {name: [] for name in wanted}
    if not wanted:
        return out
    try:
        entries = [e.name for e in os.scandir(proc_root) if e.name.isdigit()]
    except OSError:
        return out
    for pid in sorted(entries, key=int):
        label = _label(proc_root / pid)
        if label is None:
            continue
        for part in label.split("//&"):  # a stacked label confines under each of its parts
            top = part.split("//", 1)[0]
            if top in wanted:
                out[top].append(int(pid))
    return out


def _label(pid_dir: Path) -> str | None:
    for rel in ("attr/apparmor/current", "attr/current"):
        try:
            text = (pid_dir / rel).read_text(errors="replace").strip().rstrip("\0")
        except OSError:  # no such attr, or the process is gone
            continue
        if text:
            name, sep, _mode = text.rpartition(" (")
            return name if sep else text
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """How to show a parser message against the manifest: its origin, and the manifest field
    of each line of the text (rendered abstracts) or the field holding the text (raw)."""

    origin: str
    fields: Mapping[int, str]
    raw_field: str = ""


def located(message: ParserMessage, source: Source | None) -> str:
    """``<manifest>[i] <field> (line N of the rendered profile): `` for a parser message."""
    if message.inner:
        where = f"{source.origin}: " if source else ""
        return f"{where}{message.inner} line {message.line} (included): "
    if source is None:
        return f"line {message.line}: "
    field = source.fields.get(message.line or 0, "")
    if source.raw_field:
        return f"{source.origin} {source.raw_field} line {message.line}: "
    if field:
        return f"{source.origin} {field} (line {message.line} of the rendered profile): "
    return f"{source.origin} line {message.line} of the rendered profile: "

