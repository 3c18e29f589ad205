"""Time travel against a model keyed by write time: whatever runs in between (writes, deletes,
TTL writes, L0 flushes, full compactions, collections with the retention and zero ages, in-place
restores to a time, clones at a time), a reader at any point of the window reads exactly the
model at that point, with TTLs evaluated at the time of the read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, rule
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.clock import ManualClock, SystemClock
from slatedb_py.config import DbOptions, GcOptions, ReaderOptions

KEYS = [b"k%02d" % i for i in range(10)]
RETENTION = timedelta(seconds=30)
WINDOW_MS = 30_000
OPTS = DbOptions(
    flush_interval=None, compactor_enabled=False, gc_enabled=False, history_retention=RETENTION
)
GC = GcOptions(min_age=timedelta(0), history_retention=RETENTION)
NO_POLL = ReaderOptions(manifest_poll_interval=None)

# key -> (value, expire_ms | None)
State = dict[bytes, tuple[bytes, int | None]]


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class TimeTravel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.clock = ManualClock(SystemClock().now_ms())
        self.db = Db.open("db", self.store, OPTS, clock=self.clock)
        self.state: State = {}
        self.times = [self.clock.now_ms()]
        self.states: list[State] = [{}]
        self.n = 0
        self.clones = 0

    def _record(self) -> None:
        self.times.append(self.clock.now_ms())
        self.states.append(dict(self.state))

    def _model(self, t: int, now: int) -> dict[bytes, bytes]:
        i = max(i for i, x in enumerate(self.times) if x <= t)
        return {k: v for k, (v, e) in self.states[i].items() if e is None or e > now}

    @rule(key=st.sampled_from(KEYS), ttl=st.none() | st.integers(1, 20_000))
    def put(self, key: bytes, ttl: int | None) -> None:
        self.n += 1
        value = b"v%d" % self.n
        self.db.put(key, value, ttl=None if ttl is None else timedelta(milliseconds=ttl))
        expire = None if ttl is None else self.clock.now_ms() + ttl
        self.state[key] = (value, expire)
        self._record()

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: bytes) -> None:
        self.db.delete(key)
        self.state.pop(key, None)
        self._record()

    @rule(ms=st.integers(1, 8000))
    def advance(self, ms: int) -> None:
        self.clock.advance(ms)

    @rule()
    def flush(self) -> None:
        self.db.flush_memtable()

    @rule()
    def compact(self) -> None:
        self.db.compact()

    @rule()
    def collect(self) -> None:
        admin.run_gc_once("db", self.store, GC, clock=self.clock)

    def _point(self, back: int) -> int:
        now = self.clock.now_ms()
        return max(self.times[0], now - min(back, WINDOW_MS))

    @rule(back=st.integers(0, WINDOW_MS))
    def read_at(self, back: int) -> None:
        t = self._point(back)
        with DbReader.open("db", self.store, options=NO_POLL, as_of=at(t), clock=self.clock) as r:
            expected = self._model(t, self.clock.now_ms())
            assert dict(r.scan()) == expected
            assert [r.get(k) for k in KEYS] == [expected.get(k) for k in KEYS]

    @rule(back=st.integers(0, WINDOW_MS))
    def clone_at(self, back: int) -> None:
        t = self._point(back)
        self.clones += 1
        path = f"clone{self.clones}"
        admin.create_clone(path, "db", self.store, as_of=at(t), clock=self.clock)
        with Db.open(path, self.store, OPTS, clock=self.clock) as c:
            assert dict(c.scan()) == self._model(t, self.clock.now_ms())

    @rule(back=st.integers(0, WINDOW_MS))
    def restore_to(self, back: int) -> None:
        t = self._point(back)
        i = max(i for i, x in enumerate(self.times) if x <= t)
        self.db.close()
        admin.restore_to_time("db", self.store, at(t), options=OPTS, clock=self.clock)
        self.state = dict(self.states[i])
        self._record()
        self.db = Db.open("db", self.store, OPTS, clock=self.clock)
        self.clock.advance(1)  # later writes come after the restore's own time

    def teardown(self) -> None:
        self.db.close()


TimeTravel.TestCase.settings = settings(stateful_step_count=40, deadline=None, max_examples=60)
test_time_travel_model = TimeTravel.TestCase
