"""cosign's legacy signature layer: one ``.sig`` manifest layer per signature.

The layer blob is the signed payload (simple-signing JSON, media type
``application/vnd.dev.cosign.simplesigning.v1+json``); everything else rides in the layer's
annotations: the base64 ECDSA signature, and for keyless signatures the PEM certificate and chain;
the Rekor entry with its SET (``dev.sigstore.cosign/bundle``) whenever the signer logged it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography import x509

from agent.codes import Code
from agent.oci.signatures.payload import SIMPLE_SIGNING_MEDIA_TYPE
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import LogEntry, cosign_bundle, parse_cosign_bundle

SIGNATURE = "dev.cosignproject.cosign/signature"
CERTIFICATE = "dev.sigstore.cosign/certificate"
CHAIN = "dev.sigstore.cosign/chain"
BUNDLE = "dev.sigstore.cosign/bundle"

MAX_ANNOTATION_BYTES = 64 * 1024
MAX_CHAIN_CERTIFICATES = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacySignature:
    """The decoded annotations of one signature layer."""

    signature: bytes
    certificate: x509.Certificate | None
    chain: tuple[x509.Certificate, ...]
    entry: LogEntry | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyLayer:
    """A signature layer ready to push: blob ``payload`` with ``annotations``."""

    media_type: str
    payload: bytes
    annotations: Mapping[str, str]


def parse_annotations(annotations: Mapping[str, str]) -> LegacySignature:
    """Decode a layer's annotations (``signature-missing``/``-malformed`` when unusable)."""
    for key, value in annotations.items():
        if not isinstance(value, str) or len(value) > MAX_ANNOTATION_BYTES:
            refuse(
                Code.SIGNATURE_MALFORMED,
                f"annotation {key} is not a string of at most {MAX_ANNOTATION_BYTES} bytes",
            )
    raw = annotations.get(SIGNATURE)
    if not raw:
        refuse(Code.SIGNATURE_MISSING, f"the layer has no {SIGNATURE} annotation")
    try:
        signature = base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        refuse(Code.SIGNATURE_MALFORMED, f"{SIGNATURE} is not base64: {exc}")
    cert = None
    if annotations.get(CERTIFICATE):
        certs = _pem_certificates(annotations[CERTIFICATE], CERTIFICATE)
        if len(certs) != 1:
            refuse(Code.SIGNATURE_MALFORMED, f"{CERTIFICATE} holds {len(certs)} certificates")
        cert = certs[0]
    chain = _pem_certificates(annotations[CHAIN], CHAIN) if annotations.get(CHAIN) else ()
    if len(chain) > MAX_CHAIN_CERTIFICATES:
        refuse(Code.SIGNATURE_MALFORMED, f"{CHAIN} holds more than {MAX_CHAIN_CERTIFICATES}")
    entry = parse_cosign_bundle(annotations[BUNDLE]) if annotations.get(BUNDLE) else None
    return LegacySignature(signature=signature, certificate=cert, chain=chain, entry=entry)


def build_layer(
    *,
    payload: bytes,
    signature: bytes,
    certificate_pem: bytes | None = None,
    chain_pem: bytes | None = None,
    entry: LogEntry | None = None,
) -> LegacyLayer:
    """The layer cosign would write for this signature (annotations it leaves out stay out)."""
    annotations = {SIGNATURE: base64.b64encode(signature).decode()}
    if certificate_pem is not None:
        annotations[CERTIFICATE] = certificate_pem.decode()
    if chain_pem is not None:
        annotations[CHAIN] = chain_pem.decode()
    if entry is not None:
        annotations[BUNDLE] = cosign_bundle(entry)
    return LegacyLayer(
        media_type=SIMPLE_SIGNING_MEDIA_TYPE, payload=payload, annotations=annotations
    )


def _pem_certificates(text: str, what: str) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(x509.load_pem_x509_certificates(text.encode()))
    except ValueError as exc:
        refuse(Code.SIGNATURE_MALFORMED, f"{what} is not PEM certificates: {exc}")
