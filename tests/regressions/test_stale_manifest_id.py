"""A manifest update must not land on an id the collector deleted.

Found while building managed reader checkpoints: a client that cached version N probed N+1,
found it missing (collected), and wrote there: its update went under the real latest version
and was lost. Latest is now always found by LIST, and a write whose id is not the highest
afterwards counts as a conflict."""

from __future__ import annotations

from dataclasses import replace

from obstore.store import MemoryStore

from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store


def test_write_on_a_collected_id_is_a_conflict_and_update_retries_on_top() -> None:
    store = Store(MemoryStore())
    ms = ManifestStore(store, DbPaths.of("db"))
    ms.create_if_absent(Manifest())
    for epoch in (1, 2, 3):
        ms.update(lambda m, e=epoch: replace(m, writer_epoch=e))
    store.delete(DbPaths.of("db").manifest(2))  # what the collector does to old versions
    stale = Manifest(writer_epoch=99)
    assert ms.try_write(2, stale) is False
    mid, m = ms.update(lambda m: replace(m, compactor_epoch=7))
    assert mid == 5 and m.writer_epoch == 3 and m.compactor_epoch == 7
