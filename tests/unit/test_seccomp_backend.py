"""The seccomp backend against hostile file-system states, all built in a tmp dir by the test:
a symlink where the install directory goes, special files where a profile goes, leftovers of
killed runs. Real files, real FIFOs; nothing faked."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.backends.base import Batch, Install, Result
from agent.backends.seccomp import SeccompBackend
from agent.model.profile import Kind, ProfileKey
from agent.seccomp.render import digest

KEY = ProfileKey(Kind.SECCOMP, "web")
CONTENT = b'{"defaultAction":"SCMP_ACT_ERRNO"}\n'


def _install(key: ProfileKey = KEY, content: bytes = CONTENT) -> Install:
    return Install(key=key, content=content, digest=digest(content))


def _bounded(call: Callable[[], object], timeout_s: float = 10.0) -> object:
    """Run ``call`` in a thread: a hang (what a FIFO did to the old code) fails the test
    instead of freezing the suite."""
    box: list[object] = []
    worker = threading.Thread(target=lambda: box.append(call()), daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), "the backend hung"
    return box[0]


def test_symlinked_install_dir_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    root = tmp_path / "seccomp"
    elsewhere = tmp_path / "etc"
    root.mkdir()
    elsewhere.mkdir()
    (elsewhere / "web.json").write_text("someone else's file")
    (elsewhere / "old.json").write_text("someone else's file")
    (root / "secprof").symlink_to(elsewhere)
    backend = SeccompBackend(root, "secprof")

    results = backend.apply(Batch(installs=(_install(),),
                                  removals=(ProfileKey(Kind.SECCOMP, "old"),)))

    assert [r.error.code if r.error else None for r in results] == ["unsafe-directory"] * 2
    assert "symlink" in str(results[0].error)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["old.json", "web.json"]
    assert (elsewhere / "web.json").read_text() == "someone else's file"
    assert backend.actual([KEY]) == {KEY: "unreadable"}  # never reads through the link


def test_a_file_where_the_install_dir_goes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secprof").write_text("x")
    results = SeccompBackend(tmp_path, "secprof").apply(Batch(installs=(_install(),)))
    assert results[0].error is not None and results[0].error.code == "unsafe-directory"


@pytest.mark.parametrize("removal", [False, True])
def test_fifo_at_a_target_path_is_an_error_not_a_hang(tmp_path: Path, removal: bool) -> None:
    backend = SeccompBackend(tmp_path, "secprof")
    (tmp_path / "secprof").mkdir()
    os.mkfifo(tmp_path / "secprof/web.json")
    batch = Batch(removals=(KEY,)) if removal else Batch(installs=(_install(),))

    results = _bounded(lambda: backend.apply(batch))
    actual = _bounded(lambda: backend.actual([KEY]))

    assert isinstance(results, list)
    (result,) = results
    assert isinstance(result, Result) and result.error is not None
    assert "FIFO" in result.error.message
    assert actual == {KEY: "unreadable"}
    assert (tmp_path / "secprof/web.json").is_fifo()  # not ours: left alone


def test_symlink_at_a_target_path_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "secprof").mkdir()
    (tmp_path / "secprof/web.json").symlink_to(victim)
    backend = SeccompBackend(tmp_path, "secprof")

    (result,) = backend.apply(Batch(installs=(_install(),)))

    assert result.error is not None and result.error.code == "unsafe-target"
    assert backend.actual([KEY]) == {KEY: "unreadable"}
    assert victim.read_text() == "precious"


def test_install_and_remove_regular_files(tmp_path: Path) -> None:
    backend = SeccompBackend(tmp_path / "seccomp", "secprof")
    assert backend.actual([KEY]) == {KEY: None}
    (result,) = backend.apply(Batch(installs=(_install(),)))
    assert result.ok and result.changed
    assert (tmp_path / "seccomp/secprof/web.json").read_bytes() == CONTENT
    assert backend.actual([KEY]) == {KEY: digest(CONTENT)}
    (again,) = backend.apply(Batch(installs=(_install(),)))
    assert again.ok and not again.changed
    (removed,) = backend.apply(Batch(removals=(KEY,)))
    assert removed.ok and removed.changed
    assert os.listdir(tmp_path / "seccomp/secprof") == []


def test_temp_files_of_killed_runs_are_removed_others_kept(tmp_path: Path) -> None:
    directory = tmp_path / "secprof"
    directory.mkdir()
    leftovers = [".web.json.0123456789ab.secprof-tmp", ".web.json.abcd_123.tmp"]
    for name in leftovers:
        (directory / name).write_text("{")
    (directory / "someone.json").write_text("{}")
    (directory / ".hidden").write_text("not ours")

    backend = SeccompBackend(tmp_path, "secprof")
    backend.actual([KEY])  # reading never sweeps: a read-only command holds no lock
    assert len(os.listdir(directory)) == 4
    assert backend.sweep() == sorted(leftovers)

    assert sorted(os.listdir(directory)) == [".hidden", "someone.json"]


def test_a_crash_between_write_and_rename_leaves_the_old_file(tmp_path: Path) -> None:
    class Killed(Exception):
        pass

    def crash(point: str) -> None:
        raise Killed(point)

    backend = SeccompBackend(tmp_path, "secprof")
    backend.apply(Batch(installs=(_install(content=b"old\n"),)))
    with pytest.raises(Killed, match=r"written:web\.json"):
        SeccompBackend(tmp_path, "secprof", crash_point=crash).apply(
            Batch(installs=(_install(),)))
    assert os.listdir(tmp_path / "secprof") == ["web.json"]
    assert (tmp_path / "secprof/web.json").read_bytes() == b"old\n"


def test_a_batch_written_side_by_side_keeps_each_result_its_own(tmp_path: Path) -> None:
    """Many files are written a few at a time: the results come back in the batch's order,
    a target secprof must not replace fails alone, and no temp file is left."""
    keys = [ProfileKey(Kind.SECCOMP, f"p{i:03}") for i in range(60)]
    directory = tmp_path / "secprof"
    directory.mkdir()
    (directory / "p017.json").mkdir()  # not a regular file: refused, the rest installed
    installs = tuple(_install(key, f"{key.name}\n".encode()) for key in keys)
    results = SeccompBackend(tmp_path, "secprof").apply(Batch(installs=installs))
    assert [r.key for r in results] == keys
    failed = [r for r in results if r.error is not None]
    assert [r.key.name for r in failed] == ["p017"]
    assert failed[0].error is not None and failed[0].error.code == "unsafe-target"
    assert all(r.changed for r in results if r.error is None)
    written = sorted(p.name for p in directory.iterdir() if p.is_file())
    assert written == [f"p{i:03}.json" for i in range(60) if i != 17]
    assert all((directory / f"{k.name}.json").read_bytes() == f"{k.name}\n".encode()
               for k in keys if k.name != "p017")
