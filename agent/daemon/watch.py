"""Watch the desired-state directory (inotify through watchdog) and say when it changed.

Which events matter (measured, see research notes and tests/integration/test_daemon_watch.py):
a finished write (close after write), a create (also what a rename in from outside the
directory looks like), a delete (also a move out, reported ~0.5 s later), a rename inside
(atomic replace), and, for ConfigMap mounts, the rename of ``..data_tmp`` onto ``..data``: the
visible file is a symlink that never changes, so nothing fires for it. Opens, reads and
attribute changes are ignored, so the daemon reading the directory never wakes itself.

The callback only says "something changed": the daemon then re-reads the whole directory
(re-validating only files whose bytes changed), so a lost, merged or reordered event, or an
inotify queue overflow, can delay a reconcile by at most the debounce, never make it wrong.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
    FileSystemMovedEvent,
)
from watchdog.observers import Observer

from agent.codes import Code
from agent.model.manifests import is_candidate

log = logging.getLogger(__name__)
CONFIGMAP_LINK = "..data"


def relevant(event: FileSystemEvent, root: str) -> bool:
    """Whether ``event`` can change the desired state."""
    paths = [event.src_path]
    if isinstance(event, FileSystemMovedEvent):
        paths.append(event.dest_path)
    elif not isinstance(event, FileCreatedEvent | FileDeletedEvent | FileClosedEvent) and not (
        event.is_directory and event.event_type in ("created", "deleted")
    ):
        return False  # opened, modified (a close follows), attrib, closed without write
    for raw in paths:
        path = os.fsdecode(raw)
        if not path:
            continue
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        if parts == [CONFIGMAP_LINK]:
            return True
        if any(p.startswith(".") for p in parts):
            continue  # hidden files and ConfigMap timestamp directories
        if event.is_directory or is_candidate(parts[-1]):
            return True
    return False


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, on_change: Callable[[str], None]) -> None:
        self._root = root
        self._on_change = on_change

    def on_any_event(self, event: FileSystemEvent) -> None:
        if relevant(event, self._root):
            self._on_change(f"{event.event_type} {os.fsdecode(event.src_path)}")


class Watcher:
    """Runs a watchdog observer on ``directory`` (recursively) until :meth:`stop`."""

    def __init__(self, directory: Path, on_change: Callable[[str], None]) -> None:
        self._directory = directory
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(_Handler(os.path.realpath(directory), on_change),
                                os.path.realpath(directory), recursive=True)

    def start(self) -> None:
        try:
            self._observer.start()
        except OSError as exc:  # the directory is missing or unreadable
            log.error("cannot watch %s (%s): changes are seen at the next periodic resync",
                      self._directory, exc.strerror or exc,
                      extra={"ERROR_CODE": Code.DIRECTORY_UNREADABLE})
            return
        log.info("watching %s", self._directory)

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout=5)
