"""Verify one sigstore bundle (cosign v3's image-signature format) for an artifact digest.

Keyless bundles go through sigstore-python (``Verifier.verify_dsse``: chain, SCT, identity,
inclusion proof, checkpoint, SET, DSSE signature, log-body consistency). Before that, cheap
checks on the not-yet-verified bundle pick a precise code for the failures sigstore reports only
as a message (they can only refuse, never accept). Key-based bundles are verified here with
``cryptography``: the DSSE signature over PAE with one of the trusted keys and, when the policy
requires a log, the entry's SET and its consistency with the envelope, as for legacy signatures.
Key-based log checks need a SET (Rekor v1): Rekor v2 entries carry none and are refused as
``policy-unsupported`` for now.

What binds a bundle to an artifact is the in-toto statement's subject digest (the predicate must
be cosign's image-signature predicate). A bundle binds a repository only if that subject carries a
``name``; cosign v3 sets none, so a cosign bundle is bound to its repository only by where it was
found (the referrer's ``subject`` in that repository) and by the trust policy's scope, and
:attr:`Verified.repository` is ``None``. When a name is present it must name the expected
repository (``repository-mismatch``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from agent.codes import Code
from agent.oci.signatures.bundle import Bundle, parse_bundle
from agent.oci.signatures.checks import (
    MAX_CLOCK_SKEW,
    integrated_at,
    same_public_key,
    verify_set,
    verify_signature,
)
from agent.oci.signatures.payload import (
    COSIGN_SIGN_PREDICATE,
    INTOTO_PAYLOAD_TYPE,
    check_digest,
    check_repository,
    pae,
    parse_statement,
)
from agent.oci.signatures.policy import Keyless, NoVerify, Policy, PublicKeys, Signer, Verified
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import parse_dsse_body

FORMAT = "sigstore-bundle"


def verify_bundle(
    bundle: bytes,
    policy: Policy,
    *,
    expected_digest: str,
    expected_repository: str,
    now: datetime | None = None,
) -> Verified:
    """Verify a sigstore bundle (JSON bytes) as an image signature of ``expected_digest``.

    Raises :class:`agent.errors.VerificationError` with a code of :class:`agent.codes.Code`.
    """
    check_digest(expected_digest)
    now = now or datetime.now(UTC)
    if isinstance(policy, NoVerify):
        refuse(Code.POLICY_UNSUPPORTED, "verify = false: there is nothing to verify against")
    parsed = parse_bundle(bundle)
    if parsed.payload_type is None:
        refuse(
            Code.POLICY_UNSUPPORTED, "a message-signature bundle signs a blob, not an image"
        )
    if isinstance(policy, Keyless):
        signer, payload_type, payload = _keyless(bundle, parsed, policy, now)
    else:
        payload_type, payload = parsed.payload_type, parsed.payload
        signer = _with_keys(parsed, payload_type, policy, now)
    if payload_type != INTOTO_PAYLOAD_TYPE:
        refuse(Code.PAYLOAD_INVALID, f"DSSE payload type is {payload_type!r}")
    statement = parse_statement(payload)
    if statement.predicate_type != COSIGN_SIGN_PREDICATE:
        refuse(
            Code.PAYLOAD_INVALID,
            f"predicate {statement.predicate_type!r} is not an image signature",
        )
    wanted = expected_digest.removeprefix("sha256:")
    names = [name for name, sha in statement.subjects if sha == wanted]
    if not names:
        found = [sha for _, sha in statement.subjects]
        refuse(Code.DIGEST_MISMATCH, f"signature is for sha256 {found}, not {expected_digest}")
    repository = None if names[0] is None else check_repository(names[0], expected_repository)
    return Verified.build(
        policy, signer, format=FORMAT, digest=expected_digest, repository=repository
    )


def _keyless(
    data: bytes, parsed: Bundle, policy: Keyless, now: datetime
) -> tuple[Signer, str, bytes]:
    cert = parsed.certificate
    if cert is None:
        refuse(Code.CERTIFICATE_MISSING, "keyless trust, but the bundle names a public key")
    if len(parsed.entries) != 1:
        refuse(
            Code.SIGNATURE_MALFORMED, f"bundle has {len(parsed.entries)} log entries, not 1"
        )
    item = parsed.entries[0]
    # sigstore takes the integration time as the signing time only with a SET (Rekor v1); Rekor v2
    # entries have neither and their time comes from a timestamp authority.
    logged_time = bool(item.entry.integrated_time and item.entry.signed_entry_timestamp)
    if logged_time:
        at = integrated_at(item.entry)
        if at > now + MAX_CLOCK_SKEW:
            refuse(
                Code.TLOG_INVALID, f"the log entry claims to be integrated in the future ({at})"
            )
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            refuse(
                Code.CERTIFICATE_EXPIRED,
                f"logged at {at}, outside the certificate's "
                f"validity {cert.not_valid_before_utc} .. {cert.not_valid_after_utc}",
            )
    if (item.kind, item.version) == ("dsse", "0.0.1"):
        logged = parse_dsse_body(item.entry.body)
        if logged.payload_sha256_hex != hashlib.sha256(parsed.payload).hexdigest():
            refuse(Code.PAYLOAD_TAMPERED, "the payload is not the one the log entry recorded")
    from agent.oci.signatures import _sigstore  # noqa: PLC0415 - keeps sigstore off the key path

    payload_type, payload, verified_cert = _sigstore.verify_keyless_dsse(data, policy)
    # Report the identity of the certificate sigstore verified, not of our own parse.
    identity, issuer = policy.check_identity(verified_cert)
    entry = item.entry if logged_time else None
    return Signer(identity=identity, issuer=issuer, entry=entry), payload_type, payload


def _with_keys(parsed: Bundle, payload_type: str, policy: PublicKeys, now: datetime) -> Signer:
    if len(parsed.signatures) != 1:
        refuse(
            Code.SIGNATURE_MALFORMED,
            f"DSSE envelope has {len(parsed.signatures)} signatures, not 1",
        )
    signature = parsed.signatures[0]
    entry = None
    logged = None
    if policy.require_tlog:
        if not parsed.entries:
            refuse(Code.TLOG_MISSING, "require_tlog, but the bundle has no log entry")
        item = parsed.entries[0]
        if item.entry.signed_entry_timestamp is None:
            refuse(
                Code.POLICY_UNSUPPORTED,
                "key-based log checks need a signed entry "
                "timestamp (Rekor v1); this entry has none",
            )
        verify_set(item.entry, policy.root, now=now)
        entry = item.entry
        logged = parse_dsse_body(item.entry.body)
        if logged.payload_sha256_hex != hashlib.sha256(parsed.payload).hexdigest():
            refuse(Code.PAYLOAD_TAMPERED, "the payload is not the one the log entry recorded")
        if [s for s, _ in logged.signatures] != [signature]:
            refuse(Code.TLOG_INCONSISTENT, "the log entry records another signature")
    signed = pae(payload_type, parsed.payload)
    key = next((k for k in policy.parsed if verify_signature(k, signature, signed)), None)
    if key is None:
        refuse(
            Code.SIGNATURE_INVALID,
            f"DSSE signature does not verify with any of the {len(policy.parsed)} trusted keys",
        )
    if logged is not None and not same_public_key(logged.signatures[0][1], key):
        refuse(Code.TLOG_INCONSISTENT, "the log entry holds another public key")
    return Signer(key=key, entry=entry)
