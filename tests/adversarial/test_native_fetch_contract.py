"""Hostile use of the native read handles (`_native.Tables`, `Tree`, `Scan`, `Fetch`) from
Python: a Fetch resumed twice, with the wrong number of parts, wrong buffers, wrong tails and
sizes, a stale Fetch, values of the wrong type, and one Scan used by two threads.

The contract (`rust/src/fetch.rs`, `bindings/read.rs`): a bad resume raises a
`slatedb_py.errors` class, never crashes, never makes a later read return wrong data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

from slatedb_py import _native
from slatedb_py.errors import DataError, InvalidArgumentError, InvalidTypeError, SlateDBError

Fetch = _native.Fetch


def _sst(lo: int, hi: int, tag: bytes) -> bytes:
    rows = [_native.Row(b"k%06d" % i, tag + b"%06d" % i + b"." * 40, 1) for i in range(lo, hi)]
    return _native.encode_sst(rows, block_size=512)


# Two SSTs of exactly the same layout (same key lengths, value lengths, block size): a tail of
# one parses, a block range of one is a block range of the other.
OBJECTS = {"a.sst": _sst(0, 3000, b"a"), "b.sst": _sst(3000, 6000, b"b")}
assert len(OBJECTS["a.sst"]) == len(OBJECTS["b.sst"]) > 64 * 1024


def serve(parts: list[tuple[str, int, list[tuple[int, int]]]]) -> list[tuple[list[bytes], int]]:
    out = []
    for path, tail, ranges in parts:
        data = OBJECTS[path]
        if tail:
            out.append(([data[-tail:]], len(data)))
        else:
            out.append(([data[s:e] for s, e in ranges], 0))
    return out


def drive(got: Any) -> Any:
    while type(got) is Fetch:
        got = got.resume(serve(got.parts))
    return got


def tree(tables: Any, *names: str) -> Any:
    refs = {
        "a.sst": ("a.sst", b"k000000", b"k002999", None),
        "b.sst": ("b.sst", b"k003000", b"k005999", None),
    }
    return _native.Tree(tables, [], [(b"", True, [refs[n] for n in names])])


def value(i: int) -> bytes:
    return (b"a" if i < 3000 else b"b") + b"%06d" % i + b"." * 40


def test_a_stale_scan_fetch_cannot_install_another_objects_metadata() -> None:
    """Fixed bug: resuming a stale Fetch of a Scan feeds its bytes to whatever the scan waits for
    now, so the tail of `a.sst` is installed as the metadata of `b.sst` on the handle's shared
    `Tables` slot, and every later read of `b.sst` through that handle is silently wrong.

    Steps: a scan over the run [a.sst, b.sst] asks to open a.sst (Fetch f1). The scan seeks into
    b.sst and asks to open b.sst (Fetch f2). f1 is then resumed with a.sst's (correct!) tail.

    Expected: f1.resume raises (InvalidArgumentError: stale / does not answer the scan's
    current request), and a later `get(k004000)` through the same Tables returns its value.
    Actual: f1.resume succeeds; b.sst's slot now holds a.sst's index and bloom filter, and
    `get(k004000)` returns None (a missing row, no error).

    Root cause: bindings/read.rs `Cont::Scan { scan, n }` does not bind the Fetch to the
    request it was made for: `PyScan::page(.., Some(replies))` -> `MergeIterator::feed` hands
    the replies to the source waiting *now*; `TableSource::feed` -> `Fetcher::accept_open`
    parses them as that source's tail and `TableSlot::set` makes it permanent (a OnceLock)."""
    tables = _native.Tables(1 << 20)
    scan = tree(tables, "a.sst", "b.sst").scan(None, None, 10, 0)
    f1 = scan.next_page(10)
    assert type(f1) is Fetch and f1.parts == [("a.sst", 64 * 1024, [])]
    scan.seek(b"k004000")
    f2 = scan.next_page(10)
    assert type(f2) is Fetch and f2.parts == [("b.sst", 64 * 1024, [])]
    stale_error: BaseException | None = None
    try:
        f1.resume(serve(f1.parts))
    except SlateDBError as e:
        stale_error = e
    # Whatever f1 did, the handle must still read b.sst right.
    got = drive(tree(tables, "b.sst").get(b"k004000", 10, 0))
    assert got == value(4000), f"get(k004000) returned {got!r} after a stale Fetch was resumed"
    assert stale_error is not None, "a stale Fetch was accepted"


def test_a_fetch_resumed_with_values_of_the_wrong_type_raises_a_slatedb_error() -> None:
    """BUG (minor): `Fetch.resume` with a str buffer raises a bare `TypeError`, and with a
    negative object size a bare `OverflowError`: neither is a `slatedb_py.errors` class
    (every other bad resume is an `InvalidArgumentError`).

    Expected: `InvalidTypeError` / `InvalidArgumentError`.
    Actual: `TypeError: a bytes-like object is required, not 'str'`,
    `OverflowError: can't convert negative int to unsigned`.

    Root cause: bindings/read.rs `PyFetch::resume(replies: Vec<(Vec<pyo3_bytes::PyBytes>, u64)>)`
    lets PyO3's argument extraction raise its own errors."""
    tables = _native.Tables(1 << 20)
    t = tree(tables, "a.sst")
    f = t.get(b"k000100", 10, 0)
    assert type(f) is Fetch
    with pytest.raises(InvalidTypeError):
        f.resume([(["not bytes"], len(OBJECTS["a.sst"]))])
    with pytest.raises(InvalidArgumentError):
        f.resume([([OBJECTS["a.sst"][-65536:]], -1)])
    assert drive(f) == value(100)  # a refused resume leaves the Fetch usable


