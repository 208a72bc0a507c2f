"""Running the real `secprof daemon` as a subprocess, with a real NOTIFY_SOCKET and socket API."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.conftest import SECPROF, Host


class NotifySocket:
    """A datagram socket standing in for systemd's: records every message the daemon sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            if not data:
                continue  # close() waking us
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append(fields)

    def seen(self, key: str, value: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return [m for m in self.messages if key in m and (value is None or m[key] == value)]

    def close(self) -> None:
        self._stop = True
        # Wake the reader with an empty datagram rather than have it poll with a timeout.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", str(self.path))
        self._thread.join()
        self.sock.close()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def api(host: Host, method: str, path: str, timeout: float = 30) -> tuple[int, Any]:
    conn = _UnixConnection(str(host.socket), timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        body = resp.read()
        ctype = resp.getheader("Content-Type", "")
        return resp.status, json.loads(body) if ctype.startswith("application/json") \
            else body.decode()
    finally:
        conn.close()


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, AssertionError):
            if predicate():
                return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


class DaemonProcess:
    def __init__(self, host: Host, *, watchdog_usec: int | None = None) -> None:
        self.host = host
        self.notify = NotifySocket(host.root / "notify.sock")
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path))
        env.pop("JOURNAL_STREAM", None)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log = host.root / "daemon.log"
        self._log_fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(SECPROF), "daemon", "--config", str(host.config_path)],
            stdout=self._log_fh, stderr=subprocess.STDOUT, env=env,
        )

    def ready(self, timeout: float = 20.0) -> None:
        wait_for(lambda: self.notify.seen("READY", "1") or self.proc.poll() is not None,
                 timeout, "READY=1")
        assert self.proc.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.notify.close()
        self._log_fh.close()
        return self.proc.returncode


@contextlib.contextmanager
def running(host: Host, **kw: Any) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(host, **kw)
    try:
        daemon.ready()
        yield daemon
    finally:
        daemon.stop()
