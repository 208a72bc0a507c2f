"""OciSource against an in-memory registry (the seam) and a hand-moved clock. The same paths run
against a real registry in tests/integration."""

from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agent.clock import FakeClock
from agent.errors import AgentError, RegistryError, RegistryUnreachable, VerificationError
from agent.oci.artifact import Format, Platform
from agent.oci.cache import OciCache
from agent.oci.reference import Reference, parse_scope
from agent.oci.source import OciSource, SourceSettings
from agent.oci.trust import Document, KeyTerms, TrustPolicy, TrustStore
from agent.oci.verification import Verifier
from agent.publish.pack import pack
from agent.seccomp.render import digest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AMD64 = Platform.parse("linux/amd64")
TTL = 3600


def profile(name: str, base: str = "") -> bytes:
    text = (FIXTURES / "runtime-base.yaml").read_text().replace(
        "name: runtime-base", f"name: {name}")
    if base:
        text = text.replace("spec:\n", f"spec:\n  baseProfileName: {base}\n", 1)
    return text.encode()


class FakeRegistry:
    def __init__(self) -> None:
        self.tags: dict[tuple[str, str], str] = {}
        self.blobs: dict[str, bytes] = {}
        self.calls: Counter[str] = Counter()
        self.down = False

    def push(self, repository: str, tag: str, data: bytes) -> str:
        packed = pack(Format.SPO, [(AMD64, data)], {}, "2026-01-01T00:00:00Z")
        self.blobs.update(packed.blobs)
        self.blobs[packed.digest] = packed.manifest
        self.tags[(repository, tag)] = packed.digest
        return packed.digest

    def _call(self, what: str) -> None:
        self.calls[what] += 1
        if self.down:
            raise RegistryUnreachable("cannot reach r: connection refused")

    def resolve(self, ref: Reference) -> str:
        self._call("resolve")
        if (ref.repository, ref.tag) not in self.tags:
            raise RegistryError("tag not found", code="artifact-not-found")
        return self.tags[(ref.repository, ref.tag)]

    def manifest(self, ref: Reference, digest: str) -> bytes:
        self._call("manifest")
        return self.blobs[digest]

    def blob(self, ref: Reference, digest: str, size: int, *, max_bytes: int) -> bytes:
        self._call("blob")
        if size > max_bytes:
            raise RegistryError("too large", code="profile-too-large")
        return self.blobs[digest]

    def operation(self, registry: str) -> AbstractContextManager[float]:
        return nullcontext(0.0)  # deadlines are the real client's (test_registry_faults.py)

    def tagged_manifest(self, ref: Reference, tag: str, *, max_bytes: int) -> None:
        self._call("tagged_manifest")  # no signatures in this registry

    def referrers(self, ref: Reference, digest: str, *, artifact_type: str,
                  max_bytes: int) -> None:
        self._call("referrers")


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def source(tmp_path: Path, registry: FakeRegistry, clock: FakeClock, *,
           network: bool = True, scopes: tuple[str, ...] = ("r/p",),
           max_bytes: int = 1 << 20, policies: tuple[TrustPolicy, ...] = ()) -> OciSource:
    """A source whose ``scopes`` are taken unsigned (or under ``policies``, if given)."""
    trust = TrustStore(policies or [TrustPolicy(scope=parse_scope(s), terms=None)
                                    for s in scopes])
    cache = OciCache(tmp_path / "oci", max_entries=100, max_bytes=1 << 24, clock=clock)
    return OciSource(
        trust=trust,
        cache=cache,
        verifier=Verifier(trust=trust, cache=cache, clock=clock),
        registry=lambda: registry,
        settings=SourceSettings(tag_ttl_s=TTL, max_profile_bytes=max_bytes,
                                failure_backoff_s=30, failure_backoff_max_s=300),
        platform=AMD64, clock=clock, network=network,
    )


