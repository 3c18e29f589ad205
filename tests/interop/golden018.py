"""Access to the fixtures SlateDB 0.18 wrote (tests/data/golden018, see tests/data/README.md).

The store of every fixture is rooted at `golden018/` and each database sits at `<name>/db`
(the clone names its parent `checkpoint/db`), so a test copies the whole folder and opens
`<name>/db` in a `LocalStore` rooted at the copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from obstore.store import LocalStore

from slatedb_py.config import DbOptions, ReaderOptions
from slatedb_py.merge import Concat
from tests.interop.golden import Fixture

DATA = Path(__file__).resolve().parents[1] / "data"
GOLDEN018 = DATA / "golden018"
NAMES018 = sorted(p.name for p in GOLDEN018.iterdir() if (p / "expected.json").exists())


class Fixture018(Fixture):
    base = GOLDEN018

    @property
    def block_size(self) -> int:
        return int(self.expected["sst_block_size"])

    @property
    def aligned(self) -> bool:
        return bool(self.expected["block_alignment"])

    @property
    def merge(self) -> bool:
        return self.expected["merge_operator"] is not None

    def keys(self) -> dict[bytes, bytes | None]:
        return unhex_keys(self.expected["keys"])

    def live(self) -> dict[bytes, bytes]:
        return {k: v for k, v in self.keys().items() if v is not None}

    def files(self, folder: str, suffix: str) -> list[tuple[str, bytes]]:
        return [
            (f"{folder}/{p.name}", p.read_bytes())
            for p in sorted((self.root / folder).glob(f"*.{suffix}"))
        ]

    def db_options(self, **kw: Any) -> DbOptions:
        return DbOptions(merge_operator=Concat() if self.merge else None, **kw)

    def reader_options(self, **kw: Any) -> ReaderOptions:
        return ReaderOptions(merge_operator=Concat() if self.merge else None, **kw)


def unhex_keys(keys: dict[str, str | None]) -> dict[bytes, bytes | None]:
    """`{hex key: hex value or null}` (every expected.json) as bytes."""
    return {bytes.fromhex(k): (None if v is None else bytes.fromhex(v)) for k, v in keys.items()}


def copy_all(tmp: Path) -> tuple[LocalStore, Path]:
    """A throw-away copy of every 0.18 fixture (opening one changes it) and its store."""
    dest = tmp / "golden018"
    shutil.copytree(GOLDEN018, dest)
    return LocalStore(str(dest)), dest
