import os
import sqlite3
from pathlib import Path

import pytest

from agent.clock import FakeClock
from agent.errors import ResolveError
from agent.oci.cache import OciCache, Resolved
from agent.seccomp.render import digest


def make(path: Path, clock: FakeClock, *, entries: int = 10, size: int = 1 << 20) -> OciCache:
    return OciCache(path, max_entries=entries, max_bytes=size, clock=clock)


def resolved(manifest: bytes = b"m", layer: bytes = b"l", at: float = 0.0) -> Resolved:
    return Resolved(manifest=digest(manifest), layer=digest(layer), format="spo",
                    title="profile.yaml", checked_at=at)


def test_nothing_touches_the_disk_before_first_use(tmp_path: Path) -> None:
    make(tmp_path / "oci", FakeClock())
    assert not (tmp_path / "oci").exists()


def test_content_is_rehashed_on_read(tmp_path: Path) -> None:
    cache = make(tmp_path / "oci", FakeClock())
    cache.store_content(digest(b"profile"), b"profile")
    assert cache.content(digest(b"profile")) == b"profile"
    with pytest.raises(ValueError, match="does not match"):
        cache.store_content(digest(b"a"), b"b")
    cache.close()
    # Corrupt the row behind diskcache's back: the entry is dropped, not served.
    db = sqlite3.connect(tmp_path / "oci" / "content" / "cache.db")
    db.execute("UPDATE Cache SET value = ? WHERE key = ?", (b"altered", digest(b"profile")))
    db.commit()
    db.close()
    reopened = make(tmp_path / "oci", FakeClock())
    assert reopened.content(digest(b"profile")) is None
    assert reopened.content(digest(b"profile")) is None


def test_a_pickled_row_is_never_unpickled(tmp_path: Path) -> None:
    cache = make(tmp_path / "oci", FakeClock())
    cache.store_resolved("k", resolved())
    cache.close()
    db = sqlite3.connect(tmp_path / "oci" / "records" / "cache.db")
    # mode 4 is diskcache's MODE_PICKLE; the payload would run os.system on unpickling.
    payload = b"cos\nsystem\n(S'touch " + str(tmp_path / "pwned").encode() + b"'\ntR."
    db.execute("UPDATE Cache SET mode = 4, value = ?", (payload,))
    db.commit()
    db.close()
    with pytest.raises(ValueError, match="refusing a cache row stored in mode 4"):
        make(tmp_path / "oci", FakeClock()).resolved("k")
    assert not (tmp_path / "pwned").exists()


def test_only_bytes_are_stored(tmp_path: Path) -> None:
    cache = make(tmp_path / "oci", FakeClock())
    store = cache._open()[1]
    for value in ({"a": 1}, "text", 3):
        with pytest.raises(TypeError, match="cache values are bytes"):
            store.set("k", value)
    with pytest.raises(TypeError, match="cache keys are str"):
        store.set(("tuple", "key"), b"v")


def test_tag_freshness_follows_the_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    record = resolved(at=clock.now())
    assert record.fresh(clock.now() + 99, 100)
    assert not record.fresh(clock.now() + 100, 100)
    assert not record.fresh(clock.now() - 1, 100)  # clock stepped back: not fresh for ever
    assert not record.fresh(clock.now(), 0)


def test_records_survive_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make(tmp_path / "oci", clock)
    cache.store_resolved("linux/amd64|oci://r/a:v1", resolved(at=clock.now()))
    cache.store_content(digest(b"l"), b"l")
    cache.close()
    again = make(tmp_path / "oci", clock)
    assert again.resolved("linux/amd64|oci://r/a:v1") == resolved(at=clock.now())
    assert again.content(digest(b"l")) == b"l"


def test_failures_back_off_doubling_up_to_a_cap(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make(tmp_path / "oci", clock)
    waits = []
    for _ in range(5):
        failure = cache.record_failure("host|r", code="registry-unreachable", message="down",
                                       backoff_s=30, backoff_max_s=100)
        waits.append(failure.retry_at - clock.now())
    assert waits == [30, 60, 100, 100, 100]
    assert cache.failure("host|r").count == 5
    cache.clear_failure("host|r")
    assert cache.failure("host|r") is None


def test_content_is_bounded_by_entries_and_bytes(tmp_path: Path) -> None:
    by_count = make(tmp_path / "count", FakeClock(), entries=3)
    blobs = [bytes([i]) * 10 for i in range(5)]
    for blob in blobs:
        by_count.store_content(digest(blob), blob)
    assert [by_count.content(digest(b)) is not None for b in blobs] == [
        False, False, True, True, True]

    by_size = make(tmp_path / "size", FakeClock(), entries=1000, size=256 * 1024)
    big = [bytes([i]) * 40_000 for i in range(10)]
    for blob in big:
        by_size.store_content(digest(blob), blob)
    assert by_size.listing().content_bytes <= 256 * 1024
    assert by_size.content(digest(big[0])) is None
    assert by_size.content(digest(big[-1])) == big[-1]


def test_prune_keeps_last_known_good_and_drops_the_rest(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = make(tmp_path / "oci", clock)
    cache.store_content(digest(b"used"), b"used")
    cache.store_content(digest(b"orphan"), b"orphan")
    cache.store_resolved("k", resolved(layer=b"used", at=clock.now() - 10**7))
    cache.record_failure("host|a", code="c", message="m", backoff_s=10, backoff_max_s=10)
    cache.record_failure("host|b", code="c", message="m", backoff_s=1000, backoff_max_s=1000)
    clock.advance(60)
    assert cache.prune() == (1, 1)
    listing = cache.listing()
    assert [key for key, _ in listing.resolved] == ["k"]
    assert [key for key, _ in listing.failures] == ["host|b"]
    assert (listing.content_entries, listing.content_bytes) == (1, 4)
    assert cache.clear() == 3
    assert cache.listing().content_entries == 0


def test_refuses_a_cache_others_can_write(tmp_path: Path) -> None:
    directory = tmp_path / "oci"
    directory.mkdir()
    os.chmod(directory, 0o777)
    with pytest.raises(ResolveError, match="writable by other users") as info:
        make(directory, FakeClock()).content(digest(b"x"))
    assert info.value.code == "cache-insecure"
    os.chmod(directory, 0o700)
    assert make(directory, FakeClock()).content(digest(b"x")) is None
