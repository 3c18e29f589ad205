"""The exception hierarchy of slatedb_py.

Every error the package raises is a :class:`SlateDBError`. Subclasses are grouped by what the
caller can do about them (SlateDB's ``ErrorKind``), and also inherit the builtin exception a
Python user would expect (``ValueError``, ``TypeError``, ``LookupError``).

This module imports nothing from the package, so every other module (and the native core)
can raise from it.
"""

from __future__ import annotations


class SlateDBError(Exception):
    """Base class of every slatedb_py error."""


class InvalidArgumentError(SlateDBError, ValueError):
    """An argument the call cannot accept (empty or oversized key, bad option value)."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument of the wrong type (for example a ``str`` key where ``bytes`` is needed)."""


class BulkItemError(InvalidArgumentError):
    """One item of a many-key call (``put_many``, ``delete_many``, ``get_many``,
    ``WriteBatch.put_many``...) that the call cannot accept: an empty, oversized or null key,
    an oversized or null value. The message names it as ``keys[i]`` or ``values[i]``; nothing
    of the call was applied.

    Attributes:
        argument: ``"keys"`` or ``"values"``.
        index: the position of the first bad item.
        key: the key at that position (the pair's key for a bad value), or None when the key
            itself could not be read (a null, or an object that is not bytes).
    """

    def __init__(
        self, message: str, *, argument: str = "keys", index: int = 0, key: bytes | None = None
    ):
        super().__init__(message)
        self.argument = argument
        self.index = index
        self.key = key


class BulkItemTypeError(BulkItemError, InvalidTypeError):
    """An item of a many-key call of the wrong type (a ``str`` or an ``int`` in a list of
    keys); also a ``TypeError``."""


