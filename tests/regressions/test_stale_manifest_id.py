"""A manifest update must not land on an id the collector deleted.

Found while building managed reader checkpoints: a client that cached version N probed N+1,
found it missing (collected), and wrote there: its update went under the real latest version
and was lost. Latest is always found by LIST; a create that finishes long after that LIST
(a stalled client) is checked again, and when it may have landed on a collected id the update
is re-read and re-applied on top (slatedb_py.safety)."""

from __future__ import annotations

from dataclasses import replace

from obstore.store import MemoryStore

from slatedb_py.clock import ManualClock
from slatedb_py.manifest.model import Manifest
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.paths import DbPaths
from slatedb_py.safety import CLIENT_WINDOW_S
from slatedb_py.store import Store
from tests.support import plain


def test_a_stalled_update_on_a_collected_id_is_reapplied_on_top() -> None:
    store = Store(MemoryStore())
    clock = ManualClock()
    paths = DbPaths.of("db")
    slow = ManifestStore(store, paths, clock)
    other = ManifestStore(store, paths)
    slow.create_if_absent(Manifest())  # version 1
    calls = []

    def stalled(m: Manifest) -> Manifest | None:
        if m.compactor_epoch == 7:
            return None  # applied (idempotent)
        calls.append(m.writer_epoch)
        if len(calls) == 1:
            # While this client stalls: two more versions, and the collector takes version 2.
            other.update(plain(lambda m: replace(m, writer_epoch=1)))
            other.update(plain(lambda m: replace(m, writer_epoch=2)))
            store.delete(paths.manifest(2))
            clock.advance(int(CLIENT_WINDOW_S * 1000) + 1)
        return replace(m, compactor_epoch=7)

    mid, m, _ = slow.update(plain(stalled))
    assert calls == [0, 2], "the update was re-applied on top of the real latest version"
    assert (mid, m.writer_epoch, m.compactor_epoch) == (4, 2, 7)
    assert slow.require_latest() == (4, m)
