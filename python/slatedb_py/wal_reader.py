"""A change stream: every write of a database, in sequence order, read from its WAL.

    from slatedb_py import WalReader

    with WalReader("my/db", store) as wal:
        for change in wal.changes(since_seq=last_seen):
            change.seq, change.key, change.value, change.kind, change.create_ts, change.expire_ts

Where the rows come from: each write batch gets one sequence number and reaches the WAL as
rows in one WAL object (`wal/<id>.sst`, ids consecutive, rows in seq order). The stream
reads the WAL objects in id order, one object in memory at a time, and yields each row with
a seq above the last one yielded: a batch's rows share its seq and come out together, in
the order the batch wrote them. Fences (objects of at most a footer's bytes) hold no rows.

What is gone when: the garbage collector deletes a WAL object once its rows are in L0 SSTs
(at or below the manifest's `replay_after_wal_id`) and it is older than the collector's
`wal_min_age`. A stream asked for writes that are no longer in any WAL object raises
`HistoryGoneError` naming the sequence numbers it cannot give; it never skips them
silently. A missing WAL id is the evidence: when the next object with rows starts above the
next seq wanted, or (no object with rows after it) the manifest's `last_l0_seq`, read after
the gap was seen, is above it, those writes are gone. Ids missing in front of a database's
first writes (fences collected with `delete_wal_fences`) cost nothing: the next write is
still the next seq. A database whose first WAL id is not 1 (a clone) has no WAL history of
its writes before that id: asking for them raises too.

Bulk ingests (`slatedb_py.ingest`: a large `put_many` / `delete_many` of ascending keys with
`atomic=False`) go straight to L0 SSTs and are in no WAL object: the stream skips their
sequence number, or, when one is the newest write, raises `HistoryGoneError` for it (the
manifest's `last_l0_seq` says it was written).

Following (`follow=True`): at the end of the WAL the stream LISTs the folder from the last
id it has seen (`after=`, one short listing, nothing read twice) every `poll_interval` until
a new object appears. It ends when the iterator is closed (`it.close()`, or leaving a
`with contextlib.closing(it)` block, from the consuming thread) or when `WalReader.close()`
is called, from any thread; that also wakes a stream sleeping between polls.

Reads the WAL in the database's own store (a database with a separate WAL store is not
supported here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from slatedb_py.clock import Clock, SystemClock
from slatedb_py.config import _poll_interval
from slatedb_py.errors import (
    HistoryGoneError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingObjectError,
)
from slatedb_py.format import decode_sst
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store
from slatedb_py.wal import FENCE_MAX_BYTES, list_wal_objects

ChangeKind = Literal["value", "tombstone", "merge"]

__all__ = ["Change", "ChangeKind", "WalReader"]


@dataclass(frozen=True, slots=True)
class Change:
    """One row a write put in the WAL.

    Attributes:
        seq: the write batch's sequence number (every row of a batch has the same one).
        key: the key written.
        value: the value put or the merge operand; None for a delete.
        kind: "value" (a put), "tombstone" (a delete) or "merge" (a merge operand).
        create_ts: the write's time (Unix ms), as the writer stamped the row; None if absent.
        expire_ts: when a put with a TTL expires (Unix ms); None without one.
    """

    seq: int
    key: bytes
    value: bytes | None
    kind: ChangeKind
    create_ts: int | None
    expire_ts: int | None


# A stream builds one Change per row: filling the slots through their descriptors skips the
# frozen dataclass's checked `__init__` (about 1.5 us a row, most of a stream's cost).
_new = object.__new__
_SET = tuple(
    Change.__dict__[f].__set__ for f in ("seq", "key", "value", "kind", "create_ts", "expire_ts")
)


def _change(
    seq: int, key: bytes, value: bytes | None, kind: str, create: int | None, expire: int | None
) -> Change:
    c: Change = _new(Change)
    s_seq, s_key, s_value, s_kind, s_create, s_expire = _SET
    s_seq(c, seq)
    s_key(c, key)
    s_value(c, value)
    s_kind(c, kind)
    s_create(c, create)
    s_expire(c, expire)
    return c


class WalReader:
    """Reads a database's writes from its WAL, as a change stream (see the module docs).

    Args:
        path: the database's path in the store.
        store: an obstore store or a URL (anything `Db.open` takes).
        poll_interval: how long a following stream sleeps after a LIST that found nothing
            new (at least 5 ms).
        clock: the clock the manifest reads are stamped with (tests inject one).

    Nothing is written to the store: a WAL reader pins nothing, so a stream that falls behind
    the collector raises `HistoryGoneError` rather than holding the WAL back.
    """

    def __init__(
        self,
        path: str,
        store: Any,
        *,
        poll_interval: timedelta = timedelta(seconds=1),
        clock: Clock | None = None,
    ) -> None:
        self._paths = DbPaths.of(path)
        _poll_interval("poll_interval", poll_interval, allow_none=False)
        self.poll_interval = poll_interval
        self._store = Store.resolve(store)
        self._manifests = ManifestStore(self._store, self._paths, clock or SystemClock())
        self._stop = threading.Event()

    def changes(self, since_seq: int = 0, *, follow: bool = False) -> Iterator[Change]:
        """Every write with seq > `since_seq`, in sequence order (see the module docs).

        Without `follow` the stream ends at the end of the WAL as it is now; with it, it
        waits for new writes until closed. The manifest is read when this is called, so a
        missing database raises `DatabaseNotFoundError` here.

        Raises:
            HistoryGoneError: (while iterating) writes after `since_seq` are no longer in the
                WAL; its `first_missing` / `last_missing` name them.
            DataError: a WAL object is corrupt (the error names it).
        """
        if type(since_seq) is not int:
            raise InvalidTypeError(
                f"since_seq must be an int, not {type(since_seq).__name__} {since_seq!r:.60}"
            )
        if since_seq < 0:
            raise InvalidArgumentError(f"since_seq must be >= 0, not {since_seq}")
        if not isinstance(follow, bool):
            raise InvalidTypeError(f"follow must be a bool, not {type(follow).__name__}")
        # Read before the first LIST: every row at or below it was in a WAL object by then.
        l0_seq = self._l0_seq()
        return self._stream(since_seq, follow, l0_seq)

    def _l0_seq(self) -> int:
        return self._manifests.require_latest()[1].last_l0_seq

    def _stream(self, since_seq: int, follow: bool, checked: int | None) -> Iterator[Change]:
        paths, store, change = self._paths, self._store, _change
        last = since_seq  # every write at or below it was yielded or not asked for
        prev_id = 0  # the last WAL id listed
        # WAL ids missing (never listed, or gone between LIST and GET) since the last object
        # with rows: their rows, if any, were never read. `fresh` says the gap was seen after
        # `checked` (the last manifest's `last_l0_seq`) was read, so that manifest cannot
        # vouch for it.
        gap = fresh = False
        read_any = False  # an object with rows was read (for the message)
        vanished: str | None = None  # an object with rows, listed, then gone before its GET
        while not self._stop.is_set():
            listing = list_wal_objects(store, paths, prev_id)
            for wid, size in listing:
                if wid != prev_id + 1:
                    gap = fresh = True
                prev_id = wid
                if size <= FENCE_MAX_BYTES:
                    continue
                key = paths.wal(wid)
                data = store.get(key)
                if data is None:  # the collector took it after the LIST
                    gap = fresh = True
                    vanished = vanished or key
                    continue
                sst = decode_sst(data, name=key)
                first = sst.info.first_seq
                if first is None:
                    continue
                if gap and first > last + 1:
                    which = "next" if read_any else "oldest"
                    raise _gone(
                        last + 1,
                        first - 1,
                        "the collector removed those WAL objects; "
                        f"the {which} WAL object left starts at seq {first}",
                    )
                gap = fresh = False
                vanished = None
                read_any = True
                # Rows at or below what was already yielded are skipped, not yielded twice:
                # ids are created once and a fenced writer cannot add an object, so this only
                # guards against a WAL written by something that broke those rules.
                floor = last
                for row in sst.rows():
                    seq = row.seq
                    if seq > floor:
                        yield change(
                            seq, row.key, row.value, row.kind, row.create_ts, row.expire_ts
                        )
                        if seq > last:
                            last = seq
                if self._stop.is_set():
                    return
            if checked is not None and checked > last:
                raise _gone(
                    last + 1,
                    checked,
                    "no WAL object holds them (the collector removes WAL objects once their "
                    f"rows are in L0 SSTs, which hold the writes up to seq {checked}; a bulk "
                    "ingest writes none)",
                )
            if gap and fresh:
                # Ids went missing after the manifest was read: read it again, then LIST
                # again (an object made in between would otherwise look like a loss).
                checked, fresh = self._l0_seq(), False
                continue
            if gap and vanished is not None:
                # Rows were there, and the manifest read after they vanished does not hold
                # them in L0: not the collector's doing. The WAL was truncated.
                raise MissingObjectError(
                    f"WAL truncated: {vanished!r} vanished before it was read, and its rows "
                    f"are not in L0 (which holds the writes up to seq {checked})",
                    object=vanished,
                )
            # The manifest read before this LIST vouches for a gap seen before it.
            gap, checked = False, None
            if not follow:
                return
            if not listing and self._stop.wait(self.poll_interval.total_seconds()):
                return

    def close(self) -> None:
        """Ends every stream of this reader (from any thread): a following stream stops at
        its next poll, or at once if it is sleeping between polls."""
        self._stop.set()

    def __enter__(self) -> WalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _gone(first: int, last: int, why: str) -> HistoryGoneError:
    span = f"seq {first}" if first == last else f"seq {first}..{last}"
    verb = "is" if first == last else "are"
    return HistoryGoneError(
        f"{span} {verb} gone: {why}",
        first_missing=first,
        last_missing=last,
    )
