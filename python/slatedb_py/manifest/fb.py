"""A bounds-checked FlatBuffers table reader (the Python twin of rust/src/format/fb.rs).

Manifests are small and read rarely, so they are decoded in Python; every offset is checked
before it is followed, and anything malformed raises :class:`FlatBufferError` naming the
offset, which the codec turns into a ``DataError`` for the object being read. Writing uses the
``flatbuffers`` package's builder.
"""

from __future__ import annotations

import struct
from typing import Any

from slatedb_py.errors import DataError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_SCALARS = {
    "u8": struct.Struct("<B"),
    "i8": struct.Struct("<b"),
    "bool": struct.Struct("<?"),
    "u16": _U16,
    "u32": _U32,
    "u64": struct.Struct("<Q"),
    "i64": struct.Struct("<q"),
}


# Enum values of the format, by their index on disk.
COMPRESSION = [None, "snappy", "zlib", "lz4", "zstd"]
SST_TYPES = ["compacted", "wal"]


class FlatBufferError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset

    def data_error(self, what: str, name: str | None) -> DataError:
        """The error for a corrupt `what` file `name`, whose FlatBuffer follows the 2-byte
        version prefix (so offsets in the file are 2 past those in the buffer)."""
        at = self.offset + 2
        where = f"{name}: " if name else ""
        return DataError(f"{where}corrupt {what} at offset {at}: {self}", object=name, offset=at)


def _read(fmt: struct.Struct, buf: bytes, at: int, what: str) -> Any:
    if at < 0 or at + fmt.size > len(buf):
        raise FlatBufferError(at, f"{what} runs past the end of the {len(buf)}-byte buffer")
    return fmt.unpack_from(buf, at)[0]


def _follow(buf: bytes, at: int, what: str) -> int:
    rel = _read(_U32, buf, at, what)
    target = at + rel
    if rel == 0 or target >= len(buf):
        raise FlatBufferError(at, f"{what} offset {rel} points outside the buffer")
    return int(target)


class Table:
    __slots__ = ("buf", "pos", "table_len", "vtable", "vtable_len")

    def __init__(self, buf: bytes, pos: int) -> None:
        soffset = _read(_I32, buf, pos, "table header")
        vtable = pos - soffset
        if vtable < 0 or vtable + 4 > len(buf):
            raise FlatBufferError(pos, f"vtable offset {soffset} points outside the buffer")
        vtable_len = _read(_U16, buf, vtable, "vtable length")
        table_len = _read(_U16, buf, vtable + 2, "table length")
        if vtable_len < 4 or vtable_len % 2 or vtable + vtable_len > len(buf):
            raise FlatBufferError(vtable, f"vtable length {vtable_len} is invalid")
        if table_len < 4 or pos + table_len > len(buf):
            raise FlatBufferError(pos, f"table length {table_len} is invalid")
        self.buf, self.pos, self.vtable = buf, pos, vtable
        self.vtable_len, self.table_len = vtable_len, table_len

    @classmethod
    def root(cls, buf: bytes, start: int = 0) -> Table:
        return cls(buf, _follow(buf, start, "root"))

    def _field(self, slot: int, size: int) -> int | None:
        entry = 4 + 2 * slot
        if entry + 2 > self.vtable_len:
            return None
        off = _read(_U16, self.buf, self.vtable + entry, "vtable entry")
        if off == 0:
            return None
        if off + size > self.table_len:
            raise FlatBufferError(
                self.pos, f"field {slot} at table offset {off} overruns the table"
            )
        return int(self.pos + off)

    def scalar(self, slot: int, kind: str, default: Any = 0) -> Any:
        fmt = _SCALARS[kind]
        at = self._field(slot, fmt.size)
        return default if at is None else _read(fmt, self.buf, at, f"field {slot}")

    def has(self, slot: int) -> bool:
        return self._field(slot, 1) is not None

    def _ref(self, slot: int) -> int | None:
        at = self._field(slot, 4)
        return None if at is None else _follow(self.buf, at, f"field {slot}")

    def bytes(self, slot: int) -> bytes | None:
        at = self._ref(slot)
        if at is None:
            return None
        n = _read(_U32, self.buf, at, "vector length")
        if at + 4 + n > len(self.buf):
            raise FlatBufferError(at, f"byte vector of {n} bytes runs past the end")
        return bytes(self.buf[at + 4 : at + 4 + n])

    def string(self, slot: int) -> str | None:
        raw = self.bytes(slot)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FlatBufferError(self.pos, f"string field {slot} is not UTF-8") from e

    def scalars(self, slot: int, kind: str) -> list[Any]:
        """A vector of scalars (empty when absent)."""
        at = self._ref(slot)
        if at is None:
            return []
        fmt = _SCALARS[kind]
        n = _read(_U32, self.buf, at, "vector length")
        if at + 4 + fmt.size * n > len(self.buf):
            raise FlatBufferError(at, f"vector of {n} scalars runs past the end")
        return [fmt.unpack_from(self.buf, at + 4 + fmt.size * i)[0] for i in range(n)]

    def table(self, slot: int) -> Table | None:
        at = self._ref(slot)
        return None if at is None else Table(self.buf, at)

    def tables(self, slot: int) -> list[Table] | None:
        at = self._ref(slot)
        if at is None:
            return None
        n = _read(_U32, self.buf, at, "vector length")
        if at + 4 + 4 * n > len(self.buf):
            raise FlatBufferError(at, f"vector of {n} tables runs past the end")
        return [
            Table(self.buf, _follow(self.buf, at + 4 + 4 * i, "vector element")) for i in range(n)
        ]

    def required(self, value: Any, name: str) -> Any:
        if value is None:
            raise FlatBufferError(self.pos, f"required field {name} is missing")
        return value
