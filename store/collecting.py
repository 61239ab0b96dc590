"""Reads and writes the collector runner needs besides plain upserts: all watermarks of a
source, the configured pipelines, and the failed runs awaiting their logs (``log_reads``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import FAILURES
from store.schema import log_reads, pipelines, runs, watermarks
from store.writes import upsert

__all__ = ["failed_runs_to_read", "log_read_at", "source_watermarks", "upsert_pipelines"]


def source_watermarks(conn: Connection, source: str) -> dict[str, str]:
    """``{key: value}`` of every watermark stored for ``source``."""
    rows = conn.execute(sa.select(watermarks.c.key, watermarks.c.value).where(watermarks.c.source == source))
    return {k: v for k, v in rows}


def upsert_pipelines(conn: Connection, rows: Iterable[dict], *, now: datetime) -> int:
    """Insert or update the ``pipelines`` rows (from the settings)."""
    return upsert(conn, pipelines, list(rows), now=now)


def failed_runs_to_read(
    conn: Connection,
    *,
    ended_after: datetime | None = None,
    limit: int = 1000,
    account: str | None = None,
    region: str | None = None,
    unplaced: bool = False,
) -> list[dict]:
    """Failed or timed-out runs the logs collector has to read: never read (``log_reads`` has
    no row), ended otherwise than when read, or read before its re-read window closed
    (``complete`` false); ended after ``ended_after``. Runs never read come first, then the
    oldest end. Keyed on what was read, never on when another pass stored the run. Only those of
    ``account`` and ``region`` when given (with ``unplaced``, also runs that name neither)."""
    r, lr = runs.c, log_reads.c
    unread = lr.run_id.is_(None)
    changed = sa.or_(
        sa.and_(r.ended_at.is_(None), lr.ended_at.is_not(None)),
        sa.and_(r.ended_at.is_not(None), lr.ended_at.is_(None)),
        r.ended_at != lr.ended_at,
    )
    q = (
        sa.select(r.run_id, r.pipeline, r.source, r.correlation_id, r.started_at, r.ended_at, r.updated_at,
                  unread.label("unread"))
        .select_from(runs.outerjoin(log_reads, lr.run_id == r.run_id))
        .where(r.status.in_(FAILURES), sa.or_(unread, changed, lr.complete.is_(False)))
    )
    if account is not None and region is not None:
        mine = sa.and_(r.account == account, r.region.in_([region, ""]))
        q = q.where(sa.or_(mine, sa.and_(r.account == "", r.region.in_([region, ""]))) if unplaced else mine)
    if ended_after is not None:
        q = q.where(sa.or_(r.ended_at.is_(None), r.ended_at >= ended_after))
    q = q.order_by(sa.case((unread, 0), else_=1), r.ended_at, r.run_id).limit(limit)
    return [dict(m) for m in conn.execute(q).mappings().all()]


def log_read_at(conn: Connection, run_id: str) -> datetime | None:
    """When the logs collector last read ``run_id``'s events (its pass's clock), or None."""
    return conn.execute(sa.select(log_reads.c.read_at).where(log_reads.c.run_id == run_id)).scalar_one_or_none()
