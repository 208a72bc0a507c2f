"""The client against a socket that misbehaves: every failure is an error from the tree."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.client import Client
from agent.errors import AgentError, ApiError, DaemonUnavailable


@pytest.fixture
def answering(short_tmp: Path) -> Iterator[tuple[Path, list[bytes]]]:
    """A socket that answers each connection with the next canned bytes, then closes
    (``b"hang"``: reads the request and never answers)."""
    path = short_tmp / "fake.sock"
    answers: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            if stop.is_set():
                conn.close()
                return
            with conn:
                conn.recv(65536)
                answer = answers.pop(0)
                if answer == b"hang":
                    stop.wait(5)
                    continue
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, answers
    stop.set()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
        wake.connect(str(path))
    thread.join(5)
    listener.close()


@pytest.mark.parametrize(("answer", "error", "text"), [
    (b"", DaemonUnavailable, "no reply"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", DaemonUnavailable, "ended before its headers"),
    (b"HTTP/1.1 OK\r\n\r\n{}", DaemonUnavailable, "not an HTTP/1.1 status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", DaemonUnavailable, "cut short"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1]", AgentError, "no JSON object"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\xff\xfe", AgentError, "no JSON object"),
    (b"HTTP/1.1 200 OK\r\n\r\n{}", DaemonUnavailable, "no Content-Length"),
])
def test_broken_replies(answering: tuple[Path, list[bytes]], answer: bytes,
                        error: type[Exception], text: str) -> None:
    path, answers = answering
    answers.append(answer)
    with pytest.raises(error, match=text):
        Client(path).get("/v1/status")


def test_an_error_envelope_becomes_an_api_error(answering: tuple[Path, list[bytes]]) -> None:
    path, answers = answering
    body = b'{"error":{"code":"not-ready","message":"wait","hint":"later"}}'
    answers.append(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s"
                   % (len(body), body))
    with pytest.raises(ApiError) as caught:
        Client(path).get("/v1/profiles")
    error = caught.value
    assert (error.status, error.code, error.message, error.hint) == (503, "not-ready", "wait",
                                                                    "later")


def test_a_daemon_that_never_answers_times_out(answering: tuple[Path, list[bytes]]) -> None:
    path, answers = answering
    answers.append(b"hang")
    with pytest.raises(DaemonUnavailable, match=r"did not answer within 0\.3 s"):
        Client(path, timeout_s=0.3).get("/v1/status")


def test_a_socket_path_under_a_file(short_tmp: Path) -> None:
    (short_tmp / "file").write_text("")
    with pytest.raises(DaemonUnavailable, match=r"cannot talk to .*: Not a directory"):
        Client(short_tmp / "file" / "secprof.sock").get("/v1/status")
