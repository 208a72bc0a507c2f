"""Rekor (transparency log v1) records as cosign and sigstore bundles carry them.

A :class:`LogEntry` is what a log signed: the canonicalized entry body plus where and when it was
integrated. Its *signed entry timestamp* (SET) is the log key's signature over the RFC 8785 form of
``{body, integratedTime, logID, logIndex}``; :mod:`.checks` verifies it. The entry bodies
(``hashedrekord`` for simple-signing signatures, ``dsse`` for DSSE envelopes) say which signature,
key or certificate, and payload hash were logged; the verifiers compare them with the material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any, NoReturn

import rfc8785

from agent.codes import Code
from agent.oci.signatures.refuse import refuse

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEntry:
    """One integrated log entry; ``signed_entry_timestamp`` is ``None`` for logs that give none."""

    body: bytes
    integrated_time: int
    log_index: int
    log_id: bytes
    signed_entry_timestamp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HashedRekord:
    """A ``hashedrekord`` 0.0.1 body: who signed which sha256 with which signature."""

    sha256_hex: str
    signature: bytes
    public_key_pem: bytes  # a PEM certificate (keyless) or PEM public key (key-based)


@dataclass(frozen=True, slots=True, kw_only=True)
class DsseRecord:
    """A ``dsse`` 0.0.1 body: the payload hash and each (signature, verifier PEM) pair."""

    payload_sha256_hex: str
    signatures: tuple[tuple[bytes, bytes], ...]


def set_payload(entry: LogEntry) -> bytes:
    """The exact bytes a SET signs for ``entry``."""
    return rfc8785.dumps(
        {
            "body": base64.b64encode(entry.body).decode(),
            "integratedTime": entry.integrated_time,
            "logID": entry.log_id.hex(),
            "logIndex": entry.log_index,
        }
    )


def parse_cosign_bundle(text: str) -> LogEntry:
    """The ``dev.sigstore.cosign/bundle`` annotation (cosign's ``RekorBundle``) as a log entry."""
    try:
        doc = json.loads(text)
        entry = doc["Payload"]
        return LogEntry(
            body=b64_field(entry["body"]),
            integrated_time=parse_int(entry["integratedTime"]),
            log_index=parse_int(entry["logIndex"]),
            log_id=bytes.fromhex(str_field(entry["logID"])),
            signed_entry_timestamp=b64_field(doc["SignedEntryTimestamp"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        refuse(
            Code.SIGNATURE_MALFORMED, f"cosign bundle annotation: {type(exc).__name__} {exc}"
        )


def cosign_bundle(entry: LogEntry) -> str:
    """``entry`` as the ``dev.sigstore.cosign/bundle`` annotation, in Go's field order."""
    if entry.signed_entry_timestamp is None:
        raise ValueError("a cosign bundle annotation needs a signed entry timestamp")
    payload = {
        "body": base64.b64encode(entry.body).decode(),
        "integratedTime": entry.integrated_time,
        "logIndex": entry.log_index,
        "logID": entry.log_id.hex(),
    }
    doc = {
        "SignedEntryTimestamp": base64.b64encode(entry.signed_entry_timestamp).decode(),
        "Payload": payload,
    }
    return json.dumps(doc, separators=(",", ":"))


def hashedrekord_body(*, sha256_hex: str, signature: bytes, public_key_pem: bytes) -> bytes:
    """The body a Rekor v1 log stores for a ``hashedrekord`` 0.0.1 entry."""
    spec = {
        "data": {"hash": {"algorithm": "sha256", "value": sha256_hex}},
        "signature": {
            "content": base64.b64encode(signature).decode(),
            "publicKey": {"content": base64.b64encode(public_key_pem).decode()},
        },
    }
    return _body("hashedrekord", spec)


def parse_hashedrekord(body: bytes) -> HashedRekord:
    """A logged ``hashedrekord`` 0.0.1 body (``tlog-inconsistent`` if it is another kind)."""
    spec = _spec(body, "hashedrekord")
    try:
        digest = spec["data"]["hash"]
        if digest["algorithm"] != "sha256":
            raise ValueError(f"hash algorithm {digest['algorithm']!r}")
        signature = spec["signature"]
        return HashedRekord(
            sha256_hex=str_field(digest["value"]),
            signature=b64_field(signature["content"]),
            public_key_pem=b64_field(signature["publicKey"]["content"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        _inconsistent(f"hashedrekord body: {type(exc).__name__} {exc}")


def dsse_body(
    *, payload_sha256_hex: str, envelope_sha256_hex: str, signature: bytes, verifier_pem: bytes
) -> bytes:
    """The body a Rekor v1 log stores for a ``dsse`` 0.0.1 entry with one signature."""
    spec = {
        "envelopeHash": {"algorithm": "sha256", "value": envelope_sha256_hex},
        "payloadHash": {"algorithm": "sha256", "value": payload_sha256_hex},
        "signatures": [
            {
                "signature": base64.b64encode(signature).decode(),
                "verifier": base64.b64encode(verifier_pem).decode(),
            }
        ],
    }
    return _body("dsse", spec)


def parse_dsse_body(body: bytes) -> DsseRecord:
    """A logged ``dsse`` 0.0.1 body; ``tlog-inconsistent`` if the log recorded another kind."""
    spec = _spec(body, "dsse")
    try:
        digest = spec["payloadHash"]
        if digest["algorithm"] != "sha256":
            raise ValueError(f"hash algorithm {digest['algorithm']!r}")
        sigs = tuple((b64_field(s["signature"]), b64_field(s["verifier"]))
                     for s in spec["signatures"])
        return DsseRecord(payload_sha256_hex=str_field(digest["value"]), signatures=sigs)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        _inconsistent(f"dsse body: {type(exc).__name__} {exc}")


def _body(kind: str, spec: dict[str, Any]) -> bytes:
    doc = {"apiVersion": "0.0.1", "kind": kind, "spec": spec}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _spec(body: bytes, kind: str) -> dict[str, Any]:
    if len(body) > MAX_BODY_BYTES:
        _inconsistent(f"log entry body is larger than {MAX_BODY_BYTES} bytes")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        _inconsistent(f"log entry body is not JSON: {exc}")
    if not isinstance(doc, dict) or doc.get("kind") != kind or doc.get("apiVersion") != "0.0.1":
        got = (doc.get("kind"), doc.get("apiVersion")) if isinstance(doc, dict) else None
        _inconsistent(f"log entry is {got}, expected ({kind!r}, '0.0.1')")
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        _inconsistent("log entry body has no spec")
    return spec


def _inconsistent(message: str) -> NoReturn:
    refuse(Code.TLOG_INCONSISTENT, message)


def b64_field(value: Any) -> bytes:
    """A base64 JSON field's bytes (strict: invalid base64 raises)."""
    return base64.b64decode(str_field(value), validate=True)


def str_field(value: Any) -> str:
    """A JSON field that must be a string."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def parse_int(value: Any) -> int:
    # Rekor's JSON has integers; protobuf JSON (bundles) writes int64 as strings.
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,19}", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a non-negative integer, got {value!r}")
    number = value
    if number < 0:
        raise ValueError(f"negative integer {number}")
    return number
