"""The reverse direction: what SlateDB 0.18 found when it opened the databases others wrote
(tests/data/golden: SlateDB 0.17.0; tests/data/pywritten: slatedb_py) as a reader and as a
writer. `make golden-018` ran it (it needs the Rust build) and recorded the results with a
digest of each database's files; here the record is checked against the fixtures as they are
now, so a fixture changed since is caught until the check is run again.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from obstore.store import LocalStore

from slatedb_py import DbReader
from slatedb_py.config import ReaderOptions
from tests.interop.golden018 import DATA, GOLDEN018, unhex_keys

RESULTS = GOLDEN018 / "reverse.json"
GROUPS = ("golden", "pywritten")


def digest(folder: Path) -> str:
    """SHA-256 over `relative path \\0 sha256(file) \\n` of every file, in path order (the
    generator's `reverse::digest`)."""
    total = hashlib.sha256()
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.parts)
    for p in files:
        rel = "/".join(p.relative_to(folder).parts)
        total.update(f"{rel}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n".encode())
    return total.hexdigest()


def fixtures() -> list[str]:
    return sorted(
        f"{g}/{p.name}"
        for g in GROUPS
        for p in (DATA / g).iterdir()
        if (p / "expected.json").exists()
    )


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    doc = json.loads(RESULTS.read_text())
    assert doc["reader_and_writer"] == "slatedb 0.18.0 (crates.io)"
    return doc["results"]  # type: ignore[no-any-return]


def test_every_fixture_was_checked(results: dict[str, Any]) -> None:
    assert sorted(results) == fixtures()
    assert any(k.startswith("pywritten/") for k in results)


@pytest.mark.parametrize("name", fixtures())
def test_0_18_read_and_wrote_it_and_the_files_are_the_ones_it_saw(
    name: str, results: dict[str, Any]
) -> None:
    r = results[name]
    assert r["digest"] == digest(DATA / name), f"{name} changed since `make golden-018`"
    assert r["reader_mismatch"] == r["writer_mismatch"] == r["after_write_mismatch"] == []
    assert r["scan_matches_live_keys"] and r["keys_checked"] > 50
    expected = json.loads((DATA / name / "expected.json").read_text())
    assert r["keys_checked"] == len(set(expected["keys"]) - set(expected["expired_keys"]))
    if expected.get("run_0_18_compactor"):
        assert r["run_0_18_compactor"]["finished"] and r["run_0_18_compactor"]["mismatch"] == []
    assert r["ok"] is True


def test_0_18_resumed_the_compaction_slatedb_py_left_alone(results: dict[str, Any]) -> None:
    """slatedb_py wrote on top of 0.18's half-done compaction with its own compactor off: the
    compactor state it left still had 0.18's subcompaction progress, and 0.18 finished the
    compaction from there (the output of the range done before is in the sorted run)."""
    r = results["pywritten/on_compacting018_writer"]["run_0_18_compactor"]
    before = json.dumps(r["compactions_before"])
    assert '"Completed"' in before and '"InProgress"' in before
    assert r["finished"] and r["statuses_after"] == ["Completed"]
    assert r["outputs_of_completed_ranges_before"]
    assert r["reused_in_commit"] == r["outputs_of_completed_ranges_before"]


def test_0_18_settled_what_slatedb_py_compacted_over() -> None:
    """slatedb_py compacted the inputs of 0.18's half-done compaction itself, dropping that
    entry when it started (`compaction_state.clash`): 0.18 found nothing left to resume."""
    r = json.loads(RESULTS.read_text())["results"]["pywritten/on_compacting018_compacted"]
    before = r["run_0_18_compactor"]["compactions_before"]["recent_compactions"]
    assert all("ctx" not in c or c["ctx"] is None for c in before.values())
    assert r["run_0_18_compactor"]["finished"]


def test_0_18_compacted_a_tree_of_its_padded_and_our_unpadded_tables(
    results: dict[str, Any],
) -> None:
    r = results["pywritten/on_padded018"]["run_0_18_compactor"]
    assert r["finished"] and r["statuses_after"] == ["Completed"] and r["mismatch"] == []


def test_the_slatedb_py_databases_are_what_slatedb_py_writes_now(tmp_path: Path) -> None:
    """The checked-in `pywritten/plain` holds what `make_pywritten.plain` writes today (keys
    and values; ids and timestamps differ), so the reverse check speaks for this code."""
    sys.path.insert(0, str(DATA))
    try:
        import make_pywritten  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DATA))
    store = LocalStore(str(tmp_path))
    doc = make_pywritten.plain(store, "plain/db")
    recorded = json.loads((DATA / "pywritten" / "plain" / "expected.json").read_text())
    assert doc["keys"] == recorded["keys"]
    want = unhex_keys(recorded["keys"])
    with DbReader.open("plain/db", store, options=ReaderOptions(managed_checkpoint=False)) as r:
        assert {k: r.get(k) for k in want} == want
