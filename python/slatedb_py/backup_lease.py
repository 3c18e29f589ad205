"""One backup operation at a time per backup location: a lease object, `backups/LEASE`.

Why: create, delete and purge race if they overlap. A purge deletes the objects only the
backups it removes need, while a create running beside it may just have found one of them in
the location and decided to reuse it rather than copy it: its record would then name an
object that is gone. The manifest's put-if-absent cannot close that gap, since the reuse
decision and the deletion are not manifest updates. So the operations that change the
location (create, delete, purge) hold a lease; reads (list, verify, restore, readers) take
none: they only read, and a restore refuses what does not verify.

The lease is a small JSON object created with put-if-absent, naming its holder (a random
owner id, the operation, host and pid) and when it expires. The holder renews it as it makes
progress (`touch`) and checks it is still the holder (`check`) right before each step that
commits (the manifest update, the record, deletions), and deletes it at the end. Another
operation meets `BackupInProgressError`, which names the holder, unless the lease has
expired or its holder is a process of this host that no longer exists (a killed backup's
lease is taken over at once) or an operation of this process that failed and could not
delete it (the store failed as well): then it is deleted and taken anew with put-if-absent, and of
two takers only one gets it.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

from slatedb_py.clock import Clock
from slatedb_py.errors import BackupInProgressError
from slatedb_py.ids import new_uuid
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class Holder:
    owner: str
    operation: str
    host: str
    pid: int
    expires_ms: int

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Holder | None:
        try:
            d = json.loads(data)
            return cls(
                str(d["owner"]), str(d["operation"]), str(d["host"]), int(d["pid"]),
                int(d["expires_ms"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None  # unreadable (a torn write by a hand edit): treated as stale

    def describe(self) -> str:
        return f"{self.operation} by pid {self.pid} on {self.host!r} (owner {self.owner})"


# The owners of the leases this process holds now. A lease naming this process but none of
# them was left by an operation that failed and could not delete it (the store failed
# too): it is stale at once, as one left by a process that ended.
_ACTIVE: set[str] = set()


def _process_gone(holder: Holder) -> bool:
    """True when the holder is a process of this host that has ended (or an operation of
    this process that has)."""
    if holder.host != socket.gethostname():
        return False
    if holder.pid == os.getpid():
        return holder.owner not in _ACTIVE
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


class BackupLease:
    """The lease of one operation on one backup location; a context manager."""

    def __init__(self, store: Store, paths: DbPaths, operation: str, clock: Clock) -> None:
        self.store, self.clock, self.operation = store, clock, operation
        self.key = f"{paths.root}/backups/LEASE"
        self.root = paths.root
        self.owner = str(new_uuid())
        self._lock = threading.Lock()
        self._renewed_ms = 0

    def _mine(self) -> Holder:
        now = self.clock.now_ms()
        self._renewed_ms = now
        return Holder(
            self.owner,
            self.operation,
            socket.gethostname(),
            os.getpid(),
            now + int(LEASE.total_seconds() * 1000),
        )

    def acquire(self) -> BackupLease:
        _ACTIVE.add(self.owner)
        try:
            return self._take()
        except BaseException:
            _ACTIVE.discard(self.owner)
            raise

    def _take(self) -> BackupLease:
        for _ in range(3):
            if self.store.put_if_absent(self.key, self._mine().encode()):
                return self
            data = self.store.get(self.key)
            if data is None:
                continue  # released meanwhile
            holder = Holder.decode(data)
            if holder is not None and holder.owner == self.owner:
                return self  # our put landed; its response was lost
            stale = (
                holder is None or holder.expires_ms < self.clock.now_ms() or _process_gone(holder)
            )
            if not stale:
                raise self._busy(holder)
            self.store.delete(self.key)
        raise BackupInProgressError(
            f"backup location {self.root!r}: the lease {self.key!r} keeps changing hands; "
            "another backup operation is starting",
            holder=None,
        )

    def _busy(self, holder: Holder | None) -> BackupInProgressError:
        who = holder.describe() if holder else "an unknown holder"
        return BackupInProgressError(
            f"backup location {self.root!r} is busy: {who} holds {self.key!r}; backup "
            "operations on one location run one at a time (nothing was changed)",
            holder=who,
        )

    def check(self) -> None:
        """BackupInProgressError unless this operation still holds the lease; renews it when
        a third of it has passed (otherwise two thirds, 40 s, remain: more than any one
        commit step takes), so a check costs one GET, not a GET and a PUT."""
        with self._lock:
            data = self.store.get(self.key)
            holder = None if data is None else Holder.decode(data)
            if holder is None or holder.owner != self.owner:
                raise BackupInProgressError(
                    f"backup location {self.root!r}: this {self.operation} lost its lease "
                    f"{self.key!r} (it expired and {holder.describe() if holder else 'nobody'} "
                    "holds it now); it stopped before changing anything more",
                    holder=holder.describe() if holder else None,
                )
            if self._due():
                self.store.put(self.key, self._mine().encode())

    def _due(self) -> bool:
        return self.clock.now_ms() >= self._renewed_ms + int(LEASE.total_seconds() * 1000) // 3

    def touch(self) -> None:
        """Renews the lease when a third of it has passed (called as work progresses)."""
        if self._due():
            self.check()

    def release(self) -> None:
        try:
            with self._lock:
                data = self.store.get(self.key)
                holder = None if data is None else Holder.decode(data)
                if holder is not None and holder.owner == self.owner:
                    self.store.delete(self.key)
        finally:
            _ACTIVE.discard(self.owner)

    def __enter__(self) -> BackupLease:
        return self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if e is None:
            self.release()
            return
        try:
            self.release()
        except Exception:
            pass  # the lease then expires, or is taken over once this process has ended
