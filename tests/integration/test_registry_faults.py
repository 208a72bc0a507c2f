"""Registry faults are that link's error, within the deadline (issue 9, deliverables 2 and 7).

The registry is the real one (Debian's docker-registry); the faults come from a small proxy in
front of it (:mod:`tests.support.faultproxy`) that sends headers slowly, redirects in a loop,
to another scheme or out of the trust scope, or serves a deeply nested manifest. Each apply
also holds a local profile, which must install whatever the registry does; the base's profile
fails with a code (exit 1, never 70), keeps its last good version, and its failure is remembered
with a backoff, so the next apply does not ask the registry again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent import app
from agent.config import load
from agent.oci.artifact import Format, Platform
from agent.oci.reference import parse
from agent.publish.pack import pack
from agent.publish.upload import Uploader
from agent.seccomp.render import digest
from tests.support.faultproxy import (
    FaultProxy,
    answer,
    delayed,
    fault_proxy,
    redirect,
    slow_headers,
)
from tests.support.host import Host, seccomp_profile
from tests.support.registry import RegistryServer

# Small enough that no test waits much more than half a second for a deadline.
FAST = {"timeout_s": 0.5, "connect_timeout_s": 0.2, "retries": 0}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
NESTED = b"[" * 200_000 + b"]" * 200_000  # deeper than Python's parser recursion allows


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with fault_proxy(registry.host) as running:
        yield running


@pytest.fixture
def host(tmp_path: Path, registry: RegistryServer, proxy: FaultProxy) -> Host:
    """A host that reaches the registry through the proxy, and takes its profiles/ unsigned."""
    machine = Host(tmp_path / "host")
    machine.root.mkdir()
    configure(machine, registry, proxy)
    return machine


def configure(host: Host, registry: RegistryServer, proxy: FaultProxy, *, extra: str = "",
              trust: tuple[str, ...] | None = None, **oci: Any) -> None:
    host.write_config(insecure=[registry.host, proxy.host],
                      trust=[f"{proxy.host}/profiles"] if trust is None else trust,
                      oci={**FAST, **oci}, extra=extra)


def push_base(host: Host, registry: RegistryServer, text: str | None = None) -> str:
    """Push a base straight to the registry (no proxy); returns its manifest digest."""
    data = (text or seccomp_profile("base", allow=["futex"])).encode()
    packed = pack(Format.SPO, [(Platform.host(), data)], {}, "2026-01-01T00:00:00Z")
    return Uploader(app.build_registry(load(host.config))).push(
        parse(f"oci://{registry.host}/profiles/base:v1"), packed)


def apply(host: Host, proxy: FaultProxy, capsys: pytest.CaptureFixture[str]
          ) -> tuple[int, dict[str, dict[str, Any]]]:
    """``secprof apply`` of a local profile and one on the proxied base: (exit, rows by name)."""
    host.write_profile("local", seccomp_profile("local", allow=["read"]))
    host.write_profile("app", seccomp_profile(
        "app", base=f"oci://{proxy.host}/profiles/base:v1", allow=["write"]))
    code, report = host.run_json(capsys, "apply")
    return code, {row["name"]: row for row in report["profiles"]}


def failed_with(code: int, rows: dict[str, dict[str, Any]], host: Host, error: str) -> None:
    assert code == 1, rows
    assert rows["local"]["state"] == "Installed"
    assert host.installed("local").exists()
    assert rows["app"]["state"] == "Error"
    assert rows["app"]["errorCode"] == error, rows["app"]


def test_headers_sent_slowly_end_at_the_deadline(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    push_base(host, registry)
    # Each byte comes well within the read timeout; the whole head would take ~10 s.
    proxy.add("HEAD", r"/manifests/v1$", slow_headers(0.05))
    started = time.monotonic()
    code, rows = apply(host, proxy, capsys)
    assert time.monotonic() - started < 3.0
    failed_with(code, rows, host, "registry-unreachable")
    assert "timed out" in rows["app"]["message"]


def test_one_base_is_one_deadline_however_many_requests_it_takes(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Each answer comes in time for its own request (0.2 s of 0.5 s), but the three a base
    needs (tag, manifest, profile) do not fit in one deadline."""
    push_base(host, registry)
    for method in ("HEAD", "GET"):
        proxy.add(method, r"/v2/profiles/", delayed(0.2))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "registry-unreachable")
    assert "timed out" in rows["app"]["message"]


def test_a_redirect_loop_is_that_links_error(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    push_base(host, registry)
    proxy.add("HEAD", r"/manifests/v1$", redirect(f"http://{proxy.host}{{path}}"))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "registry-redirect-loop")
    # Followed a bounded number of times: the first request and five redirects.
    assert proxy.seen.count(("HEAD", "/v2/profiles/base/manifests/v1")) == 6


