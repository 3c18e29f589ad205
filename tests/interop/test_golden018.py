"""Databases the real SlateDB 0.18 wrote (tests/data/golden018), read by slatedb_py exactly.

- every SST (each codec, padded 1 KiB and 4 KiB blocks, sorted runs, merge operands, WAL)
  decodes, answers lookups, and re-encodes byte for byte, padding included;
- every manifest and compactor state decodes, and re-encodes to the same values (0.18's
  subcompaction progress and workers included);
- a `Db` and a `DbReader` read every key as 0.18 read it, checkpoints and the clone too;
- the half-deleted database is refused, naming its marker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from obstore.store import LocalStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.errors import DatabaseDeletingError, InvalidArgumentError
from slatedb_py.format import decode_sst, encode_sst
from slatedb_py.manifest.codec import decode_manifest, encode_manifest
from slatedb_py.manifest.compactions_codec import (
    COMPLETED,
    RUNNING,
    SUB_COMPLETED,
    SUB_IN_PROGRESS,
    decode_state,
    encode_state,
)
from tests.interop.golden018 import NAMES018, Fixture018, copy_all, unhex_keys

READABLE = [n for n in NAMES018 if n != "deleting"]


@pytest.fixture(params=NAMES018)
def fx(request: pytest.FixtureRequest) -> Fixture018:
    return Fixture018(request.param)


def test_fixtures_cover_every_codec_and_shape() -> None:
    assert {Fixture018(n).codec for n in NAMES018} == {None, "snappy", "zlib", "lz4", "zstd"}
    shapes = {"padded_1k", "padded_4k", "compacted", "compacting", "merge", "checkpoint"}
    assert shapes | {"clone", "deleting"} <= set(NAMES018)
    for name in NAMES018:
        e = Fixture018(name).expected
        assert e["writer"] == "slatedb 0.18.0 (crates.io)"
        # 0.18 read back what its own workload wrote, get and scan alike.
        assert e["model_mismatch"] == e["reader_mismatch"] == e["get_scan_mismatch"] == []


def test_every_sst_decodes_answers_lookups_and_re_encodes_byte_for_byte(fx: Fixture018) -> None:
    padded = 0
    for folder in ("compacted", "wal"):
        for name, data in fx.objects(folder):
            if not data:
                continue  # a WAL fence
            sst = decode_sst(data, name=name)
            info = sst.info
            assert info.compression == fx.codec and info.format_version == 2
            rows = list(sst.rows())
            if info.sst_type == "compacted":
                assert rows == sorted(rows, key=lambda r: (r.key, -r.seq))
                newest = {}
                for r in rows:
                    newest.setdefault(r.key, r)
                assert all(sst.get(k) == r for k, r in newest.items()), name
            pads = sst.block_paddings()
            padded += sum(p > 0 for p in pads)
            if fx.aligned and info.sst_type == "compacted":
                # Every block fills whole block-size units, padding included.
                for (start, end, _), pad in zip(sst.blocks(), pads, strict=True):
                    assert (end - start + pad) % fx.block_size == 0, (name, start)
            else:
                assert not any(pads), name
            again = encode_sst(
                rows,
                kind=info.sst_type,
                compression=info.compression,
                block_size=fx.block_size if folder == "compacted" else None,
                min_filter_keys=100,
                block_alignment=fx.aligned and folder == "compacted",
            )
            assert again[: info.filter_offset] == data[: info.filter_offset], name
            assert again == data, name
    assert (padded > 0) == fx.aligned


def test_padded_blocks_include_oversized_rows_padded_past_one_unit() -> None:
    for name in ("padded_1k", "padded_4k"):
        fx = Fixture018(name)
        spans = []
        for _, data in fx.objects("compacted"):
            sst = decode_sst(data)
            spans += [
                end - start + pad
                for (start, end, _), pad in zip(sst.blocks(), sst.block_paddings(), strict=True)
            ]
        assert max(spans) >= 3 * fx.block_size, name
        assert fx.block_size in spans, name


def test_every_manifest_decodes_and_re_encodes_equal(fx: Fixture018) -> None:
    files = fx.files("manifest", "manifest")
    assert files
    for name, data in files:
        m = decode_manifest(data, name=name)
        assert decode_manifest(encode_manifest(m)) == m
    final = decode_manifest(files[-1][1])
    admin = fx.expected["admin"]["manifest"]
    assert int(files[-1][0].split("/")[1].split(".")[0]) == admin["id"]
    assert final.replay_after_wal_id == admin["replay_after_wal_id"]
    assert [v.id for v in final.l0] == [v["id"] for v in admin["l0"]]
    assert [r.id for r in final.compacted] == [r["id"] for r in admin["compacted"]]


def test_every_compactor_state_keeps_every_field(fx: Fixture018) -> None:
    for name, data in fx.files("compactions", "compactions"):
        state = decode_state(data, name=name)
        assert decode_state(encode_state(state)) == state, name


def test_subcompaction_progress_and_workers_are_read_as_0_18_wrote_them() -> None:
    # A finished compaction keeps its worker and outputs (it ran within one heartbeat, so
    # 0.18 never wrote its context).
    done = decode_state(Fixture018("compacted").files("compactions", "compactions")[-1][1])
    (last,) = done.compactions
    assert last.status == COMPLETED and last.outputs and last.worker is not None
    assert last.segment == b""  # 0.18 names the root tree's segment explicitly
    # The half-done one: 0.18's heartbeat wrote which ranges are finished, with their output.
    partial = decode_state(Fixture018("compacting").files("compactions", "compactions")[-1][1])
    (running,) = partial.compactions
    assert running.status == RUNNING and running.context is not None
    statuses = [s.status for s in running.context.subcompactions]
    assert SUB_COMPLETED in statuses and SUB_IN_PROGRESS in statuses, statuses
    assert running.worker is not None and running.worker.worker_id
    for s in running.context.subcompactions:
        assert (s.status == SUB_COMPLETED) == bool(s.outputs)
    assert running.context.retention_min_seq > 0


@pytest.mark.parametrize("name", READABLE)
def test_db_and_reader_read_every_key_as_0_18_did(name: str, tmp_path: Path) -> None:
    fx = Fixture018(name)
    store, _ = copy_all(tmp_path)
    want = fx.keys()
    with DbReader.open(f"{name}/db", store, options=fx.reader_options()) as reader:
        assert {k: reader.get(k) for k in want} == want
        assert dict(reader.scan()) == fx.live()
    with Db.open(f"{name}/db", store, fx.db_options(compactor_enabled=False)) as db:
        assert {k: db.get(k) for k in want} == want
        assert dict(db.scan()) == fx.live()


def test_checkpoints_read_as_0_18_read_them(tmp_path: Path) -> None:
    fx = Fixture018("checkpoint")
    store, _ = copy_all(tmp_path)
    assert len(fx.expected["checkpoints"]) == 2
    for cp in fx.expected["checkpoints"]:
        want = unhex_keys(cp["keys"])
        cid = uuid.UUID(cp["id"])
        with DbReader.open("checkpoint/db", store, checkpoint_id=cid) as reader:
            assert {k: reader.get(k) for k in want} == want


def test_a_database_left_half_deleted_is_refused_naming_its_marker(tmp_path: Path) -> None:
    store, root = copy_all(tmp_path)
    before = sorted(p.relative_to(root) for p in (root / "deleting").rglob("*"))
    for open_it in (
        lambda: Db.open("deleting/db", store),
        lambda: DbReader.open("deleting/db", store),
    ):
        with pytest.raises(DatabaseDeletingError, match=r"deleting/db/\.deleting") as e:
            open_it()
        assert (e.value.path, e.value.marker) == ("deleting/db", "deleting/db/.deleting")
    # Nor is it cloned or rolled back, nor a clone made over it.
    for refused in (
        lambda: admin.create_clone("elsewhere/db", "deleting/db", store),
        lambda: admin.create_clone("deleting/db", "checkpoint/db", store),
        lambda: admin.restore_to_time("deleting/db", store, datetime.now(UTC)),
        # Nor does an admin call write to it, nor copy its remains.
        lambda: admin.run_gc_once("deleting/db", store),
        lambda: admin.skip_wal_objects("deleting/db", store, [1]),
        lambda: admin.run_compactor("deleting/db", store, once=True),
        lambda: admin.create_backup("deleting/db", store, "backups/db", store),
    ):
        with pytest.raises(DatabaseDeletingError, match=r"deleting/db/\.deleting"):
            refused()
    assert not (root / "elsewhere").exists() and not (root / "backups").exists()
    # Nothing was written: no manifest, no fence.
    assert sorted(p.relative_to(root) for p in (root / "deleting").rglob("*")) == before


@pytest.mark.parametrize("name", ["padded_1k", "compacted", "compacting", "merge", "clone"])
def test_slatedb_py_writes_on_top_and_compacts_0_18_tables(name: str, tmp_path: Path) -> None:
    """As the writer of a 0.18 database: its padded SSTs, sorted runs, half-done compaction,
    merge operands and parent's SSTs are inputs of a full compaction of ours, and everything
    reads back after it."""
    fx = Fixture018(name)
    store, root = copy_all(tmp_path)
    model = fx.keys()
    with Db.open(f"{name}/db", store, fx.db_options(compactor_enabled=False)) as db:
        keys = sorted(k for k, v in model.items() if v is not None)
        for i, k in enumerate(keys[::7]):
            db.put(k, b"py-%d" % i, await_durable=False)
            model[k] = b"py-%d" % i
        for k in keys[3::11]:
            db.delete(k, await_durable=False)
            model[k] = None
        db.put(b"py/new", b"1", await_durable=False)
        model[b"py/new"] = b"1"
        db.flush_memtable()
        db.compact()
        assert {k: db.get(k) for k in model} == model
    with DbReader.open(f"{name}/db", store, options=fx.reader_options()) as reader:
        assert dict(reader.scan()) == {k: v for k, v in model.items() if v is not None}
    if name == "compacting":
        # Our compaction took the inputs of 0.18's half-done one, which was dropped first.
        states = sorted((root / name / "db" / "compactions").glob("*.compactions"))
        assert all(c.context is None for c in decode_state(states[-1].read_bytes()).compactions)


def test_a_writer_asked_to_pads_its_l0_and_compacted_tables_as_0_18_does(tmp_path: Path) -> None:
    """`DbOptions(sst_block_alignment=True)`: every L0 and compacted SST this writer makes has
    0.18's layout (each re-encodes byte for byte with 0.18's rule, as the padded fixtures do);
    WAL objects stay unpadded; with a codec the options are refused."""
    with pytest.raises(InvalidArgumentError, match="sst_block_alignment"):
        DbOptions(sst_block_alignment=True, compression="lz4")
    opts = DbOptions(block_size=1024, sst_block_alignment=True, compactor_enabled=False)
    model = {b"k%05d" % i: b"v" * (i % 50) for i in range(3000)}
    model[b"big"] = b"B" * 2600
    with Db.open("db", LocalStore(str(tmp_path)), opts) as db:
        for k, v in model.items():
            db.put(k, v, await_durable=False)
        db.flush_memtable()
        db.put(b"k00001", b"new")
        model[b"k00001"] = b"new"
        db.flush_memtable()
        db.compact()
        assert dict(db.scan()) == model
    ssts = sorted((tmp_path / "db" / "compacted").glob("*.sst"))
    assert len(ssts) >= 3
    for path in ssts:
        data = path.read_bytes()
        sst = decode_sst(data, name=path.name)
        assert any(sst.block_paddings()), path.name
        rows = list(sst.rows())
        again = encode_sst(rows, block_size=1024, block_alignment=True)
        assert again == data, path.name
    for path in (tmp_path / "db" / "wal").glob("*.sst"):
        if data := path.read_bytes():
            assert not any(decode_sst(data).block_paddings())


def test_our_collector_keeps_what_0_18_needs_to_resume(tmp_path: Path) -> None:
    """The output a finished range of 0.18's half-done compaction uploaded is referenced by
    no manifest, only by the compactor state: a zero-age collection of ours keeps it (it is
    newer than the listed compaction), so a 0.18 compactor can still commit it."""
    store, root = copy_all(tmp_path)
    (running,) = decode_state(
        Fixture018("compacting").files("compactions", "compactions")[-1][1]
    ).compactions
    assert running.context is not None
    done = [h.id for s in running.context.subcompactions for h in s.outputs]
    assert done
    admin.run_gc_once("compacting/db", store, GcOptions(min_age=timedelta(0)))
    for sst_id in done:
        assert (root / "compacting" / "db" / "compacted" / f"{sst_id}.sst").exists()
