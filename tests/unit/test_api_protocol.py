"""The HTTP/1.1 subset: request heads, bounded reads, response framing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from agent.api.protocol import (
    Limits,
    Request,
    Response,
    encode,
    error_response,
    json_response,
    parse_head,
    read_request,
)
from agent.errors import ApiError

LIMITS = Limits(read_timeout_s=0.3, max_head_bytes=1024, max_headers=8, max_body_bytes=16)


def parse(head: bytes) -> tuple[Request, int]:
    return parse_head(head, LIMITS)


def test_parses_a_request_head() -> None:
    request, length = parse(b"GET /v1/profiles?kind=seccomp HTTP/1.1\r\nHost: x\r\n"
                            b"X-Thing:  a b \r\nx-thing: c")
    assert request == Request(method="GET", path="/v1/profiles", query="kind=seccomp",
                              headers={"host": "x", "x-thing": "a b, c"})
    assert length == 0


def test_bare_lf_line_ends_and_http_1_0_without_host() -> None:
    request, length = parse(b"POST /v1/reload HTTP/1.0\nContent-Length: 3")
    assert (request.method, request.path, length) == ("POST", "/v1/reload", 3)


@pytest.mark.parametrize(("head", "status", "code"), [
    (b"GET", 400, "bad-request"),
    (b"GET /", 400, "bad-request"),  # HTTP/0.9: no
    (b"GET v1/status HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"GET http://x/v1/status HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"GET  /v1/status HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1 \r\nHost: x", 400, "bad-request"),
    (b"GET /v1/st atus HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"G(T /v1/status HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"GET /v1/\xffstatus HTTP/1.1\r\nHost: x", 400, "bad-request"),
    (b"GET /v1/status HTTP/2.0\r\nHost: x", 505, "http-version-not-supported"),
    (b"GET /v1/status HTTP/1.1", 400, "bad-request"),  # no Host
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n folded", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nNo colon", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nBad name: y", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX: a\x00b", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX: a\rb", 400, "bad-request"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nHost: y", 400, "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1",
     400, "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: -1", 400, "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3", 400, "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999", 400,
     "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked", 411,
     "length-required"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x" + b"\r\nX: y" * 8, 431, "headers-too-large"),
])
def test_rejects_malformed_heads(head: bytes, status: int, code: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(head)
    assert (caught.value.status, caught.value.code) == (status, code)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with server, client:
        yield server, client


def test_reads_head_and_body_sent_in_pieces(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    data = b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbodyEXTRA"

    def dribble() -> None:
        for i in range(0, len(data), 7):
            client.sendall(data[i:i + 7])
            time.sleep(0.005)

    sender = threading.Thread(target=dribble)
    sender.start()
    request = read_request(server, LIMITS)
    sender.join()
    assert request is not None
    assert request.body == b"body"  # what follows Content-Length is never a second request


def test_peer_that_sends_nothing_is_not_an_error(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.shutdown(socket.SHUT_WR)
    assert read_request(server, LIMITS) is None


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n", 400, "bad-request"),  # then EOF
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc", 400,
     "bad-request"),
    (b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n", 413,
     "body-too-large"),
    (b"GET /" + b"a" * 2000, 431, "headers-too-large"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 1100 + b"\r\n\r\n", 431,
     "headers-too-large"),
])
def test_bounded_reads(pair: tuple[socket.socket, socket.socket], data: bytes, status: int,
                       code: str) -> None:
    server, client = pair
    client.sendall(data)
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(ApiError) as caught:
        read_request(server, LIMITS)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_a_dribbling_client_hits_one_deadline_for_the_whole_request(
        pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    stop = threading.Event()

    def slowloris() -> None:  # one byte every 50 ms: each recv() is quick, the sum is not
        for byte in b"GET /v1/status HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx":
            if stop.wait(0.05):
                return
            client.send(bytes([byte]))

    sender = threading.Thread(target=slowloris)
    sender.start()
    started = time.monotonic()
    try:
        with pytest.raises(ApiError) as caught:
            read_request(server, LIMITS)
    finally:
        stop.set()
        sender.join()
    assert (caught.value.status, caught.value.code) == (408, "request-timeout")
    assert time.monotonic() - started < LIMITS.read_timeout_s + 0.2


def test_encode_frames_the_response() -> None:
    raw = encode(json_response(200, {"b": 1, "a": [2]}))
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "Content-Type: application/json" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert "Connection: close" in lines
    assert body == b'{"a":[2],"b":1}\n'  # sorted keys: equal documents, equal bytes


def test_head_keeps_the_length_and_drops_the_body() -> None:
    response = Response(status=200, body=b"12345", content_type="text/plain")
    raw = encode(response, head_only=True)
    assert raw.endswith(b"\r\n\r\n")
    assert b"Content-Length: 5\r\n" in raw


def test_error_envelope_carries_extra_headers() -> None:
    error = ApiError(405, "no", code="method-not-allowed")
    raw = encode(error_response(error, (("Allow", "POST"),)))
    assert raw.startswith(b"HTTP/1.1 405 Method Not Allowed\r\n")
    assert b"\r\nAllow: POST\r\n" in raw
    assert raw.endswith(b'{"error":{"code":"method-not-allowed","message":"no"}}\n')


def test_long_runs_of_whitespace_parse_in_linear_time() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX: a" + b" " * 8000 + b"b"
    started = time.perf_counter()
    request, _ = parse_head(head, Limits())
    assert time.perf_counter() - started < 0.05  # a backtracking regex took 0.3 s here
    assert request.headers["x"] == "a" + " " * 8000 + "b"
