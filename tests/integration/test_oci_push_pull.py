"""secprof push / pull against a real registry: formats, platforms, tampering, caps, auth."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agent import app
from agent.config import load
from agent.errors import RegistryError
from agent.oci.artifact import SPO_ARTIFACT_TYPE, Format, Platform
from agent.oci.reference import parse
from agent.publish.pack import Packed, pack
from agent.publish.upload import Uploader
from agent.seccomp.render import digest
from tests.support.host import Host, seccomp_profile
from tests.support.registry import RegistryServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def host(oci_host: Host) -> Host:
    """The registry-connected host (tests/integration/conftest.py) under its short name."""
    return oci_host


def push(host: Host, capsys: pytest.CaptureFixture[str], ref: str, *args: str) -> str:
    code, doc = host.run_json(capsys, "push", "--sign=none", *args, ref)
    assert code == 0, doc
    return str(doc["digest"])


def test_round_trip_by_tag_and_by_digest_with_several_platforms(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    amd, arm = tmp_path / "amd.yaml", tmp_path / "arm.yaml"
    amd.write_text(seccomp_profile("base", allow=["read"]))
    arm.write_text(seccomp_profile("base", allow=["write"]))
    ref = f"{registry.host}/profiles/base:v1"
    pushed = push(host, capsys, ref, "-f", str(amd), "-p", "linux/amd64", "-f", str(arm),
                  "-p", "linux/arm64", "-a", "team:sec", "-a", "url:https://example.invalid")

    out = tmp_path / "pulled.yaml"
    code, doc = host.run_json(capsys, "pull", f"oci://{ref}", "-p", "linux/arm64", "-o",
                              str(out))
    assert code == 0
    assert out.read_bytes() == arm.read_bytes()
    assert (doc["digest"], doc["title"]) == (pushed, "profile-linux-arm64.yaml")

    code, doc = host.run_json(capsys, "pull", f"{registry.host}/profiles/base@{pushed}",
                              "-p", "linux/amd64")
    assert code == 0
    assert doc["content"] == amd.read_text()

    manifest = json.loads(registry.blob_path(pushed).read_bytes())
    assert manifest["artifactType"] == SPO_ARTIFACT_TYPE
    assert [layer["annotations"] for layer in manifest["layers"]] == [
        {"org.opencontainers.image.title": f"profile-linux-{arch}.yaml", "team": "sec",
         "url": "https://example.invalid"} for arch in ("amd64", "arm64")]


def test_kep6061_round_trip(host: Host, registry: RegistryServer,
                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plain = FIXTURES / "plain-runtime.json"
    ref = f"{registry.host}/profiles/runtime:v1"
    push(host, capsys, ref, "--format", "kep6061", "-f", str(plain))
    code, out, err = host.run(capsys, "pull", ref, "-p", "linux/s390x")
    assert code == 0, err
    assert out.encode() == plain.read_bytes()
    assert "profile.json" in err


def test_the_older_spo_shape_without_artifact_type(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str]) -> None:
    data = seccomp_profile("old", allow=["close"]).encode()
    current = json.loads(pack(Format.SPO, [(Platform.host(), data)], {}, "x").manifest)
    del current["artifactType"]
    current["config"] = {"mediaType": "application/vnd.unknown.config.v1+json",
                         "digest": digest(b"{}"), "size": 2}
    raw = json.dumps(current).encode()
    ref = parse(f"oci://{registry.host}/profiles/old:v0.8")
    config = load(host.config)
    Uploader(app.build_registry(config)).push(ref, Packed(
        manifest=raw, media_type="application/vnd.oci.image.manifest.v1+json",
        blobs={digest(b"{}"): b"{}", digest(data): data}))
    fetched = app.build_oci_source(config).fetch(str(ref))
    assert fetched.link.digest == digest(raw)
    assert [rule.names for rule in fetched.spec.syscalls] == [("close",)]


@pytest.mark.parametrize(("change", "message"), [
    ((b"read", b"kill"), "altered"),  # same size, other bytes: the sha256 tells
    ((b"read", b"ptrace"), "sent more than"),  # longer: refused before it is all read
])
def test_a_blob_tampered_on_the_registry_is_refused(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, change: tuple[bytes, bytes], message: str) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(seccomp_profile("base", allow=["read"]))
    ref = f"{registry.host}/profiles/base:v1"
    push(host, capsys, ref, "-f", str(profile))
    blob = registry.blob_path(digest(profile.read_bytes()))
    blob.write_bytes(blob.read_bytes().replace(*change))
    code, out, err = host.run(capsys, "pull", ref)
    assert code == 1
    assert message in err
    assert out == ""


def test_an_oversize_base_is_refused_before_download(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    profile = tmp_path / "big.yaml"
    profile.write_text(seccomp_profile("big", allow=[f"call_{i}" for i in range(60)]))
    ref = f"oci://{registry.host}/profiles/big:v1"
    push(host, capsys, ref, "-f", str(profile))
    host.write_config(insecure=[registry.host], trust=[f"{registry.host}/profiles"],
                      oci={"max_profile_bytes": 512})
    host.write_profile("app", seccomp_profile("app", base=ref))
    code, report = host.run_json(capsys, "apply")
    assert code == 1
    [status] = report["profiles"]
    assert (status["state"], status["errorCode"]) == ("Error", "profile-too-large")
    assert "more than max_profile_bytes (512)" in status["message"]
    assert not host.installed("app").exists()


def test_push_refuses_what_no_host_would_take(
        host: Host, registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(seccomp_profile("bad").replace("SCMP_ACT_ALLOW", "SCMP_ACT_PERMIT"))
    ref = f"{registry.host}/profiles/bad:v1"
    code, _, err = host.run(capsys, "push", "--sign=none", "-f", str(bad), ref)
    assert code == 1
    assert "SCMP_ACT_PERMIT" in err
    code, _, err = host.run(capsys, "push", "-f", str(bad), ref)
    assert code == 2
    assert "--sign=none" in err


def auth_file(path: Path, host: str, user: str, password: str) -> Path:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


def test_credentials_from_the_auth_file(
        auth_registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    machine = Host(tmp_path / "auth-host")
    machine.root.mkdir()
    profile = tmp_path / "p.yaml"
    profile.write_text(seccomp_profile("base"))
    ref = f"{auth_registry.host}/profiles/base:v1"
    trust = [f"{auth_registry.host}/profiles"]

    machine.write_config(insecure=[auth_registry.host], trust=trust)
    code, _, err = machine.run(capsys, "push", "--sign=none", "-f", str(profile), ref)
    assert code == 1
    assert "requires authentication and there are no credentials" in err

    wrong = auth_file(tmp_path / "wrong.json", auth_registry.host, "alice", "looking-glass")
    machine.write_config(insecure=[auth_registry.host], trust=trust,
                         oci={"auth_file": str(wrong)})
    code, _, err = machine.run(capsys, "push", "--sign=none", "-f", str(profile), ref)
    assert code == 1
    assert "rejected the credentials of user 'alice'" in err
    assert "looking-glass" not in err

    right = auth_file(tmp_path / "right.json", auth_registry.host, "alice", "wonderland")
    machine.write_config(insecure=[auth_registry.host], trust=trust,
                         oci={"auth_file": str(right)})
    code, _, err = machine.run(capsys, "push", "--sign=none", "-f", str(profile), ref)
    assert code == 0, err
    code, out, err = machine.run(capsys, "pull", ref)
    assert code == 0, err
    assert out == profile.read_text()
    assert json.loads(right.read_text())["auths"]  # read, never rewritten


def test_wrong_credentials_for_a_base_are_a_clear_error(
        auth_registry: RegistryServer, tmp_path: Path) -> None:
    machine = Host(tmp_path / "auth-host")
    machine.root.mkdir()
    wrong = auth_file(tmp_path / "wrong.json", auth_registry.host, "alice", "nope")
    machine.write_config(insecure=[auth_registry.host],
                         trust=[f"{auth_registry.host}/profiles"], oci={"auth_file": str(wrong)})
    source = app.build_oci_source(load(machine.config))
    with pytest.raises(RegistryError) as info:
        source.fetch(f"oci://{auth_registry.host}/profiles/base:v1")
    assert info.value.code == "registry-auth-failed"
    assert "alice" in info.value.message


def test_username_flag_with_password_from_the_environment(
        auth_registry: RegistryServer, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine = Host(tmp_path / "auth-host")
    machine.root.mkdir()
    machine.write_config(insecure=[auth_registry.host],
                         trust=[f"{auth_registry.host}/profiles"])
    profile = tmp_path / "p.yaml"
    profile.write_text(seccomp_profile("base"))
    ref = f"oci://{auth_registry.host}/profiles/base:v1"
    monkeypatch.delenv("PASSWORD", raising=False)
    code, _, err = machine.run(capsys, "push", "--sign=none", "-u", "alice", "-f",
                               str(profile), ref)
    assert code == 2
    assert "PASSWORD" in err
    monkeypatch.setenv("PASSWORD", "wonderland")
    code, _, err = machine.run(capsys, "push", "--sign=none", "-u", "alice", "-f",
                               str(profile), ref)
    assert code == 0, err
    code, out, err = machine.run(capsys, "pull", "-u", "alice", ref)
    assert code == 0, err
    assert out == profile.read_text()
