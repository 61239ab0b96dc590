"""Anomaly SQL: upsert by fingerprint, reads, user status changes, maintenance windows.

An anomaly is stored once per fingerprint (kind + subject + window-start bucket, see
``insights.anomaly.fingerprint``). Detecting it again updates what was observed
(``observed``, ``score``, ``window_end``, ``last_seen`` ...). ``version`` is what the digests
compare to decide whether to notify again, so it bumps only when the anomaly got worse
(severity rose) or reopened. A user's ``acknowledged`` / ``snoozed`` / ``resolved`` status is
never overwritten by detection, except that a *resolved* anomaly detected again after it was
resolved reopens (status ``open``, version + 1).

Also here: the few raw reads detection needs that no other area provides (metric points per
series), so ``jobs.detect`` never holds SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipepulse.errors import InputError
from pipepulse.vocab import ANOMALY_STATUSES, SEVERITIES
from store.schema import anomalies, maintenance_windows, metric_points, metric_series
from store.writes import inserted_id

__all__ = [
    "UpsertCounts",
    "add_maintenance_window",
    "delete_maintenance_window",
    "get_anomaly",
    "list_anomalies",
    "maintenance_windows_frame",
    "metric_points_frame",
    "metric_series_frame",
    "resolve_fingerprint",
    "set_status",
    "upsert_anomalies",
]

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
ANOMALY_COLUMNS = [c.name for c in anomalies.c]
REQUIRED = ("fingerprint", "kind", "subject", "window_start", "window_end", "severity")


@dataclass(frozen=True)
class UpsertCounts:
    """What an upsert did: new rows, rows updated, rows reopened, rows whose version bumped."""

    inserted: int = 0
    updated: int = 0
    reopened: int = 0
    bumped: int = 0


def _utc(v: Any) -> datetime | None:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT:
        return None
    ts = pd.Timestamp(v)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def upsert_anomalies(conn: Connection, rows: Iterable[Mapping[str, Any]], *, now: datetime) -> UpsertCounts:
    """Insert new anomalies, update known ones (see the module docstring for the rules)."""
    inserted = updated = reopened = bumped = 0
    for row in rows:
        missing = [k for k in REQUIRED if row.get(k) in (None, "")]
        if missing:
            raise ValueError(f"anomaly row lacks {missing}")
        if row["severity"] not in _RANK:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {row['severity']!r}")
        values: dict[str, Any] = {k: row.get(k) for k in ANOMALY_COLUMNS if k in row}
        for k in ("window_start", "window_end"):
            values[k] = _utc(values[k])
        if isinstance(values.get("root_cause"), list | dict):
            values["root_cause"] = json.dumps(values["root_cause"], sort_keys=True)
        for k in ("observed", "expected", "lower", "upper", "score"):
            if k in values and values[k] is not None:
                values[k] = None if pd.isna(values[k]) else float(values[k])
        old = conn.execute(sa.select(anomalies).where(anomalies.c.fingerprint == values["fingerprint"])).mappings().first()
        if old is None:
            values.update(status="open", version=1, first_seen=now, last_seen=now)
            for k in ("status_note", "status_by", "status_at", "snoozed_until"):
                values.pop(k, None)
            conn.execute(anomalies.insert().values(**values))
            inserted += 1
            continue
        change: dict[str, Any] = {
            k: values[k]
            for k in ("subject", "pipeline", "observed", "expected", "lower", "upper", "score", "root_cause", "detector", "severity")
            if k in values
        }
        # the incident may have grown: keep the earliest start and the latest end
        change["window_start"] = min(old["window_start"], values["window_start"])
        change["window_end"] = max(old["window_end"], values["window_end"])
        change["last_seen"] = now
        version = old["version"]
        rose = _RANK[values["severity"]] > _RANK[old["severity"]]
        # a resolved anomaly reopens when it is seen again, with data later than the resolution
        recurs = old["status"] == "resolved" and old["status_at"] is not None and values["window_end"] > old["status_at"]
        if recurs:
            change.update(status="open", status_note=None, status_by="detector", status_at=now, snoozed_until=None)
            reopened += 1
        if rose or recurs:
            version += 1
            bumped += 1
        else:
            # detection never lowers the severity a user was told about
            if _RANK[values["severity"]] < _RANK[old["severity"]]:
                change["severity"] = old["severity"]
        change["version"] = version
        conn.execute(anomalies.update().where(anomalies.c.fingerprint == values["fingerprint"]).values(**change))
        updated += 1
    return UpsertCounts(inserted, updated, reopened, bumped)


def _frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=ANOMALY_COLUMNS)
    for c in ("window_start", "window_end", "status_at", "snoozed_until", "first_seen", "last_seen"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


def list_anomalies(
    conn: Connection,
    *,
    status: str | Iterable[str] | None = None,
    kind: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    pipeline: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Anomalies (every column), newest window first; ``start``/``end`` select anomalies whose
    window overlaps ``[start, end)``."""
    q = sa.select(anomalies)
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        bad = [s for s in wanted if s not in ANOMALY_STATUSES]
        if bad:
            raise ValueError(f"status must be one of {', '.join(ANOMALY_STATUSES)}, got {bad[0]!r}")
        q = q.where(anomalies.c.status.in_(wanted))
    if kind is not None:
        q = q.where(anomalies.c.kind == kind)
    if pipeline is not None:
        q = q.where(anomalies.c.pipeline == pipeline)
    if start is not None:
        q = q.where(anomalies.c.window_end >= start)
    if end is not None:
        q = q.where(anomalies.c.window_start < end)
    q = q.order_by(anomalies.c.window_start.desc(), anomalies.c.fingerprint)
    if limit is not None:
        q = q.limit(limit)
    return _frame(conn.execute(q).mappings().all())


