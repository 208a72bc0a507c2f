"""The ledger: what secprof installed, with the digest of the bytes it wrote.

It is the agent's claim of ownership: only what the ledger lists is ever removed, and its digest
is the "last good" version that stays installed when a newer one fails. It lives in the state
directory as a small JSON file, rewritten atomically after each apply.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.fsutil import atomic_write, ensure_dir
from agent.model.profile import Kind, ProfileKey

SCHEMA_VERSION = 1
LEDGER_FILE = "ledger.json"

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


class LedgerStore:
    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self.path = state_dir / LEDGER_FILE
        # The last entries read or written, with the file's identity then: a long-running
        # process re-reads the file only when someone else changed it.
        self._known: tuple[tuple[int, int, int], dict[ProfileKey, Entry]] | None = None

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def load(self, *, repair: bool = True) -> dict[ProfileKey, Entry]:
        """The ledger's entries; an unreadable ledger is never trusted.

        Losing the ledger only means secprof forgets what it may remove: it never removes
        anything it has no record of, so the safe recovery is to start empty. With ``repair``
        the unreadable file is moved aside (kept for a post-mortem); without, nothing is written.
        """
        identity = self._identity()
        if self._known is not None and identity == self._known[0]:
            return dict(self._known[1])
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"schema_version {raw.get('schema_version')!r}")
            entries = [Entry.from_json(e) for e in raw["entries"]]
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            if not repair:
                log.error("ledger %s is unreadable (%s); treating it as empty", self.path, exc)
                return {}
            aside = self.path.with_name(f"{LEDGER_FILE}.corrupt-{int(time.time())}")
            log.error("ledger %s is unreadable (%s); moved to %s, starting empty",
                      self.path, exc, aside)
            self.path.replace(aside)
            return {}
        entries_by_key = {e.key: e for e in entries}
        if identity is not None:
            self._known = (identity, entries_by_key)
        return dict(entries_by_key)

    def save(self, entries: Mapping[ProfileKey, Entry]) -> None:
        ensure_dir(self._dir, mode=0o700)
        # One entry per line: readable, diffable, and json's fast C encoder still does the work.
        lines = [json.dumps(entries[k].to_json(), separators=(",", ":")) for k in sorted(entries)]
        text = (f'{{"schema_version":{SCHEMA_VERSION},"entries":[\n' + ",\n".join(lines)
                + "\n]}\n")
        atomic_write(self.path, text.encode(), mode=0o600)
        identity = self._identity()
        self._known = (identity, dict(entries)) if identity else None
