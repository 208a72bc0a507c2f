"""Sigstore bundles (protobuf-specs ``dev.sigstore.bundle.v1.Bundle``, JSON form), read and written
without sigstore-python.

Keyless bundles are verified by sigstore-python, which parses them itself; this parser serves the
key-based path (which must not import sigstore), the pre-checks that give a sigstore failure its
precise code, and signing. It reads only what those need and is strict about it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography import x509

from agent.codes import Code
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import LogEntry, b64_field, parse_int, str_field

MEDIA_TYPE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
MEDIA_TYPES = (
    MEDIA_TYPE_V03,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
MAX_BUNDLE_BYTES = 256 * 1024
MAX_TLOG_ENTRIES = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleEntry:
    """A transparency-log entry of a bundle, with its entry kind."""

    entry: LogEntry
    kind: str
    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """The parts of a bundle the verifiers and signers use."""

    media_type: str
    certificate: x509.Certificate | None
    public_key_hint: str | None
    entries: tuple[BundleEntry, ...]
    payload_type: str | None  # None: not a DSSE bundle (a message signature)
    payload: bytes
    signatures: tuple[bytes, ...]
    message_signature: bytes | None  # a message-signature bundle's signature over a blob


def parse_bundle(data: bytes) -> Bundle:
    """Parse bundle JSON; ``signature-malformed`` when it is not a bundle this agent can read."""
    if len(data) > MAX_BUNDLE_BYTES:
        _malformed(f"larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        doc = json.loads(data)
        media_type = doc["mediaType"]
        if media_type not in MEDIA_TYPES:
            _malformed(f"unknown mediaType {media_type!r}")
        material = doc["verificationMaterial"]
        entries = tuple(_entry(e) for e in material.get("tlogEntries") or [])
        if len(entries) > MAX_TLOG_ENTRIES:
            _malformed(f"more than {MAX_TLOG_ENTRIES} log entries")
        envelope = doc.get("dsseEnvelope")
        return Bundle(
            media_type=media_type,
            certificate=_certificate(material),
            public_key_hint=(material.get("publicKey") or {}).get("hint"),
            entries=entries,
            payload_type=None if envelope is None else str_field(envelope["payloadType"]),
            payload=b"" if envelope is None else b64_field(envelope["payload"]),
            signatures=()
            if envelope is None
            else tuple(b64_field(s["sig"]) for s in envelope["signatures"]),
            message_signature=_message_signature(doc.get("messageSignature")),
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        _malformed(f"{type(exc).__name__}: {exc}")


def build_bundle(
    *,
    payload_type: str,
    payload: bytes,
    signature: bytes,
    certificate_der: bytes | None = None,
    public_key_hint: str | None = None,
    entries: tuple[BundleEntry, ...] = (),
    inclusion_proofs: tuple[dict[str, Any] | None, ...] = (),
) -> bytes:
    """A v0.3 DSSE bundle; ``inclusion_proofs`` (JSON objects) pair up with ``entries``."""
    if (certificate_der is None) == (public_key_hint is None):
        raise ValueError("a bundle names either a certificate or a public key hint")
    material: dict[str, Any] = (
        {"certificate": {"rawBytes": _enc(certificate_der)}}
        if certificate_der is not None
        else {"publicKey": {"hint": public_key_hint}}
    )
    proofs = inclusion_proofs or (None,) * len(entries)
    material["tlogEntries"] = [_entry_json(e, p) for e, p in zip(entries, proofs, strict=True)]
    doc = {
        "mediaType": MEDIA_TYPE_V03,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": _enc(payload),
            "payloadType": payload_type,
            "signatures": [{"sig": _enc(signature)}],
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def key_hint(spki_der: bytes) -> str:
    """The ``publicKey.hint`` for a key: base64 of the SHA-256 of its SubjectPublicKeyInfo."""
    return _enc(hashlib.sha256(spki_der).digest())


def _entry(doc: dict[str, Any]) -> BundleEntry:
    promise = doc.get("inclusionPromise")
    entry = LogEntry(
        body=b64_field(doc["canonicalizedBody"]),
        # Rekor v2 entries have no integration time (their time comes from a TSA).
        integrated_time=parse_int(doc.get("integratedTime", "0")),
        log_index=parse_int(doc["logIndex"]),
        log_id=b64_field(doc["logId"]["keyId"]),
        signed_entry_timestamp=None if not promise else b64_field(promise["signedEntryTimestamp"]),
    )
    kind = doc["kindVersion"]
    return BundleEntry(entry=entry, kind=str_field(kind["kind"]),
                       version=str_field(kind["version"]))


def _entry_json(item: BundleEntry, proof: dict[str, Any] | None) -> dict[str, Any]:
    entry = item.entry
    out: dict[str, Any] = {
        "logIndex": str(entry.log_index),
        "logId": {"keyId": _enc(entry.log_id)},
        "kindVersion": {"kind": item.kind, "version": item.version},
        "integratedTime": str(entry.integrated_time),
        "canonicalizedBody": _enc(entry.body),
    }
    if entry.signed_entry_timestamp is not None:
        out["inclusionPromise"] = {"signedEntryTimestamp": _enc(entry.signed_entry_timestamp)}
    if proof is not None:
        out["inclusionProof"] = proof
    return out


def _message_signature(doc: dict[str, Any] | None) -> bytes | None:
    return None if doc is None else b64_field(doc["signature"])


def _certificate(material: dict[str, Any]) -> x509.Certificate | None:
    if material.get("certificate"):
        raw = material["certificate"]["rawBytes"]
    elif material.get("x509CertificateChain"):
        raw = material["x509CertificateChain"]["certificates"][0]["rawBytes"]
    else:
        return None
    return x509.load_der_x509_certificate(b64_field(raw))


def _malformed(why: str) -> NoReturn:
    refuse(Code.SIGNATURE_MALFORMED, f"sigstore bundle: {why}")


def _enc(data: bytes) -> str:
    return base64.b64encode(data).decode()


