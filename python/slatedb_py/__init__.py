"""slatedb_py: SlateDB, the LSM key-value store on object storage, for Python.

The byte format (SSTs, bloom filters, merging) lives in :mod:`slatedb_py.format`; errors in
:mod:`slatedb_py.errors`. The database API of ``API.md`` (``Db``, ``DbReader``, ``admin``)
builds on them.
"""

from slatedb_py._native import __version__

__all__ = ["__version__"]
