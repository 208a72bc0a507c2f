"""The OCI cache on disk (``<cache_dir>/oci``): what lets a base keep working through restarts
and registry outages.

Two diskcache stores, holding bytes under string keys and nothing else:

* ``content``: profile layers by digest. Immutable, re-hashed on every read (a corrupted entry is
  dropped and fetched again), bounded by ``cache_max_entries`` and ``cache_max_bytes``; the least
  recently stored goes first.
* ``records``: small JSON records. Per reference and platform, what it resolved to the last time
  it was fetched in full (:class:`Resolved`): within ``tag_ttl_s`` that is the tag's digest,
  after it the last known good. Failures (:class:`Failure`), remembered with a backoff. And
  signature verifications per (trust policy id, repository, digest), with the signature
  material that verified (:mod:`agent.oci.verification` re-verifies it when reading it back).

diskcache pickles anything that is not bytes, str or a number, and unpickles any row whose mode
says pickle. :class:`_RawDisk` refuses both ways: a cache file someone else wrote can at worst
make us fetch again, never run code. Times come from the injected clock, never from diskcache's
own expiry, so tests can move time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import diskcache

from agent.codes import Code
from agent.errors import ResolveError
from agent.fsutil import ensure_dir
from agent.seccomp.render import digest as sha256_digest

# A reference record, its verification record, failures for it and its registry, some slack.
_RECORDS_PER_ENTRY = 5


class _RawDisk(diskcache.Disk):  # type: ignore[misc]
    """diskcache's storage with pickle taken out: str keys and bytes values only."""

    def put(self, key: Any) -> Any:
        if type(key) is not str:
            raise TypeError(f"cache keys are str, not {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise ValueError("refusing a pickled cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if read or type(value) is not bytes:
            raise TypeError(f"cache values are bytes, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: Any, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
            raise ValueError(f"refusing a cache row stored in mode {mode}")
        return super().fetch(mode, filename, value, read)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """What a reference (on one platform) resolved to, the last time it was fetched in full."""

    manifest: str  # the artifact's manifest digest
    layer: str  # the profile layer's digest: the key of its content
    format: str
    title: str
    checked_at: float  # when the registry last confirmed the manifest digest

    def fresh(self, now: float, ttl_s: float) -> bool:
        # A clock that went backwards makes the record old, not fresh forever.
        return 0 <= now - self.checked_at < ttl_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    code: str
    message: str
    count: int  # consecutive failures
    at: float
    retry_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    resolved: tuple[tuple[str, Resolved], ...]
    failures: tuple[tuple[str, Failure], ...]
    verifications: tuple[tuple[str, dict[str, Any]], ...]  # key: "<policy id>|<repo>@<digest>"
    content_entries: int
    content_bytes: int


def _private_dir(path: Path) -> None:
    """Create ``path`` (0700) and refuse one that others could write: the records name which
    digest a tag means, so a writable cache would be a way around the registry."""
    ensure_dir(path, 0o700)
    info = path.stat()
    if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ResolveError(
            f"the OCI cache {path} is writable by other users; not using it",
            code=Code.CACHE_INSECURE,
            hint=f"chown to the user secprof runs as and chmod 700 {path}",
        )


class OciCache:
    """The cache; opened on first use, so commands that fetch nothing never touch the disk."""

    def __init__(self, directory: Path, *, max_entries: int, max_bytes: int,
                 clock: Callable[[], float]) -> None:
        self.directory = directory
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._stores: tuple[diskcache.Cache, diskcache.Cache] | None = None

    def _open(self) -> tuple[diskcache.Cache, diskcache.Cache]:
        if self._stores is None:
            try:
                _private_dir(self.directory)
                settings = {"disk": _RawDisk, "eviction_policy": "least-recently-stored"}
                content = diskcache.Cache(str(self.directory / "content"),
                                          size_limit=self._max_bytes, **settings)
                records = diskcache.Cache(str(self.directory / "records"), **settings)
            except (OSError, sqlite3.Error) as exc:
                raise ResolveError(f"cannot open the OCI cache {self.directory}: {exc}",
                                   code=Code.CACHE_UNAVAILABLE) from None
            self._stores = (content, records)
        return self._stores

    def close(self) -> None:
        if self._stores is not None:
            for store in self._stores:
                store.close()
            self._stores = None

    # -- content --------------------------------------------------------------------------

    def content(self, digest: str) -> bytes | None:
        """The bytes stored under ``digest``, re-hashed; ``None`` when absent or corrupted."""
        store = self._open()[0]
        data = store.get(digest)
        if data is None:
            return None
        if sha256_digest(data) != digest:
            store.delete(digest)
            return None
        return bytes(data)

    def store_content(self, digest: str, data: bytes) -> None:
        store = self._open()[0]
        if sha256_digest(data) != digest:
            raise ValueError(f"content does not match {digest}")
        if digest in store:
            return
        store.set(digest, data)
        _bound(store, self._max_entries)

    # -- records --------------------------------------------------------------------------

    def _record(self, key: str) -> dict[str, Any] | None:
        raw = self._open()[1].get(key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            self._open()[1].delete(key)
        return value if isinstance(value, dict) else None

    def _store_record(self, key: str, value: Resolved | Failure | dict[str, Any]) -> None:
        records = self._open()[1]
        doc = value if isinstance(value, dict) else asdict(value)
        records.set(key, json.dumps(doc, sort_keys=True).encode())
        _bound(records, self._max_entries * _RECORDS_PER_ENTRY)

    def resolved(self, key: str) -> Resolved | None:
        record = self._record(f"resolved|{key}")
        try:
            return Resolved(**record) if record else None
        except TypeError:  # written by another version: fetch again rather than guess
            return None

    def store_resolved(self, key: str, value: Resolved) -> None:
        self._store_record(f"resolved|{key}", value)

    def verification(self, key: str) -> dict[str, Any] | None:
        """The verification record stored under ``key`` (JSON; its reader checks it)."""
        return self._record(f"verified|{key}")

    def store_verification(self, key: str, record: dict[str, Any]) -> None:
        self._store_record(f"verified|{key}", record)

    def drop_verification(self, key: str) -> None:
        self._open()[1].delete(f"verified|{key}")

    def failure(self, key: str) -> Failure | None:
        record = self._record(f"failure|{key}")
        try:
            return Failure(**record) if record else None
        except TypeError:
            return None

    def record_failure(self, key: str, *, code: str, message: str, backoff_s: float,
                       backoff_max_s: float) -> Failure:
        """Remember a failure; the wait before the next try doubles with each one in a row."""
        now = self._clock()
        previous = self.failure(key)
        count = previous.count + 1 if previous else 1
        wait = min(backoff_s * 2 ** (count - 1), backoff_max_s)
        failure = Failure(code=code, message=message, count=count, at=now, retry_at=now + wait)
        self._store_record(f"failure|{key}", failure)
        return failure

    def clear_failure(self, key: str) -> None:
        self._open()[1].delete(f"failure|{key}")

    # -- maintenance ----------------------------------------------------------------------

    def _records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for full_key in list(self._open()[1].iterkeys()):
            kind, _, key = str(full_key).partition("|")
            record = self._record(full_key)
            if record is not None:
                yield kind, key, record

    def listing(self) -> Listing:
        resolved, failures, verifications = [], [], []
        for kind, key, record in self._records():
            try:
                if kind == "resolved":
                    resolved.append((key, Resolved(**record)))
                elif kind == "failure":
                    failures.append((key, Failure(**record)))
                elif kind == "verified":
                    verifications.append((key, record))
            except TypeError:
                continue
        content = self._open()[0]
        sizes = [len(content.get(k) or b"") for k in list(content.iterkeys())]
        return Listing(resolved=tuple(sorted(resolved)), failures=tuple(sorted(failures)),
                       verifications=tuple(sorted(verifications, key=lambda kv: kv[0])),
                       content_entries=len(sizes), content_bytes=sum(sizes))

    def prune(self) -> tuple[int, int]:
        """Drop what can no longer be used: failures whose backoff has passed, and content and
        verifications no reference resolves to (left behind by moved tags). Returns (records,
        contents) dropped. Reference records stay: each is the last known good that bridges an
        outage."""
        now = self._clock()
        content, records = self._open()
        used: set[str] = set()
        verified: list[str] = []
        dropped_records = 0
        for kind, key, record in self._records():
            if kind == "resolved" and isinstance(record.get("layer"), str):
                used.update((record["layer"], str(record.get("manifest"))))
            elif kind == "failure" and not now < record.get("retry_at", 0):
                records.delete(f"{kind}|{key}")
                dropped_records += 1
            elif kind == "verified":
                verified.append(key)
        for key in verified:
            if key.rpartition("@")[2] not in used:
                records.delete(f"verified|{key}")
                dropped_records += 1
        dropped_content = 0
        for digest in list(content.iterkeys()):
            if digest not in used:
                content.delete(digest)
                dropped_content += 1
        return dropped_records, dropped_content

    def clear(self) -> int:
        """Drop everything; returns how many entries there were."""
        return sum(store.clear() for store in self._open())


def _bound(store: diskcache.Cache, max_entries: int) -> None:
    # diskcache bounds bytes itself; the entry count is ours. peekitem(last=False) is the
    # oldest row, which matches the least-recently-stored policy the byte bound uses.
    while len(store) > max_entries:
        key, _ = store.peekitem(last=False)
        store.delete(key)
