"""The object-store layer: the only module that imports obstore.

Accepts any obstore store (MemoryStore, LocalStore, S3Store, GCSStore, AzureStore) or a URL
(``memory:///``, ``file:///``, ``s3://bucket``...). Offers exactly what the engine needs:
whole and ranged reads (several ranges per call), plain puts, put-if-absent (``mode="create"``,
our only compare-and-set primitive: LocalStore and some S3 services cannot update
conditionally), listing and deletes. Transient failures are retried with exponential backoff;
every obstore error leaves as a ``slatedb_py.errors`` class naming the object.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import obstore
from obstore import exceptions as obx
from obstore.store import from_url

from slatedb_py.clock import sleep_s
from slatedb_py.errors import (
    DataError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingObjectError,
    UnavailableError,
)
from slatedb_py.loop_guard import WouldBlock, inline
from slatedb_py.metrics import INDEX, STORE_FOLDERS, Metrics, folder_of

if TYPE_CHECKING:  # the native zero-copy buffers' type
    from typing_extensions import Buffer

_log = logging.getLogger("slatedb_py.store")

T = TypeVar("T")


class _LocalReadError(Exception):
    """A local folder's file could not be read (`Store.get`'s direct read): obstore's
    LocalStore reports that as a `GenericError`, so it is retried and reported the same way."""


# Errors worth another try: the store or the network hiccupped.
_TRANSIENT: tuple[type[BaseException], ...] = (
    obx.GenericError,
    obx.JoinError,
    ConnectionError,
    TimeoutError,
    _LocalReadError,
)

# A key a local folder holds under its own name, the rule the native core's direct SST reads
# follow too (`plain_path` in rust/src/fetch.rs): ASCII letters, digits, ".", "_", "-",
# segments joined by "/" (and none of them "." or "..", checked apart).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")


_KIND_COUNTER = {
    what: INDEX[f"store_{what.replace('-', '_')}_requests_total"]
    for what in ("get", "get_ranges", "put", "put-if-absent", "list", "delete")
}
_BY_FOLDER = {
    (what, folder): INDEX[f"store_requests_{folder}_{what.replace('-', '_')}_total"]
    for what in _KIND_COUNTER
    for folder in STORE_FOLDERS
}
_RETRIES, _FAILURES = INDEX["store_retries_total"], INDEX["store_failures_total"]
_READ, _WRITTEN = INDEX["store_read_bytes_total"], INDEX["store_written_bytes_total"]


def _nbytes(data: Any) -> int:
    return len(data) if isinstance(data, bytes) else memoryview(data).nbytes


class ObjectMeta(NamedTuple):
    path: str
    size: int
    last_modified: datetime


class Store:
    """A retrying, error-translating wrapper over one obstore store."""

    def __init__(
        self,
        store: Any,
        *,
        max_retries: int = 6,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = sleep_s,
    ) -> None:
        self.inner = store
        self.max_retries = max_retries
        self.base_delay_s = base_delay_s
        self._sleep = sleep  # injected: tests of the retry path need not wait
        # The handle's metrics (`slatedb_py.metrics`): a database and its compactor and
        # collector share this wrapper, so they count into one place.
        self.metrics = Metrics()
        self._add = self.metrics.add
        self._add2 = self.metrics.add2

    @classmethod
    def resolve(cls, store: Any) -> Store:
        if isinstance(store, Store):
            return store
        if isinstance(store, str):
            if "://" not in store:
                raise InvalidArgumentError(
                    f"store URL {store!r} needs a scheme, e.g. 'memory:///', 'file:///', 's3://bucket'"
                )
            try:
                return cls(from_url(store))
            except Exception as e:  # obstore raises several kinds for bad URLs
                raise InvalidArgumentError(f"cannot open object store {store!r}: {e}") from e
        if type(store).__module__.startswith("obstore"):
            return cls(store)
        raise InvalidTypeError(
            f"store must be an obstore store or a URL string, not {type(store).__name__}"
        )

    @cached_property
    def local_root(self) -> str | None:
        """The folder of a LocalStore, whose files are then read directly: SSTs by the
        native core (a block miss costs a `pread`, not a store call), whole objects by `get`;
        None for every other store. A subclass (tests that count or break requests) keeps
        every read on this class. Worked out once (asking obstore costs 10 us)."""
        if type(self) is not Store or type(self.inner).__name__ != "LocalStore":
            return None
        prefix = getattr(self.inner, "prefix", None)
        if prefix is None:
            return "/"
        # obstore resolved a relative root against the directory current when the store was
        # made; that may have changed since, so such a store keeps reading through obstore.
        return str(prefix) if os.path.isabs(str(prefix)) else None

    @cached_property
    def near(self) -> bool:
        """Whether requests answer without a network round trip (a local folder, memory):
        the asyncio twin then uploads WAL objects on its event loop (`aio._bridge`)."""
        return self.local_root is not None or (
            type(self) is Store and type(self.inner).__name__ == "MemoryStore"
        )

    def _call(self, what: str, path: str, fn: Callable[[], T]) -> T:
        attempt = 0
        counter, by_folder = _KIND_COUNTER[what], _BY_FOLDER[what, folder_of(path)]
        while True:
            self._add2(counter, 1, by_folder, 1)
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("%s %s", what, path)
            try:
                return fn()
            except _TRANSIENT as e:
                attempt += 1
                if attempt > self.max_retries:
                    self._add(_FAILURES, 1)
                    raise UnavailableError(
                        f"{what} {path!r} failed after {attempt} attempts: {e}"
                    ) from e
                if inline.here():  # an event loop must not sleep: the caller retries in a thread
                    raise WouldBlock from e
                self._add(_RETRIES, 1)
                delay = min(1.0, self.base_delay_s * 2 ** (attempt - 1))
                _log.warning(
                    "%s %r failed (attempt %d of %d), retrying in %.2f s: %s",
                    what, path, attempt, self.max_retries + 1, delay, e,
                )  # fmt: skip
                self._sleep(delay)
            except (obx.PermissionDeniedError, obx.UnauthenticatedError) as e:
                raise UnavailableError(f"{what} {path!r} was refused by the store: {e}") from e
            except (obx.NotSupportedError, obx.InvalidPathError) as e:
                raise InvalidArgumentError(f"{what} {path!r}: {e}") from e

    def get(self, path: str) -> bytes | None:
        """The whole object, or None when it does not exist.

        In a local folder (`local_root`) the file is read with one `open`: a store call costs
        more than reading a small object (70 us against 20 us for a 23 KB WAL object, a
        third of a change stream of 100-row objects). The outcome is the store's: no file
        (or a folder) is None, and another failure is retried, then an `UnavailableError`.
        """
        file = self._local_file(path)

        def run() -> bytes | None:
            if file is not None:
                return _read_file(file)
            try:
                return bytes(obstore.get(self.inner, path).bytes())
            except FileNotFoundError:
                return None

        data = self._call("get", path, run)
        if data is not None:
            self._add(_READ, len(data))
        return data

    def _local_file(self, path: str) -> str | None:
        """The file `path` is in a local folder, when `get` may read it directly."""
        root = self.local_root
        if root is None or _PLAIN_KEY.fullmatch(path) is None:
            return None
        if any(seg in (".", "..") for seg in path.split("/")):
            return None
        return os.path.join(root, path)

    def get_ranges(self, path: str, ranges: Sequence[tuple[int, int]]) -> list[Any]:
        """Byte ranges ``[start, end)`` of one object in one call; buffers without copies."""
        if not ranges:
            return []

        def run() -> list[Any]:
            try:
                out = obstore.get_ranges(
                    self.inner, path, starts=[r[0] for r in ranges], ends=[r[1] for r in ranges]
                )
            except obx.GenericError as e:
                # A range past the end: the object is shorter than the caller knows it to be
                # (its SST index says so). No retry can fix that: it is broken data.
                if "range" in str(e).lower() and (
                    "invalid" in str(e).lower() or "too large" in str(e).lower()
                ):
                    raise DataError(
                        f"object {path!r} is shorter than its ranges {list(ranges)[:4]}: "
                        f"{str(e)[:200]}",
                        object=path,
                    ) from e
                raise
            except BaseException as e:
                if (
                    type(e).__name__ == "PanicException"
                ):  # obstore's own check of a range, as a panic
                    raise DataError(
                        f"object {path!r} cannot serve ranges {list(ranges)[:4]}: {str(e)[:200]}",
                        object=path,
                    ) from e
                raise
            return list(out)

        try:
            out = self._call("get_ranges", path, run)
            self._add(_READ, sum(e - s for s, e in ranges))
            return out
        except FileNotFoundError as e:
            # Ranged reads are of objects the caller knows exist (an SST the manifest
            # references): one that is gone stays gone, so this is broken data, not a
            # failure a retry could fix.
            raise MissingObjectError(
                f"object {path!r} is missing from the store", object=path
            ) from e

    def get_tail(self, path: str, length: int) -> tuple[Any, int] | None:
        """The last ``length`` bytes (all of a shorter object) and the object's size, in one
        request; None when the object does not exist."""

        def run() -> tuple[Any, int] | None:
            try:
                r = obstore.get(self.inner, path, options={"range": {"suffix": length}})
            except FileNotFoundError:
                return None
            return r.bytes(), int(r.meta["size"])

        got = self._call("get", path, run)
        if got is not None:
            self._add(_READ, _nbytes(got[0]))
        return got

    def put(self, path: str, data: Any) -> None:
        self._call("put", path, lambda: obstore.put(self.inner, path, data))
        self._add(_WRITTEN, _nbytes(data))

    def put_if_absent(self, path: str, data: Buffer) -> bool:
        """Creates ``path`` only if it does not exist. False when it already did.

        A create retried after a lost response finds its own object: the contents are compared
        so that case still counts as success.
        """
        attempts = 0

        def run() -> bool:
            nonlocal attempts
            attempts += 1
            try:
                obstore.put(self.inner, path, data, mode="create")
                return True
            except (obx.AlreadyExistsError, obx.PreconditionError):
                if attempts > 1:
                    existing = self.get(path)
                    return existing is not None and existing == bytes(data)
                return False

        created = self._call("put-if-absent", path, run)
        if created:
            self._add(_WRITTEN, _nbytes(data))
        return created

    def list(self, prefix: str, *, after: str | None = None) -> list[ObjectMeta]:
        """Objects under `prefix`; with `after`, only keys sorting after that one (one short
        listing of a folder's tail instead of all of it)."""

        def run() -> list[ObjectMeta]:
            out = []
            for batch in obstore.list(self.inner, prefix, offset=after, chunk_size=1000):
                for m in batch:
                    out.append(ObjectMeta(m["path"], m["size"], m["last_modified"]))
            return out

        return self._call("list", prefix, run)

    def delete(self, path: str) -> None:
        def run() -> None:
            try:
                obstore.delete(self.inner, path)
            except FileNotFoundError:
                pass

        self._call("delete", path, run)

    def put_chunks(self, path: str, chunks: Callable[[], Iterable[Any]]) -> None:
        """Uploads the buffers `chunks()` yields as one object (a multipart upload past one
        10 MiB part, two parts in flight: bounded memory); no object unless every chunk
        arrived. Each attempt calls `chunks()` afresh, so it may retry."""

        def run() -> None:
            with obstore.open_writer(self.inner, path, max_concurrency=2) as out:
                for chunk in chunks():
                    out.write(chunk)
                    self._add(_WRITTEN, _nbytes(chunk))

        self._call("put", path, run)


def _read_file(file: str) -> bytes | None:
    """A local folder's file as obstore's LocalStore reads it: None when it does not exist
    (a folder too); any other failure is a `_LocalReadError`, which `Store._call` retries."""
    try:
        with open(file, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as e:
        raise _LocalReadError(f"reading {file!r}: {e}") from e
