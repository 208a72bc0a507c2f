"""Seccomp backend: JSON files where kubelet and container runtimes read them.

Files live in ``<root>/<subdir>/<name>.json`` (a pod references ``<subdir>/<name>.json`` as its
``localhostProfile``); with SPO v0.8's layout a profile named ``<namespace>/<name>`` lives in
``<root>/<subdir>/<namespace>/<name>.json``. Writes are atomic and happen only when the bytes
change; one fsync per directory covers a whole batch. Only keys the reconciler asks for are
touched, and the reconciler only asks to remove what its ledger says secprof wrote.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from agent.backends.base import Availability, Batch, Install, Probe, Result
from agent.codes import Code
from agent.errors import BackendError
from agent.fsutil import atomic_write, confined, ensure_dir, fsync_dir, read_bytes
from agent.model.names import key_path_problem
from agent.model.profile import ProfileKey
from agent.seccomp.render import digest


class SeccompBackend:
    def __init__(self, root: Path, subdir: str, *, proc_status: Path = Path("/proc/self/status")):
        self._root = root
        self._subdir = subdir
        self._dir = confined(root, subdir)
        self._proc_status = proc_status

    def relative(self, key: ProfileKey) -> str:
        """The profile's path relative to ``root``: what a pod names as ``localhostProfile``."""
        return f"{self._subdir}/{key.name}.json"

    def path(self, key: ProfileKey) -> Path:
        problem = key_path_problem(key.name)
        if problem:  # the loader already refused it; this is the second fence
            raise BackendError(f"refusing to build a path from name {key.name!r}: {problem}")
        return confined(self._dir, *f"{key.name}.json".split("/"))

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

    def actual(self, keys: Iterable[ProfileKey]) -> Mapping[ProfileKey, str | None]:
        out: dict[ProfileKey, str | None] = {}
        for key in keys:
            data = read_bytes(self.path(key))
            out[key] = None if data is None else digest(data)
        return out

    def apply(self, batch: Batch) -> list[Result]:
        results: list[Result] = []
        touched_dirs: set[Path] = set()
        if batch.installs:
            try:
                ensure_dir(self._dir)
            except OSError as exc:
                error = BackendError(
                    f"cannot create {self._dir}: {exc.strerror}", code=Code.WRITE_FAILED,
                    hint="check [seccomp] root and that secprof runs as root",
                )
                results.extend(Result(key=i.key, error=error) for i in batch.installs)
            else:
                for install in batch.installs:
                    result = self._install(install)
                    if result.changed:
                        touched_dirs.add(self.path(install.key).parent)
                    results.append(result)
        for key in batch.removals:
            result = self._remove(key)
            if result.changed:
                touched_dirs.add(self.path(key).parent)
            results.append(result)
        for directory in sorted(touched_dirs):
            fsync_dir(directory)
        return results

    def _install(self, install: Install) -> Result:
        path = self.path(install.key)
        if read_bytes(path) == install.content:
            return Result(key=install.key)
        try:
            if path.parent != self._dir:  # <namespace>/ of SPO v0.8's layout
                ensure_dir(path.parent)
            atomic_write(path, install.content, mode=0o644, sync_dir=False)
        except OSError as exc:
            return Result(key=install.key, error=BackendError(
                f"cannot write {path}: {exc.strerror or exc}; the previous file is unchanged",
                code=Code.WRITE_FAILED,
            ))
        return Result(key=install.key, changed=True)

    def _remove(self, key: ProfileKey) -> Result:
        path = self.path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return Result(key=key)
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                return Result(key=key, error=BackendError(
                    f"{path} is a directory; not removing it", code=Code.REMOVE_FAILED))
            return Result(key=key, error=BackendError(
                f"cannot remove {path}: {exc.strerror or exc}", code=Code.REMOVE_FAILED))
        return Result(key=key, changed=True)
