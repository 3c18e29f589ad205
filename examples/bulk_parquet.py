"""Bulk in, columnar out: a Parquet file (written here with pyarrow) is loaded into a database
with one `put_many` per row group, straight from its Arrow columns, then read back through
`to_arrow` into polars (and DuckDB, when installed) without a Python object per row.

Needs pyarrow and polars (`pip install pyarrow polars`); it says so and stops without them."""

import tempfile
from pathlib import Path

from obstore.store import LocalStore

from slatedb_py import Db

ROWS = 20_000


def main() -> None:
    try:
        import polars as pl
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        print("bulk_parquet.py needs pyarrow and polars: pip install pyarrow polars")
        return
    with tempfile.TemporaryDirectory() as root:
        # A Parquet file of users: binary keys, and values to store (JSON-ish bytes).
        path = Path(root) / "users.parquet"
        keys = pa.array([b"user:%06d" % i for i in range(ROWS)], pa.binary())
        values = pa.array([b'{"id": %d, "tier": "%s"}' % (i, b"gold" if i % 7 == 0 else b"basic")
                           for i in range(ROWS)], pa.binary())  # fmt: skip
        pq.write_table(pa.table({"key": keys, "value": values}), path, row_group_size=5000)

        with Db.open("users/db", LocalStore(root)) as db:
            parquet = pq.ParquetFile(path)
            for g in range(parquet.num_row_groups):  # each row group: one atomic write
                group = parquet.read_row_group(g)
                db.put_many(group["key"], group["value"], await_durable=False)
            db.flush()

            # Back out as Arrow batches: a polars DataFrame of one key range.
            df = pl.DataFrame(db.scan(b"user:001000", b"user:002000").to_arrow())
            gold = df.filter(pl.col("value").bin.contains(b"gold"))
            print(f"loaded {ROWS} rows from {parquet.num_row_groups} row groups")
            print(f"user:001000..user:002000: {df.height} rows, {gold.height} gold")
            try:
                import duckdb
            except ImportError:
                return
            # DuckDB finds the stream by its variable's name.
            batches = db.scan().to_arrow()  # noqa: F841
            [(count,)] = duckdb.sql("select count(*) from batches").fetchall()
            print(f"DuckDB counted {count} rows in the whole database")


if __name__ == "__main__":
    main()
