"""Read a desired-state directory into a :class:`DesiredState`.

Rules (DESIGN §4):

* ``*.yaml`` / ``*.yml`` hold any number of SPO documents; ``*.json`` holds one SPO document or a
  plain OCI seccomp profile named after the file.
* Hidden files, editor and package-manager leftovers are ignored; subdirectories are read;
  symlinks are followed only while they stay inside the directory (ConfigMap ``..data`` links).
* A bad document affects only itself. When its identity (kind and name) is known, the error is
  recorded against that key, so the last good version stays installed. When it is not (a syntax
  error, a missing name), the whole file is marked uncertain (``file_errors``): nothing it
  installed before is removed until it reads cleanly again. A directory that cannot be listed
  makes the whole state incomplete, for the same reason.
* Two documents with the same identity are both in error, and each message names the other.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.codes import Code
from agent.errors import ManifestError
from agent.fsutil import sha256_hex
from agent.model.desired import Collector, DesiredState
from agent.model.documents import load_bytes, load_into
from agent.model.options import LoadOptions
from agent.model.parsecache import ParseCache
from agent.model.profile import Profile

__all__ = ["DesiredState", "FileMemo", "Profile", "is_candidate", "load_bytes", "load_directory",
           "load_paths"]

YAML_SUFFIXES = (".yaml", ".yml")
SUFFIXES = (*YAML_SUFFIXES, ".json")
log = logging.getLogger(__name__)
MAX_FILE_BYTES = 4 * 1024 * 1024
_LEFTOVER_MARKERS = (".dpkg-", ".ucf-", ".rpmnew", ".rpmsave", ".swp", ".swx", ".bak", ".orig")

def is_candidate(name: str) -> bool:
    """Whether a directory entry named ``name`` can hold manifests."""
    if name.startswith(".") or name.endswith("~") or name.startswith("#"):
        return False
    if any(marker in name for marker in _LEFTOVER_MARKERS):
        return False
    return name.endswith(SUFFIXES)


class FileMemo:
    """What each file's exact bytes produced, kept between loads.

    The daemon re-reads the whole directory on every change (so no lost or reordered event can
    leave it wrong) but re-parses and re-validates only the files whose bytes changed.
    """

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], Collector] = {}
        self._used: dict[tuple[str, str], Collector] = {}
        self._stats: dict[_Stat, tuple[str, str]] = {}
        self._used_stats: dict[_Stat, tuple[str, str]] = {}

    def by_stat(self, stat: _Stat) -> Collector | None:
        """The part of a file whose identity (inode, size, mtime, ctime) is unchanged."""
        key = self._stats.get(stat)
        part = self.get(key) if key is not None else None
        if part is not None and key is not None:
            self._used_stats[stat] = key
        return part

    def remember_stat(self, stat: _Stat, key: tuple[str, str]) -> None:
        self._used_stats[stat] = key

    def get(self, key: tuple[str, str]) -> Collector | None:
        part = self._parts.get(key)
        if part is not None:
            self._used[key] = part
        return part

    def put(self, key: tuple[str, str], part: Collector) -> None:
        self._used[key] = part

    def finish(self) -> None:
        """Forget the files that were not seen in this load."""
        self._parts, self._used = self._used, {}
        self._stats, self._used_stats = self._used_stats, {}


def load_directory(
    directory: Path,
    *,
    cache: ParseCache | None = None,
    memo: FileMemo | None = None,
    trust_stat: bool = False,
    options: LoadOptions | None = None,
) -> DesiredState:
    """Read every manifest under ``directory``; ``cache`` skips re-parsing unchanged YAML,
    ``memo`` skips re-validating unchanged files, and with ``trust_stat`` a file whose inode,
    size, mtime and ctime are unchanged is not even read again (a full resync reads all);
    ``options``: see :class:`LoadOptions` (None: its defaults)."""
    out = Collector(cache=cache, options=options)
    label = directory.name or str(directory)
    try:
        entries = sorted(_walk(directory, out, label))
    except OSError as exc:
        out.errors.append(ManifestError(
            f"cannot read the desired-state directory: {exc.strerror or exc}",
            file=str(directory), code=Code.DIRECTORY_UNREADABLE,
            hint="nothing installed is removed until the directory can be read again",
        ))
        return out.freeze(complete=False)
    for rel, path in entries:
        if memo is not None and trust_stat:
            stat = _stat(path, rel)
            part = memo.by_stat(stat) if stat else None
            if part is not None:
                out.files.append(rel)
                out.merge(part)
                continue
        _load_file(path, rel, f"{label}/{rel}", out, memo)
    if memo is not None:
        memo.finish()
    return out.freeze()


def load_paths(paths: Sequence[Path], options: LoadOptions | None = None) -> DesiredState:
    """Read the given files and directories together (``secprof validate``)."""
    out = Collector(options=options)
    for path in paths:
        if path.is_dir():
            try:
                entries = sorted(_walk(path, out, str(path)))
            except OSError as exc:
                out.errors.append(ManifestError(
                    f"cannot read directory: {exc.strerror or exc}", file=str(path),
                    code=Code.DIRECTORY_UNREADABLE,
                ))
                continue
            for rel, file_path in entries:
                _load_file(file_path, f"{path}/{rel}", f"{path}/{rel}", out)
        else:
            _load_file(str(path), str(path), str(path), out)
    return out.freeze()


def _walk(root: Path, out: Collector, label: str) -> Iterator[tuple[str, str]]:
    """Yield ``(relative path, path)`` of candidate files under ``root`` (paths as strings: a
    Path object per file cost 5 us each, for nothing).

    Only symlinks can lead outside ``root``, so only they (and directories, to avoid walking
    one twice) are resolved.
    """
    real_root = os.path.realpath(root)
    visited = {real_root}
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files, and the ..data / ..<timestamp> dirs of ConfigMaps
            rel = prefix + entry.name
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if os.path.commonpath([real, real_root]) != real_root:
                    if is_candidate(entry.name):
                        out.file_error(rel, ManifestError(
                            "symlink points outside the desired-state directory; not followed",
                            file=f"{label}/{rel}", code=Code.SYMLINK_ESCAPES,
                        ))
                    continue
            if entry.is_dir():
                real = os.path.realpath(entry.path)
                if real not in visited:
                    visited.add(real)
                    stack.append((entry.path, rel + "/"))
            elif entry.is_file() and is_candidate(entry.name):
                yield rel, entry.path


def _load_file(
    path: str, rel: str, display: str, out: Collector, memo: FileMemo | None = None
) -> None:
    out.files.append(rel)
    before = _stat(path, rel) if memo is not None else None
    try:
        raw = _read(path)
    except OSError as exc:
        out.file_error(rel, ManifestError(
            f"cannot read file: {exc.strerror or exc}", file=display, code=Code.FILE_UNREADABLE
        ))
        return
    if raw is None:
        out.file_error(rel, ManifestError(
            f"file is larger than {MAX_FILE_BYTES} bytes", file=display, code=Code.FILE_TOO_LARGE
        ))
        return
    if memo is None:
        out.merge(_parse(raw, rel, display, out, os.path.basename(path)))
        return
    key = (rel, sha256_hex(raw))
    part = memo.get(key)
    if part is None:
        part = _parse(raw, rel, display, out, os.path.basename(path))
        memo.put(key, part)
    if before is not None and before == _stat(path, rel):  # not changed while being read
        memo.remember_stat(before, key)
    out.merge(part)


def _read(path: str) -> bytes | None:
    """The file's bytes (``None``: over the size cap). Opened without blocking and checked to
    be a regular file before any read: a FIFO or device swapped in is refused, never waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        # Reads sized by the file, not one read of the cap: that allocated 4 MiB for every
        # file (30 us each, a tenth of a no-op apply). Until EOF, in case it grew.
        want = min(max(st.st_size + 1, 1 << 16), MAX_FILE_BYTES + 1)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, want)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks) if size <= MAX_FILE_BYTES else None


def _parse(raw: bytes, rel: str, display: str, out: Collector, name: str) -> Collector:
    """What one file holds (read with ``out``'s cache and options). Any exception while reading
    it is that file's error: a bug that one input meets never stops the other files (the
    traceback goes to the log)."""
    cache = out.cache
    part = Collector(cache=cache, options=out.options)
    try:
        load_into(raw, rel, display, part, as_json=name.endswith(".json"),
                  plain_name=name.removesuffix(".json"))
    except Exception as exc:
        log.exception("internal error while reading %s", display)
        part = Collector(cache=cache)
        part.file_error(rel, ManifestError(
            f"cannot be read: internal error ({type(exc).__name__}); please report it with "
            "the file", file=display, code=Code.PARSE_FAILED,
        ))
    return part


_Stat = tuple[str, int, int, int, int, int]


def _stat(path: str, rel: str) -> _Stat | None:
    """A file's identity: a rename over it, an edit or a ConfigMap swap all change it."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (rel, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
