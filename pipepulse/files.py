"""Files pipepulse creates hold what it watches (run errors, costs, account ids) and, for SQLite,
everything: they are created readable by their owner only (0600, folders 0700), and never
written through a symbolic link someone else planted.

- ``private_dir(path)``: ``mkdir -p`` with 0700 for the folders it creates.
- ``create_private(path)``: create an empty file 0600 if it does not exist (a SQLite database
  before SQLite opens it: SQLite gives its ``-wal``/``-shm``/journal files the database file's
  mode).
- ``new_private(path)``: create a new file 0600 that must not exist yet, refusing a symbolic
  link at ``path`` (``O_EXCL | O_NOFOLLOW``): for a backup's ``.partial`` file in a shared folder.
- ``open_private(path)`` / ``write_private(path, text)``: write a text file 0600 (replacing a
  regular file, refusing a symbolic link): outputs such as ``forecast --out``, digests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from pipepulse.errors import InputError

__all__ = ["FILE_MODE", "create_private", "new_private", "open_private", "private_dir", "refuse_symlink", "write_private"]

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and missing parents with mode 0700 (existing folders are left as they are)."""
    path = Path(path)
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
    return path


def refuse_symlink(path: str | Path, what: str) -> None:
    """InputError when ``path`` is a symbolic link (writing would go wherever it points)."""
    if Path(path).is_symlink():
        raise InputError(f"{what} {path} is a symbolic link; refusing to write through it (remove it or choose another path)")


def create_private(path: str | Path) -> bool:
    """Create ``path`` empty with mode 0600 unless it exists; True when it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def new_private(path: str | Path, what: str) -> None:
    """Create ``path`` empty with mode 0600; InputError when something (a link, a file) is there."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    except FileExistsError:
        refuse_symlink(path, what)
        raise InputError(f"{what} {path} already exists; remove it (a backup left it when it was stopped) and retry") from None
    os.close(fd)


def open_private(path: str | Path, *, what: str = "output file") -> IO[str]:
    """``path`` opened for writing UTF-8 text (``newline=""``, for CSV), created 0600 (an existing
    regular file is replaced); refuses a symbolic link at ``path``."""
    refuse_symlink(path, what)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror}") from exc
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def write_private(path: str | Path, text: str, *, what: str = "output file") -> None:
    """Write ``text`` (UTF-8) to ``path`` with mode 0600; refuses a symbolic link at ``path``."""
    with open_private(path, what=what) as fh:
        fh.write(text)
