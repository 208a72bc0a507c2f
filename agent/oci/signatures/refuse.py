"""Refusing a signature: the :class:`VerificationError` for a code, with what to do about it.

Every refusal carries one of the signature codes of :class:`agent.codes.Code` (the one registry;
its meanings say what each check found). Whichever check fails first decides the code; the
checks run in the same order for legacy signatures and bundles (material → certificate →
identity → log → signature → claims), so one failure reads the same in both formats.
"""

from __future__ import annotations

from typing import NoReturn

from agent.codes import Code
from agent.errors import VerificationError

HINTS = {
    Code.SIGNATURE_MISSING: "sign the artifact (secprof push), or set verify = false for this "
    "scope",
    Code.SIGNATURE_MALFORMED: "the signature was not written by cosign or secprof, or was "
    "damaged",
    Code.SIGNATURE_INVALID: "the artifact was signed by another key, or the signature was "
    "altered",
    Code.PAYLOAD_INVALID: "only cosign image signatures are accepted, not attestations of other "
    "kinds",
    Code.PAYLOAD_TAMPERED: "the signed payload was modified after signing",
    Code.DIGEST_MISMATCH: "a signature of another artifact was copied onto this one; re-sign it",
    Code.REPOSITORY_MISMATCH: "the signature was made for another repository; sign it where it "
    "is",
    Code.IDENTITY_MISMATCH: "check the trust policy's identity against the signer's certificate "
    "SAN",
    Code.ISSUER_MISMATCH: "check the trust policy's issuer against the signer's OIDC issuer",
    Code.CERTIFICATE_MISSING: "this scope expects keyless signatures; configure public_keys "
    "instead",
    Code.CERTIFICATE_UNTRUSTED: "the signer used another Sigstore instance; check trusted_root",
    Code.CERTIFICATE_EXPIRED: "the signature was logged after its short-lived certificate "
    "expired",
    Code.CERTIFICATE_INVALID: "the certificate is not a Sigstore code-signing certificate",
    Code.SCT_INVALID: "the certificate was not logged by a CT log of the trusted root",
    Code.TLOG_MISSING: "sign with transparency-log upload, or set require_tlog = false",
    Code.TLOG_INVALID: "the log entry was not signed by a log of the trusted root",
    Code.TLOG_INCONSISTENT: "the log entry belongs to another signature",
    Code.TRUST_ROOT_INVALID: "check the trusted_root.json file of the trust policy",
    Code.POLICY_UNSUPPORTED: "see the message; this signature kind needs another policy",
}
"""The standard hint of each code a signature check refuses with."""


def refuse(code: Code, message: str, *, hint: str | None = None) -> NoReturn:
    """Raise the :class:`VerificationError` for ``code`` with its standard hint."""
    raise VerificationError(message, code=code, hint=HINTS[code] if hint is None else hint)
