"""The real server on a real socket: routes, codes, junk, slow and greedy clients, idleness."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agent.api.client import Client, Reply
from agent.api.server import ApiServer
from agent.daemon.state import Outcome, Snapshot
from agent.errors import ApiError
from tests.integration.conftest import FAST
from tests.integration.rawhttp import error_of, exchange, split
from tests.support.control import MemoryControl, running


def test_every_route_over_the_socket(client: Client, control: MemoryControl) -> None:
    assert client.get("/v1/healthz") == {"schema_version": 1, "ok": True}
    assert client.call("GET", "/v1/readyz").status == 503
    assert client.call("GET", "/v1/profiles").status == 503
    assert client.get("/v1/status")["ready"] is False

    control.current = running()
    assert client.get("/v1/readyz") == {"schema_version": 1, "ready": True}
    assert client.get("/v1/status")["counts"]["Error"] == 1
    assert len(client.get("/v1/profiles")["profiles"]) == 3
    assert len(client.get("/v1/profiles?kind=apparmor")["profiles"]) == 1
    detail = client.get("/v1/profiles/seccomp/web-frontend")["profile"]
    assert [link["reference"] for link in detail["chain"]] == [
        "web-frontend", "oci://registry.example:5000/profiles/runtime:v1"]
    assert client.call("POST", "/v1/reconcile").doc["ok"] is True
    control.outcomes.append(Outcome(ok=False, message="[agent] x: unknown key"))
    reply = client.call("POST", "/v1/reload?timeout=3")
    assert (reply.status, reply.doc["error"]["code"]) == (409, "reload-failed")
    assert control.calls == [("reconcile", 60.0), ("reload", 3.0)]


def test_errors_come_back_as_api_errors(client: Client, control: MemoryControl) -> None:
    control.current = running()
    with pytest.raises(ApiError) as caught:
        client.get("/v1/profiles/seccomp/nope")
    assert (caught.value.status, caught.value.code) == (404, "profile-not-found")


def test_metrics_over_the_socket(server: ApiServer, control: MemoryControl) -> None:
    control.current = running()
    status, headers, body = split(exchange(
        server.path, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b'\nsecprof_profiles{kind="SeccompProfile",state="Error"} 1\n' in body


def test_head(server: ApiServer) -> None:
    raw = exchange(server.path, b"HEAD /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b""
    assert b"Content-Length: 0" not in head


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n", 400,
     "bad-request"),  # a TLS ClientHello
    (b"GET /v1/status HTTP/1.1\r\n\r\n", 400, "bad-request"),
    (b"GET /v1/status HTTP/3.0\r\nHost: x\r\n\r\n", 505, "http-version-not-supported"),
    (b"BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method-not-allowed"),
    (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not-found"),
    (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", 431, "headers-too-large"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 1000 + b"\r\n", 431,
     "headers-too-large"),
    (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 10_000 + b"\r\n\r\n", 431,
     "headers-too-large"),
    (b"POST /v1/reconcile HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" +
     b"z" * 100_000, 413, "body-too-large"),
    (b"POST /v1/reconcile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     411, "length-required"),
    (b"\r\n\r\n", 400, "bad-request"),
    (b"\x00" * 5000, 400, "bad-request"),  # then EOF: incomplete
])
def test_junk_gets_a_real_status_and_the_server_lives_on(
        server: ApiServer, client: Client, data: bytes, status: int, code: str) -> None:
    assert error_of(exchange(server.path, data)) == (status, code)
    assert client.get("/v1/healthz")["ok"] is True


def test_405_carries_allow(server: ApiServer) -> None:
    raw = exchange(server.path, b"DELETE /v1/profiles HTTP/1.1\r\nHost: x\r\n\r\n")
    assert split(raw)[1]["allow"] == "GET, HEAD"


def test_a_peer_that_connects_and_leaves_costs_nothing(server: ApiServer,
                                                       client: Client) -> None:
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(server.path))
    assert client.get("/v1/healthz")["ok"] is True


def test_a_slow_client_times_out_while_others_are_served(server: ApiServer,
                                                         client: Client) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(str(server.path))
        slow.sendall(b"GET /v1/status HTTP/1.1\r\nHo")  # ... and nothing more
        started = time.monotonic()
        for _ in range(5):
            assert client.get("/v1/healthz")["ok"] is True
        assert time.monotonic() - started < FAST.read_timeout_s  # not queued behind it
        slow.settimeout(5)
        raw = b""
        while chunk := slow.recv(4096):
            raw += chunk
        waited = time.monotonic() - started
    assert error_of(raw) == (408, "request-timeout")
    assert FAST.read_timeout_s - 0.1 < waited < FAST.read_timeout_s + 1.0


def test_connections_beyond_the_cap_get_503_at_once(socket_path: Path,
                                                     control: MemoryControl) -> None:
    limits = replace(FAST, max_root_connections=2, read_timeout_s=10)  # idle ones stay idle
    with ApiServer(socket_path, "nogroup", control, limits=limits) as srv:
        client = Client(srv.path)
        idle = []
        try:
            for _ in range(limits.max_root_connections):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(srv.path))
                idle.append(sock)
            assert _wait_for(lambda: client.call("GET", "/v1/healthz").status == 503)
            for _ in range(20):  # the refusal races the request; the client sees 503 each time
                started = time.monotonic()
                reply = client.call("GET", "/v1/healthz")
                assert (reply.status, reply.doc["error"]["code"]) == (503, "busy")
                assert time.monotonic() - started < 1.0  # at once, not after a timeout
        finally:
            for sock in idle:
                sock.close()
        # The slots free up as the server notices the closed connections.
        assert _wait_for(lambda: client.call("GET", "/v1/healthz").status == 200)


def _wait_for(condition: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class _BrokenControl:
    """A control whose snapshot fails: a bug in the daemon, not in the request."""

    def snapshot(self) -> Snapshot:
        raise RuntimeError("worker bug")

    def request_reconcile(self, timeout_s: float) -> Outcome:
        raise RuntimeError("worker bug")

    def request_reload(self, timeout_s: float) -> Outcome:
        raise RuntimeError("worker bug")


def test_a_bug_is_a_500_and_a_log_line_not_a_dead_server(
        socket_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with ApiServer(socket_path, "nogroup", _BrokenControl(), limits=FAST) as srv:
        client = Client(srv.path)
        for target in ("/v1/status", "/metrics"):
            reply = client.call("GET", target)
            assert (reply.status, reply.doc["error"]["code"]) == (500, "internal")
            assert "worker bug" not in json.dumps(reply.doc)  # no internals to the client
        assert client.get("/v1/healthz")["ok"] is True
    assert "RuntimeError: worker bug" in caplog.text


def test_reads_never_wait_for_a_busy_worker(client: Client, control: MemoryControl) -> None:
    control.current = running()
    control.hold = threading.Event()
    replies: list[Reply] = []
    poster = threading.Thread(target=lambda: replies.append(
        client.call("POST", "/v1/reconcile?timeout=0.3")))
    poster.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        control.current = replace(running(), version="9.9.9")
        assert client.get("/v1/status")["version"] == "9.9.9"
        assert time.monotonic() - started < 0.2
    finally:
        poster.join()
    (reply,) = replies
    assert (reply.status, reply.doc["error"]["code"]) == (409, "timeout")


def _cpu_ticks(thread: threading.Thread) -> int:
    fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1]
    utime, stime = fields.split()[11:13]
    return int(utime) + int(stime)


def test_an_idle_server_uses_no_cpu(server: ApiServer, client: Client) -> None:
    client.get("/v1/healthz")
    (accept_thread,) = [t for t in threading.enumerate() if t.name == "secprof-api"]
    before = _cpu_ticks(accept_thread)
    time.sleep(0.5)  # a spinning thread shows many ticks (10 ms each) by then
    assert _cpu_ticks(accept_thread) == before
    assert [t for t in threading.enumerate() if t.name == "secprof-api-conn"] == []
