"""All cost SQL: writing daily cost rows per source, and reading them without double counting.

Rows live in ``cost_daily`` keyed by (source, day, provider, account, service, region,
usage_type, pipeline, currency); ``''`` means unknown. Sources: ``focus`` and ``cur`` (export files),
``ce`` (Cost Explorer API), ``estimate`` (pipepulse's own usage x price).

Reading rule: a read that is not given a source takes, **for each day**, the rows of one source
only, by priority focus > cur > ce > estimate (summing sources would count the same spend twice).

Cost Explorer rows carry ``'*'`` in the dimensions their query did not break down (CE allows only
two GroupBy keys, so no one query gives service x region x usage type x pipeline). The CE
collector stores three *shapes* for the same days, each summing to the day's total:

    shape      service  region   usage_type  pipeline   answers by=
    REGION     value    value    '*'         '*'        (none), service, region, account, provider
    USAGE      value    '*'      value       '*'        usage_type
    PIPELINE   value    '*'      '*'         value/''   pipeline (or a pipeline filter)

``daily_cost`` picks the one shape that answers the question, so CE days never sum twice either.
Anyone reading ``cost_daily`` directly must do the same; prefer the functions here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.vocab import ALL
from store.places import refresh_places
from store.schema import cost_daily

__all__ = [
    "BY_CHOICES",
    "COST_KEY",
    "SOURCE_PRIORITY",
    "cost_periods",
    "cost_sources",
    "daily_cost",
    "month_to_date",
    "partial_days",
    "replace_cost_rows",
]

SOURCE_PRIORITY = ("focus", "cur", "athena", "ce", "estimate")  # athena: the CUR/FOCUS table summed in Athena
BY_CHOICES = ("service", "region", "usage_type", "account", "pipeline", "provider")
COST_KEY = ("source", "day", "provider", "account", "service", "region", "usage_type", "pipeline", "currency")
VALUE_COLUMNS = ("billed_cost", "effective_cost", "usage_quantity")


# ---- writing ---------------------------------------------------------------------------------


def replace_cost_rows(
    conn: Connection,
    source: str,
    start: date,
    end: date,
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    where: Mapping[str, str] | None = None,
) -> int:
    """Make ``source``'s rows for ``start <= day < end`` (and ``where`` column equalities) exactly
    ``rows``, in the caller's transaction. Returns rows inserted, changed or deleted: 0 when the
    stored rows already are ``rows`` (a re-import stores nothing, and leaves ``updated_at``).

    Only the differences are written: stale rows are deleted, new and changed rows inserted
    (in bulk: binary COPY on PostgreSQL, one executemany on SQLite)."""
    if source not in SOURCE_PRIORITY:
        raise ValueError(f"replace_cost_rows: source must be one of {', '.join(SOURCE_PRIORITY)}, got {source!r}")
    frame = _cost_frame(rows, source)
    where = dict(where or {})
    for col in where:
        if col not in cost_daily.c or col in ("source", "day"):
            raise ValueError(f"replace_cost_rows: cannot scope on {col!r}")
    if not frame.empty:
        outside = frame[(frame["day"] < start) | (frame["day"] >= end)]
        if not outside.empty:
            raise ValueError(f"replace_cost_rows: {len(outside)} row(s) fall outside {start}..{end}")
        for col, value in where.items():
            if (frame[col] != value).any():
                raise ValueError(f"replace_cost_rows: rows outside the scope {col}={value!r}")
        if frame.duplicated(list(COST_KEY)).any():
            raise ValueError("replace_cost_rows: rows repeat a key; sum them first")
    cond = [cost_daily.c.source == source, cost_daily.c.day >= start, cost_daily.c.day < end]
    cond += [cost_daily.c[col] == value for col, value in where.items()]
    stored = pd.DataFrame(
        conn.execute(sa.select(*[cost_daily.c[c] for c in (*COST_KEY, *VALUE_COLUMNS)]).where(*cond)).all(),
        columns=[*COST_KEY, *VALUE_COLUMNS],
    )
    if stored.empty:
        _bulk_insert(conn, frame, now)
        _places(conn, start, end, len(frame))
        return len(frame)
    stored = _cost_frame(stored, source)
    merged = stored.merge(frame, on=list(COST_KEY), how="outer", suffixes=("_old", ""), indicator=True)
    same = merged["_merge"] == "both"
    for col in VALUE_COLUMNS:
        old, new = merged[f"{col}_old"], merged[col]
        same &= (old == new) | (old.isna() & new.isna())
    stale = merged[(merged["_merge"] == "left_only") | ((merged["_merge"] == "both") & ~same)]
    fresh = merged[(merged["_merge"] == "right_only") | ((merged["_merge"] == "both") & ~same)]
    if len(stale) > len(stored) // 2:
        # most of the scope changed: clearing it is cheaper than deleting key by key
        conn.execute(cost_daily.delete().where(*cond))
        _bulk_insert(conn, frame, now)
        return _places(conn, start, end, int((merged["_merge"] != "both").sum() + ((merged["_merge"] == "both") & ~same).sum()))
    if not stale.empty:
        stmt = cost_daily.delete().where(*[cost_daily.c[c] == sa.bindparam(f"k_{c}") for c in COST_KEY])
        conn.execute(stmt, [{f"k_{c}": v for c, v in zip(COST_KEY, key, strict=True)} for key in stale[list(COST_KEY)].itertuples(index=False)])
    _bulk_insert(conn, fresh[[*COST_KEY, *VALUE_COLUMNS]], now)
    return _places(conn, start, end, int((merged["_merge"] == "left_only").sum() + len(fresh)))


def _places(conn: Connection, start: date, end: date, changed: int) -> int:
    """``changed``, after recomputing the scope's days of ``places`` when rows did change (the
    dashboard's account and region lists read them; a re-import that changes nothing skips it)."""
    if changed:
        refresh_places(conn, "cost", start, end)
    return changed


