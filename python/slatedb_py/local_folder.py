"""A LocalStore's folder, touched directly where obstore is slower or cannot: whole objects
read with one `open` (`Store.get`), and the staging files of uploads a crash cut short,
listed and removed (`Store.leftovers`). Outcomes are the store's: a missing file is a
missing object, and another failure is one `Store._call` retries."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

# A key a local folder holds under its own name, the rule the native core's direct SST reads
# follow too (`plain_path` in rust/src/fetch.rs): ASCII letters, digits, ".", "_", "-",
# segments joined by "/" (and none of them "." or "..", checked apart).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*")

# obstore writes an object of a local folder to the staging file `<key>#<n>`, then renames
# it to `<key>`; listings leave such names out, and obstore refuses to delete them.
_STAGING = re.compile(r".+#[0-9]+")


class ObjectMeta(NamedTuple):
    path: str
    size: int
    last_modified: datetime


class LocalReadError(Exception):
    """A local folder's file could not be read (`Store.get`'s direct read): obstore's
    LocalStore reports that as a `GenericError`, so it is retried and reported the same way."""


def root_of(store: Any) -> str | None:
    """The folder of an obstore LocalStore, absolute; None for any other store, and for a
    LocalStore made with a relative root (obstore resolved it against the directory current
    then, which may have changed since)."""
    if type(store).__name__ != "LocalStore":
        return None
    prefix = getattr(store, "prefix", None)
    if prefix is None:
        return "/"
    return str(prefix) if os.path.isabs(str(prefix)) else None


def file_of(root: str, path: str) -> str | None:
    """The file that holds object `path` in folder `root`, when it may be read directly."""
    if _PLAIN_KEY.fullmatch(path) is None or any(seg in (".", "..") for seg in path.split("/")):
        return None
    return os.path.join(root, path)


def read_file(file: str) -> bytes | None:
    """A file as obstore's LocalStore reads it: None when it does not exist (a folder too);
    any other failure is a `LocalReadError`."""
    try:
        with open(file, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as e:
        raise LocalReadError(f"reading {file!r}: {e}") from e


def staging_files(root: str, prefix: str) -> list[ObjectMeta]:
    """The staging files directly under `prefix`, as objects named `<key>#<n>`, with the
    time of their last write."""
    out, prefix = [], prefix.rstrip("/")
    try:
        with os.scandir(os.path.join(root, prefix)) as entries:
            for entry in entries:
                if _STAGING.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    when = datetime.fromtimestamp(st.st_mtime, UTC)
                    out.append(ObjectMeta(f"{prefix}/{entry.name}", st.st_size, when))
    except FileNotFoundError:
        pass
    return sorted(out)


def remove_staging_file(root: str, path: str) -> bool:
    """Removes the staging file `path` (a `staging_files` name); False if `path` is none."""
    if _STAGING.fullmatch(path) is None or file_of(root, path.rsplit("#", 1)[0]) is None:
        return False
    try:
        os.remove(os.path.join(root, path))
    except FileNotFoundError:
        pass
    return True
