"""``pipepulse db backup``: a consistent copy of a live SQLite database.

SQLite's online backup API (``sqlite3.Connection.backup``) copies the database page by page
while collectors and the dashboard keep using it; the copy is one consistent snapshot (the
WAL's committed frames included). It is written to ``<path>.partial`` and renamed into place
only after an integrity check, so a failed backup never leaves a file that looks complete.
Both files are created readable by their owner only (0600), and neither is written through a
symbolic link: a link at ``<path>`` or ``<path>.partial`` (someone else's, in a shared folder) is
refused rather than followed.

PostgreSQL is refused: use ``pg_dump -Fc`` (see ``docs/deploy.md``), or RDS snapshots and
point-in-time recovery on AWS.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from pipepulse.errors import InputError, StoreError
from pipepulse.files import new_private, refuse_symlink
from pipepulse.redact import mask_url

__all__ = ["BackupResult", "backup_sqlite"]

log = logging.getLogger(__name__)

PAGES_PER_STEP = 1024  # copy in steps so writers get the lock between them


@dataclass(frozen=True)
class BackupResult:
    source: Path
    path: Path
    bytes: int
    seconds: float


def backup_sqlite(database_url: str, dest: str | Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the SQLite database at ``database_url`` to ``dest`` with the online backup API."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise StoreError(
            f"pipepulse db backup copies SQLite databases; this one is {url.get_backend_name()} "
            f"({mask_url(database_url)}). Back PostgreSQL up with pg_dump, e.g. "
            "`pg_dump -Fc -f pipepulse.dump \"$DATABASE_URL\"` (restore with pg_restore), or use "
            "RDS snapshots and point-in-time recovery; see docs/deploy.md"
        )
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise StoreError(f"cannot back up SQLite database {url.database or '(in memory)'}: it is not a file")
    source = Path(url.database)
    if not source.is_file():
        raise StoreError(f"SQLite database {source} does not exist; nothing to back up")
    target = Path(dest)
    if target.resolve() == source.resolve():
        raise InputError(f"backup path {target} is the database itself; choose another path")
    refuse_symlink(target, "backup path")
    if target.exists() and not overwrite:
        raise InputError(f"{target} already exists; choose a new path or pass --force to replace it")
    if not target.parent.is_dir():
        raise InputError(f"folder {target.parent} does not exist; create it first")

    partial = target.with_name(target.name + ".partial")
    new_private(partial, "backup's temporary file")  # refuses a symlink planted there
    started = time.monotonic()
    src = sqlite3.connect(source, timeout=30)  # only read: the backup API never writes the source
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst, pages=PAGES_PER_STEP)
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                raise StoreError(f"backup of {source} failed its integrity check: {ok}")
            # A self-contained file: no -wal beside it is needed to read it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise StoreError(f"backing up {source} to {target} failed: {exc}") from exc
    finally:
        src.close()
        partial.unlink(missing_ok=True)
    result = BackupResult(source=source, path=target, bytes=target.stat().st_size, seconds=time.monotonic() - started)
    log.info(
        "sqlite backup written",
        extra={"source": str(source), "path": str(target), "bytes": result.bytes, "seconds": round(result.seconds, 3)},
    )
    return result
