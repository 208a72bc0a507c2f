import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.errors import RegistryError, ResolveError
from agent.oci.artifact import (
    KEP6061_TYPE,
    SPO_ARTIFACT_TYPE,
    TITLE,
    Format,
    Platform,
    parse_manifest,
    read_profile,
    select_layer,
)
from agent.publish.pack import pack
from agent.seccomp.render import digest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VECTORS = Path("/work/shared/spo/vectors/oci-artifact-layout.yaml")
AMD64, ARM64, ARMV7 = (Platform.parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7"))
CREATED = "2026-01-02T03:04:05Z"


def layer(title: str | None, data: bytes = b"x", plat: dict[str, str] | None = None
          ) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": "application/vnd.oci.image.layer.v1.tar",
                           "digest": digest(data), "size": len(data)}
    if title is not None:
        out["annotations"] = {TITLE: title}
    if plat is not None:
        out["platform"] = plat
    return out


def manifest(layers: list[dict[str, Any]], **extra: Any) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                      "digest": digest(b"{}"), "size": 2}, "layers": layers, **extra}
    return json.dumps(doc).encode()


def test_platform_titles_and_host_mapping() -> None:
    assert AMD64.title == "profile-linux-amd64.yaml"
    assert ARMV7.titles() == ("profile-linux-arm-v7.yaml", "profile-linux-arm.yaml",
                              "profile.yaml")
    assert Platform.host("x86_64") == AMD64
    assert Platform.host("aarch64") == ARM64
    assert Platform.host("armv7l") == ARMV7
    assert str(ARMV7) == "linux/arm/v7"
    for bad in ("linux", "linux/", "a/b/c/d", "linux/amd 64"):
        with pytest.raises(ValueError, match="os/arch"):
            Platform.parse(bad)


def test_spo_pack_matches_spocs_layout() -> None:
    a, b = b"kind: a\n", b"kind: b\n"
    packed = pack(Format.SPO, [(AMD64, a), (ARM64, b)], {"team": "sec"}, CREATED)
    doc = json.loads(packed.manifest)
    assert list(doc) == ["schemaVersion", "mediaType", "artifactType", "config", "layers",
                         "annotations"]
    assert doc["artifactType"] == SPO_ARTIFACT_TYPE
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                             "digest": digest(b"{}"), "size": 2, "data": "e30="}
    assert doc["layers"][1] == {
        "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(b), "size": 8,
        "annotations": {TITLE: "profile-linux-arm64.yaml", "team": "sec"},
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    assert doc["annotations"] == {"org.opencontainers.image.created": CREATED}
    assert set(packed.blobs) == {digest(b"{}"), digest(a), digest(b)}
    assert packed.digest == digest(packed.manifest)


@pytest.mark.skipif(not VECTORS.exists(), reason="shared SPO vectors not available")
def test_spo_pack_agrees_with_the_recorded_spoc_example() -> None:
    example = yaml.safe_load(VECTORS.read_text())["push_manifest_example"]
    doc = json.loads(pack(Format.SPO, [(AMD64, b"a"), (ARM64, b"b")], {"team": "sec"},
                          CREATED).manifest)
    for key in ("schemaVersion", "mediaType", "artifactType", "config"):
        assert doc[key] == example[key], key
    for ours, theirs in zip(doc["layers"], example["layers"], strict=True):
        assert ours["mediaType"] == theirs["mediaType"]
        assert ours["annotations"] == theirs["annotations"]
        assert ours["platform"] == theirs["platform"]


def test_kep6061_pack() -> None:
    data = (FIXTURES / "plain-runtime.json").read_bytes()
    doc = json.loads(pack(Format.KEP6061, [(None, data)], {}, CREATED).manifest)
    assert doc["artifactType"] == KEP6061_TYPE
    assert doc["config"]["mediaType"] == KEP6061_TYPE
    assert [(entry["mediaType"], entry["annotations"][TITLE]) for entry in doc["layers"]] == [
        ("application/json", "profile.json")]
    with pytest.raises(ValueError, match="exactly one profile"):
        pack(Format.KEP6061, [(AMD64, data)], {}, CREATED)
    with pytest.raises(ValueError, match="cannot be set"):
        pack(Format.SPO, [(AMD64, data)], {TITLE: "evil.yaml"}, CREATED)


def test_selects_this_platforms_layer_in_both_spo_shapes() -> None:
    layers = [layer("profile-linux-arm64.yaml", b"arm"), layer("profile-linux-amd64.yaml", b"amd")]
    current = parse_manifest(manifest(layers, artifactType=SPO_ARTIFACT_TYPE), "ref")
    older = json.loads(manifest(layers))
    older["config"]["mediaType"] = SPO_ARTIFACT_TYPE  # pre-2023 spoc: no artifactType
    for parsed in (current, parse_manifest(json.dumps(older).encode(), "ref")):
        assert parsed.format is Format.SPO
        assert select_layer(parsed, AMD64, "ref").digest == digest(b"amd")
        assert select_layer(parsed, ARM64, "ref").digest == digest(b"arm")


def test_variant_falls_back_to_plain_arch_then_profile_yaml() -> None:
    generic = parse_manifest(manifest([layer("profile.yaml", b"g"),
                                       layer("profile-linux-arm.yaml", b"arm")]), "ref")
    assert select_layer(generic, ARMV7, "ref").digest == digest(b"arm")
    assert select_layer(generic, AMD64, "ref").digest == digest(b"g")


def test_no_matching_layer_names_what_is_there() -> None:
    parsed = parse_manifest(manifest([layer("profile-linux-arm64.yaml"), layer(None)]), "ref")
    with pytest.raises(RegistryError, match=r"no profile for linux/amd64.*"
                       r"profile-linux-arm64\.yaml") as info:
        select_layer(parsed, AMD64, "ref")
    assert info.value.code == "artifact-no-profile"


def test_layer_platform_must_agree_with_its_title() -> None:
    parsed = parse_manifest(manifest([layer("profile-linux-amd64.yaml", plat={
        "os": "linux", "architecture": "arm64"})]), "ref")
    with pytest.raises(RegistryError, match="is for linux/arm64, not linux/amd64"):
        select_layer(parsed, AMD64, "ref")


def test_kep6061_takes_its_one_layer_on_any_platform() -> None:
    one = parse_manifest(manifest([layer("seccomp.json", b"j")],
                                  artifactType=KEP6061_TYPE), "ref")
    assert one.format is Format.KEP6061
    assert select_layer(one, ARMV7, "ref").digest == digest(b"j")
    doc = json.loads(manifest([layer(None, b"j")]))
    doc["config"]["mediaType"] = KEP6061_TYPE  # CRI-O's artifacts: no artifactType
    assert parse_manifest(json.dumps(doc).encode(), "ref").format is Format.KEP6061
    two = parse_manifest(manifest([layer("a"), layer("b")], artifactType=KEP6061_TYPE), "ref")
    with pytest.raises(RegistryError, match="exactly one layer"):
        select_layer(two, AMD64, "ref")


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xff", "not UTF-8"),
    (b"[]", "not a JSON object"),
    (b'{"schemaVersion": 2, "schemaVersion": 2}', "duplicate key"),
    (json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": []}).encode(), "image index"),
    (manifest([], mediaType="text/plain"), "is not an image manifest"),
    (manifest([], schemaVersion=1), "schemaVersion 1"),
    (manifest([{"mediaType": "x", "digest": "md5:00", "size": 1}]), "not a sha256 digest"),
    (manifest([{"mediaType": "x", "digest": digest(b""), "size": -1}]), "is not a size"),
    (manifest([{"mediaType": "x", "digest": digest(b""), "size": True}]), "is not a size"),
    (manifest([{"mediaType": "x", "digest": digest(b""), "size": 0,
                "annotations": {"a": 1}}]), "map of strings"),
    (manifest([{"mediaType": "x", "digest": digest(b""), "size": 0,
                "platform": {"os": "linux"}}]), "needs os and architecture"),
])
def test_malformed_manifests_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        parse_manifest(raw, "oci://r/a@sha256:x")
    assert info.value.code == "manifest-invalid"


