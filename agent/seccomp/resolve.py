"""Resolve seccomp base chains: locate each base, detect cycles, cap depth, merge.

``child → base1 → base2 …``: local bases come from the desired state, ``oci://`` bases from a
:class:`BaseSource` (the OCI seam). Each node is resolved once per :class:`Resolver` and its
result (or error) memoised, so a base shared by a thousand profiles is read and merged once.
Errors name the whole chain, from the profile asked about to the link that failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agent.codes import Code
from agent.errors import AgentError, ResolveError
from agent.model.seccomp import OCI_PREFIX, SeccompProfile, SeccompSpec
from agent.seccomp.merge import Merged, top_level_differences, union
from agent.seccomp.render import digest, render

# Distinct (name[, args]) decisions in one merged profile. Far above any real profile (a few
# hundred syscalls per architecture) and below what makes a thousand children of one base cost
# gigabytes: each merged profile's tables are bounded by it, so work is linear in profiles.
MAX_DECISIONS = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """One profile of a chain, as the status API shows it."""

    reference: str  # a profile name, or an oci:// reference
    source: str  # the document it came from, or the registry repository
    digest: str = ""  # the artifact's (oci); "" for a local link: see content_digest()
    signer: str = ""  # who signed an oci:// link ("" for local links)
    stale: bool = False  # served from the cache because the registry could not be reached
    stale_reason: str = ""  # why, and which cached digest stands in
    spec: SeccompSpec = field(repr=False, compare=False)

    def content_digest(self) -> str:
        """The artifact's digest, or for a local link the digest of its own rendered spec:
        computed when asked (status details, ``secprof resolve``), not on every reconcile."""
        return self.digest or digest(render(self.spec))


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetched:
    """What a :class:`BaseSource` returns for one ``oci://`` reference."""

    spec: SeccompSpec
    base: str | None
    link: Link


class BaseSource(Protocol):
    """Where ``oci://`` bases come from (verified, cached); raises :class:`AgentError`."""

    def fetch(self, reference: str) -> Fetched: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    chain: tuple[Link, ...]  # the profile itself first
    merged: Merged

    @property
    def stale(self) -> bool:
        return any(link.stale for link in self.chain)

    def stale_reasons(self) -> tuple[str, ...]:
        """``"<reference>: <why>"`` for each link served from the cache."""
        return tuple(f"{link.reference}: {link.stale_reason}" for link in self.chain if link.stale)

    def notes(self) -> tuple[str, ...]:
        """Human notes about what the merge replaced or dropped."""
        child = self.chain[0].spec
        out: list[str] = []
        for link in self.chain[1:]:
            out.extend(top_level_differences(child, link.spec, link.reference))
        out.extend(
            f"conditional rules for {name!r} are left out: an unconditional rule for it "
            "overrides them in libseccomp"
            for name in sorted(self.merged.inert)
        )
        return tuple(out)


class _ChainProblem(Exception):
    """Raised deep in a chain; carries the path from the profile asked about to the failure."""

    def __init__(self, path: list[str], reason: str, code: str, hint: str = "") -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason
        self.code = code
        self.hint = hint

    def error(self) -> ResolveError:
        chain = " → ".join(self.path)
        return ResolveError(f"base chain {chain}: {self.reason}", code=self.code, hint=self.hint)


@dataclass(frozen=True, slots=True)
class _Carried:
    """A resolution kept from an earlier run, valid while its inputs are the very same."""

    token: object  # the SeccompProfile object (local) or the fetched Link (oci)
    below: Resolution | None
    resolution: Resolution


class Carry:
    """Resolutions kept between runs (the daemon): a node whose document object and base
    resolution are unchanged is not merged again. Only successes are kept."""

    def __init__(self) -> None:
        self.nodes: dict[str, _Carried] = {}


