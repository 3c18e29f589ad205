"""SlateDB 0.17's SST format, from Python: decode, inspect, encode, merge.

This is both the engine's codec and an inspection tool::

    from slatedb_py.format import decode_sst
    sst = decode_sst(open("db/compacted/01K...sst", "rb").read())
    sst.info.first_key, sst.info.compression, sst.info.sst_type
    for row in sst.rows():          # Row(key, value, seq, kind, expire_ts, create_ts)
        ...
    sst.get(b"key"); sst.might_contain(b"key")

The byte work happens in the native core (``slatedb_py._native``); this module adds the
documented Python surface. ``Row`` and ``BloomFilter`` are native classes re-exported here
because decoding creates millions of rows and a Python class would cost several times more
per row.

Input buffers (``bytes``, ``obstore.Bytes``, ``memoryview``...) are used without copying:
do not mutate a buffer after passing it in.

``BloomFilter.might_contain_many(keys)`` and ``SstFile.might_contain_many(keys)`` take a list
of bytes, a numpy array or an Arrow binary array and answer with a numpy bool array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from slatedb_py import _native
from slatedb_py._native import BloomFilter, Row

if TYPE_CHECKING:  # numpy is imported when an array is made, not with this module
    import numpy as np
    import numpy.typing as npt

    from slatedb_py.batch import Many

SstKind = Literal["compacted", "wal"]
Compression = Literal["snappy", "zlib", "lz4", "zstd"] | None

__all__ = [
    "BloomFilter",
    "Row",
    "SstFile",
    "SstInfo",
    "decode_sst",
    "encode_sst",
    "merge_rows",
]


# An SST's footer metadata (`SsTableInfo`) plus its format version and layout, read-only.
# `first_key`/`last_key` are user keys for compacted SSTs; for WAL SSTs `first_key` is the
# first row's sequence number as 8 big-endian bytes (`first_seq`) and `last_key` is None.
# Lengths include each section's 4-byte checksum.
SstInfo = _native.SstInfo


class SstFile:
    """A decoded SST. Footer, index, filter and stats are checked when it is opened; data
    blocks are decoded (and their checksums verified) as rows are read."""

    __slots__ = ("_native", "info")

    def __init__(self, native: _native.SstFile) -> None:
        self._native = native
        self.info = native.info()

    @property
    def num_blocks(self) -> int:
        return int(self._native.num_blocks)

    @property
    def has_filter(self) -> bool:
        """True when the SST carries a bloom filter for whole keys."""
        return bool(self._native.has_filter)

    @property
    def stats(self) -> dict[str, Any] | None:
        """The stats block (compacted SSTs): counts of puts, deletes, merges, raw sizes."""
        return self._native.stats()

    def blocks(self) -> list[tuple[int, int, bytes]]:
        """``(start, end, index_key)`` of each data block; the byte range includes the CRC
        and leaves out any padding (``block_paddings``)."""
        return self._native.blocks()

    def block_paddings(self) -> list[int]:
        """Bytes of zero padding after each data block: SlateDB 0.18 pads blocks to a multiple
        of the block size when ``with_sst_block_alignment`` is on; all 0 otherwise."""
        return self._native.block_paddings()

    def rows(self) -> Iterator[Row]:
        """Every row in stored order: key order (seq descending within a key) for compacted
        SSTs, write order for WAL SSTs."""
        return self._native.rows()

    def block_rows(self, index: int) -> list[Row]:
        """The rows of data block ``index``."""
        return self._native.block_rows(index)

    def get(self, key: bytes) -> Row | None:
        """The newest version of ``key`` in this SST (tombstones included), or None."""
        return self._native.get(key)

    def might_contain(self, key: bytes) -> bool:
        """False only when the bloom filter proves ``key`` absent (always True without one)."""
        return bool(self._native.might_contain(key))

    def might_contain_many(self, keys: Many) -> npt.NDArray[np.bool_]:
        """``might_contain`` for many keys (a list of bytes, a numpy or an Arrow array, read
        in one crossing), as a numpy bool array."""
        return self._native.might_contain_many(keys)

    def __len__(self) -> int:
        return sum(1 for _ in self.rows())

    def __repr__(self) -> str:
        i = self.info
        return (
            f"SstFile(type={i.sst_type}, size={i.size}, blocks={self.num_blocks}, "
            f"compression={i.compression}, first_key={i.first_key!r}, last_key={i.last_key!r})"
        )


def decode_sst(data: Any, *, name: str | None = None) -> SstFile:
    """Decodes an SST held in memory.

    Args:
        data: the whole object, as ``bytes`` or any buffer (``obstore.Bytes``, memoryview).
        name: the object's name, used in error messages (e.g. ``"compacted/01K...sst"``).

    Raises:
        DataError: corrupt or truncated input, naming the offset and what was wrong; a
            0-byte object (a WAL fence) is not an SST.
        UnsupportedFormatError: an unknown format version, codec or SST type.
    """
    return SstFile(_native.decode_sst(data, name))


def encode_sst(
    rows: Iterable[Row | tuple[Any, ...]],
    *,
    kind: SstKind = "compacted",
    block_size: int | None = None,
    compression: Compression = None,
    bloom_bits_per_key: int = 10,
    min_filter_keys: int = 1000,
    block_alignment: bool = False,
) -> bytes:
    """Encodes rows as one SST in SlateDB 0.17's format (SST format version 2).

    Args:
        rows: ``Row`` objects or ``(key, value, seq[, kind[, expire_ts[, create_ts]]])``
            tuples. Compacted SSTs need key order with seq descending within a key; WAL SSTs
            need seq order.
        kind: ``"compacted"`` (L0 and sorted-run SSTs) or ``"wal"``.
        block_size: target data block size in bytes (1..65536); defaults to 4096 for
            compacted SSTs and 65536 for WAL SSTs, as SlateDB 0.17 writes them.
        compression: None, ``"snappy"``, ``"zlib"``, ``"lz4"`` or ``"zstd"``.
        bloom_bits_per_key: bloom filter density; 0 writes no filter.
        min_filter_keys: write a filter only when there are at least this many rows.
        block_alignment: pad each data block with zeros to a multiple of ``block_size``, as
            SlateDB 0.18's ``with_sst_block_alignment`` does (uncompressed compacted SSTs
            only; readers before 0.18 cannot read them).

    Raises:
        InvalidArgumentError: rows out of order, bad keys or values, bad options.
    """
    return _native.encode_sst(
        rows, kind, block_size, compression, bloom_bits_per_key, min_filter_keys, block_alignment
    )


def merge_rows(
    sources: Iterable[SstFile | Iterable[Row | tuple[Any, ...]]],
    *,
    snapshot_seq: int | None = None,
    now: int | None = None,
    all_versions: bool = False,
) -> _native.MergeIterator:
    """Merges sorted sources (newest first) into one stream of rows.

    Each source is an ``SstFile`` (compacted) or an iterable of rows sorted by key, then seq
    descending. By default the result is what a read sees: for each key the newest version
    with ``seq <= snapshot_seq``, left out when it is a tombstone or expired at ``now`` (Unix
    ms). With ``all_versions=True`` every version is kept (what compaction needs).

    Returns a native iterator of ``Row``; ``next_batch(n)`` returns up to n rows at once.
    """
    native_sources = [s._native if isinstance(s, SstFile) else s for s in sources]
    return _native.merge_rows(
        native_sources, snapshot_seq=snapshot_seq, now=now, all_versions=all_versions
    )
