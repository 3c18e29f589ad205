"""Corrupt, truncated and replaced SST objects under every read (get, get_many, scan, reverse
scan, seek, compaction), on a MemoryStore (bytes through the fetch driver) and a local folder
(native `pread`). The contract: a `DataError` whose `.object` names the SST, never a panic,
never another class, never wrong rows."""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import obstore
import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, DbReader, _native
from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.errors import DataError, UnavailableError
from slatedb_py.store import Store

OPTS = DbOptions(flush_interval=None, compactor_enabled=False, block_cache_bytes=0)
READER = ReaderOptions(manifest_poll_interval=None, block_cache_bytes=0)
N = 3000
ROWS = [(b"k%05d" % i, b"v%05d" % i + b"." * 40) for i in range(N)]


class Env:
    def __init__(self, kind: str, root: str) -> None:
        self.kind = kind
        self.root = root
        self.store = MemoryStore() if kind == "memory" else LocalStore(root)
        with Db.open("db", self.store, OPTS) as db:
            for k, v in ROWS:
                db.put(k, v, await_durable=False)
            db.flush_memtable()
            db.compact()
            sid = str(db.manifest()[1].compacted[0].views[0].sst.id)
        paths = [m["path"] for batch in obstore.list(self.store, "db/compacted") for m in batch]
        [self.sst] = [p for p in paths if sid in p]
        for p in paths:  # only the run's SST: every read must go through it
            if p != self.sst:
                obstore.delete(self.store, p)
        self.data = bytes(obstore.get(self.store, self.sst).bytes())

    def put(self, data: bytes) -> None:
        obstore.put(self.store, self.sst, data)


@pytest.fixture(params=["memory", "local"])
def env(request: pytest.FixtureRequest) -> Iterator[Env]:
    with tempfile.TemporaryDirectory() as d:
        yield Env(request.param, d)


def _reads(h: Any) -> list[tuple[str, Callable[[], bool]]]:
    def seek() -> bool:
        it = h.scan()
        first = next(it)
        it.seek(ROWS[2500][0])
        return [first, *it] == [ROWS[0], *ROWS[2500:]]

    sample = list(range(0, N, 97))
    return [
        ("get", lambda: h.get(ROWS[1500][0]) == ROWS[1500][1] and h.get(b"k99999") is None),
        (
            "get_many",
            lambda: (
                h.get_many([ROWS[i][0] for i in sample] + [b"zz"])
                == [ROWS[i][1] for i in sample] + [None]
            ),
        ),
        ("scan", lambda: list(h.scan()) == ROWS),
        ("reverse", lambda: list(h.scan(reverse=True)) == ROWS[::-1]),
        ("seek", seek),
    ]


def _outcome(fn: Callable[[], Any], sst: str) -> str:
    """'ok', 'WRONG', 'named' (a DataError naming `sst`) or what else happened."""
    try:
        return "ok" if fn() in (True, None) else "WRONG"
    except DataError as e:
        return "named" if e.object == sst else f"{type(e).__name__}(object={e.object!r})"
    except BaseException as e:
        return f"{type(e).__name__}: {str(e)[:80]}"


