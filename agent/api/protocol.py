"""The small, strict subset of HTTP/1.1 the status API speaks.

One request per connection, ``Connection: close`` on every answer: the clients (``secprof``, curl,
a Prometheus scraper through a proxy) ask one thing at a time, and not keeping connections open
means a slow or idle client costs one thread for at most the read deadline. Everything a client
can send is bounded: the whole request head, the header count, the body, and the wall-clock time
to send them. Anything outside those bounds, or outside the grammar, is answered with a
4xx :class:`~agent.errors.ApiError`; nothing here raises anything else for bad input.
"""

from __future__ import annotations

import email.utils
import json
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from agent.api.wire import JSON_TYPE
from agent.codes import Code
from agent.errors import ApiError


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds on what one connection may cost the daemon."""

    read_timeout_s: float = 5.0  # for the whole request, head and body, not per recv()
    write_timeout_s: float = 5.0  # for the whole answer: a client that does not read is dropped
    max_head_bytes: int = 8192  # request line and headers
    max_headers: int = 64
    max_body_bytes: int = 4096  # no endpoint takes a body; a small one is read and ignored
    max_connections: int = 16  # non-root connections at once; beyond, 503 at once
    max_per_uid: int = 4  # of those, per non-root uid: one user cannot take every slot
    max_root_connections: int = 16  # root's own budget: the others never lock root out
    linger_s: float = 1.0  # after answering, how long to drain what the client still sends
    linger_bytes: int = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    method: str
    path: str  # as sent, still percent-encoded; the router splits and decodes it
    query: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = field(default=())


def json_response(status: int, doc: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """``doc`` as compact, key-sorted JSON (deterministic bytes for equal documents)."""
    body = (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()
    return Response(status=status, body=body, headers=headers)


def error_response(error: ApiError, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """The one error envelope: ``{"error": {"code", "message"[, "hint"]}}``."""
    return json_response(error.status, {"error": error.to_dict()}, headers)


def encode(response: Response, *, head_only: bool = False) -> bytes:
    """The bytes of ``response``; ``head_only`` (HEAD) keeps the headers, drops the body."""
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        "Cache-Control: no-store",
        "Connection: close",
        *(f"{name}: {value}" for name, value in response.headers),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body


# RFC 9110 token characters: methods and header names.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rf"({_TCHARS}) (/[!-~]*) HTTP/([0-9])\.([0-9])")
_FIELD_NAME = re.compile(_TCHARS)
# Field values: visible characters, spaces, tabs, and obs-text; no other control characters.
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_DIGITS = re.compile(r"[0-9]{1,10}")


def _bad(message: str, status: int = 400, code: Code = Code.BAD_REQUEST) -> ApiError:
    return ApiError(status, message, code=code)


def parse_head(head: bytes, limits: Limits) -> tuple[Request, int]:
    """Parse a request head (without its blank line) into a body-less request and its
    Content-Length. Bare LF line ends are accepted (RFC 9112 §2.2), folded lines are not."""
    lines = head.decode("latin-1").split("\n")
    lines = [line.removesuffix("\r") for line in lines]
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise _bad("malformed request line; expected 'METHOD /path HTTP/1.1'")
    method, target, major, minor = match.groups()
    if major != "1":
        raise _bad(f"HTTP/{major}.{minor} is not supported; use HTTP/1.1", 505,
                   Code.HTTP_VERSION_NOT_SUPPORTED)
    if len(lines) - 1 > limits.max_headers:
        raise _bad("too many header fields", 431, Code.HEADERS_TOO_LARGE)

    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise _bad("folded header lines are not accepted")
        # str methods, not one regex with optional whitespace around a lazy value: that one
        # backtracks quadratically on a long run of spaces (0.3 s for an 8 KiB header).
        name, colon, value = line.partition(":")
        value = value.strip(" \t")
        if not colon or not _FIELD_NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise _bad(f"malformed header line {line[:40]!r}")
        name = name.lower()
        if name in headers:
            if name in ("content-length", "host", "transfer-encoding"):
                raise _bad(f"more than one {name} header")  # request-smuggling hygiene
            value = f"{headers[name]}, {value}"
        headers[name] = value

    if minor != "0" and "host" not in headers:
        raise _bad("HTTP/1.1 requests must have a Host header (any value will do)")
    if "transfer-encoding" in headers:
        raise _bad("transfer codings are not supported; send a Content-Length", 411,
                   Code.LENGTH_REQUIRED)
    raw_length = headers.get("content-length", "0")
    if not _DIGITS.fullmatch(raw_length):
        raise _bad(f"malformed Content-Length {raw_length[:20]!r}")
    path, _, query = target.partition("?")
    return Request(method=method, path=path, query=query, headers=headers), int(raw_length)


def _recv(conn: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    conn.settimeout(remaining)
    return conn.recv(65536)


def read_request(conn: socket.socket, limits: Limits) -> Request | None:
    """Read one request from ``conn`` within ``limits.read_timeout_s``.

    ``None`` when the peer closed without sending anything (a liveness probe, a stale-socket
    check); :class:`ApiError` for everything malformed, too large or too slow.
    """
    deadline = time.monotonic() + limits.read_timeout_s
    buf = b""
    try:
        while (end := _HEAD_END.search(buf)) is None:
            if len(buf) > limits.max_head_bytes:
                raise _bad("request head too large", 431, Code.HEADERS_TOO_LARGE)
            chunk = _recv(conn, deadline)
            if not chunk:
                if not buf:
                    return None
                raise _bad("the request ended before its head was complete")
            buf += chunk
        if end.start() > limits.max_head_bytes:
            raise _bad("request head too large", 431, Code.HEADERS_TOO_LARGE)
        request, length = parse_head(buf[: end.start()], limits)
        if length > limits.max_body_bytes:
            raise _bad(f"request body of {length} bytes is too large (at most "
                       f"{limits.max_body_bytes})", 413, Code.BODY_TOO_LARGE)
        body = buf[end.end():]
        while len(body) < length:
            chunk = _recv(conn, deadline)
            if not chunk:
                raise _bad("the request ended before its body was complete")
            body += chunk
    except TimeoutError:
        raise _bad(f"request not complete within {limits.read_timeout_s:g} s", 408,
                   Code.REQUEST_TIMEOUT) from None
    # Anything past Content-Length would be a second request; one per connection is the rule.
    return Request(method=request.method, path=request.path, query=request.query,
                   headers=request.headers, body=body[:length])
