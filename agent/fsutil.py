"""File-system helpers every writer uses: atomic writes, name checks, path confinement.

Anything another program reads (kubelet, container runtimes, our own next start) is written with
:func:`atomic_write`: a reader sees the old bytes or the new bytes, never a torn file, and after a
crash the file is one or the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

# Kubernetes object names (DNS-1123 subdomain): what SPO accepts, and safe as one path element.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
MAX_NAME_LENGTH = 253


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid profile name, or ``None`` when it is."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed"
    if not _NAME_RE.match(name) or ".." in name:
        return (
            f"{name!r} is not a valid name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def confined(root: Path, *parts: str) -> Path:
    """``root / parts`` after checking that the result stays inside ``root``.

    Callers validate names first; this is the second fence, so a bug upstream can never write
    outside the directory the agent owns.
    """
    root_abs = os.path.abspath(root)
    candidate = os.path.abspath(os.path.join(root_abs, *parts))
    if candidate != root_abs and not candidate.startswith(root_abs.rstrip("/") + "/"):
        raise ValueError(f"path {candidate} escapes {root_abs}")
    return Path(candidate)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path) -> bytes | None:
    """The file's bytes, or ``None`` when it does not exist (or is not a regular file)."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename.

    With ``sync_dir=False`` the caller promises to :func:`fsync_dir` the parent once after a
    batch of writes (one directory sync instead of one per file).
    """
    import tempfile  # noqa: PLC0415 -- costs ~7 ms of imports; only writers need it

    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if sync_dir:
        fsync_dir(directory)


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    """Create ``path`` (and parents) if missing; an existing directory keeps its mode."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
