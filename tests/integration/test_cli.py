"""The `slatedb-py` command: checkpoint, clone, restore, gc and changes subcommands, text and
--json."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from slatedb_py import Db, WriteBatch, admin
from slatedb_py.cli import main
from slatedb_py.clock import ManualClock
from slatedb_py.config import DbOptions, GcOptions
from tests.interop.golden018 import DATA


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
    assert report["padding_bytes"] == 0


def test_inspecting_a_padded_sst_says_how_much_is_padding(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SlateDB 0.18's block alignment (tests/data/golden018/padded_4k)."""
    sst = min((DATA / "golden018" / "padded_4k" / "db" / "compacted").glob("*.sst"))
    code, out, _ = run(capsys, "sst", str(sst))
    assert code == 0 and "B of it padding" in out
    code, out, _ = run(capsys, "sst", str(sst), "--json")
    [report] = json.loads(out)
    assert 0 < report["padding_bytes"] < report["data_bytes"]


def test_changes_prints_every_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db_path = str(tmp_path / "db")
    with Db.open(db_path, "file:///") as db:
        db.put(b"a", b"1")
        db.write(WriteBatch().put(b"b", b"\x00\xff").delete(b"a"))
        db.put(b"t", b"x", ttl=timedelta(minutes=1))
    code, out, _ = run(capsys, "changes", "file:///", db_path, "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["seq"], r["key"], r["value"], r["kind"]) for r in rows] == [
        (1, b"a".hex(), b"1".hex(), "value"),
        (2, b"b".hex(), "00ff", "value"),
        (2, b"a".hex(), None, "tombstone"),
        (3, b"t".hex(), b"x".hex(), "value"),
    ]
    assert all(isinstance(r["create_ts"], int) for r in rows)
    assert rows[3]["expire_ts"] == rows[3]["create_ts"] + 60_000
    code, out, _ = run(capsys, "changes", "file:///", db_path, "--since-seq", "2")
    assert code == 0 and out.splitlines() == [f"3 value b't' b'x' expires={rows[3]['expire_ts']}"]


def test_changes_says_which_history_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = str(tmp_path / "db")
    with Db.open(db_path, "file:///", DbOptions(flush_interval=None, gc_enabled=False)) as db:
        for i in range(4):
            db.put(b"k%d" % i, b"v")
        db.flush_memtable()
    ahead = ManualClock(time.time_ns() // 1_000_000 + 60_000)  # every object old enough
    admin.run_gc_once(db_path, "file:///", GcOptions(min_age=timedelta(0)), clock=ahead)
    code, out, err = run(capsys, "changes", "file:///", db_path)
    assert code == 1 and "seq 1..3 are gone" in err
    code, out, _ = run(capsys, "changes", "file:///", db_path, "--since-seq", "3")
    assert code == 0 and out.splitlines() == ["4 value b'k3' b'v'"]


def test_restore_to_time_and_clone_as_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from slatedb_py.clock import SystemClock

    db_path = str(tmp_path / "db")
    clock = ManualClock(SystemClock().now_ms() - 60_000)  # in the past: the CLI's now is real
    opts = DbOptions(flush_interval=None, history_retention=timedelta(hours=1))
    with Db.open(db_path, "file:///", opts, clock=clock) as db:
        db.put(b"k", b"v1")
        clock.advance(1000)
        when = datetime.fromtimestamp(clock.now_ms() / 1000, UTC).isoformat()
        clock.advance(1000)
        db.put(b"k", b"v2")
    clone = str(tmp_path / "clone")
    code, _, _ = run(capsys, "clone", "file:///", db_path, clone, "--as-of", when)
    assert code == 0
    with Db.open(clone, "file:///") as c:
        assert c.get(b"k") == b"v1"
    code, _, _ = run(
        capsys, "gc", "file:///", db_path, "--min-age", "0", "--history-retention", "3600"
    )
    assert code == 0
    code, out, _ = run(capsys, "restore", "file:///", db_path, "--to-time", when, "--json")
    assert code == 0 and "manifest_id" in json.loads(out)
    with Db.open(db_path, "file:///") as db:
        assert db.get(b"k") == b"v1"
    code, _, err = run(capsys, "restore", "file:///", db_path, "--to-time", "2999-01-01T00:00Z")
    assert code != 0 and "future" in err and "window" in err
