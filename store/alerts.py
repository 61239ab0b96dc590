"""SQL for alert digests: what failed in a period, and what was already sent.

The one read other store modules do not provide: runs that *ended* failed in a window (a digest
must not miss a run that started before its period and failed inside it, which a read by start
time would). And the bookkeeping of the ``digests`` and ``notifications`` tables. Everything
else a digest shows comes from ``store.runs``, ``store.anomalies``, ``store.forecasts``,
``store.costs`` and ``store.state``. Bound parameters only; reads return DataFrames (times
tz-aware UTC) or plain values.

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

from pipepulse.vocab import FAILURES
from store.schema import digests, notifications, runs

__all__ = [
    "failed_runs",
    "finish_digest",
    "notification_state",
    "oldest_unsent",
    "record_attempt",
]


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
        .where(runs.c.status.in_(FAILURES), ended >= _utc(start), ended < _utc(end))
        .order_by(ended.desc(), runs.c.run_id)
    )
    if pipelines:
        q = q.where(runs.c.pipeline.in_(list(pipelines)))
    return _frame(conn.execute(q).mappings().all(), [c.name for c in cols])


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
    attempts: int | None = None,
) -> None:
    """Mark a digest and its items sent, or failed with ``error``; ``attempts``, when given, is
    how many tries delivery took (a Slack or webhook post retried after a 5xx).

    With ``error`` set everything failed. Otherwise the digest counts as sent and each item is
    sent except those for ``refused`` recipients (which stay failed and are retried).
    """
    now = _utc(now)
    n = notifications
    if attempts is not None:
        conn.execute(digests.update().where(digests.c.digest_id == digest_id).values(attempts=attempts))
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
