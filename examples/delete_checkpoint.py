"""The seed's third program: delete a checkpoint."""

from obstore.store import MemoryStore

from slatedb_py import Db, admin
from slatedb_py.config import CheckpointOptions, DbOptions


def main() -> None:
    object_store = MemoryStore()
    path = "/tmp/delete_checkpoint"

    db = Db.open_with_opts(path, DbOptions(), object_store)
    db.close()

    result = admin.create_checkpoint(path, object_store, CheckpointOptions())
    print(f"Created checkpoint: ID = {result.id}")

    Db.delete_checkpoint(path, object_store, result.id)
    print("Checkpoint deleted.")


if __name__ == "__main__":
    main()
