"""Architecture rules as tests (Pebble's TestForbiddenImports idea)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyo3_only_in_bindings() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "rust" / "src").rglob("*.rs")
        if "bindings" not in p.parts and re.search(r"\bpyo3\b", p.read_text())
    ]
    assert offenders == []


def test_native_module_imported_only_by_its_wrappers() -> None:
    allowed = {
        "__init__.py",
        "format.py",
        "sst.py",
        "memtable.py",
        "batch.py",
        "columnar.py",
        "compactor.py",
        "fetch.py",
        "read_path.py",
        "merge.py",
        "seq_tracker.py",
        "metrics.py",
    }
    offenders = [
        p.name
        for p in (ROOT / "python" / "slatedb_py").rglob("*.py")
        if p.name not in allowed and re.search(r"\b_native\b", p.read_text())
    ]
    assert offenders == []


def test_errors_module_imports_nothing_from_the_package() -> None:
    text = (ROOT / "python" / "slatedb_py" / "errors.py").read_text()
    assert "import slatedb_py" not in text and "from slatedb_py" not in text
    assert "from ." not in text


def test_obstore_only_in_the_store_layer() -> None:
    offenders = [
        p.name
        for p in (ROOT / "python" / "slatedb_py").rglob("*.py")
        if p.name != "store.py" and re.search(r"^\s*(import|from) obstore", p.read_text(), re.M)
    ]
    assert offenders == []


def test_manifest_package_sits_below_the_engine() -> None:
    """`manifest/` (codecs, versioned stores, fences) is what the engine stands on: it may
    use the store, paths, time and ids, never the writer, reader, compactor or collector."""
    below = {"errors", "clock", "ids", "safety", "store", "paths", "format", "manifest"}
    offenders = []
    for p in (ROOT / "python" / "slatedb_py" / "manifest").rglob("*.py"):
        for mod in re.findall(r"^\s*(?:from|import) slatedb_py\.(\w+)", p.read_text(), re.M):
            if mod not in below:
                offenders.append(f"{p.name} imports slatedb_py.{mod}")
    assert offenders == []


def test_modules_stay_small() -> None:
    """Modules are named for what they hold and stay readable in one sitting."""
    limits = {".py": 420, ".rs": 620}
    offenders = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for folder in (ROOT / "python" / "slatedb_py", ROOT / "rust" / "src")
        for p in folder.rglob("*")
        if p.suffix in limits and (n := len(p.read_text().splitlines())) > limits[p.suffix]
    ]
    assert offenders == []
