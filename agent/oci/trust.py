"""Trust policies: which repositories secprof takes artifacts from, and on what terms.

Fail closed (DESIGN §6): an artifact is used only when a ``[[trust]]`` entry covers its
repository; the most specific entry (longest registry/repository prefix) decides. Until
signature verification lands, the only terms there are is an explicit ``verify = false``
(digest and size checks still apply). Each policy has a stable :attr:`TrustPolicy.id`, a hash of
its settings, so records made under one policy (signature verifications, later) are never
mistaken for records made under another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.errors import VerificationError
from agent.oci.reference import Reference, Scope


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustPolicy:
    """One ``[[trust]]`` entry. ``verify = False`` takes artifacts without any signature."""

    scope: Scope
    verify: bool

    def settings(self) -> dict[str, Any]:
        """Everything that decides what this policy accepts (what :attr:`id` hashes)."""
        return {"scope": str(self.scope), "verify": self.verify}

    @property
    def id(self) -> str:
        canonical = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))
        return f"trust-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"

    @property
    def signer(self) -> str:
        """What the status shows as the signer of an artifact this policy let through."""
        return f"unverified (verify = false, trust scope {self.scope})"


class TrustStore:
    """The configured policies, matched by longest prefix."""

    def __init__(self, policies: Sequence[TrustPolicy]) -> None:
        self._policies = sorted(policies, key=lambda p: p.scope.specificity, reverse=True)

    def policy_for(self, ref: Reference) -> TrustPolicy:
        """The policy that decides about ``ref``; raises when none covers it."""
        for policy in self._policies:
            if policy.scope.covers(ref):
                return policy
        raise VerificationError(
            f"{ref.name} is not covered by any [[trust]] entry; its artifacts are refused",
            code="untrusted-repository",
            hint=f'add [[trust]] scope = "{ref.name}" to the config (for now only with '
            "verify = false: signature verification is not available yet)",
        )
