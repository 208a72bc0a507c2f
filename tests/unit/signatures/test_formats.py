"""Byte-level formats: cosign's payload and annotations, Rekor bodies, bundles, PAE."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import VerificationError
from agent.oci.signatures import payload as pl
from agent.oci.signatures import rekor
from agent.oci.signatures.bundle import BundleEntry, build_bundle, parse_bundle
from tests.support.vectors import VECTORS

REAL = VECTORS / "real-cosign-legacy" if VECTORS else Path("/nonexistent")
needs_real = pytest.mark.skipif(
    not REAL.is_dir(), reason="shared/sigstore-vectors is not available"
)


@needs_real
def test_payload_is_byte_exact_with_cosign() -> None:
    real = (REAL / "payload.json").read_bytes()
    built = pl.simple_signing_payload(
        docker_reference="index.docker.io/salrashid123/server_image",
        digest="sha256:c05263d2ff654c3a94243662440913f045075d59c436e2c69e9145ec2b87a321",
    )
    assert built == real


@needs_real
def test_cosign_bundle_annotation_round_trips_byte_exact() -> None:
    manifest = json.loads((REAL / "sig-manifest.json").read_text())
    text = manifest["layers"][0]["annotations"]["dev.sigstore.cosign/bundle"]
    assert rekor.cosign_bundle(rekor.parse_cosign_bundle(text)) == text


def test_payload_escapes_like_go() -> None:
    built = pl.simple_signing_payload(
        docker_reference="r.invalid/x",
        digest="sha256:" + "0" * 64,
        optional={"b": "<a&b>\u2028", "a": 'q"\\'},
    )
    assert built.endswith(b'"optional":{"a":"q\\"\\\\","b":"\\u003ca\\u0026b\\u003e\\u2028"}}')
    assert pl.parse_simple_signing(built).optional == {"a": 'q"\\', "b": "<a&b>\u2028"}


@pytest.mark.parametrize(
    "doc",
    [
        b'{"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"x"},'
        b'"type":"cosign container image signature","type":"other"}}',  # duplicate key
        b'{"critical":{"identity":{},"image":{},"type":"cosign container image signature"}}',
        b'{"critical":"x"}',
        b"null",
        b"{" * 10,
    ],
)
def test_payload_parse_is_strict(doc: bytes) -> None:
    with pytest.raises(VerificationError) as info:
        pl.parse_simple_signing(doc)
    assert info.value.code == "payload-invalid"


def test_repository_of() -> None:
    assert pl.repository_of("Registry.Invalid:5000/p/x:v1@sha256:ab") == "registry.invalid:5000/p/x"
    assert pl.repository_of("localhost:5000/p/x") == "localhost:5000/p/x"
    assert pl.repository_of("docker.io/library/ubuntu") == "index.docker.io/library/ubuntu"
    assert pl.repository_of("registry-1.docker.io/a/b:latest") == "index.docker.io/a/b"


def test_digest_argument_is_checked() -> None:
    for bad in ("sha256:AB", "sha512:" + "0" * 128, "0" * 64, "sha256:" + "0" * 63):
        with pytest.raises(ValueError):
            pl.check_digest(bad)


def test_statement_round_trip() -> None:
    digest = "sha256:" + "ef" * 32
    statement = pl.parse_statement(pl.intoto_statement(digest=digest, name="r.invalid/x"))
    assert statement.subjects == (("r.invalid/x", "ef" * 32),)
    assert statement.predicate_type == pl.COSIGN_SIGN_PREDICATE
    assert pl.parse_statement(pl.intoto_statement(digest=digest)).subjects == ((None, "ef" * 32),)


def test_pae_matches_the_dsse_spec_example() -> None:
    # DSSE v1.0 protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert pl.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_rekor_bodies_round_trip_and_refuse_other_kinds() -> None:
    body = rekor.hashedrekord_body(sha256_hex="aa", signature=b"sig", public_key_pem=b"pem")
    parsed = rekor.parse_hashedrekord(body)
    assert (parsed.sha256_hex, parsed.signature, parsed.public_key_pem) == ("aa", b"sig", b"pem")
    dsse = rekor.dsse_body(
        payload_sha256_hex="bb", envelope_sha256_hex="cc", signature=b"s", verifier_pem=b"v"
    )
    assert rekor.parse_dsse_body(dsse).signatures == ((b"s", b"v"),)
    for wrong, parse in ((dsse, rekor.parse_hashedrekord), (body, rekor.parse_dsse_body)):
        with pytest.raises(VerificationError) as info:
            parse(wrong)
        assert info.value.code == "tlog-inconsistent"


@pytest.mark.parametrize("value", ["-1", "1e3", " 1", "\u0661", True, 1.5, None])
def test_log_integers_are_strict(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        rekor.parse_int(value)


def test_bundle_round_trip() -> None:
    entry = rekor.LogEntry(
        body=b"{}",
        integrated_time=5,
        log_index=3,
        log_id=b"\x01" * 32,
        signed_entry_timestamp=b"set",
    )
    raw = build_bundle(
        payload_type=pl.INTOTO_PAYLOAD_TYPE,
        payload=b"{}",
        signature=b"sig",
        public_key_hint="hint",
        entries=(BundleEntry(entry=entry, kind="dsse", version="0.0.1"),),
    )
    parsed = parse_bundle(raw)
    assert parsed.public_key_hint == "hint"
    assert parsed.certificate is None
    assert parsed.entries[0].entry == entry
    assert parsed.signatures == (b"sig",)
    with pytest.raises(ValueError):
        build_bundle(payload_type="t", payload=b"", signature=b"")
