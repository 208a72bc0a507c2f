"""Signatures of OCI base profiles: trust policies and verification (DESIGN §6); signing is
:mod:`agent.publish`'s.

Pure functions over bytes that were already fetched; discovery in a registry is the caller's
(``agent.oci.discover``, used by ``agent.oci.verification``). Importing this package imports
``cryptography`` only: sigstore-python is loaded on first use by a keyless policy.

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
from agent.oci.signatures.legacy import LegacyLayer
from agent.oci.signatures.policy import Keyless, NoVerify, Policy, PublicKeys, Verified
from agent.oci.signatures.trustroot import TrustRoot
from agent.oci.signatures.verify_bundle import verify_bundle
from agent.oci.signatures.verify_legacy import verify_legacy

__all__ = [
    "BundleCandidate",
    "Keyless",
    "LegacyCandidate",
    "LegacyLayer",
    "NoVerify",
    "Policy",
    "PublicKeys",
    "TrustRoot",
    "Verified",
    "legacy_tag",
    "referrers_tag",
    "verify_bundle",
    "verify_first",
    "verify_legacy",
]