def _cost_frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]], source: str) -> pd.DataFrame:
    """Rows as a frame with every key and value column, days as ``date`` and '' for unknowns."""
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    frame["source"] = source
    for col in ("provider", "account", "service", "region", "usage_type", "pipeline"):
        frame[col] = frame[col].fillna("").astype(str) if col in frame.columns else ""
    if "day" not in frame.columns:
        frame["day"] = pd.Series(dtype=object)
    frame["day"] = [_as_date(d) for d in frame["day"]]
    for col in ("billed_cost", "effective_cost", "usage_quantity"):
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype(float) if col in frame.columns else (0.0 if col != "usage_quantity" else float("nan"))
    frame["currency"] = frame["currency"].fillna("USD").astype(str) if "currency" in frame.columns else "USD"
    return frame[[*COST_KEY, *VALUE_COLUMNS]].reset_index(drop=True)


def _bulk_insert(conn: Connection, frame: pd.DataFrame, now: datetime) -> None:
    """Insert rows known to be new (no conflict handling): COPY on PostgreSQL, executemany on SQLite."""
    if frame.empty:
        return
    columns = [*COST_KEY, *VALUE_COLUMNS, "updated_at"]
    values = [frame[c].tolist() for c in (*COST_KEY, *VALUE_COLUMNS)]
    qty = columns.index("usage_quantity")
    values[qty] = [None if v != v else v for v in values[qty]]  # NaN -> NULL
    q = conn.dialect.identifier_preparer.quote
    names = ", ".join(q(c) for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None, "a connection in use has its driver connection"
    n = len(frame)
    if conn.dialect.name == "postgresql":
        types = ["text", "date", "text", "text", "text", "text", "text", "text", "text", "float8", "float8", "float8", "timestamptz"]
        stamp = now.astimezone(UTC)
        with raw.cursor() as cur, cur.copy(f"COPY {q(cost_daily.name)} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in zip(*values, [stamp] * n, strict=True):
                copy.write_row(row)
        return
    # SQLite: the text SQLAlchemy's dialect writes for Date and naive-UTC DateTime
    values[1] = [d.isoformat() for d in values[1]]
    stamp_text = now.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    cur = raw.cursor()
    cur.executemany(
        f"INSERT INTO {q(cost_daily.name)} ({names}) VALUES ({', '.join('?' for _ in columns)})",
        list(zip(*values, [stamp_text] * n, strict=True)),
    )
    cur.close()


def _as_date(v: Any) -> date:
    if isinstance(v, datetime):  # pd.Timestamp too
        return v.date()
    if isinstance(v, str):
        return date.fromisoformat(v[:10])
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v).date()
    return v


# ---- reading ---------------------------------------------------------------------------------


def daily_cost(
    conn: Connection,
    start: date,
    end: date,
    *,
    by: str | None = None,
    source: str | None = None,
    pipeline: str | None = None,
    account: str | None = None,
    service: str | None = None,
) -> pd.DataFrame:
    """Cost per day from ``start`` to ``end`` (both included), optionally per ``by`` dimension.

    Columns: ``day`` (date), ``<by>`` when given, ``source``, ``billed_cost``, ``effective_cost``,
    ``currency``; sorted by day then ``<by>``. Without ``source``, each day comes from the best
    source that has rows for it (focus > cur > ce > estimate). ``by`` is one of ``BY_CHOICES``.
    Days without rows are absent (not zero)."""
    if by is not None and by not in BY_CHOICES:
        raise ValueError(f"by must be one of {', '.join(BY_CHOICES)}, got {by!r}")
    if source is not None and source not in SOURCE_PRIORITY:
        raise ValueError(f"source must be one of {', '.join(SOURCE_PRIORITY)}, got {source!r}")
    c = cost_daily.c
    cols = [c.day, c.source]
    if by is not None:
        cols.append(c[by])
    q = sa.select(
        *cols,
        c.currency,
        sa.func.sum(c.billed_cost).label("billed_cost"),
        sa.func.sum(c.effective_cost).label("effective_cost"),
    ).where(c.day >= start, c.day <= end, _ce_shape(by, pipeline))
    if source is not None:
        q = q.where(c.source == source)
    if pipeline is not None:
        q = q.where(c.pipeline == pipeline)
    if account is not None:
        q = q.where(c.account == account)
    if service is not None:
        q = q.where(c.service == service)
    q = q.group_by(*cols, c.currency)
    frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=[col.name for col in cols] + ["currency", "billed_cost", "effective_cost"])
    if source is None:
        chosen = _source_per_day(conn, start, end)
        if not frame.empty:
            frame["day"] = frame["day"].map(_as_date)
            frame = frame[frame["source"] == frame["day"].map(chosen)]
    out_cols = ["day", *([by] if by else []), "source", "billed_cost", "effective_cost", "currency"]
    if frame.empty:
        return pd.DataFrame({k: pd.Series(dtype="float64" if k.endswith("_cost") else "object") for k in out_cols})
    frame["day"] = frame["day"].map(_as_date)
    frame = frame[out_cols].sort_values(["day", *([by] if by else [])], kind="stable").reset_index(drop=True)
    frame["billed_cost"] = frame["billed_cost"].astype(float)
    frame["effective_cost"] = frame["effective_cost"].astype(float)
    return frame