@pytest.mark.parametrize(("target", "error", "why"), [
    ("ftp://{proxy}{path}", "registry-redirect-refused", "not an http(s) URL"),
    ("file:///etc/passwd", "registry-redirect-refused", "not an http(s) URL"),
    ("http://[::1/v2/profiles/base/manifests/v1", "registry-protocol", "Invalid IPv6 URL"),
])
def test_a_redirect_to_another_scheme_is_refused(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str], target: str, error: str, why: str) -> None:
    push_base(host, registry)
    proxy.add("HEAD", r"/manifests/v1$", redirect(target.replace("{proxy}", proxy.host)))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, error)
    assert why in rows["app"]["message"]


def test_a_redirect_out_of_the_trust_scope_is_refused(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    push_base(host, registry)
    # The same registry, a repository no [[trust]] entry covers (it exists there).
    Uploader(app.build_registry(load(host.config))).push(
        parse(f"oci://{registry.host}/elsewhere/base:v1"),
        pack(Format.SPO, [(Platform.host(), seccomp_profile("evil").encode())], {},
             "2026-01-01T00:00:00Z"))
    proxy.add("HEAD", r"/profiles/base/manifests/v1$",
              redirect(f"http://{proxy.host}/v2/elsewhere/base/manifests/v1"))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "registry-redirect-refused")
    assert "outside the trust scope" in rows["app"]["message"]
    assert ("HEAD", "/v2/elsewhere/base/manifests/v1") not in proxy.seen


def test_a_deeply_nested_manifest_is_that_links_error(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Under ``verify = false`` the manifest is parsed right after its digest check."""
    push_base(host, registry)
    nested = digest(NESTED)
    proxy.add("HEAD", r"/manifests/v1$", answer(b"", {"Docker-Content-Digest": nested,
                                                       "Content-Type": MANIFEST_TYPE}))
    proxy.add("GET", rf"/manifests/{nested}$", answer(NESTED, {"Content-Type": MANIFEST_TYPE}))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "manifest-invalid")
    assert "nested too deeply" in rows["app"]["message"]


def test_a_deeply_nested_signature_manifest_is_that_links_error(
        host: Host, registry: RegistryServer, proxy: FaultProxy, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Signature manifests are parsed before any signature is checked."""
    public = tmp_path / "cosign.pub"
    public.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    configure(host, registry, proxy, trust=(), extra=(
        f'[[trust]]\nscope = "{proxy.host}/profiles"\npublic_keys = ["{public}"]\n'))
    pushed = push_base(host, registry)
    proxy.add("GET", rf"/manifests/sha256-{pushed.removeprefix('sha256:')}\.sig$",
              answer(NESTED, {"Content-Type": MANIFEST_TYPE}))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "signature-malformed")
    assert "nested too deeply" in rows["app"]["message"]


def test_an_artifact_with_an_impossible_date_is_that_links_error(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    text = seccomp_profile("base", allow=["futex"]).replace(
        "metadata:\n", "metadata:\n  creationTimestamp: 2024-02-30T00:00:00Z\n")
    push_base(host, registry, text)
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "artifact-invalid")


def test_the_last_good_stays_and_the_failure_backs_off(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    configure(host, registry, proxy, tag_ttl_s=0)  # every apply asks the registry
    push_base(host, registry)
    code, rows = apply(host, proxy, capsys)
    assert code == 0, rows
    good = host.installed("app").read_bytes()

    proxy.add("HEAD", r"/manifests/v1$", redirect(f"http://{proxy.host}{{path}}"))
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "registry-redirect-loop")
    assert host.installed("app").read_bytes() == good
    code, listing = host.run_json(capsys, "cache", "list")
    assert [f["code"] for f in listing["failures"]] == ["registry-redirect-loop"]

    asked = len(proxy.seen)
    code, rows = apply(host, proxy, capsys)
    failed_with(code, rows, host, "registry-redirect-loop")
    assert "next attempt in" in rows["app"]["message"]
    assert len(proxy.seen) == asked  # backed off: the registry was not asked again
    assert host.installed("app").read_bytes() == good


def test_the_proxy_passes_what_it_does_not_fault(
        host: Host, registry: RegistryServer, proxy: FaultProxy,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The control: without faults, the same apply installs both profiles."""
    push_base(host, registry)
    code, rows = apply(host, proxy, capsys)
    assert code == 0, rows
    assert {name: row["state"] for name, row in rows.items()} == {
        "app": "Installed", "local": "Installed"}
    assert {n for rule in json.loads(host.installed("app").read_text())["syscalls"]
            for n in rule["names"]} == {"futex", "write"}
