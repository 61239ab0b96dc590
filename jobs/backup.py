"""The ``backup`` job (and ``pipepulse db backup`` without a path): a dated copy of the SQLite database.

Each pass writes ``pipepulse-<UTC time>.db`` into ``[backup] dir`` (default ``<data_dir>/backups``)
through ``store.backup`` (SQLite's online backup API, checked, private files) and then deletes
the oldest copies beyond ``[backup] keep`` (default 7). Only files this job names are ever
deleted. PostgreSQL is not copied here: the job reports ``skipped`` and says what to use instead
(``pg_dump``, or RDS automated backups, which the CloudFormation deployment turns on).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Engine, make_url

from pipepulse.settings import Settings
from store.backup import BackupResult, backup_sqlite

__all__ = ["BackupPass", "run"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^pipepulse-\d{8}T\d{6}Z\.db$")


@dataclass
class BackupPass:
    """What one pass did: ``status`` is ``ran`` or ``skipped`` (with ``error`` saying why)."""

    status: str
    backup: BackupResult | None = None
    removed: list[Path] = field(default_factory=list)
    error: str = ""


def run(settings: Settings, engine: Engine, *, now: datetime) -> BackupPass:
    """Copy the database into the backup folder and prune the copies beyond ``keep``."""
    if make_url(settings.database_url).get_backend_name() != "sqlite":
        why = ("PostgreSQL is not copied by the backup job: use RDS automated backups or "
               "`pg_dump -Fc` (docs/deploy.md)")
        log.info("backup skipped: %s", why)
        return BackupPass("skipped", error=why)
    folder = settings.backup_dir or settings.data_dir / "backups"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"pipepulse-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.db"
    result = BackupPass("ran", backup_sqlite(settings.database_url, target, overwrite=True))
    copies = sorted(p for p in folder.iterdir() if _NAME.match(p.name) and p.is_file() and not p.is_symlink())
    for old in copies[: max(0, len(copies) - settings.backup_keep)]:
        old.unlink()
        result.removed.append(old)
    return result
