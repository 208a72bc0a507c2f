"""The socket file: directory and socket modes and groups, stale sockets, ownership on close."""

from __future__ import annotations

import grp
import logging
import os
import socket
import stat
from pathlib import Path

import pytest

from agent.api.client import Client
from agent.api.server import ApiServer
from agent.errors import AgentError, ConfigError, DaemonUnavailable
from tests.integration.conftest import FAST, GROUP
from tests.support.control import MemoryControl, starting

NOGROUP = grp.getgrnam(GROUP).gr_gid


def _mode(path: Path) -> tuple[int, int, int, int]:
    st = os.lstat(path)
    return stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_directory_and_socket_modes_and_group(server: ApiServer) -> None:
    assert _mode(server.path.parent) == (stat.S_IFDIR, 0o750, 0, NOGROUP)
    assert _mode(server.path) == (stat.S_IFSOCK, 0o660, 0, NOGROUP)
    assert os.listdir(server.path.parent) == ["secprof.sock"]  # the bind dir is gone


def test_a_missing_group_falls_back_to_gid_0_with_a_warning(
        socket_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.api.listen"), \
            ApiServer(socket_path, "no-such-group-here", MemoryControl(starting())):
        assert _mode(socket_path) == (stat.S_IFSOCK, 0o660, 0, 0)
        assert _mode(socket_path.parent)[1:] == (0o750, 0, 0)
    assert "no-such-group-here" in caplog.text


def test_start_is_not_affected_by_a_loose_umask(socket_path: Path) -> None:
    old = os.umask(0)
    try:
        with ApiServer(socket_path, GROUP, MemoryControl(starting())):
            assert _mode(socket_path)[1] == 0o660
            assert _mode(socket_path.parent)[1] == 0o750
    finally:
        os.umask(old)


def test_close_removes_the_socket_and_is_idempotent(server: ApiServer) -> None:
    server.close()
    assert not server.path.exists()
    server.close()
    with pytest.raises(DaemonUnavailable, match="does not exist"):
        Client(server.path).get("/v1/healthz")


def test_a_stale_socket_is_replaced(socket_path: Path) -> None:
    socket_path.parent.mkdir(mode=0o750)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(socket_path))
    dead.close()  # the file stays, nobody listens: a crashed daemon's leftover
    with ApiServer(socket_path, GROUP, MemoryControl(starting())):
        assert Client(socket_path).get("/v1/healthz")["ok"] is True


def test_a_live_daemon_is_never_replaced(server: ApiServer) -> None:
    inode = os.lstat(server.path).st_ino
    second = ApiServer(server.path, GROUP, MemoryControl(starting()))
    with pytest.raises(AgentError) as caught:
        second.start()
    assert caught.value.code == "socket-in-use"
    assert os.lstat(server.path).st_ino == inode
    assert Client(server.path).get("/v1/healthz")["ok"] is True


def test_close_leaves_a_socket_that_is_no_longer_its_own(server: ApiServer) -> None:
    os.unlink(server.path)  # as if another daemon took the path over
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(server.path))
    try:
        server.close()
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode)
    finally:
        other.close()


def test_a_file_in_the_way_is_not_removed(socket_path: Path) -> None:
    socket_path.parent.mkdir(mode=0o750)
    socket_path.write_text("precious")
    with pytest.raises(ConfigError, match="not a socket"):
        ApiServer(socket_path, GROUP, MemoryControl(starting())).start()
    assert socket_path.read_text() == "precious"


def test_a_shared_directory_is_never_chmodded(short_tmp: Path) -> None:
    shared = short_tmp / "shared"
    shared.mkdir(mode=0o755)
    (shared / "someone-else.pid").write_text("1")
    with pytest.raises(ConfigError, match="not secprof's to change"):
        ApiServer(shared / "secprof.sock", GROUP, MemoryControl(starting())).start()
    assert _mode(shared) == (stat.S_IFDIR, 0o755, 0, 0)


def test_an_empty_directory_of_its_own_is_adopted(short_tmp: Path) -> None:
    runtime = short_tmp / "run"
    runtime.mkdir()
    os.chmod(runtime, 0o755)  # e.g. RuntimeDirectory= with the default mode
    with ApiServer(runtime / "secprof.sock", GROUP, MemoryControl(starting())):
        assert _mode(runtime) == (stat.S_IFDIR, 0o750, 0, NOGROUP)


def test_a_symlinked_directory_is_refused(short_tmp: Path) -> None:
    real = short_tmp / "real"
    real.mkdir()
    (short_tmp / "run").symlink_to(real)
    with pytest.raises(ConfigError, match="symlink"):
        ApiServer(short_tmp / "run" / "secprof.sock", GROUP, MemoryControl(starting())).start()


def test_a_path_too_long_for_sun_path_is_a_config_error(short_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="too long"):
        ApiServer(short_tmp / ("x" * 100) / "s.sock", GROUP, MemoryControl(starting()),
                  limits=FAST).start()
