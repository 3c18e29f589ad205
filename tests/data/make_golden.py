#!/usr/bin/env python3
"""Write the golden SlateDB 0.17.0 fixtures under tests/data/golden/ (see tests/data/README.md).

Usage (with a virtualenv that has the *real* binding, ``pip install slatedb==0.17.0``)::

    python tests/data/make_golden.py [OUTDIR] [--only NAME ...]   # write fixtures
    python tests/data/make_golden.py [OUTDIR] --verify              # check them (stdlib only)

OUTDIR defaults to ``tests/data/golden`` next to this file.  Every fixture is written as::

    OUTDIR/<name>/db/...           the database exactly as 0.17.0 left it
    OUTDIR/<name>/expected.json    what 0.17.0 reads back (computed on a throw-away copy)

Keys and values come from a fixed random seed, so two runs write the same logical content;
wall-clock times (create_ts/expire_ts), ULIDs and the exact grouping of the first WAL file
may differ from run to run.  ``--verify`` needs nothing but the standard library: it parses the
10-byte footer and the SsTableInfo flatbuffer of every SST, checks CRCs, decodes index and filter
blocks when the codec is one Python can decompress (none, zlib) and prints a per-database table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import struct
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "golden")

LONG_TTL_MS = 10 * 365 * 24 * 3600 * 1000  # "long" TTL: 10 years, so tests do not rot after a day
EXPIRE_AT_MS = 4_102_444_800_000  # absolute expiry 2100-01-01T00:00:00Z (deterministic expire_ts)
SHORT_TTL_MS = 1  # expires (almost) immediately: exercises expired rows

WORDS = (
    b"slate lsm tree object store manifest wal sst block index filter bloom compaction "
    b"sorted run level zero memtable flush durable epoch fence checkpoint clone reader "
    b"writer snapshot sequence timestamp value key tombstone merge operand alpha beta gamma"
).split()


# ---------------------------------------------------------------------------------------------
# deterministic data
# ---------------------------------------------------------------------------------------------


class Gen:
    """Deterministic key/value generator (one per fixture, seeded)."""

    PREFIXES = [b"user:", b"acct/", b"\x00\x01", b"\xff\xfe\xfd", b"item-", b"k", b"zz", b"ord#"]

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.used: set[bytes] = set()

    def key(self) -> bytes:
        r = self.rng
        while True:
            kind = r.random()
            n = r.randint(12, 20)
            if kind < 0.55:  # shared prefix + random tail (prefix compression, restarts)
                p = r.choice(self.PREFIXES)
                k = p + bytes(r.getrandbits(8) for _ in range(max(1, n - len(p))))
            elif kind < 0.8:  # printable, many shared bytes with neighbours
                k = b"key-%012d" % r.randrange(10**12)
                k = k[:n] if len(k) > n else k
            else:  # fully random bytes
                k = bytes(r.getrandbits(8) for _ in range(n))
            if k not in self.used:
                self.used.add(k)
                return k

    def special_keys(self) -> list[bytes]:
        """Edge-case keys: prefixes of one another, all-0x00, all-0xff, 1-byte."""
        ks = [
            b"\x00" * 16,
            b"\xff" * 16,
            b"prefix",
            b"prefix\x00",
            b"prefix\x00\x00",
            b"prefixA",
            b"A",
            b"\x7f" * 17,
        ]
        out = []
        for k in ks:
            if k not in self.used:
                self.used.add(k)
                out.append(k)
        return out

    def value(self) -> bytes:
        r = self.rng
        x = r.random()
        if x < 0.08:
            return b""
        if x < 0.68:
            n = r.randint(1, 24)
        elif x < 0.94:
            n = r.randint(25, 100)
        else:
            n = r.randint(101, 300)
        if r.random() < 0.65:  # text-like: compressible
            out = b""
            while len(out) < n:
                out += r.choice(WORDS) + b" "
            return out[:n]
        return bytes(r.getrandbits(8) for _ in range(n))


# ---------------------------------------------------------------------------------------------
# writing through the real binding, with a model of what must be visible
# ---------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self):
        self.model: dict[bytes, bytes | None] = {}  # expected visible value (None = absent)
        self.order: list[bytes] = []  # every key ever written, first-write order
        self.ttl_keys: set[bytes] = set()  # written (put/merge) with a long TTL or EXPIRE_AT
        self.expired_keys: set[bytes] = set()  # latest write had a 1 ms TTL
        self.deleted_keys: set[bytes] = set()  # deleted at least once
        self.resurrected: set[bytes] = set()  # put again after a delete
        self.ops = {"put": 0, "delete": 0, "merge": 0, "batch": 0, "batch_rows": 0}

    def _touch(self, k: bytes):
        if k not in self.model:
            self.order.append(k)
            self.model[k] = None

    def on_put(self, k, v, ttl):
        self._touch(k)
        if k in self.deleted_keys and self.model[k] is None:
            self.resurrected.add(k)
        self.model[k] = v
        self._ttl(k, ttl)

    def on_delete(self, k):
        self._touch(k)
        self.model[k] = None
        self.deleted_keys.add(k)
        self.expired_keys.discard(k)

    def on_merge(self, k, op, ttl):
        self._touch(k)
        self.model[k] = (self.model[k] or b"") + op
        self._ttl(k, ttl)

    def _ttl(self, k, ttl):
        if ttl is None:
            self.expired_keys.discard(k)
        elif ttl[0] == "after" and ttl[1] == SHORT_TTL_MS:
            self.expired_keys.add(k)
        else:
            self.ttl_keys.add(k)
            self.expired_keys.discard(k)


def ttl_obj(u, ttl):
    kind, ms = ttl
    return u.Ttl.EXPIRE_AFTER_MILLIS(ms) if kind == "after" else u.Ttl.EXPIRE_AT_MILLIS(ms)


class Writer:
    def __init__(self, u, db, rec: Recorder):
        self.u, self.db, self.rec = u, db, rec
        self.log: list[str] = []

    async def put(self, k, v, ttl=None):
        u = self.u
        if ttl is None:
            await self.db.put(k, v)
        else:
            await self.db.put_with_options(
                k, v, u.PutOptions(ttl=ttl_obj(u, ttl)), u.WriteOptions()
            )
        self.rec.on_put(k, v, ttl)
        self.rec.ops["put"] += 1

    async def delete(self, k):
        await self.db.delete(k)
        self.rec.on_delete(k)
        self.rec.ops["delete"] += 1

    async def merge(self, k, op, ttl=None):
        u = self.u
        if ttl is None:
            await self.db.merge(k, op)
        else:
            await self.db.merge_with_options(
                k, op, u.MergeOptions(ttl=ttl_obj(u, ttl)), u.WriteOptions()
            )
        self.rec.on_merge(k, op, ttl)
        self.rec.ops["merge"] += 1

    async def batch(self, ops):
        """ops: list of ("put", k, v, ttl) | ("delete", k) | ("merge", k, op, ttl)."""
        u = self.u
        wb = u.WriteBatch()
        for op in ops:
            if op[0] == "put":
                _, k, v, ttl = op
                if ttl is None:
                    wb.put(k, v)
                else:
                    wb.put_with_options(k, v, u.PutOptions(ttl=ttl_obj(u, ttl)))
            elif op[0] == "delete":
                wb.delete(op[1])
            else:
                _, k, v, ttl = op
                if ttl is None:
                    wb.merge(k, v)
                else:
                    wb.merge_with_options(k, v, u.MergeOptions(ttl=ttl_obj(u, ttl)))
        await self.db.write(wb)
        for op in ops:
            if op[0] == "put":
                self.rec.on_put(op[1], op[2], op[3])
            elif op[0] == "delete":
                self.rec.on_delete(op[1])
            else:
                self.rec.on_merge(op[1], op[2], op[3])
        self.rec.ops["batch"] += 1
        self.rec.ops["batch_rows"] += len(ops)

    async def flush_wal(self, why=""):
        await self.db.flush_with_options(self.u.FlushOptions(flush_type=self.u.FlushType.WAL))
        self.log.append("flush WAL" + (f" ({why})" if why else ""))

    async def flush_memtable(self, why=""):
        await self.db.flush_with_options(self.u.FlushOptions(flush_type=self.u.FlushType.MEM_TABLE))
        self.log.append("flush MEM_TABLE -> L0" + (f" ({why})" if why else ""))


def base_settings(u, *, codec=None, compactor=False):
    s = u.Settings.default()
    # A long flush interval: WAL files are cut only by our explicit flushes (deterministic
    # grouping); everything else stays at the 0.17.0 defaults.
    s.set("flush_interval", json.dumps("1h"))
    s.set("garbage_collector_options", "null")
    if compactor:
        s.set("compactor_options.poll_interval", json.dumps("100ms"))
        s.set("compactor_options.worker.compactions_poll_interval", json.dumps("100ms"))
        s.set(
            "compactor_options.scheduler_options",
            json.dumps({"min_compaction_sources": "2", "max_compaction_sources": "8"}),
        )
    else:
        s.set("compactor_options", "null")
    if codec is not None:
        s.set("compression_codec", json.dumps(codec))
    return s


async def open_db(u, path, settings, *, seed, block_size=None, merge_op=None):
    b = u.DbBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///"))
    b.with_settings(settings)
    b.with_seed(seed)
    if block_size is not None:
        b.with_sst_block_size(block_size)
    if merge_op is not None:
        b.with_merge_operator(merge_op)
    db = await b.build()
    # The WAL flush ticker fires once right after open; let it pass on an empty buffer so the
    # first WAL file holds what we decide (otherwise it may catch just the first row).
    await asyncio.sleep(0.3)
    return db


async def close_keep_wal_tail(u, db):
    # Plain db.shutdown() flushes the memtable to a new L0 SST (observed in 0.17.0). Closing
    # with flush_type=WAL only makes the WAL durable and leaves the tail unflushed.
    await db.shutdown_with_options(u.CloseOptions(flush_type=u.FlushType.WAL))


def make_concat_operator(u):
    class Concat(u.MergeOperator):
        def merge(self, key, existing_value, operand):
            return (existing_value or b"") + operand

    return Concat()


# ---------------------------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------------------------


async def workload_standard(u, db, g: Gen, rec: Recorder) -> Writer:
    """Phase A -> L0 #1 (>= 1000 rows, bloom filter); phase B -> L0 #2 (< 1000 rows, no
    filter); phase C -> WAL tail that is never flushed to L0."""
    w = Writer(u, db, rec)
    r = g.rng
    long_ttl = ("after", LONG_TTL_MS)
    at_ttl = ("at", EXPIRE_AT_MS)
    short_ttl = ("after", SHORT_TTL_MS)

    def pick(pool, n):
        return r.sample(sorted(pool), n)

    # ---- phase A: 1200 fresh keys (+ edge-case keys)
    a_keys = g.special_keys() + [g.key() for _ in range(1200)]
    i = 0
    ops_done = 0
    wal_cut = False
    while i < len(a_keys):
        if r.random() < 0.03:  # multi-row batch of fresh puts
            n = r.randint(3, 12)
            chunk = a_keys[i : i + n]
            i += len(chunk)
            await w.batch(
                [("put", k, g.value(), long_ttl if r.random() < 0.2 else None) for k in chunk]
            )
        else:
            k = a_keys[i]
            i += 1
            x = r.random()
            ttl = long_ttl if x < 0.05 else at_ttl if x < 0.06 else None
            await w.put(k, g.value(), ttl)
        ops_done += 1
        if not wal_cut and i >= 1100:
            await w.flush_wal("phase A, first ~1100 rows: one WAL SST > 64 KiB")
            wal_cut = True
    for k in pick(set(a_keys[8:]), 3):  # short TTL, expired before the L0 flush
        await w.put(k, g.value(), short_ttl)
    for k in pick(set(a_keys), 60):  # second version in the same memtable
        await w.put(k, g.value())
    for k in pick(set(a_keys) - rec.expired_keys, 30):
        await w.delete(k)
    await asyncio.sleep(0.05)
    await w.flush_memtable("end of phase A: L0 #1")

    # ---- phase B: 250 new keys, overwrites, deletes, resurrections, batches
    b_new = [g.key() for _ in range(250)]
    live_a = [k for k in a_keys if rec.model[k] is not None and k not in rec.expired_keys]
    dead_a = [k for k in a_keys if rec.model[k] is None and k not in rec.expired_keys]
    actions = (
        [("new", k) for k in b_new]
        + [("over", k) for k in r.sample(live_a, 120)]
        + [("ttl", k) for k in r.sample(live_a, 20)]
        + [("del", k) for k in r.sample(live_a, 60)]
        + [("del", g.key()) for _ in range(5)]  # tombstones for never-written keys
        + [("res", k) for k in dead_a[:10]]
    )
    r.shuffle(actions)
    for n, (what, k) in enumerate(actions):
        if what in ("new", "res"):
            await w.put(k, g.value())
        elif what == "over":
            await w.put(k, b"" if r.random() < 0.1 else g.value())
        elif what == "ttl":
            await w.put(k, g.value(), long_ttl)
        else:
            await w.delete(k)
        if n == len(actions) // 2:
            await w.flush_wal("middle of phase B")
        if n % 90 == 45:  # mixed batches
            ks = r.sample(b_new, 4)
            await w.batch(
                [
                    ("put", ks[0], g.value(), None),
                    ("delete", ks[1]),
                    ("put", ks[2], g.value(), long_ttl),
                    ("put", ks[3], b"", None),
                ]
            )
    # a batch that writes the same key twice (last one wins) and put+delete of one key
    k1, k2 = g.key(), g.key()
    await w.batch(
        [
            ("put", k1, b"first", None),
            ("put", k1, b"second", None),
            ("put", k2, b"doomed", None),
            ("delete", k2),
        ]
    )
    await w.flush_memtable("end of phase B: L0 #2")

    # ---- phase C: the WAL tail (3 WAL SSTs, never flushed to L0)
    c_new = [g.key() for _ in range(150)]
    live = sorted(k for k, v in rec.model.items() if v is not None and k not in rec.expired_keys)
    dead = sorted(k for k, v in rec.model.items() if v is None and k not in rec.expired_keys)
    actions = (
        [("new", k) for k in c_new]
        + [("over", k) for k in r.sample(live, 60)]
        + [("ttl", k) for k in r.sample(live, 15)]
        + [("del", k) for k in r.sample(live, 30)]
        + [("res", k) for k in r.sample(dead, 2)]
        + [("short", k) for k in r.sample(c_new, 3)]
    )
    r.shuffle(actions)
    cuts = {len(actions) // 3, 2 * len(actions) // 3}
    for n, (what, k) in enumerate(actions):
        if what in ("new", "res", "over"):
            await w.put(k, b"" if (what == "over" and r.random() < 0.1) else g.value())
        elif what == "ttl":
            await w.put(k, g.value(), long_ttl if r.random() < 0.8 else at_ttl)
        elif what == "short":
            await w.put(k, g.value(), short_ttl)
        else:
            await w.delete(k)
        if n % 70 == 35:
            ks = r.sample(c_new, 3)
            await w.batch(
                [
                    ("put", ks[0], g.value(), None),
                    ("put", ks[1], g.value(), long_ttl),
                    ("delete", ks[2]),
                ]
            )
        if n in cuts:
            await w.flush_wal("phase C (tail)")
    await w.flush_wal("end of phase C (tail)")
    await asyncio.sleep(0.05)
    return w


async def workload_merge(u, db, g: Gen, rec: Recorder) -> Writer:
    """Concatenation merge operator: base values + operands in L0 and in the WAL tail."""
    w = Writer(u, db, rec)
    r = g.rng
    long_ttl = ("after", LONG_TTL_MS)
    base = [g.key() for _ in range(150)]
    merge_only = [g.key() for _ in range(80)]
    for k in base:
        await w.put(k, g.value())
    for k in r.sample(base, 100):
        for j in range(r.randint(1, 3)):
            await w.merge(k, b"+%d" % j)
    for k in merge_only:
        for j in range(r.randint(1, 3)):
            await w.merge(k, b"op%d," % j)
    await w.flush_wal("phase A, middle")
    for k in r.sample(merge_only, 5):  # merge with a TTL
        await w.merge(k, b"ttl,", long_ttl)
    # batches: two merges of one key in one batch, put+merge, delete+merge
    for n in range(6):
        ks = r.sample(base, 3)
        await w.batch(
            [
                ("merge", ks[0], b"b%da," % n, None),
                ("merge", ks[0], b"b%db," % n, None),
                ("put", ks[1], b"reset%d" % n, None),
                ("merge", ks[1], b"+m", None),
                ("delete", ks[2]),
                ("merge", ks[2], b"after-delete", None),
            ]
        )
    for k in r.sample(base, 10):  # delete, then merge in a later batch
        await w.delete(k)
        await w.merge(k, b"fresh")
    await w.flush_memtable("end of phase A: L0 #1")
    # ---- tail
    tail_new = [g.key() for _ in range(40)]
    for k in r.sample(base + merge_only, 60):
        await w.merge(k, b"|tail")
    for k in tail_new:
        await w.merge(k, b"t0")
    await w.flush_wal("tail 1")
    for k in r.sample(tail_new, 20):
        await w.merge(k, b"t1")
    for k in r.sample(base, 10):
        await w.put(k, b"overwritten-in-tail")
    for k in r.sample(merge_only, 5):
        await w.delete(k)
    for _n in range(3):
        ks = r.sample(tail_new, 2)
        await w.batch(
            [
                ("merge", ks[0], b"x", None),
                ("merge", ks[0], b"y", None),
                ("merge", ks[1], b"z", long_ttl),
            ]
        )
    await w.flush_wal("tail 2")
    return w


async def wait_for_sorted_run(u, path, timeout_s=180.0):
    adm = u.AdminBuilder(path.lstrip("/"), u.ObjectStore.resolve("file:///")).build()
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        m = await adm.read_manifest(None)
        if m is not None and m.compacted and not m.l0:
            return time.time() - t0
        await asyncio.sleep(0.2)
    raise TimeoutError("compactor did not produce a sorted run in %.0fs" % timeout_s)


# ---------------------------------------------------------------------------------------------
# reading back with 0.17.0 (always on a copy: opening a Db writes a manifest and a WAL fence,
# and a DbReader writes checkpoint manifests)
# ---------------------------------------------------------------------------------------------


def to_jsonable(o):
    import enum

    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, enum.Enum):
        return o.name
    if isinstance(o, (list, tuple)):
        return [to_jsonable(x) for x in o]
    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if hasattr(o, "__dict__"):
        d = {k: to_jsonable(v) for k, v in vars(o).items() if not k.startswith("_")}
        if not d:
            return repr(o)
        return d
    return repr(o)


def object_listing(db_dir):
    out = {}
    for root, _dirs, files in os.walk(db_dir):
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, db_dir)] = os.path.getsize(p)
    return dict(sorted(out.items()))


async def read_back(u, db_dir, settings, rec: Recorder, *, merge=False, block_size=None):
    store = u.ObjectStore.resolve("file:///")
    tmp = tempfile.mkdtemp(prefix="golden-read-")
    try:
        c1 = os.path.join(tmp, "c1")
        c2 = os.path.join(tmp, "c2")
        shutil.copytree(db_dir, c1)
        shutil.copytree(db_dir, c2)
        # -- manifest (admin read only) and WAL rows, before anything opens the copy
        adm = u.AdminBuilder(c1.lstrip("/"), store).build()
        man = await adm.read_manifest(None)
        manifest = to_jsonable(man)
        wr = u.SlateDbWalReader(c1.lstrip("/"), store)
        it = wr.iterator(1)
        if asyncio.iscoroutine(it):
            it = await it
        wal_rows: dict[int, list] = {}
        wal_ids = [int(f.split(".")[0]) for f in os.listdir(os.path.join(c1, "wal"))]
        last_id = max(wal_ids)
        # The iterator tails the WAL: after the last file, next() waits for new files instead
        # of returning None, so stop once the newest file on disk has been consumed.
        while True:
            batch = await asyncio.wait_for(it.next(), 60)
            if batch is None:
                break
            wal_rows.setdefault(batch.last_consumed_wal_file_id, []).extend(batch.rows)
            if batch.last_consumed_wal_file_id >= last_id:
                break
        # -- Db (replays the WAL tail)
        b = u.DbBuilder(c1.lstrip("/"), store)
        b.with_settings(settings)
        if block_size is not None:
            b.with_sst_block_size(block_size)
        if merge:
            b.with_merge_operator(make_concat_operator(u))
        db = await b.build()
        got, meta = {}, {}
        for k in rec.order:
            v = await db.get(k)
            got[k] = v
            kv = await db.get_key_value(k)
            if (kv is None) != (v is None) or (kv is not None and kv.value != v):
                raise AssertionError("get and get_key_value disagree for %s" % k.hex())
            if kv is not None and kv.expire_ts is not None:
                meta[k] = {"seq": kv.seq, "create_ts": kv.create_ts, "expire_ts": kv.expire_ts}
        scan = []
        itr = await db.scan(
            u.KeyRange(start=None, start_inclusive=False, end=None, end_inclusive=False)
        )
        while True:
            page = await itr.next_batch(500)
            if not page:
                break
            scan.extend((kv.key, kv.value) for kv in page)
        await db.shutdown_with_options(u.CloseOptions(flush_type=u.FlushType.WAL))
        # -- DbReader on the second copy
        rb = u.DbReaderBuilder(c2.lstrip("/"), store)
        if merge:
            rb.with_merge_operator(make_concat_operator(u))
        rd = await rb.build()
        reader_diff = []
        for k in rec.order:
            v = await rd.get(k)
            if v != got[k]:
                reader_diff.append(k)
        await rd.shutdown()
        return manifest, wal_rows, got, meta, scan, reader_diff
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def hexs(ks):
    return sorted(k.hex() for k in ks)


def row_json(r):
    return {
        "kind": r.kind.name,
        "key": r.key.hex(),
        "value": None if r.value is None else r.value.hex(),
        "seq": r.seq,
        "create_ts": r.create_ts,
        "expire_ts": r.expire_ts,
    }


async def finish_fixture(
    u,
    name,
    out_dir,
    db_dir,
    settings,
    rec,
    w,
    *,
    codec,
    notes,
    merge=False,
    block_size=None,
    block_size_name="4 KiB (default)",
    extra=None,
):
    # drop anything that is not a DB object (0.17.0 on a local folder leaves none as far as we
    # have seen, but be safe: staging/temp files of the local object store start with '.')
    for root, _dirs, files in os.walk(db_dir):
        for f in files:
            if f.startswith(".") or f.endswith((".tmp", ".lock")):
                notes.append(
                    "removed non-DB file %s" % os.path.relpath(os.path.join(root, f), db_dir)
                )
                os.remove(os.path.join(root, f))
    objects = object_listing(db_dir)
    manifest, wal_rows, got, meta, scan, reader_diff = await read_back(
        u, db_dir, settings, rec, merge=merge, block_size=block_size
    )
    if object_listing(db_dir) != objects:
        raise AssertionError("reading back modified the fixture")

    mism = [k for k in rec.order if k not in rec.expired_keys and got[k] != rec.model[k]]
    if mism:
        notes.append(
            "MODEL MISMATCH (0.17.0 differs from the write model) for %d keys: %s"
            % (len(mism), hexs(mism)[:20])
        )
    exp_visible = [k for k in rec.expired_keys if got[k] is not None]
    if rec.expired_keys:
        notes.append(
            "%d key(s) whose latest write had a 1 ms TTL; 0.17.0 get() returned a "
            "value for %d of them (see expired_keys / keys)"
            % (len(rec.expired_keys), len(exp_visible))
        )
    live = sorted((k, v) for k, v in got.items() if v is not None)
    if scan != live:
        notes.append(
            "scan() differs from get(): scan has %d rows, get has %d non-null"
            % (len(scan), len(live))
        )
    if reader_diff:
        notes.append(
            "DbReader get() differs from Db get() for %d keys: %s"
            % (len(reader_diff), hexs(reader_diff)[:20])
        )
    else:
        notes.append("DbReader and Db agree on every key")

    replay_after = manifest["replay_after_wal_id"]
    last_l0_seq = manifest["last_l0_seq"]
    wal_ids = sorted(int(p.split("/")[1].split(".")[0]) for p in objects if p.startswith("wal/"))
    wal_files = []
    for wid in wal_ids:
        rows = wal_rows.get(wid, [])
        entry = {
            "id": wid,
            "file": "wal/%020d.sst" % wid,
            "size": objects["wal/%020d.sst" % wid],
            "fence": objects["wal/%020d.sst" % wid] == 0,
            "rows": len(rows),
            "first_seq": rows[0].seq if rows else None,
            "last_seq": rows[-1].seq if rows else None,
            # replayed on open = id > replay_after_wal_id; rows with seq <= last_l0_seq are
            # skipped by replay (already in L0), the rest are the unflushed tail
            "replayed_on_open": wid > replay_after,
            "rows_above_last_l0_seq": sum(1 for x in rows if x.seq > last_l0_seq),
            "unflushed_tail": any(x.seq > last_l0_seq for x in rows),
        }
        if wid > replay_after:
            entry["row_list"] = [row_json(x) for x in rows]
        wal_files.append(entry)
    l0_ids = [v["sst"]["id"]["value"] for v in manifest["l0"]]
    sr_ids = [v["sst"]["id"]["value"] for sr in manifest["compacted"] for v in sr["sst_views"]]
    compacted_files = []
    for p, size in objects.items():
        if p.startswith("compacted/"):
            ulid = p.split("/")[1].split(".")[0]
            compacted_files.append(
                {
                    "file": p,
                    "size": size,
                    "role": "L0"
                    if ulid in l0_ids
                    else "sorted_run"
                    if ulid in sr_ids
                    else "unreferenced (compacted away; GC disabled)",
                }
            )

    expected = {
        "fixture": name,
        "binding": "slatedb 0.17.0 (PyPI), module slatedb.uniffi",
        "db_dir": "db",
        "codec": codec,
        "sst_block_size": block_size_name,
        "merge_operator": "concatenate (existing or b'') + operand" if merge else None,
        "settings": json.loads(settings.to_json_string()),
        "notes": notes,
        "write_log": w.log,
        "op_counts": rec.ops,
        "keys": {k.hex(): (None if got[k] is None else got[k].hex()) for k in sorted(rec.order)},
        "model_keys_mismatch": hexs(mism),
        "ttl_keys": hexs(rec.ttl_keys),
        "ttl_rows": {k.hex(): v for k, v in sorted(meta.items())},
        "expired_keys": hexs(rec.expired_keys),
        "deleted_keys": hexs(rec.deleted_keys),
        "deleted_at_end": hexs(k for k in rec.deleted_keys if rec.model[k] is None),
        "resurrected_keys": hexs(rec.resurrected),
        "live_key_count": len(live),
        "manifest": manifest,
        "wal_files": wal_files,
        "compacted_files": compacted_files,
        "objects": objects,
    }
    if extra:
        expected.update(extra)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0, separators=(",", ":"))
        f.write("\n")
    print(
        "%-14s keys=%d live=%d L0=%d SR=%d wal=%d tail=%d objects=%d"
        % (
            name,
            len(rec.order),
            len(live),
            len(l0_ids),
            len(manifest["compacted"]),
            len(wal_files),
            sum(1 for x in wal_files if x["unflushed_tail"]),
            len(objects),
        )
    )


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

CODECS = {"none": None, "snappy": "Snappy", "zlib": "Zlib", "lz4": "Lz4", "zstd": "Zstd"}
SEED_STANDARD = 17


def fresh_dirs(outdir, name):
    out_dir = os.path.join(outdir, name)
    shutil.rmtree(out_dir, ignore_errors=True)
    db_dir = os.path.join(out_dir, "db")
    os.makedirs(out_dir)
    return out_dir, db_dir


async def make_standard(u, outdir, name, codec_label, *, block_size=None, block_name=None):
    out_dir, db_dir = fresh_dirs(outdir, name)
    settings = base_settings(u, codec=CODECS[codec_label])
    rec = Recorder()
    db = await open_db(u, db_dir, settings, seed=SEED_STANDARD, block_size=block_size)
    w = await workload_standard(u, db, Gen(SEED_STANDARD), rec)
    await close_keep_wal_tail(u, db)
    w.log.append("shutdown_with_options(CloseOptions(flush_type=WAL)): tail stays in WAL")
    notes = ["same seed (%d) and workload as every codec_* fixture" % SEED_STANDARD]
    kw = {}
    if block_size is not None:
        kw = {"block_size": block_size, "block_size_name": block_name}
    await finish_fixture(
        u, name, out_dir, db_dir, settings, rec, w, codec=codec_label, notes=notes, **kw
    )


async def make_merge(u, outdir):
    name = "merge"
    out_dir, db_dir = fresh_dirs(outdir, name)
    settings = base_settings(u)
    rec = Recorder()
    db = await open_db(u, db_dir, settings, seed=3, merge_op=make_concat_operator(u))
    w = await workload_merge(u, db, Gen(3), rec)
    await close_keep_wal_tail(u, db)
    w.log.append("shutdown_with_options(CloseOptions(flush_type=WAL)): tail stays in WAL")
    await finish_fixture(
        u,
        name,
        out_dir,
        db_dir,
        settings,
        rec,
        w,
        codec="none",
        notes=["merge operator implemented in Python (uniffi callback)"],
        merge=True,
    )


async def make_compacted(u, outdir):
    name = "compacted"
    out_dir, db_dir = fresh_dirs(outdir, name)
    g = Gen(2)
    r = g.rng
    rec = Recorder()
    long_ttl, short_ttl = ("after", LONG_TTL_MS), ("after", SHORT_TTL_MS)
    # ---- session 1: embedded compactor on, min_compaction_sources 2
    s1 = base_settings(u, compactor=True)
    db = await open_db(u, db_dir, s1, seed=2)
    w = Writer(u, db, rec)
    a = [g.key() for _ in range(1100)]
    for n, k in enumerate(a):
        await w.put(k, g.value(), long_ttl if n % 25 == 0 else None)
    for k in r.sample(a, 4):
        await w.put(k, g.value(), short_ttl)
    await w.flush_wal("session 1, phase A")
    await asyncio.sleep(0.05)
    await w.flush_memtable("session 1: L0 #1")
    live = [k for k in a if k not in rec.expired_keys]
    for k in r.sample(live, 150):
        await w.put(k, g.value())
    for k in r.sample(live, 80):
        await w.delete(k)
    for _ in range(100):
        await w.put(g.key(), g.value())
    await w.batch([("put", g.key(), b"batch-%d" % i, None) for i in range(8)])
    await w.flush_memtable("session 1: L0 #2 -> compactor merges L0 #1 + #2 into SR 0")
    waited = await wait_for_sorted_run(u, db_dir)
    w.log.append("waited %.1fs for the compactor to commit a sorted run" % waited)
    await asyncio.sleep(1.0)
    await close_keep_wal_tail(u, db)
    w.log.append("session 1 closed (flush_type=WAL; memtable was empty)")
    # ---- session 2: compactor off; one more L0 and a WAL tail
    s2 = base_settings(u)
    db = await open_db(u, db_dir, s2, seed=22)
    w.db = db
    live = sorted(k for k, v in rec.model.items() if v is not None and k not in rec.expired_keys)
    for _ in range(100):
        await w.put(g.key(), g.value())
    for k in r.sample(live, 50):
        await w.put(k, g.value())
    for k in r.sample(live, 20):
        await w.delete(k)
    await w.flush_memtable("session 2: L0 #3 (stays in L0)")
    live = sorted(k for k, v in rec.model.items() if v is not None and k not in rec.expired_keys)
    for _ in range(30):
        await w.put(g.key(), g.value())
    for k in r.sample(live, 20):
        await w.put(k, g.value(), long_ttl)
    for k in r.sample(live, 10):
        await w.delete(k)
    await w.flush_wal("session 2: WAL tail")
    await close_keep_wal_tail(u, db)
    w.log.append("session 2 closed with flush_type=WAL: tail stays in WAL")
    notes = [
        "session 1 ran the embedded compactor (min_compaction_sources=2); session 2 "
        "reopened the DB with the compactor disabled, so its open wrote a new WAL fence "
        "in the middle of the WAL id sequence",
        "settings below are session 2's; session 1's are in settings_session1",
    ]
    await finish_fixture(
        u,
        name,
        out_dir,
        db_dir,
        s2,
        rec,
        w,
        codec="none",
        notes=notes,
        extra={"settings_session1": json.loads(s1.to_json_string())},
    )


async def generate(outdir, only):
    import slatedb.uniffi as u  # the real 0.17.0 binding

    os.makedirs(outdir, exist_ok=True)
    jobs = []
    for label in CODECS:
        jobs.append(
            ("codec_" + label, lambda lb=label: make_standard(u, outdir, "codec_" + lb, lb))
        )
    jobs.append(
        (
            "blocksize_1k",
            lambda: make_standard(
                u,
                outdir,
                "blocksize_1k",
                "none",
                block_size=u.SstBlockSize.BLOCK1_KIB,
                block_name="1 KiB (DbBuilder.with_sst_block_size(SstBlockSize.BLOCK1_KIB))",
            ),
        )
    )
    jobs.append(("merge", lambda: make_merge(u, outdir)))
    jobs.append(("compacted", lambda: make_compacted(u, outdir)))
    for name, job in jobs:
        if only and name not in only:
            continue
        await job()


# ---------------------------------------------------------------------------------------------
# --verify: an independent, stdlib-only structural check
# ---------------------------------------------------------------------------------------------


class FB:
    """Just enough of a FlatBuffers table reader (little-endian, no file identifier)."""

    def __init__(self, buf, pos):
        self.buf, self.pos = buf, pos
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vt_len = struct.unpack_from("<H", buf, vt)[0]
        self.vt = vt

    @classmethod
    def root(cls, buf, base=0):
        return cls(buf, base + struct.unpack_from("<I", buf, base)[0])

    def _off(self, slot):
        o = 4 + 2 * slot
        if o >= self.vt_len:
            return 0
        return struct.unpack_from("<H", self.buf, self.vt + o)[0]

    def scalar(self, slot, fmt, default=0):
        o = self._off(slot)
        return default if o == 0 else struct.unpack_from("<" + fmt, self.buf, self.pos + o)[0]

    def _vec(self, slot):
        o = self._off(slot)
        if o == 0:
            return None
        p = self.pos + o
        v = p + struct.unpack_from("<I", self.buf, p)[0]
        return v + 4, struct.unpack_from("<I", self.buf, v)[0]

    def bytes_(self, slot):
        v = self._vec(slot)
        return None if v is None else bytes(self.buf[v[0] : v[0] + v[1]])

    def tables_one(self, slot):
        o = self._off(slot)
        p = self.pos + o
        return FB(self.buf, p + struct.unpack_from("<I", self.buf, p)[0])

    def tables(self, slot):
        v = self._vec(slot)
        if v is None:
            return []
        start, n = v
        return [
            FB(self.buf, start + 4 * i + struct.unpack_from("<I", self.buf, start + 4 * i)[0])
            for i in range(n)
        ]


CODEC_NAMES = {0: "none", 1: "snappy", 2: "zlib", 3: "lz4", 4: "zstd"}


def decompress(codec, data):
    if codec == 0:
        return data
    if codec == 2:
        return zlib.decompress(data)
    return None  # snappy/lz4/zstd: not in the standard library


def check_block(buf, start, end, what):
    payload, crc = buf[start : end - 4], struct.unpack_from(">I", buf, end - 4)[0]
    if zlib.crc32(payload) != crc:
        raise AssertionError("%s: CRC mismatch at %d..%d" % (what, start, end))
    return payload


def verify_sst(path):
    buf = open(path, "rb").read()
    if len(buf) <= 10:
        return {"size": len(buf), "kind": "fence/empty"}
    meta_off, version = struct.unpack_from(">QH", buf, len(buf) - 10)
    if version not in (1, 2):
        raise AssertionError("%s: bad footer version %d" % (path, version))
    if not meta_off < len(buf) - 14:
        raise AssertionError("%s: metadata offset %d out of range" % (path, meta_off))
    info_bytes = check_block(buf, meta_off, len(buf) - 10, path + " metadata")
    info = FB.root(info_bytes)
    d = {
        "size": len(buf),
        "version": version,
        "meta_off": meta_off,
        "index_offset": info.scalar(1, "Q"),
        "index_len": info.scalar(2, "Q"),
        "filter_offset": info.scalar(3, "Q"),
        "filter_len": info.scalar(4, "Q"),
        "codec": info.scalar(5, "B"),
        "sst_type": {0: "compacted", 1: "wal"}[info.scalar(6, "B")],
        "stats_offset": info.scalar(8, "Q"),
        "stats_len": info.scalar(9, "Q"),
        "filter_format": info.scalar(10, "B"),
        "first_entry": info.bytes_(0),
        "last_entry": info.bytes_(7),
    }
    io, il = d["index_offset"], d["index_len"]
    if not io + il <= meta_off:
        raise AssertionError("%s: index block overlaps metadata" % path)
    idx_payload = check_block(buf, io, io + il, path + " index")
    idx = decompress(d["codec"], idx_payload)
    if d["filter_len"]:
        fo, fl = d["filter_offset"], d["filter_len"]
        fpay = decompress(d["codec"], check_block(buf, fo, fo + fl, path + " filter"))
        if fpay is not None:
            n = struct.unpack_from(">H", fpay, 0)[0]
            p, names = 2, []
            for _ in range(n):
                ln = struct.unpack_from(">H", fpay, p)[0]
                nm = fpay[p + 2 : p + 2 + ln].decode()
                dl = struct.unpack_from(">Q", fpay, p + 2 + ln)[0]
                probes = struct.unpack_from(">H", fpay, p + 10 + ln)[0]
                names.append("%s(%dB,%dprobes)" % (nm, dl, probes))
                p += 10 + ln + dl
            d["filters"] = names
    if idx is not None:
        metas = FB.root(idx).tables(0)
        offs = [m.scalar(0, "Q") for m in metas] + [d["filter_offset"]]
        sizes, rows = [], []
        for i in range(len(metas)):
            payload = check_block(buf, offs[i], offs[i + 1], "%s data block %d" % (path, i))
            sizes.append(offs[i + 1] - offs[i])
            block_rows = decode_block_v2(decompress(d["codec"], payload))
            if d["sst_type"] == "wal":
                want = struct.pack(">Q", block_rows[0]["seq"])
            else:
                want = b"" if i == 0 else None
            fk = metas[i].bytes_(1)
            if want is not None and fk != want:
                raise AssertionError("%s: index first_key of block %d is %s" % (path, i, fk))
            if want is None and not rows[-1]["key"] <= fk <= block_rows[0]["key"]:
                raise AssertionError("%s: index key of block %d is no separator" % (path, i))
            rows.extend(block_rows)
        d["blocks"] = sizes
        d["rows"] = rows
        if d["sst_type"] == "wal":
            if d["first_entry"] != struct.pack(">Q", rows[0]["seq"]):
                raise AssertionError("%s: WAL first_entry is not the first seq" % path)
        else:
            order = [(r["key"], -r["seq"]) for r in rows]
            if order != sorted(order):
                raise AssertionError("%s: rows not in (key asc, seq desc) order" % path)
            if d["first_entry"] != rows[0]["key"] or d["last_entry"] != rows[-1]["key"]:
                raise AssertionError("%s: first/last_entry do not match the rows" % path)
    return d


def _varint(b, p):
    v = sh = 0
    while True:
        x = b[p]
        p += 1
        v |= (x & 0x7F) << sh
        sh += 7
        if not x & 0x80:
            return v, p


def decode_block_v2(b):
    """Data block V2 (FORMAT.md 3.2): prefix-compressed rows + u16 restarts + u16 count."""
    nr = struct.unpack_from(">H", b, len(b) - 2)[0]
    end = len(b) - 2 - 2 * nr
    restarts = set(struct.unpack_from(">%dH" % nr, b, end))
    rows, p, prev, i = [], 0, b"", 0
    while p < end:
        start = p
        shared, p = _varint(b, p)
        unshared, p = _varint(b, p)
        vlen, p = _varint(b, p)
        if (start in restarts) != (shared == 0 and i % 16 == 0):
            raise AssertionError("restart point mismatch at row %d" % i)
        key = prev[:shared] + bytes(b[p : p + unshared])
        p += unshared
        value = bytes(b[p : p + vlen])
        p += vlen
        seq, flags = struct.unpack_from(">QB", b, p)
        p += 9
        if flags & ~0x0F:
            raise AssertionError("unknown row flags %#x" % flags)
        exp = cts = None
        if flags & 0x02:
            exp = struct.unpack_from(">q", b, p)[0]
            p += 8
        if flags & 0x04:
            cts = struct.unpack_from(">q", b, p)[0]
            p += 8
        kind = "TOMBSTONE" if flags & 0x01 else "MERGE" if flags & 0x08 else "VALUE"
        rows.append(
            {
                "key": key,
                "value": None if kind == "TOMBSTONE" else value,
                "seq": seq,
                "kind": kind,
                "expire_ts": exp,
                "create_ts": cts,
            }
        )
        prev, i = key, i + 1
    if p != end:
        raise AssertionError("block rows overrun the restart array")
    return rows


CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_str(t):
    n = (t.scalar(0, "Q") << 64) | t.scalar(1, "Q")
    return "".join(CROCKFORD[(n >> (5 * (25 - i))) & 31] for i in range(26))


def independent_get(man, ssts):
    """Visible value per key from our own decode: sorted runs + L0 (from the manifest) + WAL
    files after replay_after_wal_id with seq > last_l0_seq; newest seq wins, merge operands are
    concatenated onto the base.  Expiry is ignored (0.17.0 get() returns expired rows)."""
    rows = []
    for name in man["sst_files"]:
        rows += ssts["compacted/" + name + ".sst"]["rows"]
    for f, info in ssts.items():
        if f.startswith("wal/") and int(f[4:24]) > man["replay_after_wal_id"]:
            rows += [r for r in info.get("rows", []) if r["seq"] > man["last_l0_seq"]]
    by_key = {}
    for r in rows:
        by_key.setdefault(r["key"], []).append(r)
    out = {}
    for k, rs in by_key.items():
        rs.sort(key=lambda r: -r["seq"])
        ops, base = [], None
        for r in rs:
            if r["kind"] == "MERGE":
                ops.append(r["value"])
                continue
            base = r["value"] if r["kind"] == "VALUE" else None
            break
        if ops:
            base = (base or b"") + b"".join(reversed(ops))
        out[k] = base
    return out


def verify_manifest(path):
    buf = open(path, "rb").read()
    ver = struct.unpack_from(">H", buf, 0)[0]
    if ver not in (1, 2):
        raise AssertionError("%s: manifest version %d" % (path, ver))
    m = FB.root(buf, 2)
    if ver != 2:
        return {"version": ver}
    # ManifestV2 slots (FORMAT.md 2.4); SST views: slot 1 = sst_id (Ulid)
    l0 = [ulid_str(v.tables_one(1)) for v in m.tables(9)]
    srs = [[ulid_str(v.tables_one(1)) for v in sr.tables(1)] for sr in m.tables(10)]
    return {
        "version": ver,
        "writer_epoch": m.scalar(3, "Q"),
        "compactor_epoch": m.scalar(4, "Q"),
        "replay_after_wal_id": m.scalar(5, "Q"),
        "wal_id_last_seen": m.scalar(6, "Q"),
        "l0": len(l0),
        "sorted_runs": [len(x) for x in srs],
        "last_l0_seq": m.scalar(13, "Q"),
        "sst_files": [x for sr in srs for x in sr] + l0,
    }


def verify(outdir):
    total = 0
    ok = True
    for name in sorted(os.listdir(outdir)):
        fx = os.path.join(outdir, name)
        db = os.path.join(fx, "db")
        if not os.path.isdir(db):
            continue
        fx_size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(fx) for f in fs)
        total += fx_size
        print("=" * 100)
        print(
            "%s  (fixture %d bytes, expected.json %d bytes)"
            % (name, fx_size, os.path.getsize(os.path.join(fx, "expected.json")))
        )
        exp = json.load(open(os.path.join(fx, "expected.json")))
        mdir = os.path.join(db, "manifest")
        mans = sorted(os.listdir(mdir))
        for mf in mans:
            verify_manifest(os.path.join(mdir, mf))
        last = verify_manifest(os.path.join(mdir, mans[-1]))
        print(
            "  manifests: %d, latest %s: %s"
            % (len(mans), mans[-1], {k: v for k, v in last.items() if k != "sst_files"})
        )
        for key in ("replay_after_wal_id", "last_l0_seq", "writer_epoch"):
            if last[key] != exp["manifest"][key]:
                print("  !! %s differs from the binding's view" % key)
                ok = False
        cdir = os.path.join(db, "compactions")
        if os.path.isdir(cdir):
            cfiles = sorted(os.listdir(cdir))
            for cf in cfiles:
                cbuf = open(os.path.join(cdir, cf), "rb").read()
                if struct.unpack_from(">H", cbuf, 0)[0] not in (1, 2):
                    print("  !! %s: bad compactions version" % cf)
                    ok = False
            c = FB.root(open(os.path.join(cdir, cfiles[-1]), "rb").read(), 2)
            statuses = [t.scalar(3, "B") for t in c.tables(1)]
            print(
                "  compactions: %d versions, latest: compactor_epoch=%d, %d compactions, "
                "status bytes %s" % (len(cfiles), c.scalar(0, "Q"), len(statuses), statuses)
            )
        role = {c["file"]: c["role"] for c in exp["compacted_files"]}
        wal_exp = {w["file"]: w for w in exp["wal_files"]}
        ssts = {}
        for sub in ("compacted", "wal"):
            d = os.path.join(db, sub)
            files = sorted(os.listdir(d)) if os.path.isdir(d) else []
            print(
                "  %s/: %d SSTs, %d bytes"
                % (sub, len(files), sum(os.path.getsize(os.path.join(d, f)) for f in files))
            )
            for f in files:
                rel = sub + "/" + f
                try:
                    info = verify_sst(os.path.join(d, f))
                except Exception as e:
                    print("    %-32s !! %s" % (f, e))
                    ok = False
                    continue
                ssts[rel] = info
                if info.get("kind"):
                    print("    %-32s %7d B  %s" % (f, info["size"], info["kind"]))
                    continue
                if sub == "wal":
                    w = wal_exp[rel]
                    tag = (
                        "TAIL(%d new rows)" % w["rows_above_last_l0_seq"]
                        if w["unflushed_tail"]
                        else "replayed,in-L0"
                        if w["replayed_on_open"]
                        else "in L0"
                    )
                    if "rows" in info:
                        if len(info["rows"]) != w["rows"]:
                            print(
                                "    !! %s: %d rows decoded, binding saw %d"
                                % (rel, len(info["rows"]), w["rows"])
                            )
                            ok = False
                        for mine, theirs in zip(info["rows"], w.get("row_list", [])):
                            mine_j = dict(
                                mine,
                                key=mine["key"].hex(),
                                value=None if mine["value"] is None else mine["value"].hex(),
                            )
                            if mine_j != theirs:
                                print("    !! %s: row differs: %s vs %s" % (rel, mine_j, theirs))
                                ok = False
                                break
                else:
                    tag = role.get(rel, "?")
                blocks = info.get("blocks")
                if blocks is not None:
                    rows = info["rows"]
                    kinds = {}
                    for r in rows:
                        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
                    ttl = sum(1 for r in rows if r["expire_ts"] is not None)
                    bdesc = "%d rows %s ttl=%d; %d blocks [%s]" % (
                        len(rows),
                        ",".join("%s=%d" % kv for kv in sorted(kinds.items())),
                        ttl,
                        len(blocks),
                        ",".join(map(str, blocks[:5])) + (",..." if len(blocks) > 5 else ""),
                    )
                else:
                    bdesc = "(codec not decodable with the standard library)"
                print(
                    "    %-32s %7d B %-8s %-6s filter=%-5d stats=%-4d %s | %s %s"
                    % (
                        f,
                        info["size"],
                        info["sst_type"],
                        CODEC_NAMES[info["codec"]],
                        info["filter_len"],
                        info["stats_len"],
                        tag,
                        bdesc,
                        " ".join(info.get("filters", [])),
                    )
                )
        if all("rows" in i or i.get("kind") for i in ssts.values()):
            mine = independent_get(last, ssts)
            bad = [
                k
                for k, v in exp["keys"].items()
                if (None if mine.get(bytes.fromhex(k)) is None else mine[bytes.fromhex(k)].hex())
                != v
            ]
            if bad:
                print(
                    "  !! independent read differs from 0.17.0 on %d keys, e.g. %s"
                    % (len(bad), bad[:5])
                )
                ok = False
            else:
                print(
                    "  independent decode (manifest + SSTs + WAL tail) matches expected.json "
                    "on all %d keys" % len(exp["keys"])
                )
    print("=" * 100)
    print("total fixture bytes: %d (%.2f MiB)" % (total, total / 2**20))
    print("OK" if ok else "PROBLEMS FOUND")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?", default=DEFAULT_OUT)
    ap.add_argument("--verify", action="store_true", help="only check existing fixtures")
    ap.add_argument("--only", nargs="*", default=None, help="fixture names to (re)generate")
    args = ap.parse_args()
    outdir = os.path.abspath(args.outdir)
    if args.verify:
        sys.exit(0 if verify(outdir) else 1)
    asyncio.run(generate(outdir, set(args.only) if args.only else None))
    sys.exit(0 if verify(outdir) else 1)


if __name__ == "__main__":
    main()
