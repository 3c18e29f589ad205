"""The real SlateDB 0.17.0 (`pip install slatedb==0.17.0`) behind a small synchronous facade,
for interop tests. Databases live on a local folder (`file:///`), addressed by absolute path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import slatedb.uniffi as u


def _settings() -> Any:
    s = u.Settings.default()
    s.set("garbage_collector_options", "null")
    s.set("compactor_options", "null")
    s.set("flush_interval", json.dumps("50ms"))
    return s


class Concat(u.MergeOperator):  # type: ignore[misc]
    """The concatenating operator the golden `merge` fixture was written with."""

    def merge(self, key: bytes, existing_value: bytes | None, operand: bytes) -> bytes:
        return (existing_value or b"") + operand


class Official:
    """A 0.17.0 writer (`reader=False`) or DbReader on `path`; with `concat`, it folds merge
    operands by concatenation (`Concat`)."""

    def __init__(self, path: str, *, reader: bool = False, concat: bool = False) -> None:
        self.loop = asyncio.new_event_loop()
        store = u.ObjectStore.resolve("file:///")
        b = (u.DbReaderBuilder if reader else u.DbBuilder)(path.lstrip("/"), store)
        if concat:
            b.with_merge_operator(Concat())
        if not reader:
            b.with_settings(_settings())
        self.db = self._run(b.build())
        self.reader = reader

    def merge(self, key: bytes, operand: bytes) -> None:
        async def go() -> None:
            h = await self.db.merge(key, operand)
            await h.await_durable()

        self._run(go())

    def _run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def get(self, key: bytes) -> bytes | None:
        return self._run(self.db.get(key))  # type: ignore[no-any-return]

    def scan(self) -> dict[bytes, bytes]:
        async def go() -> dict[bytes, bytes]:
            it = await self.db.scan(
                u.KeyRange(start=None, start_inclusive=False, end=None, end_inclusive=False)
            )
            out: dict[bytes, bytes] = {}
            while page := await it.next_batch(1000):
                out.update((kv.key, kv.value) for kv in page)
            return out

        return self._run(go())

    def put(self, key: bytes, value: bytes) -> None:
        async def go() -> None:
            h = await self.db.put(key, value)
            await h.await_durable()

        self._run(go())

    def delete(self, key: bytes) -> None:
        async def go() -> None:
            h = await self.db.delete(key)
            await h.await_durable()

        self._run(go())

    def flush_memtable(self) -> None:
        self._run(self.db.flush_with_options(u.FlushOptions(flush_type=u.FlushType.MEM_TABLE)))

    def close(self, *, keep_wal_tail: bool = False) -> None:
        try:
            if self.reader:
                self._run(self.db.shutdown())
            elif keep_wal_tail:
                self._run(self.db.shutdown_with_options(u.CloseOptions(flush_type=u.FlushType.WAL)))
            else:
                self._run(self.db.shutdown())
        finally:
            self.loop.close()


def _admin(path: str) -> Any:
    return u.AdminBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///")).build()


def _run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def _maybe(x: Any) -> Any:
    return _run(x) if asyncio.iscoroutine(x) else x


def create_checkpoint(
    path: str, name: str | None = None, lifetime_ms: int | None = None
) -> tuple[str, int]:
    """0.17.0's detached checkpoint of the database at `path`: (id, manifest_id)."""
    r = _maybe(
        _admin(path).create_detached_checkpoint(
            u.CheckpointOptions(lifetime_ms=lifetime_ms, source=None, name=name)
        )
    )
    return str(r.id), r.manifest_id


def list_checkpoints(path: str) -> list[Any]:
    return list(_maybe(_admin(path).list_checkpoints(None)))


def create_clone(clone_path: str, parent_path: str, checkpoint: str | None) -> None:
    b = _maybe(
        _admin(parent_path).create_clone_builder_from_source(
            u.CloneSourceSpec(
                path=parent_path.lstrip("/"), checkpoint=checkpoint, projection_range=None
            )
        )
    )
    b.with_clone_path(clone_path.lstrip("/"))
    _maybe(b.build())


def run_gc_once(path: str) -> None:
    now = u.GarbageCollectorDirectoryOptions(min_age_ms=0, dry_run=False)
    _maybe(
        _admin(path).run_gc_once(
            u.GarbageCollectorOptions(
                manifest_options=now,
                wal_options=now,
                wal_fence_options=now,
                compacted_options=now,
                compactions_options=now,
                disable_boundary_files=True,
            )
        )
    )


def sequence_for_timestamp(path: str, timestamp_secs: int, round_up: bool) -> int | None:
    """0.17.0's `Admin.get_sequence_for_timestamp` on the database at `path`."""
    return _maybe(_admin(path).get_sequence_for_timestamp(timestamp_secs, round_up))  # type: ignore[no-any-return]


def timestamp_for_sequence(path: str, seq: int, round_up: bool) -> int | None:
    """0.17.0's `Admin.get_timestamp_for_sequence` (Unix seconds)."""
    return _maybe(_admin(path).get_timestamp_for_sequence(seq, round_up))  # type: ignore[no-any-return]
