"""Reads and writes the collector runner needs besides plain upserts: all watermarks of a
source, the configured pipelines, and the failed runs awaiting their logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import FAILURES
from store.schema import pipelines, runs, watermarks
from store.writes import upsert

__all__ = ["failed_runs_since", "source_watermarks", "upsert_pipelines"]


def source_watermarks(conn: Connection, source: str) -> dict[str, str]:
    """``{key: value}`` of every watermark stored for ``source``."""
    rows = conn.execute(sa.select(watermarks.c.key, watermarks.c.value).where(watermarks.c.source == source))
    return {k: v for k, v in rows}


def upsert_pipelines(conn: Connection, rows: Iterable[dict], *, now: datetime) -> int:
    """Insert or update the ``pipelines`` rows (from the settings)."""
    return upsert(conn, pipelines, list(rows), now=now)


def failed_runs_since(
    conn: Connection,
    since: datetime | None,
    *,
    done_at_since: Iterable[str] = (),
    ended_after: datetime | None = None,
    limit: int = 1000,
    account: str | None = None,
    region: str | None = None,
    unplaced: bool = False,
) -> list[dict]:
    """Failed or timed-out runs updated at or after ``since`` (minus ``done_at_since``, the ones
    updated exactly at ``since`` and already handled), oldest update first; only those of
    ``account`` and ``region`` when given (with ``unplaced``, also runs that name neither)."""
    r = runs.c
    q = sa.select(
        r.run_id, r.pipeline, r.source, r.correlation_id, r.started_at, r.ended_at, r.updated_at
    ).where(r.status.in_(FAILURES))
    if account is not None and region is not None:
        mine = sa.and_(r.account == account, r.region.in_([region, ""]))
        q = q.where(sa.or_(mine, sa.and_(r.account == "", r.region.in_([region, ""]))) if unplaced else mine)
    if since is not None:
        q = q.where(r.updated_at >= since)
        done = list(done_at_since)
        if done:
            q = q.where(sa.not_(sa.and_(r.updated_at == since, r.run_id.in_(done))))
    if ended_after is not None:
        q = q.where(sa.or_(r.ended_at.is_(None), r.ended_at >= ended_after))
    q = q.order_by(r.updated_at, r.run_id).limit(limit)
    return [dict(m) for m in conn.execute(q).mappings().all()]
