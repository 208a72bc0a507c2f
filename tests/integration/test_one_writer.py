"""One writer: ``secprof apply`` waits while another secprof (here the test, holding the same
lock a daemon's reconcile holds) changes the host, and reads the desired state only once it has
the lock, so it never installs an older version than the one just written. Real CLI process,
real flock."""

from __future__ import annotations

import subprocess
import time

from agent.reconcile.lock import StateLock
from tests.conftest import SECPROF, Host, seccomp_doc
from tests.integration.daemon_support import running, wait_for


def _profile(syscall: str) -> str:
    return seccomp_doc("web", f"""
      defaultAction: SCMP_ACT_ERRNO
      syscalls:
        - {{names: [{syscall}], action: SCMP_ACT_ALLOW}}
    """)


def test_apply_waits_for_the_lock_and_installs_the_newest_version(host: Host) -> None:
    host.write("web.yaml", _profile("read"))
    lock = StateLock(host.state_dir)
    lock.acquire()  # a daemon in the middle of its reconcile
    try:
        proc = subprocess.Popen([str(SECPROF), "apply", "--config", str(host.config_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # it must be waiting, not applying
            assert proc.poll() is None, proc.communicate()
            assert not host.installed("web").exists()
            time.sleep(0.05)
        host.write("web.yaml", _profile("write"))  # the daemon's newer desired state
    finally:
        lock.release()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert b'"write"' in host.installed("web").read_bytes()


def test_apply_and_the_daemon_side_by_side_converge(host: Host) -> None:
    host.write("web.yaml", _profile("read"))
    with running(host):
        for i in range(5):
            host.write("web.yaml", _profile("write" if i % 2 else "read"))
            assert host.cli("apply").returncode == 0
        wait_for(lambda: b'"read"' in host.installed("web").read_bytes(), what="last version")
    ledger = (host.state_dir / "ledger.json").read_text()
    assert ledger.count('"name":"web"') == 1
