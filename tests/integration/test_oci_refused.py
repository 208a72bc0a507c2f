"""Refused signatures through the real pipeline (registry, discovery, verification, reconcile):
each failure class has its own code, and the last good profile stays installed.

Every case starts from a host where a good, signed version of the base is installed; then a new
version is pushed to the same tag with the bad signature (or none), and apply runs again (the tag
TTL is 0: it is re-resolved every time). The file on disk must not change, and the profile's
state must be Error with the case's code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent import app
from agent.backends.seccomp import SeccompBackend
from agent.config import load
from agent.model.profile import Kind, ProfileKey
from agent.oci.reference import Reference, parse
from agent.oci.registry import RegistryClient
from agent.oci.signatures import legacy_tag
from agent.oci.signatures.legacy import BUNDLE, LegacyLayer
from agent.oci.signatures.payload import simple_signing_payload
from agent.reconcile.ledger import LedgerStore
from agent.reconcile.reconciler import Reconciler
from agent.reconcile.status import State
from agent.seccomp.driver import SeccompDriver
from tests.support.fakesigstore import FakeSigstore
from tests.support.host import seccomp_profile
from tests.support.signed import ROOT, SignedHost, payload, statement

# Anchored regexes throughout, so that the "unanchored" case is one of the matrix.
POLICY = ('keyless = { issuer_regex = "https://issuer\\\\.example\\\\.invalid", '
          'identity_regex = "release-bot@example\\\\.invalid" }\n' + ROOT)


@dataclass(frozen=True)
class Case:
    code: str
    # (host, foreign Sigstore, reference, new digest, old digest): attach the signature
    attach: Callable[[SignedHost, FakeSigstore, str, str, str], None]


def legacy(make: Callable[[SignedHost, FakeSigstore, str, str], LegacyLayer]
           ) -> Callable[[SignedHost, FakeSigstore, str, str, str], None]:
    def attach(host: SignedHost, foreign: FakeSigstore, ref: str, new: str, old: str) -> None:
        host.attach_legacy(ref, new, make(host, foreign, ref, new))
    return attach


def bad_set(host: SignedHost, foreign: FakeSigstore, ref: str, digest: str) -> LegacyLayer:
    good = host.sigstore.legacy_keyless(payload(host, ref, digest))
    entry = json.loads(good.annotations[BUNDLE])
    entry["SignedEntryTimestamp"] = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    return LegacyLayer(media_type=good.media_type, payload=good.payload,
                       annotations={**good.annotations, BUNDLE: json.dumps(entry)})


def tampered(host: SignedHost, foreign: FakeSigstore, ref: str, digest: str) -> LegacyLayer:
    good = host.sigstore.legacy_keyless(payload(host, ref, digest))
    # Same claims (this digest, this repository), other bytes: not what was signed and logged.
    altered = simple_signing_payload(docker_reference=host.name(ref), digest=digest,
                                     optional={"note": "altered"})
    return LegacyLayer(media_type=good.media_type, payload=altered, annotations=good.annotations)


def replayed(host: SignedHost, foreign: FakeSigstore, ref: str, new: str, old: str) -> None:
    """The good signature of the old digest, copied to the new digest's .sig tag."""
    host.copy_tag(ref, legacy_tag(old), legacy_tag(new))


def replayed_bundle(host: SignedHost, foreign: FakeSigstore, ref: str, new: str,
                    old: str) -> None:
    """A good bundle of the old digest, listed in the new digest's referrers index."""
    bundle = host.sigstore.bundle_keyless(statement(host, ref, old))
    referrer = host.attach_bundle(ref, old, bundle)
    client, parsed = host.client(), parse(ref)
    index = client.tagged_manifest(parsed, f"sha256-{old[7:]}", max_bytes=1 << 20)
    assert index is not None and referrer in index[0].decode()
    host.copy_tag(ref, f"sha256-{old[7:]}", f"sha256-{new[7:]}")


CASES = {
    "unsigned": Case("signature-missing", lambda *_: None),
    "wrong identity": Case("identity-mismatch", legacy(
        lambda h, f, r, d: h.sigstore.legacy_keyless(payload(h, r, d),
                                                     identity="mallory@example.invalid"))),
    "wrong issuer": Case("issuer-mismatch", legacy(
        lambda h, f, r, d: h.sigstore.legacy_keyless(payload(h, r, d),
                                                     issuer="https://other.invalid"))),
    "identity matching only an unanchored regex": Case("identity-mismatch", legacy(
        lambda h, f, r, d: h.sigstore.legacy_keyless(
            payload(h, r, d), identity="release-bot@example.invalid.evil.test"))),
    "foreign trust root": Case("certificate-untrusted", legacy(
        lambda h, f, r, d: f.legacy_keyless(payload(h, r, d)))),
    "certificate expired at signing time": Case("certificate-expired", legacy(
        lambda h, f, r, d: h.sigstore.legacy_keyless(
            payload(h, r, d), not_before=datetime.now(UTC) - timedelta(minutes=30)))),
    "bad SET": Case("tlog-invalid", legacy(bad_set)),
    "tampered payload": Case("payload-tampered", legacy(tampered)),
    "signature replayed from another digest": Case("digest-mismatch", replayed),
    "bundle replayed from another digest": Case("digest-mismatch", replayed_bundle),
    "signature for another repository": Case("repository-mismatch", legacy(
        lambda h, f, r, d: h.sigstore.legacy_keyless(
            payload(h, h.ref("elsewhere"), d)))),
    "bundle for another repository": Case("repository-mismatch", lambda h, f, r, new, old: (
        h.attach_bundle(r, new, h.sigstore.bundle_keyless(statement(h, h.ref("elsewhere"),
                                                                    new))) and None)),
}


