"""File-system helpers every writer uses: atomic writes, name checks, path confinement.

Anything another program reads (kubelet, container runtimes, our own next start) is written with
:func:`atomic_write`: a reader sees the old bytes or the new bytes, never a torn file, and after a
crash the file is one or the other.

Confinement is by construction, not by string checks: a directory secprof owns is opened once
(:func:`open_dir`, :func:`open_subdir`: ``O_DIRECTORY | O_NOFOLLOW``, so a symlink or a
non-directory there is refused) and everything below it is done relative to that descriptor
(``dir_fd=``: openat, renameat, unlinkat), one path element at a time and never following a
link. Swapping a directory for a symlink after it was opened changes nothing: the descriptor
still names the directory that was checked. Where a file must go, only a regular file is read,
replaced or removed; it is opened ``O_NONBLOCK`` and checked with ``fstat`` before any read, so a
FIFO or a device there is an error, never a hang.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable, Iterator
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
    import hashlib  # noqa: PLC0415 -- OpenSSL's import costs `secprof status` ~10 ms; it never hashes

    return hashlib.sha256(data).hexdigest()


class NotRegularFile(OSError):
    """Something other than a regular file (a FIFO, device, socket, link, directory) stands
    where secprof reads or writes a file."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Temp files are ``.<name>.<12 hex>.secprof-tmp``: recognisable, so that the leftovers of a
# killed run can be removed at the next start without touching anybody else's files.
TEMP_SUFFIX = ".secprof-tmp"
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}" + re.escape(TEMP_SUFFIX) + "$")
# What ``tempfile.mkstemp`` made before (``.<name>.<8 chars>.tmp``), for the same clean-up.
_LEGACY_TEMP_RE = re.compile(r"^\..+\.(json|lock)\.[a-z0-9_]{8}\.tmp$")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _not_directory(path: object, exc: OSError) -> OSError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return NotADirectoryError(exc.errno, "is a symlink or not a directory; refusing to "
                                  "follow it", str(path))
    return exc


def open_dir(path: Path, *, create: bool = False, mode: int = 0o755) -> int:
    """A descriptor of the directory ``path``; its last element must not be a symlink.

    The elements above it are resolved as usual (an administrator may well link
    ``/var/lib/kubelet`` elsewhere); the directory secprof owns itself must be a real directory.
    ``create`` makes it (and missing parents) with ``mode``. The caller closes the descriptor.
    """
    path = Path(os.path.abspath(path))
    if path == path.parent:
        return os.open(path, _DIR_FLAGS)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_subdir(parent, path.name, create=create, mode=mode)
    except OSError as exc:
        raise _not_directory(path, exc) from None
    finally:
        os.close(parent)


def open_subdir(dir_fd: int, name: str, *, create: bool = False, mode: int = 0o755) -> int:
    """A descriptor of directory ``name`` inside ``dir_fd``, never through a symlink."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not one path element")
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=dir_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise _not_directory(name, exc) from None


@contextlib.contextmanager
def opened_dir(path: Path, *, create: bool = False, mode: int = 0o755) -> Iterator[int]:
    """:func:`open_dir` as a context manager."""
    fd = open_dir(path, create=create, mode=mode)
    try:
        yield fd
    finally:
        os.close(fd)


def _element(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not one path element")
    return name


def read_at(dir_fd: int, name: str, *, max_bytes: int | None = None) -> bytes | None:
    """The bytes of regular file ``name`` in ``dir_fd``; ``None`` when nothing is there.

    Raises :class:`NotRegularFile` for anything else (a symlink is not followed; a FIFO or a
    device is opened non-blocking and refused before a single read) and ``OSError`` (``EFBIG``)
    past ``max_bytes``.
    """
    try:
        fd = os.open(_element(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
                     | os.O_NOCTTY, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENOTDIR):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}", name) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}", name)
        if max_bytes is not None and st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"is {st.st_size} bytes, more than {max_bytes}", name)
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:  # grew after the fstat
                raise OSError(errno.EFBIG, f"is more than {max_bytes} bytes", name)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes | None:
    """The regular file at ``path`` (not followed if a symlink), ``None`` when it is missing."""
    try:
        with opened_dir(path.parent) as dir_fd:
            return read_at(dir_fd, path.name)
    except FileNotFoundError:
        return None


def atomic_write_at(dir_fd: int, name: str, data: bytes, *, mode: int = 0o644,
                    sync_dir: bool = True, before_rename: Callable[[], None] | None = None
                    ) -> None:
    """Replace ``name`` in ``dir_fd`` with ``data``: temp file, fsync, renameat, fsync dir.

    Refuses (:class:`NotRegularFile`) to replace anything but a regular file or nothing. With
    ``sync_dir=False`` the caller promises one :func:`os.fsync` of ``dir_fd`` after a batch.
    ``before_rename`` is a test's crash point between the temp file and the rename.
    """
    _element(name)
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}; not replacing it", name)
    tmp = f".{name}.{os.urandom(6).hex()}{TEMP_SUFFIX}"  # not `secrets`: its import is slow
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_rename is not None:
            before_rename()
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if sync_dir:
        os.fsync(dir_fd)


def unlink_at(dir_fd: int, name: str) -> bool:
    """Remove regular file (or symlink) ``name`` from ``dir_fd``; ``False`` when it was absent.

    A directory, FIFO, device or socket there is not secprof's: :class:`NotRegularFile`.
    """
    try:
        st = os.stat(_element(name), dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise NotRegularFile(errno.EINVAL, f"is {_kind(st.st_mode)}; not removing it", name)
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def remove_stale_temps(dir_fd: int) -> list[str]:
    """Remove the temp files earlier (killed) runs left in ``dir_fd``; their names.

    Only names of secprof's own pattern, and only regular files: what a run in progress writes
    is protected by the caller holding the state lock.
    """
    removed = []
    for name in os.listdir(dir_fd):
        if not (_TEMP_RE.match(name) or _LEGACY_TEMP_RE.match(name)):
            continue
        with contextlib.suppress(OSError):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
    return sorted(removed)


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    with opened_dir(directory) as fd:
        os.fsync(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, sync_dir: bool = True) -> None:
    """:func:`atomic_write_at` by path. The parent is resolved as given (a user's output file
    may well sit behind a link); writers confined to a directory of their own open it with
    :func:`open_dir` and use :func:`atomic_write_at`."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        atomic_write_at(dir_fd, path.name, data, mode=mode, sync_dir=sync_dir)
    finally:
        os.close(dir_fd)


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    """Create ``path`` (and parents) if missing; an existing directory keeps its mode; a symlink
    or a non-directory at ``path`` is refused (``NotADirectoryError``)."""
    os.close(open_dir(path, create=True, mode=mode))
