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
        "compactor.py",
        "fetch.py",
        "read_path.py",
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
