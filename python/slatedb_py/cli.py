"""The ``slatedb-py`` command.

slatedb-py demo [DIR]          encode, store, decode and inspect SSTs in a local folder
slatedb-py sst FILE [FILE...]  inspect SST files (info, stats, first rows); --json
slatedb-py changes STORE PATH  every write from the WAL (--since-seq N, --follow, --json lines)
slatedb-py backup ...          independent backups: create, list, verify, restore, delete, purge
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slatedb_py import Db, __version__, admin, cli_sst, demo, stats
from slatedb_py.cli_progress import progress_bar
from slatedb_py.cli_sst import show
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions
from slatedb_py.errors import InvalidArgumentError, SlateDBError
from slatedb_py.wal_reader import WalReader


def cmd_demo(args: argparse.Namespace) -> int:
    return demo.run(args.dir, args.rows)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def _cp_dict(c: Any) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "manifest_id": c.manifest_id,
        "create_time": c.create_time.isoformat(),
        "expire_time": c.expire_time.isoformat() if c.expire_time else None,
        "name": c.name,
    }


def _lifetime(text: str | None) -> Any:

    if text is None or text in ("never", "none"):
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1] in units and text[:-1].isdigit():
        return timedelta(seconds=int(text[:-1]) * units[text[-1]])
    if text.isdigit():
        return timedelta(seconds=int(text))
    raise SystemExit(f"lifetime must look like 30s, 15m, 2h, 7d or 'never', not {text!r}")


def cmd_checkpoint(args: argparse.Namespace) -> int:

    if args.action == "create":
        source = uuid.UUID(args.source) if args.source else None
        r = admin.create_checkpoint(
            args.path, args.store, CheckpointOptions(_lifetime(args.lifetime), source, args.name)
        )
        _emit(
            args,
            {"id": str(r.id), "manifest_id": r.manifest_id},
            f"created checkpoint {r.id} pinning manifest {r.manifest_id}",
        )
    elif args.action == "list":
        cps = admin.list_checkpoints(args.path, args.store, args.name)
        lines = [
            f"{c.id}  manifest {c.manifest_id:>6}  created {c.create_time:%Y-%m-%d %H:%M:%S}  "
            f"expires {c.expire_time or 'never'}  {c.name or ''}"
            for c in cps
        ]
        _emit(args, [_cp_dict(c) for c in cps], "\n".join(lines) or "no checkpoints")
    elif args.action == "refresh":
        c = Db.refresh_checkpoint(
            args.path, args.store, uuid.UUID(args.id), _lifetime(args.lifetime)
        )
        _emit(args, _cp_dict(c), f"checkpoint {c.id} now expires {c.expire_time or 'never'}")
    elif args.action == "delete":
        Db.delete_checkpoint(args.path, args.store, uuid.UUID(args.id))
        _emit(args, {"deleted": args.id}, f"deleted checkpoint {args.id}")
    return 0


def iso_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (2026-01-02T03:04:05Z)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from e


def cmd_restore(args: argparse.Namespace) -> int:

    if (args.id is None) == (args.to_time is None):
        raise InvalidArgumentError("restore takes a checkpoint id or --to-time, one of them")
    with progress_bar(args, "replaying WAL") as progress:
        if args.to_time is not None:
            mid = admin.restore_to_time(args.path, args.store, args.to_time, progress=progress)
            what, target = "restored_to_time", args.to_time.isoformat()
        else:
            cid = uuid.UUID(args.id)
            mid = admin.restore_checkpoint(args.path, args.store, cid, progress=progress)
            what, target = "restored", args.id
    _emit(
        args,
        {what: target, "manifest_id": mid},
        f"restored {args.path} to {'checkpoint ' if args.id else ''}{target} (manifest {mid}); "
        "writers opened before are fenced",
    )
    return 0


def cmd_repair(args: argparse.Namespace) -> int:

    r = admin.skip_wal_objects(args.path, args.store, args.skip_wal)
    first, last = r.replayed
    _emit(
        args,
        {"manifest_id": r.manifest_id, "skipped": r.skipped, "replayed": [first, last]},
        "\n".join(
            [
                *(f"skipped {k} (its rows are lost)" for k in r.skipped),
                f"replayed WAL ids {first}..{last} into an L0 SST (manifest {r.manifest_id}); "
                "writers opened before are fenced",
            ]
        ),
    )
    return 0


def cmd_clone(args: argparse.Namespace) -> int:

    with progress_bar(args, "copying WAL") as progress:
        admin.create_clone(
            args.clone_path,
            args.path,
            args.store,
            uuid.UUID(args.checkpoint) if args.checkpoint else None,
            as_of=args.as_of,
            progress=progress,
        )
    _emit(
        args,
        {"clone": args.clone_path, "parent": args.path},
        f"cloned {args.path} to {args.clone_path} (zero-copy: the clone reads the parent's SSTs)",
    )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:

    keep = None if args.history_retention is None else timedelta(seconds=args.history_retention)
    options = GcOptions(min_age=timedelta(seconds=args.min_age), history_retention=keep)
    with progress_bar(args, "collecting") as progress:
        r = admin.run_gc_once(args.path, args.store, options, progress=progress)
    data = dict(vars(r))
    counts = ", ".join(f"{len(v)} {k.replace('_', ' ')}" for k, v in data.items())
    _emit(args, data, f"collected: {counts}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """The manifest tree: L0, sorted runs, sizes, checkpoints, WAL and tracker ranges."""
    d = admin.describe(args.path, args.store)
    _emit(args, d, stats.render(d))
    return 0


def cmd_changes(args: argparse.Namespace) -> int:
    """Every write after --since-seq, one line each, from the WAL; --follow waits for more
    until interrupted (Ctrl-C)."""
    reader = WalReader(args.path, args.store, poll_interval=timedelta(seconds=args.poll_interval))
    stream = reader.changes(args.since_seq, follow=args.follow)
    try:
        for c in stream:
            if args.json:
                line = json.dumps(
                    {
                        "seq": c.seq,
                        "key": c.key.hex(),
                        "value": None if c.value is None else c.value.hex(),
                        "kind": c.kind,
                        "create_ts": c.create_ts,
                        "expire_ts": c.expire_ts,
                    }
                )
            else:
                ttl = "" if c.expire_ts is None else f" expires={c.expire_ts}"
                line = f"{c.seq} {c.kind} {show(c.key)} {show(c.value)}{ttl}"
            print(line, flush=args.follow)
    except KeyboardInterrupt:
        pass
    finally:
        reader.close()
    return 0


def _peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM, Linux), for operators sizing a compactor."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def load_operator(spec: str | None) -> Any:
    """The merge operator `--merge-operator module:attr` names (e.g.
    `slatedb_py.merge:AddU64`, or a function in the user's module), or None."""
    if spec is None:
        return None
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise InvalidArgumentError(f"--merge-operator must be module:attr, not {spec!r}")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise InvalidArgumentError(f"--merge-operator {spec!r}: {e}") from e
    return obj


def cmd_compactor(args: argparse.Namespace) -> int:
    """A standalone compactor process: fences older compactors, then compacts as the
    size-tiered plan says until interrupted (or, with --once, until nothing is left)."""
    options = DbOptions(
        compactor_poll_interval=timedelta(seconds=args.poll_interval),
        merge_operator=load_operator(args.merge_operator),
    )
    if args.once:
        with progress_bar(args, "compacting") as progress:
            n = admin.run_compactor(
                args.path, args.store, options, once=True, full=args.full, progress=progress
            )
        peak = _peak_rss_mb()
        _emit(
            args,
            {"compactions": n, "peak_rss_mb": peak},
            f"ran {n} compaction(s); peak RSS {peak} MB",
        )
        return 0
    print(f"compacting {args.path} (Ctrl-C stops)", flush=True)
    try:
        with progress_bar(args, "compacted") as progress:
            admin.run_compactor(args.path, args.store, options, progress=progress)
    except KeyboardInterrupt:
        pass
    return 0


def db_args(p: argparse.ArgumentParser) -> None:
    """The arguments every database command takes."""
    p.add_argument("store", help="object store URL: file:///, memory:///, s3://bucket, ...")
    p.add_argument("path", help="database path in the store")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="slatedb-py",
        description="SlateDB, the LSM key-value store on object storage, for Python.",
    )
    parser.add_argument("--version", action="version", version=f"slatedb-py {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="a database in a local folder: write, read, scan, reopen")
    p.add_argument("dir", nargs="?", default=os.path.join(os.getcwd(), "slatedb-py-demo"))
    p.add_argument("--rows", type=int, default=100_000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("sst", help="inspect SST files (SlateDB 0.17 format)")
    p.add_argument("files", nargs="+")
    p.add_argument("--rows", type=int, default=5, help="rows to show per file")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cli_sst.cmd_sst)

    p = sub.add_parser("checkpoint", help="create, list, refresh or delete checkpoints")
    cp = p.add_subparsers(dest="action", required=True)
    c = cp.add_parser("create", help="pin the database's current durable state")
    db_args(c)
    c.add_argument("--lifetime", help="30s, 15m, 2h, 7d or never (default)")
    c.add_argument("--name")
    c.add_argument("--source", help="pin the same manifest as this checkpoint id")
    c = cp.add_parser("list", help="list checkpoints")
    db_args(c)
    c.add_argument("--name", help="only checkpoints with this name")
    c = cp.add_parser("refresh", help="set a checkpoint's expiry to now + lifetime")
    db_args(c)
    c.add_argument("id")
    c.add_argument("--lifetime", help="30s, 15m, 2h, 7d or never (default)")
    c = cp.add_parser("delete", help="delete a checkpoint")
    db_args(c)
    c.add_argument("id")
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("restore", help="roll the database back to a checkpoint or a time")
    db_args(p)
    p.add_argument("id", nargs="?", help="checkpoint id")
    p.add_argument("--to-time", type=iso_time, help="ISO 8601 time within the retained history")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "repair", help="move a database past corrupt WAL objects that stop every open"
    )
    db_args(p)
    p.add_argument(
        "--skip-wal",
        type=int,
        action="append",
        required=True,
        metavar="ID",
        help="a WAL id to leave out (its rows are lost); repeat for several",
    )
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("clone", help="a writable, zero-copy clone of a database")
    db_args(p)
    p.add_argument("clone_path", help="path of the new clone in the same store")
    p.add_argument("--checkpoint", help="clone at this checkpoint (default: now)")
    p.add_argument("--as-of", type=iso_time, help="clone as it was at this ISO 8601 time")
    p.set_defaults(func=cmd_clone)

    p = sub.add_parser("compactor", help="run a standalone compactor for a database")
    db_args(p)
    p.add_argument("--once", action="store_true", help="compact what is due, then exit")
    p.add_argument("--full", action="store_true", help="with --once: everything into one run")
    p.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between rounds (at least 0.005)"
    )
    p.add_argument(
        "--merge-operator",
        metavar="MODULE:ATTR",
        help="fold merge operands with this operator (e.g. slatedb_py.merge:AddU64); without "
        "one, operands are kept as they are",
    )
    p.set_defaults(func=cmd_compactor)

    p = sub.add_parser("changes", help="every write in sequence order, from the WAL (CDC)")
    db_args(p)
    p.add_argument("--since-seq", type=int, default=0, help="only writes with a higher seq")
    p.add_argument("--follow", action="store_true", help="keep waiting for new writes")
    p.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="with --follow: seconds between polls of the WAL (at least 0.005)",
    )
    p.set_defaults(func=cmd_changes)

    p = sub.add_parser("gc", help="collect garbage once (honours every live checkpoint)")
    db_args(p)
    p.add_argument("--min-age", type=float, default=300, help="seconds; younger objects are kept")
    p.add_argument(
        "--history-retention",
        type=float,
        help="seconds of history to keep for time travel (default: what the writer recorded)",
    )
    p.set_defaults(func=cmd_gc)
    p = sub.add_parser("stats", help="the database's tree, sizes, checkpoints and WAL range")
    db_args(p)
    p.set_defaults(func=cmd_stats)
    importlib.import_module("slatedb_py.cli_backup").register(sub)  # `backup ...`

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SlateDBError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