def test_duplicate_titles_are_refused() -> None:
    parsed = parse_manifest(manifest([layer("profile.yaml", b"1"), layer("profile.yaml")]), "r")
    with pytest.raises(RegistryError, match="two layers are titled"):
        select_layer(parsed, AMD64, "r")


def test_read_profile_in_both_formats() -> None:
    spo = read_profile((FIXTURES / "runtime-base.yaml").read_bytes(), Format.SPO, "where")
    assert spo.name == "runtime-base"
    assert spo.spec.syscalls
    plain = read_profile((FIXTURES / "plain-runtime.json").read_bytes(), Format.KEP6061, "w")
    assert plain.spec.default_errno_ret == 38


@pytest.mark.parametrize(("data", "fmt", "message"), [
    (b"kind: [", Format.SPO, "YAML error"),
    ((FIXTURES / "plain-runtime.json").read_bytes(), Format.SPO, "required field is missing"),
    (b"---\n".join([(FIXTURES / "runtime-base.yaml").read_bytes()] * 2), Format.SPO,
     "defined more than once"),
    (b"apiVersion: security-profiles-operator.x-k8s.io/v1\nkind: AppArmorProfile\n"
     b"metadata: {name: a}\nspec: {}\n", Format.SPO, "exactly one SeccompProfile"),
    (b"", Format.SPO, "holds 0 profiles"),
    (b'{"defaultAction": "SCMP_ACT_NOPE"}', Format.KEP6061, "SCMP_ACT_NOPE"),
])
def test_read_profile_refuses_bad_content(data: bytes, fmt: Format, message: str) -> None:
    with pytest.raises(ResolveError, match=message) as info:
        read_profile(data, fmt, "oci://r/a@sha256:x (profile.yaml)")
    assert info.value.code == "artifact-invalid"
