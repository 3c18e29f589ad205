"""Access to the fixtures SlateDB 0.17.0 wrote (tests/data/golden, see its README)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
NAMES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").exists())


@dataclass
class Fixture:
    name: str
    # The folder of fixtures (SlateDB 0.17.0's; `golden018.Fixture018` points at 0.18's).
    base = GOLDEN

    @property
    def root(self) -> Path:
        return self.base / self.name / "db"

    @cached_property
    def expected(self) -> dict[str, Any]:
        return json.loads((self.base / self.name / "expected.json").read_text())

    @property
    def codec(self) -> str | None:
        c = self.expected["codec"]
        return None if c == "none" else c

    @property
    def block_size(self) -> int:
        return 1024 if "1 KiB" in self.expected["sst_block_size"] else 4096

    def objects(self, folder: str) -> list[tuple[str, bytes]]:
        return [
            (f"{folder}/{p.name}", p.read_bytes())
            for p in sorted((self.root / folder).glob("*.sst"))
        ]

    def compacted(self, sst_id: str) -> bytes:
        return (self.root / "compacted" / f"{sst_id}.sst").read_bytes()

    def wal(self, wal_id: int) -> bytes:
        return (self.root / "wal" / f"{wal_id:020d}.sst").read_bytes()