def _fresh_get() -> tuple[Any, Any]:
    tables = _native.Tables(1 << 20)
    t = tree(tables, "a.sst")
    f = t.get(b"k000100", 10, 0)
    assert type(f) is Fetch and f.parts == [("a.sst", 64 * 1024, [])]
    return t, f


A = OBJECTS["a.sst"]
HOSTILE_OPEN_REPLIES: list[tuple[str, Callable[[], Any], type]] = [
    ("no parts", list, InvalidArgumentError),
    ("two parts", lambda: [([A[-65536:]], len(A))] * 2, InvalidArgumentError),
    ("no buffers", lambda: [([], len(A))], InvalidArgumentError),
    ("tail longer than the object", lambda: [([A], 100)], InvalidArgumentError),
    ("size too big", lambda: [([A[-65536:]], len(A) + 100)], DataError),
    ("size too small", lambda: [([A[-65536:]], len(A) - 100)], DataError),
    ("tail of another object at the same size", lambda: [([b"\0" * 65536], len(A))], DataError),
]


@pytest.mark.parametrize(
    ("name", "reply", "error"), HOSTILE_OPEN_REPLIES, ids=[h[0] for h in HOSTILE_OPEN_REPLIES]
)
def test_hostile_open_replies_raise_and_leave_the_handle_readable(
    name: str, reply: Callable[[], Any], error: type
) -> None:
    """Holds: each bad answer to an open raises its documented class; the handle then opens
    and reads the SST right (nothing half-installed)."""
    t, f = _fresh_get()
    with pytest.raises(error):
        drive(f.resume(reply()))
    with pytest.raises(InvalidArgumentError, match="resumed already"):
        f.resume(serve(f.parts))
    assert drive(t.get(b"k000100", 10, 0)) == value(100)


def test_short_tails_and_hostile_block_replies() -> None:
    """Holds: a tail shorter than asked (even empty) just costs another round; a block reply
    with the wrong number of buffers, the wrong length or other bytes raises, and the next read
    fetches the block again and answers right."""
    for short in (0, 5, 100):
        t, f = _fresh_get()
        assert drive(f.resume([([A[len(A) - short :]], len(A))])) == value(100)
    for bad in (
        lambda s, e: [([A[s:e], A[s:e]], 0)],
        lambda s, e: [([A[s : e - 1]], 0)],
        lambda s, e: [([A[s + 1000 : e + 1000]], 0)],
    ):
        t, f = _fresh_get()
        f = f.resume(serve(f.parts))
        assert type(f) is Fetch
        [(_, _, [(s, e)])] = f.parts
        with pytest.raises((InvalidArgumentError, DataError)):
            f.resume(bad(s, e))
        assert drive(t.get(b"k000100", 10, 0)) == value(100)


_DEADLOCK = textwrap.dedent(
    """
    import os, sys, tempfile, threading
    from slatedb_py import _native
    d = tempfile.mkdtemp()
    rows = [_native.Row(b"k%07d" % i, b"v" * 100, 1) for i in range(60_000)]
    with open(os.path.join(d, "a.sst"), "wb") as f:
        f.write(_native.encode_sst(rows, block_size=4096))
    tables = _native.Tables(0, d)  # a local folder: pages are read natively, GIL released
    tree = _native.Tree(tables, [], [(b"", False, [("a.sst", rows[0].key, rows[-1].key, None)])])
    scan = tree.scan(None, None, 10, 0)

    def pages():
        while scan.next_page(60_000):
            pass

    t = threading.Thread(target=pages, daemon=True)
    t.start()
    for i in range(3000):
        try:
            scan.seek(b"k%07d" % (59_000 + i % 900))
        except Exception:
            pass
    t.join()
    print("done")
    """
)


def test_one_native_scan_used_by_two_threads_does_not_deadlock() -> None:
    """Fixed bug: `Scan.next_page` in one thread and `Scan.seek` in another deadlock the process.

    `PyScan::page` takes the scan's mutex, then releases the GIL for the native read
    (`py.detach`); `PyScan::seek` takes the same mutex *with the GIL held*. When the seek comes
    while a page is being read, the seeking thread blocks on the mutex holding the GIL, and the
    paging thread, done reading, waits for the GIL holding the mutex: neither moves (0% CPU).
    (The same for two threads calling `next_page`, or `Fetch.resume` of a scan.)

    Expected: the script prints "done" (seeks serialize with pages, or fail cleanly).
    Actual: the child process hangs until killed.

    Root cause: bindings/read.rs `PyScan::seek` (`lock(&self.inner)` under the GIL) vs
    `PyScan::page` (mutex held across `py.detach`). Lock in the same order: release the GIL
    before locking in `seek` (and in `page`), or never detach while holding the mutex.
    `DbIterator` hides this only because its cursor's borrow check fails first
    (see test_iterator_threads.py)."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _DEADLOCK], capture_output=True, text=True, timeout=10, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            "next_page and seek on one native Scan from two threads deadlocked"
            " (killed after 10 s; its setup takes well under 1 s)"
        )
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]
