"""A registry-connected test host whose signing and trust point at a fake Sigstore."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent import app
from agent.config import load
from agent.oci.reference import parse
from agent.oci.registry import RegistryClient
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.payload import intoto_statement, simple_signing_payload
from agent.publish.attach import publish_bundle, publish_legacy
from agent.publish.pack import Packed
from agent.publish.upload import Uploader
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.support.fakesigstore_http import FakeServices
from tests.support.host import Host, seccomp_profile
from tests.support.registry import RegistryServer

ROOT = 'trusted_root = "trusted_root.json"'
KEYLESS = f'keyless = {{ issuer = "{ISSUER}", identity = "{IDENTITY}" }}\n{ROOT}'


@dataclass
class SignedHost(Host):
    registry: RegistryServer
    sigstore: FakeSigstore
    services: FakeServices

    @property
    def trusted_root(self) -> Path:
        return self.root / "trusted_root.json"

    @property
    def scope(self) -> str:
        return f"{self.registry.host}/profiles"

    def trust(self, entry: str, *, oci: dict[str, Any] | None = None) -> None:
        """Config: the registry over HTTP, signing through the fake services, and ``entry``
        (TOML lines of a [[trust]] entry, scope added) for ``<registry>/profiles``."""
        self.trusted_root.write_bytes(self.sigstore.trusted_root_json())
        signing = ("[signing]\n"
                   f"fulcio_url = {json.dumps(self.services.url)}\n"
                   f"rekor_url = {json.dumps(self.services.url)}\n"
                   'trusted_root = "trusted_root.json"\ntimeout_s = 30\n')
        trust = f"[[trust]]\nscope = {json.dumps(self.scope)}\n{entry}\n" if entry else ""
        self.write_config(insecure=[self.registry.host], oci=oci, extra=signing + trust)

    def ref(self, name: str, tag: str = "v1") -> str:
        return f"oci://{self.registry.host}/profiles/{name}:{tag}"

    def push(self, capsys: pytest.CaptureFixture[str], tmp_path: Path, ref: str, *flags: str,
             allow: tuple[str, ...] = ("futex",), name: str = "base") -> dict[str, Any]:
        """``secprof push`` of a profile allowing ``allow``; returns its JSON answer."""
        path = tmp_path / f"{name}-{'-'.join(allow)}.yaml"
        path.write_text(seccomp_profile(name, allow=list(allow)))
        code, doc = self.run_json(capsys, "push", *flags, "-f", str(path), ref)
        assert code == 0, doc
        return dict(doc)

    def client(self) -> RegistryClient:
        return app.build_registry(load(self.config))

    def attach_legacy(self, ref: str, digest: str, layer: LegacyLayer) -> str:
        return publish_legacy(Uploader(self.client()), parse(ref), digest, layer)

    def attach_bundle(self, ref: str, digest: str, bundle: bytes) -> str:
        size = len(self.registry.blob_path(digest).read_bytes())
        return publish_bundle(Uploader(self.client()), parse(ref), subject=digest,
                              subject_size=size, bundle=bundle, created="2026-01-01T00:00:00Z")

    def copy_tag(self, ref: str, source_tag: str, target_tag: str) -> None:
        """Copy the manifest tagged ``source_tag`` to ``target_tag`` (same repository)."""
        client, parsed = self.client(), parse(ref)
        found = client.tagged_manifest(parsed, source_tag, max_bytes=1 << 20)
        assert found is not None
        raw, media_type = found
        Uploader(client).put_manifest(parsed, target_tag,
                            Packed(manifest=raw, media_type=media_type, blobs={}))

    def name(self, ref: str) -> str:
        """The repository as a signature names it: ``host:port/path``."""
        return parse(ref).name


def payload(host: SignedHost, ref: str, digest: str) -> bytes:
    return simple_signing_payload(docker_reference=host.name(ref), digest=digest)


def statement(host: SignedHost, ref: str, digest: str) -> bytes:
    return intoto_statement(digest=digest, name=host.name(ref))
