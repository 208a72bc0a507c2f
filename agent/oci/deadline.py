"""A total deadline for every byte a registry sends, its status line and headers included.

requests' ``timeout=(connect, read)`` bounds each socket read, not a response: a registry that
sends its headers a byte at a time, each within the read timeout, holds a request for ever (one
hung past 120 s with ``timeout_s = 10``). Here every read of a response goes through
:class:`_TimedReader`, which sets the socket's timeout to what is left of the operation's
deadline before each ``recv``: headers, body and chunk framing all end by the deadline.

The deadline of the operation in progress is per thread (:func:`until`), as a request runs in
its caller's thread. Sessions get it through :class:`DeadlineAdapter`, whose connection pools
use connection classes with their own response class; nothing of requests or urllib3 is patched.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests.adapters
import urllib3.connection
import urllib3.connectionpool

_current = threading.local()


@contextmanager
def until(deadline: float) -> Iterator[None]:
    """Every response read in this thread inside the block ends by ``deadline`` (monotonic)."""
    outer = getattr(_current, "deadline", None)
    _current.deadline = deadline if outer is None else min(outer, deadline)
    try:
        yield
    finally:
        _current.deadline = outer


class _TimedReader(io.RawIOBase):
    """A socket's reads, each bounded by what is left until the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # holds the socket open as makefile does
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the registry operation's deadline passed")
        self._sock.settimeout(left)
        got: int | None = self._raw.readinto(buffer)
        return got or 0

    def close(self) -> None:
        self._raw.close()
        super().close()


class _TimedSocket:
    """What :class:`http.client.HTTPResponse` sees of the socket: only ``makefile``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str, *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_TimedReader(self._sock, self._deadline))


class _Response(http.client.HTTPResponse):
    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        deadline = getattr(_current, "deadline", None)
        timed: Any = sock if deadline is None else _TimedSocket(sock, deadline)
        super().__init__(timed, *args, **kwargs)


class _Connection(urllib3.connection.HTTPConnection):
    response_class = _Response


class _TLSConnection(urllib3.connection.HTTPSConnection):
    response_class = _Response


class _Pool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


_POOLS = {"http": _Pool, "https": _TLSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with pools whose responses read under the thread's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
