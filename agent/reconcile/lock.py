"""One writer at a time: an exclusive ``flock`` on ``<state_dir>/lock`` around evaluate-and-apply.

``secprof apply`` and the daemon both take it for the whole of one reconcile (reading the desired
state included), so that neither installs what it read before the other's apply finished. The
loser waits, with a bound, and then names the holder: the lock file holds the PID of the process
that took it last (written after taking it, so a reader sees the holder's or a previous one's).
The lock is released when the descriptor closes, so a killed holder never leaves it stuck; the
file itself is never removed (removing it would let two processes lock two different files).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from agent.codes import Code
from agent.errors import AgentError
from agent.fsutil import open_dir

LOCK_FILE = "lock"
DEFAULT_WAIT_S = 60.0

log = logging.getLogger(__name__)


class StateLocked(AgentError):
    """Another secprof process held the state lock for longer than this one would wait."""


class StateLock:
    """``with StateLock(state_dir):`` — the exclusive right to change the host and the ledger."""

    def __init__(
        self,
        state_dir: Path,
        *,
        wait_s: float = DEFAULT_WAIT_S,
        poll_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = state_dir / LOCK_FILE
        self._dir = state_dir
        self._wait_s = wait_s
        self._poll_s = poll_s
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, waiting at most ``wait_s``; :class:`StateLocked` naming the holder
        after that, :class:`AgentError` (``state-unwritable``) when the file cannot be made."""
        if self._fd is not None:
            raise RuntimeError("StateLock is not reentrant")
        fd = self._open()
        deadline = self._clock() + self._wait_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self._clock() >= deadline:
                        raise StateLocked(
                            f"another secprof process ({self._holder(fd)}) has held the state "
                            f"lock {self.path} for more than {self._wait_s:g} s",
                            code=Code.STATE_LOCKED,
                            hint="wait for it (a daemon's reconcile, another 'secprof apply') "
                                 "and try again",
                        ) from None
                    self._sleep(self._poll_s)
            try:  # best effort: a full state dir must not stop the run here
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:
                log.warning("cannot record our pid in %s: %s", self.path, exc.strerror or exc)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> StateLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _open(self) -> int:
        try:
            dir_fd = open_dir(self._dir, create=True, mode=0o700)
        except OSError as exc:
            raise AgentError(f"cannot open the state directory {self._dir}: "
                             f"{exc.strerror or exc}", code=Code.STATE_UNWRITABLE) from None
        try:
            fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            why = "is not a regular file" if exc.errno in (errno.ELOOP, errno.ENXIO,
                                                            errno.EISDIR) else exc.strerror
            raise AgentError(f"cannot open the state lock {self.path}: {why}",
                             code=Code.STATE_UNWRITABLE) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise AgentError(f"the state lock {self.path} is not a regular file",
                             code=Code.STATE_UNWRITABLE)
        return fd

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        except OSError:
            text = ""
        return f"pid {text}" if text.isdigit() else "pid unknown"
