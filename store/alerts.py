"""SQL for alert digests: what to report, and what was already sent.

Reads that other store modules do not provide (runs in a window with their errors, a run summary
per pipeline, alertable anomalies, the newest forecast per subject, collector health; spend comes
from ``store.costs``, which knows not to count a day twice) and the
bookkeeping of the ``digests`` and ``notifications`` tables. Bound parameters only; every read
returns a DataFrame (times tz-aware UTC) or plain values.

A notification row records one item (``item_key`` at ``item_version``) for one rule and recipient.
Its status is ``pending`` while a send is under way, ``sent`` once the server accepted the
message and ``failed`` when it did not; failed rows are picked up by the next pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.schema import (
    SEVERITIES,
    anomalies,
    collector_runs,
    digests,
    forecast_snapshots,
    notifications,
    runs,
)

__all__ = [
    "FAILED_STATUSES",
    "alertable_anomalies",
    "collector_health",
    "failed_runs",
    "finish_digest",
    "latest_forecasts",
    "notification_state",
    "oldest_unsent",
    "record_attempt",
    "run_summary",
    "runs_since",
]

FAILED_STATUSES = ("FAILED", "TIMED_OUT")


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


def _frame(rows: Sequence[sa.RowMapping], columns: Iterable[str]) -> pd.DataFrame:
    return pd.DataFrame([dict(r) for r in rows], columns=list(columns))


def failed_runs(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Runs that ended FAILED or TIMED_OUT in ``[start, end)``, newest first."""
    ended = sa.func.coalesce(runs.c.ended_at, runs.c.started_at)
    cols = [
        runs.c.run_id,
        runs.c.pipeline,
        runs.c.source,
        runs.c.status,
        runs.c.trigger,
        runs.c.attempt,
        runs.c.started_at,
        runs.c.ended_at,
        runs.c.duration_seconds,
        runs.c.error_type,
        runs.c.error_message,
        runs.c.cost_usd,
    ]
    q = (
        sa.select(*cols)
        .where(runs.c.status.in_(FAILED_STATUSES), ended >= _utc(start), ended < _utc(end))
        .order_by(ended.desc(), runs.c.run_id)
    )
    if pipelines:
        q = q.where(runs.c.pipeline.in_(list(pipelines)))
    return _frame(conn.execute(q).mappings().all(), [c.name for c in cols])


