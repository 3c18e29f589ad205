"""The seed's second program: extend a checkpoint's lifetime."""

from datetime import timedelta

from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions, DbOptions


def main() -> None:
    object_store = MemoryStore()
    path = "/tmp/refresh_checkpoint"

    db = Db.open_with_opts(path, DbOptions(), object_store)
    db.close()

    result = admin.create_checkpoint(
        path, object_store, CheckpointOptions(lifetime=timedelta(seconds=300))
    )
    print(f"Created checkpoint with 5 min lifetime: ID = {result.id}")

    Db.refresh_checkpoint(path, object_store, result.id, timedelta(seconds=7200))
    print("Checkpoint refreshed with extended 2-hour lifetime.")


if __name__ == "__main__":
    main()
