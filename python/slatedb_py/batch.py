"""Write batches and the validation of keys and values."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Protocol, TypeAlias

from slatedb_py import _native
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

MAX_KEY = 65_535
MAX_VALUE = 2**32 - 1


def _length(obj: Any, what: str) -> int:
    if isinstance(obj, bytes):
        return len(obj)
    if isinstance(obj, (bytearray, memoryview)):
        return memoryview(obj).nbytes
    raise InvalidTypeError(f"{what} must be bytes, not {type(obj).__name__}")


def check_key(key: Any) -> bytes:
    n = _length(key, "key")
    if n == 0:
        raise InvalidArgumentError("key must not be empty")
    if n > MAX_KEY:
        raise InvalidArgumentError(f"key of {n} bytes is longer than the limit of {MAX_KEY} bytes")
    return key if isinstance(key, bytes) else bytes(key)


def check_value(key: bytes, value: Any) -> bytes:
    # The size is checked before any copy: a too-large value is refused without allocating.
    n = _length(value, "value")
    if n > MAX_VALUE:
        raise InvalidArgumentError(
            f"value of {n} bytes for key {key[:64]!r} is longer than the limit of {MAX_VALUE} bytes"
        )
    return value if isinstance(value, bytes) else bytes(value)


MIN_TTL = timedelta(milliseconds=1)


def ttl_ms(ttl: Any, name: str = "ttl") -> int | None:
    """The one TTL rule, for `Db.put(ttl=)`, `DbOptions.default_ttl` and (mirrored exactly in
    rust/src/bindings/batch.rs, same messages) `WriteBatch.put(ttl=)`:

    - None: no TTL of its own (a put then takes `default_ttl`, if any);
    - anything but a `datetime.timedelta` raises `InvalidTypeError`;
    - TTLs are stored in whole milliseconds: finer parts are truncated (1.9 ms -> 1 ms), and a
      TTL under 1 ms (zero, negative, or 999 microseconds) raises `InvalidArgumentError`.
      The check runs on the truncated value, so nothing accepted is stored as 0 ms.

    Returns the TTL in milliseconds. `name` names the argument in errors.
    """
    if ttl is None:
        return None
    if not isinstance(ttl, timedelta):
        raise InvalidTypeError(
            f"{name} must be a datetime.timedelta, not {type(ttl).__name__} {ttl!r:.60}"
        )
    ms = ttl // timedelta(milliseconds=1)
    if ms < 1:
        raise InvalidArgumentError(
            f"{name} must be at least 1 ms, not {ttl}: TTLs are stored in whole milliseconds "
            "(finer parts are truncated)"
        )
    return ms


# Native (rust/src/bindings/batch.rs): `put(key, value, *, ttl=None)`, `delete(key)` and
# `merge(key, operand, *, ttl=None)` validate like `check_key`/`check_value` here and return
# the batch; `put_many(keys, values, *, ttl=None)` and `delete_many(keys)` do the same for
# iterables of them in one call (all or nothing; an error names the index). `Db.write`
# applies a batch atomically with one sequence number: a later put or delete of a key
# replaces the earlier ops on it, and merges after them fold onto them.
WriteBatch = _native.WriteBatch


class ArrowArray(Protocol):
    """An Arrow array through the PyCapsule interface (pyarrow, polars, nanoarrow, arro3)."""

    def __arrow_c_array__(self, requested_schema: Any = None) -> tuple[Any, Any]: ...


class ArrowStream(Protocol):
    """A chunked Arrow array or stream through the PyCapsule interface."""

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any: ...


# The keys or values of a many-key call (`put_many`, `delete_many`, `get_many`): a list or
# other iterable of bytes, a numpy array (dtype S, V or object, or 2-D uint8: one row per
# item) or an Arrow binary array (`_native.Bulk` reads them, rust/src/bindings/columns.rs).
Many: TypeAlias = Iterable[bytes] | ArrowArray | ArrowStream

# Native: `Bulk(keys)` or `Bulk(keys, values)` reads a many-key call's arguments once and
# checks every item (pair by pair, in index order: the error is a `BulkItemError` naming the
# first bad index and its key).
Bulk = _native.Bulk


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with `prefix` (None: no bound)."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return None
