"""The time bounds that writers and the garbage collector agree on, and why they make the
create-only protocols safe against a collector with any options.

Both versioned folders (`manifest/`) and the WAL (`wal/`) rely on one primitive:
put-if-absent of the next id. A create that succeeds proves the id was free at that moment,
not that it was never used: the collector may have deleted an object with that id. Two
stale clients could then succeed where they must fail:

1. A manifest update that read version N as the latest and creates N+1 after N+1, N+2, ...
   were written and N+1 was collected: the update lands below the real latest and is lost.
2. A fenced writer (an older epoch) whose next WAL id is held by the newer writer's zero-byte
   fence: if the collector deleted that fence, the stale writer's upload succeeds below the
   replay point, is never replayed, and its acknowledged writes are lost.

What blocks a stale writer is always a fence. The object at a writer's next id, if someone else
created it, is the newer writer's fence: that writer listed the WAL after the stale one's last
upload and took the first free id past it; its data uploads come after its fence. So WAL
objects that hold rows never need to be kept for fencing; fences (and manifests) do.

The rules, with W the client window and F the collector floor below, F > W:

- The collector never deletes a manifest version, a compactor state or a WAL fence that is not
  at least F older than the newest object it listed in the database, whatever its `GcOptions`
  say (`GcOptions(min_age=0)` included). Both times are the store's (`last_modified`), so a
  collector whose own clock runs ahead cannot shorten F. By default it does not delete WAL
  fences at all (as SlateDB 0.17 does: `wal_fence_options.dry_run`), so fencing then holds
  without any clock at all.
- A manifest update counts as landed without further requests when its create finished within
  W of the start of the LIST that chose its id: a collected N+1 would have been created after
  that LIST and aged F before deletion, so the create would have finished more than F > W later.
  A slower create LISTs again: if its id is the highest, it landed (ids only grow and the
  collector never deletes the highest). Otherwise the outcome is unknown and the update is
  re-read and re-applied; every mutation is idempotent (it returns None on a manifest that
  already holds its effect), so an update that did land is not applied twice.
- A writer acknowledges a WAL upload without further requests when it confirmed its epoch (read
  the latest manifest and found its own epoch there) less than W before the upload finished. A
  newer writer claims its epoch before it writes its fence, so a fence that could block us did
  not exist at our last confirmation; collecting it takes F > W. Otherwise the writer confirms
  again before it acknowledges, and a newer epoch fails the write with `FencedError`.

Durations on the client side are measured on a monotonic clock (`clock.monotonic_s`), so
wall-clock steps do not shorten them; only the rates of the client's and the store's clocks
need to agree, and F - W leaves minutes of margin. SlateDB 0.17's own collector knows none of
this: run with zero ages and fence deletion on, it can still collect a fence a stalled writer
of ours needs.
"""

from __future__ import annotations

from datetime import timedelta

# W: how old a client's last look at the store may be when its create finishes.
CLIENT_WINDOW_S = 30.0

# F: what the collector keeps, however it is configured.
COLLECTOR_FLOOR = timedelta(minutes=5)
