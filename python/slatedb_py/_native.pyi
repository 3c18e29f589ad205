"""Type stub of the native extension (rust/src/bindings). Keep in step with the Rust code;
after `maturin develop`, `python -m mypy.stubtest slatedb_py._native` checks it.

Buffers handed out without a copy (WAL and L0 SSTs, compaction outputs) are a native
bytes-like class that is not exported: they are typed as `Buffer`. Arguments typed `Buffer`
take any buffer-protocol object (bytes, memoryview, obstore.Bytes...).
"""

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, Self, TypeAlias, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer, disjoint_base

__all__ = [
    "DEBUG_BUILD",
    "BloomFilter",
    "BuiltinOperator",
    "Bulk",
    "CompactionJob",
    "Counters",
    "Cursor",
    "DurableWatermark",
    "Fetch",
    "Memtable",
    "MergeIterator",
    "MergeOperator",
    "RecordBatch",
    "Row",
    "RowIterator",
    "RowList",
    "Scan",
    "SequenceTracker",
    "SstFile",
    "SstInfo",
    "SstPieces",
    "Tables",
    "Tree",
    "WalRows",
    "WriteBatch",
    "__version__",
    "arrow_stream",
    "decode_sst",
    "encode_sst",
    "merge_rows",
    "record_batch",
]

__version__: str
DEBUG_BUILD: bool

_RowKind: TypeAlias = Literal["value", "tombstone", "merge"]
# The keys or values of a many-key call, read by `Bulk` (rust/src/bindings/columns.rs): a
# list or iterable of bytes-like objects, a numpy array (dtype S, V or object, or 2-D uint8)
# or an Arrow binary array or stream (`__arrow_c_array__`, `__arrow_c_stream__`).
_Many: TypeAlias = Any
_Compression: TypeAlias = Literal["snappy", "zlib", "lz4", "zstd"] | None

@final
class Row:
    def __new__(
        cls,
        key: Buffer,
        value: Buffer | None,
        seq: int,
        kind: _RowKind = "value",
        expire_ts: int | None = None,
        create_ts: int | None = None,
    ) -> Self: ...
    @property
    def key(self) -> bytes: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> _RowKind: ...
    @property
    def expire_ts(self) -> int | None: ...
    @property
    def create_ts(self) -> int | None: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

# A row as encode_sst and merge_rows take it: a Row, or
# (key, value, seq[, kind[, expire_ts[, create_ts]]]).
_RowLike: TypeAlias = (
    Row
    | tuple[bytes, bytes | None, int]
    | tuple[bytes, bytes | None, int, _RowKind]
    | tuple[bytes, bytes | None, int, _RowKind, int | None]
    | tuple[bytes, bytes | None, int, _RowKind, int | None, int | None]
)

@final
class RowList:
    """Rows held natively (a memtable range), usable as a `merge_rows` source."""

    def __len__(self) -> int: ...
    def to_list(self) -> list[Row]: ...

@final
class BloomFilter:
    @staticmethod
    def build(keys: _Many, bits_per_key: int = 10) -> BloomFilter: ...
    @staticmethod
    def from_bytes(data: Buffer) -> BloomFilter: ...
    def to_bytes(self) -> bytes: ...
    @property
    def num_probes(self) -> int: ...
    @property
    def num_bits(self) -> int: ...
    def might_contain(self, key: bytes) -> bool: ...
    def might_contain_many(self, keys: _Many) -> npt.NDArray[np.bool_]: ...
    def count_matches(self, keys: _Many) -> int: ...

@final
class SequenceTracker:
    """SlateDB 0.17.0's manifest sequence tracker (rust/src/seq_tracker.rs)."""

    # Defaults: 8192 points, 60 s (the constants of rust/src/seq_tracker.rs).
    def __new__(cls, capacity: int = ..., interval_secs: int = ...) -> Self: ...
    @staticmethod
    def decode(data: bytes) -> SequenceTracker: ...
    def encode(self) -> bytes: ...
    def insert(self, seq: int, ts_secs: int) -> bool: ...
    def extend(self, points: Sequence[tuple[int, int]]) -> None: ...
    def find_seq(self, ts_secs: int, round_up: bool = False) -> int | None: ...
    def find_ts(self, seq: int, round_up: bool = False) -> int | None: ...
    @property
    def points(self) -> list[tuple[int, int]]: ...
    @property
    def last_recorded(self) -> int | None: ...
    def copy(self) -> SequenceTracker: ...
    def __len__(self) -> int: ...

@final
class RowIterator:
    def __iter__(self) -> Self: ...
    def __next__(self) -> Row: ...

