"""`slatedb-py sst`: inspect SST files (compacted or WAL) of the SlateDB 0.17 format, with
0.18's padded blocks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from slatedb_py.errors import SlateDBError
from slatedb_py.format import SstFile, decode_sst


def show(b: bytes | None, limit: int = 40) -> str:
    if b is None:
        return "-"
    text = repr(b[:limit])
    return text + (f"... ({len(b)} bytes)" if len(b) > limit else "")


def _describe(path: str, sst: SstFile, rows: int) -> dict[str, Any]:
    i = sst.info
    out: dict[str, Any] = {
        "file": path,
        "type": i.sst_type,
        "size": i.size,
        "format_version": i.format_version,
        "compression": i.compression,
        "data_blocks": sst.num_blocks,
        "data_bytes": i.data_len,
        # Zero padding after the blocks (SlateDB 0.18's block alignment), part of data_bytes.
        "padding_bytes": sum(sst.block_paddings()),
        "filter_bytes": i.filter_len,
        "index_bytes": i.index_len,
        "stats_bytes": i.stats_len,
        "first_key": i.first_key.hex() if i.first_key is not None else None,
        "last_key": i.last_key.hex() if i.last_key is not None else None,
        "stats": {k: v for k, v in (sst.stats or {}).items() if k != "block_stats"},
        "rows": [],
    }
    if i.sst_type == "wal":
        out["first_seq"] = i.first_seq
    for n, row in enumerate(sst.rows()):
        if n >= rows:
            break
        out["rows"].append(
            {
                "key": row.key.hex(),
                "value": None if row.value is None else row.value.hex(),
                "seq": row.seq,
                "kind": row.kind,
                "expire_ts": row.expire_ts,
                "create_ts": row.create_ts,
            }
        )
    return out


def cmd_sst(args: argparse.Namespace) -> int:
    status = 0
    reports = []
    for path in args.files:
        try:
            sst = decode_sst(Path(path).read_bytes(), name=path)
            reports.append(_describe(path, sst, args.rows))
        except (OSError, SlateDBError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            continue
        i = sst.info
        print(f"{path}")
        print(
            f"  {i.sst_type} SST, format v{i.format_version}, {i.size} bytes, "
            f"compression {i.compression or 'none'}"
        )
        pad = sum(sst.block_paddings())
        print(
            f"  {sst.num_blocks} data blocks ({i.data_len} B"
            + (f", {pad} B of it padding" if pad else "")
            + f"), filter {i.filter_len} B, index {i.index_len} B, stats {i.stats_len} B"
        )
        if i.sst_type == "wal":
            print(f"  first seq {i.first_seq}")
        else:
            print(f"  keys {show(i.first_key)} .. {show(i.last_key)}")
        if sst.stats:
            s = sst.stats
            print(
                f"  {s['num_puts']} puts, {s['num_deletes']} deletes, {s['num_merges']} merges; "
                f"raw keys {s['raw_key_size']} B, raw values {s['raw_val_size']} B"
            )
        for n, row in enumerate(sst.rows()):
            if n >= args.rows:
                break
            print(f"    {show(row.key)} seq={row.seq} {row.kind} {show(row.value)}")
    if args.json:
        print(json.dumps(reports, indent=2))
    return status
