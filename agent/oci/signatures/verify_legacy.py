"""Verify one cosign legacy ``.sig`` layer — offline, with :mod:`.checks`, never sigstore-python.

sigstore-python cannot verify these: they carry a Rekor SET but no inclusion proof, which it
requires (see the research notes, §4.4). The order of the checks is the bundle verifier's, so a
failure gets the same code in both formats; whichever check fails, nothing is accepted until all
of them passed:

1. decode the material (``signature-missing``, ``signature-malformed``);
2. keyless: the certificate at the log's integration time — validity, chain, code-signing, SCT
   (``certificate-*``, ``sct-invalid``) — then issuer and identity
   (``issuer-mismatch``, ``identity-mismatch``);
3. the log entry: its SET (``tlog-invalid``), and that it logged this very signature, certificate
   or key (``tlog-inconsistent``) over this very payload (``payload-tampered``);
4. the signature over the payload (``signature-invalid``);
5. the claims: this digest (``digest-mismatch``) in this repository (``repository-mismatch``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography import x509

from agent.codes import Code
from agent.oci.signatures.checks import (
    integrated_at,
    same_public_key,
    verify_certificate,
    verify_sct,
    verify_set,
    verify_signature,
)
from agent.oci.signatures.legacy import LegacySignature, parse_annotations
from agent.oci.signatures.payload import (
    MAX_PAYLOAD_BYTES,
    check_digest,
    check_repository,
    parse_simple_signing,
)
from agent.oci.signatures.policy import Keyless, NoVerify, Policy, PublicKeys, Signer, Verified
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import HashedRekord, LogEntry, parse_hashedrekord
from agent.oci.signatures.trustroot import LogPublicKey

FORMAT = "cosign-legacy"


def verify_legacy(
    payload: bytes,
    annotations: Mapping[str, str],
    policy: Policy,
    *,
    expected_digest: str,
    expected_repository: str,
    now: datetime | None = None,
) -> Verified:
    """Verify a legacy signature layer (its blob ``payload`` and its ``annotations``).

    ``expected_digest`` is the artifact digest resolved from the tag, ``expected_repository`` the
    repository it was resolved in; ``now`` bounds log integration times (default: the clock).
    Raises :class:`agent.errors.VerificationError` with a code of :class:`agent.codes.Code`.
    """
    check_digest(expected_digest)
    now = now or datetime.now(UTC)
    if isinstance(policy, NoVerify):
        refuse(Code.POLICY_UNSUPPORTED, "verify = false: there is nothing to verify against")
    if len(payload) > MAX_PAYLOAD_BYTES:
        refuse(Code.SIGNATURE_MALFORMED, f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    sig = parse_annotations(annotations)
    if isinstance(policy, Keyless):
        signer = _keyless(payload, sig, policy, now)
    else:
        signer = _with_keys(payload, sig, policy, now)
    claims = parse_simple_signing(payload)
    if claims.digest != expected_digest:
        refuse(
            Code.DIGEST_MISMATCH, f"signature is for {claims.digest}, not {expected_digest}"
        )
    repository = check_repository(claims.docker_reference, expected_repository)
    return Verified.build(
        policy, signer, format=FORMAT, digest=expected_digest, repository=repository
    )


def _keyless(payload: bytes, sig: LegacySignature, policy: Keyless, now: datetime) -> Signer:
    cert = sig.certificate
    if cert is None:
        refuse(Code.CERTIFICATE_MISSING, "keyless trust, but the signature has no certificate")
    if sig.entry is None:
        refuse(Code.TLOG_MISSING, "a keyless signature needs its log entry (the signing time)")
    root = policy.root
    issuer_cert = verify_certificate(cert, root, at=integrated_at(sig.entry))
    verify_sct(cert, issuer_cert, root)
    identity, issuer = policy.check_identity(cert)
    body = _check_entry(sig.entry, payload, sig.signature, policy, now)
    try:
        logged_cert = x509.load_pem_x509_certificate(body.public_key_pem)
    except ValueError:
        refuse(Code.TLOG_INCONSISTENT, "the log entry does not hold a certificate")
    if logged_cert != cert:
        refuse(Code.TLOG_INCONSISTENT, "the log entry holds another certificate")
    key = cert.public_key()
    if not isinstance(key, LogPublicKey):
        refuse(Code.CERTIFICATE_INVALID, f"certificate key type {type(key).__name__}")
    if not verify_signature(key, sig.signature, payload):
        refuse(Code.SIGNATURE_INVALID, "signature does not verify with the certificate's key")
    return Signer(identity=identity, issuer=issuer, entry=sig.entry)


def _with_keys(payload: bytes, sig: LegacySignature, policy: PublicKeys, now: datetime) -> Signer:
    body = None
    entry = sig.entry if policy.require_tlog else None
    if policy.require_tlog:
        if sig.entry is None:
            refuse(Code.TLOG_MISSING, "require_tlog, but the signature has no log entry")
        body = _check_entry(sig.entry, payload, sig.signature, policy, now)
    key = next((k for k in policy.parsed if verify_signature(k, sig.signature, payload)), None)
    if key is None:
        refuse(
            Code.SIGNATURE_INVALID,
            f"signature does not verify with any of the {len(policy.parsed)} trusted keys",
        )
    if body is not None and not same_public_key(body.public_key_pem, key):
        refuse(Code.TLOG_INCONSISTENT, "the log entry holds another public key")
    return Signer(key=key, entry=entry)


def _check_entry(
    entry: LogEntry, payload: bytes, signature: bytes, policy: Keyless | PublicKeys, now: datetime
) -> HashedRekord:
    """SET first, then that the (now authentic) entry logged this signature over this payload."""
    verify_set(entry, policy.root, now=now)
    body = parse_hashedrekord(entry.body)
    if body.sha256_hex != hashlib.sha256(payload).hexdigest():
        refuse(Code.PAYLOAD_TAMPERED, "the payload is not the one the log entry recorded")
    if body.signature != signature:
        refuse(Code.TLOG_INCONSISTENT, "the log entry records another signature")
    return body
