"""oci:// bases end to end: apply, chains, a moved tag, an outage, a restart without network."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import app
from agent.config import load
from agent.oci.artifact import Platform
from agent.oci.cache import OciCache
from agent.oci.source import OciSource, SourceSettings
from agent.oci.trust import TrustStore
from agent.oci.verification import Verifier
from tests.support.clock import FakeClock
from tests.support.host import Host, seccomp_profile
from tests.support.registry import RegistryServer

SECPROF = Path(sys.executable).with_name("secprof")


@pytest.fixture
def host(oci_host: Host) -> Host:
    """The registry-connected host (tests/integration/conftest.py) under its short name."""
    return oci_host


def push(host: Host, capsys: pytest.CaptureFixture[str], tmp_path: Path, ref: str,
         text: str) -> str:
    path = tmp_path / "push.yaml"
    path.write_text(text)
    code, doc = host.run_json(capsys, "push", "--sign=none", "-f", str(path), ref)
    assert code == 0, doc
    return str(doc["digest"])


def syscalls(path: Path) -> set[str]:
    return {n for rule in json.loads(path.read_text())["syscalls"] for n in rule["names"]}


def test_apply_installs_the_merged_profile_and_shows_the_chain(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    runtime = f"oci://{registry.host}/profiles/runtime:v1"
    company = f"oci://{registry.host}/profiles/company:v2"
    runtime_digest = push(host, capsys, tmp_path, runtime,
                          seccomp_profile("runtime", allow=["futex"]))
    # A pulled base may name another oci:// base, and a local one.
    company_digest = push(host, capsys, tmp_path, company,
                          seccomp_profile("company", base=runtime, allow=["openat"]))
    host.write_profile("app", seccomp_profile("app", base=company, allow=["read"]))

    code, report = host.run_json(capsys, "apply")
    assert code == 0, report
    assert [p["state"] for p in report["profiles"]] == ["Installed"]
    assert syscalls(host.installed("app")) == {"read", "openat", "futex"}

    code, resolved = host.run_json(capsys, "resolve", "app")
    assert code == 0
    assert [(link["reference"], link["digest"]) for link in resolved["chain"][1:]] == [
        (company, company_digest), (runtime, runtime_digest)]
    code, out, _ = host.run(capsys, "resolve", "app")
    assert company in out
    assert runtime_digest in out


def test_a_cycle_through_the_registry_is_reported(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    loop = f"oci://{registry.host}/profiles/loop:v1"
    push(host, capsys, tmp_path, loop, seccomp_profile("loop", base=loop))
    host.write_profile("app", seccomp_profile("app", base=loop))
    code, report = host.run_json(capsys, "apply")
    assert code == 1
    [status] = report["profiles"]
    assert status["errorCode"] == "base-cycle"
    assert f"app → {loop} → {loop}" in status["message"]


def test_an_untrusted_repository_is_refused(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    ref = f"oci://{registry.host}/elsewhere/base:v1"
    push(host, capsys, tmp_path, ref, seccomp_profile("base"))
    host.write_profile("app", seccomp_profile("app", base=ref))
    code, report = host.run_json(capsys, "apply")
    assert code == 1
    assert report["profiles"][0]["errorCode"] == "untrusted-repository"


def test_a_moved_tag_changes_nothing_until_the_ttl_passes(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    ref = f"oci://{registry.host}/profiles/base:v1"
    first = push(host, capsys, tmp_path, ref, seccomp_profile("base", allow=["read"]))
    config = load(host.config)
    clock = FakeClock()
    trust = TrustStore(config.trust)
    cache = OciCache(tmp_path / "cache", max_entries=10, max_bytes=1 << 20, clock=clock)
    source = OciSource(
        trust=trust,
        cache=cache,
        verifier=Verifier(trust=trust, cache=cache, clock=clock),
        registry=lambda: app.build_registry(config),
        settings=SourceSettings(tag_ttl_s=600), platform=Platform.host(), clock=clock,
    )
    assert source.fetch(ref).link.digest == first
    moved = push(host, capsys, tmp_path, ref, seccomp_profile("base", allow=["write"]))
    clock.advance(599)
    assert source.fetch(ref).link.digest == first
    clock.advance(1)
    fetched = source.fetch(ref)
    assert fetched.link.digest == moved != first
    assert [rule.names for rule in fetched.spec.syscalls] == [("write",)]


def test_registry_down_keeps_the_profile_installed_and_stale(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    ref = f"oci://{registry.host}/profiles/base:v1"
    pushed = push(host, capsys, tmp_path, ref, seccomp_profile("base", allow=["futex"]))
    host.write_config(insecure=[registry.host], trust=[f"{registry.host}/profiles"],
                      # ask the registry every time; retry one second after a failure
                      oci={"tag_ttl_s": 0, "timeout_s": 2, "failure_backoff_s": 1})
    host.write_profile("app", seccomp_profile("app", base=ref))
    assert host.run_json(capsys, "apply")[0] == 0
    installed = host.installed("app").read_bytes()

    registry.stop()
    code, report = host.run_json(capsys, "apply")
    assert code == 0
    [status] = report["profiles"]
    assert status["state"] == "Stale"
    assert "connection refused" in status["message"]
    assert pushed in status["message"]
    assert host.installed("app").read_bytes() == installed

    # A new process, the registry still down, the installed file gone: it is rebuilt from the
    # disk cache alone.
    host.installed("app").unlink()
    result = subprocess.run([str(SECPROF), "apply", "--config", str(host.config), "--json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    [status] = json.loads(result.stdout)["profiles"]
    assert (status["state"], status["step"]) == ("Stale", "repair")
    assert host.installed("app").read_bytes() == installed

    # Back up, and the backoff over: the tag is confirmed and the profile is Installed again.
    registry.start()
    # Until the last failure's retry is due (later than 1 s if a slow machine failed twice).
    failures = host.run_json(capsys, "cache", "list")[1]["failures"]
    time.sleep(max(0.0, max(f["retryAt"] for f in failures) - time.time()) + 0.05)
    assert host.run_json(capsys, "apply")[1]["profiles"][0]["state"] == "Installed"


def test_a_new_process_within_the_ttl_needs_neither_registry_nor_http_stack(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    ref = f"oci://{registry.host}/profiles/base:v1"
    push(host, capsys, tmp_path, ref, seccomp_profile("base", allow=["futex"]))
    host.write_profile("app", seccomp_profile("app", base=ref))
    assert host.run_json(capsys, "apply")[0] == 0
    registry.stop()
    host.installed("app").unlink()
    # Served from the disk cache without even importing the HTTP stack (oras-py, requests).
    script = ("import json, sys\nfrom agent.cli.main import main\n"
              f"code = main(['apply', '--config', {str(host.config)!r}, '--json'])\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('oras', 'requests'))\n"
              "print(json.dumps({'code': code, 'heavy': heavy}))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    *report, last = result.stdout.strip().splitlines()
    assert json.loads(last) == {"code": 0, "heavy": []}, result.stderr
    assert json.loads("\n".join(report))["profiles"][0]["state"] == "Installed"
    assert syscalls(host.installed("app")) == {"read", "futex"}


def test_cache_commands(host: Host, registry: RegistryServer,
                        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ref = f"oci://{registry.host}/profiles/base:v1"
    pushed = push(host, capsys, tmp_path, ref, seccomp_profile("base"))
    host.write_profile("app", seccomp_profile("app", base=ref))
    assert host.run_json(capsys, "apply")[0] == 0
    code, listing = host.run_json(capsys, "cache", "list")
    assert code == 0
    [entry] = listing["references"]
    assert (entry["reference"], entry["digest"], entry["fresh"]) == (ref, pushed, True)
    assert listing["content"]["entries"] == 1
    code, out, _ = host.run(capsys, "cache", "list")
    assert ref in out
    assert "fresh" in out
    assert host.run_json(capsys, "cache", "prune")[1]["removed"] == 0
    assert host.run_json(capsys, "cache", "clear")[1]["removed"] == 2
    assert host.run_json(capsys, "cache", "list")[1]["references"] == []
