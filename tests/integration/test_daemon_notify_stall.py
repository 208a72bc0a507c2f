"""A notify socket nobody reads must not freeze the daemon: the real daemon, a real datagram
socket that is never read (its queue holds 10 messages here), a STATUS per reconcile; the daemon
keeps answering, and SIGTERM still stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

from tests.conftest import SECPROF, Host, seccomp_doc
from tests.integration.daemon_support import api, wait_for

GOOD = seccomp_doc("good", """
      defaultAction: SCMP_ACT_ERRNO
      syscalls:
        - {names: [read], action: SCMP_ACT_ALLOW}
""")


def test_unread_notify_socket_does_not_freeze_the_daemon(host: Host) -> None:
    host.write("good.yaml", GOOD)
    unread = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    unread.bind(str(host.root / "notify.sock"))
    env = dict(os.environ, NOTIFY_SOCKET=str(host.root / "notify.sock"))
    env.pop("JOURNAL_STREAM", None)
    with open(host.root / "daemon.log", "wb") as log:
        proc = subprocess.Popen([str(SECPROF), "daemon", "--config", str(host.config_path)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: api(host, "GET", "/v1/readyz", timeout=2)[0] == 200, timeout=20,
                 what="the daemon's first reconcile")
        # Long past the moment the socket's queue filled: the daemon still answers and works.
        for _ in range(15):
            assert api(host, "POST", "/v1/reconcile?timeout=10", timeout=15)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        unread.close()
