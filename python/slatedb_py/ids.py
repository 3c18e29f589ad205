"""Identifiers: ULIDs name compacted SSTs (their 48-bit millisecond timestamp is load-bearing:
the garbage collector reads it), UUIDs name checkpoints.

A ULID is 128 bits, `timestamp_ms (48) | random (80)`, written as 26 upper-case Crockford
base32 characters; string order equals numeric order.
"""

from __future__ import annotations

import os
import uuid

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_ALPHABET)}
_DECODE.update({c.lower(): i for c, i in list(_DECODE.items())})


def ulid_to_int(text: str) -> int:
    if len(text) != 26:
        raise ValueError(f"a ULID has 26 characters, not {len(text)}: {text!r}")
    value = 0
    for ch in text:
        digit = _DECODE.get(ch)
        if digit is None:
            raise ValueError(f"{ch!r} is not a Crockford base32 digit in ULID {text!r}")
        value = value * 32 + digit
    if value >> 128:
        raise ValueError(f"ULID {text!r} overflows 128 bits")
    return value


def ulid_from_int(value: int) -> str:
    out = []
    for _ in range(26):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def ulid_timestamp_ms(text: str) -> int:
    return ulid_to_int(text) >> 80


def new_ulid(now_ms: int, entropy: bytes | None = None) -> str:
    rand = int.from_bytes(entropy if entropy is not None else os.urandom(10), "big")
    return ulid_from_int(((now_ms & ((1 << 48) - 1)) << 80) | (rand & ((1 << 80) - 1)))


def new_uuid() -> uuid.UUID:
    return uuid.uuid4()


def halves(value: int) -> tuple[int, int]:
    """(high, low) 64-bit halves, the FlatBuffer `Ulid`/`Uuid` tables' fields."""
    return value >> 64, value & ((1 << 64) - 1)
