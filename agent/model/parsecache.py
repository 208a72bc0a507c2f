"""A cache of read manifests, keyed by the sha256 of a file's bytes (and how it is read).

Parsing YAML and validating every field is most of what a no-op ``secprof apply`` costs. The
cache keeps, per file content that read cleanly, the validated profiles as plain JSON; reading
them back is many times faster. A file with any error is never cached, the cache is dropped
whenever secprof's version changes (validation may differ), and it lives in the state directory
(mode 0700), so what it returns was validated by this very version. Entries not used by a run are
dropped when it saves, so the file never grows beyond the current desired state.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from agent import __version__
from agent.fsutil import atomic_write, ensure_dir

log = logging.getLogger(__name__)
CACHE_FILE = "parse-cache.json"


class ParseCache:
    def __init__(self, state_dir: Path) -> None:
        self._dir = state_dir
        self._path = state_dir / CACHE_FILE
        self._entries: dict[str, list[Any]] = self._read()
        self._used: dict[str, list[Any]] = {}
        self.hits = 0

    def _read(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable parse cache %s: %s", self._path, exc)
            return {}
        # A new secprof version may read YAML differently: start over rather than guess.
        if not isinstance(doc, dict) or doc.get("version") != __version__:
            return {}
        entries = doc.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, digest: str) -> list[Any] | None:
        docs = self._entries.get(digest)
        if docs is not None:
            self._used[digest] = docs
            self.hits += 1
        return docs

    def put(self, digest: str, docs: list[Any]) -> None:
        try:
            if json.loads(json.dumps(docs, allow_nan=False)) != docs:
                return  # e.g. an integer mapping key would come back as a string
        except (TypeError, ValueError):
            return  # timestamps, binary: not plain JSON
        self._used[digest] = docs

    def save(self) -> None:
        """Persist the entries used by this run (a no-op when nothing changed)."""
        if self._used == self._entries:
            return
        ensure_dir(self._dir, mode=0o700)
        data = json.dumps({"version": __version__, "entries": self._used},
                          separators=(",", ":"))
        atomic_write(self._path, data.encode(), mode=0o600)
        self._entries = dict(self._used)
