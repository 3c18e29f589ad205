"""The read surface `Db` and `DbReader` share: get, get_many and scans over a `ReadView`.

An owner says what to read (`_read_state`: its current view and the sequence number to read
at, after checking it is open), how to move on when a read finds an object of an old tree
collected (`_newer`, see `read_path.read_again`), and whether its iterators may go on
(`_is_open`); everything else is here, once.
"""

from __future__ import annotations

import weakref

from slatedb_py.batch import MAX_KEY, Bulk, Many, check_key, prefix_end
from slatedb_py.clock import Clock
from slatedb_py.config import _flag
from slatedb_py.errors import ClosedError, MissingObjectError
from slatedb_py.fetch import Fetch
from slatedb_py.metrics import INDEX
from slatedb_py.read_path import DbIterator, ReadView, _Pages, read_again

_READS, _READ_BYTES, _SCANS = INDEX["reads_total"], INDEX["reads_bytes_total"], INDEX["scans_total"]


class Reads:
    _clock: Clock
    _last_seq: int
    _iterators: weakref.WeakSet[DbIterator]

    def _read_state(self) -> tuple[ReadView, int]:
        """The view to read and the sequence number to read at; raises if closed."""
        raise NotImplementedError

    def _scan_state(self) -> tuple[ReadView, int]:
        """What a scan reads: as `_read_state`, but every row at or below the sequence number
        must be in the view, since a scan that moves to a newer view mid-way goes on at that
        same number (an owner whose two reads can straddle a memtable swap locks here)."""
        return self._read_state()

    def _newer(self, view: ReadView) -> ReadView | None:
        raise NotImplementedError

    def _hold(self, pages: _Pages, seq: int) -> None:
        """Keeps the versions a scan at `seq` reads until it ends (`_Pages.done`), where the
        owner can (a writer's flushes keep versions for it); by default nothing."""

    def _is_open(self) -> bool:
        raise NotImplementedError

    def _check_usable(self) -> None:
        """Raises why this owner's iterators cannot go on; an owner that can fail (a fenced
        writer) raises that failure instead, as its other reads do."""
        if not self._is_open():
            raise ClosedError("the database this iterator reads is closed")

    def _close_iterators(self) -> None:
        """Ends every iterator still open on this owner (it is closing)."""
        for it in list(self._iterators):
            it.close()

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, or None when it is absent, deleted or expired."""
        k = key if type(key) is bytes and 0 < len(key) <= MAX_KEY else check_key(key)
        view, seq = self._read_state()
        now = self._clock.now_ms()
        try:
            got = view.tree.get(k, seq, now)  # the hot path: one native call
            if isinstance(got, Fetch):
                got = view.tables.drive(got)
        except MissingObjectError as err:
            got = read_again(view, lambda v: v.get(k, self._last_seq, now), err, self._newer)
        view.tables.count(_READS, 1, _READ_BYTES, 0 if got is None else len(got))
        return got

    def get_many(self, keys: Many) -> list[bytes | None]:
        """The values of `keys` in order (None where absent): a list of bytes, a numpy or an
        Arrow array, as `put_many` takes them, read in one crossing (`BulkItemError` names
        the first bad key); one native call, with the blocks of every key fetched together."""
        ks = Bulk(keys)
        view, seq = self._read_state()
        now = self._clock.now_ms()
        try:
            got = view.get_many(ks, seq, now)
        except MissingObjectError as err:
            got = read_again(view, lambda v: v.get_many(ks, self._last_seq, now), err, self._newer)
        view.tables.count(_READS, len(ks), _READ_BYTES, sum(len(v) for v in got if v is not None))
        return got

    def scan(
        self, start: bytes | None = None, end: bytes | None = None, *, reverse: bool = False
    ) -> DbIterator:
        """A lazy iterator of (key, value) pairs with start <= key < end, in key order
        (descending with `reverse=True`); either bound may be None. It reads as of this call."""
        s = None if start is None else check_key(start)
        e = None if end is None else check_key(end)
        _flag("reverse", reverse)
        view, seq = self._scan_state()
        now = self._clock.now_ms()
        pages = _Pages(view, s, e, seq, now, reverse, self._newer, self._check_usable)
        view.tables.metrics.add(_SCANS, 1)
        self._hold(pages, seq)
        it = DbIterator(pages)
        self._iterators.add(it)
        return it

    def scan_prefix(self, prefix: bytes, *, reverse: bool = False) -> DbIterator:
        """The keys that start with `prefix`, as `scan` reads them."""
        p = check_key(prefix)
        return self.scan(p, prefix_end(p), reverse=reverse)