def run_summary(
    conn: Connection, start: datetime, end: datetime, *, pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per pipeline, the runs that started in ``[start, end)``: counts by outcome and success rate.

    ``success_rate`` is succeeded / finished (runs still going are not counted against it) and
    NaN when nothing finished.
    """
    finished = runs.c.status.in_(("SUCCEEDED", *FAILED_STATUSES, "CANCELLED"))
    q = (
        sa.select(
            runs.c.pipeline,
            sa.func.count().label("runs"),
            sa.func.sum(sa.case((runs.c.status == "SUCCEEDED", 1), else_=0)).label("succeeded"),
            sa.func.sum(sa.case((runs.c.status.in_(FAILED_STATUSES), 1), else_=0)).label("failed"),
            sa.func.sum(sa.case((finished, 1), else_=0)).label("finished"),
            sa.func.sum(runs.c.retries).label("retries"),
            sa.func.sum(runs.c.cost_usd).label("cost_usd"),
        )
        .where(runs.c.started_at >= _utc(start), runs.c.started_at < _utc(end))
        .group_by(runs.c.pipeline)
        .order_by(runs.c.pipeline)
    )
    if pipelines:
        q = q.where(runs.c.pipeline.in_(list(pipelines)))
    cols = ["pipeline", "runs", "succeeded", "failed", "finished", "retries", "cost_usd"]
    df = _frame(conn.execute(q).mappings().all(), cols)
    for c in ("runs", "succeeded", "failed", "finished", "retries"):
        df[c] = df[c].fillna(0).astype("int64")
    df["cost_usd"] = df["cost_usd"].astype("float64")
    df["success_rate"] = (df["succeeded"] / df["finished"].where(df["finished"] > 0)).astype("float64")
    return df


def alertable_anomalies(
    conn: Connection, *, now: datetime, min_severity: str = "low", pipelines: Sequence[str] | None = None
) -> pd.DataFrame:
    """Anomalies a digest may report: open ones, and snoozed ones whose snooze has ended.

    Acknowledged and resolved anomalies are left out, and so are snoozed ones until their date.
    Ordered by severity (worst first), then most recently seen.
    """
    if min_severity not in SEVERITIES:
        raise ValueError(f"unknown severity {min_severity!r}; expected one of {', '.join(SEVERITIES)}")
    allowed = list(SEVERITIES[SEVERITIES.index(min_severity) :])
    q = (
        sa.select(anomalies)
        .where(
            anomalies.c.severity.in_(allowed),
            sa.or_(
                anomalies.c.status == "open",
                sa.and_(
                    anomalies.c.status == "snoozed",
                    anomalies.c.snoozed_until.is_not(None),
                    anomalies.c.snoozed_until <= _utc(now),
                ),
            ),
        )
        .order_by(anomalies.c.last_seen.desc(), anomalies.c.fingerprint)
    )
    if pipelines:
        q = q.where(anomalies.c.pipeline.in_(list(pipelines)))
    df = _frame(conn.execute(q).mappings().all(), [c.name for c in anomalies.c])
    if not df.empty:
        rank = df["severity"].map({s: i for i, s in enumerate(SEVERITIES)})
        df = df.assign(_rank=rank).sort_values(["_rank", "last_seen"], ascending=[False, False], kind="stable")
        df = df.drop(columns="_rank").reset_index(drop=True)
    return df


def latest_forecasts(conn: Connection, *, method: str | None = None) -> pd.DataFrame:
    """The newest forecast snapshot per (method, subject)."""
    fs = forecast_snapshots
    newest = sa.select(fs.c.method, fs.c.subject, sa.func.max(fs.c.created_at).label("created_at")).group_by(
        fs.c.method, fs.c.subject
    )
    if method is not None:
        newest = newest.where(fs.c.method == method)
    sub = newest.subquery()
    q = (
        sa.select(fs)
        .join(sub, sa.and_(fs.c.method == sub.c.method, fs.c.subject == sub.c.subject, fs.c.created_at == sub.c.created_at))
        .order_by(fs.c.method, fs.c.subject)
    )
    return _frame(conn.execute(q).mappings().all(), [c.name for c in fs.c])


def runs_since(conn: Connection, since: datetime, *, pipelines: Sequence[str] | None = None) -> pd.DataFrame:
    """Runs started (or scheduled) at or after ``since``: the columns freshness checks need."""
    cols = [runs.c.run_id, runs.c.pipeline, runs.c.status, runs.c.scheduled_for, runs.c.started_at, runs.c.ended_at]
    q = sa.select(*cols).where(
        sa.or_(runs.c.started_at >= _utc(since), runs.c.scheduled_for >= _utc(since))
    ).order_by(runs.c.pipeline, runs.c.started_at)
    if pipelines:
        q = q.where(runs.c.pipeline.in_(list(pipelines)))
    df = _frame(conn.execute(q).mappings().all(), [c.name for c in cols])
    for c in ("scheduled_for", "started_at", "ended_at"):
        df[c] = pd.to_datetime(df[c], utc=True)
    return df


def collector_health(conn: Connection, *, since: datetime) -> pd.DataFrame:
    """Per collector source: its newest pass, the newest success, and the failing streak.

    ``failing_since`` is the start of the first failed pass after the last success (NaT when the
    newest pass did not fail); ``failures`` counts the passes in that streak; ``first_failed_id``
    identifies the streak. Only passes started at or after ``since`` are looked at.
    """
    cr = collector_runs
    rows = conn.execute(
        sa.select(cr.c.collector_run_id, cr.c.source, cr.c.started_at, cr.c.status, cr.c.error)
        .where(cr.c.started_at >= _utc(since), cr.c.status.in_(("succeeded", "failed")))
        .order_by(cr.c.source, cr.c.started_at.desc(), cr.c.collector_run_id.desc())
    ).all()
    out: list[dict] = []
    by_source: dict[str, list] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    for source, passes in sorted(by_source.items()):
        streak = []
        for p in passes:  # newest first
            if p.status != "failed":
                break
            streak.append(p)
        last_ok = next((p.started_at for p in passes if p.status == "succeeded"), None)
        out.append(
            {
                "source": source,
                "last_started_at": passes[0].started_at,
                "last_status": passes[0].status,
                "last_error": passes[0].error,
                "last_success_at": last_ok,
                "failures": len(streak),
                "failing_since": streak[-1].started_at if streak else None,
                "first_failed_id": streak[-1].collector_run_id if streak else None,
            }
        )
    cols = [
        "source",
        "last_started_at",
        "last_status",
        "last_error",
        "last_success_at",
        "failures",
        "failing_since",
        "first_failed_id",
    ]
    return pd.DataFrame(out, columns=cols)


# ---- what was sent ----------------------------------------------------------------------------


def notification_state(conn: Connection, rules: Sequence[str], recipients: Sequence[str]) -> pd.DataFrame:
    """Every notification row for these rules and recipients (any status), newest first."""
    if not rules or not recipients:
        return pd.DataFrame(
            columns=["rule", "recipient", "item_key", "item_version", "status", "created_at", "sent_at", "digest_id"]
        )
    n = notifications
    cols = [n.c.rule, n.c.recipient, n.c.item_key, n.c.item_version, n.c.status, n.c.created_at, n.c.sent_at, n.c.digest_id]
    q = (
        sa.select(*cols)
        .where(n.c.rule.in_(list(rules)), n.c.recipient.in_(list(recipients)))
        .order_by(n.c.created_at.desc(), n.c.notification_id.desc())
    )
    return _frame(conn.execute(q).mappings().all(), [c.name for c in cols])


def oldest_unsent(conn: Connection, rules: Sequence[str]) -> datetime | None:
    """When the oldest notification that is not yet sent (failed or pending) was first recorded."""
    if not rules:
        return None
    n = notifications
    return conn.execute(
        sa.select(sa.func.min(n.c.created_at)).where(n.c.rule.in_(list(rules)), n.c.status != "sent")
    ).scalar_one_or_none()


def record_attempt(
    conn: Connection,
    *,
    digest_id: str,
    period: str,
    channel: str,
    recipients: Sequence[str],
    subject: str,
    items: Iterable[tuple[str, str, str, str]],
    now: datetime,
) -> None:
    """Record a digest about to be sent and its items as ``pending``.

    ``items`` are ``(rule, recipient, item_key, item_version)``. A row left ``failed`` by an
    earlier pass is taken over by this digest (the unique key allows one row per version).
    """
    now = _utc(now)
    conn.execute(
        digests.insert().values(
            digest_id=digest_id,
            period=period,
            channel=channel,
            recipients=", ".join(recipients),
            subject=subject,
            status="pending",
            attempts=1,
            created_at=now,
        )
    )
    n = notifications
    for rule, recipient, key, version in items:
        found = conn.execute(
            sa.select(n.c.notification_id, n.c.status).where(
                n.c.rule == rule, n.c.recipient == recipient, n.c.item_key == key, n.c.item_version == version
            )
        ).first()
        if found is None:
            conn.execute(
                n.insert().values(
                    digest_id=digest_id,
                    rule=rule,
                    recipient=recipient,
                    item_key=key,
                    item_version=version,
                    status="pending",
                    created_at=now,
                )
            )
        elif found.status != "sent":
            conn.execute(
                n.update().where(n.c.notification_id == found.notification_id).values(digest_id=digest_id, status="pending")
            )


def finish_digest(
    conn: Connection,
    digest_id: str,
    *,
    now: datetime,
    refused: Sequence[str] = (),
    error: str | None = None,
) -> None:
    """Mark a digest and its items sent, or failed with ``error``.

    With ``error`` set everything failed. Otherwise the digest counts as sent and each item is
    sent except those for ``refused`` recipients (which stay failed and are retried).
    """
    now = _utc(now)
    n = notifications
    if error is not None:
        conn.execute(digests.update().where(digests.c.digest_id == digest_id).values(status="failed", error=error))
        conn.execute(n.update().where(n.c.digest_id == digest_id).values(status="failed"))
        return
    note = f"refused by the server for {', '.join(refused)}" if refused else None
    conn.execute(digests.update().where(digests.c.digest_id == digest_id).values(status="sent", sent_at=now, error=note))
    ok = n.update().where(n.c.digest_id == digest_id)
    if refused:
        conn.execute(n.update().where(n.c.digest_id == digest_id, n.c.recipient.in_(list(refused))).values(status="failed"))
        ok = ok.where(n.c.recipient.not_in(list(refused)))
    conn.execute(ok.values(status="sent", sent_at=now))
