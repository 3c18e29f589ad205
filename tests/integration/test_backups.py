"""Independent backups: create (first and incremental), list, verify, restore (into an empty
path and in place), delete and purge, corruption, interruption, and a clone as the source."""

from __future__ import annotations

import argparse
import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import LocalStore, MemoryStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.backup import read_records
from slatedb_py.cli_progress import progress_bar
from slatedb_py.config import DbOptions
from slatedb_py.errors import BackupNotFoundError, DataError, FencedError, InvalidTypeError
from slatedb_py.paths import DbPaths
from slatedb_py.progress import Progress
from slatedb_py.store import Store
from tests.support import STORE_KINDS, make_store

OPTS = DbOptions(flush_interval=None, gc_enabled=False)


@pytest.fixture(params=STORE_KINDS)
def stores(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """The source's store and the backup store: two separate stores of one kind (two
    buckets on S3)."""
    with make_store(request.param) as src, make_store(request.param) as bak:
        yield src, bak


def objects(store: Any, prefix: str) -> dict[str, int]:
    return {m["path"]: m["size"] for batch in obstore.list(store, prefix) for m in batch}


def fill(db: Db, model: dict[bytes, bytes], lo: int, hi: int, tag: bytes) -> None:
    for i in range(lo, hi):
        k = b"k%05d" % i
        model[k] = tag + b"-%d" % i
        db.put(k, model[k], await_durable=False)


def read_all(path: str, store: Any) -> dict[bytes, bytes]:
    with Db.open(path, store, OPTS) as db:
        return dict(db.scan())


def make_source(store: Any) -> tuple[Db, dict[bytes, bytes]]:
    db = Db.open("db", store, OPTS)
    model: dict[bytes, bytes] = {}
    fill(db, model, 0, 2000, b"a")
    db.flush_memtable()
    fill(db, model, 2000, 2100, b"wal")  # a WAL tail the backup must carry too
    db.flush()
    return db, model


def test_first_and_incremental_backups_restore_exactly(stores: tuple[Any, Any]) -> None:
    src, bak = stores
    db, model = make_source(src)
    first = admin.create_backup("db", src, "bak", bak)
    assert first.new_bytes == first.bytes > 0 and first.objects >= 3
    at_first = dict(model)

    fill(db, model, 0, 20, b"b")  # 1% of the keys
    db.flush_memtable()
    db.flush()
    second = admin.create_backup("db", src, "bak", bak)
    copied_ssts = second.new_bytes
    assert second.bytes > first.bytes
    assert copied_ssts < first.new_bytes / 2, "the second backup copied old SSTs again"
    assert second.seq > first.seq
    assert [b.id for b in admin.list_backups("bak", bak)] == [first.id, second.id]
    assert admin.verify_backup("bak", bak, first.id).ok
    assert admin.verify_backup("bak", bak, second.id).ok

    assert admin.restore_backup("bak", bak, first.id, "r1", src) == 1
    assert read_all("r1", src) == at_first
    admin.restore_backup("bak", bak, second.id, "r2", bak)
    assert read_all("r2", bak) == model
    with DbReader.open("bak", bak, backup_id=first.id) as reader:
        assert dict(reader.scan()) == at_first
    db.close()


def test_a_backup_survives_its_source_being_deleted(stores: tuple[Any, Any]) -> None:
    src, bak = stores
    db, model = make_source(src)
    b = admin.create_backup("db", src, "bak", bak)
    db.close()
    for path in objects(src, "db"):
        obstore.delete(src, path)
    assert objects(src, "db") == {}
    admin.restore_backup("bak", bak, b.id, "db", src)
    assert read_all("db", src) == model


def test_restore_in_place_fences_the_open_writer(stores: tuple[Any, Any]) -> None:
    src, bak = stores
    db, model = make_source(src)
    b = admin.create_backup("db", src, "bak", bak)
    at_backup = dict(model)
    fill(db, model, 0, 500, b"later")
    db.flush()
    admin.restore_backup("bak", bak, b.id, "db", src)
    with pytest.raises(FencedError):
        db.put(b"x", b"y")
    db.close()
    assert read_all("db", src) == at_backup


def test_delete_and_purge_keep_what_kept_backups_need(stores: tuple[Any, Any]) -> None:
    src, bak = stores
    db, model = make_source(src)
    snaps = []
    backups = []
    for round_ in range(4):
        fill(db, model, round_ * 300, round_ * 300 + 300, b"r%d" % round_)
        db.flush_memtable()
        if round_ == 2:
            db.compact()
        db.flush()
        backups.append(admin.create_backup("db", src, "bak", bak))
        snaps.append(dict(model))
    db.close()
    admin.delete_backup("bak", bak, backups[1].id)
    with pytest.raises(BackupNotFoundError):
        admin.verify_backup("bak", bak, backups[1].id)
    gone = admin.purge_backups("bak", bak, keep_last=2)
    assert [g.id for g in gone] == [backups[0].id]
    assert [b.id for b in admin.list_backups("bak", bak)] == [backups[2].id, backups[3].id]
    for b in admin.list_backups("bak", bak):
        assert admin.verify_backup("bak", bak, b.id).ok
    for i in (2, 3):
        admin.restore_backup("bak", bak, backups[i].id, f"r{i}", src)
        assert read_all(f"r{i}", src) == snaps[i]
    # what only the removed backups needed is gone
    ssts = set(objects(bak, "bak/compacted"))
    needed = {
        f"bak/{rel}"
        for r in read_records(Store.resolve(bak), DbPaths.of("bak"))
        for rel in r.objects
        if rel.startswith("compacted/")
    }
    assert ssts == needed
    # the backup location's latest manifest reads as the newest backup
    with DbReader.open("bak", bak) as reader:
        assert dict(reader.scan()) == snaps[3]
    admin.purge_backups("bak", bak, keep_last=0)
    assert admin.list_backups("bak", bak) == []
    assert objects(bak, "bak/compacted") == {}


def _damage(store: Any, path: str, how: str) -> None:
    data = bytearray(bytes(obstore.get(store, path).bytes()))
    if how == "flip":
        data[len(data) // 2] ^= 0x40
    else:
        data = data[: len(data) // 2]
    obstore.put(store, path, bytes(data))


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_corruption_is_caught_and_an_older_backup_still_restores(
    stores: tuple[Any, Any], how: str
) -> None:
    src, bak = stores
    db, model = make_source(src)
    old = admin.create_backup("db", src, "bak", bak)
    at_old = dict(model)
    old_ssts = set(objects(bak, "bak/compacted"))
    fill(db, model, 5000, 5300, b"new")
    db.flush_memtable()
    db.close()
    new = admin.create_backup("db", src, "bak", bak)
    (victim,) = set(objects(bak, "bak/compacted")) - old_ssts  # only the new backup has it
    rel = victim.removeprefix("bak/")
    _damage(bak, victim, how)

    report = admin.verify_backup("bak", bak, new.id)
    assert not report.ok
    assert [p.path for p in report.problems] == [rel]
    assert report.problems[0].problem == ("checksum" if how == "flip" else "size")
    with pytest.raises(DataError, match=rel):
        admin.restore_backup("bak", bak, new.id, "restored", src)
    assert objects(src, "restored/manifest") == {}
    assert admin.verify_backup("bak", bak, old.id).ok
    admin.restore_backup("bak", bak, old.id, "restored", src)
    assert read_all("restored", src) == at_old


class FailingPuts(Store):
    """Fails every upload under `compacted/` after the first `allow` of them."""

    def __init__(self, inner: Any, allow: int) -> None:
        super().__init__(inner)
        self.allow = allow
        self.puts = 0

    def _count(self, path: str) -> None:
        if "/compacted/" in path:
            self.puts += 1
            if self.puts > self.allow:
                raise ConnectionAbortedError(f"injected: the backup dies at {path}")

    def put(self, path: str, data: Any) -> None:
        self._count(path)
        super().put(path, data)

    def put_chunks(self, path: str, chunks: Any) -> None:
        self._count(path)
        super().put_chunks(path, chunks)


def test_an_interrupted_backup_leaves_no_record_and_the_next_reuses_its_copies(
    stores: tuple[Any, Any],
) -> None:
    src, bak = stores
    db = Db.open("db", src, replace(OPTS, compactor_enabled=False))
    model: dict[bytes, bytes] = {}
    for part in range(6):
        fill(db, model, part * 200, part * 200 + 200, b"p")
        db.flush_memtable()
    db.close()
    ssts = objects(src, "db/compacted")
    assert len(ssts) >= 6
    failing = FailingPuts(bak, allow=3)
    with pytest.raises(ConnectionAbortedError):
        admin.create_backup("db", src, "bak", failing)
    assert admin.list_backups("bak", bak) == []
    assert admin.list_checkpoints("db", src) == []  # the source is not left pinned
    copied = objects(bak, "bak/compacted")
    assert 0 < len(copied) < len(ssts)

    b = admin.create_backup("db", src, "bak", bak)
    assert b.new_bytes <= b.bytes - sum(copied.values())
    assert admin.verify_backup("bak", bak, b.id).ok
    admin.restore_backup("bak", bak, b.id, "r", src)
    assert read_all("r", src) == model


def test_a_clone_backs_up_self_contained(stores: tuple[Any, Any]) -> None:
    src, bak = stores
    db, model = make_source(src)
    db.close()
    admin.create_clone("clone", "db", src)
    with Db.open("clone", src, OPTS) as clone:
        fill(clone, model, 0, 10, b"clone")
        clone.flush()
    b = admin.create_backup("clone", src, "bak", bak)
    for path in objects(src, ""):
        obstore.delete(src, path)
    admin.restore_backup("bak", bak, b.id, "again", src)
    assert read_all("again", src) == model


def test_the_backup_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from slatedb_py.cli import main

    root = LocalStore(str(tmp_path))
    db, model = make_source(root)
    db.close()
    url = f"file://{tmp_path}"
    assert main(["backup", "create", url, "db", url, "bak", "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert main(["backup", "list", url, "bak", "--json"]) == 0
    assert [b["id"] for b in json.loads(capsys.readouterr().out)] == [made["id"]]
    assert main(["backup", "verify", url, "bak", made["id"]]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["backup", "restore", url, "copy", url, "bak", made["id"]]) == 0
    assert read_all("copy", root) == model
    capsys.readouterr()
    victim = sorted(objects(root, "bak/compacted"))[0]
    _damage(root, victim, "flip")
    assert main(["backup", "verify", url, "bak", made["id"], "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["path"] in victim
    assert main(["backup", "purge", url, "bak", "--keep-last", "0"]) == 0
    assert main(["backup", "list", url, "bak"]) == 0
    assert "no backups" in capsys.readouterr().out


def test_large_objects_stream_in_chunks(
    stores: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from slatedb_py import backup_copy

    monkeypatch.setattr(backup_copy, "CHUNK", 4096)  # every SST is "large": multipart + ranges
    src, bak = stores
    db, model = make_source(src)
    db.close()
    b = admin.create_backup("db", src, "bak", bak)
    assert admin.verify_backup("bak", bak, b.id).ok
    failing = FailingPuts(src, allow=0)  # restore streams too; a failed upload leaves no database
    with pytest.raises(ConnectionAbortedError):
        admin.restore_backup("bak", bak, b.id, "r", failing)
    assert objects(src, "r/manifest") == {}
    admin.restore_backup("bak", bak, b.id, "r", src)
    assert read_all("r", src) == model
    victim = sorted(objects(bak, "bak/compacted"))[0]
    _damage(bak, victim, "flip")
    (problem,) = admin.verify_backup("bak", bak, b.id).problems
    assert (problem.path, problem.problem) == (victim.removeprefix("bak/"), "checksum")


class Recorder(Progress):
    def __init__(self) -> None:
        self.planned = [0, 0]
        self.done = [0, 0]
        self.lock = threading.Lock()

    def total(self, objects: int, nbytes: int) -> None:
        with self.lock:
            self.planned[0] += objects
            self.planned[1] += nbytes

    def advance(self, objects: int = 0, nbytes: int = 0) -> None:
        with self.lock:
            self.done[0] += objects
            self.done[1] += nbytes


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_every_object_and_byte_and_the_cli_draws_it() -> None:
    src, bak = MemoryStore(), MemoryStore()
    db, model = make_source(src)
    db.close()
    first = Recorder()
    b = admin.create_backup("db", src, "bak", bak, progress=first)
    # Everything but the backup's own manifest, which is written, not copied.
    assert first.done == first.planned == [b.objects - 1, b.bytes - first_manifest_size(bak, b)]
    again = Recorder()
    admin.create_backup("db", src, "bak", bak, progress=again)  # all reused: still counted
    assert again.done == again.planned == first.planned
    for op in (
        lambda p: admin.verify_backup("bak", bak, b.id, progress=p),
        lambda p: admin.restore_backup("bak", bak, b.id, "r", src, progress=p),
    ):
        r = Recorder()
        op(r)
        assert r.done == r.planned == [b.objects, b.bytes]
    assert read_all("r", src) == model
    with pytest.raises(InvalidTypeError, match="Progress"):
        admin.verify_backup("bak", bak, b.id, progress=print)
    screen = Tty()
    with progress_bar(argparse.Namespace(json=False), "backup", file=screen) as bar:
        admin.create_backup("db", src, "bak2", bak, progress=bar)
    assert f"{first.planned[0]}/{first.planned[0]} objects" in screen.getvalue()
    quiet = Tty()
    with progress_bar(argparse.Namespace(json=True), "backup", file=quiet) as bar:
        admin.create_backup("db", src, "bak3", bak, progress=bar)
    assert quiet.getvalue() == ""


def first_manifest_size(store: Any, b: Any) -> int:
    return len(bytes(obstore.get(store, f"bak/manifest/{b.manifest_id:020d}.manifest").bytes()))
