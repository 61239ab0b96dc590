"""Reads of ``lambda_invocations``: the figures of each Lambda REPORT line.

``function_usage`` aggregates in SQL (one row per function and memory size over a window), so
right-sizing reads a few rows however many invocations were stored; ``invocations_frame`` lists
the invocations of a pipeline (or a function) in a time range, for a run's detail. Windows are
half-open on ``ended_at``. Times come back tz-aware UTC.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import lambda_invocations as inv

__all__ = ["INVOCATION_COLUMNS", "function_usage", "invocations_frame"]

INVOCATION_COLUMNS = ["function_name", "request_id", "ended_at", "duration_ms", "billed_duration_ms", "memory_size_mb",
                      "max_memory_used_mb", "init_duration_ms", "status", "log_stream"]


def _utc(frame: pd.DataFrame, col: str) -> None:
    frame[col] = pd.to_datetime(frame[col], utc=True) if not frame.empty else pd.Series(dtype="datetime64[us, UTC]")


def function_usage(conn: Connection, start: datetime, end: datetime, *, pipeline: str | None = None) -> pd.DataFrame:
    """Per function and memory size: invocations, highest memory used, billed ms, the last invocation."""
    q = (sa.select(inv.c.function_name, inv.c.memory_size_mb, sa.func.count().label("invocations"),
                   sa.func.max(inv.c.max_memory_used_mb).label("max_memory_used_mb"),
                   sa.func.sum(inv.c.billed_duration_ms).label("billed_duration_ms"),
                   sa.func.max(inv.c.ended_at).label("last_at"))
         .where(inv.c.ended_at >= start, inv.c.ended_at < end)
         .group_by(inv.c.function_name, inv.c.memory_size_mb)
         .order_by(inv.c.function_name, inv.c.memory_size_mb))
    if pipeline is not None:
        q = q.where(inv.c.pipeline == pipeline)
    cols = ["function_name", "memory_size_mb", "invocations", "max_memory_used_mb", "billed_duration_ms", "last_at"]
    frame = pd.DataFrame([tuple(r) for r in conn.execute(q).all()], columns=cols)
    _utc(frame, "last_at")
    if not frame.empty:
        frame["billed_duration_ms"] = frame["billed_duration_ms"].astype(float)
    return frame


def invocations_frame(conn: Connection, start: datetime, end: datetime, *, pipeline: str | None = None,
                      function_name: str | None = None, limit: int = 500) -> pd.DataFrame:
    """Invocations that ended in ``[start, end)`` of a pipeline's (or one function's) Lambdas, oldest first."""
    q = sa.select(*(inv.c[c] for c in INVOCATION_COLUMNS)).where(inv.c.ended_at >= start, inv.c.ended_at < end)
    if pipeline is not None:
        q = q.where(inv.c.pipeline == pipeline)
    if function_name is not None:
        q = q.where(inv.c.function_name == function_name)
    q = q.order_by(inv.c.ended_at, inv.c.request_id).limit(limit)
    frame = pd.DataFrame([tuple(r) for r in conn.execute(q).all()], columns=INVOCATION_COLUMNS)
    _utc(frame, "ended_at")
    frame["cold_start"] = frame["init_duration_ms"].notna() if not frame.empty else pd.Series(dtype=bool)
    return frame
