"""Signed oci:// bases end to end: secprof push signs (keyless through the fake Fulcio and Rekor,
or with a key), apply verifies before installing, the status shows the signer; verification
from the disk cache in a new process; secprof verify."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.app import oci_cache
from agent.config import load
from agent.oci.signatures import legacy_tag, referrers_tag
from agent.oci.signatures.checks import key_fingerprint
from agent.oci.signatures.legacy import BUNDLE as COSIGN_BUNDLE
from agent.publish.keys import encrypted_key_pem
from agent.publish.sign import sign_legacy_with_key
from tests.support.fakesigstore import IDENTITY, ISSUER, FakeSigstore
from tests.support.host import seccomp_profile
from tests.support.signed import KEYLESS, SignedHost, payload

SECPROF = Path(sys.executable).with_name("secprof")
KEYLESS_SIGNER = f"{IDENTITY} ({ISSUER})"


@pytest.fixture
def host(signed_host: SignedHost) -> SignedHost:
    return signed_host


@pytest.fixture
def key_pair(host: SignedHost) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    """A cosign-style key pair on disk: encrypted private key (password "pw") and cosign.pub."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = host.root / "cosign.key", host.root / "cosign.pub"
    private.write_bytes(encrypted_key_pem(key, b"pw"))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, private, public


def installed_signer(host: SignedHost, capsys: pytest.CaptureFixture[str], base: str) -> str:
    """Apply ``app`` on ``base``; it must be Installed; returns the base link's signer."""
    host.write_profile("app", seccomp_profile("app", base=base, allow=["read"]))
    code, report = host.run_json(capsys, "apply")
    assert code == 0, [(p["errorCode"], p["message"]) for p in report["profiles"]]
    assert [p["state"] for p in report["profiles"]] == ["Installed"]
    code, resolved = host.run_json(capsys, "resolve", "app")
    assert code == 0
    signer: str = resolved["chain"][1]["signer"]
    return signer


def tags(host: SignedHost, name: str) -> set[str]:
    listing = (host.registry.root / "storage/docker/registry/v2/repositories/profiles" / name
               / "_manifests/tags")
    return {p.name for p in listing.iterdir()}


@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_keyless_signature_end_to_end(host: SignedHost, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path, bundle: bool) -> None:
    host.trust(KEYLESS)
    ref = host.ref("base")
    flags = ["--identity-token", host.services.token(), *(["--bundle"] if bundle else [])]
    pushed = host.push(capsys, tmp_path, ref, *flags)
    digest = pushed["digest"]
    assert pushed["signature"]["signer"] == KEYLESS_SIGNER
    if bundle:
        assert pushed["signature"]["format"] == "sigstore-bundle"
        # Distribution 2.8 has no referrers API: the tag-schema index lists the referrer.
        assert referrers_tag(digest) in tags(host, "base")
        assert legacy_tag(digest) not in tags(host, "base")
    else:
        assert pushed["signature"] == {"format": "cosign-legacy", "signer": KEYLESS_SIGNER,
                                       "location": legacy_tag(digest)}
    assert installed_signer(host, capsys, ref) == KEYLESS_SIGNER
    _, out, _ = host.run(capsys, "resolve", "app")
    assert KEYLESS_SIGNER in out


