"""Sixteen slow clients of one local user must not lock anyone out: the real server, real
connections from a forked child that really dropped root, each sending half a request head and
then nothing. Root and the other users are still served at once."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from agent.api.client import Client
from agent.api.server import ApiServer
from tests.integration.conftest import FAST, GROUP
from tests.integration.test_api_peers import NOBODY, NOGROUP, as_user
from tests.support.control import MemoryControl

SLOW = 16
OTHER_UID = 54320  # another unprivileged user, in the socket's group


@contextmanager
def slow_clients(path: Path, count: int) -> Iterator[None]:
    """A child as ``nobody`` holding ``count`` connections that never finish their request."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setgroups([])
            os.setgid(NOGROUP)
            os.setuid(NOBODY)
            held = []
            for _ in range(count):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(path))
                sock.send(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # and never the rest
                held.append(sock)
            os.write(ready_w, b"x")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    try:
        os.read(ready_r, 1)
        yield
    finally:
        os.write(done_w, b"x")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)


def test_slow_clients_of_one_user_lock_nobody_out(socket_path: Path,
                                                  control: MemoryControl) -> None:
    limits = replace(FAST, read_timeout_s=30)  # the slow ones would stay for the whole test
    with ApiServer(socket_path, GROUP, control, limits=limits) as srv, \
            slow_clients(srv.path, SLOW):
        started = time.monotonic()
        assert Client(srv.path).call("GET", "/v1/healthz").status == 200  # root
        _, other = as_user(OTHER_UID, NOGROUP, [NOGROUP],
                           lambda: Client(srv.path, group=GROUP).call("GET", "/v1/healthz")
                           .status)
        assert other["result"] == 200
        _, same = as_user(NOBODY, NOGROUP, [],
                          lambda: Client(srv.path, group=GROUP).call("GET", "/v1/healthz")
                          .doc["error"]["code"])
        assert same["result"] == "busy"  # the slow user's own further connections wait
        assert time.monotonic() - started < 5.0  # all answered at once, not after a timeout


def test_root_keeps_its_own_budget(socket_path: Path, control: MemoryControl) -> None:
    limits = replace(FAST, read_timeout_s=30, max_per_uid=SLOW)  # one user may fill the pool
    with ApiServer(socket_path, GROUP, control, limits=limits) as srv, \
            slow_clients(srv.path, SLOW):
        assert Client(srv.path).call("GET", "/v1/healthz").status == 200
        _, other = as_user(OTHER_UID, NOGROUP, [NOGROUP],
                           lambda: Client(srv.path, group=GROUP).call("GET", "/v1/healthz")
                           .status)
        assert other["result"] == 503  # the non-root pool is full; root's is not
