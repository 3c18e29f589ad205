"""Tests of slatedb_py.disk_cache: round trips, persistence, the LRU bound, integrity, crash
leftovers, threads and processes sharing a root, soft failure on OSError, argument checks."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slatedb_py.disk_cache import DiskCache
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError


def entry_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*.blk"))


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in entry_files(root))


def payload(path: str, start: int, end: int) -> bytes:
    """Deterministic bytes for a range, so any reader can tell right bytes from wrong ones."""
    seed = hashlib.sha256(f"{path}:{start}:{end}".encode()).digest()
    return (seed * ((end - start) // len(seed) + 1))[: end - start]


def only_file(root: Path) -> Path:
    files = entry_files(root)
    assert len(files) == 1
    return files[0]


def test_range_round_trip(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    assert c.get("a.sst", 0, 10) is None
    c.put("a.sst", 0, 10, b"0123456789")
    c.put("a.sst", 10, 14, bytearray(b"abcd"))
    c.put("b.sst", 0, 10, memoryview(b"ABCDEFGHIJ"))
    assert c.get("a.sst", 0, 10) == b"0123456789"
    assert c.get("a.sst", 10, 14) == b"abcd"
    assert c.get("b.sst", 0, 10) == b"ABCDEFGHIJ"
    assert c.get("a.sst", 0, 9) is None  # exact ranges only
    assert c.get("c.sst", 0, 10) is None
    s = c.stats()
    assert (s["hits"], s["misses"], s["entries"], s["evictions"]) == (3, 3, 3, 0)
    assert s["bytes"] == disk_bytes(tmp_path)


def test_namespaces_are_separate(tmp_path: Path) -> None:
    DiskCache(tmp_path, 1 << 20, namespace="s3://one").put("a.sst", 0, 3, b"one")
    two = DiskCache(tmp_path, 1 << 20, namespace="s3://two")
    assert two.get("a.sst", 0, 3) is None
    two.put("a.sst", 0, 3, b"two")
    assert DiskCache(tmp_path, 1 << 20, namespace="s3://one").get("a.sst", 0, 3) == b"one"
    assert two.get("a.sst", 0, 3) == b"two"


def test_tail_round_trip(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    assert c.get_tail("a.sst", 4) is None
    c.put_tail("a.sst", b"0123456789", 100)
    assert c.get_tail("a.sst", 4) == (b"6789", 100)  # a shorter request from a longer tail
    assert c.get_tail("a.sst", 10) == (b"0123456789", 100)
    assert c.get_tail("a.sst", 0) == (b"", 100)
    assert c.get_tail("a.sst", 11) is None  # longer than cached: a miss, entry kept
    assert c.get_tail("a.sst", 10) == (b"0123456789", 100)
    c.put_tail("a.sst", b"89", 100)  # a shorter tail does not replace the longer one
    assert c.get_tail("a.sst", 10) == (b"0123456789", 100)
    c.put_tail("a.sst", b"x0123456789", 100)  # a longer one does
    assert c.get_tail("a.sst", 11) == (b"x0123456789", 100)
    assert c.get("a.sst", 89, 100) is None  # tails and ranges are different entries
    assert len(entry_files(tmp_path)) == 1
    with pytest.raises(InvalidArgumentError):
        c.put_tail("a.sst", b"too long", 3)


def test_survives_a_new_instance(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20, namespace="ns")
    c.put("a.sst", 5, 8, b"abc")
    c.put_tail("a.sst", b"tail", 50)
    before = c.stats()["bytes"]
    d = DiskCache(str(tmp_path), 1 << 20, namespace="ns")
    assert d.stats()["entries"] == 2 and d.stats()["bytes"] == before
    assert d.get("a.sst", 5, 8) == b"abc"
    assert d.get_tail("a.sst", 3) == (b"ail", 50)


def entry_size(tmp_path: Path, data_len: int) -> int:
    """The on-disk size of one range entry with ``data_len`` bytes (keys of equal length)."""
    probe = DiskCache(tmp_path / "probe", 1 << 20)
    probe.put("k0", 0, data_len, b"x" * data_len)
    return disk_bytes(tmp_path / "probe")


def test_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    size = entry_size(tmp_path, 1000)
    root = tmp_path / "c"
    c = DiskCache(root, 3 * size + size // 2)  # room for three entries
    for k in "abc":
        c.put(f"k{k}", 0, 1000, payload(k, 0, 1000))
    assert c.get("ka", 0, 1000) == payload("a", 0, 1000)  # a is now the most recent
    c.put("kd", 0, 1000, payload("d", 0, 1000))  # evicts b, the least recently used
    assert c.get("kb", 0, 1000) is None
    for k in "acd":
        assert c.get(f"k{k}", 0, 1000) == payload(k, 0, 1000)
    assert len(entry_files(root)) == 3 and disk_bytes(root) <= c.max_bytes
    s = c.stats()
    assert s["evictions"] == 1 and s["entries"] == 3 and s["bytes"] == disk_bytes(root)


def test_restart_seeds_lru_from_mtimes_and_enforces_a_smaller_bound(tmp_path: Path) -> None:
    size = entry_size(tmp_path, 1000)
    root = tmp_path / "c"
    c = DiskCache(root, 10 * size)
    for k in "abc":
        c.put(f"k{k}", 0, 1000, payload(k, 0, 1000))
    files = {f: f.stat().st_mtime for f in entry_files(root)}
    # Make the entry for "b" the most recently used and "a" the least.
    by_key = {k: next(f for f in files if _holds(f, f"k{k}")) for k in "abc"}
    now = time.time()
    for age, k in ((300, "a"), (200, "c"), (100, "b")):
        os.utime(by_key[k], (now - age, now - age))
    d = DiskCache(root, 2 * size)  # a restart with room for two: "a" goes
    assert not by_key["a"].exists()
    assert d.get("ka", 0, 1000) is None
    assert d.get("kb", 0, 1000) == payload("b", 0, 1000)
    assert d.get("kc", 0, 1000) == payload("c", 0, 1000)
    assert disk_bytes(root) <= d.max_bytes


def _holds(file: Path, path: str) -> bool:
    return f'"{path}"'.encode() in file.read_bytes()


def test_entry_larger_than_the_bound_is_not_stored(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 100)
    c.put("a.sst", 0, 200, b"x" * 200)
    c.put_tail("a.sst", b"y" * 200, 1000)
    assert c.get("a.sst", 0, 200) is None and c.get_tail("a.sst", 1) is None
    assert entry_files(tmp_path) == [] and c.stats()["bytes"] == 0


def flip_last_byte(f: Path) -> None:
    b = bytearray(f.read_bytes())
    b[-1] ^= 0x01
    f.write_bytes(bytes(b))


def flip_first_byte(f: Path) -> None:
    b = bytearray(f.read_bytes())
    b[0] ^= 0xFF
    f.write_bytes(bytes(b))


def truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[:-1])


def empty(f: Path) -> None:
    f.write_bytes(b"")


def append(f: Path) -> None:
    f.write_bytes(f.read_bytes() + b"\0")


@pytest.mark.parametrize("damage", [flip_last_byte, flip_first_byte, truncate, empty, append])
@pytest.mark.parametrize("fresh_instance", [False, True])
def test_damaged_entry_is_a_miss_and_removed(
    tmp_path: Path, damage: object, fresh_instance: bool
) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    c.put("a.sst", 0, 64, payload("a", 0, 64))
    f = only_file(tmp_path)
    damage(f)  # type: ignore[operator]
    if fresh_instance:
        c = DiskCache(tmp_path, 1 << 20)
    assert c.get("a.sst", 0, 64) is None
    assert not f.exists()
    assert c.stats()["entries"] == 0 and c.stats()["bytes"] == 0
    c.put("a.sst", 0, 64, payload("a", 0, 64))  # and it can be cached again
    assert c.get("a.sst", 0, 64) == payload("a", 0, 64)


def test_damaged_tail_is_a_miss_and_removed(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    c.put_tail("a.sst", b"0123456789", 100)
    f = only_file(tmp_path)
    flip_last_byte(f)
    assert c.get_tail("a.sst", 2) is None and not f.exists()


def test_another_keys_entry_under_our_name_is_a_miss(tmp_path: Path) -> None:
    """A hash collision (or a misplaced file): a valid entry whose key is not ours."""
    c = DiskCache(tmp_path, 1 << 20)
    c.put("a.sst", 0, 4, b"aaaa")
    fa = only_file(tmp_path)
    c.put("b.sst", 0, 4, b"bbbb")
    fb = next(f for f in entry_files(tmp_path) if f != fa)
    fb.write_bytes(fa.read_bytes())
    assert c.get("b.sst", 0, 4) is None and not fb.exists()
    assert c.get("a.sst", 0, 4) == b"aaaa"


def test_leftover_temp_file_is_not_served_and_stale_ones_are_cleaned(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    c.put("a.sst", 0, 4, b"aaaa")
    f = only_file(tmp_path)
    # A crash between writing the temp file and os.replace: only the temp file exists.
    stale = f.with_name(f.name + ".0123456789ab.tmp")
    fresh = f.with_name(f.name + ".ba9876543210.tmp")
    f.rename(stale)
    fresh.write_bytes(stale.read_bytes()[:10])  # half written, by a writer still running
    assert c.get("a.sst", 0, 4) is None
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    d = DiskCache(tmp_path, 1 << 20)
    assert d.get("a.sst", 0, 4) is None
    assert d.stats()["entries"] == 0
    assert not stale.exists()  # a crash leftover: removed
    assert fresh.exists()  # possibly another process's write in progress: left alone


def test_threads_keep_the_bound_and_never_return_wrong_bytes(tmp_path: Path) -> None:
    size = entry_size(tmp_path, 512)
    root = tmp_path / "c"
    c = DiskCache(root, 20 * size)
    errors: list[str] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(1500):
            path, start = f"k{rng.randrange(10)}", rng.randrange(8) * 512
            if rng.random() < 0.8:
                got = c.get(path, start, start + 512)
                if got is not None and got != payload(path, start, start + 512):
                    errors.append(f"wrong bytes for {path}@{start}")
                if rng.random() < 0.5:
                    tail = c.get_tail(path, 100)
                    if tail is not None and tail != (payload(path, 0, 10_000)[-100:], 10_000):
                        errors.append(f"wrong tail for {path}")
            else:
                c.put(path, start, start + 512, payload(path, start, start + 512))
                if rng.random() < 0.3:
                    tail_len = rng.choice((100, 200))  # a suffix of the object's bytes
                    c.put_tail(path, payload(path, 0, 10_000)[-tail_len:], 10_000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert disk_bytes(root) <= c.max_bytes
    s = c.stats()
    assert s["bytes"] <= c.max_bytes and s["evictions"] > 0 and s["hits"] > 0
    assert list(root.glob("*/*.tmp")) == []


WRITER = textwrap.dedent(
    """
    import hashlib, sys
    from slatedb_py.disk_cache import DiskCache

    def payload(path, start, end):
        seed = hashlib.sha256(f"{path}:{start}:{end}".encode()).digest()
        return (seed * ((end - start) // len(seed) + 1))[: end - start]

    c = DiskCache(sys.argv[1], 1 << 30, namespace="shared")
    for i in range(300):
        c.put(f"p{i}", 0, 700, payload(f"p{i}", 0, 700))
        c.put_tail(f"p{i}", payload(f"p{i}", 0, 300), 5000)
    """
)


def test_another_process_writes_while_this_one_reads(tmp_path: Path) -> None:
    reader = DiskCache(tmp_path, 1 << 30, namespace="shared")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
    while proc.poll() is None:
        for i in range(300):
            got = reader.get(f"p{i}", 0, 700)
            assert got is None or got == payload(f"p{i}", 0, 700)
            tail = reader.get_tail(f"p{i}", 50)
            assert tail is None or tail == (payload(f"p{i}", 0, 300)[-50:], 5000)
    assert proc.wait() == 0
    for i in range(300):
        assert reader.get(f"p{i}", 0, 700) == payload(f"p{i}", 0, 700)
        assert reader.get_tail(f"p{i}", 300) == (payload(f"p{i}", 0, 300), 5000)
    assert reader.stats()["entries"] == 600  # entries found on read are counted for the bound
    assert list(tmp_path.glob("*/*.tmp")) == []


def test_file_deleted_by_another_process_is_a_miss(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    c.put("a.sst", 0, 4, b"aaaa")
    only_file(tmp_path).unlink()
    assert c.get("a.sst", 0, 4) is None
    assert c.stats()["entries"] == 0 and c.stats()["bytes"] == 0


def test_unusable_root_never_raises(tmp_path: Path) -> None:
    root = tmp_path / "a-file"
    root.write_bytes(b"not a directory")  # every write under it fails (even for root)
    c = DiskCache(root, 1 << 20)
    c.put("a.sst", 0, 4, b"aaaa")
    c.put_tail("a.sst", b"tail", 10)
    assert c.get("a.sst", 0, 4) is None and c.get_tail("a.sst", 1) is None
    assert c.stats()["entries"] == 0


def test_write_errors_are_swallowed_and_leave_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = DiskCache(tmp_path, 1 << 20)

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    c.put("a.sst", 0, 4, b"aaaa")
    monkeypatch.undo()
    assert c.get("a.sst", 0, 4) is None
    assert list(tmp_path.rglob("*.tmp")) == [] and entry_files(tmp_path) == []


def test_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1 << 20)
    c.put("a.sst", 0, 4, b"aaaa")
    f = only_file(tmp_path)
    f.unlink()
    f.mkdir()  # open() now fails with IsADirectoryError
    assert c.get("a.sst", 0, 4) is None
    c.put("a.sst", 0, 4, b"aaaa")  # os.replace onto a directory fails: swallowed too


@pytest.mark.parametrize("root", [123, None, b"/tmp/bytes"])
def test_bad_root(root: object) -> None:
    with pytest.raises(InvalidTypeError, match="root"):
        DiskCache(root, 100)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_bytes", [True, 1.5, "100", None])
def test_max_bytes_of_the_wrong_type(tmp_path: Path, max_bytes: object) -> None:
    with pytest.raises(InvalidTypeError, match=f"max_bytes.*{max_bytes!r}"):
        DiskCache(tmp_path, max_bytes)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_bytes", [0, -1])
def test_max_bytes_not_positive(tmp_path: Path, max_bytes: int) -> None:
    with pytest.raises(InvalidArgumentError, match=f"max_bytes.*{max_bytes}") as e:
        DiskCache(tmp_path, max_bytes)
    assert not isinstance(e.value, InvalidTypeError)


def test_bad_namespace_and_ranges(tmp_path: Path) -> None:
    with pytest.raises(InvalidTypeError, match="namespace"):
        DiskCache(tmp_path, 100, namespace=1)  # type: ignore[arg-type]
    c = DiskCache(tmp_path, 100)
    with pytest.raises(InvalidArgumentError):
        c.get("a.sst", 5, 4)
    with pytest.raises(InvalidArgumentError):
        c.get("a.sst", -1, 4)
    with pytest.raises(InvalidArgumentError):
        c.get_tail("a.sst", -1)


paths = st.sampled_from(["a.sst", "b.sst", "wal/1.sst"])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), paths, st.integers(0, 3), st.binary(max_size=300)),
        st.tuples(st.just("get"), paths, st.integers(0, 3), st.just(b"")),
        st.tuples(st.just("put_tail"), paths, st.just(0), st.binary(max_size=300)),
        st.tuples(st.just("get_tail"), paths, st.integers(0, 300), st.just(b"")),
        st.tuples(st.just("restart"), paths, st.just(0), st.just(b"")),
    ),
    max_size=40,
)


@given(ops=ops, max_bytes=st.sampled_from([600, 1500, 1 << 20]))
def test_matches_a_dict_model(ops: list[tuple[str, str, int, bytes]], max_bytes: int) -> None:
    """Against a dict of what was put: with room for everything the cache agrees exactly; with
    less it may miss but never returns other bytes, and the disk stays within the bound.

    Each range's content is a function of its key (immutable objects), as is each tail (a
    suffix of the object, of size 1000)."""
    with tempfile.TemporaryDirectory() as root:
        c = DiskCache(root, max_bytes)
        ranges: dict[tuple[str, int], bytes] = {}
        tails: dict[str, bytes] = {}
        obj = {p: bytes(range(256)) * 4 for p in ("a.sst", "b.sst", "wal/1.sst")}
        for op, path, n, data in ops:
            if op == "put":
                ranges.setdefault((path, n), data)
                c.put(path, n, n + len(ranges[(path, n)]), ranges[(path, n)])
            elif op == "get" and (path, n) in ranges:
                want = ranges[(path, n)]
                got = c.get(path, n, n + len(want))
                assert got in (None, want) if max_bytes < 1 << 20 else got == want
            elif op == "put_tail":
                tail = obj[path][len(obj[path]) - len(data) :]
                tails[path] = max(tails.get(path, b""), tail, key=len)
                c.put_tail(path, tail, len(obj[path]))
            elif op == "get_tail":
                got_tail = c.get_tail(path, n)
                want_tail = (obj[path][len(obj[path]) - n :], len(obj[path]))
                assert got_tail in (None, want_tail)
                if max_bytes == 1 << 20:
                    assert (got_tail is not None) == (path in tails and len(tails[path]) >= n)
            elif op == "restart":
                c = DiskCache(root, max_bytes)
            assert disk_bytes(Path(root)) <= max_bytes
            assert c.stats()["bytes"] == disk_bytes(Path(root))
