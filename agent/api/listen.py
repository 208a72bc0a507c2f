"""The socket file: its directory, its mode and group, stale sockets, and who is on the other end.

File permissions are the first gate (directory 0750 and socket 0660, both ``root:<socket_group>``);
``SO_PEERCRED`` is the second, read on every connection, so that mutations can be kept to uid 0
while the group can read.

The socket is never reachable with looser permissions than those, not even for an instant: it is
bound inside a fresh 0700 directory, given its owner and mode there, and only then linked to its
final name. (The usual ``umask`` dance would do the same, but the umask is process-wide, and the
daemon's other threads create files at the same time.) ``link()`` also refuses to replace a
socket another daemon bound in the meantime, where ``rename()`` would silently take it over.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.codes import Code
from agent.errors import AgentError, ConfigError

DIR_MODE = 0o750
SOCKET_MODE = 0o660
_SUN_PATH_MAX = 107  # sizeof(sun_path) - 1 on Linux
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Peer:
    """The process at the other end of a connection, as the kernel saw it at connect()."""

    pid: int
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"pid {self.pid} uid {self.uid} gid {self.gid}"


def peer_credentials(conn: socket.socket) -> Peer:
    """``SO_PEERCRED`` of an accepted AF_UNIX connection."""
    pid, uid, gid = _UCRED.unpack(
        conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return Peer(pid=pid, uid=uid, gid=gid)


@dataclass(frozen=True, slots=True, kw_only=True)
class SocketFile:
    """The socket file a server created; removed on close only while it is still that file."""

    path: Path
    device: int
    inode: int

    def remove(self) -> None:
        """Unlink the socket unless it is gone or was replaced (a newer daemon's socket)."""
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == (self.device, self.inode):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove socket %s: %s", self.path, exc)


def resolve_group(name: str) -> int:
    """The gid of ``name``; gid 0 with a warning when no such group exists (root-only socket)."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        log.warning("group %r does not exist; the status socket is root-only (gid 0). "
                    "Create the group, or set [agent] socket_group", name)
        return 0


def _prepare_directory(directory: Path, socket_name: str, gid: int) -> None:
    """Create the runtime directory 0750 ``<us>:gid``, or adopt an existing one.

    An existing directory with other permissions is changed only while it holds nothing but our
    socket (a ``RuntimeDirectory=`` systemd made, a previous run's): pointing ``[agent] socket``
    at ``/run/secprof.sock`` must never make secprof chmod ``/run``.
    """
    directory.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700)  # opened up to DIR_MODE below, after its group is set
    # O_NOFOLLOW + fstat/fchown/fchmod: the checks and the changes apply to the same inode.
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"socket directory {directory} is not a directory (or is a symlink): "
                          f"{exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise ConfigError(f"socket directory {directory} belongs to uid {st.st_uid}, "
                              f"not to the daemon (uid {os.geteuid()})")
        if stat.S_IMODE(st.st_mode) == DIR_MODE and st.st_gid == gid:
            return
        others = sorted(set(os.listdir(fd)) - {socket_name})
        if others:
            raise ConfigError(
                f"socket directory {directory} has mode {stat.S_IMODE(st.st_mode):04o} group "
                f"{st.st_gid}, not {DIR_MODE:04o} group {gid}, and holds other files "
                f"({others[0]!r}…), so it is not secprof's to change",
                hint="point [agent] socket into a directory of its own, such as "
                     "/run/secprof/secprof.sock",
            )
        os.fchown(fd, -1, gid)
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)


def _clear_stale(path: Path) -> None:
    """Remove a socket nobody answers on; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{path} exists and is not a socket; secprof will not remove it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        os.unlink(path)
        log.info("removed stale socket %s (nothing was listening on it)", path)
        return
    except OSError as exc:  # a timeout means a full backlog: somebody is alive there
        raise AgentError(f"cannot tell whether a daemon is answering on {path}: {exc}",
                         code=Code.SOCKET_IN_USE) from None
    finally:
        probe.close()
    raise AgentError(f"another secprof daemon is answering on {path}", code=Code.SOCKET_IN_USE,
                     hint="stop it first (systemctl stop secprof), or set [agent] socket to "
                          "another path")


def listen(path: Path, gid: int, *, backlog: int = 64) -> tuple[socket.socket, SocketFile]:
    """A listening socket at ``path``, mode 0660 ``<us>:gid``, in a 0750 ``<us>:gid`` directory.

    Raises :class:`ConfigError` for a path that cannot be used and :class:`AgentError`
    (``socket-in-use``) when another daemon already answers there.
    """
    if len(os.fsencode(path)) > _SUN_PATH_MAX - 16:  # room for the private bind directory
        raise ConfigError(f"socket path {path} is too long for a Unix socket (at most "
                          f"{_SUN_PATH_MAX - 16} bytes here)")
    try:
        _prepare_directory(path.parent, path.name, gid)
        _clear_stale(path)
        private = Path(tempfile.mkdtemp(prefix=".bind-", dir=path.parent))  # mode 0700
    except OSError as exc:
        raise AgentError(f"cannot prepare socket {path}: {exc}", code=Code.SOCKET_SETUP_FAILED,
                         hint="the daemon must run as root") from None
    staged = private / "s"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(staged))
        os.chown(staged, os.geteuid(), gid)
        os.chmod(staged, SOCKET_MODE)
        sock.listen(backlog)
        os.link(staged, path)  # atomic, and fails rather than replace a socket bound meanwhile
        st = os.lstat(path)
    except FileExistsError:
        sock.close()
        raise AgentError(f"{path} appeared while secprof was binding it; is another daemon "
                         "starting?", code=Code.SOCKET_IN_USE) from None
    except OSError as exc:
        sock.close()
        raise AgentError(f"cannot create socket {path}: {exc}",
                         code=Code.SOCKET_SETUP_FAILED) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        os.rmdir(private)
    return sock, SocketFile(path=path, device=st.st_dev, inode=st.st_ino)
