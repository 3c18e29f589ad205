"""Time, injected: the engine reads the clock only through a `Clock`, so tests can drive it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Unix time in milliseconds."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_s(self) -> float:
        """Seconds on a clock that never steps backwards (durations, not dates)."""
        return time.monotonic()


def monotonic_s(clock: Clock) -> float:
    """`clock`'s monotonic time; a clock that has none (a user's own) falls back to the
    system's, so durations the safety rules measure are never shortened by a wall-clock step."""
    return monotonic_of(clock)()


def monotonic_of(clock: Clock) -> Callable[[], float]:
    """The function `monotonic_s(clock)` calls, for a hot path that reads it per operation."""
    own: Callable[[], float] | None = getattr(clock, "monotonic_s", None)
    return own if own is not None else time.monotonic


def sleep_s(seconds: float) -> None:
    """Waits `seconds` of real time (store retry back-off): the one sleep the package takes."""
    time.sleep(seconds)


def file_time_s() -> float:
    """The wall time, in the units file modification times use (the disk cache orders its
    entries by them; no engine decision depends on it)."""
    return time.time()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self._now = now_ms

    def now_ms(self) -> int:
        return self._now

    def monotonic_s(self) -> float:
        # Moves with the manual time, so a test that advances it also ages a writer's
        # last epoch confirmation (slatedb_py.safety).
        return self._now / 1000

    def advance(self, ms: int) -> None:
        self._now += ms

    def set(self, now_ms: int) -> None:
        self._now = now_ms
