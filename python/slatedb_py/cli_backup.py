"""`slatedb-py backup`: independent backups of a database (slatedb_py.backup).

slatedb-py backup create  STORE PATH BACKUP_STORE BACKUP_PATH
slatedb-py backup list    BACKUP_STORE BACKUP_PATH
slatedb-py backup verify  BACKUP_STORE BACKUP_PATH ID       (exit status 1 when it fails)
slatedb-py backup restore STORE PATH BACKUP_STORE BACKUP_PATH ID
slatedb-py backup delete  BACKUP_STORE BACKUP_PATH ID
slatedb-py backup purge   BACKUP_STORE BACKUP_PATH [--keep-last N]
Every one takes --json.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import asdict
from typing import Any

from slatedb_py import admin
from slatedb_py.backup_copy import Backup
from slatedb_py.cli import _emit, db_args
from slatedb_py.cli_progress import progress_bar


def _dict(b: Backup) -> dict[str, Any]:
    out = asdict(b)
    out["id"], out["create_time"] = str(b.id), b.create_time.isoformat()
    return out


def _line(b: Backup) -> str:
    return (
        f"{b.id}  {b.create_time.isoformat()}  seq {b.seq}  {b.objects} objects  "
        f"{b.bytes} bytes ({b.new_bytes} new)"
    )


def cmd_backup(args: argparse.Namespace) -> int:
    bstore, bpath = args.backup_store, args.backup_path
    if args.action == "create":
        with progress_bar(args, "backup") as progress:
            b = admin.create_backup(args.path, args.store, bpath, bstore, progress=progress)
        _emit(args, _dict(b), f"backup {_line(b)}")
    elif args.action == "list":
        bs = admin.list_backups(bpath, bstore)
        _emit(args, [_dict(b) for b in bs], "\n".join(map(_line, bs)) or "no backups")
    elif args.action == "verify":
        with progress_bar(args, "verify") as progress:
            r = admin.verify_backup(bpath, bstore, uuid.UUID(args.id), progress=progress)
        bad = [asdict(p) for p in r.problems]
        lines = [f"{p.path}: {p.problem}: {p.detail}" for p in r.problems]
        summary = f"backup {r.backup_id}: {r.objects} objects, {r.bytes} bytes"
        text = f"{summary}: ok" if r.ok else "\n".join([f"{summary}: FAILED", *lines])
        _emit(args, {"id": str(r.backup_id), "ok": r.ok, "problems": bad}, text)
        return 0 if r.ok else 1
    elif args.action == "restore":
        bid = uuid.UUID(args.id)
        with progress_bar(args, "restore") as progress:
            mid = admin.restore_backup(bpath, bstore, bid, args.path, args.store, progress=progress)
        _emit(args, {"manifest_id": mid}, f"restored backup {args.id} (manifest {mid})")
    elif args.action == "delete":
        admin.delete_backup(bpath, bstore, uuid.UUID(args.id))
        _emit(args, {"deleted": args.id}, f"deleted backup {args.id}")
    else:
        gone = admin.purge_backups(bpath, bstore, keep_last=args.keep_last)
        _emit(args, [_dict(b) for b in gone], f"purged {len(gone)} backups")
    return 0


def _location(p: argparse.ArgumentParser, *, json: bool) -> None:
    p.add_argument("backup_store", help="object store URL of the backups")
    p.add_argument("backup_path", help="path of the backup location in that store")
    if json:
        p.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: Any) -> None:
    """Adds `backup create|list|verify|restore|delete|purge` to the command's subparsers."""
    p = sub.add_parser("backup", help="independent, incremental backups in another store/path")
    b = p.add_subparsers(dest="action", required=True)
    c = b.add_parser("create", help="back up the database's durable state")
    db_args(c)
    _location(c, json=False)
    c = b.add_parser("list", help="the backups, oldest first")
    _location(c, json=True)
    c = b.add_parser("verify", help="re-read every object of a backup; check sizes, SHA-256")
    _location(c, json=True)
    c.add_argument("id")
    c = b.add_parser("restore", help="into a path with no database, or in place (fences)")
    db_args(c)
    _location(c, json=False)
    c.add_argument("id")
    c = b.add_parser("delete", help="remove a backup and the objects only it needs")
    _location(c, json=True)
    c.add_argument("id")
    c = b.add_parser("purge", help="remove all but the newest backups")
    _location(c, json=True)
    c.add_argument("--keep-last", type=int, default=7)
    p.set_defaults(func=cmd_backup)