@final
class SstInfo:
    """An SST's footer metadata (SsTableInfo), format version and layout."""

    @property
    def first_key(self) -> bytes | None: ...
    @property
    def last_key(self) -> bytes | None: ...
    @property
    def sst_type(self) -> Literal["compacted", "wal"]: ...
    @property
    def compression(self) -> _Compression: ...
    @property
    def format_version(self) -> int: ...
    @property
    def index_offset(self) -> int: ...
    @property
    def index_len(self) -> int: ...
    @property
    def filter_offset(self) -> int: ...
    @property
    def filter_len(self) -> int: ...
    @property
    def stats_offset(self) -> int: ...
    @property
    def stats_len(self) -> int: ...
    @property
    def filter_format(self) -> Literal["legacy", "composite"]: ...
    @property
    def metadata_offset(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def first_seq(self) -> int | None:
        """The first sequence number of a WAL SST."""
    @property
    def data_len(self) -> int:
        """Bytes of data blocks (they end where the filter section starts)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class SstFile:
    def info(self) -> SstInfo: ...
    def stats(self) -> dict[str, int | list[tuple[int, int, int]]] | None:
        """num_puts, num_deletes, num_merges, raw_key_size, raw_val_size (ints) and
        block_stats ([(puts, deletes, merges)] per block)."""
    def blocks(self) -> list[tuple[int, int, bytes]]: ...
    def block_paddings(self) -> list[int]: ...
    @property
    def num_blocks(self) -> int: ...
    @property
    def has_filter(self) -> bool: ...
    def rows(self) -> RowIterator: ...
    def block_rows(self, index: int) -> list[Row]: ...
    def get(self, key: bytes) -> Row | None: ...
    @property
    def is_whole(self) -> bool: ...
    def might_contain(self, key: bytes) -> bool: ...
    def might_contain_many(self, keys: _Many) -> npt.NDArray[np.bool_]: ...

@final
class Fetch:
    """A native read's request for bytes: one part per object, `(path, tail, ranges)`; with
    `tail` > 0 fetch the object's last `tail` bytes (and report its size) instead of ranges.
    `resume` takes one `(buffers, object_size)` per part and continues the call that asked:
    it returns that call's answer, or another Fetch (`slatedb_py.fetch.drive`)."""

    @property
    def parts(self) -> list[tuple[str, int, list[tuple[int, int]]]]: ...
    def resume(self, replies: list[tuple[list[Buffer], int]]) -> _Resumed: ...

# A piece of an SST being written: `(data, None)` while more follow, `(data, SstFile)` for
# the last one (the SST's metadata, opened).
_Piece: TypeAlias = tuple[Buffer, SstFile | None]

# What a Fetch's `resume` continues: a point read, a batch read, a scan page (rows, or an
# Arrow batch), a compaction step.
_Resumed: TypeAlias = (
    bytes | list[bytes | None] | list[tuple[bytes, bytes]] | RecordBatch | _Piece | Fetch | None
)

@final
class Tables:
    """Opened SSTs and the block cache of one database handle; `local_root` makes the core
    read a LocalStore's SSTs itself."""

    def __new__(
        cls, cache_bytes: int, local_root: str | os.PathLike[str] | None = None
    ) -> Self: ...
    def add_written(self, path: str, file: SstFile) -> SstFile: ...
    def retain(self, paths: set[str]) -> int: ...
    def forget(self, path: str) -> None: ...
    def cache_stats(self) -> tuple[int, int, int, int]: ...
    def open_count(self) -> int: ...
    @property
    def is_local(self) -> bool: ...

# (start_kind, start_key, end_kind, end_key); kinds 0 unbounded, 1 included, 2 excluded.
_VisibleRange: TypeAlias = tuple[int, bytes | None, int, bytes | None]
# (path, first_key, last_key, visible_range)
_TableRef: TypeAlias = tuple[str, bytes | None, bytes | None, _VisibleRange | None]

@final
class Tree:
    """What reads search: memtables, then levels `(prefix, is_run, [table_ref, ...])`."""

    def __new__(
        cls,
        tables: Tables,
        memtables: list[Memtable],
        levels: list[tuple[bytes, bool, list[_TableRef]]],
        merge_operator: MergeOperator | None = None,
    ) -> Self: ...
    def get(self, key: bytes, snapshot_seq: int, now: int) -> bytes | Fetch | None: ...
    def get_many(self, keys: Bulk, snapshot_seq: int, now: int) -> list[bytes | None] | Fetch: ...
    def scan(
        self,
        start: bytes | None,
        end: bytes | None,
        snapshot_seq: int,
        now: int,
        reverse: bool = False,
    ) -> Scan: ...

@final
class Scan:
    def next_page(self, n: int) -> list[tuple[bytes, bytes]] | Fetch: ...
    def next_arrow(self, n: int, max_bytes: int) -> RecordBatch | Fetch: ...
    def seek(self, key: bytes) -> None: ...

@final
class Cursor:
    """Hands out the rows of the pages `refill(last_key)` returns, one at a time."""

    def __new__(cls, refill: Callable[[bytes | None], list[tuple[bytes, bytes]]]) -> Self: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> tuple[bytes, bytes]: ...
    def take(self, n: int) -> list[tuple[bytes, bytes]]: ...
    def buffered(self) -> list[tuple[bytes, bytes]]: ...
    def skip_below(self, key: bytes) -> bool: ...
    @property
    def last(self) -> bytes | None: ...
    def invalidate(self) -> None: ...

@final
class CompactionJob:
    def __new__(
        cls,
        tables: Tables,
        inputs: list[str],
        retain_seq: int,
        now: int | None,
        bottom: bool,
        max_sst_size: int,
        piece_size: int,
        block_size: int = 4096,
        compression: str | None = None,
        bloom_bits_per_key: int = 10,
        min_filter_keys: int = 1000,
        merge_operator: MergeOperator | None = None,
        block_alignment: bool = False,
    ) -> Self: ...
    def step(self) -> _Piece | Fetch | None:
        """The next piece of output, a Fetch whose resumption continues the job, or None when
        done."""

@final
class SstPieces:
    """One SST handed out in pieces of at least `piece_size` bytes as it is encoded."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> _Piece: ...

@final
class WriteBatch:
    def __new__(cls) -> Self: ...
    def put(self, key: Buffer, value: Buffer, *, ttl: object = None) -> Self:
        """`ttl`: None or a datetime.timedelta (anything else raises InvalidTypeError)."""
    def merge(self, key: Buffer, operand: Buffer, *, ttl: object = None) -> Self: ...
    def delete(self, key: Buffer) -> Self: ...
    def put_many(self, keys: _Many, values: _Many, *, ttl: object = None) -> Self:
        """A put per pair, checked like `put`; all or nothing (errors name the index)."""
    def delete_many(self, keys: _Many) -> Self: ...
    def __len__(self) -> int: ...
    def keys(self) -> list[bytes]:
        """The keys the batch writes, each once."""
    @property
    def merge_key(self) -> bytes | None:
        """The key of the first merge operand, if any."""
    def clear(self) -> None: ...

@final
class Bulk:
    """The keys (and values) of a many-key call, read once and checked pair by pair."""

    def __new__(cls, keys: _Many, values: _Many = None) -> Self: ...
    def __len__(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def has_values(self) -> bool: ...
    def chunks(self, limit: int) -> list[int]: ...
    def keys(self, lo: int = 0, hi: int | None = None) -> list[bytes]: ...
    def ascending(self) -> bool: ...
    def encode_sst(
        self,
        lo: int,
        hi: int,
        seq: int,
        create_ts: int,
        expire_ts: int | None,
        block_size: int,
        compression: str | None,
        bloom_bits_per_key: int,
        min_filter_keys: int,
        block_alignment: bool,
    ) -> tuple[Buffer, SstFile]:
        """Ops `lo..hi` of an ascending bulk as one SST: its bytes, and the SST opened."""

@final
class RecordBatch:
    """An Arrow record batch `key: binary, value: binary` (the Arrow PyCapsule interface)."""

    @property
    def num_rows(self) -> int: ...
    @property
    def num_columns(self) -> int: ...
    @property
    def column_names(self) -> list[str]: ...
    @property
    def nbytes(self) -> int: ...
    def __len__(self) -> int: ...
    def row(self, i: int) -> tuple[bytes, bytes]: ...
    def to_pylist(self) -> list[tuple[bytes, bytes]]: ...
    def __arrow_c_schema__(self) -> object: ...
    def __arrow_c_array__(
        self, requested_schema: object | None = None
    ) -> tuple[object, object]: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def record_batch(rows: Iterable[tuple[bytes, bytes]]) -> RecordBatch: ...
def arrow_stream(
    next: Callable[[], RecordBatch | None], requested_schema: object | None = None
) -> object: ...

@disjoint_base
class BuiltinOperator:
    """A merge operator folded natively (`slatedb_py.merge`), also a plain callable."""

    def __new__(cls, name: str) -> Self: ...
    @property
    def name(self) -> str: ...
    def __call__(self, key: bytes, existing: bytes | None, operand: bytes) -> bytes: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class MergeOperator:
    """What the engine folds operands with: a `BuiltinOperator`, or any callable
    `(key, existing | None, operand) -> bytes` (called with the GIL, once per operand)."""

    def __new__(cls, op: Callable[[bytes, bytes | None, bytes], bytes]) -> Self: ...
    @property
    def source(self) -> Callable[[bytes, bytes | None, bytes], bytes]: ...
    def fold(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes: ...

@final
class DurableWatermark:
    """The durability watermark behind group commit."""

    def __new__(cls, durable: int) -> Self: ...
    def wait_or_claim(self, seq: int) -> Literal[-1, 0, 1]: ...
    def try_claim(self, seq: int) -> Literal[-1, 0, 1, 2]: ...
    def finish_upload(self) -> None: ...
    def advance(self, seq: int) -> None: ...
    def fail(self) -> None: ...
    @property
    def durable(self) -> int: ...
    @property
    def waiting(self) -> int: ...

@final
class Memtable:
    """Rows in memory; writes return its fill: the encoded-size estimate, or a huge number
    once it holds `memory_limit` bytes of memory (then the writer freezes it)."""

    def __new__(cls, memory_limit: int = ...) -> Self: ...
    def apply(
        self,
        batch: WriteBatch,
        seq: int,
        create_ts: int,
        default_ttl_ms: int | None = None,
        merge_operator: MergeOperator | None = None,
    ) -> int: ...
    def apply_bulk(
        self,
        bulk: Bulk,
        lo: int,
        hi: int,
        seq: int,
        create_ts: int,
        expire_ts: int | None = None,
    ) -> int: ...
    def put(
        self,
        key: bytes,
        value: bytes | None,
        seq: int,
        create_ts: int,
        expire_ts: int | None = None,
        merge: bool = False,
    ) -> int: ...
    def replay_wal(
        self, data: Buffer, after_seq: int, name: str | None = None, upto_ms: int | None = None
    ) -> tuple[int, int, bool]: ...
    def get(self, key: bytes, snapshot_seq: int) -> Row | None: ...
    def range(self, start: bytes | None = None, end: bytes | None = None) -> RowList: ...
    def encode_l0(
        self,
        block_size: int,
        compression: str | None,
        bloom_bits_per_key: int,
        min_filter_keys: int,
        piece_size: int,
        now: int | None = None,
        retain_seq: int | None = None,
        merge_operator: MergeOperator | None = None,
        block_alignment: bool = False,
    ) -> SstPieces | None:
        """The L0 SST of the memtable's rows, encoded as it is iterated; None when empty."""
    def take_wal(self, compression: str | None) -> tuple[Buffer, int, int, int] | None: ...
    def take_wal_rows(self) -> WalRows | None: ...
    @property
    def wal_pending_bytes(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def size_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    @property
    def min_seq(self) -> int | None: ...
    @property
    def max_seq(self) -> int | None: ...
    @property
    def max_create_ts(self) -> int | None: ...

@final
class WalRows:
    """Rows taken from a memtable's WAL queue, encoded when uploaded."""

    def encode(self, compression: str | None = None) -> tuple[Buffer, int, int, int]: ...
    def __len__(self) -> int: ...

@final
class MergeIterator:
    def __iter__(self) -> Self: ...
    def __next__(self) -> Row: ...
    def next_batch(self, n: int) -> list[Row]: ...
    def next_kv_batch(self, n: int) -> list[tuple[bytes, bytes]]: ...
    def drain_count(self) -> tuple[int, int, int]: ...

def encode_sst(
    rows: Iterable[_RowLike],
    kind: Literal["compacted", "wal"] = "compacted",
    block_size: int | None = None,
    compression: str | None = None,
    bloom_bits_per_key: int = 10,
    min_filter_keys: int = 1000,
    block_alignment: bool = False,
) -> bytes: ...
def decode_sst(data: Buffer, name: str | None = None) -> SstFile: ...
def merge_rows(
    sources: Iterable[SstFile | RowList | Iterable[_RowLike]],
    *,
    snapshot_seq: int | None = None,
    now: int | None = None,
    all_versions: bool = False,
) -> MergeIterator: ...

@final
class Counters:
    """A fixed set of u64 counters any thread adds to without a lock (atomics)."""

    def __new__(cls, n: int) -> Counters: ...
    def add(self, i: int, n: int) -> None: ...
    def add2(self, i: int, a: int, j: int, b: int) -> None: ...
    def values(self) -> list[int]: ...