def _corruptions(data: bytes) -> dict[str, bytes]:
    info = _native.decode_sst(data).info()
    n = len(data)

    def flip(at: int, k: int = 4) -> bytes:
        b = bytearray(data)
        for i in range(at, at + k):
            b[i] ^= 0xFF
        return bytes(b)

    def meta_offset(off: int) -> bytes:
        return data[: n - 10] + struct.pack(">Q", off) + data[n - 2 :]

    return {
        "empty": b"",
        "five bytes": b"12345",
        "half": data[: n // 2],
        "one byte short": data[:-1],
        "footer version": flip(n - 2, 2),
        "metadata offset past the end": meta_offset(2**63),
        "metadata offset zero": meta_offset(0),
        "SsTableInfo": flip(info.metadata_offset + 10),
        "index": flip(info.index_offset + 100),
        "filter": flip(info.filter_offset + 50),
        "prepended": b"xxxx" + data,
    }


def test_corrupt_ssts_are_data_errors_naming_them(env: Env) -> None:
    """Holds: each corruption of an SST a fresh handle has not opened yet makes every read a
    `DataError` naming it (a flipped data block is covered by
    tests/regressions/test_data_errors_name_objects.py)."""
    bad: dict[str, dict[str, str]] = {}
    for name, data in _corruptions(env.data).items():
        env.put(data)
        with DbReader.open("db", env.store, options=READER) as r:
            got = {op: _outcome(fn, env.sst) for op, fn in _reads(r)}
        if name in ("empty", "index"):
            with Db.open("db", env.store, OPTS) as db:
                got["compact"] = _outcome(db.compact, env.sst)
        if set(got.values()) != {"named"}:
            bad[name] = got
    assert not bad, bad


def test_an_sst_truncated_after_it_was_opened_is_a_data_error_naming_it(env: Env) -> None:
    """Fixed bug: an SST cut short after the handle opened it raises `DataError` with `.object`
    None from scans, reverse scans and compactions (and, on a local folder, from get and
    get_many too); the object is only mentioned inside the message.

    (On a local folder the file is truncated in place, so the handle's open descriptor sees
    it; in a MemoryStore the object is replaced by its first half.)

    Expected: `DataError` with `.object == <the SST path>` from every read.
    Actual: `DataError(object=None)` ("corrupt data at offset ...: db/compacted/X.sst ends
    before byte ..." / "...: got N bytes for [a, b)"); on a MemoryStore a read whose range
    starts past the new end raises `UnavailableError` after 7 attempts instead (see
    test_an_sst_emptied_after_open_is_a_data_error_not_unavailable).

    Root cause: fetch.rs `TableSlot::read_local` builds `CoreError::corrupt(.., "{path} ends
    before byte ..")` without `.in_object(Some(&self.path))`, and scan.rs
    `TableSource::take_blocks`'s length check does the same; the bindings convert with
    `py_err(None)` (bindings/read.rs `poll_get`, `PyScan::page`), so nothing names it."""
    half = env.data[: len(env.data) // 2]
    fast = Store(env.store, base_delay_s=0.0005)  # retries without the waiting (see below)
    with Db.open("db", fast, OPTS) as db:
        assert db.get(ROWS[10][0]) == ROWS[10][1]  # opens the SST (and its file)
        if env.kind == "local":
            os.truncate(os.path.join(env.root, env.sst), len(half))
        else:
            env.put(half)
        late = 2900  # a key whose block lies past the cut
        reads: list[tuple[str, Callable[[], Any]]] = [
            ("get", lambda: db.get(ROWS[late][0])),
            ("scan", lambda: list(db.scan(ROWS[2000][0]))),
            ("reverse", lambda: list(db.scan(reverse=True))),
            ("compact", db.compact),
        ]
        if env.kind == "local":  # on a MemoryStore get_many panics instead (next test)
            reads.append(("get_many", lambda: db.get_many([ROWS[late][0], ROWS[2000][0]])))
        got = {op: _outcome(fn, env.sst) for op, fn in reads}
    assert set(got.values()) == {"named"}, got


def test_get_many_over_an_sst_shrunk_after_open_does_not_panic() -> None:
    """Fixed bug: `Db.get_many` over an SST that became shorter after the handle opened it raises
    pyo3's `PanicException` (a `BaseException`, not even an `Exception`), with a Rust panic
    backtrace on stderr: "range start must not be greater than end: 109605 <= 104654".

    The panic is in obstore's `get_ranges` (MemoryStore coalesces the block ranges of one call,
    gets a short object back and slices past its end); `Store.get_ranges` lets it through.

    Expected: `DataError` naming the SST (the object is shorter than its index says).
    Actual: `pyo3_runtime.PanicException`.

    Root cause: store.py `Store.get_ranges` / `_call` translate only obstore's exception
    classes; a panic raised by the obstore binding escapes every `except Exception` above it
    (fetch.drive's pool, `read_again`)."""
    env = Env("memory", "")
    with Db.open("db", env.store, OPTS) as db:
        assert db.get(ROWS[10][0]) == ROWS[10][1]
        env.put(env.data[: len(env.data) // 2])
        keys = [ROWS[i][0] for i in range(0, N, 97)]
        got = _outcome(lambda: db.get_many(keys), env.sst)
    assert got == "named", got


def test_an_sst_emptied_after_open_is_a_data_error_not_unavailable() -> None:
    """Fixed bug: a remote SST that is 0 bytes when its blocks are read (it was whole when the
    handle opened it) raises `UnavailableError` ("may pass: retry later") after the store
    layer retried the read 7 times (2.5 s per read with the default backoff).

    obstore reports a range past the end of an object as `GenericError` ("Invalid range:
    Wanted range starting at 0, but object was only 0 bytes long"), which `Store._call` treats
    as transient. Nothing will bring those bytes back: it is broken data.

    Expected: `DataError` naming the SST, at once.
    Actual: `UnavailableError` after 7 attempts, `.object` unset.

    Root cause: store.py `_TRANSIENT` includes `obx.GenericError` unconditionally; a range
    error on an immutable object the manifest references is not transient."""
    env = Env("memory", "")
    store = Store(env.store, base_delay_s=0.0005)  # the same retries, without the waiting
    with Db.open("db", store, OPTS) as db:
        assert db.get(ROWS[10][0]) == ROWS[10][1]
        env.put(b"")
        got = {
            "get": _outcome(lambda: db.get(ROWS[2900][0]), env.sst),
            "scan": _outcome(lambda: list(db.scan()), env.sst),
        }
    assert set(got.values()) == {"named"}, got


def test_a_directory_where_a_local_sst_should_be_is_a_data_error() -> None:
    """BUG (minor): on a local folder, a directory in place of an SST file raises
    `UnavailableError` ("Is a directory (os error 21)") with no `.object`: the class says
    "retry later", though the condition is permanent; the fetch path names broken or missing
    SSTs with a `DataError`.

    Expected: `DataError` (or `MissingObjectError`) naming the SST.
    Actual: `UnavailableError`, `.object` unset.

    Root cause: fetch.rs `TableSlot::local_file` opens a directory fine on Linux
    (`File::open`), the `pread` then fails with EISDIR, and `io_error` maps every error but
    NotFound to `CoreError::Io`, which bindings/errors.rs raises as `UnavailableError`."""
    with tempfile.TemporaryDirectory() as d:
        env = Env("local", d)
        path = os.path.join(d, env.sst)
        os.unlink(path)
        os.mkdir(path)
        with DbReader.open("db", env.store, options=READER) as r:
            got = {
                "get": _outcome(lambda: r.get(ROWS[10][0]), env.sst),
                "scan": _outcome(lambda: list(r.scan()), env.sst),
            }
        os.rmdir(path)
    assert not any(v.startswith(UnavailableError.__name__) for v in got.values()), got
    assert set(got.values()) == {"named"}, got


def _malformed_block_with_a_valid_checksum(env: Env) -> tuple[int, int]:
    """Garbles the middle of the entries of the run's middle data block and recomputes the
    block's CRC: the checksum passes, the trailer is intact, decoding a row fails. Returns the
    block's first and last row numbers."""
    data = bytearray(env.data)
    f = _native.decode_sst(bytes(data))
    index = f.num_blocks // 2
    start, end, _ = f.blocks()[index]
    rows = f.block_rows(index)
    at = start + (end - start) // 3
    data[at : at + 6] = b"\xff" * 6  # a varint that overflows
    data[end - 4 : end] = struct.pack(">I", zlib.crc32(bytes(data[start : end - 4])))
    env.put(bytes(data))
    with pytest.raises(DataError):
        _native.decode_sst(bytes(data)).block_rows(index)
    return int(rows[0].key[1:]), int(rows[-1].key[1:])


@pytest.mark.parametrize("how", ["next_batch", "next"])
def test_a_scan_never_skips_a_block_it_could_not_decode(how: str) -> None:
    """Fixed bug: a data block whose checksum is right but whose rows do not decode is skipped by a
    scan: with `next_batch` no error is ever raised and the block's rows are silently missing;
    with `next` the `DataError` is raised once, and the next call goes on after the block.

    Expected: every call that would pass the broken block raises `DataError` naming the SST
    (the iterator never yields rows after it without them), so
    `rows returned == rows before the block` and errors keep coming.
    Actual (next_batch): 2940 of 3000 rows, no error at all; (next): one `DataError`, then the
    rows after the block.

    Root cause: scan.rs `TableSource::next_row` pops the block off `ready` before `decode`
    succeeds (`if let Some((b, block)) = self.ready.pop_front() { self.decode(..)?; .. }`), so
    a retry resumes after it; bindings/read.rs `PyCursor::take` drops a page-load error when it
    already took rows, relying on the retry to fail again ("the failure comes with the next
    call"), which it does not."""
    env = Env("memory", "")
    first, last = _malformed_block_with_a_valid_checksum(env)
    with Db.open("db", env.store, OPTS) as db:
        it = db.scan()
        got: list[tuple[bytes, bytes]] = []
        errors: list[DataError] = []
        while len(errors) < 3:  # a caller retrying a few times, as after UnavailableError
            try:
                step = it.next_batch(1000) if how == "next_batch" else [next(it)]
            except StopIteration:
                break
            except DataError as e:
                errors.append(e)
                continue
            if not step:
                break
            got += step
    keys = [k for k, _ in got]
    assert errors, "rows of a broken block went missing without any error"
    assert all(e.object == env.sst for e in errors)
    # Blocks are walked in place: the rows of the broken block before its broken row may go
    # out (they decode), never a row at or after it.
    assert keys == [k for k, _ in ROWS[: len(keys)]], "rows were skipped"
    assert first <= len(keys) < last, (
        f"{len(keys)} rows returned: rows after the broken row of block k{first:05d}..k{last:05d} "
        f"were yielded, {len(errors)} error(s)"
    )
