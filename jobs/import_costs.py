"""``pipepulse costs import``: load FOCUS or CUR export files (paths, folders, ``s3://``
prefixes) into ``cost_daily`` once, outside the schedule (the ``focus`` and ``cur`` collector
sources do the same on their cron).

A recipe: find the files -> read each (rejecting bad rows with file, line and reason) -> sum the
good rows per day -> replace each month they touch, per source, in one transaction
(``collectors.runner.persist``, the collectors' one write path).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from collectors.base import Batch
from collectors.costfiles import CostFile, ImportResult, cost_days, find_files, stream_all
from collectors.runner import persist

__all__ = ["import_cost_files"]


def import_cost_files(
    engine: Engine,
    sources: Sequence[str],
    *,
    tag_key: str,
    now: datetime,
    s3_client: Any = None,
    keep_rejections: int = 1000,
    files: Sequence[CostFile] | None = None,
    kinds: Sequence[str] = ("focus", "cur"),
) -> ImportResult:
    """Import FOCUS/CUR files from ``sources`` (paths, folders, s3:// prefixes) into cost_daily."""
    result = ImportResult()
    if files is None:
        files, problems = find_files(sources, s3_client=s3_client, notes=result.notes)
        result.unreadable.extend(problems)
    plans = stream_all(files, tag_key=tag_key, s3_client=s3_client, result=result, keep_rejections=keep_rejections, kinds=kinds)
    batch = Batch(costs=cost_days(plans))
    if batch.costs:
        with engine.begin() as conn:
            result.rows_stored += persist(conn, "costs import", batch, now=now)
    return result
