"""The CLI on a terminal and off it: `stats` (text and --json) describes the tree exactly;
a long command draws its progress bar only on a terminal (a pseudo-terminal here), never
with --json, and its --json output parses."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from obstore.store import LocalStore

from slatedb_py import Db, admin
from slatedb_py.config import DbOptions, GcOptions
from slatedb_py.progress import Progress


def cli(*args: str, tty: bool = False) -> tuple[str, str]:
    """Runs `slatedb-py args`; stderr goes to a pseudo-terminal when `tty`."""
    cmd = [sys.executable, "-m", "slatedb_py.cli", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "120"}
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        screen += chunk
    out, _ = proc.communicate()
    os.close(master)
    assert proc.returncode == 0, screen
    return out, screen.decode(errors="replace")


def make(root: Path) -> None:
    store = LocalStore(str(root))
    opts = DbOptions(flush_interval=None, history_retention=timedelta(hours=2))
    with Db.open("db", store, opts) as db:
        for part in range(3):
            for i in range(300):
                db.put(b"k%d-%04d" % (part, i), b"v" * 200, await_durable=False)
            db.flush_memtable()
        db.compact()
        db.put(b"late", b"x")
        db.create_checkpoint()
        db.put(b"wal", b"tail")


def test_stats_describes_the_tree(tmp_path: Path) -> None:
    make(tmp_path)
    url = f"file://{tmp_path}"
    out, _ = cli("stats", url, "db", "--json")
    d = json.loads(out)
    assert len(d["sorted_runs"]) == 1 and d["sorted_runs"][0]["bytes"] > 100_000
    assert len(d["l0"]) == 2  # the checkpoint's flush of `late`, the close's of `wal`
    assert len(d["checkpoints"]) == 1 and d["checkpoints"][0]["expires"] is None
    assert d["wal"]["objects"] == 0 and d["last_l0_seq"] == 902
    assert d["history_retention_s"] == 7200
    assert d["sequence_tracker"]["points"] >= 1
    text, _ = cli("stats", url, "db")
    assert f"sorted runs: 1, {d['sorted_runs_bytes']:,} bytes" in text
    assert "history retention: 7200 s" in text


def test_progress_only_on_a_terminal_and_never_with_json(tmp_path: Path) -> None:
    make(tmp_path)
    url = f"file://{tmp_path}"
    out, screen = cli("backup", "create", url, "db", url, "bak", tty=True)
    assert "objects" in screen and "backup" in screen  # the bar, on the terminal
    assert out.startswith("backup ")
    out, err = cli("backup", "create", url, "db", url, "bak")  # a pipe: no bar
    assert "objects" not in err and out.startswith("backup ")
    out, screen = cli("backup", "list", url, "bak", "--json", tty=True)
    assert len(json.loads(out)) == 2 and "objects" not in screen
    bid = json.loads(out)[-1]["id"]
    out, screen = cli("backup", "verify", url, "bak", bid, "--json", tty=True)
    assert json.loads(out)["ok"] is True and "objects" not in screen
    out, screen = cli("backup", "verify", url, "bak", bid, tty=True)
    assert "ok" in out and "objects" in screen


class Recorder(Progress):
    def __init__(self) -> None:
        self.objects = self.nbytes = 0

    def advance(self, objects: int = 0, nbytes: int = 0) -> None:
        self.objects += objects
        self.nbytes += nbytes


def test_gc_and_compactor_report_progress(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    opts = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
    with Db.open("db", store, opts) as db:
        for part in range(4):
            for i in range(200):
                db.put(b"k%04d" % i, b"v%d" % part * 50, await_durable=False)
            db.flush_memtable()
    seen = Recorder()
    assert admin.run_compactor("db", store, opts, once=True, full=True, progress=seen) >= 1
    assert seen.objects >= 1 and seen.nbytes > 0
    gone = Recorder()
    result = admin.run_gc_once("db", store, GcOptions(min_age=timedelta(0)), progress=gone)
    assert gone.objects == len(result.deleted) > 0
    url = f"file://{tmp_path}"
    out, screen = cli("gc", url, "db", "--min-age", "0", tty=True)
    assert out.startswith("collected") and "collecting" in screen


def test_restore_and_clone_report_the_wal_they_replay(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    opts = DbOptions(flush_interval=None, history_retention=timedelta(hours=1))
    with Db.open("db", store, opts) as db:
        for i in range(5):
            db.put(b"k%d" % i, b"v" * 100)  # durable: one WAL object each
        time.sleep(0.01)
        when = datetime.now(UTC)
        time.sleep(0.01)
        db.put(b"late", b"x")
    seen = Recorder()
    admin.create_clone("clone", "db", store, as_of=when, progress=seen)
    assert seen.objects >= 5 and seen.nbytes > 500
    with Db.open("clone", store, opts) as clone:
        assert clone.get(b"k4") == b"v" * 100 and clone.get(b"late") is None
    back = Recorder()
    admin.restore_to_time("db", store, when, progress=back)
    assert back.objects >= 5 and back.nbytes > 500
    url = f"file://{tmp_path}"
    out, screen = cli("restore", url, "db", "--to-time", when.isoformat(), tty=True)
    assert out.startswith("restored") and "replaying WAL" in screen
    out, screen = cli("clone", url, "db", "clone2", "--json", tty=True)
    assert json.loads(out)["clone"] == "clone2" and "objects" not in screen
