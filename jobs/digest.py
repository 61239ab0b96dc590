"""The ``digest_daily`` and ``digest_weekly`` jobs (and ``pipepulse digest``): one alert digest pass.

The recipe itself is ``alerts.digest.run_digest`` (fetch, filter, look up what was sent,
suppress, format, send, mark sent); this is its entry as a job.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from alerts.digest import DigestResult, run_digest
from pipepulse.settings import Settings

__all__ = ["run"]


def run(
    settings: Settings,
    engine: Engine,
    *,
    now: datetime,
    period: str = "daily",
    dry_run: bool = False,
    out: str | Path | None = None,
) -> DigestResult:
    """Run the digest of the rules whose frequency is ``period`` (immediate, daily or weekly)."""
    return run_digest(settings, engine, period=period, now=now, dry_run=dry_run, out=out)
