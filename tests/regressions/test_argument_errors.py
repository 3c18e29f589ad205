"""Regression (defect 7): bad arguments raised errors of the wrong class.

`DbReader.open(b"db", store)` said "no database at \"b'db'\"" (the path went through
`str()`), `DbReader.open(path, store, options=5)` raised a bare AttributeError, a path with
`..` a plain ValueError, and a falsy wrong-typed `options` (0, "") was silently replaced by
the defaults. Every public entry point now checks its database path through one function
(`slatedb_py.paths.DbPaths.of`) and its `options` through one function
(`slatedb_py.config.check_options`), before touching the store.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import PurePosixPath

import pytest
from obstore.store import MemoryStore

from slatedb_py import Db, DbReader, admin
from slatedb_py.config import CheckpointOptions, DbOptions, GcOptions, ReaderOptions
from slatedb_py.errors import InvalidArgumentError, InvalidTypeError
from slatedb_py.paths import DbPaths
from slatedb_py.store import Store

QUIET = DbOptions(flush_interval=None, compactor_enabled=False, gc_enabled=False)

BAD_PATH_TYPES = [b"db", bytearray(b"db"), None, 5, 1.5, PurePosixPath("db"), ["db"], object()]
BAD_PATH_VALUES = ["db/../other", "..", "./db", "db/.", "a/./b", "", "/", "///"]


@pytest.fixture
def env():
    """A store holding database "db" (with a checkpoint), so every call would otherwise work."""
    store = MemoryStore()
    with Db.open("db", store, QUIET) as db:
        db.put(b"k", b"v")
    cid = admin.create_checkpoint("db", store).id
    return store, cid


def _snapshot(store) -> list[tuple[str, int, object]]:
    return sorted((m.path, m.size, m.last_modified) for m in Store.resolve(store).list(""))


# Every public entry point that takes a database path: (name, call(store, cid, path)).
PATH_CALLS = [
    ("Db.open", lambda s, c, p: Db.open(p, s, QUIET)),
    ("Db.open_with_opts", lambda s, c, p: Db.open_with_opts(p, QUIET, s)),
    ("Db()", lambda s, c, p: Db(p, s, QUIET)),
    ("Db.refresh_checkpoint", lambda s, c, p: Db.refresh_checkpoint(p, s, c, timedelta(hours=1))),
    ("Db.delete_checkpoint", lambda s, c, p: Db.delete_checkpoint(p, s, c)),
    ("DbReader.open", lambda s, c, p: DbReader.open(p, s)),
    ("DbReader.open(checkpoint_id)", lambda s, c, p: DbReader.open(p, s, checkpoint_id=c)),
    ("DbReader()", lambda s, c, p: DbReader(p, s)),
    ("admin.create_checkpoint", lambda s, c, p: admin.create_checkpoint(p, s)),
    ("admin.list_checkpoints", lambda s, c, p: admin.list_checkpoints(p, s)),
    ("admin.run_gc_once", lambda s, c, p: admin.run_gc_once(p, s, GcOptions(min_age=timedelta(0)))),
    ("admin.create_clone(clone_path)", lambda s, c, p: admin.create_clone(p, "db", s, c)),
    ("admin.create_clone(parent_path)", lambda s, c, p: admin.create_clone("clone", p, s, c)),
    ("admin.restore_checkpoint", lambda s, c, p: admin.restore_checkpoint(p, s, c)),
]


def _check_refused(env, call, bad, exc) -> None:
    store, cid = env
    before = _snapshot(store)
    with pytest.raises(exc) as e:
        call(store, cid, bad)
    assert type(e.value) is exc, f"{type(e.value).__name__}: {e.value}"
    assert repr(bad)[:60] in str(e.value), str(e.value)
    assert _snapshot(store) == before, "a refused call wrote to the store"


@pytest.mark.parametrize("bad", BAD_PATH_TYPES, ids=repr)
@pytest.mark.parametrize(("name", "call"), PATH_CALLS, ids=[n for n, _ in PATH_CALLS])
def test_a_path_of_the_wrong_type_raises_invalid_type_error(env, name, call, bad) -> None:
    _check_refused(env, call, bad, InvalidTypeError)


@pytest.mark.parametrize("bad", BAD_PATH_VALUES, ids=repr)
@pytest.mark.parametrize(("name", "call"), PATH_CALLS, ids=[n for n, _ in PATH_CALLS])
def test_a_path_with_dot_segments_or_no_segments_raises_invalid_argument_error(
    env, name, call, bad
) -> None:
    _check_refused(env, call, bad, InvalidArgumentError)


# Every public `options=` parameter: (name, call(store, cid, options), the class it wants).
OPTIONS_CALLS = [
    ("Db.open", lambda s, c, o: Db.open("db", s, o)),
    ("Db.open(options=)", lambda s, c, o: Db.open("db", s, options=o)),
    ("Db.open_with_opts", lambda s, c, o: Db.open_with_opts("db", o, s)),
    ("Db()", lambda s, c, o: Db("db", s, o)),
    ("DbReader.open", lambda s, c, o: DbReader.open("db", s, options=o)),
    ("DbReader.open(checkpoint_id)", lambda s, c, o: DbReader.open("db", s, c, o)),
    ("DbReader()", lambda s, c, o: DbReader("db", s, None, o)),
    ("admin.create_checkpoint", lambda s, c, o: admin.create_checkpoint("db", s, o)),
    ("admin.run_gc_once", lambda s, c, o: admin.run_gc_once("db", s, o)),
]
BAD_OPTIONS = [5, 0, "", "fast", {}, {"flush_interval": None}, 1.5, True, False, object()]
WRONG_KIND = {
    "Db": ReaderOptions(),
    "DbReader": DbOptions(),
    "admin.create_checkpoint": GcOptions(),
    "admin.run_gc_once": CheckpointOptions(),
}


@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=repr)
@pytest.mark.parametrize(("name", "call"), OPTIONS_CALLS, ids=[n for n, _ in OPTIONS_CALLS])
def test_options_of_the_wrong_type_raise_invalid_type_error(env, name, call, bad) -> None:
    _check_refused(env, call, bad, InvalidTypeError)


@pytest.mark.parametrize(("name", "call"), OPTIONS_CALLS, ids=[n for n, _ in OPTIONS_CALLS])
def test_options_of_another_kind_raise_invalid_type_error(env, name, call) -> None:
    owner = name.split("(")[0]
    bad = WRONG_KIND[owner if owner.startswith("admin.") else owner.split(".")[0]]
    store, cid = env
    before = _snapshot(store)
    with pytest.raises(InvalidTypeError) as e:
        call(store, cid, bad)
    assert type(e.value) is InvalidTypeError
    assert type(bad).__name__ in str(e.value) and "options" in str(e.value)
    assert _snapshot(store) == before


@pytest.mark.parametrize("bad", [5, "", CheckpointOptions, GcOptions()], ids=repr)
def test_db_create_checkpoint_checks_options_before_flushing(bad) -> None:
    store = MemoryStore()
    with Db.open("db", store, QUIET) as db:
        db.put(b"k", b"v", await_durable=False)
        before = _snapshot(store)
        with pytest.raises(InvalidTypeError, match="options"):
            db.create_checkpoint(bad)
        assert _snapshot(store) == before, "the refused call flushed the memtable first"


@pytest.mark.parametrize("bad", [5, b"n", uuid.uuid4()], ids=repr)
def test_list_checkpoints_name_must_be_a_str(env, bad) -> None:
    store, _ = env
    with pytest.raises(InvalidTypeError) as e:
        admin.list_checkpoints("db", store, bad)
    assert type(e.value) is InvalidTypeError and repr(bad) in str(e.value)


def test_the_reported_cases(env) -> None:
    store, _ = env
    for bad in (b"db", None):
        with pytest.raises(InvalidTypeError, match="database path must be a str"):
            DbReader.open(bad, store)
    with pytest.raises(InvalidTypeError, match="options"):
        DbReader.open("db", store, options=5)
    with pytest.raises(InvalidArgumentError) as e:
        Db.open("db/../x", store)
    assert isinstance(e.value, ValueError)  # still what a Python user expects


def test_db_paths_of_is_the_one_check() -> None:
    assert DbPaths.of("/my/test/db").root == "my/test/db"
    assert DbPaths.of("my//test/db/").root == "my/test/db"
    assert DbPaths.of("a.b/..c/d..").root == "a.b/..c/d.."  # dots inside a segment are fine
    with pytest.raises(InvalidTypeError):
        DbPaths.of(b"db")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="''"):
        DbPaths.of("")
