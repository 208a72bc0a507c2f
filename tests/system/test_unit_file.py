"""The systemd unit parses cleanly with the real systemd-analyze (no systemd as PID 1 needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SECPROF

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "secprof.service"
LOAD_MARKER = Path("/run/systemd/systemd-units-load")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_unit_verifies_without_any_complaint(tmp_path: Path) -> None:
    unit = tmp_path / "secprof.service"
    # verify checks that ExecStart exists: point it at this checkout's secprof.
    unit.write_text(UNIT.read_text().replace("/usr/bin/secprof", str(SECPROF)))
    marker_existed = LOAD_MARKER.exists()
    try:
        proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                              capture_output=True, text=True, timeout=60)
    finally:
        if not marker_existed:  # verify leaves this behind; it was not ours to keep
            LOAD_MARKER.unlink(missing_ok=True)
    # systemd-analyze exits 0 on many parse errors: any output at all is a failure.
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_unit_declares_what_the_daemon_relies_on() -> None:
    text = UNIT.read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=",
                 "RuntimeDirectory=secprof", "Before=kubelet.service"):
        assert line in text
