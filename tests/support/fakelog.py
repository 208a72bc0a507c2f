"""The fake Sigstore's transparency log: Rekor v1 semantics over an in-memory RFC 6962 tree.

Each entry gets a signed entry timestamp (SET) over the RFC 8785 form of
``{body, integratedTime, logID, logIndex}``, an inclusion proof and a signed checkpoint (a signed
note whose signature line starts with the first four bytes of the log ID).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.oci.signatures.rekor import LogEntry, set_payload
from tests.support import merkle

_SPKI = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(*_SPKI))


@dataclass
class FakeLog:
    """A Rekor-v1-like log: SETs, Merkle inclusion proofs and signed checkpoints."""

    origin: str = "rekor.test.invalid - 1"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    leaves: list[bytes] = field(default_factory=list)

    @property
    def log_id(self) -> bytes:
        return hashlib.sha256(_spki(self.key.public_key())).digest()

    def append(self, body: bytes, *, integrated_time: datetime) -> tuple[LogEntry, dict[str, Any]]:
        """Log ``body``; return the entry (with SET) and its inclusion proof JSON (bundle form)."""
        index = len(self.leaves)
        self.leaves.append(merkle.leaf_hash(body))
        unsigned = LogEntry(
            body=body,
            integrated_time=int(integrated_time.timestamp()),
            log_index=index,
            log_id=self.log_id,
            signed_entry_timestamp=None,
        )
        sset = self.key.sign(set_payload(unsigned), ec.ECDSA(hashes.SHA256()))
        entry = LogEntry(
            body=body,
            integrated_time=unsigned.integrated_time,
            log_index=index,
            log_id=self.log_id,
            signed_entry_timestamp=sset,
        )
        return entry, self.proof(index)

    def proof(self, index: int) -> dict[str, Any]:
        size = len(self.leaves)
        root = merkle.root(self.leaves)
        return {
            "logIndex": str(index),
            "rootHash": base64.b64encode(root).decode(),
            "treeSize": str(size),
            "hashes": [
                base64.b64encode(h).decode() for h in merkle.inclusion_path(index, self.leaves)
            ],
            "checkpoint": {"envelope": self.checkpoint(size, root)},
        }

    def checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        sig = self.key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        stamp = base64.b64encode(self.log_id[:4] + sig).decode()
        return f"{note}\n\u2014 {self.origin.split()[0]} {stamp}\n"
