"""A Sigstore ``trusted_root.json``, read with ``cryptography`` alone.

The legacy-signature verifier and the key-based policies need the trusted root's parts one by one
— each CA with its own validity window, each log key with its log ID and validity window — which
sigstore-python keeps private (``TrustedRoot.get_fulcio_certs()`` flattens the CAs and drops their
windows). Reading the file here also keeps ``sigstore`` (≈300 ms of imports) off the key-only path.
Bundles are still verified by sigstore-python, over the same bytes (``TrustRoot.data``).

The file format is protobuf-specs ``dev.sigstore.trustroot.v1.TrustedRoot`` in its JSON form.
Log keys of a type this module does not know are skipped, as sigstore-python does; a malformed
file is a ``trust-root-invalid`` error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from agent.codes import Code
from agent.oci.signatures.refuse import refuse

MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
MAX_TRUST_ROOT_BYTES = 1 << 20

# The production root as shipped inside the sigstore wheel (read as a file, never through TUF).
_PRODUCTION_IN_WHEEL = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")

LogPublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

_KEY_TYPES: dict[str, type[Any]] = {
    "PKIX_ECDSA_P256_SHA_256": ec.EllipticCurvePublicKey,
    "PKIX_ECDSA_P384_SHA_384": ec.EllipticCurvePublicKey,
    "PKIX_ECDSA_P521_SHA_512": ec.EllipticCurvePublicKey,
    "PKIX_ED25519": ed25519.Ed25519PublicKey,
    "PKIX_RSA_PKCS1V15_2048_SHA256": rsa.RSAPublicKey,
    "PKIX_RSA_PKCS1V15_3072_SHA256": rsa.RSAPublicKey,
    "PKIX_RSA_PKCS1V15_4096_SHA256": rsa.RSAPublicKey,
    "PKCS1_RSA_PKCS1V5": rsa.RSAPublicKey,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """A ``validFor`` window; ``end`` ``None`` means open-ended. Both ends are inclusive."""

    start: datetime
    end: datetime | None

    def contains(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)


@dataclass(frozen=True, slots=True, kw_only=True)
class LogKey:
    """One transparency or CT log key: ``log_id`` is what entries and SCTs name it by."""

    log_id: bytes
    key: LogPublicKey
    details: str
    valid: Validity
    base_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateAuthority:
    """One Fulcio CA: ``chain`` runs from the issuing certificate to the root."""

    chain: tuple[x509.Certificate, ...]
    valid: Validity
    uri: str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrustRoot:
    """A parsed trusted root; equal (and hashed) by the digest of its bytes."""

    source: str
    data: bytes = field(repr=False)
    digest: str
    tlogs: tuple[LogKey, ...]
    ctlogs: tuple[LogKey, ...]
    authorities: tuple[CertificateAuthority, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustRoot) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "trusted_root.json") -> TrustRoot:
        """Parse ``trusted_root.json`` content; ``source`` names it in error messages."""
        if len(data) > MAX_TRUST_ROOT_BYTES:
            _bad(source, f"larger than {MAX_TRUST_ROOT_BYTES} bytes")
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            _bad(source, f"not JSON: {exc}")
        if not isinstance(doc, dict) or doc.get("mediaType") != MEDIA_TYPE:
            _bad(source, f"mediaType is not {MEDIA_TYPE}")
        try:
            tlogs = tuple(k for k in map(_log_key, _list(doc, "tlogs")) if k is not None)
            ctlogs = tuple(k for k in map(_log_key, _list(doc, "ctlogs")) if k is not None)
            cas = tuple(_authority(a) for a in _list(doc, "certificateAuthorities"))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            _bad(source, f"malformed: {type(exc).__name__}: {exc}")
        return cls(
            source=source,
            data=data,
            digest="sha256:" + hashlib.sha256(data).hexdigest(),
            tlogs=tlogs,
            ctlogs=ctlogs,
            authorities=cas,
        )

    @classmethod
    def from_file(cls, path: Path) -> TrustRoot:
        """Read and parse a ``trusted_root.json`` (read once: id and checks share the bytes)."""
        try:
            with path.open("rb") as f:
                data = f.read(MAX_TRUST_ROOT_BYTES + 1)
        except OSError as exc:
            _bad(str(path), f"cannot read: {exc.strerror or exc}")
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def production(cls) -> TrustRoot:
        """The public-good production root shipped in the installed sigstore wheel."""
        return cls.from_file(production_root_path())


def production_root_path() -> Path:
    """Where the sigstore wheel keeps its production ``trusted_root.json`` (not importing it)."""
    spec = importlib.util.find_spec("sigstore")
    if spec is None or not spec.submodule_search_locations:
        _bad("production trusted root", "the sigstore package is not installed")
    return Path(next(iter(spec.submodule_search_locations)), *_PRODUCTION_IN_WHEEL)


def _bad(source: str, why: str) -> NoReturn:
    refuse(Code.TRUST_ROOT_INVALID, f"trusted root {source}: {why}")


def _list(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError(f"{key} is not a list of objects")
    return value


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise TypeError(f"timestamp {text!r} is not a string")
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return when


def _validity(doc: dict[str, Any]) -> Validity:
    # validFor.start is required: a window without a start would trust keys from any time.
    valid = doc["validFor"]
    end = valid.get("end")
    return Validity(start=_time(valid["start"]), end=None if end is None else _time(end))


def _log_key(doc: dict[str, Any]) -> LogKey | None:
    public = doc["publicKey"]
    details = public["keyDetails"]
    expected = _KEY_TYPES.get(details)
    if expected is None:
        return None
    key = load_der_public_key(base64.b64decode(public["rawBytes"], validate=True))
    if not isinstance(key, expected):
        raise ValueError(f"log key is {type(key).__name__}, keyDetails says {details}")
    return LogKey(
        log_id=base64.b64decode(doc["logId"]["keyId"], validate=True),
        key=key,
        details=details,
        valid=_validity(public),
        base_url=str(doc.get("baseUrl", "")),
    )


def _authority(doc: dict[str, Any]) -> CertificateAuthority:
    raw = doc["certChain"]["certificates"]
    chain = tuple(
        x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"], validate=True)) for c in raw
    )
    if not chain:
        raise ValueError("certificate authority without certificates")
    return CertificateAuthority(chain=chain, valid=_validity(doc), uri=str(doc.get("uri", "")))
