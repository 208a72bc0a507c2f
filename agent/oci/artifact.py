"""The OCI artifact formats of seccomp profiles: parse a manifest, pick the profile layer, read
the profile (:mod:`agent.oci.pack` builds them, for ``secprof push``).

Two formats exist (research/oci-sigstore.md §2, SPO's artifact package):

* **SPO** (``spoc push``): one layer per platform, titled ``profile-<os>-<arch>[-<variant>].yaml``
  (``profile.yaml`` without a platform), holding the SeccompProfile manifest as YAML. Current
  pushes set ``artifactType: application/vnd.unknown.config.v1+json`` over an empty config;
  older ones put that type on the config instead. Like SPO, the layer is picked by its title and
  neither type is required.
* **KEP-6061** (container runtimes): config media type (and ``artifactType``)
  ``application/vnd.cncf.seccomp-profile.config.v1+json``, exactly one layer holding a plain
  OCI runtime-spec seccomp profile as JSON, valid on every platform.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.codes import Code
from agent.errors import RegistryError, ResolveError
from agent.model.manifests import load_bytes
from agent.model.seccomp import SeccompProfile
from agent.model.strict import SyntaxProblem, json_document
from agent.oci.reference import DIGEST_RE

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = (INDEX_TYPE,
               "application/vnd.docker.distribution.manifest.list.v2+json")
ACCEPT = (MANIFEST_TYPE, DOCKER_MANIFEST_TYPE, *INDEX_TYPES)
SPO_ARTIFACT_TYPE = "application/vnd.unknown.config.v1+json"
KEP6061_TYPE = "application/vnd.cncf.seccomp-profile.config.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
TAR_LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"  # what SPO's (raw YAML) layers say
JSON_LAYER_TYPE = "application/json"
TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"
EMPTY_JSON = b"{}"
FALLBACK_TITLE = "profile.yaml"
KEP6061_TITLE = "profile.json"

# uname -m → GOARCH (and variant): SPO names layers after Go's platform names.
_MACHINES = {
    "x86_64": ("amd64", ""), "amd64": ("amd64", ""), "i386": ("386", ""), "i686": ("386", ""),
    "aarch64": ("arm64", ""), "arm64": ("arm64", ""), "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""), "mips64": ("mips64", ""), "loongarch64": ("loong64", ""),
}


class Format(StrEnum):
    SPO = "spo"
    KEP6061 = "kep6061"


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``os/arch[/variant]``; raises ValueError."""
        parts = text.split("/")
        if not 2 <= len(parts) <= 3 or not all(parts) or not all(
            p.replace("_", "").isalnum() for p in parts
        ):
            raise ValueError(f"{text!r} is not a platform: write os/arch[/variant], such as "
                             "linux/amd64 or linux/arm/v7")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls, machine: str | None = None) -> Platform:
        """This host's platform in Go's names (``uname -m`` unless ``machine`` is given)."""
        raw = machine if machine is not None else _platform.machine()
        architecture, variant = _MACHINES.get(raw.lower(), (raw.lower(), ""))
        return cls(os="linux", architecture=architecture, variant=variant)

    @property
    def title(self) -> str:
        """The SPO layer title for this platform."""
        return "-".join(p for p in ("profile", self.os, self.architecture, self.variant) if p) + (
            ".yaml"
        )

    def titles(self) -> tuple[str, ...]:
        """Layer titles to look for, most specific first (SPO's daemon asks without a variant)."""
        out = [self.title]
        if self.variant:
            out.append(Platform(os=self.os, architecture=self.architecture).title)
        return (*out, FALLBACK_TITLE)

    def to_json(self) -> dict[str, str]:
        out = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True, slots=True, kw_only=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    @property
    def title(self) -> str:
        return self.annotations.get(TITLE, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    artifact_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def format(self) -> Format:
        is_kep = KEP6061_TYPE in (self.artifact_type, self.config.media_type)
        return Format.KEP6061 if is_kep else Format.SPO


def _problem(where: str, why: str) -> RegistryError:
    return RegistryError(f"{where}: not a usable artifact manifest: {why}",
                         code=Code.MANIFEST_INVALID)


def _descriptor(value: Any, where: str, path: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _problem(where, f"{path} is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str):
        raise _problem(where, f"{path}.mediaType is missing")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise _problem(where, f"{path}.digest {digest!r} is not a sha256 digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _problem(where, f"{path}.size {size!r} is not a size")
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise _problem(where, f"{path}.annotations is not a map of strings")
    plat = value.get("platform")
    parsed_platform = None
    if plat is not None:
        if not isinstance(plat, dict) or not all(
            isinstance(plat.get(k, ""), str) for k in ("os", "architecture", "variant")
        ) or not plat.get("os") or not plat.get("architecture"):
            raise _problem(where, f"{path}.platform needs os and architecture strings")
        parsed_platform = Platform(os=plat["os"], architecture=plat["architecture"],
                                   variant=plat.get("variant", ""))
    return Descriptor(media_type=media_type, digest=digest, size=size,
                      annotations=dict(annotations), platform=parsed_platform)


def parse_manifest(raw: bytes, where: str) -> Manifest:
    """Parse an image manifest (OCI or Docker v2); raises RegistryError ``manifest-invalid``."""
    try:
        doc = json_document(raw.decode("utf-8"))
    except (UnicodeDecodeError, SyntaxProblem) as exc:
        reason = exc.message if isinstance(exc, SyntaxProblem) else "not UTF-8"
        raise _problem(where, reason) from None
    if not isinstance(doc, dict):
        raise _problem(where, "not a JSON object")
    media_type = doc.get("mediaType", MANIFEST_TYPE)
    if media_type in INDEX_TYPES or "manifests" in doc:
        raise RegistryError(
            f"{where} is an image index; secprof reads artifact manifests only",
            code=Code.MANIFEST_INVALID, hint="reference the artifact's own manifest digest",
        )
    if media_type not in (MANIFEST_TYPE, DOCKER_MANIFEST_TYPE):
        raise _problem(where, f"mediaType {media_type!r} is not an image manifest")
    if doc.get("schemaVersion") != 2:
        raise _problem(where, f"schemaVersion {doc.get('schemaVersion')!r} is not 2")
    artifact_type = doc.get("artifactType", "")
    if not isinstance(artifact_type, str):
        raise _problem(where, "artifactType is not a string")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _problem(where, "layers is not a list")
    return Manifest(
        artifact_type=artifact_type,
        config=_descriptor(doc.get("config"), where, "config"),
        layers=tuple(_descriptor(layer, where, f"layers[{i}]") for i, layer in enumerate(layers)),
    )


def _platform_mismatch(layer: Descriptor, wanted: Platform, where: str) -> None:
    got = layer.platform
    if got is None:
        return
    if (got.os, got.architecture) != (wanted.os, wanted.architecture) or (
        got.variant and wanted.variant and got.variant != wanted.variant
    ):
        raise RegistryError(
            f"{where}: layer {layer.title or layer.digest!r} is for {got}, not {wanted}",
            code=Code.ARTIFACT_NO_PROFILE,
        )


def select_layer(manifest: Manifest, wanted: Platform, where: str) -> Descriptor:
    """The layer holding the profile for ``wanted``; raises RegistryError."""
    if manifest.format is Format.KEP6061:
        if len(manifest.layers) != 1:
            raise RegistryError(f"{where}: a KEP-6061 artifact must have exactly one layer, "
                                f"this one has {len(manifest.layers)}", code=Code.MANIFEST_INVALID)
        _platform_mismatch(manifest.layers[0], wanted, where)
        return manifest.layers[0]
    by_title: dict[str, Descriptor] = {}
    for layer in manifest.layers:
        if layer.title in by_title:
            raise RegistryError(f"{where}: two layers are titled {layer.title!r}",
                                code=Code.MANIFEST_INVALID)
        by_title[layer.title] = layer
    for title in wanted.titles():
        if title in by_title:
            _platform_mismatch(by_title[title], wanted, where)
            return by_title[title]
    present = ", ".join(sorted(t for t in by_title if t)) or "no titled layers"
    raise RegistryError(
        f"{where}: no profile for {wanted}: looked for {', '.join(wanted.titles())}; the "
        f"artifact has {present}",
        code=Code.ARTIFACT_NO_PROFILE, hint="push a profile for this platform (secprof push -p)",
    )


def read_profile(data: bytes, fmt: Format, where: str) -> SeccompProfile:
    """The one SeccompProfile a profile layer holds; raises ResolveError ``artifact-invalid``.

    SPO layers are a SeccompProfile manifest (YAML), KEP-6061 layers a plain runtime-spec JSON
    profile; both go through the same strict parser as the desired-state directory.
    """
    state = load_bytes(data, display=where, as_json=fmt is Format.KEP6061, plain_name="oci-base")
    if state.errors:
        raise ResolveError(f"the artifact's profile is invalid: {state.errors[0]}",
                           code=Code.ARTIFACT_INVALID, hint="fix the profile and push it again")
    profiles = list(state.profiles.values())
    if len(profiles) != 1 or not isinstance(profiles[0], SeccompProfile):
        raise ResolveError(
            f"{where}: the layer holds {len(profiles)} profiles; a base must be exactly one "
            "SeccompProfile", code=Code.ARTIFACT_INVALID,
        )
    return profiles[0]
