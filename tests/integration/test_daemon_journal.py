"""Under journald the daemon logs structured fields (PROFILE_KIND, PROFILE_NAME, ERROR_CODE).

There is no journald on this machine, so the test plays journald: in a private mount namespace
(unshare -m) a tmpfs is mounted on /run/systemd and a datagram socket bound where journald's
native socket lives. systemd-python's JournalHandler, run by the real daemon, writes to it, and
the test decodes journald's native protocol. Nothing outside the namespace is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import SECPROF, Host, seccomp_doc

PLAY_JOURNALD = textwrap.dedent("""
    import json, os, signal, socket, struct, subprocess, sys, time
    config, profiles, log_path = sys.argv[1:4]
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/systemd"], check=True)
    os.makedirs("/run/systemd/journal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.settimeout(0.2)
    log = open(log_path, "wb")
    st = os.fstat(log.fileno())
    env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
    env.pop("NOTIFY_SOCKET", None)
    daemon = subprocess.Popen([sys.argv[4], "daemon", "--config", config], stdout=log,
                              stderr=log, env=env)

    def fields(data):
        out, rest = {}, data
        while rest:
            line, sep, rest = rest.partition(b"\\n")
            if b"=" in line:
                key, _, value = line.partition(b"=")
            else:  # binary-safe form: KEY \\n le64 length, value, \\n
                key = line
                (size,) = struct.unpack("<Q", rest[:8])
                value, rest = rest[8:8 + size], rest[9 + size:]
            out[key.decode()] = value.decode(errors="replace")
        return out

    records, deadline = [], time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            records.append(fields(sock.recv(1 << 20)))
        except TimeoutError:
            pass
        if {r.get("PROFILE_NAME") for r in records} >= {"bad", "good"}:
            break
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(20)
    print(json.dumps(records))
""")


@pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0,
                    reason="needs root and unshare(1) for a private mount namespace")
def test_errors_reach_the_journal_with_profile_fields(host: Host) -> None:
    host.write("good.yaml", seccomp_doc("good", "defaultAction: SCMP_ACT_LOG"))
    host.write("bad.yaml", seccomp_doc("bad", "defaultAction: SCMP_ACT_NOPE"))
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", sys.executable, "-c", PLAY_JOURNALD,
         str(host.config_path), str(host.profiles), str(host.root / "stderr.log"), str(SECPROF)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    error = next(r for r in records if r.get("ERROR_CODE") == "manifest-invalid")
    assert error["PROFILE_KIND"] == "SeccompProfile"
    assert error["PROFILE_NAME"] == "bad"
    assert error["PRIORITY"] == "3"
    assert error["SYSLOG_IDENTIFIER"] == "secprof"
    assert 'unknown action "SCMP_ACT_NOPE"' in error["MESSAGE"]
    installed = next(r for r in records if r.get("PROFILE_NAME") == "good")
    assert installed["PRIORITY"] == "6"
    # Under the journal nothing is duplicated on stderr.
    assert "unknown action" not in (host.root / "stderr.log").read_text()
