"""Signatures of OCI base profiles: trust policies, verification and signing (DESIGN §6).

Pure functions over bytes that were already fetched; discovery in a registry is the caller's
(``agent.oci.discover``, used by ``agent.oci.verification``; publishing: ``agent.oci.publish``).
Importing this package imports ``cryptography`` only: sigstore-python is loaded on first use by
a keyless policy or keyless signing.

Verification::

    verify_legacy(payload, annotations, policy, expected_digest=..., expected_repository=...)
    verify_bundle(bundle_json, policy, expected_digest=..., expected_repository=...)

    verify_first(candidates, policy, expected_digest=..., expected_repository=...)

All return a :class:`Verified` record or raise :class:`agent.errors.VerificationError` with a
code of :class:`agent.codes.Code` (raised by :func:`.refuse.refuse`).
"""

from agent.oci.signatures.discovery import (
    BundleCandidate,
    LegacyCandidate,
    legacy_tag,
    referrers_tag,
    verify_first,
)
from agent.oci.signatures.keys import encrypted_key_pem, load_signing_key
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.policy import Keyless, NoVerify, Policy, PublicKeys, Verified
from agent.oci.signatures.sign import (
    KeylessConfig,
    sign_bundle_keyless,
    sign_bundle_with_key,
    sign_legacy_keyless,
    sign_legacy_with_key,
)
from agent.oci.signatures.trustroot import TrustRoot
from agent.oci.signatures.verify_bundle import verify_bundle
from agent.oci.signatures.verify_legacy import verify_legacy

__all__ = [
    "BundleCandidate",
    "Keyless",
    "KeylessConfig",
    "LegacyCandidate",
    "LegacyLayer",
    "NoVerify",
    "Policy",
    "PublicKeys",
    "TrustRoot",
    "Verified",
    "encrypted_key_pem",
    "legacy_tag",
    "load_signing_key",
    "referrers_tag",
    "sign_bundle_keyless",
    "sign_bundle_with_key",
    "sign_legacy_keyless",
    "sign_legacy_with_key",
    "verify_bundle",
    "verify_first",
    "verify_legacy",
]
