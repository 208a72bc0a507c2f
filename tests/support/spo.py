"""Where SPO's reference data (``shared/spo``) is, if it is here at all: tests that read it
skip cleanly without it."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
SPO: Path | None = next(
    (p for p in (_REPO.parent / "shared" / "spo", _REPO.parent.parent / "shared" / "spo",
                 Path("/work/shared/spo")) if p.is_dir()),
    None,
)
