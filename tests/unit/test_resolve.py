"""Base chains: lookup, depth limit, cycles, invalid and missing bases, memoisation."""

from __future__ import annotations

import re

import pytest

from agent.errors import AgentError, RegistryError, ResolveError
from agent.model.manifests import DesiredState, load_bytes
from agent.model.profile import Kind, ProfileKey
from agent.model.seccomp import SeccompSpec
from agent.seccomp.build import SeccompBuild, build_all
from agent.seccomp.resolve import Fetched, Link, Resolver
from tests.conftest import seccomp_doc


def profile(name: str, base: str | None = None, allow: str = "read") -> str:
    body = f"defaultAction: SCMP_ACT_ERRNO\nsyscalls:\n  - {{names: [{allow}], action: " \
           "SCMP_ACT_ALLOW}\n"
    if base:
        body = f"baseProfileName: {base}\n" + body
    return seccomp_doc(name, body)


def state(*docs: str) -> DesiredState:
    return load_bytes("---\n".join(docs).encode(), display="t.yaml", as_json=False,
                      plain_name="t")


def resolver(desired: DesiredState, **kw: object) -> Resolver:
    by_name = {k.name: p for k, p in desired.profiles.items()}
    return Resolver(by_name, **kw)  # type: ignore[arg-type]


def test_local_chain_merges_and_lists_links_child_first() -> None:
    r = resolver(state(profile("app", "mid", "write"), profile("mid", "root", "openat"),
                       profile("root")))
    res = r.resolve("app")
    assert [link.reference for link in res.chain] == ["app", "mid", "root"]
    assert res.merged.spec.syscalls[0].names == ("openat", "read", "write")
    assert all(link.content_digest().startswith("sha256:") for link in res.chain)
    assert res.chain[1].source == "t.yaml[1]"


def test_shared_base_is_resolved_once() -> None:
    r = resolver(state(profile("a", "base"), profile("b", "base"), profile("base")))
    assert r.resolve("a").chain[1] is r.resolve("b").chain[1]


def test_cycle_names_the_whole_chain() -> None:
    r = resolver(state(profile("a", "b"), profile("b", "c"), profile("c", "a")))
    with pytest.raises(ResolveError) as exc:
        r.resolve("a")
    assert exc.value.code == "base-cycle"
    assert str(exc.value).startswith("base chain a → b → c → a:")
    with pytest.raises(ResolveError) as exc:
        r.resolve("b")
    assert str(exc.value).startswith("base chain b → c → a → b:")


def test_self_reference_is_a_cycle() -> None:
    with pytest.raises(ResolveError, match="base chain a → a: the chain has a cycle"):
        resolver(state(profile("a", "a"))).resolve("a")


def test_depth_limit_counts_the_child() -> None:
    docs = [profile(f"p{i}", f"p{i + 1}") for i in range(3)] + [profile("p3")]
    desired = state(*docs)
    assert len(resolver(desired, max_depth=4).resolve("p0").chain) == 4
    with pytest.raises(ResolveError) as exc:
        resolver(desired, max_depth=3).resolve("p0")
    assert exc.value.code == "base-depth"
    assert "p0 → p1 → p2 → p3" in str(exc.value)
    assert "4 links; at most 3" in str(exc.value)
    assert len(resolver(desired, max_depth=3).resolve("p1").chain) == 3


def test_default_depth_is_fifteen_links() -> None:
    docs = [profile(f"p{i}", f"p{i + 1}") for i in range(15)] + [profile("p15")]
    r = resolver(state(*docs))
    assert len(r.resolve("p1").chain) == 15
    with pytest.raises(ResolveError, match="16 links; at most 15"):
        r.resolve("p0")


def test_missing_base_deep_in_the_chain() -> None:
    with pytest.raises(ResolveError) as exc:
        resolver(state(profile("a", "b"), profile("b", "gone"))).resolve("a")
    assert exc.value.code == "base-not-found"
    assert str(exc.value) == (
        "base chain a → b → gone: base profile 'gone' is not in the desired state"
    )


def test_invalid_base_is_reported_as_invalid() -> None:
    r = resolver(state(profile("a", "b")), invalid={"b": "spec.defaultAction: unknown action"})
    with pytest.raises(ResolveError) as exc:
        r.resolve("a")
    assert exc.value.code == "base-invalid"
    assert "base profile 'b' is invalid: spec.defaultAction" in str(exc.value)


def test_oci_base_without_source_is_an_error_not_a_crash() -> None:
    with pytest.raises(ResolveError) as exc:
        resolver(state(profile("a", "oci://registry.example/profiles/base:v1"))).resolve("a")
    assert exc.value.code == "oci-unsupported"
    assert "is an OCI base, which this command does not fetch" in str(exc.value)


class _Source:
    """A BaseSource over a dict: the seam the OCI source plugs into."""

    def __init__(self, entries: dict[str, Fetched | AgentError]) -> None:
        self.entries = entries
        self.calls: list[str] = []

    def fetch(self, reference: str) -> Fetched:
        self.calls.append(reference)
        entry = self.entries[reference]
        if isinstance(entry, AgentError):
            raise entry
        return entry


def _fetched(ref: str, spec: SeccompSpec, base: str | None = None) -> Fetched:
    link = Link(reference=ref, digest="sha256:" + "0" * 64, source="registry.example/p",
                spec=spec)
    return Fetched(spec=spec, base=base, link=link)


def test_chain_crosses_between_local_and_oci_and_detects_cycles_across() -> None:
    desired = state(profile("app", "oci://r.example/p/base:1"), profile("local-root"))
    spec = desired.profiles[ProfileKey(Kind.SECCOMP, "local-root")].spec
    source = _Source({"oci://r.example/p/base:1": _fetched("oci://r.example/p/base:1", spec,
                                                            "local-root")})
    res = resolver(desired, oci=source).resolve("app")
    assert [link.reference for link in res.chain] == ["app", "oci://r.example/p/base:1",
                                                      "local-root"]
    looped = _Source({"oci://r.example/p/base:1": _fetched("oci://r.example/p/base:1", spec,
                                                            "app")})
    with pytest.raises(ResolveError, match=re.escape("app → oci://r.example/p/base:1 → app")):
        resolver(desired, oci=looped).resolve("app")


def test_source_errors_keep_their_code() -> None:
    desired = state(profile("app", "oci://r.example/p/base:1"))
    source = _Source({"oci://r.example/p/base:1": RegistryError("down", code="registry-down")})
    with pytest.raises(ResolveError) as exc:
        resolver(desired, oci=source).resolve("app")
    assert exc.value.code == "registry-down"
    assert str(exc.value) == "base chain app → oci://r.example/p/base:1: down"


def test_build_all_isolates_failures() -> None:
    desired = state(profile("good"), profile("bad", "missing"), profile("child", "good"))
    out = build_all(dict(desired.profiles), invalid={}, max_depth=15)
    assert isinstance(out[ProfileKey(Kind.SECCOMP, "good")], SeccompBuild)
    assert isinstance(out[ProfileKey(Kind.SECCOMP, "child")], SeccompBuild)
    assert isinstance(out[ProfileKey(Kind.SECCOMP, "bad")], ResolveError)
