"""The seed's first program: create a checkpoint of a closed database."""

from datetime import timedelta

from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions, DbOptions


def main() -> None:
    object_store = MemoryStore()
    path = "/my/test/db"

    db = Db.open_with_opts(path, DbOptions(), object_store)
    db.close()

    result = admin.create_checkpoint(
        path,
        object_store,
        CheckpointOptions(lifetime=timedelta(seconds=3600)),  # expires in 1 hour
    )
    print(f"Created checkpoint: ID = {result.id}, Manifest = {result.manifest_id}")


if __name__ == "__main__":
    main()