@pytest.fixture
def host(signed_host: SignedHost) -> SignedHost:
    signed_host.trust(POLICY, oci={"tag_ttl_s": 0})
    return signed_host


def installed_good(host: SignedHost, capsys: pytest.CaptureFixture[str],
                   tmp_path: Path) -> tuple[str, str, bytes]:
    """Push and sign v1, install ``app`` on it; returns (ref, v1 digest, installed bytes)."""
    ref = host.ref("base")
    old = host.push(capsys, tmp_path, ref, "--identity-token", host.services.token(),
                    allow=("futex",))["digest"]
    host.write_profile("app", seccomp_profile("app", base=ref))
    code, report = host.run_json(capsys, "apply")
    assert code == 0, report["profiles"]
    return ref, old, host.installed("app").read_bytes()


@pytest.mark.parametrize("name", list(CASES))
def test_refused_and_the_last_good_profile_stays(
        host: SignedHost, foreign: FakeSigstore, capsys: pytest.CaptureFixture[str],
        tmp_path: Path, name: str) -> None:
    case = CASES[name]
    ref, old, installed = installed_good(host, capsys, tmp_path)
    new = host.push(capsys, tmp_path, ref, "--sign=none", allow=("futex", "ptrace"))["digest"]
    case.attach(host, foreign, ref, new, old)

    code, report = host.run_json(capsys, "apply")
    [status] = report["profiles"]
    assert (code, status["state"], status["errorCode"]) == (1, "Error", case.code), status
    assert new in status["message"]
    assert host.installed("app").read_bytes() == installed  # the last good stays


def test_distinct_failure_classes_have_distinct_codes() -> None:
    """Nine classes, nine codes: the bundle cases are the legacy classes in the other format,
    and an identity that matches only unanchored is an identity mismatch."""
    assert len({case.code for case in CASES.values()}) == 9


class MovingTag:
    """A registry client that moves the tag to ``then`` right after answering a resolve: the
    window between resolving a tag and verifying what it named."""

    def __init__(self, client: RegistryClient, ref: str, then: str) -> None:
        self._client = client
        self._then = then
        self._tag = parse(ref)
        self.resolved: list[str] = []

    def resolve(self, ref: Reference) -> str:
        digest = self._client.resolve(ref)
        self.resolved.append(digest)
        raw = self._client.manifest(ref, self._then)
        from agent.publish.pack import Packed  # noqa: PLC0415
        from agent.publish.upload import Uploader  # noqa: PLC0415

        media_type = json.loads(raw)["mediaType"]
        Uploader(self._client).put_manifest(
            ref, ref.tag, Packed(manifest=raw, media_type=media_type, blobs={}))
        return digest

    def __getattr__(self, name: str) -> object:  # manifest, blob, tagged_manifest, referrers
        return getattr(self._client, name)


def reconcile_with(host: SignedHost, registry: MovingTag) -> tuple[State, str, str]:
    config = load(host.config)
    source = app.build_oci_source(config, registry=lambda: registry)  # type: ignore[arg-type]
    driver = SeccompDriver(SeccompBackend(config.seccomp.root, config.seccomp.subdir),
                           max_depth=config.seccomp.max_base_depth, oci=source)
    reconciler = Reconciler(drivers=[driver], ledger=LedgerStore(config.agent.state_dir))
    report = reconciler.reconcile(app.load_desired(config))
    [status] = [p for p in report.profiles if p.key == ProfileKey(Kind.SECCOMP, "app")]
    return status.state, status.error_code or "", status.message


def test_a_tag_moved_between_resolve_and_verify_changes_nothing(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ref, signed, _ = installed_good(host, capsys, tmp_path)
    unsigned = host.push(capsys, tmp_path, ref, "--sign=none", allow=("ptrace",))["digest"]

    # Resolved to the unsigned artifact; the tag then moves back to the signed one before the
    # signatures are looked for. They are looked for the digest resolved: refused.
    moving = MovingTag(host.client(), ref, then=signed)
    state, code, message = reconcile_with(host, moving)
    assert moving.resolved == [unsigned]
    assert (state, code) == (State.ERROR, "signature-missing")
    assert unsigned in message
    assert "ptrace" not in host.installed("app").read_text()

    # And the other way: resolved to the signed artifact, the tag moved to the unsigned one
    # before verification and fetch: the signed artifact is what is verified and installed.
    host.run(capsys, "cache", "clear")
    moving = MovingTag(host.client(), ref, then=unsigned)
    state, code, _ = reconcile_with(host, moving)
    assert moving.resolved == [signed]
    assert (state, code) == (State.INSTALLED, "")
    assert "ptrace" not in host.installed("app").read_text()