class DataError(SlateDBError):
    """Stored bytes that do not decode: corrupt, truncated, or failing a checksum.

    Attributes:
        object: the object (file) being read, when known.
        offset: the byte offset in that object where the broken structure starts, when known.
    """

    def __init__(self, message: str, *, object: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.object = object
        self.offset = offset


class MissingObjectError(DataError):
    """An object the database references (an SST, a WAL object) is not in the store. A reader
    whose view is older than the latest manifest may see this after the collector reclaimed
    what the newer tree no longer needs; the engine then moves to the newer tree by itself."""


class UnsupportedFormatError(DataError):
    """A format version or enum value this build does not know (written by a newer SlateDB)."""


class UnavailableError(SlateDBError):
    """The object store failed in a way that may pass: retrying later can succeed."""


class ConflictError(SlateDBError):
    """Another process changed the database so that this operation no longer applies (for
    example a restore replaced the tree a compaction read). Nothing was written; running the
    operation again plans it anew."""


class BackupInProgressError(ConflictError):
    """Another backup operation (create, delete or purge) holds the backup location's lease
    (`slatedb_py.backup_lease`): they run one at a time. ``holder`` names it (operation,
    host, pid). Nothing was changed; run the operation again once the other has ended. A
    lease left by a killed process of the same host is taken over at once, any other once
    it expires (60 s after its holder last made progress)."""

    def __init__(self, message: str, *, holder: str | None = None):
        super().__init__(message)
        self.holder = holder


class SnapshotTooOldError(SlateDBError):
    """An open iterator's snapshot needs versions the database no longer keeps: the tree it
    read was compacted (dropping versions older than the newest writes) and collected while
    it was open. Nothing wrong was returned; open the iterator again to read a newer
    snapshot."""


class ClosedError(SlateDBError):
    """The database is closed; ``reason`` says why ("closed", "fenced" or "failed")."""

    def __init__(self, message: str, *, reason: str = "closed"):
        super().__init__(message)
        self.reason = reason


class FencedError(ClosedError):
    """A newer writer (or compactor) took over this database; this handle may not write."""

    def __init__(self, message: str):
        super().__init__(message, reason="fenced")


class NotFoundError(SlateDBError, LookupError):
    """Something the call names does not exist."""


class CheckpointNotFoundError(NotFoundError):
    """No checkpoint with this id exists (or it expired)."""

    def __init__(self, message: str, *, checkpoint_id: object = None):
        super().__init__(message)
        self.checkpoint_id = checkpoint_id


class DatabaseNotFoundError(NotFoundError):
    """No database exists at this path."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class DatabaseDeletingError(SlateDBError):
    """The database is being deleted: the `.deleting` marker that SlateDB's `Admin::delete_db`
    writes before it removes anything (and removes last) is there, so the delete stopped part
    way and the objects left are partial. Opening it is refused; run the delete again.

    Attributes:
        path: the database's path.
        marker: the marker object's path (`<path>/.deleting`).
    """

    def __init__(self, message: str, *, path: str, marker: str):
        super().__init__(message)
        self.path = path
        self.marker = marker


class BackupNotFoundError(NotFoundError):
    """No completed backup with this id exists in the backup location."""

    def __init__(self, message: str, *, backup_id: object = None):
        super().__init__(message)
        self.backup_id = backup_id


class HistoryGoneError(NotFoundError):
    """A change stream (`WalReader.changes`) cannot give every write after the sequence
    number it was asked to start from: the writes with seq `first_missing` .. `last_missing`
    are no longer in any WAL object (the garbage collector removes WAL objects once their rows
    are in L0 SSTs). Nothing was skipped silently; start again from `last_missing` (and read
    the current state with a `DbReader` or a checkpoint) to go on.

    Attributes:
        first_missing: the first sequence number that is gone.
        last_missing: the last sequence number that is gone.
    """

    def __init__(self, message: str, *, first_missing: int, last_missing: int):
        super().__init__(message)
        self.first_missing = first_missing
        self.last_missing = last_missing


class OutsideRetentionError(InvalidArgumentError):
    """A point in time (`DbReader.open(as_of=)`, `admin.create_clone(as_of=)`,
    `admin.restore_to_time`) the database cannot show: before the oldest point its retained
    history reaches (`DbOptions.history_retention`; what the collector kept), in the future,
    or a naive datetime. Nothing was written.

    Attributes:
        when: the point asked for.
        oldest: the oldest point that can be shown, when known (None: none is).
        newest: the newest (now, on the caller's clock).
    """

    def __init__(self, message: str, *, when: object, oldest: object, newest: object):
        super().__init__(message)
        self.when = when
        self.oldest = oldest
        self.newest = newest


class MergeOperatorError(SlateDBError):
    """A merge operand could not be folded: no merge operator is configured, the operator
    raised (its exception is the `__cause__`), returned something other than bytes, or a
    built-in met bytes it cannot take. The message names the key; nothing was written."""


class TransactionError(SlateDBError):
    """A transaction could not go on: it conflicted (`TransactionConflictError`), or it was
    used after its commit or rollback."""


class TransactionConflictError(TransactionError):
    """A transaction's commit found that a key it wrote (or, under SERIALIZABLE_SNAPSHOT, a
    key or range it read) was written by someone else after it began; nothing it wrote was
    applied. Running the transaction again (a new `begin`) reads the newer state.

    Attributes:
        key: one of the conflicting keys.
    """

    def __init__(self, message: str, *, key: bytes | None = None):
        super().__init__(message)
        self.key = key


class InternalError(SlateDBError):
    """A bug in slatedb_py; please report it with the message."""


__all__ = [
    "BackupInProgressError",
    "BackupNotFoundError",
    "CheckpointNotFoundError",
    "ClosedError",
    "ConflictError",
    "DataError",
    "DatabaseNotFoundError",
    "FencedError",
    "HistoryGoneError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MergeOperatorError",
    "MissingObjectError",
    "NotFoundError",
    "OutsideRetentionError",
    "SlateDBError",
    "TransactionConflictError",
    "TransactionError",
    "UnavailableError",
    "UnsupportedFormatError",
]
