import pytest

from agent.errors import ResolveError
from agent.oci.reference import Reference, Scope, parse, parse_scope

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("oci://localhost/p/x", Reference(registry="localhost", repository="p/x", tag="latest")),
    ("oci://Registry.Example:5000/p/x:v1",
     Reference(registry="registry.example:5000", repository="p/x", tag="v1")),
    (f"oci://r/p/x@{DIGEST}", Reference(registry="r", repository="p/x", digest=DIGEST)),
    (f"oci://r:1/p/x:v1@{DIGEST}",
     Reference(registry="r:1", repository="p/x", tag="v1", digest=DIGEST)),
    ("oci://[::1]:5000/a", Reference(registry="[::1]:5000", repository="a", tag="latest")),
    ("oci://127.0.0.1:5000/my.team/base__x/runc-v1:1.2_3",
     Reference(registry="127.0.0.1:5000", repository="my.team/base__x/runc-v1", tag="1.2_3")),
])
def test_parse_normalises(text: str, expected: Reference) -> None:
    assert parse(text) == expected


def test_localhost_is_a_registry_not_docker_hub() -> None:
    # oras-py reads this as docker.io/localhost/p: a request to the wrong host.
    ref = parse("oci://localhost/p")
    assert (ref.registry, ref.repository) == ("localhost", "p")


def test_digest_wins_over_tag() -> None:
    ref = parse(f"oci://r/p:v1@{DIGEST}")
    assert ref.identifier == DIGEST
    assert parse("oci://r/p:v1").identifier == "v1"


def test_canonical_form_round_trips() -> None:
    for text in ("oci://r:5000/a/b:v1", f"oci://r/a@{DIGEST}", f"oci://r/a:t@{DIGEST}"):
        assert str(parse(text)) == text
        assert parse(str(parse(text))) == parse(text)
    assert str(parse("oci://R/a")) == "oci://r/a:latest"
    assert str(parse("oci://r/a:v1").pinned(DIGEST)) == f"oci://r/a:v1@{DIGEST}"


def test_scheme_is_optional_only_when_allowed() -> None:
    assert parse("r:5000/a:v1", require_scheme=False) == parse("oci://r:5000/a:v1")
    assert parse("oci://r/a", require_scheme=False) == parse("oci://r/a")
    with pytest.raises(ResolveError, match="must start with oci://"):
        parse("r/a")


@pytest.mark.parametrize(("text", "why"), [
    ("oci://", "needs a registry host and a repository"),
    ("oci://registry", "needs a registry host and a repository"),
    ("oci://r/", "repository is missing"),
    ("oci://r/Team/x", "must be lowercase"),
    ("oci://r/a//b", "is not a repository path component"),
    ("oci://r/a-/b", "is not a repository path component"),
    ("oci://r:0/a", "not a registry host"),
    ("oci://r:65536/a", "not a registry host"),
    ("oci://bad_host/a", "not a registry host"),
    ("oci://r/a:", "is not a tag"),
    ("oci://r/a:.v1", "is not a tag"),
    ("oci://r/a:" + "x" * 129, "is not a tag"),
    ("oci://r/a@sha512:" + "ab" * 64, "only sha256"),
    ("oci://r/a@sha256:" + "AB" * 32, "only sha256"),
    ("oci://r/a@sha256:abc", "only sha256"),
    ("oci://r/" + "a" * 260, "longer than 255"),
])
def test_invalid_references_say_why(text: str, why: str) -> None:
    with pytest.raises(ResolveError, match=why) as info:
        parse(text)
    assert info.value.code == "reference-invalid"
    assert "oci://host[:port]/repository" in info.value.hint


def test_scope_matches_whole_path_components() -> None:
    scope = parse_scope("r:5000/profiles")
    assert scope.covers(parse("oci://r:5000/profiles"))
    assert scope.covers(parse("oci://r:5000/profiles/runc:v1"))
    assert not scope.covers(parse("oci://r:5000/profiles-evil/x"))
    assert not scope.covers(parse("oci://r:5001/profiles/x"))
    assert parse_scope("R:5000").covers(parse("oci://r:5000/anything/at/all"))


def test_scope_normalises_and_rejects() -> None:
    assert parse_scope("Reg.Example/a/b/") == Scope(registry="reg.example", repository="a/b")
    assert parse_scope("r").specificity < parse_scope("r/a").specificity < parse_scope(
        "r/a/b").specificity
    for bad in ("oci://r/a", "r/a@sha256:" + "ab" * 32, "r/A", "r/a:tag", "bad host/a"):
        with pytest.raises(ValueError, match=r"\S"):
            parse_scope(bad)
