"""The ledger: what secprof installed, with the digest of the bytes it wrote.

It is the agent's claim of ownership: only what the ledger lists is ever removed, and its digest
is the "last good" version that stays installed when a newer one fails. It lives in the state
directory as a small JSON file, rewritten atomically after each apply.

Ownership survives crashes through an intent journal (``intent.json``): before a backend writes
anything, the keys and locations about to be written are saved; after the ledger is saved the
journal is removed. A journal found at start means a run died in between: its keys are adopted
into the ledger with an unconfirmed digest, so the next plan rewrites them (still desired) or
removes them (no longer desired) instead of leaving files nobody owns. A ledger that cannot be
read is moved aside and rebuilt from what is on disk in secprof's own directories (see
:class:`Inventory`), never from anywhere else. A state directory that cannot be written is an
:class:`AgentError` ``state-unwritable``; the reconciler then writes nothing it could not record.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent.codes import Code
from agent.errors import AgentError
from agent.fsutil import atomic_write_at, open_dir, read_at, remove_stale_temps
from agent.model.profile import Kind, ProfileKey

SCHEMA_VERSION = 1
LEDGER_FILE = "ledger.json"
INTENT_FILE = "intent.json"
UNCONFIRMED = "unconfirmed"  # the digest of an adopted intent: matches no real digest
MAX_STATE_BYTES = 64 << 20

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    key: ProfileKey
    digest: str  # sha256:<hex> of the installed bytes
    location: str  # path, module or profile name on the host
    source: str  # manifest file (relative to the desired-state directory) it came from
    installed_at: float  # unix time of the last write

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.key.kind.value,
            "name": self.key.name,
            "digest": self.digest,
            "location": self.location,
            "source": self.source,
            "installed_at": self.installed_at,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> Entry:
        installed_at = raw["installed_at"]
        if not isinstance(installed_at, int | float):
            raise TypeError("installed_at")
        return cls(
            key=ProfileKey(Kind(str(raw["kind"])), str(raw["name"])),
            digest=str(raw["digest"]),
            location=str(raw["location"]),
            source=str(raw["source"]),
            installed_at=float(installed_at),
        )


@runtime_checkable
class Inventory(Protocol):
    """A backend that can list what is in its own namespace (secprof's subdirectory, its
    ownership marker): the only source a lost ledger is rebuilt from."""

    def inventory(self) -> Mapping[ProfileKey, tuple[str, str]]:
        """``key -> (digest, location)`` of every profile file in secprof's own namespace."""
        ...


@runtime_checkable
class Sweepable(Protocol):
    """A backend whose directory can hold temp files of killed runs (see
    :func:`agent.fsutil.remove_stale_temps`)."""

    def sweep(self) -> list[str]:
        """Remove them; their names."""
        ...


def state_error(action: str, path: Path, exc: OSError) -> AgentError:
    return AgentError(
        f"cannot {action} {path}: {exc.strerror or exc}", code=Code.STATE_UNWRITABLE,
        hint="free space in (or remount read-write) the state directory; nothing was changed "
             "that secprof could not record",
    )


