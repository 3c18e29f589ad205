"""Regression (defect 4): a zero (or tiny) timer interval made an idle database spin a core.

`DbOptions(flush_interval=timedelta(0))`, `compactor_poll_interval=timedelta(0)`,
`GcOptions(interval=timedelta(0))` and `manifest_poll_interval=timedelta(0)` were accepted;
each background loop then waited 0 s between rounds (the GC one LISTing the store nonstop).
Every timer now has a floor: the WAL ticker 1 ms (an idle tick touches no store), timers that
read the object store on every tick 5 ms. None still disables the timers that allow it.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from slatedb_py import config
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError

# Before the fix config.MIN_FLUSH_INTERVAL and MIN_POLL_INTERVAL did not exist and zero was
# the smallest accepted interval: the idle-CPU tests below then run with timedelta(0) and fail
# on the CPU they burn.
us = timedelta(microseconds=1)
ms = timedelta(milliseconds=1)


TIMERS = [
    # (label, build(value), minimum, None allowed)
    ("flush_interval", lambda v: DbOptions(flush_interval=v), ms, True),
    ("compactor_poll_interval", lambda v: DbOptions(compactor_poll_interval=v), 5 * ms, False),
    ("interval", lambda v: GcOptions(interval=v), 5 * ms, True),
    ("manifest_poll_interval", lambda v: ReaderOptions(manifest_poll_interval=v), 5 * ms, True),
]
IDS = [
    "DbOptions.flush_interval",
    "DbOptions.compactor_poll_interval",
    "GcOptions.interval",
    "ReaderOptions.manifest_poll_interval",
]


def _too_small(minimum: timedelta) -> list[timedelta]:
    return [timedelta(0), us, minimum - us, -ms, -us, timedelta(days=-1)]


@pytest.mark.parametrize(("name", "build", "minimum", "none_ok"), TIMERS, ids=IDS)
def test_intervals_below_the_minimum_are_refused(name, build, minimum, none_ok) -> None:
    for value in _too_small(minimum):
        with pytest.raises(InvalidArgumentError) as e:
            build(value)
        assert type(e.value) is InvalidArgumentError, value
        msg = str(e.value)
        assert name in msg and str(value) in msg, msg
        assert "at least" in msg, msg


@pytest.mark.parametrize(("name", "build", "minimum", "none_ok"), TIMERS, ids=IDS)
def test_the_minimum_itself_and_none_where_allowed_are_accepted(
    name, build, minimum, none_ok
) -> None:
    assert getattr(build(minimum), name) == minimum
    assert getattr(build(minimum + us), name) == minimum + us
    if none_ok:
        assert getattr(build(None), name) is None
    else:
        with pytest.raises(InvalidTypeError):
            build(None)


@pytest.mark.parametrize(("name", "build", "minimum", "none_ok"), TIMERS, ids=IDS)
def test_intervals_of_the_wrong_type_are_refused(name, build, minimum, none_ok) -> None:
    for value in (0, 1, 0.5, "1s", True):
        with pytest.raises(InvalidTypeError) as e:
            build(value)
        assert name in str(e.value)


def test_the_documented_minimums_are_the_enforced_ones() -> None:
    assert ms == config.MIN_FLUSH_INTERVAL
    assert 5 * ms == config.MIN_POLL_INTERVAL
    for cls in (DbOptions, GcOptions, ReaderOptions):
        assert "at least" in (cls.__doc__ or ""), cls


# The idle measurements run in a fresh interpreter: `time.process_time()` counts every thread
# of the process, and other tests leave background threads behind in this one.
IDLE_DB = """
import time
from datetime import timedelta
from obstore.store import MemoryStore
from slatedb_py import Db, config
from slatedb_py.config import DbOptions, GcOptions
flush = getattr(config, "MIN_FLUSH_INTERVAL", timedelta(0))
poll = getattr(config, "MIN_POLL_INTERVAL", timedelta(0))
db = Db.open("db", MemoryStore(), DbOptions(
    flush_interval=flush, compactor_poll_interval=poll, gc=GcOptions(interval=poll)))
db.put(b"k", b"v")
time.sleep(0.2)  # let the background threads settle into their idle loops
start = time.process_time()
time.sleep(1.0)
print(time.process_time() - start)
db.close()
"""

IDLE_READER = """
import time
from datetime import timedelta
from obstore.store import MemoryStore
from slatedb_py import Db, DbReader, config
from slatedb_py.config import DbOptions, ReaderOptions
poll = getattr(config, "MIN_POLL_INTERVAL", timedelta(0))
store = MemoryStore()
opts = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)
with Db.open("db", store, opts) as db:
    db.put(b"k", b"v")
reader = DbReader.open("db", store, options=ReaderOptions(manifest_poll_interval=poll))
time.sleep(0.2)
start = time.process_time()
time.sleep(1.0)
print(time.process_time() - start)
reader.close()
"""


def _idle_cpu(script: str) -> float:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.strip().splitlines()[-1])


def test_an_idle_db_with_the_smallest_accepted_intervals_uses_little_cpu() -> None:
    cpu = _idle_cpu(IDLE_DB)
    assert cpu < 0.4, f"an idle Db used {cpu:.2f} s of CPU in 1 s"


def test_an_idle_reader_with_the_smallest_accepted_poll_interval_uses_little_cpu() -> None:
    cpu = _idle_cpu(IDLE_READER)
    assert cpu < 0.4, f"an idle DbReader used {cpu:.2f} s of CPU in 1 s"
