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


@contextmanager
def tls_drip(pause_s: float = 0.1, limit_s: float = 30.0) -> Iterator[str]:
    """A port whose server answers a TLS ClientHello with the start of a ServerHello record
    and then one byte every ``pause_s`` (for up to ``limit_s``): every read of the handshake
    comes well within any socket timeout, the handshake never ends."""
    stop = threading.Event()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.05)

    def drip(conn: socket.socket) -> None:
        with conn:
            # A handshake record header announcing 16 KiB: the client waits for all of it.
            record = b"\x16\x03\x03\x40\x00" + b"\x02" * 0x4000
            deadline = time.monotonic() + limit_s
            for byte in record:
                if stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # the client gave up: what the test checks
                stop.wait(pause_s)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()