def get_anomaly(conn: Connection, fingerprint: str) -> dict[str, Any] | None:
    """One anomaly as a dict (tz-aware times), or None."""
    row = conn.execute(sa.select(anomalies).where(anomalies.c.fingerprint == fingerprint)).mappings().first()
    return dict(row) if row else None


MIN_PREFIX = 4  # the dashboard shows 8 characters; fewer than 4 would match almost anything


def resolve_fingerprint(conn: Connection, given: str) -> str:
    """The full fingerprint ``given`` names: itself, or the one anomaly whose fingerprint starts
    with it (the dashboard shows the first 8 characters). InputError when none or several match."""
    given = given.strip()
    if get_anomaly(conn, given) is not None:
        return given
    hint = "list them with `pipepulse anomalies list`"
    if len(given) < MIN_PREFIX:
        raise InputError(f"no anomaly with fingerprint {given!r}; give at least {MIN_PREFIX} characters of it ({hint})")
    escaped = given.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = [r[0] for r in conn.execute(
        sa.select(anomalies.c.fingerprint).where(anomalies.c.fingerprint.like(f"{escaped}%", escape="\\"))
        .order_by(anomalies.c.fingerprint).limit(4))]
    if not found:
        raise InputError(f"no anomaly with fingerprint {given!r} or one starting with it; {hint}")
    if len(found) > 1:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise InputError(f"fingerprint prefix {given!r} matches more than one anomaly ({shown}): give more characters")
    return found[0]


