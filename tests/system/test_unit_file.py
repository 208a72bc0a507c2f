"""The systemd unit parses cleanly with the real systemd-analyze (no systemd as PID 1 needed).

That it really runs (READY, watchdog, reload, hardening) is tested in ``test_systemd_boot.py``,
under a real systemd in a container.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SECPROF

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "secprof.service"
LOAD_MARKER = Path("/run/systemd/systemd-units-load")
# What `systemd-analyze security --offline=true` measured when the unit was written (README).
EXPOSURE_CEILING = 2.5

needs_analyze = pytest.mark.skipif(not shutil.which("systemd-analyze"),
                                   reason="needs systemd-analyze")


def _analyze(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    unit = tmp_path / "secprof.service"
    # verify checks that ExecStart and ExecReload exist: point them at this checkout's secprof.
    unit.write_text(UNIT.read_text().replace("/usr/bin/secprof", str(SECPROF)))
    marker_existed = LOAD_MARKER.exists()
    try:
        return subprocess.run(["systemd-analyze", *args, str(unit)],
                              capture_output=True, text=True, timeout=60)
    finally:
        if not marker_existed:  # analyze leaves this behind; it was not ours to keep
            LOAD_MARKER.unlink(missing_ok=True)


@needs_analyze
def test_unit_verifies_without_any_complaint(tmp_path: Path) -> None:
    proc = _analyze(tmp_path, "verify", "--man=no")
    # systemd-analyze exits 0 on many parse errors: any output at all is a failure.
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@needs_analyze
def test_unit_exposure_stays_low(tmp_path: Path) -> None:
    proc = _analyze(tmp_path, "security", "--offline=true", "--no-pager")
    found = re.search(r"Overall exposure level for secprof\.service: (\d+\.\d+)", proc.stdout)
    assert found, proc.stdout + proc.stderr
    assert float(found.group(1)) <= EXPOSURE_CEILING


def test_unit_declares_what_the_daemon_relies_on() -> None:
    lines = set(UNIT.read_text().splitlines())
    for line in ("Type=notify", "ExecReload=/usr/bin/secprof reload", "WatchdogSec=60s",
                 "Restart=on-failure", "RestartPreventExitStatus=78",
                 "RuntimeDirectory=secprof", "StateDirectory=secprof",
                 "CacheDirectory=secprof", "ConfigurationDirectory=secprof",
                 "ReadWritePaths=-/var/lib/kubelet/seccomp"):
        assert line in lines
    before = next(line for line in lines if line.startswith("Before="))
    for unit in ("kubelet.service", "containerd.service", "crio.service", "docker.service"):
        assert unit in before.split("=", 1)[1].split()
    # Boot must not wait for the network: secprof settles profiles from local files first.
    assert not any("network" in line for line in lines if line.startswith(("After=", "Wants=")))
