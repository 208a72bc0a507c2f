"""Trust policies: which repositories secprof takes artifacts from, and on what terms.

Fail closed (DESIGN §6): an artifact is used only when a ``[[trust]]`` entry covers its
repository; the most specific entry (longest registry/repository prefix) decides. Its terms are
one of

* :class:`KeylessTerms` — a Fulcio certificate for one identity from one OIDC issuer;
* :class:`KeyTerms` — a signature by one of these public keys (optionally logged);
* ``None`` — ``verify = false``: taken unsigned (digest and size checks still apply).

The terms are plain data, read with the config (the files they name included): parsing keys and
trusted roots needs ``cryptography`` (~0.15 s of imports), which only a process that really
resolves an ``oci://`` base should pay. :meth:`TrustStore.signature_policy` turns terms into the
verifiers' :data:`~agent.oci.signatures.Policy` on first use; a key or root that does not parse is
then a :class:`ConfigError` naming the entry and key, as a bad value at load time would be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agent.codes import Code
from agent.errors import AgentError, ConfigError, VerificationError
from agent.oci.reference import Reference, Scope

if TYPE_CHECKING:
    from agent.oci.signatures.policy import Policy
    from agent.oci.signatures.trustroot import TrustRoot

UNVERIFIED = "unverified (verify = false)"


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A file a policy names: where it is (for messages) and its bytes, read with the config."""

    path: Path
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class KeylessTerms:
    """``keyless = {...}``: exactly one of each pair is set (the config checks it)."""

    identity: str | None = None
    identity_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None
    trusted_root: Document | None = None  # None: the production root in the sigstore wheel


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyTerms:
    """``public_keys = [...]``, with ``require_tlog`` and the root whose Rekor keys check it."""

    keys: tuple[Document, ...]
    require_tlog: bool = False
    trusted_root: Document | None = None


Terms = KeylessTerms | KeyTerms | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustPolicy:
    """One ``[[trust]]`` entry; ``label`` is how messages name it (``[[trust]][2]``)."""

    scope: Scope
    terms: Terms
    label: str = "[[trust]]"

    def describe(self) -> str:
        """One line saying what the entry accepts."""
        terms = self.terms
        if terms is None:
            return "verify = false: taken unsigned"
        root = terms.trusted_root
        where = f"trusted root {root.path}" if root else "the production Sigstore root"
        if isinstance(terms, KeylessTerms):
            who = _wanted(terms.identity, terms.identity_regex)
            issuer = _wanted(terms.issuer, terms.issuer_regex)
            return f"keyless: identity {who}, issuer {issuer}, under {where}"
        keys = ", ".join(str(k.path) for k in terms.keys)
        log = f", logged in a transparency log of {where}" if terms.require_tlog else ""
        return f"public keys {keys}{log}"


def _wanted(exact: str | None, regex: str | None) -> str:
    return repr(exact) if exact is not None else f"matching /{regex}/ (whole value)"


class TrustStore:
    """The configured policies, matched by longest prefix."""

    def __init__(self, policies: Sequence[TrustPolicy]) -> None:
        self._policies = sorted(policies, key=lambda p: p.scope.specificity, reverse=True)
        self._built: dict[TrustPolicy, Policy] = {}

    def policy_for(self, ref: Reference) -> TrustPolicy:
        """The policy that decides about ``ref``; raises when none covers it."""
        for policy in self._policies:
            if policy.scope.covers(ref):
                return policy
        raise VerificationError(
            f"{ref.name} is not covered by any [[trust]] entry; its artifacts are refused",
            code=Code.UNTRUSTED_REPOSITORY,
            hint=f'add a [[trust]] entry with scope = "{ref.name}" and keyless, public_keys '
            "or verify = false (see config.example.toml)",
        )

    def signature_policy(self, policy: TrustPolicy) -> Policy:
        """The verifiers' policy for ``policy``'s terms (built once; imports cryptography)."""
        built = self._built.get(policy)
        if built is None:
            built = self._built[policy] = _build(policy)
        return built


def _build(policy: TrustPolicy) -> Policy:
    # Imported here: cryptography and the verifiers load only once a base is really resolved.
    from agent.oci.signatures.policy import Keyless, NoVerify, PublicKeys  # noqa: PLC0415

    terms = policy.terms
    if terms is None:
        return NoVerify()
    root = _root(policy, terms.trusted_root)
    if isinstance(terms, KeylessTerms):
        try:
            return Keyless(identity=terms.identity, identity_regex=terms.identity_regex,
                           issuer=terms.issuer, issuer_regex=terms.issuer_regex,
                           trusted_root=root)
        except ConfigError as exc:  # the config checks the same; a message beats an assert
            raise ConfigError(f"{policy.label} keyless: {exc.message}") from None
    for number, key in enumerate(terms.keys):
        try:
            PublicKeys(keys=(key.data,))
        except ConfigError as exc:
            why = exc.message.partition("key 1 ")[2].removeprefix("is ") or exc.message
            raise ConfigError(f"{policy.label} public_keys[{number}] ({key.path}): {why}",
                              code=Code.TRUST_POLICY_INVALID) from None
    return PublicKeys(keys=tuple(k.data for k in terms.keys), require_tlog=terms.require_tlog,
                      trusted_root=root)


def _root(policy: TrustPolicy, document: Document | None) -> TrustRoot | None:
    if document is None:
        return None
    from agent.oci.signatures.trustroot import TrustRoot  # noqa: PLC0415

    try:
        return TrustRoot.from_bytes(document.data, source=str(document.path))
    except AgentError as exc:
        raise ConfigError(f"{policy.label} trusted_root: {exc.message}",
                          code=Code.TRUST_POLICY_INVALID,
                          hint="give the trusted_root.json of the Sigstore instance that signs "
                          "these artifacts") from None


def scope_lookup(policies: Sequence[TrustPolicy]) -> Callable[[str], TrustPolicy | None]:
    """``host/repository`` → the policy covering it (``None``: none does); what a registry's
    redirect is checked against (:func:`agent.oci.transport.redirect_rule`)."""
    store = TrustStore(policies)

    def scope_of(name: str) -> TrustPolicy | None:
        registry, _, repository = name.partition("/")
        try:
            return store.policy_for(Reference(registry=registry, repository=repository))
        except VerificationError:
            return None

    return scope_of
