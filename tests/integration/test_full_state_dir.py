"""A full or read-only state directory: ``secprof apply`` says so with a clear code, installs
nothing it could not record, removes nothing, and never exits 70. The state directory is a real
tiny tmpfs (filled to the last byte) or a real read-only bind mount, inside a private mount
namespace (``unshare -m``), so nothing outside the test sees either."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import SECPROF, Host, seccomp_doc

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare(1) for a private mount")

# Runs inside the private mount namespace: mount, damage, apply twice, report as JSON.
SCRIPT = r"""
import json, os, subprocess, sys
secprof, config, state, profiles, how = sys.argv[1:]
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", state], check=True)
def apply():
    p = subprocess.run([secprof, "apply", "--json", "--config", config], capture_output=True,
                       text=True)
    return {"code": p.returncode, "out": p.stdout, "err": p.stderr}
first = apply()
if how == "full":
    with open(os.path.join(state, "filler"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"x" * 4096)
        except OSError:
            pass
else:
    subprocess.run(["mount", "-o", "remount,ro", state], check=True)
with open(os.path.join(profiles, "new.yaml"), "w") as fh:
    fh.write(sys.stdin.read())
print(json.dumps({"first": first, "second": apply()}))
"""


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_an_unwritable_state_dir_is_a_clear_error(host: Host, how: str) -> None:
    host.write("old.yaml", seccomp_doc("old", """
      defaultAction: SCMP_ACT_ERRNO
      syscalls:
        - {names: [read], action: SCMP_ACT_ALLOW}
    """))
    host.state_dir.mkdir(parents=True, exist_ok=True)
    new = seccomp_doc("new", """
      defaultAction: SCMP_ACT_ERRNO
      syscalls:
        - {names: [write], action: SCMP_ACT_ALLOW}
    """)
    proc = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", SCRIPT, str(SECPROF), str(host.config_path),
         str(host.state_dir), str(host.profiles), how],
        input=new, capture_output=True, text=True, timeout=120, check=True,
    )
    runs = json.loads(proc.stdout)
    assert runs["first"]["code"] == 0, runs["first"]
    second = runs["second"]
    assert second["code"] == 1, second  # an error the operator can act on, not exit 70
    assert "Traceback" not in second["err"]
    assert host.installed("old").exists()  # nothing dropped
    assert not host.installed("new").exists()  # nothing written that could not be recorded
    if how == "full":  # the lock file exists: the run gets as far as the intent journal
        (status,) = [p for p in json.loads(second["out"])["profiles"] if p["name"] == "new"]
        assert status["state"] == "Error"
        assert status["errorCode"] == "state-unwritable"
    else:  # not even the lock can be taken: the whole command stops, saying why
        assert "cannot open the state lock" in second["err"]
        assert "Read-only file system" in second["err"]
