"""The manifest's sequence tracker: SlateDB's map from sequence numbers to the wall-clock
seconds they were written at (RFC-0012), kept as 0.17.0 keeps it. The codec, insertion rules
and lookups are native (rust/src/seq_tracker.rs); this module is their door.

How 0.17.0 fills it: every committed write batch offers (its seq, the clock's Unix second) to
the active memtable's own tracker, which keeps at most one point a minute; when the memtable
is flushed to L0, its points go through the manifest tracker's `insert` (again at most one a
minute, counted from the last stored point, and 8192 points at most: past that every other
one is dropped). `Writes._write` and `Flusher._write_l0` do the same here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from slatedb_py import _native
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

SequenceTracker = _native.SequenceTracker

# A memtable (and the manifest) records a point at most once per this many seconds.
INTERVAL_SECS = 60
# Points the manifest keeps before halving.
CAPACITY = 8192


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def decode(blob: bytes | None) -> _native.SequenceTracker:
    """The tracker a manifest carries; a manifest without one (written before trackers
    existed) has an empty one, as 0.17.0 reads it."""
    return SequenceTracker() if blob is None else SequenceTracker.decode(blob)


def extended(blob: bytes | None, points: Sequence[tuple[int, int]]) -> bytes:
    """`blob` with a flushed memtable's `points` (seq, Unix second, a minute or more apart)
    inserted."""
    # Through a tracker of the memtable's own first: in 0.17.0 it also halves past 8192
    # points (a memtable written to for more than five days).
    own = SequenceTracker()
    own.extend(points)
    tracker = decode(blob)
    tracker.extend(own.points)
    return tracker.encode()


def unix_seconds(when: datetime) -> int:
    """`when` in whole Unix seconds, rounded down (as chrono's `timestamp()`)."""
    if not isinstance(when, datetime):
        raise InvalidTypeError(f"when must be a datetime, not {type(when).__name__}")
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidArgumentError(
            f"when must be timezone-aware (a naive datetime has no defined instant): {when!r}"
        )
    d = when - _EPOCH  # exact: days, seconds in [0, 86400), microseconds dropped
    return d.days * 86_400 + d.seconds


def check_seq(seq: int) -> None:
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InvalidTypeError(f"seq must be an int, not {type(seq).__name__}")
    if not 0 <= seq < 1 << 64:
        raise InvalidArgumentError(f"seq must be a u64 (0 <= seq < 2**64), not {seq}")


def time_for_sequence(blob: bytes | None, seq: int, round_up: bool) -> datetime | None:
    """The lookup of `admin.time_for_sequence` on one tracker blob."""
    check_seq(seq)
    ts = decode(blob).find_ts(seq, round_up)
    if ts is None:
        return None
    try:
        return _EPOCH + timedelta(seconds=ts)
    except OverflowError:  # a stored second outside years 1..9999, which no writer records
        return None
