"""The package under test, built once per run, and the opt-in that guards the host.

The tests here install into this machine (`dpkg -i`) or boot containers: they run only with
``SECPROF_SYSTEM_TESTS=1`` (what ``.ci/run`` sets; CI machines exist to be changed this way).
``SECPROF_DEB=path`` tests an already built package instead of running ``make deb``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Debian's tools and interpreter only (pyenv's python3 is first on the usual PATH).
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
             "HOME": os.environ.get("HOME", "/root")}

system_tests = pytest.mark.skipif(
    os.environ.get("SECPROF_SYSTEM_TESTS") != "1" or os.geteuid() != 0,
    reason="changes this host: run as root with SECPROF_SYSTEM_TESTS=1 (as .ci/run does)",
)


@pytest.fixture(scope="session")
def deb() -> Path:
    """The .deb to test: $SECPROF_DEB, else a fresh `make deb` of this checkout."""
    given = os.environ.get("SECPROF_DEB")
    if given:
        return Path(given).resolve()
    proc = subprocess.run(["make", "--silent", "--no-print-directory", "-C", str(REPO), "deb"],
                          env=CLEAN_ENV, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = [line for line in proc.stdout.splitlines() if line.endswith(".deb")]
    assert built, proc.stdout
    return REPO / built[-1]
