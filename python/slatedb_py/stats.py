"""What a database holds, from its latest manifest and one listing of its WAL: the tree (L0
SSTs, sorted runs, their sizes), checkpoints, the WAL range, the sequence tracker's range and
the recorded history retention (`admin.describe`, `slatedb-py stats`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slatedb_py import seq_tracker
from slatedb_py.manifest.model import I64_MIN, SstView
from slatedb_py.manifest.store import ManifestStore
from slatedb_py.time_travel import recorded_retention
from slatedb_py.wal import FENCE_MAX_BYTES, list_wal_objects


def _iso(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat()


def _sst(v: SstView) -> dict[str, Any]:
    info = v.sst.info
    return {
        "id": v.id,
        "bytes": info.estimated_size,
        "first_key": None if info.first_entry is None else info.first_entry.hex(),
    }


def describe(manifests: ManifestStore) -> dict[str, Any]:
    store, paths = manifests.store, manifests.paths
    mid, m = manifests.require_latest()
    l0 = [_sst(v) for v in m.l0]
    runs = [
        {"id": r.id, "ssts": len(r.views), "bytes": sum(v.sst.info.estimated_size for v in r.views)}
        for r in m.compacted
    ]
    wal = list_wal_objects(store, paths, after=m.replay_after_wal_id)
    data = [(i, n) for i, n in wal if n > FENCE_MAX_BYTES]
    points = seq_tracker.decode(m.sequence_tracker).points
    retention = recorded_retention(store, paths)
    return {
        "path": paths.root,
        "manifest_id": mid,
        "writer_epoch": m.writer_epoch,
        "compactor_epoch": m.compactor_epoch,
        "last_l0_seq": m.last_l0_seq,
        "last_l0_time": None
        if m.last_l0_clock_tick == I64_MIN
        else _iso(m.last_l0_clock_tick / 1000),
        "l0": l0,
        "l0_bytes": sum(s["bytes"] for s in l0),
        "sorted_runs": runs,
        "sorted_runs_bytes": sum(r["bytes"] for r in runs),
        "checkpoints": [
            {
                "id": str(c.id),
                "manifest_id": c.manifest_id,
                "name": c.name,
                "expires": None if not c.expire_time_s else _iso(c.expire_time_s),
            }
            for c in m.checkpoints
        ],
        "wal": {
            "replay_after_id": m.replay_after_wal_id,
            "objects": len(data),
            "fences": len(wal) - len(data),
            "first_id": data[0][0] if data else None,
            "last_id": data[-1][0] if data else None,
            "bytes": sum(n for _, n in data),
        },
        "sequence_tracker": {
            "points": len(points),
            "first": None if not points else {"seq": points[0][0], "time": _iso(points[0][1])},
            "last": None if not points else {"seq": points[-1][0], "time": _iso(points[-1][1])},
        },
        "external_dbs": [e.path for e in m.external_dbs],
        "history_retention_s": None if retention is None else retention.total_seconds(),
    }


def render(d: dict[str, Any]) -> str:
    """The text `slatedb-py stats` prints."""
    w = d["wal"]
    t = d["sequence_tracker"]
    lines = [
        f"database {d['path']!r}: manifest {d['manifest_id']}, writer epoch "
        f"{d['writer_epoch']}, compactor epoch {d['compactor_epoch']}",
        f"L0: {len(d['l0'])} SSTs, {d['l0_bytes']:,} bytes (up to seq {d['last_l0_seq']}, "
        f"written {d['last_l0_time'] or 'never'})",
        *(f"  {s['id']}  {s['bytes']:,} bytes" for s in d["l0"]),
        f"sorted runs: {len(d['sorted_runs'])}, {d['sorted_runs_bytes']:,} bytes",
        *(f"  run {r['id']}: {r['ssts']} SSTs, {r['bytes']:,} bytes" for r in d["sorted_runs"]),
        f"checkpoints: {len(d['checkpoints'])}",
        *(
            f"  {c['id']}  manifest {c['manifest_id']}  {c['name'] or ''}  "
            f"expires {c['expires'] or 'never'}"
            for c in d["checkpoints"]
        ),
        f"WAL: {w['objects']} objects after id {w['replay_after_id']}"
        + (f" (ids {w['first_id']}..{w['last_id']})" if w["objects"] else "")
        + f", {w['bytes']:,} bytes, {w['fences']} fences",
        f"sequence tracker: {t['points']} points"
        + (
            f", seq {t['first']['seq']} at {t['first']['time']} .. "
            f"seq {t['last']['seq']} at {t['last']['time']}"
            if t["points"]
            else ""
        ),
    ]
    if d["external_dbs"]:
        lines.append(f"external databases (a clone's parents): {', '.join(d['external_dbs'])}")
    if d["history_retention_s"] is not None:
        lines.append(f"history retention: {d['history_retention_s']:g} s")
    return "\n".join(lines)
