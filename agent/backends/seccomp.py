"""Seccomp backend: JSON files where kubelet and container runtimes read them.

Files live in ``<root>/<subdir>/<name>.json`` (a pod references ``<subdir>/<name>.json`` as its
``localhostProfile``); with SPO v0.8's layout a profile named ``<namespace>/<name>`` lives in
``<root>/<subdir>/<namespace>/<name>.json``. Writes are atomic and happen only when the bytes
change; one fsync per directory covers a whole batch. Only keys the reconciler asks for are
touched, and the reconciler only asks to remove what its ledger says secprof wrote.

``<root>`` belongs to kubelet and is resolved as configured; ``<subdir>`` is secprof's own and is
opened once per call without following links (a symlink or a file there is refused, so nothing
is ever written or deleted in a directory it points to), and every file below it is read,
written and removed relative to that descriptor: regular files only, never a link, a FIFO or a
device (see :mod:`agent.fsutil`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from agent.backends.base import Availability, Batch, Install, Probe, Result
from agent.codes import Code
from agent.errors import BackendError
from agent.fsutil import (
    NotRegularFile,
    atomic_write_at,
    confined,
    name_problem,
    open_subdir,
    read_at,
    remove_stale_temps,
    unlink_at,
)
from agent.model.names import key_path_problem, plain_name_problem
from agent.model.profile import Kind, ProfileKey
from agent.seccomp.render import digest

log = logging.getLogger(__name__)

# A profile file bigger than this is not one secprof wrote (the desired-state files are capped far
# below); reading it whole just to compare would let a planted file cost memory.
MAX_PROFILE_BYTES = 16 << 20
# Files written side by side in one batch (see SeccompBackend._install_all).
_WRITERS = 8


class SeccompBackend:
    def __init__(self, root: Path, subdir: str, *, proc_status: Path = Path("/proc/self/status"),
                 crash_point: Callable[[str], None] | None = None) -> None:
        """``crash_point`` (tests and the crash-consistency bench only) is called with
        ``"written:<name>"`` between a temp file and its rename."""
        problem = name_problem(subdir)
        if problem:  # the config already refused it; this is the second fence
            raise BackendError(f"[seccomp] subdir {problem}", code=Code.CONFIG_INVALID)
        self._root = root
        self._subdir = subdir
        self._dir = confined(root, subdir)
        self._proc_status = proc_status
        self._crash_point = crash_point

    def relative(self, key: ProfileKey) -> str:
        """The profile's path relative to ``root``: what a pod names as ``localhostProfile``."""
        return f"{self._subdir}/{self._file(key)}"

    @staticmethod
    def _file(key: ProfileKey) -> str:
        """``<name>.json``, or ``<namespace>/<name>.json`` (SPO v0.8's layout)."""
        problem = key_path_problem(key.name)
        if problem:  # the loader already refused it; this is the second fence
            raise BackendError(f"refusing to build a path from name {key.name!r}: {problem}")
        return f"{key.name}.json"

    @contextlib.contextmanager
    def _at(self, fd: int, key: ProfileKey, *, create: bool) -> Iterator[tuple[int | None, str]]:
        """(directory descriptor, file name) of ``key`` below the install directory ``fd``: a
        namespace's directory is opened relative to it, never through a link (``None``: it
        does not exist and ``create`` is false)."""
        rel = self._file(key)
        if "/" not in rel:
            yield fd, rel
            return
        namespace, leaf = rel.split("/")
        try:
            sub = open_subdir(fd, namespace, create=create)
        except FileNotFoundError:
            yield None, leaf
            return
        except OSError as exc:
            raise self._dir_error(self._dir / namespace, exc) from None
        try:
            yield sub, leaf
        finally:
            os.close(sub)

    def path(self, key: ProfileKey) -> Path:
        return self._dir / self._file(key)

    def location(self, key: ProfileKey) -> str:
        return str(self.path(key))

    def probe(self) -> Probe:
        try:
            status = self._proc_status.read_text()
        except OSError as exc:
            return Probe(availability=Availability.UNAVAILABLE, reason=f"cannot read "
                         f"{self._proc_status}: {exc.strerror}")
        if "\nSeccomp:" not in status:
            return Probe(availability=Availability.UNAVAILABLE,
                         reason="the kernel has no seccomp support (no Seccomp: in "
                         f"{self._proc_status})")
        return Probe(availability=Availability.INSTALLED)

    @contextlib.contextmanager
    def _opened(self, *, create: bool) -> Iterator[int | None]:
        """The install directory's descriptor (``None``: it does not exist and ``create`` is
        false). Raises :class:`BackendError` when it is a symlink, not a directory, or cannot be
        opened or made."""
        try:
            if create:  # kubelet's directory: links to it are the administrator's business
                self._root.mkdir(parents=True, exist_ok=True)
            root_fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            yield None
            return
        except OSError as exc:
            raise BackendError(f"cannot create or open {self._root}: {exc.strerror or exc}",
                               code=Code.WRITE_FAILED,
                               hint="check [seccomp] root and that secprof runs as root") from None
        try:
            fd = open_subdir(root_fd, self._subdir, create=create)
        except FileNotFoundError:
            fd = None
        except OSError as exc:
            raise self._dir_error(self._dir, exc) from None
        finally:
            os.close(root_fd)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    @staticmethod
    def _dir_error(path: Path, exc: OSError) -> BackendError:
        if isinstance(exc, NotADirectoryError):
            return BackendError(
                f"{path} is a symlink or not a directory; secprof writes only into a real "
                "directory of its own", code=Code.UNSAFE_DIRECTORY,
                hint="remove it; secprof creates the directory itself",
            )
        return BackendError(f"cannot create or open {path}: {exc.strerror or exc}",
                            code=Code.WRITE_FAILED,
                            hint="check [seccomp] root and that secprof runs as root")

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        """Digests of our files; a file that is not a regular file (or unreadable) reads as
        ``"unreadable"``, which differs from every digest, so the plan repairs it."""
        keys = list(keys)
        out: dict[ProfileKey, str | None] = {}
        try:
            with self._opened(create=False) as fd:
                for key in keys:
                    if fd is None:
                        out[key] = None
                        continue
                    try:
                        with self._at(fd, key, create=False) as (dir_fd, name):
                            data = None if dir_fd is None else read_at(
                                dir_fd, name, max_bytes=MAX_PROFILE_BYTES)
                    except (OSError, BackendError):
                        out[key] = "unreadable"
                        continue
                    out[key] = None if data is None else digest(data)
        except BackendError:
            return dict.fromkeys(keys, "unreadable")
        return out

    def sweep(self) -> list[str]:
        """Remove the temp files killed runs left in the install directory (secprof's own
        pattern only); the caller holds the state lock, so no run of ours is writing them."""
        removed: list[str] = []
        try:
            with self._opened(create=False) as fd:
                if fd is None:
                    return removed
                removed += remove_stale_temps(fd)
                for namespace, sub in self._namespaces(fd):
                    removed += (f"{namespace}/{name}" for name in remove_stale_temps(sub))
        except (BackendError, OSError) as exc:
            log.warning("cannot clean up %s: %s", self._dir, exc)
        for name in removed:
            log.warning("removed %s, a temp file an interrupted run left", self._dir / name)
        return removed

    @staticmethod
    def _namespaces(fd: int) -> Iterator[tuple[str, int]]:
        """(name, descriptor) of each namespace directory (SPO v0.8's layout) below the install
        directory ``fd``, sorted; opened without following links: a link or a file of such a
        name is not one, and is skipped. Each descriptor is closed when the next is made."""
        for name in sorted(os.listdir(fd)):
            if name.endswith(".json") or plain_name_problem(name):
                continue
            try:
                sub = open_subdir(fd, name)
            except OSError:
                continue
            try:
                yield name, sub
            finally:
                os.close(sub)

    def inventory(self) -> Mapping[ProfileKey, tuple[str, str]]:
        """Every profile file in secprof's own subdirectory (the namespace it owns): what a lost
        ledger is rebuilt from. Regular ``<valid name>.json`` files only, directly in it or in
        a namespace directory of SPO v0.8's layout (``<namespace>/<name>.json``)."""
        out: dict[ProfileKey, tuple[str, str]] = {}
        try:
            with self._opened(create=False) as fd:
                if fd is None:
                    return out
                self._list(fd, "", out)
                for namespace, sub in self._namespaces(fd):
                    self._list(sub, f"{namespace}/", out)
        except (BackendError, OSError) as exc:
            log.error("cannot list %s: %s", self._dir, exc)
        return out

    def _list(self, fd: int, prefix: str, out: dict[ProfileKey, tuple[str, str]]) -> None:
        """Add the profile files directly in ``fd`` (named ``<prefix><stem>``) to ``out``."""
        for name in sorted(os.listdir(fd)):
            stem = name.removesuffix(".json")
            if stem == name or name_problem(stem):
                continue
            try:
                data = read_at(fd, name, max_bytes=MAX_PROFILE_BYTES)
            except OSError:
                continue
            if data is not None:
                key = ProfileKey(Kind.SECCOMP, prefix + stem)
                out[key] = (digest(data), self.location(key))

    def apply(self, batch: Batch) -> list[Result]:
        try:
            with self._opened(create=bool(batch.installs)) as fd:
                if fd is None:  # nothing installed, nothing to remove
                    return [Result(key=key) for key in batch.removals]
                results = self._install_all(fd, batch.installs)
                results += [self._remove(fd, key) for key in batch.removals]
                if any(r.changed for r in results):
                    os.fsync(fd)
                return results
        except BackendError as error:
            return [Result(key=key, error=error) for key in
                    (*(i.key for i in batch.installs), *batch.removals)]

    def _install_all(self, fd: int, installs: Sequence[Install]) -> list[Result]:
        """Install each file, a few side by side: every file's fsync waits for a journal commit
        (about 0.8 ms here), and fsyncs that wait together are committed together (ext4's group
        commit): 1050 small files took 0.88 s one after the other, 0.18 s four at a time. Each
        file is still written, synced and renamed on its own (:func:`atomic_write_at`)."""
        if len(installs) < 2:
            return [self._install(fd, i) for i in installs]
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 -- only with work

        with ThreadPoolExecutor(max_workers=min(_WRITERS, len(installs)),
                                thread_name_prefix="secprof-write") as pool:
            return list(pool.map(lambda install: self._install(fd, install), installs))

    def _install(self, fd: int, install: Install) -> Result:
        try:
            with self._at(fd, install.key, create=True) as (dir_fd, name):
                assert dir_fd is not None
                result = self._install_at(dir_fd, name, install)
                if result.changed and dir_fd != fd:
                    os.fsync(dir_fd)
                return result
        except BackendError as error:
            return Result(key=install.key, error=error)

    def _install_at(self, fd: int, name: str, install: Install) -> Result:
        path = self.path(install.key)
        try:
            if read_at(fd, name, max_bytes=MAX_PROFILE_BYTES) == install.content:
                return Result(key=install.key)
        except NotRegularFile as exc:
            return Result(key=install.key, error=BackendError(
                f"{path} {exc.strerror}; secprof replaces only regular files",
                code=Code.UNSAFE_TARGET, hint="remove it; secprof then writes the profile there"))
        except OSError:
            pass  # unreadable or oversized: replaced below
        crash = self._crash_point
        try:
            atomic_write_at(fd, name, install.content, mode=0o644, sync_dir=False,
                            before_rename=(lambda: crash(f"written:{name}")) if crash else None)
        except NotRegularFile as exc:
            return Result(key=install.key, error=BackendError(
                f"{path} {exc.strerror}", code=Code.UNSAFE_TARGET))
        except OSError as exc:
            return Result(key=install.key, error=BackendError(
                f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged",
                code=Code.WRITE_FAILED,
            ))
        return Result(key=install.key, changed=True)

    def _remove(self, fd: int, key: ProfileKey) -> Result:
        path = self.path(key)
        try:
            with self._at(fd, key, create=False) as (dir_fd, name):
                removed = dir_fd is not None and unlink_at(dir_fd, name)
        except NotRegularFile as exc:
            return Result(key=key, error=BackendError(
                f"{path} {exc.strerror}", code=Code.REMOVE_FAILED))
        except OSError as exc:
            return Result(key=key, error=BackendError(
                f"cannot remove {path}: {exc.strerror or exc}", code=Code.REMOVE_FAILED))
        except BackendError as error:
            return Result(key=key, error=error)
        return Result(key=key, changed=removed)
