"""systemd integration: readiness and status notifications, and logging to the journal.

Both degrade to nothing when not under systemd: without ``NOTIFY_SOCKET`` notifications are
dropped, and without a journal connection logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time

log = logging.getLogger(__name__)


# Messages systemd must see eventually: kept and retried when the socket is full. STATUS alone
# is informative, and the next one supersedes it: dropped rather than queued.
_CRITICAL = ("READY", "WATCHDOG", "STOPPING", "RELOADING")
MAX_PENDING = 16


class Notifier:
    """``sd_notify`` that never blocks the process.

    One non-blocking datagram socket connected to ``$NOTIFY_SOCKET`` (a leading ``@`` is the
    abstract namespace). When the receiver's queue is full (systemd busy, or nothing reading),
    a STATUS-only message is dropped; READY, WATCHDOG, STOPPING and RELOADING are queued (one
    copy of each, at most :data:`MAX_PENDING`) and sent, in order, before the next message or at
    :meth:`flush`. A blocking send here once froze the whole daemon, SIGTERM included, as soon as
    the queue filled. Failures are logged once, never raised.
    """

    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "") if address is None else address
        self.enabled = bool(address)
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._pending: list[bytes] = []
        self._lock = threading.Lock()  # the worker and the main thread both notify
        self._warned = False
        self.dropped = 0  # STATUS messages dropped because the queue was full

    def notify(self, **fields: str | int) -> None:
        if not self.enabled:
            return
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        critical = any(k.upper() in _CRITICAL for k in fields)
        with self._lock:
            if self._flush() and self._send(message):
                return
            if not critical:
                self.dropped += 1
                return
            if message not in self._pending:
                self._pending.append(message)
            del self._pending[:-MAX_PENDING]

    def flush(self) -> bool:
        """Send what is queued; ``True`` when nothing is left."""
        with self._lock:
            return self._flush()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _flush(self) -> bool:
        while self._pending:
            if not self._send(self._pending[0]):
                return False
            self._pending.pop(0)
        return True

    def _send(self, message: bytes) -> bool:
        """``False`` when the receiver's queue is full (try again later)."""
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
                self._sock.connect(self._address)
            self._sock.send(message)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:  # no socket there, refused: nothing to retry for
            if not self._warned:
                log.warning("cannot notify systemd through %s: %s",
                            os.environ.get("NOTIFY_SOCKET"), exc)
                self._warned = True
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        return True

    def ready(self, status: str) -> None:
        self.notify(ready=1, status=status)

    def reloading(self) -> None:
        # systemd ≥ 253 wants the monotonic time of the reload with RELOADING=1.
        self.notify(reloading=1, monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)

    def stopping(self) -> None:
        self.notify(stopping=1)

    def status(self, text: str) -> None:
        self.notify(status=text)

    def watchdog(self) -> None:
        self.notify(watchdog=1)


def watchdog_interval_s() -> float | None:
    """Half the watchdog timeout systemd asked for (``WATCHDOG_USEC``), or ``None``."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


def _stderr_is_journal() -> bool:
    """systemd sets ``JOURNAL_STREAM=dev:ino`` when stderr is connected to the journal."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup_logging(level: int = logging.INFO) -> None:
    """Journal with structured fields when running under journald, else plain stderr.

    Callers pass ``extra={"PROFILE_KIND": …, "PROFILE_NAME": …, "ERROR_CODE": …}``; the journal
    keeps them as fields (``journalctl PROFILE_NAME=web``), stderr shows the message only.
    """
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if _stderr_is_journal():
        from systemd.journal import JournalHandler  # noqa: PLC0415 - only under journald

        journal = JournalHandler(SYSLOG_IDENTIFIER="secprof")
        journal.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(journal)
    else:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter("secprof[%(process)d]: %(levelname)s %(message)s"))
        root.addHandler(stream)
