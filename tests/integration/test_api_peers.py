"""Who may do what, as the kernel enforces it: file modes first, then SO_PEERCRED.

The client runs in a forked child that really drops root (``setgroups``/``setgid``/``setuid``)
before it connects, so the server sees that child's credentials, not ours.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import pytest

from agent.api.client import Client
from agent.api.server import ApiServer
from agent.errors import AgentError
from tests.integration.conftest import GROUP
from tests.support.control import MemoryControl

NOBODY = 65534
NOGROUP = 65534
OTHER_GID = 54321  # no group of the socket's


def as_user(uid: int, gid: int, groups: list[int],
            action: Callable[[], Any]) -> tuple[int, dict[str, Any]]:
    """Run ``action`` in a child that dropped root; its pid and its result or error."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            try:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                out: dict[str, Any] = {"uid": os.getuid(), "result": action()}
            except AgentError as exc:
                out = {"uid": os.getuid(), "error": exc.to_dict(),
                       "status": getattr(exc, "status", None)}
            with os.fdopen(write_end, "w") as pipe:
                json.dump(out, pipe)
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid, json.loads(text)


def test_a_group_member_reads_but_may_not_mutate(
        server: ApiServer, control: MemoryControl, caplog: pytest.LogCaptureFixture) -> None:
    client = Client(server.path, group=GROUP)

    def read_then_post() -> Any:
        status = client.get("/v1/status")["ready"]
        reply = client.call("POST", "/v1/reconcile")
        return {"ready": status, "status": reply.status, "error": reply.doc["error"]}

    with caplog.at_level(logging.INFO, logger="agent.api"):
        pid, out = as_user(NOBODY, NOGROUP, [], read_then_post)
    assert out["uid"] == NOBODY
    assert out["result"]["ready"] is False
    assert out["result"]["status"] == 403
    assert out["result"]["error"]["code"] == "forbidden"
    assert f"uid {NOBODY}" in out["result"]["error"]["message"]
    assert control.calls == []  # the worker never heard of it
    # The server logged the child's own pid and uid, read from SO_PEERCRED.
    assert f"reconcile refused: pid {pid} uid {NOBODY} gid {NOGROUP} is not root" in caplog.text


def test_root_is_logged_with_its_pid_and_uid(
        server: ApiServer, control: MemoryControl, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="agent.api"):
        assert Client(server.path).call("POST", "/v1/reload").status == 200
    assert f"reload requested by pid {os.getpid()} uid 0 gid 0" in caplog.text
    assert control.calls == [("reload", 60.0)]


def test_someone_outside_the_group_cannot_even_connect(server: ApiServer) -> None:
    client = Client(server.path, group=GROUP)
    _, out = as_user(NOBODY, OTHER_GID, [], lambda: client.get("/v1/healthz"))
    assert out["error"]["code"] == "daemon-unavailable"
    assert out["error"]["message"] == f"permission denied on the daemon's socket {server.path}"
    assert f"member of group {GROUP!r}" in out["error"]["hint"]


def test_the_group_on_the_socket_alone_is_enough(server: ApiServer) -> None:
    # A supplementary group counts, as it does for a user who was added to socket_group.
    client = Client(server.path, group=GROUP)
    _, out = as_user(NOBODY, OTHER_GID, [NOGROUP], lambda: client.get("/v1/healthz"))
    assert out["result"] == {"schema_version": 1, "ok": True}
