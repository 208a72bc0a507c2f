"""A small client for the status API: ``http.client`` over an AF_UNIX socket.

It imports the standard library, the error tree and :mod:`agent.api.wire`, nothing else, so the
commands built on it (``secprof status``, ``is-ready``, ``reconcile``, ``reload``) start fast.
Every way of not reaching the daemon becomes :class:`~agent.errors.DaemonUnavailable` (exit 69)
with a hint about the likely cause; an error the daemon answered becomes
:class:`~agent.errors.ApiError`, carrying the daemon's code and message.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.api.wire import JSON_TYPE
from agent.errors import AgentError, ApiError, DaemonUnavailable

MAX_REPLY_BYTES = 64 * 1024 * 1024  # far above any real answer; a bound all the same


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket; the Host header says ``localhost`` (any value would do)."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__("localhost", timeout=timeout_s)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self._path))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True, slots=True)
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
                    code=str(error.get("code") or "api-error"), hint=str(error.get("hint", "")))


class Client:
    """Talks to the daemon at ``path``; ``group`` only shapes the permission-denied hint."""

    def __init__(self, path: Path, *, group: str = "", timeout_s: float = 5.0) -> None:
        self.path = path
        self._group = group
        self._timeout_s = timeout_s

    def call(self, method: str, target: str, *, timeout_s: float | None = None) -> Reply:
        """One request; any HTTP status is returned, only transport failures raise."""
        timeout = self._timeout_s if timeout_s is None else timeout_s
        conn = _UnixConnection(self.path, timeout)
        try:
            conn.request(method, target, headers={"Accept": JSON_TYPE})
            response = conn.getresponse()
            body = response.read(MAX_REPLY_BYTES + 1)
        except OSError as exc:
            raise self._unavailable(exc, timeout) from None
        except http.client.HTTPException as exc:
            raise DaemonUnavailable(f"the daemon at {self.path} sent a broken reply: "
                                    f"{type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if len(body) > MAX_REPLY_BYTES:
            raise AgentError(f"the daemon's reply to {target} is larger than "
                             f"{MAX_REPLY_BYTES} bytes", code="bad-reply")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise AgentError(f"the daemon answered {target} with HTTP {response.status} and "
                             "no JSON object", code="bad-reply")
        return Reply(response.status, doc)

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
