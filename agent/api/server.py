"""The status API server: HTTP/1.1 + JSON on a Unix socket.

One accept thread blocks in ``select()`` on the listening socket and a wake-up pipe, so an idle
daemon spends no CPU here; each connection gets a short-lived thread. Connections are counted
by the peer's uid (``SO_PEERCRED``, read at accept): at most ``Limits.max_per_uid`` per non-root
uid and ``Limits.max_connections`` for all non-root uids together, while root has a budget of its
own (``max_root_connections``), so slow or idle clients of a local user can never lock root (or
the other users) out. A connection beyond a limit is answered 503 and closed without a thread. A
connection carries exactly one request, read within ``Limits.read_timeout_s`` (a deadline for the
whole request, not per ``recv``).

Nothing a client sends can take the server down: protocol errors become 4xx answers, a bug in a
handler becomes a 500 and a log line with its traceback, and a client that vanishes only ends its
own thread.

Lifecycle, from the daemon's composition root::

    server = ApiServer(config.agent.socket, config.agent.socket_group, control)
    server.start()   # binds (raises AgentError when it cannot), then serves in the background
    ...
    server.close()   # stops accepting, removes the socket file, waits briefly for answers
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.api.listen import Peer, SocketFile, listen, peer_credentials, resolve_group
from agent.api.protocol import Limits, Request, Response, encode, error_response, read_request
from agent.api.routes import Api
from agent.codes import Code
from agent.daemon.state import Control
from agent.errors import AgentError, ApiError

log = logging.getLogger(__name__)

_BUSY = ApiError(503, "too many connections; try again shortly", code=Code.BUSY)


class ApiServer:
    """Serves ``control``'s snapshots on the Unix socket ``path``, group ``group``."""

    def __init__(
        self,
        path: Path,
        group: str,
        control: Control,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._group = group
        self._limits = limits or Limits()
        self._api = Api(control, clock=clock)
        self._lock = threading.Lock()
        self._open_by_uid: dict[int, int] = {}  # connections being served, under _lock
        self._workers: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._socket_file: SocketFile | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Create the socket and start serving; raises :class:`AgentError` if it cannot bind."""
        if self._thread is not None:
            raise RuntimeError("ApiServer.start() called twice")
        gid = resolve_group(self._group)
        self._listener, self._socket_file = listen(self.path, gid)
        try:
            self._listener.setblocking(False)
            self._wake = os.pipe()
        except OSError as exc:
            self._listener.close()
            self._socket_file.remove()
            raise AgentError(f"cannot start the status API: {exc}",
                             code=Code.SOCKET_SETUP_FAILED) from None
        self._thread = threading.Thread(target=self._serve, args=(self._listener, self._wake[0]),
                                        name="secprof-api", daemon=True)
        self._thread.start()
        log.info("status API listening on %s (group gid %d)", self.path, gid)

    def close(self, grace_s: float = 2.0) -> None:
        """Stop accepting, remove the socket file, and give answers in flight ``grace_s``.

        Idempotent. A POST still waiting on the worker after that is left to finish on its own
        (its thread is a daemon thread; its client sees the connection close at exit).
        """
        if self._thread is None or self._wake is None:
            return
        os.write(self._wake[1], b"x")
        self._thread.join()
        for fd in self._wake:
            os.close(fd)
        self._wake = None
        self._thread = None
        if self._listener is not None:
            self._listener.close()
        if self._socket_file is not None:
            self._socket_file.remove()
        deadline = time.monotonic() + grace_s
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, listener: socket.socket, wake_fd: int) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake_fd, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():  # no timeout: sleeps until there is work
                    if key.fileobj == wake_fd:
                        return
                    try:
                        self._accept(listener)
                    except Exception:  # a bug; this thread serves everyone, it must go on
                        log.exception("status API: accepting a connection failed")

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the peer gave up between select() and accept()
        except OSError as exc:  # EMFILE and friends: say so, keep serving the ones we have
            log.error("status API cannot accept a connection: %s", exc)
            time.sleep(0.1)  # rather than spin while the descriptor table is full
            return
        try:
            peer = peer_credentials(conn)
        except OSError as exc:
            log.warning("status API: no peer credentials (%s); closing", exc)
            conn.close()
            return
        refusal = self._admit(peer.uid)
        if refusal:
            # Non-blocking only: this thread accepts for everyone, it must not wait. Reading
            # what already arrived spares the client a reset in place of our answer.
            with contextlib.suppress(OSError):
                conn.send(encode(error_response(_BUSY)), socket.MSG_DONTWAIT)
                conn.recv(self._limits.max_head_bytes, socket.MSG_DONTWAIT)
            conn.close()
            log.warning("status API: refused a connection from %s: %s", peer, refusal)
            return
        worker = threading.Thread(target=self._connection, args=(conn, peer),
                                  name="secprof-api-conn", daemon=True)
        with self._lock:
            self._workers.add(worker)
        try:
            worker.start()
        except RuntimeError as exc:  # no more threads: this connection only is refused
            log.error("status API cannot start a thread: %s", exc)
            with self._lock:
                self._workers.discard(worker)
            self._release(peer.uid)
            conn.close()

    def _admit(self, uid: int) -> str:
        """Take a connection slot for ``uid``; why not (empty: admitted)."""
        limits = self._limits
        with self._lock:
            mine = self._open_by_uid.get(uid, 0)
            if uid == 0:
                if mine >= limits.max_root_connections:
                    return f"root already has {mine} connections open"
            elif mine >= limits.max_per_uid:
                return f"uid {uid} already has {mine} connections open"
            elif sum(n for u, n in self._open_by_uid.items() if u != 0) >= \
                    limits.max_connections:
                return f"{limits.max_connections} connections of non-root users are open"
            self._open_by_uid[uid] = mine + 1
            return ""

    def _release(self, uid: int) -> None:
        with self._lock:
            left = self._open_by_uid.get(uid, 0) - 1
            if left > 0:
                self._open_by_uid[uid] = left
            else:
                self._open_by_uid.pop(uid, None)

    def _connection(self, conn: socket.socket, peer: Peer) -> None:
        try:
            with conn:
                self._exchange(conn, peer)
        except Exception:  # a bug, not the client's doing; the thread must still end cleanly
            log.exception("status API: connection failed")
        finally:
            self._release(peer.uid)
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _exchange(self, conn: socket.socket, peer: Peer) -> None:
        started = time.monotonic()
        request: Request | None = None
        try:
            request = read_request(conn, self._limits)
            if request is None:
                return
            response = self._api.handle(request, peer)
        except ApiError as exc:
            response = error_response(exc)
        except OSError as exc:  # reset by the peer while reading: nobody to answer
            log.debug("status API: %s went away: %s", peer, exc)
            return
        except Exception:
            log.exception("status API: %s %s from %s failed", request and request.method,
                          request and request.path, peer)
            response = error_response(ApiError(500, "internal error; see the daemon's log",
                                               code=Code.INTERNAL))
        self._send(conn, response, request, peer)
        log.debug("%s %s from %s: %d in %.3f s", request and request.method,
                  request and request.path, peer, response.status, time.monotonic() - started)

    def _send(self, conn: socket.socket, response: Response, request: Request | None,
              peer: Peer) -> None:
        head_only = request is not None and request.method == "HEAD"
        try:
            conn.settimeout(self._limits.write_timeout_s)
            conn.sendall(encode(response, head_only=head_only))
            conn.shutdown(socket.SHUT_WR)
            self._linger(conn)
        except OSError as exc:  # includes the write timeout of a client that does not read
            log.debug("status API: could not answer %s: %s", peer, exc)

    def _linger(self, conn: socket.socket) -> None:
        """Drop what the client still sends until it closes (briefly, and only so much).

        Closing a Unix socket with unread input makes the kernel fail the client's next read
        with ECONNRESET instead of EOF; after a 413 or 431 the client is typically still
        sending, and a client that reads to EOF would then take our answer for a failure.
        """
        deadline = time.monotonic() + self._limits.linger_s
        budget = self._limits.linger_bytes
        with contextlib.suppress(OSError):  # a timeout or a reset: either way, we are done
            while budget > 0 and (remaining := deadline - time.monotonic()) > 0:
                conn.settimeout(remaining)
                chunk = conn.recv(min(65536, budget))
                if not chunk:
                    return
                budget -= len(chunk)


__all__ = ["ApiServer", "Limits"]
