"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a real registry.

Requests are forwarded to the registry (Debian's docker-registry, :mod:`tests.support.registry`)
and its answers relayed, except where a rule matches the request's method and path: then the
rule's fault answers instead. Faults are what a real registry will not do on demand: send its
headers slowly, redirect in a loop or to another scheme or repository, or serve bytes of the
test's choosing (a deeply nested manifest, an impossible date) under the right headers.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A fault writes the whole answer to the client itself: (handler, upstream answer) -> None.
Upstream = tuple[int, list[tuple[str, str]], bytes]
Fault = Callable[[BaseHTTPRequestHandler, Callable[[], Upstream]], None]

_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


def _head(status: int, headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.client.responses.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP]
    lines += [f"Content-Length: {length}", "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


def slow_headers(pause_s: float) -> Fault:
    """The real answer, its status line and headers sent one byte every ``pause_s``."""

    def fault(handler: BaseHTTPRequestHandler, upstream: Callable[[], Upstream]) -> None:
        status, headers, body = upstream()
        for byte in _head(status, headers, len(body)):
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(pause_s)
        handler.wfile.write(body)

    return fault


def delayed(pause_s: float) -> Fault:
    """The real answer, after ``pause_s``."""

    def fault(handler: BaseHTTPRequestHandler, upstream: Callable[[], Upstream]) -> None:
        time.sleep(pause_s)
        answer_upstream(handler, upstream)

    return fault


def redirect(location: str, status: int = 307) -> Fault:
    """A redirect to ``location`` (``{path}`` is replaced by the request's path)."""

    def fault(handler: BaseHTTPRequestHandler, upstream: Callable[[], Upstream]) -> None:
        target = location.replace("{path}", handler.path)
        handler.wfile.write(_head(status, [("Location", target)], 0))

    return fault


def answer(body: bytes, headers: dict[str, str], status: int = 200) -> Fault:
    """This answer instead of the registry's (``HEAD`` gets the headers only)."""

    def fault(handler: BaseHTTPRequestHandler, upstream: Callable[[], Upstream]) -> None:
        handler.wfile.write(_head(status, list(headers.items()), len(body)))
        if handler.command != "HEAD":
            handler.wfile.write(body)

    return fault


@dataclass
class FaultProxy:
    """``host`` is the proxy's ``127.0.0.1:port``; ``seen`` every (method, path) it got."""

    upstream: str
    host: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)
    rules: list[tuple[str, re.Pattern[str], Fault]] = field(default_factory=list)

    def add(self, method: str, path: str, fault: Fault) -> None:
        """Answer requests of ``method`` whose path matches the regex ``path`` with ``fault``
        (the first matching rule wins)."""
        self.rules.append((method, re.compile(path), fault))

    def clear(self) -> None:
        self.rules.clear()

    def _fault(self, method: str, path: str) -> Fault | None:
        for wanted, pattern, fault in self.rules:
            if wanted == method and pattern.search(path):
                return fault
        return None

    def _forward(self, method: str, path: str, headers: dict[str, str],
                 body: bytes) -> Upstream:
        connection = http.client.HTTPConnection(self.upstream, timeout=10)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP | {"host"}}
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            data = response.read()
            out = [(k, v.replace(self.upstream, self.host)) for k, v in response.getheaders()]
            return response.status, out, data
        finally:
            connection.close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A running proxy in front of ``upstream`` (``host:port``)."""
    proxy = FaultProxy(upstream=upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            proxy.seen.append((self.command, self.path))
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())

            def upstream() -> Upstream:
                return proxy._forward(self.command, self.path, headers, body)

            fault = proxy._fault(self.command, self.path) or answer_upstream
            self.close_connection = True
            # The client giving up is what a fault is about.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                fault(self, upstream)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def answer_upstream(handler: BaseHTTPRequestHandler, upstream: Callable[[], Upstream]) -> None:
    """No fault: the registry's own answer."""
    status, headers, body = upstream()
    handler.wfile.write(_head(status, headers, len(body)))
    if handler.command != "HEAD":
        handler.wfile.write(body)
