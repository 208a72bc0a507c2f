"""The real daemon: readiness, systemd notifications, signals, status API, drift repair."""

from __future__ import annotations

import json
import os
import signal
import stat

import pytest

from tests.conftest import Host, seccomp_doc
from tests.integration.daemon_support import DaemonProcess, api, running, wait_for

GOOD = seccomp_doc("good", """
    defaultAction: SCMP_ACT_ERRNO
    syscalls:
      - {names: [read, write], action: SCMP_ACT_ALLOW}
    """)


def agent_option(host: Host, line: str) -> None:
    text = host.config_path.read_text().replace("[agent]\n", f"[agent]\n{line}\n", 1)
    host.config_path.write_text(text)


def test_ready_only_after_the_first_reconcile(host: Host) -> None:
    host.write("good.yaml", GOOD)
    with running(host) as daemon:
        # READY=1 came after the file was written: readiness means "profiles exist"
        assert host.installed("good").exists()
        (ready,) = daemon.notify.seen("READY", "1")
        assert ready["STATUS"].startswith("1 profile(s): 1 installed")
        assert api(host, "GET", "/v1/readyz")[0] == 200
        status, body = api(host, "GET", "/v1/status")
        assert status == 200
        assert body["counts"]["Installed"] == 1
        assert sum(body["counts"].values()) == 1
        status, body = api(host, "GET", "/v1/profiles/SeccompProfile/good")
        assert status == 200
        detail = body["profile"]
        assert detail["syscalls"] == [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
        assert detail["location"] == str(host.installed("good"))
    assert daemon.proc.returncode == 0


def test_sigterm_stops_cleanly_and_never_unloads(host: Host) -> None:
    host.write("good.yaml", GOOD)
    daemon = DaemonProcess(host)
    daemon.ready()
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(20) == 0
    wait_for(lambda: daemon.notify.seen("STOPPING", "1"), what="STOPPING=1")
    assert host.installed("good").exists()
    assert not (host.socket).exists()
    daemon.stop()


def test_watchdog_pings_reach_systemd(host: Host) -> None:
    # How often it pings (half the timeout) and when it stops are tested on a fake clock in
    # tests/unit/test_daemon_loop.py; here, that the real process reads WATCHDOG_USEC and pings.
    with running(host, watchdog_usec=200_000) as daemon:
        wait_for(lambda: len(daemon.notify.seen("WATCHDOG", "1")) >= 3, 10, "3 WATCHDOG=1")


def test_status_is_kept_current(host: Host) -> None:
    with running(host) as daemon:
        host.write("good.yaml", GOOD)
        wait_for(lambda: any(m["STATUS"].startswith("1 profile(s)")
                             for m in daemon.notify.seen("STATUS")), what="STATUS update")


def test_broken_manifest_next_to_good_ones(host: Host) -> None:
    host.write("good.yaml", GOOD)
    host.write("bad.yaml", GOOD.replace("good", "bad").replace("SCMP_ACT_ALLOW", "SCMP_ACT_ALOW"))
    with running(host):
        assert host.installed("good").exists()
        status, body = api(host, "GET", "/v1/profiles/SeccompProfile/bad")
        assert status == 200
        assert body["profile"]["state"] == "Error"
        assert 'unknown action "SCMP_ACT_ALOW"' in body["profile"]["message"]
        metrics = api(host, "GET", "/metrics")[1]
        assert 'secprof_errors_total{code="manifest-invalid"}' in metrics


def test_drift_is_repaired_by_the_periodic_resync_and_counted(host: Host) -> None:
    agent_option(host, "resync_interval_s = 1")
    host.write("good.yaml", GOOD)
    host.write("other.yaml", GOOD.replace("good", "other"))
    with running(host):
        edited, deleted = host.installed("good"), host.installed("other")
        original = {path: path.read_bytes() for path in (edited, deleted)}
        edited.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
        deleted.unlink()
        wait_for(lambda: all(path.read_bytes() == data for path, data in original.items()), 10,
                 "edit and delete repaired")
        wait_for(lambda: "secprof_drift_repairs_total 2" in api(host, "GET", "/metrics")[1],
                 5, "drift counter")


def test_sighup_reloads_a_good_config_and_keeps_the_old_on_a_bad_one(host: Host) -> None:
    host.write("good.yaml", GOOD)
    with running(host) as daemon:
        moved = host.root / "var/lib/kubelet/seccomp/operator/good.json"
        host.config_path.write_text(host.config_path.read_text() + 'subdir = "operator"\n')
        daemon.signal(signal.SIGHUP)
        wait_for(moved.exists, 10, "install into the new subdir")
        reloading = daemon.notify.seen("RELOADING", "1")
        assert reloading and int(reloading[0]["MONOTONIC_USEC"]) > 0
        wait_for(lambda: len(daemon.notify.seen("READY", "1")) >= 2, what="READY after reload")

        host.config_path.write_text(host.config_path.read_text() + "bogus_key = 1\n")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: api(host, "GET", "/v1/status")[1]["lastReloadError"], 10,
                 "reload error reported")
        assert "bogus_key: unknown key" in api(host, "GET", "/v1/status")[1]["lastReloadError"]
        assert api(host, "GET", "/v1/readyz")[0] == 200
        host.write("good.yaml", GOOD.replace("read, write", "read, write, close"))
        wait_for(lambda: b'"close"' in moved.read_bytes(), 10, "still running on the old config")
    assert "keeping the running configuration" in daemon.output()