def _ce_shape(by: str | None, pipeline: str | None):
    """The SQL condition keeping one Cost Explorer shape (others' rows pass untouched)."""
    c = cost_daily.c
    if by == "pipeline" or pipeline is not None:
        shape = sa.and_(c.pipeline != ALL, c.region == ALL, c.usage_type == ALL)
    elif by == "usage_type":
        shape = sa.and_(c.pipeline == ALL, c.region == ALL, c.usage_type != ALL)
    else:
        shape = sa.and_(c.pipeline == ALL, c.region != ALL, c.usage_type == ALL)
    return sa.or_(c.source != "ce", shape)


# The days a source has rows for in [start, end], walked along the primary key (source, day, ...):
# one index descent per day found, where SELECT DISTINCT day, source reads every row of the range
# (30,000 rows a day for a CUR of 50 services x 20 regions x 30 usage types).
_SOURCE_DAYS = sa.text(
    """
    WITH RECURSIVE d(day) AS (
        SELECT MIN(day) FROM cost_daily WHERE source = :source AND day >= :start AND day <= :end
        UNION ALL
        SELECT (SELECT MIN(c.day) FROM cost_daily c WHERE c.source = :source AND c.day > d.day AND c.day <= :end)
        FROM d WHERE d.day IS NOT NULL
    )
    SELECT day FROM d WHERE day IS NOT NULL
    """
).bindparams(sa.bindparam("start", type_=sa.Date()), sa.bindparam("end", type_=sa.Date()))


