"""Log a key-made signature in a Rekor (v1 API), as ``cosign sign --key`` does by default:
``secprof push --key FILE --tlog-upload``, for hosts whose policy says ``require_tlog = true``.

Keyless signing logs through sigstore-python; a key signature is logged here, with one POST of
the entry Rekor will store (``hashedrekord`` for a legacy layer, ``dsse`` for a bundle). The
answer is checked before anything is pushed, with the same code that checks it on the hosts:
its signed entry timestamp must verify with a Rekor key of the ``[signing]`` trusted root, and the
entry must record this very signature, key and payload.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from agent.codes import Code
from agent.errors import AgentError, SigningError
from agent.oci.signatures.checks import same_public_key, verify_set
from agent.oci.signatures.rekor import LogEntry, parse_dsse_body, parse_hashedrekord
from agent.oci.signatures.trustroot import LogPublicKey, TrustRoot

MAX_ANSWER_BYTES = 256 * 1024


def log_hashedrekord(url: str, *, payload: bytes, signature: bytes, key: LogPublicKey,
                     root: TrustRoot, timeout_s: float) -> LogEntry:
    """Log a signature over ``payload`` (a legacy layer's); returns the checked entry."""
    proposed = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
        "signature": {"content": _b64(signature), "publicKey": {"content": _b64(_pem(key))}},
    }}
    entry, _ = _post(url, proposed, root, timeout_s)
    body = parse_hashedrekord(entry.body)
    if (body.sha256_hex != hashlib.sha256(payload).hexdigest() or body.signature != signature
            or not same_public_key(body.public_key_pem, key)):
        raise SigningError(f"Rekor at {url} logged another signature than the one sent",
                           code=Code.SIGNING_FAILED)
    return entry


def log_dsse(url: str, *, payload_type: str, payload: bytes, signature: bytes,
             key: LogPublicKey, root: TrustRoot, timeout_s: float,
             ) -> tuple[LogEntry, dict[str, Any] | None]:
    """Log a DSSE envelope (a bundle's); returns the checked entry and its inclusion proof
    (bundle JSON form), when Rekor gave one."""
    envelope = json.dumps({"payload": _b64(payload), "payloadType": payload_type,
                           "signatures": [{"sig": _b64(signature)}]})
    proposed = {"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "proposedContent": {"envelope": envelope, "verifiers": [_b64(_pem(key))]}}}
    entry, proof = _post(url, proposed, root, timeout_s)
    body = parse_dsse_body(entry.body)
    logged = [(sig, pem) for sig, pem in body.signatures if sig == signature]
    if (body.payload_sha256_hex != hashlib.sha256(payload).hexdigest() or len(logged) != 1
            or not same_public_key(logged[0][1], key)):
        raise SigningError(f"Rekor at {url} logged another envelope than the one sent",
                           code=Code.SIGNING_FAILED)
    return entry, proof


def _post(url: str, proposed: dict[str, Any], root: TrustRoot, timeout_s: float,
          ) -> tuple[LogEntry, dict[str, Any] | None]:
    where = f"{url}/api/v1/log/entries"
    try:
        response = requests.post(where, json=proposed, timeout=timeout_s,
                                 headers={"Accept": "application/json"})
        raw = response.content[:MAX_ANSWER_BYTES + 1]
    except requests.RequestException as exc:
        raise SigningError(f"cannot log the signature at {where}: {exc}",
                           code=Code.SIGNING_FAILED,
                           hint="check [signing] rekor_url, or push without --tlog-upload",
                           ) from None
    if response.status_code != 201:
        said = raw[:200].decode("utf-8", "replace")
        raise SigningError(f"Rekor at {url} answered {response.status_code}: {said}",
                           code=Code.SIGNING_FAILED)
    try:
        if len(raw) > MAX_ANSWER_BYTES:
            raise ValueError(f"larger than {MAX_ANSWER_BYTES} bytes")
        ((_, doc),) = json.loads(raw).items()
        verification = doc["verification"]
        entry = LogEntry(body=base64.b64decode(doc["body"], validate=True),
                         integrated_time=int(doc["integratedTime"]),
                         log_index=int(doc["logIndex"]), log_id=bytes.fromhex(doc["logID"]),
                         signed_entry_timestamp=base64.b64decode(
                             verification["signedEntryTimestamp"], validate=True))
        proof = _proof(verification.get("inclusionProof"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SigningError(f"Rekor at {url} answered something that is not a log entry: "
                           f"{type(exc).__name__}: {exc}", code=Code.SIGNING_FAILED) from None
    try:
        verify_set(entry, root, now=datetime.now(UTC))
    except AgentError as exc:
        raise SigningError(f"the entry Rekor at {url} returned does not verify with the "
                           f"[signing] trusted root: {exc.message}", code=Code.SIGNING_FAILED,
                           hint="[signing] trusted_root must hold that Rekor's key") from None
    return entry, proof


def _proof(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """Rekor's inclusion proof (hex hashes) in the bundle's JSON form (base64, int64 strings)."""
    if doc is None:
        return None
    hashes = [base64.b64encode(bytes.fromhex(h)).decode() for h in doc["hashes"]]
    return {"logIndex": str(int(doc["logIndex"])),
            "rootHash": base64.b64encode(bytes.fromhex(doc["rootHash"])).decode(),
            "treeSize": str(int(doc["treeSize"])), "hashes": hashes,
            "checkpoint": {"envelope": str(doc["checkpoint"])}}


def _pem(key: LogPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
