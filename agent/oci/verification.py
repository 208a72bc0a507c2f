"""Whether an artifact digest may be used under its trust policy: the gate between resolving a
tag and using what it names (DESIGN §6, STYLE habit 5).

:meth:`Verifier.verify` finds the digest's signatures in its repository
(:mod:`agent.oci.discover`) and accepts the first that passes every check of the policy; the
verifiers themselves are pure (:mod:`agent.oci.signatures`). What verified is stored in the OCI
cache under (policy id, repository, digest) *with the signature material*, and
:meth:`Verifier.cached` verifies that material again when it reads it back: a restarted daemon, or
a host whose registry is down, re-checks every base from disk instead of trusting a "verified"
flag in a file. The policy id hashes the policy's settings with its key and root bytes, so a
changed identity, key or root finds no record and verifies again.

Under ``verify = false`` nothing is discovered or stored, and the signer reads
"unverified (verify = false)".
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.errors import VerificationError
from agent.oci.cache import OciCache
from agent.oci.discover import SignatureRegistry, candidates
from agent.oci.reference import Reference
from agent.oci.signatures.discovery import (
    BundleCandidate,
    Candidate,
    LegacyCandidate,
    verify_first,
)
from agent.oci.signatures.policy import NoVerify, Verified
from agent.oci.trust import UNVERIFIED, TrustPolicy, TrustStore

_MEMO_ENTRIES = 1024
LEGACY, BUNDLE = "cosign-legacy", "sigstore-bundle"


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Why an artifact digest may be used: who signed it (``record``), or ``verify = false``."""

    policy_id: str
    signer: str  # one line for the status: identity (issuer), key fingerprint, or unverified
    record: Verified | None  # None under verify = false
    source: str = ""  # where the signature that verified was found


class Verifier:
    def __init__(self, *, trust: TrustStore, cache: OciCache,
                 clock: Callable[[], float]) -> None:
        self._trust = trust
        self._cache = cache
        self._clock = clock
        self._memo: OrderedDict[tuple[str, str, str], Verdict] = OrderedDict()

    def cached(self, policy: TrustPolicy, ref: Reference, digest: str) -> Verdict | None:
        """The verdict for ``ref.name@digest`` without the network: from memory, or from the
        material on disk, verified again. ``None`` when there is none (or it no longer
        verifies: then it is dropped)."""
        signature_policy = self._trust.signature_policy(policy)
        if isinstance(signature_policy, NoVerify):
            return Verdict(policy_id=signature_policy.policy_id, signer=UNVERIFIED, record=None)
        key = (signature_policy.policy_id, ref.name, digest)
        verdict = self._memo.get(key)
        if verdict is not None:
            self._memo.move_to_end(key)
            return verdict
        cache_key = _cache_key(*key)
        stored = self._cache.verification(cache_key)
        candidate = None if stored is None else _candidate(stored)
        if candidate is None:
            return None
        try:
            verified = verify_first([candidate], signature_policy, expected_digest=digest,
                                    expected_repository=ref.name, now=self._now())
        except VerificationError:
            self._cache.drop_verification(cache_key)
            return None
        return self._remember(key, verified, candidate.source)

    def verify(self, policy: TrustPolicy, ref: Reference, digest: str,
               client: SignatureRegistry) -> Verdict:
        """The verdict for ``ref.name@digest``: cached, else discovered and verified now.
        Raises :class:`VerificationError` (fail closed), or :class:`RegistryUnreachable` when
        the signatures cannot be looked for."""
        verdict = self.cached(policy, ref, digest)
        if verdict is not None:
            return verdict
        signature_policy = self._trust.signature_policy(policy)
        assert not isinstance(signature_policy, NoVerify)  # cached() answers for those
        tried: list[Candidate] = []

        def recorded() -> Iterator[Candidate]:
            for candidate in candidates(client, ref, digest):
                tried.append(candidate)
                yield candidate

        try:
            verified = verify_first(recorded(), signature_policy, expected_digest=digest,
                                    expected_repository=ref.name, now=self._now())
        except VerificationError as exc:
            raise VerificationError(f"refused under {policy.label} ({digest}): {exc.message}",
                                    code=exc.code, hint=exc.hint) from None
        # verify_first returns on the candidate that verified: the last one it asked for.
        winner = tried[-1]
        assert isinstance(winner, LegacyCandidate | BundleCandidate)
        key = (signature_policy.policy_id, ref.name, digest)
        self._cache.store_verification(_cache_key(*key), {
            "verified": verified.to_dict(), "material": _material(winner),
            "source": winner.source, "stored_at": self._clock(),
        })
        return self._remember(key, verified, winner.source)

    def _remember(self, key: tuple[str, str, str], verified: Verified, source: str) -> Verdict:
        verdict = Verdict(policy_id=key[0], signer=verified.signer, record=verified,
                          source=source)
        self._memo[key] = verdict
        if len(self._memo) > _MEMO_ENTRIES:
            self._memo.popitem(last=False)
        return verdict

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _cache_key(policy_id: str, repository: str, digest: str) -> str:
    return f"{policy_id}|{repository}@{digest}"


def _material(candidate: LegacyCandidate | BundleCandidate) -> dict[str, Any]:
    if isinstance(candidate, LegacyCandidate):
        return {"format": LEGACY, "payload": base64.b64encode(candidate.payload).decode(),
                "annotations": dict(candidate.annotations)}
    return {"format": BUNDLE, "bundle": base64.b64encode(candidate.bundle).decode()}


def _candidate(stored: dict[str, Any]) -> Candidate | None:
    """The candidate a stored record holds; ``None`` for anything this version did not write."""
    material, source = stored.get("material"), stored.get("source")
    if not isinstance(material, dict) or not isinstance(source, str):
        return None
    try:
        if material.get("format") == LEGACY and isinstance(material.get("annotations"), dict):
            return LegacyCandidate(payload=base64.b64decode(material["payload"], validate=True),
                                   annotations=material["annotations"], source=source)
        if material.get("format") == BUNDLE:
            return BundleCandidate(bundle=base64.b64decode(material["bundle"], validate=True),
                                   source=source)
    except (KeyError, TypeError, binascii.Error):
        return None
    return None
