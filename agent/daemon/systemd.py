"""systemd integration: readiness and status notifications, and logging to the journal.

Both degrade to nothing when not under systemd: without ``NOTIFY_SOCKET`` notifications are
dropped, and without a journal connection logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import time

log = logging.getLogger(__name__)


class Notifier:
    """``sd_notify`` through systemd-python; failures are logged once, never raised."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._warned = False

    def notify(self, **fields: str | int) -> None:
        if not self.enabled:
            return
        from systemd import daemon  # noqa: PLC0415 - only under systemd

        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items())
        try:
            daemon.notify(message)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot notify systemd through %s: %s",
                            os.environ.get("NOTIFY_SOCKET"), exc)
                self._warned = True

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