def set_status(
    conn: Connection,
    fingerprint: str,
    status: str,
    *,
    note: str | None = None,
    by: str | None = None,
    snoozed_until: datetime | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Acknowledge, snooze, resolve or reopen an anomaly; returns the updated row.

    A snooze needs ``snoozed_until`` in the future; other statuses clear it."""
    if status not in ANOMALY_STATUSES:
        raise InputError(f"status must be one of {', '.join(ANOMALY_STATUSES)}, got {status!r}")
    fingerprint = resolve_fingerprint(conn, fingerprint)
    old = get_anomaly(conn, fingerprint)
    if old is None:
        raise InputError(f"no anomaly with fingerprint {fingerprint!r}; list them with `pipepulse anomalies list`")
    until = _utc(snoozed_until)
    if status == "snoozed":
        if until is None:
            raise InputError("a snooze needs an end: give --until (e.g. 2026-12-01T09:00Z)")
        if until <= now:
            raise InputError(f"snooze end {until.isoformat()} is not in the future (now {now.isoformat()})")
    elif until is not None:
        raise InputError(f"only a snooze takes an end date; status {status!r} does not")
    values: dict[str, Any] = {"status": status, "status_note": note, "status_by": by, "status_at": now, "snoozed_until": until}
    if status == "open" and old["status"] == "resolved":
        values["version"] = old["version"] + 1
    conn.execute(anomalies.update().where(anomalies.c.fingerprint == fingerprint).values(**values))
    return get_anomaly(conn, fingerprint)  # type: ignore[return-value]


# ---- maintenance windows -------------------------------------------------------------------


def add_maintenance_window(
    conn: Connection, *, starts_at: datetime, ends_at: datetime, subject: str = "*", reason: str = "", now: datetime
) -> int:
    """Store a planned window (``subject`` a pipeline name, a series/dimension, or ``*``)."""
    a, b = _utc(starts_at), _utc(ends_at)
    if a is None or b is None or b <= a:
        raise InputError(f"a maintenance window must end after it starts (got {starts_at} .. {ends_at})")
    result = conn.execute(
        maintenance_windows.insert().values(subject=subject or "*", starts_at=a, ends_at=b, reason=reason, created_at=now)
    )
    return inserted_id(result)


def delete_maintenance_window(conn: Connection, window_id: int) -> bool:
    """Remove a planned window; False when there was none with that id."""
    return conn.execute(maintenance_windows.delete().where(maintenance_windows.c.window_id == window_id)).rowcount > 0


def maintenance_windows_frame(
    conn: Connection, *, start: datetime | None = None, end: datetime | None = None, subject: str | None = None
) -> pd.DataFrame:
    """Planned windows overlapping ``[start, end)``; ``subject`` also matches ``*`` windows."""
    q = sa.select(maintenance_windows)
    if start is not None:
        q = q.where(maintenance_windows.c.ends_at > start)
    if end is not None:
        q = q.where(maintenance_windows.c.starts_at < end)
    if subject is not None:
        q = q.where(maintenance_windows.c.subject.in_([subject, "*"]))
    q = q.order_by(maintenance_windows.c.starts_at, maintenance_windows.c.window_id)
    cols = [c.name for c in maintenance_windows.c]
    frame = pd.DataFrame(conn.execute(q).mappings().all(), columns=cols)
    for c in ("starts_at", "ends_at", "created_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    return frame


# ---- reads detection needs -----------------------------------------------------------------


def metric_series_frame(conn: Connection) -> pd.DataFrame:
    """Every stored metric series: id, namespace, metric name, dimensions JSON, stat, period,
    pipeline, stage."""
    c = metric_series.c
    q = sa.select(c.series_id, c.namespace, c.metric_name, c.dimensions, c.stat, c.period_seconds, c.pipeline, c.stage).order_by(c.series_id)
    return pd.DataFrame(conn.execute(q).mappings().all(), columns=["series_id", "namespace", "metric_name", "dimensions", "stat", "period_seconds", "pipeline", "stage"])


def metric_points_frame(conn: Connection, start: datetime, end: datetime, *, series_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """Points with ``start <= ts < end``: ``series_id, ts`` (tz-aware) ``, value``, by series then time."""
    c = metric_points.c
    q = sa.select(c.series_id, c.ts, c.value).where(c.ts >= start, c.ts < end)
    if series_ids is not None:
        q = q.where(c.series_id.in_(list(series_ids)))
    q = q.order_by(c.series_id, c.ts)
    frame = pd.DataFrame(conn.execute(q).all(), columns=["series_id", "ts", "value"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["value"] = frame["value"].astype(float)
    return frame
