"""``oci://`` base profiles for the resolver: reference → trust → tag → digest → signatures →
profile.

:meth:`OciSource.fetch` (the :class:`~agent.seccomp.resolve.BaseSource` seam):

1. parse the reference, and refuse it unless a ``[[trust]]`` entry covers its repository;
2. within ``tag_ttl_s`` of the last confirmation (or when pinned by digest), answer from the disk
   cache, without the network, and without even importing the HTTP stack — once the digest's
   signature, stored with the verification, verifies again from disk;
3. otherwise resolve the tag to a digest, verify that digest's signatures under the policy
   (:class:`~agent.oci.verification.Verifier`), then fetch manifest and layer by that digest only
   (each checked against its digest and size), parse the profile, and record the result: a tag
   moved after the resolution changes nothing, since nothing after it reads the tag;
4. when the registry cannot be reached, serve the last known good, marked stale with the reason,
   if its signature verifies from disk; any other failure (refused, not found, tampered, invalid,
   unsigned) is an error, never a fallback.

Failures are remembered with a backoff: an unreachable registry is left alone (its bases come
from the cache meanwhile), and a reference that failed otherwise fails again from memory until
its next attempt is due. A source built with ``network=False`` never leaves the cache: the
daemon's first reconcile after boot must not wait for a registry.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from agent.codes import Code
from agent.errors import AgentError, RegistryUnreachable, ResolveError
from agent.model.seccomp import SeccompProfile
from agent.oci.artifact import Format, Platform, parse_manifest, read_profile, select_layer
from agent.oci.cache import OciCache, Resolved
from agent.oci.reference import Reference, parse
from agent.oci.trust import TrustPolicy, TrustStore
from agent.seccomp.resolve import Fetched, Link

if TYPE_CHECKING:  # the verifiers import cryptography: only once a base is really resolved
    from agent.oci.verification import Verdict, Verifier

_MEMO_ENTRIES = 256  # parsed profiles kept in memory, by layer digest


class Registry(Protocol):
    """What the source needs from a registry client (:class:`agent.oci.registry.RegistryClient`):
    reads by digest, and the two lookups signature discovery makes."""

    def resolve(self, ref: Reference) -> str: ...

    def manifest(self, ref: Reference, digest: str) -> bytes: ...

    def blob(self, ref: Reference, digest: str, size: int, *, max_bytes: int) -> bytes: ...

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int
                        ) -> tuple[bytes, str] | None: ...

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str,
                  max_bytes: int) -> bytes | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    tag_ttl_s: float = 86400
    max_profile_bytes: int = 1024 * 1024
    failure_backoff_s: float = 30
    failure_backoff_max_s: float = 900


@dataclass(frozen=True, slots=True, kw_only=True)
class Pulled:
    """One artifact's profile for this platform, as ``secprof pull`` reports it."""

    reference: Reference  # pinned to the manifest digest
    policy: TrustPolicy
    verdict: Verdict
    record: Resolved
    data: bytes  # the layer's exact bytes
    profile: SeccompProfile


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


