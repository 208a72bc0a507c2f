"""Atomic writes, name checks, confinement."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.fsutil import atomic_write, confined, name_problem


def test_atomic_write_replaces_content_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    target.write_text("old")
    os.chmod(target, 0o600)
    atomic_write(target, b"new", mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # no temp file left


def test_atomic_write_failure_leaves_old_content_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "p.json"
    target.write_text("old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


@pytest.mark.parametrize("name", ["a", "a-b.c", "x" * 253, "0"])
def test_valid_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "A", "a/b", "..", "../a", "a..b", "-a", "a-", ".a",
                                  "x" * 254, "a b", "ä"])
def test_invalid_names(name: str) -> None:
    assert name_problem(name) is not None


def test_confined_refuses_escapes(tmp_path: Path) -> None:
    assert confined(tmp_path, "a.json") == tmp_path / "a.json"
    with pytest.raises(ValueError, match="escapes"):
        confined(tmp_path, "../a.json")
    with pytest.raises(ValueError, match="escapes"):
        confined(tmp_path, "/etc/passwd")
