"""Tiny HTTP servers on 127.0.0.1 for what a real registry will not do on demand: hang, fail,
drip, or ask for Bearer tokens (Distribution's token auth needs a signed-JWT token service)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# (method, path, headers) → (status, headers, body); a list body is sent a chunk at a time,
# DRIP_PAUSE_S apart.
Body = bytes | list[bytes]
Route = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], Body]]
DRIP_PAUSE_S = 0.2


@contextmanager
def serve(route: Route) -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    """Serve ``route``; yields the ``host:port`` and the list of requests seen."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append((self.command, self.path, headers))
            length = int(headers.get("content-length", "0"))
            if length:
                self.rfile.read(length)
            status, extra, body = route(self.command, self.path, headers)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            chunks = body if isinstance(body, list) else [body]
            self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                for index, chunk in enumerate(chunks):
                    if index:
                        time.sleep(DRIP_PAUSE_S)
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up on purpose: that is what the test checks

        do_GET = do_HEAD = do_POST = do_PUT = _any

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits for serve_forever's next poll (0.5 s by default)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def black_hole() -> Iterator[str]:
    """A port that accepts connections (the kernel does) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"