class OciSource:
    def __init__(self, *, trust: TrustStore, cache: OciCache, verifier: Verifier,
                 registry: Callable[[], Registry], settings: SourceSettings, platform: Platform,
                 clock: Callable[[], float], network: bool = True) -> None:
        self._trust = trust
        self._cache = cache
        self._verifier = verifier
        self._registry_factory = registry
        self._registry: Registry | None = None
        self._settings = settings
        self._platform = platform
        self._clock = clock
        self._network = network
        self._memo: OrderedDict[str, SeccompProfile] = OrderedDict()

    def _client(self) -> Registry:
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def fetch(self, reference: str) -> Fetched:
        """The base profile ``reference`` names; raises :class:`AgentError`."""
        ref = parse(reference)
        policy = self._trust.policy_for(ref)
        key = f"{self._platform}|{ref}"
        record = self._cache.resolved(key)
        now = self._clock()
        if record and (ref.digest or record.fresh(now, self._settings.tag_ttl_s)):
            profile = self._cached_profile(ref, record)
            verdict = self._verifier.cached(policy, ref, record.manifest) if profile else None
            if profile is not None and verdict is not None:
                return self._fetched(ref, verdict, record, profile)
            # Content or verification gone from the cache: fetch (and verify) again.
        if not self._network:
            return self._stale(ref, policy, record, "not checked with the registry yet: this "
                               "reconcile uses the cache only")
        host_key, ref_key = f"host|{ref.registry}", f"ref|{key}"
        for failure_key in (host_key, ref_key):
            failure = self._cache.failure(failure_key)
            if failure is not None and now < failure.retry_at:
                due = f"next attempt in {_age(failure.retry_at - now)}"
                if failure_key == host_key:
                    return self._stale(ref, policy, record, f"{failure.message} ({due})")
                raise AgentError(f"{failure.message} ({due})", code=failure.code,
                                 hint="secprof cache prune forgets failures that are due")
        client = self._client()
        try:
            record, profile, verdict = self._from_registry(client, ref, policy,
                                                           plat=self._platform, key=key,
                                                           record=record)
        except RegistryUnreachable as exc:
            self._remember(host_key, exc)
            return self._stale(ref, policy, record, exc.message)
        except AgentError as exc:
            self._remember(ref_key, exc)
            raise
        self._cache.clear_failure(host_key)
        self._cache.clear_failure(ref_key)
        return self._fetched(ref, verdict, record, profile)

    def pull(self, ref: Reference, platform: Platform | None = None) -> Pulled:
        """Fetch ``ref`` from its registry now, whatever the cache says (``secprof pull``);
        the trust policy, signatures and every digest check apply as for a base."""
        policy = self._trust.policy_for(ref)
        plat = platform or self._platform
        key = f"{plat}|{ref}"
        record, profile, verdict = self._from_registry(self._client(), ref, policy, plat=plat,
                                                       key=key, record=self._cache.resolved(key))
        data = self._cache.content(record.layer)
        if data is None:
            raise ResolveError(f"{ref}: the profile left the cache while it was being pulled; "
                               "run the command again", code=Code.CACHE_UNAVAILABLE)
        return Pulled(reference=ref.pinned(record.manifest), policy=policy, verdict=verdict,
                      record=record, data=data, profile=profile)

    def _from_registry(self, client: Registry, ref: Reference, policy: TrustPolicy, *,
                       plat: Platform, key: str, record: Resolved | None,
                       ) -> tuple[Resolved, SeccompProfile, Verdict]:
        digest = ref.digest or client.resolve(ref)
        # From here on, only the digest: signatures are looked up for it, content fetched by it.
        verdict = self._verifier.verify(policy, ref, digest, client)
        now = self._clock()
        if record is not None and record.manifest == digest:
            # The tag still names what we have: only the confirmation time changes.
            profile = self._cached_profile(ref, record)
            if profile is not None:
                record = Resolved(manifest=record.manifest, layer=record.layer,
                                  format=record.format, title=record.title, checked_at=now)
                self._cache.store_resolved(key, record)
                return record, profile, verdict
        pinned = ref.pinned(digest)
        manifest = parse_manifest(client.manifest(ref, digest), str(pinned))
        layer = select_layer(manifest, plat, str(pinned))
        data = self._cache.content(layer.digest)
        if data is None:
            data = client.blob(ref, layer.digest, layer.size,
                               max_bytes=self._settings.max_profile_bytes)
        record = Resolved(manifest=digest, layer=layer.digest, format=manifest.format.value,
                          title=layer.title, checked_at=now)
        profile = self._parse(pinned, record, data)
        self._cache.store_content(layer.digest, data)
        self._cache.store_resolved(key, record)
        return record, profile, verdict

    def _cached_profile(self, ref: Reference, record: Resolved) -> SeccompProfile | None:
        profile = self._memo.get(record.layer)
        if profile is not None:
            self._memo.move_to_end(record.layer)
            return profile
        data = self._cache.content(record.layer)
        return None if data is None else self._parse(ref.pinned(record.manifest), record, data)

    def _parse(self, pinned: Reference, record: Resolved, data: bytes) -> SeccompProfile:
        where = f"{pinned} ({record.title or 'profile layer'})"
        profile = read_profile(data, Format(record.format), where)
        self._memo[record.layer] = profile
        if len(self._memo) > _MEMO_ENTRIES:
            self._memo.popitem(last=False)
        return profile

    def _remember(self, key: str, exc: AgentError) -> None:
        self._cache.record_failure(key, code=exc.code, message=exc.message,
                                   backoff_s=self._settings.failure_backoff_s,
                                   backoff_max_s=self._settings.failure_backoff_max_s)

    def _stale(self, ref: Reference, policy: TrustPolicy, record: Resolved | None,
               reason: str) -> Fetched:
        profile = self._cached_profile(ref, record) if record is not None else None
        if record is None or profile is None:
            raise RegistryUnreachable(
                f"{ref}: {reason}; and it has never been fetched on this host",
                hint="the profile is installed once its registry can be reached",
            )
        verdict = self._verifier.cached(policy, ref, record.manifest)
        if verdict is None:
            raise RegistryUnreachable(
                f"{ref}: {reason}; and the signature of its last known good {record.manifest} "
                f"was never verified on this host under {policy.label}",
                hint="the profile is installed once its registry can be reached and its "
                "signature verifies",
            )
        age = _age(self._clock() - record.checked_at)
        return self._fetched(ref, verdict, record, profile, stale_reason=(
            f"{reason}; using the last known good {record.manifest}, confirmed {age} ago"))

    def _fetched(self, ref: Reference, verdict: Verdict, record: Resolved,
                 profile: SeccompProfile, *, stale_reason: str = "") -> Fetched:
        link = Link(reference=str(ref), digest=record.manifest, source=ref.name,
                    signer=verdict.signer, stale=bool(stale_reason), stale_reason=stale_reason,
                    spec=profile.spec)
        return Fetched(spec=profile.spec, base=profile.base, link=link)
