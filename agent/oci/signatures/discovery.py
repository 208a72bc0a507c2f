"""Where signatures live in a registry, and choosing among those found.

Discovery itself (HTTP) is :mod:`agent.oci.discover`'s; this module names what it looks for and
turns what it found into one decision. For an artifact ``repo@sha256:<hex>``:

* legacy: the manifest tagged :func:`legacy_tag` (``sha256-<hex>.sig``) in the same repository;
  each of its layers of media type :data:`LEGACY_LAYER_MEDIA_TYPE` is one :class:`LegacyCandidate`
  (blob = payload, layer annotations = annotations; check each blob against its descriptor);
* bundles: ``GET /v2/<repo>/referrers/sha256:<hex>?artifactType=`` :data:`BUNDLE_ARTIFACT_TYPE`,
  or, where a registry has no referrers API, the OCI index tagged :func:`referrers_tag`
  (``sha256-<hex>``); each referrer whose ``subject`` is the artifact and whose layer has media
  type :data:`BUNDLE_MEDIA_TYPE` is one :class:`BundleCandidate` (index entries are unsigned:
  re-check ``subject`` in the fetched manifest).

:func:`verify_first` accepts the first candidate that passes every check of the policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from agent.codes import Code
from agent.errors import VerificationError
from agent.oci.signatures.payload import SIMPLE_SIGNING_MEDIA_TYPE, check_digest
from agent.oci.signatures.policy import Policy, Verified
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.verify_bundle import verify_bundle
from agent.oci.signatures.verify_legacy import verify_legacy

LEGACY_LAYER_MEDIA_TYPE = SIMPLE_SIGNING_MEDIA_TYPE
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_ARTIFACT_TYPE = BUNDLE_MEDIA_TYPE
MAX_CANDIDATES = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyCandidate:
    """One layer of a ``.sig`` manifest; ``source`` says where it came from, for messages."""

    payload: bytes
    annotations: Mapping[str, str]
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleCandidate:
    """One sigstore bundle found as a referrer of the artifact."""

    bundle: bytes
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnusableCandidate:
    """Signature material that was found but could not be read (too large, altered in the
    registry, about another artifact): it counts as a refused signature, with its reason."""

    error: VerificationError
    source: str


Candidate = LegacyCandidate | BundleCandidate | UnusableCandidate


def legacy_tag(digest: str) -> str:
    """The tag cosign stores legacy signatures of ``digest`` under."""
    return check_digest(digest).replace(":", "-") + ".sig"


def referrers_tag(digest: str) -> str:
    """The referrers tag-schema fallback tag for ``digest`` (OCI distribution spec 1.1)."""
    return check_digest(digest).replace(":", "-")


def verify_first(
    candidates: Iterable[Candidate],
    policy: Policy,
    *,
    expected_digest: str,
    expected_repository: str,
    now: datetime | None = None,
) -> Verified:
    """The record of the first candidate that verifies; else why none did.

    No candidate: ``signature-missing``. All refused: the first refusal's code, with every
    candidate's source (and code) in the message. At most :data:`MAX_CANDIDATES` are tried.
    """
    failures: list[tuple[str, VerificationError]] = []
    for number, candidate in enumerate(candidates):
        if number == MAX_CANDIDATES:
            break
        try:
            if isinstance(candidate, UnusableCandidate):
                raise candidate.error
            if isinstance(candidate, LegacyCandidate):
                return verify_legacy(
                    candidate.payload,
                    candidate.annotations,
                    policy,
                    expected_digest=expected_digest,
                    expected_repository=expected_repository,
                    now=now,
                )
            return verify_bundle(
                candidate.bundle,
                policy,
                expected_digest=expected_digest,
                expected_repository=expected_repository,
                now=now,
            )
        except VerificationError as exc:
            failures.append((candidate.source, exc))
        except Exception as exc:  # hostile material refuses this signature only
            failures.append((candidate.source, VerificationError(
                f"unreadable: {type(exc).__name__}: {str(exc)[:200]}",
                code=Code.SIGNATURE_MALFORMED)))
    if not failures:
        refuse(
            Code.SIGNATURE_MISSING, f"{expected_repository}@{expected_digest} has no signature"
        )
    source, first = failures[0]
    if len(failures) == 1:
        raise VerificationError(f"{source}: {first.message}", code=first.code, hint=first.hint)
    detail = "; ".join(f"{source}: {exc.code}: {exc.message}" for source, exc in failures)
    raise VerificationError(
        f"none of {len(failures)} signatures verifies: {detail}", code=first.code, hint=first.hint
    )