class Resolver:
    """Resolves profiles against one snapshot of the desired state."""

    def __init__(
        self,
        profiles: Mapping[str, SeccompProfile],
        *,
        invalid: Mapping[str, str] | None = None,
        oci: BaseSource | None = None,
        max_depth: int = 15,
        carry: Carry | None = None,
    ) -> None:
        self._profiles = profiles
        self._invalid = invalid or {}
        self._oci = oci
        self._max_depth = max_depth
        self._memo: dict[str, Resolution] = {}
        self._stack: list[str] = []
        self._carry = carry
        self._carried: dict[str, _Carried] = {}

    def finish(self) -> None:
        """Hand what this run resolved to the next run (if carrying)."""
        if self._carry is not None:
            self._carry.nodes = self._carried

    def resolve(self, name: str) -> Resolution:
        """The chain and merged spec of the local profile ``name``; raises ResolveError."""
        try:
            return self._node(name)
        except _ChainProblem as problem:
            raise problem.error() from None

    def _node(self, ref: str) -> Resolution:
        # Only successes are memoised: a failure is re-derived per caller, so that its message
        # shows the chain as seen from the profile asked about (failures are rare and short).
        known = self._memo.get(ref)
        if known is not None:
            return known
        if ref in self._stack:
            raise _ChainProblem(
                [*self._stack, ref], "the chain has a cycle", Code.BASE_CYCLE,
                "a profile cannot be its own base, directly or through other bases",
            )
        self._stack.append(ref)
        try:
            result = self._compute(ref)
        finally:
            self._stack.pop()
        self._memo[ref] = result
        return result

    def _compute(self, ref: str) -> Resolution:
        token, spec, base, make_link = self._locate(ref)
        below = self._node(base) if base is not None else None
        previous = self._carry.nodes.get(ref) if self._carry is not None else None
        if previous is not None and previous.below is below and (
            previous.token is token or previous.token == token
        ):
            result = previous.resolution
        else:
            result = self._merge(spec, make_link(), below)
        self._carried[ref] = _Carried(token=token, below=below, resolution=result)
        return result

    def _merge(self, spec: SeccompSpec, link: Link, below: Resolution | None) -> Resolution:
        if below is None:
            return Resolution(chain=(link,), merged=self._bounded(union(spec, None), ()))
        chain = (link, *below.chain)
        if len(chain) > self._max_depth:
            raise _ChainProblem(
                [*self._stack, *(c.reference for c in below.chain)],
                f"the chain has {len(chain)} links; at most {self._max_depth} are allowed "
                "(the profile itself included)",
                Code.BASE_DEPTH,
                "flatten the chain or raise [seccomp] max_base_depth",
            )
        return Resolution(chain=chain, merged=self._bounded(union(spec, below.merged),
                                                            below.chain))

    def _bounded(self, merged: Merged, below: tuple[Link, ...]) -> Merged:
        decisions = len(merged.unconditional) + len(merged.conditional)
        if decisions > MAX_DECISIONS:
            raise _ChainProblem(
                [*self._stack, *(c.reference for c in below)],
                f"the merged profile has {decisions} syscall decisions; at most {MAX_DECISIONS} "
                "are allowed", Code.PROFILE_TOO_LARGE,
                "no kernel loads a filter that large: split or simplify the profiles",
            )
        return merged

    def _locate(
        self, ref: str
    ) -> tuple[object, SeccompSpec, str | None, Callable[[], Link]]:
        """(identity token, spec, base, link factory) of ``ref``; the link of a local profile
        costs a render, so it is only made when the node is really merged again."""
        if ref.startswith(OCI_PREFIX):
            if self._oci is None:
                raise _ChainProblem(
                    list(self._stack), f"{ref} is an OCI base, which this command does not fetch",
                    Code.OCI_UNSUPPORTED, "resolve it with secprof resolve or secprof apply",
                )
            try:
                fetched = self._oci.fetch(ref)
            except AgentError as exc:
                raise _ChainProblem(list(self._stack), exc.message, exc.code, exc.hint) from None
            return fetched.link, fetched.spec, fetched.base, lambda: fetched.link
        if ref in self._invalid:
            raise _ChainProblem(
                list(self._stack), f"base profile {ref!r} is invalid: {self._invalid[ref]}",
                Code.BASE_INVALID,
            )
        profile = self._profiles.get(ref)
        if profile is None:
            raise _ChainProblem(
                list(self._stack), f"base profile {ref!r} is not in the desired state",
                Code.BASE_NOT_FOUND, "add a SeccompProfile with that name, or fix baseProfileName",
            )
        def make_link() -> Link:
            return Link(reference=ref, source=str(profile.origin), spec=profile.spec)

        return profile, profile.spec, profile.base, make_link