def _source_per_day(conn: Connection, start: date, end: date) -> dict[date, str]:
    """The best source (``SOURCE_PRIORITY``) with rows for each day in ``[start, end]``."""
    pairs = [
        (day, src)
        for src in SOURCE_PRIORITY  # the only sources written (replace_cost_rows checks)
        for (day,) in conn.execute(_SOURCE_DAYS, {"source": src, "start": start, "end": end})
    ]
    rank = {s: i for i, s in enumerate(SOURCE_PRIORITY)}
    best: dict[date, str] = {}
    for day, src in pairs:
        d = _as_date(day)
        if d not in best or rank.get(src, 99) < rank.get(best[d], 99):
            best[d] = src
    return best


def month_to_date(conn: Connection, today: date, *, by: str | None = None, source: str | None = None) -> pd.DataFrame:
    """``daily_cost`` from the first of ``today``'s month to ``today``."""
    return daily_cost(conn, today.replace(day=1), today, by=by, source=source)


def cost_sources(conn: Connection) -> pd.DataFrame:
    """Per source: ``source, first_day, last_day, days, rows, billed_cost, updated_at``."""
    c = cost_daily.c
    q = (
        sa.select(
            c.source,
            sa.func.min(c.day).label("first_day"),
            sa.func.max(c.day).label("last_day"),
            sa.func.count(sa.distinct(c.day)).label("days"),
            sa.func.count().label("rows"),
            sa.func.max(c.updated_at).label("updated_at"),
        )
        .group_by(c.source)
        .order_by(c.source)
    )
    frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=["source", "first_day", "last_day", "days", "rows", "updated_at"])
    # billed total per source without CE's extra shapes (one shape sums to the total)
    totals = conn.execute(
        sa.select(c.source, sa.func.sum(c.billed_cost)).where(_ce_shape(None, None)).group_by(c.source)
    ).all()
    frame["billed_cost"] = frame["source"].map({s: float(v or 0.0) for s, v in totals}).astype(float)
    for col in ("first_day", "last_day"):
        frame[col] = frame[col].map(_as_date)
    if not frame.empty:
        frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame


def cost_periods(conn: Connection, source: str) -> pd.DataFrame:
    """Billing months stored for ``source``: ``month`` (YYYY-MM), ``rows``, ``billed_cost``, ``effective_cost``."""
    c = cost_daily.c
    rows = conn.execute(
        sa.select(c.day, sa.func.count(), sa.func.sum(c.billed_cost), sa.func.sum(c.effective_cost))
        .where(c.source == source, _ce_shape(None, None))
        .group_by(c.day)
    ).all()
    frame = pd.DataFrame(rows, columns=["day", "rows", "billed_cost", "effective_cost"])
    if frame.empty:
        return pd.DataFrame({"month": [], "rows": [], "billed_cost": [], "effective_cost": []})
    frame["month"] = frame["day"].map(lambda d: _as_date(d).strftime("%Y-%m"))
    return frame.groupby("month", as_index=False)[["rows", "billed_cost", "effective_cost"]].sum()


def partial_days(conn: Connection, start: date, end: date) -> list[date]:
    """Days from ``start`` to ``end`` whose cost rows were all written before the day was over:
    a collector read them while the day was still running, so their spend is partial (and
    reads as a drop). Sorted; days without rows are not listed."""
    c = cost_daily.c
    q = (
        sa.select(c.day, sa.func.max(c.updated_at, type_=c.updated_at.type).label("updated"))
        .where(c.day >= start, c.day <= end)
        .group_by(c.day)
    )
    out = []
    for day, updated in conn.execute(q).all():
        d = day.date() if isinstance(day, datetime) else day
        if updated < datetime.combine(d + timedelta(days=1), time.min, UTC):
            out.append(d)
    return sorted(out)
