"""sd_notify against a real datagram socket that nobody reads: the process never blocks, STATUS
is dropped, READY/WATCHDOG/STOPPING wait and arrive once the socket is read again."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from agent.daemon.systemd import Notifier


def _receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def _drain(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except BlockingIOError:
            return out


def test_an_unread_notify_socket_never_blocks(tmp_path: Path) -> None:
    receiver = _receiver(tmp_path / "notify")
    notifier = Notifier(str(tmp_path / "notify"))

    def chatter() -> None:
        for i in range(2000):  # far more than any receive queue holds
            notifier.status(f"reconcile {i}")
        notifier.ready("up")
        notifier.watchdog()
        notifier.watchdog()
        notifier.stopping()

    worker = threading.Thread(target=chatter, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "notify blocked on a full socket"
    assert notifier.dropped > 0
    assert notifier.pending == 3  # READY, one WATCHDOG, STOPPING

    first = _drain(receiver)
    assert len(first) + notifier.dropped == 2000
    assert notifier.flush()
    assert _drain(receiver) == ["READY=1\nSTATUS=up", "WATCHDOG=1", "STOPPING=1"]
    receiver.close()


def test_abstract_address_and_absent_socket(tmp_path: Path) -> None:
    name = f"secprof-test-{id(tmp_path)}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    Notifier("@" + name).ready("hello")
    assert _drain(receiver) == ["READY=1\nSTATUS=hello"]
    receiver.close()
    gone = Notifier(str(tmp_path / "nobody"))
    gone.ready("x")  # logged once, not raised, not queued forever
    assert gone.pending == 0


def test_disabled_without_notify_socket() -> None:
    notifier = Notifier("")
    notifier.ready("x")
    assert not notifier.enabled and notifier.pending == 0