def test_reconcile_and_reload_through_the_api(host: Host) -> None:
    with running(host):
        host.write("good.yaml", GOOD)
        status, body = api(host, "POST", "/v1/reconcile")
        assert status == 200, body
        assert host.installed("good").exists()
        status, body = api(host, "POST", "/v1/reload")
        assert status == 200, body


def test_socket_and_directory_permissions(host: Host) -> None:
    with running(host):
        sock = host.socket
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o750


def test_a_burst_of_writes_is_coalesced(host: Host) -> None:
    with running(host):
        for i in range(40):
            host.write(f"p{i}.yaml", GOOD.replace("good", f"p{i}"))
        wait_for(lambda: all(host.installed(f"p{i}").exists() for i in range(40)), 10, "all")
        metrics = api(host, "GET", "/metrics")[1]
        reconciles = next(int(line.split()[-1]) for line in metrics.splitlines()
                          if line.startswith("secprof_reconcile_duration_seconds_count"))
        assert reconciles < 15  # 40 files, a handful of reconciles


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to lower the inotify queue limit")
def test_inotify_queue_overflow_loses_nothing(host: Host) -> None:
    limit = "/proc/sys/fs/inotify/max_queued_events"
    saved = open(limit).read()  # noqa: SIM115
    # The limit is read when an inotify instance is created: lower it only around the start.
    with open(limit, "w") as fh:
        fh.write("16\n")
    try:
        daemon = DaemonProcess(host)
        daemon.ready()
    finally:
        with open(limit, "w") as fh:
            fh.write(saved)
    try:
        for i in range(100):
            host.write(f"p{i}.yaml", GOOD.replace("good", f"p{i}"))
        wait_for(lambda: all(host.installed(f"p{i}").exists() for i in range(100)), 15, "all")
        assert "overflow" in daemon.output().lower()
    finally:
        daemon.stop()


def test_config_error_at_start_exits_78(host: Host) -> None:
    host.config_path.write_text("[agent]\nnope = 1\n")
    daemon = DaemonProcess(host)
    assert daemon.proc.wait(20) == 78
    daemon.stop()
    assert "nope: unknown key" in daemon.output()
    assert "Traceback" not in daemon.output()


def test_status_cli_against_the_daemon(host: Host) -> None:
    host.write("good.yaml", GOOD)
    with running(host):
        proc = host.cli("status", "--all")
        assert proc.returncode == 0, proc.stderr
        assert "good" in proc.stdout and "Installed" in proc.stdout
        assert host.cli("is-ready").returncode == 0
        doc = json.loads(host.cli("status", "--json").stdout)
        assert doc["schema_version"] == 1
    assert host.cli("is-ready").returncode == 69


def test_an_unusable_profiles_dir_holds_everything_and_says_why(host: Host) -> None:
    host.write("good.yaml", GOOD)
    host.cli("apply", check=True)
    blocker = host.root / "blocked"
    blocker.write_text("a file where the directory's parent should be")
    host.config_path.write_text(host.config_path.read_text().replace(
        str(host.profiles), str(blocker / "profiles.d")))
    with running(host) as daemon:
        assert host.installed("good").exists()  # nothing removed
        body = api(host, "GET", "/v1/profiles/SeccompProfile/good")[1]["profile"]
        assert body["state"] == "Error"
        assert "cannot be read" in body["message"]
        assert "cannot create the desired-state directory" in daemon.output()
