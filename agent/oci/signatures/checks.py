"""The hand-written cryptographic checks — the code to review like crypto code.

sigstore-python verifies bundles that carry an inclusion proof; it cannot take cosign's legacy
``.sig`` signatures (a SET and no proof) nor public-key signatures. Those are verified with the
checks below, built on ``cryptography`` only, mirroring what cosign and sigstore-python do:

* :func:`verify_set` — the log's signed entry timestamp, with the key whose log ID the entry names
  (never "any key of the root"), valid at the integration time, which must not be in the future;
* :func:`verify_certificate` — the leaf was valid at the signing time, chains to one CA of the
  trusted root that was itself valid then (webpki path building, as sigstore-python configures
  it), and is a code-signing certificate;
* :func:`verify_sct` — an embedded precertificate SCT from a CT log of the trusted root
  (RFC 6962 §3.2), signed over the TBS without the SCT list and the issuer's key hash;
* :func:`verify_signature` — one signature with one public key.

Every failure raises :class:`agent.errors.VerificationError` with its code; nothing here returns
"false" for a caller to forget to test, except :func:`verify_signature`, whose callers pick
the code.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as X509VerificationError

from agent.codes import Code
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import LogEntry, set_payload
from agent.oci.signatures.trustroot import LogKey, LogPublicKey, TrustRoot

# A log may stamp an entry slightly ahead of this host's clock; more than this is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)

_LOG_HASHES: dict[str, hashes.HashAlgorithm] = {
    "PKIX_ECDSA_P384_SHA_384": hashes.SHA384(),
    "PKIX_ECDSA_P521_SHA_512": hashes.SHA512(),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z, the last time a datetime can hold


def key_fingerprint(key: LogPublicKey) -> str:
    """``sha256:<hex>`` of the key's DER SubjectPublicKeyInfo: how a key is named in records."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def verify_signature(
    key: LogPublicKey, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None = None
) -> bool:
    """Whether ``signature`` over ``data`` verifies with ``key`` (SHA-256 unless told otherwise).

    ECDSA signatures are ASN.1 DER as cosign writes them; RSA is PKCS#1 v1.5; Ed25519 is pure.
    """
    algorithm = algorithm or hashes.SHA256()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:  # pragma: no cover - the type union above is exhaustive
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def same_public_key(pem: bytes, key: LogPublicKey) -> bool:
    """Whether ``pem`` (a PEM public key, as a log entry records it) is ``key``."""
    try:
        logged = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(logged.public_bytes(*spki) == key.public_bytes(*spki))


def integrated_at(entry: LogEntry) -> datetime:
    """The entry's integration time as an aware UTC datetime."""
    if entry.integrated_time > _LAST_SECOND:
        refuse(Code.TLOG_INVALID, f"integration time {entry.integrated_time} is out of range")
    return _EPOCH + timedelta(seconds=entry.integrated_time)


def verify_set(entry: LogEntry, root: TrustRoot, *, now: datetime) -> LogKey:
    """Check the entry's signed entry timestamp; return the log key that signed it."""
    if entry.signed_entry_timestamp is None:
        refuse(Code.TLOG_INVALID, "the log entry has no signed entry timestamp")
    # Only keys listed under exactly this log ID, valid at the integration time, may vouch for
    # the entry (sigstore-python falls back to every key of the root when the ID is unknown).
    named = [k for k in root.tlogs if k.log_id == entry.log_id]
    if not named:
        refuse(Code.TLOG_INVALID, f"log {entry.log_id.hex()} is not in the trusted root")
    when = integrated_at(entry)
    if when > now + MAX_CLOCK_SKEW:
        refuse(
            Code.TLOG_INVALID, f"the log entry claims to be integrated in the future ({when})"
        )
    payload = set_payload(entry)
    valid = [k for k in named if k.valid.contains(when)]
    if not valid:
        refuse(Code.TLOG_INVALID, f"log {named[0].base_url} was not trusted at {when}")
    for log in valid:
        sset = entry.signed_entry_timestamp
        if verify_signature(log.key, sset, payload, _LOG_HASHES.get(log.details)):
            return log
    refuse(
        Code.TLOG_INVALID,
        f"signed entry timestamp of log index {entry.log_index} "
        f"does not verify with the key of {valid[0].base_url}",
    )


def verify_certificate(
    cert: x509.Certificate, root: TrustRoot, *, at: datetime
) -> x509.Certificate:
    """Check a Fulcio leaf at signing time ``at``; return the CA certificate that issued it."""
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        refuse(
            Code.CERTIFICATE_EXPIRED,
            f"signed at {at}, outside the certificate's validity "
            f"{cert.not_valid_before_utc} .. {cert.not_valid_after_utc}",
        )
    # Fulcio leaves carry codeSigning, not the clientAuth EKU a client verifier expects: relax
    # the EKU rule only (as sigstore-python does) and check codeSigning below.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    issuer = None
    for ca in root.authorities:
        if not ca.valid.contains(at):
            continue
        verifier = (
            PolicyBuilder()
            .store(Store(list(ca.chain)))
            .time(at)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            chain = verifier.verify(cert, []).chain
        except (X509VerificationError, x509.UnsupportedGeneralNameType):
            continue
        issuer = chain[1]
        break
    if issuer is None:
        refuse(
            Code.CERTIFICATE_UNTRUSTED,
            f"certificate issued by {cert.issuer.rfc4514_string()!r} "
            f"does not chain to a CA of the trusted root valid at {at}",
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound as exc:
        refuse(Code.CERTIFICATE_INVALID, f"certificate lacks {exc.oid.dotted_string}")
    if not usage.digital_signature or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        refuse(Code.CERTIFICATE_INVALID, "certificate is not for code signing")
    return issuer


def verify_sct(cert: x509.Certificate, issuer: x509.Certificate, root: TrustRoot) -> None:
    """Require one embedded precertificate SCT that a CT log of the trusted root signed."""
    try:
        scts = cert.extensions.get_extension_for_class(
            x509.PrecertificateSignedCertificateTimestamps
        ).value
    except x509.ExtensionNotFound:
        refuse(Code.SCT_INVALID, "certificate has no embedded SCT")
    issuer_spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issuer_key_hash = hashlib.sha256(issuer_spki).digest()
    tbs = cert.tbs_precertificate_bytes
    for sct in scts:
        when = sct.timestamp.replace(tzinfo=UTC)
        logs = [k for k in root.ctlogs if k.log_id == sct.log_id and k.valid.contains(when)]
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE:
            continue
        if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            continue
        millis = (when - _EPOCH) // timedelta(milliseconds=1)  # exact: no float round trip
        # digitally-signed struct of RFC 6962 §3.2: version, signature_type=certificate_timestamp,
        # timestamp, entry_type=precert_entry, issuer_key_hash, TBS<1..2^24-1>,
        # extensions<0..2^16-1>
        signed = (
            struct.pack("!BBQH", sct.version.value, 0, millis, 1)
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", len(sct.extension_bytes))
            + sct.extension_bytes
        )
        if any(verify_signature(k.key, sct.signature, signed, hashes.SHA256()) for k in logs):
            return
    refuse(Code.SCT_INVALID, "no embedded SCT verifies with a CT log of the trusted root")
