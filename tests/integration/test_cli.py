"""The `slatedb-py` command: checkpoint, clone, restore and gc subcommands, text and --json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from slatedb_py import Db
from slatedb_py.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_checkpoint_lifecycle_clone_restore_gc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = str(tmp_path / "db")
    with Db.open(db_path, "file:///") as db:
        db.put(b"k", b"v1")
    code, out, _ = run(
        capsys,
        "checkpoint",
        "create",
        "file:///",
        db_path,
        "--lifetime",
        "2h",
        "--name",
        "n1",
        "--json",
    )
    assert code == 0
    cp = json.loads(out)
    code, out, _ = run(capsys, "checkpoint", "list", "file:///", db_path)
    assert cp["id"] in out and "n1" in out
    code, out, _ = run(
        capsys, "checkpoint", "refresh", "file:///", db_path, cp["id"], "--lifetime", "never"
    )
    assert "never" in out
    with Db.open(db_path, "file:///") as db:
        db.put(b"k", b"v2")
    code, out, _ = run(
        capsys, "clone", "file:///", db_path, str(tmp_path / "clone"), "--checkpoint", cp["id"]
    )
    assert code == 0
    with Db.open(str(tmp_path / "clone"), "file:///") as clone:
        assert clone.get(b"k") == b"v1"
    code, out, _ = run(capsys, "restore", "file:///", db_path, cp["id"], "--json")
    assert code == 0 and json.loads(out)["restored"] == cp["id"]
    with Db.open(db_path, "file:///") as db:
        assert db.get(b"k") == b"v1"
    code, out, _ = run(capsys, "gc", "file:///", db_path, "--min-age", "0", "--json")
    assert (
        code == 0 and json.loads(out)["manifests"] == []
    )  # all younger than the collector's floor
    hour_ago = time.time() - 3600
    for f in Path(db_path, "manifest").iterdir():
        os.utime(f, (hour_ago, hour_ago))
    code, out, _ = run(capsys, "gc", "file:///", db_path, "--min-age", "0", "--json")
    assert code == 0 and json.loads(out)["manifests"]
    code, out, _ = run(capsys, "checkpoint", "delete", "file:///", db_path, cp["id"])
    assert code == 0
    code, _, err = run(capsys, "checkpoint", "delete", "file:///", db_path, cp["id"])
    assert code == 1 and "no checkpoint" in err


def test_inspecting_an_sst(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Db.open(str(tmp_path / "db"), "file:///") as db:
        db.put(b"hello", b"world")
    sst = next((tmp_path / "db" / "compacted").iterdir())
    code, out, _ = run(capsys, "sst", str(sst), "--json")
    assert code == 0
    [report] = json.loads(out)
    assert report["rows"][0]["key"] == b"hello".hex()
