"""Bulk calls against the dict model (`test_db_model.DbModel`: puts, deletes, batches, TTL,
flushes to L0, compactions into sorted runs, reopen): `put_many`, `delete_many` and
`get_many` from every input kind, atomic or in pieces, and `to_arrow` read back against
the scan, forward and reverse, for any bounds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.integration.test_bulk import KINDS
from tests.property.test_db_model import DbModel, keys, values

kinds = st.sampled_from(sorted(k for k in KINDS if k != "generator"))


def _items(kind: str, items: list[bytes]) -> tuple[Any, list[bytes]]:
    make, stored = KINDS[kind]
    return make(items), stored(items)


class BulkModel(DbModel):
    @rule(
        pairs=st.lists(st.tuples(keys, values), max_size=12),
        key_kind=kinds,
        value_kind=kinds,
        ttl_ms=st.none() | st.integers(min_value=1, max_value=5000),
        atomic=st.booleans(),
    )
    def put_many_from(
        self,
        pairs: list[tuple[bytes, bytes]],
        key_kind: str,
        value_kind: str,
        ttl_ms: int | None,
        atomic: bool,
    ) -> None:
        ks, stored_keys = _items(key_kind, [k for k, _ in pairs])
        vs, stored_values = _items(value_kind, [v for _, v in pairs])
        ttl = None if ttl_ms is None else timedelta(milliseconds=ttl_ms)
        self.db.put_many(ks, vs, ttl=ttl, atomic=atomic, await_durable=False)
        for k, v in zip(stored_keys, stored_values):  # a later pair of a key wins
            self.model[k] = (v, None if ttl_ms is None else self.clock.now_ms() + ttl_ms)

    @rule(ks=st.lists(keys, max_size=8), kind=kinds, atomic=st.booleans())
    def delete_many_from(self, ks: list[bytes], kind: str, atomic: bool) -> None:
        arr, stored = _items(kind, ks)
        self.db.delete_many(arr, atomic=atomic)
        for k in stored:
            self.model.pop(k, None)

    @rule(ks=st.lists(keys, max_size=8), kind=kinds)
    def get_many_from(self, ks: list[bytes], kind: str) -> None:
        arr, stored = _items(kind, ks)
        live = self.live()
        assert self.db.get_many(arr) == [live.get(k) for k in stored]

    @rule(
        a=st.none() | keys,
        b=st.none() | keys,
        reverse=st.booleans(),
        rows=st.integers(min_value=1, max_value=20),
        nbytes=st.integers(min_value=1, max_value=200),
    )
    def to_arrow(
        self, a: bytes | None, b: bytes | None, reverse: bool, rows: int, nbytes: int
    ) -> None:
        want = sorted(
            (k, v) for k, v in self.live().items() if (a is None or k >= a) and (b is None or k < b)
        )
        got = [
            r
            for batch in self.db.scan(a, b, reverse=reverse).to_arrow(
                batch_rows=rows, batch_bytes=nbytes
            )
            for r in batch.to_pylist()
        ]
        assert got == (want[::-1] if reverse else want)


TestBulkModel = BulkModel.TestCase
TestBulkModel.settings = settings(stateful_step_count=30, deadline=None, max_examples=30)
