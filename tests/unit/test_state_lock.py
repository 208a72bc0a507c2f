"""The one-writer lock, contended for real: the holder is another process (a forked child that
takes the flock), as a daemon or a second ``secprof apply`` would be."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.reconcile.lock import StateLock, StateLocked


@contextmanager
def held_elsewhere(state_dir: Path) -> Iterator[int]:
    """A child process holding the state lock until the block ends; yields its pid."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            lock = StateLock(state_dir)
            lock.acquire()
            os.write(ready_w, b"x")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    try:
        os.read(ready_r, 1)
        yield pid
    finally:
        os.write(done_w, b"x")
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)


class FakeTime:
    """Injected time: each sleep advances the clock; nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_the_loser_waits_with_a_bound_then_names_the_holder(tmp_path: Path) -> None:
    fake = FakeTime()
    with held_elsewhere(tmp_path / "state") as holder:
        lock = StateLock(tmp_path / "state", wait_s=1.0, poll_s=0.1, clock=fake.clock,
                         sleep=fake.sleep)
        with pytest.raises(StateLocked) as exc:
            lock.acquire()
    assert exc.value.code == "state-locked"
    assert f"pid {holder}" in exc.value.message
    assert 9 <= fake.sleeps <= 11  # it waited its bound, polling
    with StateLock(tmp_path / "state", wait_s=0):  # free again once the holder is gone
        assert (tmp_path / "state/lock").read_text() == f"{os.getpid()}\n"


def test_a_lock_freed_while_waiting_is_taken(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: contends like a process
    fake = FakeTime()

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        if fake.sleeps == 3:
            os.close(fd)  # the holder finishes

    with StateLock(state, wait_s=10, clock=fake.clock, sleep=sleep):
        assert fake.sleeps == 3


@pytest.mark.parametrize("plant", ["symlink", "fifo"])
def test_a_planted_lock_file_is_refused_without_hanging(tmp_path: Path, plant: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if plant == "symlink":
        (state / "lock").symlink_to(tmp_path / "elsewhere")
    else:
        os.mkfifo(state / "lock")
    with pytest.raises(Exception) as exc:
        StateLock(state, wait_s=0).acquire()
    assert getattr(exc.value, "code", "") == "state-unwritable"
    assert not (tmp_path / "elsewhere").exists()
