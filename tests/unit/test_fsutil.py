"""Atomic writes, name checks, confinement."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agent.fsutil import NotRegularFile, atomic_write, confined, name_problem, open_dir, read_at


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


def test_open_dir_refuses_a_symlink_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("x")
    for name in ("link", "file"):
        with pytest.raises(NotADirectoryError):
            open_dir(tmp_path / name, create=True)
    os.close(open_dir(tmp_path / "new/sub", create=True, mode=0o700))
    assert stat.S_IMODE((tmp_path / "new/sub").stat().st_mode) == 0o700


def test_read_at_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("/etc/hostname")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in ("fifo", "link"):
            with pytest.raises(NotRegularFile):
                read_at(fd, name)
        assert read_at(fd, "absent") is None
        with pytest.raises(ValueError):
            read_at(fd, "../x")
    finally:
        os.close(fd)


def test_atomic_write_refuses_to_replace_a_special_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.json")
    with pytest.raises(NotRegularFile):
        atomic_write(tmp_path / "p.json", b"x")
    assert sorted(os.listdir(tmp_path)) == ["p.json"]
