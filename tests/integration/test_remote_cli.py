"""``secprof status``, ``is-ready``, ``reconcile``, ``reload`` as a user runs them: the installed
command in a subprocess, against a live server and against none."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from agent.api.server import ApiServer
from agent.daemon.state import Outcome
from agent.reconcile.status import Report
from tests.support.control import MemoryControl, running, web_frontend

SECPROF = str(Path(sys.executable).parent / "secprof")


@pytest.fixture
def server_clock() -> Callable[[], float]:
    return time.time  # the CLI computes ages with the real clock, so the server must too


@pytest.fixture
def config(short_tmp: Path, socket_path: Path) -> Path:
    path = short_tmp / "config.toml"
    path.write_text(f'[agent]\nsocket = "{socket_path}"\nsocket_group = "nogroup"\n')
    return path


def secprof(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SECPROF, *args, "--config", str(config)], capture_output=True,
                          text=True, timeout=30, check=False)


@pytest.fixture
def live(control: MemoryControl, server: ApiServer) -> MemoryControl:
    control.current = running(time.time())
    return control


def test_status_summary_lists_only_what_needs_attention(live: MemoryControl,
                                                        config: Path) -> None:
    run = secprof(config, "status")
    assert run.returncode == 1, run.stderr  # one profile is in error
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "STATE", "AGE", "USAGE", "MESSAGE"]
    assert [line.split()[1] for line in lines[1:3]] == ["web-frontend", "broken"]
    assert lines[3] == ("1 more profile(s) need no attention; 'secprof status --all' lists "
                        "every one")
    assert re.match(r"1 error, 1 stale, 1 validated; last reconcile", lines[-1])


def test_status_summary_of_a_healthy_host_is_one_line(live: MemoryControl,
                                                      config: Path) -> None:
    snap = running(time.time())
    assert snap.report is not None
    live.current = replace(snap, report=replace(snap.report, profiles=(
        snap.report.profiles[-1],), file_errors=()))
    run = secprof(config, "status")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "KIND" not in run.stdout  # no table: nothing needs attention
    assert lines[0].startswith("1 more profile(s) need no attention")
    assert lines[-1].startswith("1 validated; last reconcile")


def test_status_table(live: MemoryControl, config: Path) -> None:
    run = secprof(config, "status", "--all")
    assert run.returncode == 1, run.stderr  # one profile is in error
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "STATE", "AGE", "USAGE", "MESSAGE"]
    assert lines[1].split() == ["seccomp", "web-frontend", "Stale", "2h",
                                "secprof/web-frontend.json"]  # the pod's localhostProfile
    assert lines[2].split()[:5] == ["seccomp", "broken", "Error", "3d", "-"]
    assert lines[2].endswith("spec.syscalls[0].action: unknown action 'ALLOW'")
    assert lines[3].split()[:3] == ["apparmor", "nginx", "Validated"]
    assert re.fullmatch(r"6\ds", lines[3].split()[3])  # no install time: since the reconcile
    assert "error: junk.yaml: not valid YAML" in lines
    assert "note: apparmor backend is compile-only: no AppArmor in this kernel" in lines
    assert re.match(r"1 error, 1 stale, 1 validated; last reconcile 6\ds ago in 0\.12 s, "
                    r"with errors; secprof 0\.1\.0 up 60m$", lines[-1])
    assert run.stderr == ""


def test_status_exits_0_when_all_is_well(live: MemoryControl, config: Path) -> None:
    snap = running(time.time())
    assert snap.report is not None
    live.current = replace(snap, report=replace(snap.report, profiles=(web_frontend(),),
                                                file_errors=()))
    assert secprof(config, "status").returncode == 0


def test_status_json(live: MemoryControl, config: Path) -> None:
    run = secprof(config, "status", "--json")
    doc = json.loads(run.stdout)
    assert run.returncode == 1
    assert doc["schema_version"] == 1
    assert [p["name"] for p in doc["profiles"]] == ["web-frontend", "broken"]
    doc = json.loads(secprof(config, "status", "--json", "--all").stdout)
    assert [p["name"] for p in doc["profiles"]] == ["web-frontend", "broken", "nginx"]
    assert doc["counts"]["Error"] == 1


def test_status_of_one_profile(live: MemoryControl, config: Path) -> None:
    run = secprof(config, "status", "seccomp/web-frontend")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith("SeccompProfile/web-frontend\n  state:     Stale (unchanged)\n")
    assert f"installed: sha256:{'c' * 64} (2h ago)" in out
    chain = out.split("chain (the profile first, then its bases):\n")[1].splitlines()
    assert chain[0].split() == ["#", "REFERENCE", "DIGEST", "SIGNER", "SOURCE"]
    assert chain[1].split() == ["0", "web-frontend", "sha256:" + "a" * 64, "-",
                                "web-frontend.yaml[0]"]
    assert chain[2].split() == ["1", "oci://registry.example:5000/profiles/runtime:v1",
                                "sha256:" + "b" * 64, "release@example.invalid", "(stale)",
                                "registry.example:5000/profiles/runtime"]
    assert ("merged syscalls (3 rule(s)):\n"
            "  SCMP_ACT_ALLOW: accept4, bind\n"
            "  SCMP_ACT_ALLOW: personality if arg0 SCMP_CMP_EQ 8\n"
            "  SCMP_ACT_ERRNO(1): ptrace\n") in out


def test_status_of_one_profile_json_and_errors(live: MemoryControl, config: Path) -> None:
    doc = json.loads(secprof(config, "status", "SeccompProfile/broken", "--json").stdout)
    assert doc["profile"]["state"] == "Error"
    assert secprof(config, "status", "seccomp/broken").returncode == 1

    run = secprof(config, "status", "seccomp/nope")
    assert run.returncode == 1
    assert run.stderr == "secprof: error: no SeccompProfile named 'nope' in the last reconcile\n"
    run = secprof(config, "status", "secomp/x")
    assert (run.returncode, run.stderr) == (1, "secprof: error: unknown kind 'secomp' (did you "
                                               "mean seccomp?)\n")
    run = secprof(config, "status", "web-frontend")
    assert run.returncode == 2
    assert "expected KIND/NAME" in run.stderr


def test_status_before_the_first_reconcile(control: MemoryControl, server: ApiServer,
                                           config: Path) -> None:
    run = secprof(config, "status")
    assert run.returncode == 1
    assert run.stdout.startswith("the daemon has not finished its first reconcile yet")


def test_is_ready(control: MemoryControl, server: ApiServer, config: Path) -> None:
    run = secprof(config, "is-ready")
    assert (run.returncode, run.stdout, run.stderr) == (1, "", "")
    control.current = running()
    run = secprof(config, "is-ready")
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")
    run = secprof(config, "is-ready", "--json")
    assert json.loads(run.stdout) == {"schema_version": 1, "ready": True}


@pytest.mark.parametrize("what", ["reconcile", "reload"])
def test_reconcile_and_reload(live: MemoryControl, config: Path, what: str) -> None:
    live.outcomes.append(Outcome(ok=True, report=Report(applied=True)))
    run = secprof(config, what, "--timeout", "7")
    assert (run.returncode, run.stdout) == (0, f"{what}: ok\n")
    live.outcomes.append(Outcome(ok=False, message="the worker is stopping"))
    run = secprof(config, what)
    assert run.returncode == 1
    assert run.stderr == f"secprof: error: {what} did not succeed: the worker is stopping\n"
    live.outcomes.append(Outcome(ok=False, message="nope", code="timeout"))
    doc = json.loads(secprof(config, what, "--json").stdout)
    assert doc["error"] == {"code": "timeout", "message": "nope"}
    assert live.calls == [(what, 7.0), (what, 60.0), (what, 60.0)]


@pytest.mark.parametrize("args", [("status",), ("status", "seccomp/x"), ("is-ready",),
                                  ("reconcile",), ("reload",)])
def test_no_daemon_is_69_with_a_hint(config: Path, socket_path: Path,
                                     args: tuple[str, ...]) -> None:
    run = secprof(config, *args)
    assert run.returncode == 69
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"secprof: error: the daemon's socket {socket_path} does not exist",
        "secprof: hint: is 'secprof daemon' running (systemctl status secprof)? Does [agent] "
        "socket in this config name the daemon's socket?",
    ]


def test_a_dead_daemons_socket_is_69(config: Path, socket_path: Path) -> None:
    socket_path.parent.mkdir()
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(socket_path))
    dead.close()
    run = secprof(config, "is-ready")
    assert run.returncode == 69
    assert f"nothing is listening on the daemon's socket {socket_path}" in run.stderr


def test_bad_timeout_is_a_usage_error(config: Path) -> None:
    run = secprof(config, "reconcile", "--timeout", "0")
    assert run.returncode == 2
    assert "expected seconds in (0, 600]" in run.stderr


HEAVY = ("yaml", "seccomp", "pyseccomp", "oras", "sigstore", "diskcache", "watchdog",
         "agent.reconcile", "agent.seccomp", "agent.model.manifests", "agent.backends",
         "agent.api.schema", "agent.daemon", "http.client", "ssl")


def test_status_imports_nothing_heavy(live: MemoryControl, config: Path,
                                     short_tmp: Path) -> None:
    # sys.modules after the command, not -X importtime: that one does not list a module that
    # importlib.import_module loads itself (agent.cli.remote).
    out = short_tmp / "modules.json"
    code = ("import json, sys; from agent.cli.main import main; "
            f"code = main(['status', '--config', {str(config)!r}]); "
            f"json.dump(sorted(sys.modules), open({str(out)!r}, 'w')); sys.exit(code)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30, check=False)
    assert run.returncode == 1, run.stderr  # it really ran, against the live server
    imported = json.loads(out.read_text())
    assert {"agent.cli.remote", "agent.api.client"} <= set(imported)
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []
