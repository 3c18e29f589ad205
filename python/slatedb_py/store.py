"""The object-store layer: the only module that imports obstore.

Accepts any obstore store (MemoryStore, LocalStore, S3Store, GCSStore, AzureStore) or a URL
(``memory:///``, ``file:///``, ``s3://bucket``...). Offers exactly what the engine needs:
whole and ranged reads (several ranges per call), plain puts, put-if-absent (``mode="create"``,
our only compare-and-set primitive: LocalStore and some S3 services cannot update
conditionally), uploads in pieces (`Store.upload`), listing and deletes. Transient failures
are retried with exponential backoff; every obstore error leaves as a ``slatedb_py.errors``
class naming the object.

Uploads in pieces (big SSTs without big memory): an object smaller than `Store.part_size`
goes with one PUT; a larger one as a multipart upload of `part_size` parts, a few in flight.
The object appears only when the upload completes. An upload that fails is aborted. One cut
short by a crash leaves, on S3, an incomplete multipart upload: invisible to LIST and to
reads, it is cleared by the bucket's lifecycle rule (AbortIncompleteMultipartUpload; obstore
can neither list nor abort another process's uploads); in a local folder, a staging file
``<key>#<n>`` that obstore hides from listings, which the garbage collector removes
(`Store.leftovers`); in memory, nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

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
from slatedb_py.local_folder import (
    LocalReadError,
    file_of,
    read_file,
    remove_staging_file,
    root_of,
    staging_files,
)
from slatedb_py.local_folder import ObjectMeta as ObjectMeta  # listings return it
from slatedb_py.loop_guard import WouldBlock, inline
from slatedb_py.metrics import INDEX, STORE_FOLDERS, Metrics, folder_of
from slatedb_py.upload import Upload

if TYPE_CHECKING:  # the native zero-copy buffers' type
    from typing_extensions import Buffer

_log = logging.getLogger("slatedb_py.store")

T = TypeVar("T")


# Errors worth another try: the store or the network hiccupped.
_TRANSIENT: tuple[type[BaseException], ...] = (
    obx.GenericError,
    obx.JoinError,
    ConnectionError,
    TimeoutError,
    LocalReadError,
)

_KIND_COUNTER = {
    what: INDEX[f"store_{what.replace('-', '_')}_requests_total"]
    for what in ("get", "get_ranges", "put", "put-if-absent", "list", "delete")
}
_BY_FOLDER = {
    (what, folder): INDEX[f"store_requests_{folder}_{what.replace('-', '_')}_total"]
    for what in _KIND_COUNTER
    for folder in STORE_FOLDERS
}
# Refusals no retry changes: of access (then the store is unavailable to us) or of the request.
_REFUSED = (obx.PermissionDeniedError, obx.UnauthenticatedError)
_INVALID = (obx.NotSupportedError, obx.InvalidPathError)

# An upload's part size: what memory holds per part (about three at once: two uploading,
# one being written), and the size from which an object is a multipart upload (S3 wants
# parts of at least 5 MiB). Bigger parts cost fewer requests and more memory: at 16 MiB a
# compactor writing 256 MiB outputs peaked near 190 MB, at 8 MiB near 160 MB. Parts uploading
# at once: enough to keep the network busy while the next part is built.
PART_SIZE = 8 * 1024 * 1024
_PARTS_IN_FLIGHT = 2

_RETRIES, _FAILURES = INDEX["store_retries_total"], INDEX["store_failures_total"]
_READ, _WRITTEN = INDEX["store_read_bytes_total"], INDEX["store_written_bytes_total"]


def _nbytes(data: Any) -> int:
    return len(data) if isinstance(data, bytes) else memoryview(data).nbytes


def _refused(what: str, path: str, e: Exception) -> Exception:
    if isinstance(e, _REFUSED):
        return UnavailableError(f"{what} {path!r} was refused by the store: {e}")
    return InvalidArgumentError(f"{what} {path!r}: {e}")


class Store:
    """A retrying, error-translating wrapper over one obstore store."""

    def __init__(
        self,
        store: Any,
        *,
        max_retries: int = 6,
        base_delay_s: float = 0.05,
        sleep: Callable[[float], None] = sleep_s,
        part_size: int = PART_SIZE,
    ) -> None:
        if not isinstance(part_size, int) or part_size < 1:
            raise InvalidArgumentError(f"part_size must be a positive int, not {part_size!r}")
        self.inner = store
        self.part_size = part_size
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
        return root_of(self.inner) if type(self) is Store else None

    @cached_property
    def near(self) -> bool:
        """Whether requests answer without a network round trip (a local folder, memory):
        the asyncio twin then uploads WAL objects on its event loop (`aio._bridge`)."""
        return self.local_root is not None or (
            type(self) is Store and type(self.inner).__name__ == "MemoryStore"
        )

    def _call(self, what: str, path: str, fn: Callable[[], T]) -> T:
        attempt = 0
        # No counter: `fn` counts its own requests (an upload, `Upload`).
        counter = _KIND_COUNTER.get(what)
        by_folder = None if counter is None else _BY_FOLDER[what, folder_of(path)]
        while True:
            if counter is not None and by_folder is not None:
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
                if inline.on:  # an event loop must not sleep: the caller retries in a thread
                    raise WouldBlock from e
                self._add(_RETRIES, 1)
                delay = min(1.0, self.base_delay_s * 2 ** (attempt - 1))
                _log.warning(
                    "%s %r failed (attempt %d of %d), retrying in %.2f s: %s",
                    what, path, attempt, self.max_retries + 1, delay, e,
                )  # fmt: skip
                self._sleep(delay)
            except (*_REFUSED, *_INVALID) as e:
                raise _refused(what, path, e) from e

    def get(self, path: str) -> bytes | None:
        """The whole object, or None when it does not exist.

        In a local folder (`local_root`) the file is read with one `open`: a store call costs
        more than reading a small object (70 us against 20 us for a 23 KB WAL object, a
        third of a change stream of 100-row objects). The outcome is the store's: no file
        (or a folder) is None, and another failure is retried, then an `UnavailableError`.
        """
        root = self.local_root
        file = None if root is None else file_of(root, path)

        def run() -> bytes | None:
            if file is not None:
                return read_file(file)
            try:
                return bytes(obstore.get(self.inner, path).bytes())
            except FileNotFoundError:
                return None

        data = self._call("get", path, run)
        if data is not None:
            self._add(_READ, len(data))
        return data

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

    def leftovers(self, prefix: str) -> list[ObjectMeta]:
        """What uploads cut short by a crash left directly under `prefix`, which listings
        do not show: in a local folder, obstore's staging files ``<key>#<n>`` (their time is
        their last write). Elsewhere none: S3's incomplete multipart uploads are no objects
        (module docstring), and memory goes with the process."""
        root = root_of(self.inner)
        return [] if root is None else staging_files(root, prefix)

    def delete_leftover(self, path: str) -> None:
        """Removes a leftover `leftovers` listed (obstore refuses such names)."""
        root = root_of(self.inner)
        if root is None or not remove_staging_file(root, path):
            raise InvalidArgumentError(f"{path!r} is not an upload's leftover in a local folder")
        self._add2(_KIND_COUNTER["delete"], 1, _BY_FOLDER["delete", folder_of(path)], 1)

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

    @contextmanager
    def upload(self, path: str) -> Iterator[Upload]:
        """Writes `path` in pieces (`Upload.write`) inside the block: one PUT when they come
        to less than `part_size`, else a multipart upload (module docstring). The object
        appears when the block ends; if the block raises, the upload is aborted and nothing
        appears. Not retried (the pieces are gone once sent): a failure is an
        `UnavailableError` naming the object (obstore retries each request itself)."""
        try:
            with self._upload(path) as up:
                yield up
        except _TRANSIENT as e:
            self._add(_FAILURES, 1)
            raise UnavailableError(f"upload of {path!r} failed: {e}") from e
        except (*_REFUSED, *_INVALID) as e:
            raise _refused("upload", path, e) from e

    @contextmanager
    def _upload(self, path: str) -> Iterator[Upload]:
        """`upload`, its failures as obstore raised them."""
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("upload %s", path)
        part = self.part_size
        out = obstore.open_writer(
            self.inner, path, buffer_size=part, max_concurrency=_PARTS_IN_FLIGHT
        )
        up = Upload(out, path, part, self.metrics)
        try:
            yield up
        except BaseException as e:
            try:
                out.__exit__(type(e), e, e.__traceback__)  # obstore aborts the upload
                up.ended(aborted=True)
            except Exception as abort_error:  # the failure that got here says more
                _log.warning(
                    "aborting the upload of %r failed: %s (on S3 the bucket's lifecycle "
                    "rule clears an incomplete multipart upload)", path, abort_error,
                )  # fmt: skip
            raise
        out.close()
        up.ended(aborted=False)

    def put_chunks(self, path: str, chunks: Callable[[], Iterable[Any]]) -> None:
        """Uploads the buffers `chunks()` yields as one object (`upload`): bounded memory,
        no object unless every chunk arrived. Each attempt calls `chunks()` afresh, so it
        may retry."""

        def run() -> None:
            with self._upload(path) as up:
                for chunk in chunks():
                    up.write(chunk)

        self._call("upload", path, run)
