"""The package as users get it: a wheel built from this tree, installed into a fresh venv
with only its declared dependencies, runs the example programs and the CLI from outside the
source tree; the sdist builds too. Slow: it builds and installs (a debug-profile wheel, the
same packaging as `make wheel`'s release one, to keep CI short)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from slatedb_py import __version__

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run(*cmd: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_alone_and_runs_the_examples(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    maturin = Path(sys.executable).with_name("maturin")
    run(maturin, "build", "--locked", "-q", "-o", dist, cwd=ROOT)
    (wheel,) = dist.glob("*.whl")
    assert "-abi3-" in wheel.name and "cp311" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    assert "slatedb_py/py.typed" in names and "slatedb_py/_native.pyi" in names
    assert "slatedb_py/aio/__init__.py" in names
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)
    run(py, "-m", "pip", "check", cwd=tmp_path)
    where = run(py, "-c", "import slatedb_py; print(slatedb_py.__file__)", cwd=tmp_path)
    assert str(venv) in where and str(ROOT) not in where  # the wheel, not this tree
    assert run(venv / "bin" / "slatedb-py", "--version", cwd=tmp_path).strip() == (
        f"slatedb-py {__version__}"
    )
    for example in sorted((ROOT / "examples").glob("*.py")):
        out = run(py, example, cwd=tmp_path)
        assert out.strip(), example.name
    demo = run(venv / "bin" / "slatedb-py", "demo", tmp_path / "demo", cwd=tmp_path)
    assert demo.strip()


def test_the_sdist_builds(tmp_path: Path) -> None:
    maturin = Path(sys.executable).with_name("maturin")
    run(maturin, "sdist", "-o", tmp_path, cwd=ROOT)
    (sdist,) = tmp_path.glob("*.tar.gz")
    assert sdist.name.startswith("slatedb_py-")
