"""Where the shared sigstore test vectors are, if they are here at all."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
VECTORS: Path | None = next(
    (
        p
        for p in (
            _REPO.parent / "shared" / "sigstore-vectors",
            Path("/work/shared/sigstore-vectors"),
        )
        if p.is_dir()
    ),
    None,
)
