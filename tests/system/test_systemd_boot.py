"""The package under a real systemd: a Debian 12 container booted with systemd-nspawn.

The package is installed with `dpkg -i` inside it, so its maintainer scripts create the group,
enable and start the service exactly as on a node. Then the unit's promises are checked one by
one against systemd's own view (`systemctl show`, the journal). Waiting for systemd's watchdog
and restart timers is real time here, polled against a deadline (there is no clock to inject
into PID 1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import REPO, system_tests
from tests.system.nspawn import Container, booted

pytestmark = system_tests

SECCOMP = "/var/lib/kubelet/seccomp/secprof"
EXAMPLES = ("web-frontend", "runtime-base", "batch-job")  # installed from examples/profiles.d
CONFIG = "/etc/secprof/config.toml"
DROP_IN = "/run/systemd/system/secprof.service.d/test.conf"


@pytest.fixture(scope="module")
def box(deb: Path) -> Iterator[Container]:
    binds = [(deb, "/root/secprof.deb"), (REPO / "examples/profiles.d", "/root/examples")]
    with booted("secprof-test", binds) as container:
        container.run("dpkg", "-i", "/root/secprof.deb", timeout=300)
        container.run("cp", "-r", "/root/examples/.", "/etc/secprof/profiles.d/")
        container.run("cp", CONFIG, "/root/config.toml.orig")
        container.run("useradd", "--no-create-home", "--groups", "secprof", "reader")
        container.run("useradd", "--no-create-home", "other")
        container.run("mkdir", "-p", DROP_IN.rsplit("/", 1)[0])
        yield container


def _show(box: Container, *props: str) -> dict[str, str]:
    out = box.run("systemctl", "show", "secprof", *(f"--property={p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _wait_for(box: Container, what: str, predicate: object, timeout_s: float = 60) -> dict[
        str, str]:
    """Poll ``systemctl show`` until ``predicate(props)`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        props = _show(box, "ActiveState", "SubState", "MainPID", "NRestarts", "Result",
                      "ExecMainStatus")
        if predicate(props):  # type: ignore[operator]
            return props
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {props}\n{_journal(box)}")
        time.sleep(0.2)


def _journal(box: Container) -> str:
    return box.run("journalctl", "-u", "secprof", "--no-pager", "-n", "40", check=False).stdout


def _fresh(box: Container) -> None:
    """The packaged state: default config, no test drop-in, service running."""
    box.run("cp", "/root/config.toml.orig", CONFIG)
    box.run("rm", "-f", DROP_IN)
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "reset-failed", "secprof", check=False)
    box.run("systemctl", "restart", "secprof")


def test_package_enabled_and_started_by_dpkg(box: Container) -> None:
    assert box.run("systemctl", "is-enabled", "secprof").stdout.strip() == "enabled"
    assert box.run("getent", "group", "secprof").returncode == 0


def test_active_only_once_the_first_reconcile_is_done(box: Container) -> None:
    cursor = box.run("journalctl", "--show-cursor", "-n", "0", "--no-pager").stdout
    cursor = cursor.strip().rsplit("cursor: ", 1)[1]
    box.run("rm", "-rf", SECCOMP)
    box.run("systemctl", "restart", "secprof")  # Type=notify: returns once READY=1 came
    # Right then, without any waiting, the profiles are on disk and the daemon says ready.
    for name in EXAMPLES:
        assert box.run("test", "-f", f"{SECCOMP}/{name}.json", check=False).returncode == 0
    assert box.run("secprof", "is-ready").returncode == 0
    props = _show(box, "Type", "ActiveState", "StatusText")
    assert (props["Type"], props["ActiveState"]) == ("notify", "active")
    assert "profile" in props["StatusText"]
    # systemd logged "Started" only after the daemon's first reconcile.
    lines = box.run("journalctl", "-u", "secprof", "--after-cursor", cursor, "--no-pager",
                    "-o", "cat").stdout.splitlines()
    started = next(i for i, line in enumerate(lines) if line.startswith("Started secprof"))
    reconciled = [i for i, line in enumerate(lines) if "web-frontend" in line]
    assert reconciled and max(reconciled) < started, lines


def test_status_for_the_secprof_group_only(box: Container) -> None:
    ok = box.run("secprof", "status", "--all", user="reader", check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "web-frontend" in ok.stdout
    refused = box.run("secprof", "status", user="other", check=False)
    assert refused.returncode == 69, refused.stdout + refused.stderr
    assert "ermission denied" in refused.stderr
    # Mutations stay with root, even for the group.
    assert box.run("secprof", "reconcile", user="reader", check=False).returncode != 0


def test_reload_is_synchronous_and_keeps_the_process(box: Container) -> None:
    _fresh(box)
    pid = _show(box, "MainPID")["MainPID"]
    box.write(CONFIG, '[seccomp]\nsubdir = "reloaded"\n')
    box.run("systemctl", "reload", "secprof")
    # When systemctl returns, the reload is done: the profiles are in the new place.
    assert box.run("test", "-f", "/var/lib/kubelet/seccomp/reloaded/web-frontend.json",
                   check=False).returncode == 0
    assert _show(box, "MainPID")["MainPID"] == pid
    # A bad manifest is that profile's error, not the reload's: the new config is in force.
    box.write("/etc/secprof/profiles.d/broken.yaml",
              "apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: SeccompProfile\n"
              "metadata: {name: broken}\nspec: {defaultAction: SCMP_ACT_NOPE}\n")
    try:
        box.write(CONFIG, '[seccomp]\nsubdir = "again"\n')
        box.run("systemctl", "reload", "secprof")
        assert box.run("test", "-f", "/var/lib/kubelet/seccomp/again/web-frontend.json",
                       check=False).returncode == 0
        # A bad config: the reload fails, the daemon keeps running with the config it had.
        box.write(CONFIG, "[seccomp]\nsubdirr = 1\n")
        assert box.run("systemctl", "reload", "secprof", check=False).returncode != 0
        props = _show(box, "MainPID", "ActiveState")
        assert (props["MainPID"], props["ActiveState"]) == (pid, "active")
    finally:
        box.run("rm", "-f", "/etc/secprof/profiles.d/broken.yaml")
        _fresh(box)


def test_watchdog_restarts_a_hung_daemon(box: Container) -> None:
    box.write(DROP_IN, "[Service]\nWatchdogSec=3s\n")
    box.run("systemctl", "daemon-reload")
    box.run("systemctl", "restart", "secprof")
    before = _show(box, "MainPID", "NRestarts")
    # Hung: the process is frozen, no WATCHDOG=1 comes any more.
    box.run("systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "secprof")
    after = _wait_for(box, "watchdog restart", lambda p: p["MainPID"] not in ("0", before[
        "MainPID"]) and p["ActiveState"] == "active")
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert "Watchdog timeout" in _journal(box)
    assert box.run("secprof", "is-ready").returncode == 0
    _fresh(box)


def test_bad_config_fails_once_without_restart_loop(box: Container) -> None:
    box.write(CONFIG, "[agent]\nno_such_key = 1\n")
    assert box.run("systemctl", "restart", "secprof", check=False).returncode != 0
    failed = _wait_for(box, "failed", lambda p: p["ActiveState"] == "failed")
    assert failed["ExecMainStatus"] == "78"
    time.sleep(5)  # more than twice RestartSec: a restart loop would have shown by now
    props = _show(box, "ActiveState", "NRestarts")
    assert (props["ActiveState"], props["NRestarts"]) == ("failed", "0")
    assert "no_such_key" in _journal(box)
    _fresh(box)


def test_stop_leaves_installed_profiles(box: Container) -> None:
    _fresh(box)
    box.run("systemctl", "stop", "secprof")
    assert _show(box, "ActiveState")["ActiveState"] == "inactive"
    for name in EXAMPLES:
        assert box.run("test", "-f", f"{SECCOMP}/{name}.json", check=False).returncode == 0
    box.run("systemctl", "start", "secprof")


def test_hardening_is_applied(box: Container) -> None:
    pid = _show(box, "MainPID")["MainPID"]
    status = box.run("cat", f"/proc/{pid}/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    # In the service's mount namespace /usr is read-only, its state directory is not.
    enter = ("nsenter", "-t", pid, "-m", "--")
    usr = box.run(*enter, "touch", "/usr/lib/secprof/probe", check=False)
    assert "Read-only file system" in usr.stderr
    box.run(*enter, "touch", "/var/lib/secprof/probe")
    box.run("rm", "/var/lib/secprof/probe")


def test_upgrade_keeps_a_changed_config_and_restarts(box: Container) -> None:
    _fresh(box)
    pid = _show(box, "MainPID")["MainPID"]
    changed = box.run("cat", CONFIG).stdout + "\n# changed by the administrator\n"
    box.write(CONFIG, changed)
    # Reinstalling is an upgrade to dpkg: prerm upgrade, unpack, postinst configure <old>.
    box.run("dpkg", "-i", "--force-confold", "/root/secprof.deb", timeout=300)
    assert box.run("cat", CONFIG).stdout == changed
    props = _show(box, "MainPID", "ActiveState")
    assert props["ActiveState"] == "active" and props["MainPID"] not in ("0", pid)
    assert box.run("find", "/usr/lib/secprof/lib", "-name", "__pycache__").stdout  # recompiled
    for name in EXAMPLES:
        assert box.run("test", "-f", f"{SECCOMP}/{name}.json", check=False).returncode == 0


def test_purge_stops_and_leaves_only_the_profiles(box: Container) -> None:
    # Runs last: it removes the package from this module's container.
    box.run("dpkg", "--purge", "secprof", timeout=300)
    assert box.run("systemctl", "is-active", "secprof", check=False).stdout.strip() in (
        "inactive", "unknown")
    for gone in ("/usr/lib/secprof", "/usr/bin/secprof", CONFIG, "/var/lib/secprof",
                 "/var/cache/secprof", "/run/secprof", "/lib/systemd/system/secprof.service",
                 "/etc/systemd/system/multi-user.target.wants/secprof.service"):
        assert box.run("test", "-e", gone, check=False).returncode == 1, gone
    assert box.run("getent", "group", "secprof", check=False).returncode == 2
    # Only what the administrator wrote stays in /etc/secprof (dpkg never removes what it did
    # not install), and what kubelet reads: running pods use it (README, "Install on a node").
    left = box.run("find", "/etc/secprof", "-type", "f").stdout.split()
    examples = sorted(p.name for p in (REPO / "examples/profiles.d").iterdir())
    assert sorted(Path(f).name for f in left) == examples
    assert box.run("test", "-f", f"{SECCOMP}/web-frontend.json", check=False).returncode == 0