class LedgerStore:
    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self.path = state_dir / LEDGER_FILE
        self.intent_path = state_dir / INTENT_FILE
        # The last entries read or written, with the file's identity then: a long-running
        # process re-reads the file only when someone else changed it.
        self._known: tuple[tuple[int, int, int], dict[ProfileKey, Entry]] | None = None
        # Why the ledger last read was unreadable (moved aside): the caller rebuilds it.
        self.corrupt: str = ""

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _read(self, name: str) -> bytes | None:
        """A state file's bytes (regular files only, never through a link); ``None``: absent."""
        try:
            fd = open_dir(self._dir)
        except FileNotFoundError:
            return None
        try:
            return read_at(fd, name, max_bytes=MAX_STATE_BYTES)
        finally:
            os.close(fd)

    def sweep(self) -> list[str]:
        """Remove the temp files killed runs left in the state directory (secprof's own pattern
        only). Only under the state lock: a read-only command must not race a writer."""
        try:
            fd = open_dir(self._dir)
        except OSError:
            return []
        try:
            removed = remove_stale_temps(fd)
        except OSError as exc:
            log.warning("cannot clean up %s: %s", self._dir, exc.strerror or exc)
            return []
        finally:
            os.close(fd)
        for name in removed:
            log.warning("removed %s, a temp file an interrupted run left", self._dir / name)
        return removed

    def _write(self, name: str, data: bytes) -> None:
        try:
            fd = open_dir(self._dir, create=True, mode=0o700)
        except OSError as exc:
            raise state_error("open the state directory", self._dir, exc) from None
        try:
            atomic_write_at(fd, name, data, mode=0o600)
        except OSError as exc:
            raise state_error("write", self._dir / name, exc) from None
        finally:
            os.close(fd)

    def load(self, *, repair: bool = True) -> dict[ProfileKey, Entry]:
        """The ledger's entries; an unreadable ledger is never trusted.

        An unreadable ledger reads as empty and sets :attr:`corrupt`; with ``repair`` the file is
        moved aside (kept for a post-mortem) and the caller rebuilds the entries from
        :class:`Inventory` backends; without, nothing is written.
        """
        self.corrupt = ""
        identity = self._identity()
        if self._known is not None and identity == self._known[0]:
            return dict(self._known[1])
        try:
            data = self._read(LEDGER_FILE)
            if data is None:
                return {}
            raw = json.loads(data.decode("utf-8"))
            if raw.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {raw.get('schema_version')!r}")
            entries = [Entry.from_json(e) for e in raw["entries"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            self.corrupt = f"{type(exc).__name__}: {exc}"[:300]
            if not repair:
                log.error("ledger %s is unreadable (%s); treating it as empty", self.path, exc)
                return {}
            aside = self.path.with_name(f"{LEDGER_FILE}.corrupt-{int(time.time())}")
            log.error("ledger %s is unreadable (%s); moved to %s, rebuilding it from what is "
                      "installed in secprof's own directories", self.path, exc, aside,
                      extra={"ERROR_CODE": Code.LEDGER_REBUILT})
            try:
                os.replace(self.path, aside)
            except OSError as move:
                log.error("cannot move %s aside: %s", self.path, move.strerror or move)
            return {}
        entries_by_key = {e.key: e for e in entries}
        if identity is not None:
            self._known = (identity, entries_by_key)
        return dict(entries_by_key)

    def save(self, entries: Mapping[ProfileKey, Entry]) -> None:
        """Replace the ledger; :class:`AgentError` ``state-unwritable`` when it cannot."""
        # One entry per line: readable, diffable, and json's fast C encoder still does the work.
        lines = [json.dumps(entries[k].to_json(), separators=(",", ":")) for k in sorted(entries)]
        text = (f'{{"schema_version":{SCHEMA_VERSION},"entries":[\n' + ",\n".join(lines)
                + "\n]}\n")
        self._write(LEDGER_FILE, text.encode())
        identity = self._identity()
        self._known = (identity, dict(entries)) if identity else None

    def intend(self, entries: Iterable[Entry]) -> None:
        """Record, durably, the keys and locations a backend is about to write (the digest is
        the new content's). :class:`AgentError` ``state-unwritable`` when it cannot: then
        nothing may be written."""
        # A journal still there (its run's ledger could not be saved) keeps its keys too.
        merged = {e.key: e for e in self.pending()}
        merged.update((e.key, e) for e in entries)
        lines = [json.dumps(merged[k].to_json(), separators=(",", ":")) for k in sorted(merged)]
        self._write(INTENT_FILE, (f'{{"schema_version":{SCHEMA_VERSION},"entries":[\n'
                                  + ",\n".join(lines) + "\n]}\n").encode())

    def done(self) -> None:
        """The ledger records everything the intent announced: drop the journal."""
        try:
            fd = open_dir(self._dir)
        except OSError:
            return
        try:
            os.unlink(INTENT_FILE, dir_fd=fd)
            os.fsync(fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.intent_path, exc.strerror or exc)
        finally:
            os.close(fd)

    def pending(self) -> list[Entry]:
        """The entries of an intent journal a crashed run left (empty when there is none).
        A journal that cannot be parsed yields what can be read of it: its keys only widen
        what is re-checked, never what is trusted."""
        try:
            data = self._read(INTENT_FILE)
        except OSError as exc:
            log.error("intent journal %s is unreadable: %s", self.intent_path, exc)
            return []
        if data is None:
            return []
        out: list[Entry] = []
        for line in data.decode("utf-8", "replace").splitlines():
            try:
                out.append(Entry.from_json(json.loads(line.rstrip(","))))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                continue  # the head and tail lines, or a torn line
        return out