def test_cold_then_warm(tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    pushed = registry.push("p/base", "v1", profile("base", base="local-parent"))
    src = source(tmp_path, registry, clock)
    fetched = src.fetch("oci://r/p/base:v1")
    assert registry.calls == Counter(resolve=1, manifest=1, blob=1)
    assert fetched.base == "local-parent"
    assert (fetched.link.reference, fetched.link.digest) == ("oci://r/p/base:v1", pushed)
    assert not fetched.link.stale
    assert "verify = false" in fetched.link.signer
    assert src.fetch("oci://r/p/base:v1") == fetched
    assert sum(registry.calls.values()) == 3  # within the TTL: no request at all


def test_a_new_process_answers_from_disk(tmp_path: Path, registry: FakeRegistry,
                                         clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    first = source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")
    registry.down = True
    again = source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")
    assert again == first
    assert sum(registry.calls.values()) == 3


def test_moved_tag_is_seen_only_after_the_ttl(tmp_path: Path, registry: FakeRegistry,
                                              clock: FakeClock) -> None:
    old = registry.push("p/base", "v1", profile("base"))
    src = source(tmp_path, registry, clock)
    src.fetch("oci://r/p/base:v1")
    new = registry.push("p/base", "v1", profile("base-moved"))
    clock.advance(TTL - 1)
    assert src.fetch("oci://r/p/base:v1").link.digest == old
    clock.advance(1)
    assert src.fetch("oci://r/p/base:v1").link.digest == new


def test_unchanged_tag_after_the_ttl_costs_one_request(tmp_path: Path, registry: FakeRegistry,
                                                       clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    src = source(tmp_path, registry, clock)
    src.fetch("oci://r/p/base:v1")
    clock.advance(TTL)
    src.fetch("oci://r/p/base:v1")
    clock.advance(TTL - 1)  # the confirmation restarted the TTL
    src.fetch("oci://r/p/base:v1")
    assert registry.calls == Counter(resolve=2, manifest=1, blob=1)


def test_pinned_digest_never_resolves(tmp_path: Path, registry: FakeRegistry,
                                      clock: FakeClock) -> None:
    pushed = registry.push("p/base", "v1", profile("base"))
    src = source(tmp_path, registry, clock)
    src.fetch(f"oci://r/p/base@{pushed}")
    clock.advance(10 * TTL)
    registry.down = True
    fetched = src.fetch(f"oci://r/p/base@{pushed}")
    assert not fetched.link.stale
    assert registry.calls == Counter(manifest=1, blob=1)


def test_unreachable_registry_serves_last_known_good_as_stale(
        tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    pushed = registry.push("p/base", "v1", profile("base"))
    src = source(tmp_path, registry, clock)
    src.fetch("oci://r/p/base:v1")
    clock.advance(TTL + 1)
    registry.down = True
    stale = src.fetch("oci://r/p/base:v1")
    assert stale.link.stale
    assert stale.link.digest == pushed
    assert "connection refused" in stale.link.stale_reason
    assert pushed in stale.link.stale_reason
    # The registry is left alone during the backoff: no further request, still stale.
    calls = sum(registry.calls.values())
    assert "next attempt in 30 s" in src.fetch("oci://r/p/base:v1").link.stale_reason
    assert sum(registry.calls.values()) == calls
    clock.advance(31)
    registry.down = False
    assert not src.fetch("oci://r/p/base:v1").link.stale


def test_unreachable_without_cache_is_an_error(tmp_path: Path, registry: FakeRegistry,
                                               clock: FakeClock) -> None:
    registry.down = True
    with pytest.raises(RegistryUnreachable, match="never been fetched on this host"):
        source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")


def test_other_failures_never_fall_back_and_are_remembered(
        tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    src = source(tmp_path, registry, clock)
    with pytest.raises(RegistryError, match="tag not found"):
        src.fetch("oci://r/p/base:v1")
    registry.push("p/base", "v1", profile("base"))
    with pytest.raises(AgentError, match=r"tag not found \(next attempt in 30 s\)") as info:
        src.fetch("oci://r/p/base:v1")
    assert info.value.code == "artifact-not-found"
    assert registry.calls["resolve"] == 1
    clock.advance(30)
    assert src.fetch("oci://r/p/base:v1").base is None


def test_oversize_profile_is_refused(tmp_path: Path, registry: FakeRegistry,
                                     clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    with pytest.raises(RegistryError) as info:
        source(tmp_path, registry, clock, max_bytes=100).fetch("oci://r/p/base:v1")
    assert info.value.code == "profile-too-large"


def test_trust_is_checked_before_any_request_and_on_cache_hits(
        tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    with pytest.raises(VerificationError, match="not covered by any"):
        source(tmp_path, registry, clock, scopes=("r/other",)).fetch("oci://r/p/base:v1")
    assert not registry.calls
    source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")  # now cached
    with pytest.raises(VerificationError):
        source(tmp_path, registry, clock, scopes=()).fetch("oci://r/p/base:v1")


def test_signatures_are_checked_before_any_content_is_fetched(
        tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    pushed = registry.push("p/base", "v1", profile("base"))
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    policy = TrustPolicy(scope=parse_scope("r/p"), terms=KeyTerms(
        keys=(Document(path=Path("k.pub"), data=key),)))
    src = source(tmp_path, registry, clock, policies=(policy,))
    with pytest.raises(VerificationError) as info:
        src.fetch("oci://r/p/base:v1")
    assert info.value.code == "signature-missing"
    assert pushed in info.value.message
    assert registry.calls == Counter(resolve=1, tagged_manifest=2, referrers=1)


def test_cache_only_mode(tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    with pytest.raises(RegistryUnreachable, match="cache only"):
        source(tmp_path, registry, clock, network=False).fetch("oci://r/p/base:v1")
    assert not registry.calls
    source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")
    offline = source(tmp_path, registry, clock, network=False)
    assert not offline.fetch("oci://r/p/base:v1").link.stale
    clock.advance(TTL)
    assert "cache only" in offline.fetch("oci://r/p/base:v1").link.stale_reason
    assert sum(registry.calls.values()) == 3


def test_corrupted_cache_content_is_fetched_again(tmp_path: Path, registry: FakeRegistry,
                                                  clock: FakeClock) -> None:
    registry.push("p/base", "v1", profile("base"))
    source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")
    cache = OciCache(tmp_path / "oci", max_entries=100, max_bytes=1 << 24, clock=clock)
    cache.clear()
    cache.close()
    source(tmp_path, registry, clock).fetch("oci://r/p/base:v1")
    assert registry.calls["blob"] == 2


def test_pull_ignores_the_ttl(tmp_path: Path, registry: FakeRegistry, clock: FakeClock) -> None:
    data = profile("base")
    old = registry.push("p/base", "v1", data)
    src = source(tmp_path, registry, clock)
    src.fetch("oci://r/p/base:v1")
    new = registry.push("p/base", "v1", profile("moved"))
    ref = Reference(registry="r", repository="p/base", tag="v1")
    pulled = src.pull(ref)
    assert pulled.reference.digest == new != old
    assert pulled.profile.name == "moved"
    assert digest(pulled.data) == pulled.record.layer
