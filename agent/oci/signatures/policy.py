"""Trust policies — what a signature must satisfy — and the record of a signature that did.

Three kinds, as DESIGN §6 lists them:

* :class:`Keyless` — a Fulcio certificate for one identity from one OIDC issuer (each exact or a
  regex matched with ``fullmatch``, i.e. anchored at both ends: cosign's unanchored matching lets
  ``release@example.com`` pass ``release@example.co``), logged in a transparency log, all under one
  trusted root (default: the public-good production root shipped in the sigstore wheel);
* :class:`PublicKeys` — a signature by one of these keys; a transparency-log entry only when
  ``require_tlog`` (air-gapped hosts sign without one);
* :class:`NoVerify` — an explicit opt-out; the verifiers refuse to run under it, so no
  :class:`Verified` record can ever claim a check that did not happen.

``policy_id`` hashes a policy's canonical settings together with its key and root bytes: cache
entries keyed by it (DESIGN §6) go stale by themselves when a key, root or identity changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from agent.codes import Code
from agent.errors import ConfigError
from agent.oci.signatures import identity
from agent.oci.signatures.checks import integrated_at, key_fingerprint
from agent.oci.signatures.refuse import refuse
from agent.oci.signatures.rekor import LogEntry
from agent.oci.signatures.trustroot import LogPublicKey, TrustRoot

MAX_KEYS = 64


@cache
def _production_root() -> TrustRoot:
    return TrustRoot.production()


def _policy_id(settings: dict[str, Any]) -> str:
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Keyless:
    """Fulcio-certified signatures by one identity and issuer (both required)."""

    identity: str | None = None
    identity_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None
    trusted_root: TrustRoot | None = None  # None: the production root in the sigstore wheel

    def __post_init__(self) -> None:
        for name, exact, rx in (
            ("identity", self.identity, self.identity_regex),
            ("issuer", self.issuer, self.issuer_regex),
        ):
            if (exact is None) == (rx is None) or exact == "" or rx == "":
                raise ConfigError(
                    f"keyless trust: give exactly one of {name} and {name}_regex",
                    code=Code.TRUST_POLICY_INVALID,
                )
            if rx is not None:
                try:
                    re.compile(rx)
                except re.error as exc:
                    raise ConfigError(
                        f"keyless trust: {name}_regex {rx!r}: {exc}", code=Code.TRUST_POLICY_INVALID
                    ) from None

    @property
    def root(self) -> TrustRoot:
        """The trusted root in force (the configured one, else the production root)."""
        return self.trusted_root or _production_root()

    @property
    def policy_id(self) -> str:
        return _policy_id(
            {
                "kind": "keyless",
                "identity": self.identity,
                "identity_regex": self.identity_regex,
                "issuer": self.issuer,
                "issuer_regex": self.issuer_regex,
                "root": self.root.digest,
            }
        )

    def check_identity(self, cert: x509.Certificate) -> tuple[str, str]:
        """Check issuer, then identity, of ``cert``; return the matching (identity, issuer)."""
        found_issuer = identity.issuer(cert)
        if found_issuer is None or not _matches(found_issuer, self.issuer, self.issuer_regex):
            refuse(
                Code.ISSUER_MISMATCH,
                f"certificate issuer {found_issuer!r} is not "
                f"{_wanted(self.issuer, self.issuer_regex)}",
            )
        found = identity.identities(cert)
        for candidate in found:
            if _matches(candidate, self.identity, self.identity_regex):
                return candidate, found_issuer
        refuse(
            Code.IDENTITY_MISMATCH,
            f"certificate identities {list(found)} do not match "
            f"{_wanted(self.identity, self.identity_regex)}",
        )

    def verify(self, cert: x509.Certificate) -> None:
        """sigstore-python's ``VerificationPolicy`` protocol: raise if ``cert`` does not match."""
        self.check_identity(cert)


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKeys:
    """Signatures by any of ``keys`` (PEM SubjectPublicKeyInfo, as ``cosign.pub``)."""

    keys: tuple[bytes, ...]
    require_tlog: bool = False
    trusted_root: TrustRoot | None = None  # Rekor keys for require_tlog; None: production root
    parsed: tuple[LogPublicKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys or len(self.keys) > MAX_KEYS:
            raise ConfigError(
                f"public_keys trust: give 1 to {MAX_KEYS} keys", code=Code.TRUST_POLICY_INVALID
            )
        parsed = []
        for number, pem in enumerate(self.keys, 1):
            try:
                key = load_pem_public_key(pem)
            except (ValueError, TypeError) as exc:
                raise ConfigError(
                    f"public_keys trust: key {number} is not a PEM public key: {exc}",
                    code=Code.TRUST_POLICY_INVALID,
                ) from None
            if not isinstance(key, LogPublicKey):
                raise ConfigError(
                    f"public_keys trust: key {number} is a {type(key).__name__}, "
                    "not ECDSA, RSA or Ed25519",
                    code=Code.TRUST_POLICY_INVALID,
                )
            parsed.append(key)
        object.__setattr__(self, "parsed", tuple(parsed))

    @classmethod
    def from_files(
        cls,
        paths: Iterable[Path],
        *,
        require_tlog: bool = False,
        trusted_root: TrustRoot | None = None,
    ) -> PublicKeys:
        """Read ``cosign.pub``-style PEM files (a config key ``public_keys = [...]``)."""
        keys = []
        for path in paths:
            try:
                keys.append(path.read_bytes())
            except OSError as exc:
                raise ConfigError(
                    f"public_keys trust: cannot read {path}: {exc.strerror}",
                    code=Code.TRUST_POLICY_INVALID,
                ) from None
        return cls(keys=tuple(keys), require_tlog=require_tlog, trusted_root=trusted_root)

    @property
    def root(self) -> TrustRoot:
        """The trusted root whose Rekor keys check log entries (default: production)."""
        return self.trusted_root or _production_root()

    @property
    def policy_id(self) -> str:
        return _policy_id(
            {
                "kind": "public-keys",
                "keys": sorted(key_fingerprint(k) for k in self.parsed),
                "require_tlog": self.require_tlog,
                "root": self.root.digest if self.require_tlog else None,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NoVerify:
    """``verify = false``: the artifact is used unsigned. The verifiers refuse to run with it."""

    @property
    def policy_id(self) -> str:
        return _policy_id({"kind": "no-verify"})


Policy = Keyless | PublicKeys | NoVerify


@dataclass(frozen=True, slots=True, kw_only=True)
class Signer:
    """Who signed, as a verifier established it, and the log entry it checked (if any)."""

    identity: str | None = None
    issuer: str | None = None
    key: LogPublicKey | None = None
    entry: LogEntry | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """What a verified signature established, for the status API and the verification cache."""

    policy_id: str
    format: str  # "cosign-legacy" | "sigstore-bundle"
    digest: str  # the artifact digest the signature binds (== the expected digest)
    repository: str | None  # the repository it names, None where the format binds none
    identity: str | None  # keyless: the certificate identity that matched
    issuer: str | None  # keyless: the OIDC issuer
    key_fingerprint: str | None  # key-based: sha256 of the verifying key's SPKI
    tlog_log_id: str | None  # hex log ID of the entry that was checked, None if none was
    tlog_index: int | None
    integrated_time: datetime | None

    @classmethod
    def build(
        cls,
        policy: Keyless | PublicKeys,
        signer: Signer,
        *,
        format: str,
        digest: str,
        repository: str | None,
    ) -> Verified:
        """The record of a signature that passed every check of ``policy``."""
        entry = signer.entry
        return cls(
            policy_id=policy.policy_id,
            format=format,
            digest=digest,
            repository=repository,
            identity=signer.identity,
            issuer=signer.issuer,
            key_fingerprint=None if signer.key is None else key_fingerprint(signer.key),
            tlog_log_id=None if entry is None else entry.log_id.hex(),
            tlog_index=None if entry is None else entry.log_index,
            integrated_time=None if entry is None else integrated_at(entry),
        )

    @property
    def signer(self) -> str:
        """One line naming the signer: identity (issuer), or the key fingerprint."""
        if self.identity is not None:
            return f"{self.identity} ({self.issuer})"
        return f"key {self.key_fingerprint}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the cache, which stores raw values only)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if self.integrated_time is not None:
            out["integrated_time"] = self.integrated_time.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verified:
        """Inverse of :meth:`to_dict`."""
        when = data.get("integrated_time")
        return cls(
            **{**data, "integrated_time": None if when is None else datetime.fromisoformat(when)}
        )


def _matches(value: str, exact: str | None, regex: str | None) -> bool:
    if exact is not None:
        return value == exact
    return regex is not None and re.fullmatch(regex, value) is not None


def _wanted(exact: str | None, regex: str | None) -> str:
    return repr(exact) if exact is not None else f"a full match of /{regex}/"
