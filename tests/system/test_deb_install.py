"""The package installs, runs and purges without a trace on this very host (dpkg, no container).

Refuses to run when secprof is already installed here, unless a previous run of this test
installed it (its mark in /run). The service is not started: dpkg asks policy-rc.d, and where
there is none this test puts one that says no (and removes it). That it really runs under
systemd is ``test_systemd_boot.py``'s part.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import CLEAN_ENV, REPO, system_tests

pytestmark = system_tests

MARK = Path("/run/secprof-install-test")  # "this test installed the package"
POLICY_RC = Path("/usr/sbin/policy-rc.d")
# Where the package, its maintainer scripts or the service could leave something.
WATCHED = ("/etc", "/usr/bin", "/usr/lib", "/usr/share/man", "/usr/share/doc", "/lib/systemd",
           "/var/lib", "/var/cache", "/run")
IGNORED = ("/var/cache/secprof-build", "/var/cache/secprof-test", str(MARK))


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=CLEAN_ENV, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    return proc


def _dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    """dpkg, waiting out another package manager's lock (this machine is shared)."""
    for _ in range(60):
        proc = _run("dpkg", *args, check=False)
        if "lock" not in proc.stderr:
            break
        time.sleep(5)
    assert proc.returncode == 0, f"dpkg {args}: {proc.stdout}{proc.stderr}"
    return proc


def _installed() -> bool:
    proc = _run("dpkg-query", "-W", "-f=${db:Status-Status}", "secprof", check=False)
    return proc.returncode == 0 and proc.stdout not in ("", "not-installed")


def _ours() -> set[str]:
    """Every path named like secprof where a package or its service writes."""
    found = set()
    for top in WATCHED:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if f"{dirpath}/{d}" not in IGNORED
                           and f"{dirpath}/{d}" not in ("/run/user", "/var/lib/docker")]
            found |= {f"{dirpath}/{n}" for n in dirnames + filenames
                      if "secprof" in n and f"{dirpath}/{n}" not in IGNORED}
    return found


def _group_exists() -> bool:
    try:
        grp.getgrnam("secprof")
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def installed(deb: Path) -> Iterator[None]:
    """Install the package for one test; purge it afterwards whatever happened."""
    if MARK.exists() and _installed():
        _dpkg("--purge", "secprof")  # our own leftover from an interrupted run
    if _installed() or Path("/usr/lib/secprof").exists() or Path("/etc/secprof").exists():
        pytest.fail("secprof is already on this host and this test did not install it: "
                    "refusing to touch it")
    made_policy = not POLICY_RC.exists()
    try:
        if made_policy:  # never start the service on the host itself
            POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
            POLICY_RC.chmod(0o755)
        MARK.write_text(str(deb))
        _dpkg("-i", str(deb))
        yield
    finally:
        try:
            if _installed():
                _dpkg("--purge", "secprof")
        finally:
            MARK.unlink(missing_ok=True)
            if made_policy:
                POLICY_RC.unlink(missing_ok=True)


def test_install_run_and_purge(deb: Path, tmp_path: Path) -> None:
    before = _ours()
    group_before = _group_exists()
    shutil.copytree(REPO / "examples/profiles.d", tmp_path / "profiles.d")
    config = tmp_path / "config.toml"
    config.write_text(
        '[agent]\nprofiles_dir = "profiles.d"\nstate_dir = "state"\ncache_dir = "cache"\n'
        'socket = "run/secprof.sock"\n[seccomp]\nroot = "seccomp"\n')

    with installed(deb):
        assert _run("secprof", "--version").stdout.strip().startswith("secprof ")
        apply = _run("/usr/bin/secprof", "apply", "--config", str(config), "--json",
                     check=False)
        assert apply.returncode == 0, apply.stdout + apply.stderr
        assert (tmp_path / "seccomp/secprof/web-frontend.json").is_file()
        # What the package put in place.
        for path in ("/usr/lib/secprof/pyvenv.cfg", "/etc/secprof/config.toml",
                     "/etc/secprof/profiles.d", "/lib/systemd/system/secprof.service",
                     "/usr/lib/sysusers.d/secprof.conf", "/usr/share/man/man8/secprof.8.gz",
                     "/usr/share/man/man5/secprof.toml.5.gz",
                     "/usr/share/doc/secprof/copyright"):
            assert Path(path).exists(), path
        assert _run("dpkg-query", "-W", "-f=${Conffiles}", "secprof").stdout.split()[0] \
            == "/etc/secprof/config.toml"
        assert _group_exists()
        # The packaged default config is a valid config: plan reads it without error.
        plan = _run("secprof", "plan", "--config", "/etc/secprof/config.toml", check=False)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        # The venv was compiled at install time (the service cannot write /usr).
        assert list(Path("/usr/lib/secprof/lib").rglob("__pycache__"))

    assert not _installed()
    assert _ours() == before
    assert _group_exists() == group_before



@pytest.mark.skipif(not shutil.which("lintian"), reason="needs lintian")
def test_lintian_finds_no_error_or_warning(deb: Path) -> None:
    # Only the overrides in packaging/debian/secprof.lintian-overrides (a bundled venv's).
    proc = _run("lintian", "--fail-on", "error,warning", str(deb), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