def test_signatures_are_appended_to_the_sig_manifest(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    host.trust(KEYLESS)
    ref = host.ref("base")
    digest = host.push(capsys, tmp_path, ref, "--identity-token",
                       host.services.token())["digest"]
    first = _sig_manifest(host, digest)
    other = sign_legacy_with_key(ec.generate_private_key(ec.SECP256R1()), digest=digest,
                                 repository=host.name(ref))
    host.attach_legacy(ref, digest, other)
    host.attach_legacy(ref, digest, other)  # the same signature again: not added twice
    layers = _sig_manifest(host, digest)["layers"]
    assert [layer["annotations"] for layer in layers] == [
        first["layers"][0]["annotations"], dict(other.annotations)]
    assert installed_signer(host, capsys, ref) == KEYLESS_SIGNER


def _sig_manifest(host: SignedHost, digest: str) -> dict[str, Any]:
    link = (host.registry.root / "storage/docker/registry/v2/repositories/profiles/base"
            / "_manifests/tags" / legacy_tag(digest) / "current/link")
    doc: dict[str, Any] = json.loads(host.registry.blob_path(link.read_text().strip())
                                     .read_bytes())
    return doc


def test_key_signature_without_and_with_log(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        key_pair: tuple[ec.EllipticCurvePrivateKey, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    key, private, public = key_pair
    fingerprint = f"key {key_fingerprint(key.public_key())}"
    host.trust(f'public_keys = ["{public}"]')
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    ref = host.ref("base")
    pushed = host.push(capsys, tmp_path, ref, "--key", str(private))
    assert pushed["signature"]["signer"] == fingerprint
    assert installed_signer(host, capsys, ref) == fingerprint

    # require_tlog: the key signature pushed above has no log entry and is refused; the same
    # kind of signature logged in the fake Rekor (as `cosign sign --key` does) verifies.
    host.trust(f'public_keys = ["{public}"]\nrequire_tlog = true\n'
               'trusted_root = "trusted_root.json"')
    logged_ref = host.ref("logged")
    digest = host.push(capsys, tmp_path, logged_ref, "--sign=none", allow=("openat",))["digest"]
    unlogged = sign_legacy_with_key(key, digest=digest, repository=host.name(logged_ref))
    host.attach_legacy(logged_ref, digest, unlogged)
    host.write_profile("app", seccomp_profile("app", base=logged_ref))
    code, report = host.run_json(capsys, "apply")
    assert (code, report["profiles"][0]["errorCode"]) == (1, "tlog-missing")
    host.attach_legacy(logged_ref, digest, host.sigstore.log_key_signature(unlogged, key))
    host.run(capsys, "cache", "clear")  # forget the failure's backoff
    assert installed_signer(host, capsys, logged_ref) == fingerprint


def test_key_signed_bundle(host: SignedHost, capsys: pytest.CaptureFixture[str],
                           tmp_path: Path, key_pair: tuple[ec.EllipticCurvePrivateKey, Path, Path],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    key, private, public = key_pair
    host.trust(f'public_keys = ["{public}"]')
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    ref = host.ref("base")
    host.push(capsys, tmp_path, ref, "--key", str(private), "--bundle")
    assert installed_signer(host, capsys, ref) == f"key {key_fingerprint(key.public_key())}"


def test_push_refuses_without_a_signing_option(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        key_pair: tuple[ec.EllipticCurvePrivateKey, Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    host.trust(KEYLESS)
    monkeypatch.delenv("SIGSTORE_ID_TOKEN", raising=False)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    path = tmp_path / "p.yaml"
    path.write_text(seccomp_profile("base"))
    ref = host.ref("base")
    _, private, _ = key_pair
    for flags, code, said in [
        ((), 2, "push signs what it pushes"),
        (("--sign=none", "--key", str(private)), 2, "--sign=none pushes unsigned: drop --key"),
        (("--key", str(private), "--identity-token", "t"), 2, "exclude each other"),
        (("--key", str(private)), 1, "put its password in $COSIGN_PASSWORD"),
        (("--identity-token", "not-a-jwt"), 1, "keyless signing failed"),
    ]:
        got, _, err = host.run(capsys, "push", *flags, "-f", str(path), ref)
        assert (got, said in err) == (code, True), err
    assert not (host.registry.root / "storage/docker/registry/v2/repositories").exists()
    # $SIGSTORE_ID_TOKEN is a signing option too (CI provides one).
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", host.services.token())
    code, doc = host.run_json(capsys, "push", "-f", str(path), ref)
    assert (code, doc["signature"]["signer"]) == (0, KEYLESS_SIGNER)


def test_a_new_process_reverifies_from_disk_with_the_registry_stopped(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    host.trust(KEYLESS, oci={"tag_ttl_s": 0, "timeout_s": 2, "retries": 0})
    ref = host.ref("base")
    host.push(capsys, tmp_path, ref, "--identity-token", host.services.token())
    assert installed_signer(host, capsys, ref) == KEYLESS_SIGNER
    installed = host.installed("app").read_bytes()
    host.registry.stop()
    host.installed("app").unlink()
    result = subprocess.run([str(SECPROF), "apply", "--config", str(host.config), "--json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    [status] = json.loads(result.stdout)["profiles"]
    assert status["state"] == "Stale"
    assert "connection refused" in status["message"]
    assert host.installed("app").read_bytes() == installed

    # The record on disk is checked, not believed: a signature altered in the cache is dropped,
    # and with the registry down nothing vouches for the base any more.
    host.installed("app").unlink()
    _tamper_cached_signature(host)
    result = subprocess.run([str(SECPROF), "apply", "--config", str(host.config), "--json"],
                            capture_output=True, text=True, timeout=60, check=False)
    [status] = json.loads(result.stdout)["profiles"]
    assert (result.returncode, status["state"]) == (1, "Error")
    assert "was never verified on this host" in status["message"]
    assert not host.installed("app").exists()


def _tamper_cached_signature(host: SignedHost) -> None:
    cache = oci_cache(load(host.config))
    [(key, record)] = cache.listing().verifications  # one base, one verification
    annotations = record["material"]["annotations"]
    entry = json.loads(annotations[COSIGN_BUNDLE])
    entry["Payload"]["integratedTime"] += 1
    annotations[COSIGN_BUNDLE] = json.dumps(entry)
    cache.store_verification(key, record)
    cache.close()


def test_verify_command(host: SignedHost, capsys: pytest.CaptureFixture[str],
                        tmp_path: Path) -> None:
    host.trust(KEYLESS)
    ref = host.ref("base")
    digest = host.push(capsys, tmp_path, ref, "--identity-token",
                       host.services.token())["digest"]
    # A second signature, by someone else, next to the good one.
    host.attach_legacy(ref, digest, host.sigstore.legacy_keyless(
        payload(host, ref, digest), identity="mallory@example.invalid"))
    code, doc = host.run_json(capsys, "verify", ref)
    assert (code, doc["accepted"], doc["verified"], doc["signer"]) == (
        0, True, True, KEYLESS_SIGNER)
    assert doc["digest"] == digest
    good, bad = doc["signatures"]
    assert (good["source"], good["verified"], good["identity"]) == (
        f"{legacy_tag(digest)}[0]", True, IDENTITY)
    assert (bad["verified"], bad["error"]["code"]) == (False, "identity-mismatch")
    code, out, _ = host.run(capsys, "verify", ref)
    assert f"verified: {legacy_tag(digest)}[0] (cosign-legacy): signed by {KEYLESS_SIGNER}" in out
    assert "refused:  " in out
    assert "identity-mismatch" in out

    unsigned = host.ref("unsigned")
    host.push(capsys, tmp_path, unsigned, "--sign=none")
    code, out, _ = host.run(capsys, "verify", unsigned)
    assert code == 1
    assert "refused: signature-missing" in out


PROBE = """
import json, sys
from agent.cli.main import main
code = main(['apply', '--config', sys.argv[1], '--json'])
print(json.dumps({'code': code, 'sigstore': 'sigstore' in sys.modules}))
"""


@pytest.mark.parametrize(("mode", "imports_sigstore"), [
    ("key", False), ("verify-false", False), ("keyless-legacy", False), ("keyless-bundle", True),
])
def test_sigstore_is_imported_only_to_verify_keyless_bundles(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        key_pair: tuple[ec.EllipticCurvePrivateKey, Path, Path], monkeypatch: pytest.MonkeyPatch,
        mode: str, imports_sigstore: bool) -> None:
    """A cold resolve (discovery, verification, fetch) in a fresh process."""
    _, private, public = key_pair
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    ref = host.ref("base")
    entry, flags = {
        "key": (f'public_keys = ["{public}"]', ["--key", str(private)]),
        "verify-false": ("verify = false", ["--sign=none"]),
        "keyless-legacy": (KEYLESS, ["--identity-token", host.services.token()]),
        "keyless-bundle": (KEYLESS, ["--identity-token", host.services.token(), "--bundle"]),
    }[mode]
    host.trust(entry)
    host.push(capsys, tmp_path, ref, *flags)
    host.write_profile("app", seccomp_profile("app", base=ref))
    result = subprocess.run([sys.executable, "-c", PROBE, str(host.config)],
                            capture_output=True, text=True, timeout=60, check=False)
    *_, last = result.stdout.strip().splitlines()
    assert json.loads(last) == {"code": 0, "sigstore": imports_sigstore}, result.stderr


def test_legacy_signature_survives_a_base64_round_trip_in_the_cache(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """What the cache stores is the material exactly as discovered."""
    host.trust(KEYLESS)
    ref = host.ref("base")
    digest = host.push(capsys, tmp_path, ref, "--identity-token",
                       host.services.token())["digest"]
    installed_signer(host, capsys, ref)
    [(key, record)] = oci_cache(load(host.config)).listing().verifications
    assert key.endswith(f"|{host.name(ref)}@{digest}")
    assert record["source"] == f"{legacy_tag(digest)}[0]"
    payload = base64.b64decode(record["material"]["payload"])
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    assert record["verified"]["identity"] == IDENTITY
    _, listing = host.run_json(capsys, "cache", "list")
    assert [(v["repository"], v["digest"], v["signer"]) for v in listing["verifications"]] == [
        (host.name(ref), digest, KEYLESS_SIGNER)]
    _, out, _ = host.run(capsys, "cache", "list")
    assert f"verified: {host.name(ref)}@{digest}: signed by {KEYLESS_SIGNER}" in out
    assert host.run_json(capsys, "cache", "prune")[1]["removed"] == 0  # still in use


def test_within_the_ttl_a_new_process_needs_no_registry_http_stack_or_sigstore(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The daemon's restart: bases within their TTL are verified again from disk only."""
    host.trust(KEYLESS)
    ref = host.ref("base")
    host.push(capsys, tmp_path, ref, "--identity-token", host.services.token())
    installed_signer(host, capsys, ref)
    host.registry.stop()
    host.installed("app").unlink()
    script = ("import json, sys\nfrom agent.cli.main import main\n"
              "code = main(['apply', '--config', sys.argv[1], '--json'])\n"
              "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
              "{'oras', 'requests', 'sigstore'})\n"
              "print(json.dumps({'code': code, 'heavy': heavy}))\n")
    result = subprocess.run([sys.executable, "-c", script, str(host.config)],
                            capture_output=True, text=True, timeout=60, check=False)
    *report, last = result.stdout.strip().splitlines()
    assert json.loads(last) == {"code": 0, "heavy": []}, result.stderr
    assert json.loads("\n".join(report))["profiles"][0]["state"] == "Installed"
    assert host.installed("app").exists()


@pytest.mark.parametrize("bundle", [False, True], ids=["legacy", "bundle"])
def test_push_logs_key_signatures_on_request(
        host: SignedHost, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        key_pair: tuple[ec.EllipticCurvePrivateKey, Path, Path],
        monkeypatch: pytest.MonkeyPatch, bundle: bool) -> None:
    """--tlog-upload: the key signature is logged in the Rekor of [signing] (its answer checked
    against the trusted root), which is what require_tlog = true asks for."""
    key, private, public = key_pair
    host.trust(f'public_keys = ["{public}"]\nrequire_tlog = true\n'
               'trusted_root = "trusted_root.json"')
    monkeypatch.setenv("COSIGN_PASSWORD", "pw")
    ref = host.ref("base")
    flags = ["--key", str(private), "--tlog-upload", *(["--bundle"] if bundle else [])]
    host.push(capsys, tmp_path, ref, *flags)
    assert host.services.requests[-1] == "/api/v1/log/entries"
    assert installed_signer(host, capsys, ref) == f"key {key_fingerprint(key.public_key())}"
    code, doc = host.run_json(capsys, "verify", ref)
    assert (code, doc["signatures"][0]["tlogIndex"] is not None) == (0, True)

    # A Rekor the trusted root does not know: refused before anything is pushed.
    host.trust(f'public_keys = ["{public}"]')
    host.trusted_root.write_bytes(FakeSigstore(name="other").trusted_root_json())
    path = tmp_path / "other.yaml"
    path.write_text(seccomp_profile("other"))
    code, _, err = host.run(capsys, "push", *flags, "-f", str(path), host.ref("other"))
    assert code == 1
    assert "does not verify with the [signing] trusted root" in err
    assert "other" not in tags_of(host)


def tags_of(host: SignedHost) -> set[str]:
    repositories = host.registry.root / "storage/docker/registry/v2/repositories/profiles"
    return {p.name for p in repositories.iterdir()}
