"""A cache of read manifests, keyed by the sha256 of a file's bytes (and how it is read).

Parsing YAML and validating every field is most of what a no-op ``secprof apply`` costs (the
benchmark: about 0.4 s of 0.9 s at 1050 profiles). The cache keeps, per file content that read
cleanly, the validated profiles as plain JSON; reading them back is many times faster. A file
with any error is never cached, and the whole cache is tied to the code that validated it: its
key includes a fingerprint of every module of the ``agent`` package (not a version number, which
a changed rule need not bump), so a stricter validator never sees an answer of an older one. It
lives in the state directory (mode 0700). Entries not used by a run are dropped when it saves,
so the file never grows beyond the current desired state.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from agent.fsutil import atomic_write, ensure_dir, read_bytes

log = logging.getLogger(__name__)
CACHE_FILE = "parse-cache.json"


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.cache
def code_fingerprint(package: str = _PACKAGE) -> str:
    """sha256 over the path and bytes of every module of the package: the code that parsed a
    cached answer. About 2 ms, once per process (scandir and plain reads: pathlib is slower)."""
    files: list[str] = []
    stack = [package]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    files.append(entry.path)
    h = hashlib.sha256()
    for path in sorted(files):
        with open(path, "rb") as f:
            h.update(path[len(package):].encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


class ParseCache:
    def __init__(self, state_dir: Path, *, fingerprint: str | None = None) -> None:
        """``fingerprint`` identifies the parsing code (default: :func:`code_fingerprint`)."""
        self._dir = state_dir
        self._path = state_dir / CACHE_FILE
        self._code = fingerprint if fingerprint is not None else code_fingerprint()
        self._entries: dict[str, list[Any]] = self._read()
        self._used: dict[str, list[Any]] = {}
        self.hits = 0

    def _read(self) -> dict[str, list[Any]]:
        try:
            data = read_bytes(self._path)  # a regular file only: a FIFO here must not hang
            if data is None:
                return {}
            doc = json.loads(data.decode("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable parse cache %s: %s", self._path, exc)
            return {}
        # Other code may validate differently: start over rather than guess.
        if not isinstance(doc, dict) or doc.get("code") != self._code:
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
        data = json.dumps({"code": self._code, "entries": self._used},
                          separators=(",", ":"))
        atomic_write(self._path, data.encode(), mode=0o600)
        self._entries = dict(self._used)
