"""The failure classes of signature verification: one stable code each, and what to do about it.

Every refusal is an :class:`agent.errors.VerificationError` whose ``code`` is one of the constants
below. The codes are a contract (logs, metrics labels, the status API): never reuse one for a
different meaning. Whichever check fails first decides the code; the checks run in the same order
for legacy signatures and bundles (material → certificate → identity → log → signature → claims),
so one failure reads the same in both formats.
"""

from __future__ import annotations

from typing import NoReturn

from agent.errors import VerificationError

SIGNATURE_MISSING = "signature-missing"
"""No signature material at all for the artifact."""
SIGNATURE_MALFORMED = "signature-malformed"
"""Material present but undecodable: bad base64/PEM/JSON, wrong shape, or over a size cap."""
SIGNATURE_INVALID = "signature-invalid"
"""The cryptographic signature does not verify under the certificate or any trusted key."""
PAYLOAD_INVALID = "payload-invalid"
"""The signed payload is not a cosign image-signature claim (simple-signing or in-toto)."""
PAYLOAD_TAMPERED = "payload-tampered"
"""The payload is not the one whose hash the transparency log recorded for this signature."""
DIGEST_MISMATCH = "digest-mismatch"
"""A valid signature, but for another artifact digest (a replayed signature)."""
REPOSITORY_MISMATCH = "repository-mismatch"
"""A valid signature for this digest, but claimed for another repository."""
IDENTITY_MISMATCH = "identity-mismatch"
"""The certificate's identity (SAN) is not the one the policy requires."""
ISSUER_MISMATCH = "issuer-mismatch"
"""The certificate's OIDC issuer is not the one the policy requires."""
CERTIFICATE_MISSING = "certificate-missing"
"""A keyless policy, but the signature carries no signing certificate (key-signed)."""
CERTIFICATE_UNTRUSTED = "certificate-untrusted"
"""The certificate does not chain to a certificate authority of the policy's trusted root."""
CERTIFICATE_EXPIRED = "certificate-expired"
"""The signing time (log integration time) lies outside the certificate's validity."""
CERTIFICATE_INVALID = "certificate-invalid"
"""The certificate is not a Sigstore code-signing certificate (key usage, EKU, identity fields)."""
SCT_INVALID = "sct-invalid"
"""No embedded SCT from a trusted CT log verifies for the certificate."""
TLOG_MISSING = "tlog-missing"
"""The policy needs a transparency-log entry and the signature has none."""
TLOG_INVALID = "tlog-invalid"
"""The log entry's signed promise (SET) or inclusion proof fails, or its log is unknown."""
TLOG_INCONSISTENT = "tlog-inconsistent"
"""The log entry verifies but records another signature, key or certificate."""
TRUST_ROOT_INVALID = "trust-root-invalid"
"""The trusted root cannot be read or has nothing usable for this check."""
POLICY_UNSUPPORTED = "policy-unsupported"
"""This policy cannot decide on this kind of signature (e.g. ``NoVerify``, Rekor v2 key bundles)."""

ALL_CODES = (
    SIGNATURE_MISSING,
    SIGNATURE_MALFORMED,
    SIGNATURE_INVALID,
    PAYLOAD_INVALID,
    PAYLOAD_TAMPERED,
    DIGEST_MISMATCH,
    REPOSITORY_MISMATCH,
    IDENTITY_MISMATCH,
    ISSUER_MISMATCH,
    CERTIFICATE_MISSING,
    CERTIFICATE_UNTRUSTED,
    CERTIFICATE_EXPIRED,
    CERTIFICATE_INVALID,
    SCT_INVALID,
    TLOG_MISSING,
    TLOG_INVALID,
    TLOG_INCONSISTENT,
    TRUST_ROOT_INVALID,
    POLICY_UNSUPPORTED,
)

_HINTS = {
    SIGNATURE_MISSING: "sign the artifact (secprof push), or set verify = false for this scope",
    SIGNATURE_MALFORMED: "the signature was not written by cosign or secprof, or was damaged",
    SIGNATURE_INVALID: "the artifact was signed by another key, or the signature was altered",
    PAYLOAD_INVALID: "only cosign image signatures are accepted, not attestations of other kinds",
    PAYLOAD_TAMPERED: "the signed payload was modified after signing",
    DIGEST_MISMATCH: "a signature of another artifact was copied onto this one; re-sign it",
    REPOSITORY_MISMATCH: "the signature was made for another repository; sign it where it is",
    IDENTITY_MISMATCH: "check the trust policy's identity against the signer's certificate SAN",
    ISSUER_MISMATCH: "check the trust policy's issuer against the signer's OIDC issuer",
    CERTIFICATE_MISSING: "this scope expects keyless signatures; configure public_keys instead",
    CERTIFICATE_UNTRUSTED: "the signer used another Sigstore instance; check trusted_root",
    CERTIFICATE_EXPIRED: "the signature was logged after its short-lived certificate expired",
    CERTIFICATE_INVALID: "the certificate is not a Sigstore code-signing certificate",
    SCT_INVALID: "the certificate was not logged by a CT log of the trusted root",
    TLOG_MISSING: "sign with transparency-log upload, or set require_tlog = false",
    TLOG_INVALID: "the log entry was not signed by a log of the trusted root",
    TLOG_INCONSISTENT: "the log entry belongs to another signature",
    TRUST_ROOT_INVALID: "check the trusted_root.json file of the trust policy",
    POLICY_UNSUPPORTED: "see the message; this signature kind needs another policy",
}


def fail(code: str, message: str, *, hint: str | None = None) -> NoReturn:
    """Raise the :class:`VerificationError` for ``code`` with its standard hint."""
    raise VerificationError(message, code=code, hint=_HINTS[code] if hint is None else hint)
