"""Raw bytes in, raw bytes out: for requests no well-behaved client would send."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from typing import Any


def exchange(path: Path, data: bytes, *, timeout_s: float = 5.0) -> bytes:
    """Send ``data``, close our sending side, then read until the server closes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        # The server may answer and close before reading it all (a 413, a 431).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def split(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of a response; asserts its framing."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:200]
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    return int(status), headers, body


def error_of(raw: bytes) -> tuple[int, str]:
    """Status and error code of an error response (the one envelope, strictly)."""
    status, headers, body = split(raw)
    assert headers["content-type"] == "application/json"
    doc: Any = json.loads(body)
    assert set(doc) == {"error"}, doc
    assert {"code", "message"} <= set(doc["error"]) <= {"code", "message", "hint"}
    assert doc["error"]["message"]
    return status, doc["error"]["code"]
