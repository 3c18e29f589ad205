"""Merge operators: `DbOptions(merge_operator=...)` folds merge operands with one.

Any callable `(key, existing | None, operand) -> bytes` works; it is called once per operand,
oldest first, and must be associative (compaction folds runs of operands ahead of reads, as
SlateDB does). The built-ins fold natively, with no Python call per operand:

- `Concat`: appends the operand to the existing value;
- `AddU64`: adds 8-byte little-endian unsigned integers, wrapping on overflow (a value or
  operand of another width is a `MergeOperatorError` naming the key);
- `Max`: keeps the bytewise greatest (for fixed-width big-endian integers, the largest).

Pass a built-in as an instance (`AddU64()`) or as the class (`AddU64`).
"""

from __future__ import annotations

from typing import Any

from slatedb_py._native import BuiltinOperator, MergeOperator
from slatedb_py.errors import InvalidTypeError


class Concat(BuiltinOperator):
    def __new__(cls) -> Concat:
        return super().__new__(cls, "concat")


class AddU64(BuiltinOperator):
    def __new__(cls) -> AddU64:
        return super().__new__(cls, "add_u64")


class Max(BuiltinOperator):
    def __new__(cls) -> Max:
        return super().__new__(cls, "max")


def check_operator(op: Any) -> Any:
    """An options value as given, checked: None, a built-in (a class becomes its instance),
    or a callable."""
    if isinstance(op, type) and issubclass(op, BuiltinOperator) and op is not BuiltinOperator:
        builtin: Any = op  # a subclass of this module: it takes no arguments
        return builtin()
    if op is None or callable(op):
        return op
    raise InvalidTypeError(
        "merge_operator must be a callable (key, existing, operand) -> bytes, "
        f"not {type(op).__name__}"
    )


def engine_operator(op: Any) -> MergeOperator | None:
    """What the engine folds with, built once per database, reader or compactor."""
    return None if op is None else MergeOperator(op)


__all__ = ["AddU64", "BuiltinOperator", "Concat", "Max", "check_operator"]
