"""slatedb_py: SlateDB, the LSM key-value store on object storage, for Python.

The names of ``API.md``: ``Db`` (the writer), ``DbReader``, ``WriteBatch``, ``WalReader``
(the change stream); options live in :mod:`slatedb_py.config`, errors in
:mod:`slatedb_py.errors`, the byte format in :mod:`slatedb_py.format`.
"""

from slatedb_py import admin
from slatedb_py._native import __version__
from slatedb_py.batch import WriteBatch
from slatedb_py.db import Db
from slatedb_py.reader import DbReader
from slatedb_py.wal_reader import WalReader

__all__ = ["Db", "DbReader", "WalReader", "WriteBatch", "__version__", "admin"]
