"""Build artifacts for ``secprof push``: SPO's layout by default, KEP-6061's on request
(:mod:`agent.oci.artifact` describes both)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.oci.artifact import (
    CREATED,
    EMPTY_JSON,
    EMPTY_TYPE,
    FALLBACK_TITLE,
    JSON_LAYER_TYPE,
    KEP6061_TITLE,
    KEP6061_TYPE,
    MANIFEST_TYPE,
    SPO_ARTIFACT_TYPE,
    TAR_LAYER_TYPE,
    TITLE,
    Format,
    Platform,
)
from agent.seccomp.render import digest as sha256_digest


@dataclass(frozen=True, slots=True, kw_only=True)
class Packed:
    """A manifest ready to push, and the blobs it references."""

    manifest: bytes
    media_type: str
    blobs: Mapping[str, bytes]

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)


def _layer(data: bytes, media_type: str, annotations: Mapping[str, str],
           plat: Platform | None) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data),
                           "size": len(data), "annotations": dict(annotations)}
    if plat is not None:
        out["platform"] = plat.to_json()
    return out


def pack(fmt: Format, profiles: Sequence[tuple[Platform | None, bytes]],
         annotations: Mapping[str, str], created: str) -> Packed:
    """Build an artifact: SPO's layout (one layer per platform) or KEP-6061's (one JSON layer).

    ``annotations`` go on every layer, as ``spoc push -a`` does; ``created`` is the RFC 3339
    time for the manifest's ``org.opencontainers.image.created``.
    """
    if TITLE in annotations:
        raise ValueError(f"the {TITLE} annotation names the layer; it cannot be set")
    empty = {"mediaType": EMPTY_TYPE, "digest": sha256_digest(EMPTY_JSON),
             "size": len(EMPTY_JSON), "data": base64.b64encode(EMPTY_JSON).decode()}
    if fmt is Format.KEP6061:
        if len(profiles) != 1 or profiles[0][0] is not None:
            raise ValueError("a KEP-6061 artifact holds exactly one profile, for every platform")
        artifact_type = KEP6061_TYPE
        config = {"mediaType": KEP6061_TYPE, "digest": empty["digest"], "size": empty["size"]}
        layers = [_layer(profiles[0][1], JSON_LAYER_TYPE,
                         {TITLE: KEP6061_TITLE, **annotations}, None)]
    else:
        artifact_type = SPO_ARTIFACT_TYPE
        config = empty
        layers = [
            _layer(data, TAR_LAYER_TYPE,
                   {TITLE: plat.title if plat else FALLBACK_TITLE, **annotations}, plat)
            for plat, data in profiles
        ]
    # Field order follows oras-go's structs, so the bytes look like spoc's.
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE, "artifactType": artifact_type,
                "config": config, "layers": layers, "annotations": {CREATED: created}}
    blobs = {sha256_digest(EMPTY_JSON): EMPTY_JSON}
    blobs.update({sha256_digest(data): data for _, data in profiles})
    raw = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode()
    return Packed(manifest=raw, media_type=MANIFEST_TYPE, blobs=blobs)
