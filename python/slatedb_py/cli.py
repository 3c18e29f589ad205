"""The ``slatedb-py`` command.

    slatedb-py demo [DIR]          encode, store, decode and inspect SSTs in a local folder
    slatedb-py sst FILE [FILE...]  inspect SST files (info, stats, first rows); --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from slatedb_py import __version__
from slatedb_py.errors import SlateDBError
from slatedb_py.format import Row, SstFile, decode_sst, encode_sst, merge_rows


def _show(b: bytes | None, limit: int = 40) -> str:
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
        print(f"  {i.sst_type} SST, format v{i.format_version}, {i.size} bytes, "
              f"compression {i.compression or 'none'}")
        print(f"  {sst.num_blocks} data blocks ({i.data_len} B), filter {i.filter_len} B, "
              f"index {i.index_len} B, stats {i.stats_len} B")
        if i.sst_type == "wal":
            print(f"  first seq {i.first_seq}")
        else:
            print(f"  keys {_show(i.first_key)} .. {_show(i.last_key)}")
        if sst.stats:
            s = sst.stats
            print(f"  {s['num_puts']} puts, {s['num_deletes']} deletes, {s['num_merges']} merges; "
                  f"raw keys {s['raw_key_size']} B, raw values {s['raw_val_size']} B")
        for n, row in enumerate(sst.rows()):
            if n >= args.rows:
                break
            print(f"    {_show(row.key)} seq={row.seq} {row.kind} {_show(row.value)}")
    if args.json:
        print(json.dumps(reports, indent=2))
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    n = args.rows
    print(f"slatedb-py {__version__} demo: {n} rows of 16-byte keys and 100-byte values in {folder}/")
    rows = [Row(b"user:%011d" % i, (b"%08d" % i) * 12 + b"abcd", i + 1) for i in range(n)]
    payload = n * (16 + 100)
    for codec in [None, "snappy", "zlib", "lz4", "zstd"]:
        t0 = time.perf_counter()
        data = encode_sst(rows, compression=codec)
        t1 = time.perf_counter()
        path = folder / f"demo-{codec or 'none'}.sst"
        path.write_bytes(data)
        sst = decode_sst(path.read_bytes(), name=str(path))
        t2 = time.perf_counter()
        count = sum(1 for _ in sst.rows())
        t3 = time.perf_counter()
        assert count == n and sst.get(rows[n // 2].key) == rows[n // 2]
        print(f"  {codec or 'none':6}  {len(data):>9} bytes on disk  "
              f"encode {payload / (t1 - t0) / 1e6:6.0f} MB/s  "
              f"decode+iterate {n / (t3 - t2) / 1e6:5.2f} M rows/s")
    newer = [Row(rows[i].key, b"updated", n + 1 + i) for i in range(0, n, 1000)]
    deleted = [Row(rows[i].key, None, 2 * n + i, "tombstone") for i in range(500, n, 1000)]
    merged = merge_rows([sorted(deleted, key=lambda r: r.key), newer, decode_sst(encode_sst(rows))])
    visible = sum(len(b) for b in iter(lambda: merged.next_batch(10_000), []))
    print(f"  merged 3 sources: {visible} visible keys "
          f"({len(newer)} updated, {len(deleted)} deleted)")
    print(f"inspect one: slatedb-py sst {folder / 'demo-zstd.sst'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slatedb-py",
        description="SlateDB, the LSM key-value store on object storage, for Python.",
    )
    parser.add_argument("--version", action="version", version=f"slatedb-py {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="encode, store, decode and inspect SSTs in a local folder")
    p.add_argument("dir", nargs="?", default=os.path.join(os.getcwd(), "slatedb-py-demo"))
    p.add_argument("--rows", type=int, default=100_000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sst", help="inspect SST files (SlateDB 0.17 format)")
    p.add_argument("files", nargs="+")
    p.add_argument("--rows", type=int, default=5, help="rows to show per file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sst)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
