"""A small client for the status API: one HTTP/1.1 request per AF_UNIX connection.

It imports the standard library's socket, json and re, the error tree and :mod:`agent.api.wire`,
nothing else, so the commands built on it (``secprof status``, ``is-ready``, ``reconcile``,
``reload``) start fast. ``http.client`` would do the same job but costs ~20 ms of imports (the
``email`` package, ``ssl``) on every run; the daemon sends ``Content-Length`` and closes after
its one answer, so reading to EOF and checking the length is the whole protocol.

Every way of not reaching the daemon becomes :class:`~agent.errors.DaemonUnavailable` (exit 69)
with a hint about the likely cause; an error the daemon answered becomes
:class:`~agent.errors.ApiError`, carrying the daemon's code and message.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.api.wire import JSON_TYPE
from agent.codes import Code
from agent.errors import AgentError, ApiError, DaemonUnavailable

MAX_REPLY_BYTES = 64 * 1024 * 1024  # far above any real answer; a bound all the same
_STATUS_LINE = re.compile(r"HTTP/1\.[01] ([1-5][0-9][0-9])(?: [^\r\n]*)?")
_CONTENT_LENGTH = re.compile(r"(?im)^content-length:[ \t]*([0-9]+)[ \t]*\r?$")


class _BrokenReply(Exception):
    """The daemon's answer is not the HTTP it should be."""


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            # The daemon closed without reading all we sent (a 503 when it is busy); its
            # answer, if any, came first, and _parse checks that it is complete.
            chunk = b""
        if not chunk:  # the daemon closes after its one answer
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise _BrokenReply(f"the reply is larger than {MAX_REPLY_BYTES} bytes")
        chunks.append(chunk)


def _parse(data: bytes) -> tuple[int, bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise _BrokenReply("the reply ended before its headers did" if data else "no reply")
    text = head.decode("latin-1")
    status = _STATUS_LINE.fullmatch(text.split("\r\n", 1)[0])
    if status is None:
        raise _BrokenReply(f"not an HTTP/1.1 status line: {text[:40]!r}")
    length = _CONTENT_LENGTH.search(text)
    if length is None:  # the daemon always sends one: without it a cut reply looks whole
        raise _BrokenReply("the reply has no Content-Length")
    if int(length.group(1)) != len(body):
        raise _BrokenReply(f"the reply was cut short ({len(body)} of {length.group(1)} bytes)")
    return int(status.group(1)), body


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: int
    doc: dict[str, Any]


def api_error(reply: Reply) -> ApiError:
    """The daemon's error envelope in ``reply`` as an :class:`ApiError`."""
    error = reply.doc.get("error")
    if not isinstance(error, dict):
        error = {}
    return ApiError(reply.status, str(error.get("message") or f"the daemon answered "
                                      f"HTTP {reply.status}"),
                    code=str(error.get("code") or Code.API_ERROR), hint=str(error.get("hint", "")))


class Client:
    """Talks to the daemon at ``path``; ``group`` only shapes the permission-denied hint."""

    def __init__(self, path: Path, *, group: str = "", timeout_s: float = 5.0) -> None:
        self.path = path
        self._group = group
        self._timeout_s = timeout_s

    def call(self, method: str, target: str, *, timeout_s: float | None = None) -> Reply:
        """One request (``target`` already percent-encoded); any HTTP status is returned, only
        transport failures and replies that are not JSON objects raise."""
        timeout = self._timeout_s if timeout_s is None else timeout_s
        length = "Content-Length: 0\r\n" if method == "POST" else ""
        request = (f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nAccept: {JSON_TYPE}\r\n"
                   f"{length}Connection: close\r\n\r\n").encode("ascii")
        deadline = time.monotonic() + timeout
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.path))
                # A busy daemon answers 503 and closes without reading: go on to read that.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(request)
                status, body = _parse(_read_all(sock, deadline))
        except OSError as exc:
            raise self._unavailable(exc, timeout) from None
        except _BrokenReply as exc:
            raise DaemonUnavailable(f"the daemon at {self.path} sent a broken reply to "
                                    f"{target}: {exc}") from None
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise AgentError(f"the daemon answered {target} with HTTP {status} and no JSON "
                             "object", code=Code.BAD_REPLY)
        return Reply(status=status, doc=doc)

    def get(self, target: str) -> dict[str, Any]:
        """The JSON document at ``target``; any status but 200 raises :class:`ApiError`."""
        reply = self.call("GET", target)
        if reply.status != 200:
            raise api_error(reply)
        return reply.doc

    def _unavailable(self, exc: OSError, timeout_s: float) -> DaemonUnavailable:
        where = f"the daemon's socket {self.path}"
        running = "is 'secprof daemon' running (systemctl status secprof)?"
        if isinstance(exc, FileNotFoundError):
            return DaemonUnavailable(f"{where} does not exist", hint=f"{running} Does [agent] "
                                     "socket in this config name the daemon's socket?")
        if isinstance(exc, ConnectionRefusedError):
            return DaemonUnavailable(f"nothing is listening on {where}", hint=running)
        if isinstance(exc, PermissionError):
            group = f"of group {self._group!r} " if self._group else ""
            return DaemonUnavailable(f"permission denied on {where}",
                                     hint=f"run as root, or as a member {group}([agent] "
                                          "socket_group); log in again after joining it")
        if isinstance(exc, TimeoutError):
            return DaemonUnavailable(f"the daemon did not answer within {timeout_s:g} s",
                                     hint="it may be overloaded; see journalctl -u secprof")
        return DaemonUnavailable(f"cannot talk to {where}: {exc.strerror or exc}",
                                 hint=running)
